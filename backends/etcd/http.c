/* http.c - see http.h. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "auth.h"
#include "http.h"
#include "json.h"
#include "topofs/log.h"

#define POOL_MAX 32		/* idle handles kept; more are closed */
#define CONNECT_TIMEOUT_MS 2000 /* per endpoint, within the request's time */
#define BACKOFF_MIN_MS 50	/* first pause after a "try again" answer */
#define BACKOFF_MAX_MS 1000	/* longest pause */

struct endpoint {
	char *name; /* "host:port" as given, for messages */
	char *base; /* "http://host:port" */
};

struct etcd_http {
	struct endpoint *eps;
	size_t neps;
	atomic_size_t current; /* the endpoint that answered last */
	unsigned timeout_ms;
	char *tls_cert, *tls_key, *tls_ca;
	struct curl_slist *headers; /* read-only once built */
	struct etcd_auth *auth;	    /* the etcd user, or NULL */

	pthread_mutex_t lock; /* guards the pool */
	CURL *pool[POOL_MAX];
	size_t npool;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

/* curl_global_init, once per process (never undone: not repeatable). */
static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_ALL);
}

/* Free the body of a reply. */
void etcd_reply_free(struct etcd_reply *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* Whether s[0..n) is a port number 1..65535. */
static bool valid_port(const char *s, size_t n)
{
	unsigned long v = 0;

	if (n == 0 || n > 5)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	return v >= 1 && v <= 65535;
}

/* Whether s[0..n) is "host:port" or "[v6]:port", host without '/', '@',
 * ':' or spaces. */
static bool valid_hostport(const char *s, size_t n)
{
	const char *colon, *end = s + n;

	if (n > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', n);

		if (!close || close == s + 1 || close + 1 >= end ||
		    close[1] != ':')
			return false;
		colon = close + 1;
	} else {
		colon = memrchr(s, ':', n);
		if (!colon || colon == s)
			return false;
		for (const char *p = s; p < colon; p++)
			if (*p == '/' || *p == '@' || *p == ':' || *p <= ' ')
				return false;
	}
	return valid_port(colon + 1, (size_t)(end - colon - 1));
}

/* Fill ep from one entry of the server list ("[scheme://]host:port[/]").
 * 0, -EINVAL or -ENOMEM. */
static int parse_endpoint(const char *s, size_t n, bool tls,
			  struct endpoint *ep)
{
	const char *scheme = tls ? "https" : "http";
	const char *hp = s;
	size_t hplen = n;

	if (n >= 7 && strncmp(s, "http://", 7) == 0) {
		scheme = "http";
		hp += 7, hplen -= 7;
	} else if (n >= 8 && strncmp(s, "https://", 8) == 0) {
		scheme = "https";
		hp += 8, hplen -= 8;
	}
	if (hplen > 0 && hp[hplen - 1] == '/')
		hplen--;
	if (!valid_hostport(hp, hplen))
		return -EINVAL;
	ep->name = strndup(hp, hplen);
	if (!ep->name ||
	    asprintf(&ep->base, "%s://%.*s", scheme, (int)hplen, hp) < 0) {
		free(ep->name);
		ep->name = NULL;
		ep->base = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Parse the comma-separated server list into h->eps. 0, -EINVAL (reason in
 * errbuf) or -ENOMEM. */
static int parse_servers(struct etcd_http *h, const char *servers, bool tls,
			 char *errbuf, size_t errlen)
{
	const char *p = servers ? servers : "";
	size_t n = 1;
	int err;

	for (const char *c = p; *c; c++)
		n += *c == ',';
	h->eps = calloc(n, sizeof(*h->eps));
	if (!h->eps)
		return -ENOMEM;
	for (;;) {
		size_t len = strcspn(p, ",");

		err = parse_endpoint(p, len, tls, &h->eps[h->neps]);
		if (err == -EINVAL)
			snprintf(errbuf, errlen, "bad server address '%.*s'",
				 (int)len, p);
		if (err)
			return err;
		h->neps++;
		if (!p[len])
			return 0;
		p += len + 1;
	}
}

/* Copy an optional string. 0 or -ENOMEM. */
static int dup_opt(const char *s, char **out)
{
	*out = NULL;
	if (!s || !*s)
		return 0;
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

/* Open; see http.h. */
int etcd_http_open(const struct topo_conf *conf, struct etcd_http **out,
		   char *errbuf, size_t errlen)
{
	struct etcd_http *h;
	struct curl_slist *l;
	bool tls;
	int err;

	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		snprintf(errbuf, errlen, "cannot initialise libcurl: %s",
			 curl_easy_strerror(curl_init_rc));
		return -EIO;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	pthread_mutex_init(&h->lock, NULL);
	h->timeout_ms = conf->timeout_ms ? conf->timeout_ms : 10000;
	tls = conf->tls_cert || conf->tls_key || conf->tls_ca;
	err = parse_servers(h, conf->servers, tls, errbuf, errlen);
	if (err)
		goto fail;
	err = -ENOMEM;
	if (dup_opt(conf->tls_cert, &h->tls_cert) ||
	    dup_opt(conf->tls_key, &h->tls_key) ||
	    dup_opt(conf->tls_ca, &h->tls_ca))
		goto fail;
	err = etcd_auth_new(conf, &h->auth, errbuf, errlen);
	if (err)
		goto fail;
	err = -ENOMEM;
	l = curl_slist_append(NULL, "Content-Type: application/json");
	if (!l)
		goto fail;
	h->headers = l;
	/* No "Expect: 100-continue" round trip for large values. */
	if (!curl_slist_append(l, "Expect:"))
		goto fail;
	*out = h;
	return 0;
fail:
	if (err == -ENOMEM)
		snprintf(errbuf, errlen, "out of memory");
	etcd_http_close(h);
	return err;
}

/* Close; see http.h. */
void etcd_http_close(struct etcd_http *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->npool; i++)
		curl_easy_cleanup(h->pool[i]);
	for (size_t i = 0; i < h->neps; i++) {
		free(h->eps[i].name);
		free(h->eps[i].base);
	}
	free(h->eps);
	curl_slist_free_all(h->headers);
	free(h->tls_cert);
	free(h->tls_key);
	free(h->tls_ca);
	etcd_auth_free(h->auth);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

int etcd_reply_append(struct etcd_reply *r, const char *data, size_t n,
		      size_t max)
{
	if (r->len + n > max)
		return -1;
	char *b = realloc(r->body, r->len + n + 1);
	if (!b)
		return -1;
	memcpy(b + r->len, data, n);
	r->len += n;
	b[r->len] = '\0';
	r->body = b;
	return 0;
}

/* Append received bytes to the reply (curl write callback). */
static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	size_t n = size * nmemb;
	/* 0: curl fails the transfer with CURLE_WRITE_ERROR */
	return etcd_reply_append(arg, data, n, SIZE_MAX) ? 0 : n;
}

/* A fresh handle with the options every request shares; NULL if out of
 * memory. */
static CURL *new_handle(const struct etcd_http *h)
{
	CURL *c = curl_easy_init();

	if (!c)
		return NULL;
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	/* Topology servers are internal: never go through a proxy. */
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	if (h->tls_cert)
		curl_easy_setopt(c, CURLOPT_SSLCERT, h->tls_cert);
	if (h->tls_key)
		curl_easy_setopt(c, CURLOPT_SSLKEY, h->tls_key);
	if (h->tls_ca)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->tls_ca);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	return c;
}

/* Borrow a handle (an idle one with its live connection if any). */
static CURL *borrow(struct etcd_http *h)
{
	CURL *c = NULL;

	pthread_mutex_lock(&h->lock);
	if (h->npool > 0)
		c = h->pool[--h->npool];
	pthread_mutex_unlock(&h->lock);
	if (!c)
		c = new_handle(h);
	if (c && etcd_auth_attach(h->auth, c, h->headers)) {
		curl_easy_cleanup(c);
		c = NULL;
	}
	return c;
}

/* Give a handle back to the pool, or close it if the pool is full. */
static void give_back(struct etcd_http *h, CURL *c)
{
	etcd_auth_detach(c, h->headers);
	pthread_mutex_lock(&h->lock);
	if (h->npool < POOL_MAX) {
		h->pool[h->npool++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&h->lock);
	if (c)
		curl_easy_cleanup(c);
}

/* Milliseconds on the monotonic clock. */
static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One attempt against endpoint ep within ms milliseconds. Returns curl's
 * code. */
/* Perform the request set up on c within ms milliseconds, the answer into
 * reply (its HTTP status when curl succeeded), curl's message in detail.
 * Returns curl's code. */
static CURLcode perform(CURL *c, long ms, struct etcd_reply *reply,
			char *detail)
{
	CURLcode rc;

	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 ms < CONNECT_TIMEOUT_MS ? ms : CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, reply);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, detail);
	rc = curl_easy_perform(c);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply->status);
	return rc;
}

