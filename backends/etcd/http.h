/*
 * http.h - the transport to etcd's v3 JSON gateway: POSTs over libcurl, with
 * a pool of reusable connections, failover between the endpoints and
 * retries through a leader election.
 * Safe to use from many threads at once.
 */
#ifndef TOPOFS_ETCD_HTTP_H
#define TOPOFS_ETCD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "topofs/backend.h"

struct etcd_http;

/* One answer: the HTTP status and the body (owned, NUL-terminated). */
struct etcd_reply {
	long status;
	char *body;
	size_t len;
};

/* Free the body of a reply. */
void etcd_reply_free(struct etcd_reply *r);

/* Append n received bytes to r's body (kept NUL-terminated), if it stays
 * within max bytes: 0, or -1 (too long, or ENOMEM). For curl write
 * callbacks, which fail the transfer by returning less than n. */
int etcd_reply_append(struct etcd_reply *r, const char *data, size_t n,
		      size_t max);

/* Parse conf->servers and the TLS settings, read the etcd user's password
 * file (auth.h); nothing is sent yet. 0 and *out, or a negative errno with a
 * reason in errbuf. */
int etcd_http_open(const struct topo_conf *conf, struct etcd_http **out,
		   char *errbuf, size_t errlen);

/* Close every pooled connection and free h. NULL is allowed. */
void etcd_http_close(struct etcd_http *h);

/* The deadline (CLOCK_MONOTONIC milliseconds) of an operation started now:
 * now plus the operation timeout (-o timeout). */
long long etcd_http_deadline(const struct etcd_http *h);

/* POST body to api (e.g. "/v3/kv/range"), starting on the endpoint that
 * answered last, until `deadline` (etcd_http_deadline()):
 *  - a failed attempt (no connection, connection lost, timeout) moves on
 *    to the next endpoint at once; every endpoint failing in a row without
 *    answering ends the call (the store is down). A member that took the
 *    request and timed out is not down but busy (a follower holds a write
 *    while the cluster elects a new leader): it does not count, and the
 *    call goes on until the deadline;
 *  - an answer that asks to try again (etcd_reply_retryable(): no leader,
 *    leader changed, timed out, too many requests) is tried again on the
 *    next endpoint after a pause (50 ms, doubling up to 1 s);
 *  - any other answer ends the call.
 * Reads and writes are both sent again. For a write, pass `uncertain`: it
 * is set when an attempt failed after which the request may have been
 * applied (then the answer of a later attempt may describe a store that
 * already holds the write: the caller settles that, see settle.c); NULL
 * for a read. 0 and *reply (any HTTP status: the last "try again" answer
 * if the deadline came first), or -EIO / -ENOMEM with the cause in why
 * (whylen bytes, may be 0) and one log line naming `what` (only at
 * LOG_DEBUG if `what` is NULL: the caller reports `why` itself). */
int etcd_http_post(struct etcd_http *h, const char *api, const char *body,
		   size_t len, long long deadline, bool *uncertain,
		   const char *what, struct etcd_reply *reply, char *why,
		   size_t whylen);

/* One request of any method, for etcd's v2 keys API. */
struct etcd_request {
	const char *method; /* "GET", "PUT", "POST", "DELETE" */
	const char *api;    /* path and query, e.g. "/v2/keys/a?dir=true" */
	const char *form;   /* application/x-www-form-urlencoded body, or
			       NULL */
	size_t len;
	bool idempotent; /* may be tried again elsewhere after a timeout */
};

/* Send rq with etcd_http_post's failover and time bound (but no JSON: a
 * form body). 0 and *reply (any HTTP status) with *index the answer's
 * X-Etcd-Index header (-1 without one), or -EIO / -ENOMEM as
 * etcd_http_post. */
int etcd_http_request(struct etcd_http *h, const struct etcd_request *rq,
		      const char *what, struct etcd_reply *reply,
		      int64_t *index, char *why, size_t whylen);

/* The root key of both etcd APIs: root without trailing slashes ("" for
 * "/") in *out (malloc'd). 0, -EINVAL (reason in errbuf) or -ENOMEM. */
int etcd_root_key(const char *root, char **out, char *errbuf, size_t errlen);

/* How many endpoints there are; the one that answered last; the
 * "host:port" of endpoint i, for messages. */
size_t etcd_http_count(const struct etcd_http *h);
size_t etcd_http_current(struct etcd_http *h);
const char *etcd_http_name(const struct etcd_http *h, size_t i);

/* The "scheme://host:port" of endpoint i, for URLs of one's own. */
const char *etcd_http_base(const struct etcd_http *h, size_t i);

/* A new handle of the caller's (for long-lived streams, outside the pool)
 * with the options every request shares (headers, the user's token, TLS,
 * no proxy, no signals, TCP keepalive), set to POST to api on endpoint i.
 * NULL if out of memory. Call etcd_auth_detach before curl_easy_cleanup. */
CURL *etcd_http_handle(const struct etcd_http *h, size_t i, const char *api);

/* The etcd user (auth.h), or NULL when none was given. */
struct etcd_auth *etcd_http_auth(const struct etcd_http *h);

/* The headers every request shares (for etcd_auth_detach). */
struct curl_slist *etcd_http_headers(const struct etcd_http *h);

#endif
