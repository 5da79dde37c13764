/*
 * auth.h - etcd users: -o etcd_user=NAME,etcd_password_file=PATH.
 *
 * etcd's JSON gateway authenticates a user with POST /v3/auth/authenticate
 * ({"name","password"} -> {"token"}); every later request carries the token
 * in its Authorization header (the gateway passes it on as gRPC metadata),
 * the watch stream too.
 *
 * Tokens expire: etcd's default "simple" tokens after --auth-token-ttl
 * seconds unused (300), and all of them when the member restarts. etcd then
 * answers "etcdserver: invalid auth token" (gRPC UNAUTHENTICATED, HTTP 401):
 * the request is authenticated afresh once and sent again. A request that
 * the user's roles do not allow is "etcdserver: permission denied", EACCES.
 *
 * The password is read from its file when the store opens, kept in memory
 * for renewals, never logged and wiped when the store closes. Tokens are
 * secrets too: never logged.
 *
 * The parsing parts are pure, for the unit tests.
 */
#ifndef TOPOFS_ETCD_AUTH_H
#define TOPOFS_ETCD_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

#include "http.h"

#define ETCD_PASSWORD_MAX 4096 /* longest password file, in bytes */

/* The password in a password file's contents buf[0..n): its first line
 * without the line end ("\n" or "\r\n"). Only blank lines may follow.
 * 0 and *out (newly allocated), -EINVAL (empty, a NUL byte, more lines) or
 * -ENOMEM. */
int etcd_password_parse(const char *buf, size_t n, char **out);

/* Read the password file `path` (a regular file of at most
 * ETCD_PASSWORD_MAX bytes). 0 and *out, or a negative errno with a one-line
 * reason in errbuf that names the file, never its contents. */
int etcd_password_read(const char *path, char **out, char *errbuf,
		       size_t errlen);

/* The token of an authenticate answer (HTTP status, body): 0 and *token
 * (newly allocated, printable ASCII only: it goes into a header), -EACCES
 * (wrong user name or password), -ENOTSUP (authentication is not enabled
 * on the server), -EIO (anything else) or -ENOMEM. */
int etcd_parse_token(long status, const char *json, size_t len, char **token);

/* Whether an answer's text says that the token is no longer valid (expired,
 * or the member restarted and forgot it). NULL is allowed. */
bool etcd_auth_token_invalid(const char *text);

struct etcd_auth;

/* A user from conf (etcd_user, etcd_password_file): 0 and *out (NULL when
 * conf names no user), or a negative errno with a reason in errbuf. */
int etcd_auth_new(const struct topo_conf *conf, struct etcd_auth **out,
		  char *errbuf, size_t errlen);

/* Wipe the password and token and free a. NULL is allowed. */
void etcd_auth_free(struct etcd_auth *a);

/* Log in the user of h (if any) before mounting. 0, or a negative errno
 * with a one-line reason in errbuf (wrong password: -EACCES). */
int etcd_auth_login(struct etcd_http *h, const char *servers, char *errbuf,
		    size_t errlen);

/* Give handle c the headers `base` plus the Authorization header of a (if
 * a is not NULL and has a token): a list of c's own, freed by
 * etcd_auth_detach. 0 or -ENOMEM. */
int etcd_auth_attach(struct etcd_auth *a, CURL *c, struct curl_slist *base);

/* Undo etcd_auth_attach: c goes back to `base`; its own list is wiped and
 * freed. Harmless on a handle that has none. */
void etcd_auth_detach(CURL *c, struct curl_slist *base);

/* etcd_http_post (same arguments and results), but an answer that the
 * token is no longer valid authenticates again once and sends the request
 * again. */
int etcd_auth_post(struct etcd_http *h, const char *api, const char *body,
		   size_t len, long long deadline, bool *uncertain,
		   const char *what, struct etcd_reply *reply, char *why,
		   size_t whylen);

/* etcd_auth_post, then the answer checked for an etcd error (logged,
 * naming `what`): 0 and *reply, or a negative errno (reply freed). */
int etcd_auth_call(struct etcd_http *h, const char *api, const char *body,
		   size_t len, long long deadline, bool *uncertain,
		   const char *what, struct etcd_reply *reply);

/* For the watch thread: if `why` (a failed stream's reason) says the token
 * is no longer valid, or is HTTP status 401, authenticate again. */
void etcd_auth_renew_if_stale(struct etcd_http *h, const char *why);

#endif