static CURLcode attempt(CURL *c, const struct endpoint *ep, const char *api,
			const char *body, size_t len, long ms,
			struct etcd_reply *reply, char *detail)
{
	char url[512];

	snprintf(url, sizeof(url), "%s%s", ep->base, api);
	etcd_reply_free(reply);
	detail[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	return perform(c, ms, reply, detail);
}

/* Remember the endpoint that answered (the one the next request tries
 * first); log a switch once. */
static void set_current(struct etcd_http *h, size_t from, size_t to)
{
	if (from != to &&
	    atomic_compare_exchange_strong(&h->current, &from, to))
		topo_warn("etcd: %s unavailable, now using %s",
			  h->eps[from].name, h->eps[to].name);
}

/* Whether a failed attempt reached a member that is up but had not
 * answered yet: the request went out and the attempt's time ran out. Such a
 * member is not down: a follower holds a request that it forwarded to a
 * leader that has just died until etcd's own request timeout (7 s by
 * default), long after a new leader was elected (1-2 s). A member that is
 * gone answers nothing at all: refused, reset, nothing received, or no
 * connection within the time. */
static bool member_busy(CURL *c, CURLcode rc)
{
	long sent = 0;

	if (rc != CURLE_OPERATION_TIMEDOUT)
		return false;
	curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &sent);
	return sent > 0;
}

/* Log an attempt on endpoint idx that curl failed with rc and return the
 * new count of endpoints that failed in a row: 0 after a member that is
 * only busy (member_busy), so that the loop goes on trying, with a fresh
 * attempt on the next member, until the deadline; one more otherwise. */
static size_t count_failure(const struct etcd_http *h, CURL *c, size_t idx,
			    CURLcode rc, const char *detail, const char *what,
			    size_t failed)
{
	bool busy = member_busy(c, rc);

	topo_debug("etcd: %s: %s: %s%s", what ? what : "probe",
		   h->eps[idx].name,
		   detail[0] ? detail : curl_easy_strerror(rc),
		   busy ? "; no answer yet, trying the next member" : "");
	return busy ? 0 : failed + 1;
}

/* The time for one attempt when `left` ms remain and `untried` endpoints
 * have not failed in a row: a share each, so that a member that hangs
 * leaves time for the others. Never 0 (no timeout at all to curl). */
static long attempt_ms(long long left, size_t untried)
{
	long long ms = untried > 1 ? left / (long long)untried : left;

	return ms < 1 ? 1 : (long)ms;
}

/* Sleep before attempt number `n` after a "try again" answer (50 ms,
 * doubling up to 1 s), but not past the deadline. */
static void back_off(unsigned n, long long deadline)
{
	long long ms = BACKOFF_MIN_MS << (n < 5 ? n : 5), left;
	struct timespec ts;

	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	left = deadline - now_ms();
	if (ms > left)
		ms = left;
	if (ms <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000;
	nanosleep(&ts, NULL);
}

/* The deadline of a request made now; see http.h. */
long long etcd_http_deadline(const struct etcd_http *h)
{
	return now_ms() + h->timeout_ms;
}

/* Report that the last attempt, on endpoint idx, failed with rc: the
 * cause in why, one log line (see http.h). Returns -EIO. */
static int unreachable(const struct etcd_http *h, size_t idx, CURLcode rc,
		       const char *detail, const char *what, char *why,
		       size_t whylen)
{
	snprintf(why, whylen, "%s: %s", h->eps[idx].name,
		 curl_easy_strerror(rc));
	topo_log(what ? LOG_ERR : LOG_DEBUG, "etcd: %s: cannot reach %s: %s",
		 what ? what : "probe", h->eps[idx].name,
		 detail[0] ? detail : curl_easy_strerror(rc));
	return -EIO;
}

/* POST with failover and retries; see http.h. */
int etcd_http_post(struct etcd_http *h, const char *api, const char *body,
		   size_t len, long long deadline, bool *uncertain,
		   const char *what, struct etcd_reply *reply, char *why,
		   size_t whylen)
{
	size_t start = atomic_load(&h->current), idx = start, failed = 0;
	char detail[CURL_ERROR_SIZE];
	CURLcode rc = CURLE_OPERATION_TIMEDOUT;
	CURL *c = borrow(h);
	unsigned tries = 0, pauses = 0;

	memset(reply, 0, sizeof(*reply));
	detail[0] = '\0';
	if (uncertain)
		*uncertain = false;
	if (!c) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	/* Every endpoint failing in a row without an answer: the store is
	 * down, fail now. An answer "try again" (an election), or a member
	 * that took the request but has not answered in its share of the
	 * time (count_failure): go on until the deadline. */
	while (failed < h->neps) {
		long long left = deadline - now_ms();

		if (left <= 0)
			break;
		idx = (start + tries++) % h->neps;
		rc = attempt(c, &h->eps[idx], api, body, len,
			     attempt_ms(left, h->neps - failed), reply, detail);
		if (rc == CURLE_OK &&
		    !etcd_reply_retryable(reply->status, reply->body,
					  reply->len)) {
			give_back(h, c);
			set_current(h, start, idx);
			return 0;
		}
		/* A write that failed in any way may have been applied:
		 * even a refused connection, as curl silently re-sends a
		 * request whose reused connection died on a fresh one, and
		 * reports only how that one failed. */
		if (uncertain)
			*uncertain = true;
		if (rc != CURLE_OK) {
			failed =
			    count_failure(h, c, idx, rc, detail, what, failed);
			continue;
		}
		topo_debug("etcd: %s: %s answers HTTP %ld: %.*s; trying again",
			   what ? what : "probe", h->eps[idx].name,
			   reply->status,
			   (int)(reply->len < 200 ? reply->len : 200),
			   reply->body ? reply->body : "");
		failed = 0;
		back_off(pauses++, deadline);
	}
	give_back(h, c);
	if (rc == CURLE_OK)
		return 0; /* "try again" to the end: the caller maps it */
	etcd_reply_free(reply);
	return unreachable(h, idx, rc, detail, what, why, whylen);
}

/* The root key; see http.h. */
int etcd_root_key(const char *root, char **out, char *errbuf, size_t errlen)
{
	size_t n = root ? strlen(root) : 0;

	if (n == 0) {
		snprintf(errbuf, errlen, "empty etcd root");
		return -EINVAL;
	}
	while (n > 0 && root[n - 1] == '/')
		n--;
	*out = strndup(root, n);
	return *out ? 0 : -ENOMEM;
}

/* The number of endpoints. */
size_t etcd_http_count(const struct etcd_http *h)
{
	return h->neps;
}

/* The endpoint that answered last. */
size_t etcd_http_current(struct etcd_http *h)
{
	return atomic_load(&h->current);
}

/* The "host:port" of endpoint i. */
const char *etcd_http_name(const struct etcd_http *h, size_t i)
{
	return h->eps[i % h->neps].name;
}

/* A stream handle; see http.h. */
CURL *etcd_http_handle(const struct etcd_http *h, size_t i, const char *api)
{
	char url[512];
	CURL *c = new_handle(h);

	if (!c)
		return NULL;
	if (etcd_auth_attach(h->auth, c, h->headers)) {
		curl_easy_cleanup(c);
		return NULL;
	}
	snprintf(url, sizeof(url), "%s%s", h->eps[i % h->neps].base, api);
	curl_easy_setopt(c, CURLOPT_URL, url);
	return c;
}

/* The etcd user, or NULL. */
struct etcd_auth *etcd_http_auth(const struct etcd_http *h)
{
	return h->auth;
}

/* The shared headers. */
struct curl_slist *etcd_http_headers(const struct etcd_http *h)
{
	return h->headers;
}

/* ---- requests of any method (etcd's v2 keys API) ---- */

/* Keep the X-Etcd-Index header of an answer (curl header callback). */
static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	static const char name[] = "x-etcd-index:";
	int64_t *index = arg;
	size_t n = size * nmemb, len = sizeof(name) - 1;

	if (n > len && strncasecmp(data, name, len) == 0) {
		char buf[32];
		size_t vlen =
		    n - len < sizeof(buf) - 1 ? n - len : sizeof(buf) - 1;

		memcpy(buf, data + len, vlen);
		buf[vlen] = '\0';
		*index = strtoll(buf, NULL, 10);
	}
	return n;
}

/* Whether a failed attempt certainly never reached the server. */
static bool never_sent(CURLcode rc, bool sent)
{
	return rc == CURLE_COULDNT_CONNECT ||
	       rc == CURLE_COULDNT_RESOLVE_HOST ||
	       (rc == CURLE_OPERATION_TIMEDOUT && !sent);
}

/* One attempt of rq against endpoint ep within ms milliseconds, on a
 * pooled handle that is left as etcd_http_post expects it. */
static CURLcode
attempt_req(CURL *c, const struct etcd_http *h, const struct endpoint *ep,
	    const struct etcd_request *rq, struct curl_slist *headers, long ms,
	    struct etcd_reply *reply, int64_t *index, bool *sent, char *detail)
{
	char *url;
	long reqsize = 0;
	CURLcode rc;

	if (asprintf(&url, "%s%s", ep->base, rq->api) < 0)
		return CURLE_OUT_OF_MEMORY;
	etcd_reply_free(reply);
	*index = -1;
	detail[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	if (strcmp(rq->method, "GET") == 0) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS,
				 rq->form ? rq->form : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(rq->form ? rq->len : 0));
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
	}
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, index);
	rc = perform(c, ms, reply, detail);
	curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &reqsize);
	*sent = reqsize > 0;
	/* Back to what every pooled handle is: a JSON POST. */
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, NULL);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, NULL);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, NULL);
	free(url);
	return rc;
}

/* A request of any method; see http.h. */
int etcd_http_request(struct etcd_http *h, const struct etcd_request *rq,
		      const char *what, struct etcd_reply *reply,
		      int64_t *index, char *why, size_t whylen)
{
	long long deadline = now_ms() + h->timeout_ms;
	size_t start = atomic_load(&h->current), idx = start;
	char detail[CURL_ERROR_SIZE];
	CURLcode rc = CURLE_OPERATION_TIMEDOUT;
	struct curl_slist *headers = NULL, *l;
	CURL *c = borrow(h);

	memset(reply, 0, sizeof(*reply));
	detail[0] = '\0';
	l = curl_slist_append(NULL, "Content-Type: "
				    "application/x-www-form-urlencoded");
	if (l)
		headers = l;
	if (!c || !l || !curl_slist_append(l, "Expect:")) {
		if (c)
			give_back(h, c);
		curl_slist_free_all(headers);
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < h->neps; i++) {
		long long left = deadline - now_ms();
		bool sent = false;

		if (left <= 0)
			break;
		if (rq->idempotent)
			left /= (long long)(h->neps - i);
		if (left < 1)
			left = 1;
		idx = (start + i) % h->neps;
		rc = attempt_req(c, h, &h->eps[idx], rq, headers, (long)left,
				 reply, index, &sent, detail);
		if (rc == CURLE_OK) {
			give_back(h, c);
			curl_slist_free_all(headers);
			set_current(h, start, idx);
			return 0;
		}
		topo_debug("etcd: %s: %s: %s", what ? what : "probe",
			   h->eps[idx].name,
			   detail[0] ? detail : curl_easy_strerror(rc));
		if (!never_sent(rc, sent) && !rq->idempotent)
			break;
	}
	give_back(h, c);
	curl_slist_free_all(headers);
	etcd_reply_free(reply);
	snprintf(why, whylen, "%s: %s", h->eps[idx].name,
		 curl_easy_strerror(rc));
	topo_log(what ? LOG_ERR : LOG_DEBUG, "etcd: %s: cannot reach %s: %s",
		 what ? what : "probe", h->eps[idx].name,
		 detail[0] ? detail : curl_easy_strerror(rc));
	return rc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EIO;
}

/* The "scheme://host:port" of endpoint i. */
const char *etcd_http_base(const struct etcd_http *h, size_t i)
{
	return h->eps[i % h->neps].base;
}
