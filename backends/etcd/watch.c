/* watch.c - see watch.h. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "auth.h"
#include "json.h"
#include "watch.h"
#include "topofs/base64.h"
#include "topofs/log.h"

#define CONNECT_MS 2000	    /* per connection attempt */
#define IDLE_EXTRA_MS 10000 /* silence past the op timeout: a dead stream */
#define POLL_MS 1000	    /* longest wait in curl before looking around */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000
#define KEEPALIVE_S 5L /* TCP keepalive idle time and probe interval */

/* How one connection attempt ended. */
enum outcome {
	OUT_DONE,      /* the transfer completed */
	OUT_STOPPED,   /* close() asked */
	OUT_IDLE,      /* no byte for too long */
	OUT_ERROR,     /* a transport or HTTP error (w->why) */
	OUT_COMPACTED, /* the start revision is gone */
	OUT_FAILED,    /* the stream said no or made no sense */
};

struct etcd_watch {
	struct etcd_http *http; /* borrowed from the store */
	char *root;
	unsigned timeout_ms;
	pthread_t thread;
	CURLM *multi;

	pthread_mutex_t lock; /* guards stop and confirmed */
	pthread_cond_t cond;
	bool stop;	/* close() asked */
	bool confirmed; /* the first stream was created */

	/* The thread's own. */
	struct etcd_stream st;
	CURL *curl;	  /* the transfer running */
	size_t ep;	  /* endpoint index (taken modulo the count) */
	bool fresh;	  /* the next attempt reads a new start revision */
	bool initial;	  /* the first start: no TOPO_CHANGE_ALL */
	bool broken;	  /* a break was logged, not yet its end */
	unsigned backoff; /* ms before the next attempt */
	long long last_byte_ms;
	struct etcd_reply reply; /* a revision request's answer */
	char why[CURL_ERROR_SIZE];
};

/* Milliseconds on the monotonic clock. */
static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- splitting a stream into objects ---- */

/* Free the splitter's buffer; see watch.h. */
void etcd_split_clear(struct etcd_splitter *sp)
{
	free(sp->buf);
	memset(sp, 0, sizeof(*sp));
}

/* Append p[0..n) to the partial object. 0, -EIO (too big) or -ENOMEM. */
static int split_keep(struct etcd_splitter *sp, const char *p, size_t n)
{
	size_t cap = sp->cap ? sp->cap : 4096;
	char *b;

	if (sp->len + n > ETCD_STREAM_MAX_OBJECT) {
		topo_err("etcd: watch: a stream object over %u bytes",
			 ETCD_STREAM_MAX_OBJECT);
		return -EIO;
	}
	while (cap < sp->len + n)
		cap *= 2;
	if (cap != sp->cap) {
		b = realloc(sp->buf, cap);
		if (!b)
			return -ENOMEM;
		sp->buf = b;
		sp->cap = cap;
	}
	memcpy(sp->buf + sp->len, p, n);
	sp->len += n;
	return 0;
}

/* Advance the scanner over one byte c inside an object; true when it ends
 * the object. */
static bool split_step(struct etcd_splitter *sp, char c)
{
	if (sp->in_str) {
		if (sp->esc)
			sp->esc = false;
		else if (c == '\\')
			sp->esc = true;
		else if (c == '"')
			sp->in_str = false;
		return false;
	}
	if (c == '"')
		sp->in_str = true;
	else if (c == '{' || c == '[')
		sp->depth++;
	else if (c == '}' || c == ']')
		return --sp->depth == 0;
	return false;
}

/* Hand over the object that ends at p[n - 1] (it began at p[0], or earlier
 * in the buffer). fn's return, -EIO or -ENOMEM. */
static int split_emit(struct etcd_splitter *sp, const char *p, size_t n,
		      etcd_object_fn fn, void *arg)
{
	int err;

	if (sp->len == 0) {
		if (n > ETCD_STREAM_MAX_OBJECT)
			return split_keep(sp, p, n); /* logs, -EIO */
		return fn(arg, p, n);
	}
	err = split_keep(sp, p, n);
	if (!err)
		err = fn(arg, sp->buf, sp->len);
	sp->len = 0;
	return err;
}

/* Feed bytes; see watch.h. */
int etcd_split_feed(struct etcd_splitter *sp, const char *p, size_t n,
		    etcd_object_fn fn, void *arg)
{
	size_t start = 0;
	int err;

	for (size_t i = 0; i < n; i++) {
		if (sp->depth == 0) {
			if (p[i] == ' ' || p[i] == '\n' || p[i] == '\r' ||
			    p[i] == '\t')
				continue;
			if (p[i] != '{') {
				topo_err("etcd: watch: malformed stream: "
					 "byte 0x%02x between objects",
					 (unsigned char)p[i]);
				return -EIO;
			}
			start = i;
		}
		if (split_step(sp, p[i])) {
			err = split_emit(sp, p + start, i + 1 - start, fn, arg);
			if (err)
				return err;
		}
	}
	if (sp->depth > 0)
		return split_keep(sp, p + start, n - start);
	return 0;
}

/* ---- one stream's responses ---- */

/* Reset for a new stream; see watch.h. */
void etcd_stream_reset(struct etcd_stream *st)
{
	etcd_split_clear(&st->split);
	st->created = false;
	st->verdict = ETCD_STREAM_OK;
	st->reason[0] = '\0';
}

/* Restart at rev with TOPO_CHANGE_ALL; see watch.h. */
void etcd_stream_restart(struct etcd_stream *st, int64_t rev)
{
	st->last_revision = rev;
	st->fn(st->arg, TOPO_CHANGE_ALL, "", -1);
}

/* End the stream with verdict v, for the reason given (printf). */
static void stream_end(struct etcd_stream *st, enum etcd_verdict v,
		       const char *f, ...)
    __attribute__((format(printf, 3, 4)));
static void stream_end(struct etcd_stream *st, enum etcd_verdict v,
		       const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(st->reason, sizeof(st->reason), f, ap);
	va_end(ap);
	st->verdict = v;
}

/* Act on one parsed response: deliver, note progress, judge. */
static void stream_take(struct etcd_stream *st, const struct etcd_watch_resp *r)
{
	/* etcd refuses a watch (permission denied, invalid token) with a
	 * response that is both created and canceled: no watch was made. */
	if (r->created && !r->canceled)
		st->created = true;
	for (size_t i = 0; i < r->count; i++)
		st->fn(st->arg,
		       r->events[i].deleted ? TOPO_CHANGE_DELETED
					    : TOPO_CHANGE_NODE,
		       r->events[i].path, r->events[i].revision);
	/* Event responses: their last event (the header may be ahead while
	 * etcd catches up). Progress notices: the header. */
	if (r->max_revision > st->last_revision)
		st->last_revision = r->max_revision;
	else if (!r->max_revision && !r->created && !r->canceled &&
		 r->revision > st->last_revision)
		st->last_revision = r->revision;
	if (r->compact_revision > 0)
		stream_end(st, ETCD_STREAM_COMPACTED,
			   "revision %" PRId64 " is compacted (up to %" PRId64
			   ")",
			   st->last_revision + 1, r->compact_revision);
	else if (r->canceled)
		stream_end(st, ETCD_STREAM_FAILED, "canceled by etcd: %s",
			   r->reason ? r->reason : "no reason given");
}

/* Parse and take one object of the stream (an etcd_object_fn). */
static int stream_object(void *arg, const char *json, size_t len)
{
	struct etcd_stream *st = arg;
	struct etcd_watch_resp r;
	int err = etcd_parse_watch(json, len, st->root, &r);

	if (err == -EAGAIN)
		stream_end(st, ETCD_STREAM_COMPACTED, "%s",
			   r.reason ? r.reason : "revision compacted");
	else if (err)
		stream_end(st, ETCD_STREAM_FAILED, "%s",
			   r.reason ? r.reason : "malformed data");
	else
		stream_take(st, &r);
	etcd_watch_resp_clear(&r);
	return st->verdict != ETCD_STREAM_OK;
}

/* Feed bytes; see watch.h. */
enum etcd_verdict etcd_stream_feed(struct etcd_stream *st, const char *p,
				   size_t n)
{
	int err;

	if (st->verdict != ETCD_STREAM_OK)
		return st->verdict;
	err = etcd_split_feed(&st->split, p, n, stream_object, st);
	if (err && st->verdict == ETCD_STREAM_OK)
		stream_end(st, ETCD_STREAM_FAILED, "malformed data");
	return st->verdict;
}

/* ---- the thread ---- */

/* Whether close() asked to stop. */
static bool stopping(struct etcd_watch *w)
{
	bool stop;

	pthread_mutex_lock(&w->lock);
	stop = w->stop;
	pthread_mutex_unlock(&w->lock);
	return stop;
}

/* Sleep ms milliseconds, or less if close() asks. */
static void nap(struct etcd_watch *w, unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&w->lock);
	while (!w->stop &&
	       pthread_cond_timedwait(&w->cond, &w->lock, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&w->lock);
}

/* The name of the current endpoint. */
static const char *ep_name(struct etcd_watch *w)
{
	return etcd_http_name(w->http, w->ep);
}

/* How the finished transfer on w->multi ended (curl's code). */
static CURLcode transfer_result(struct etcd_watch *w)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(w->multi, &left)))
		if (m->msg == CURLMSG_DONE)
			return m->data.result;
	return CURLE_RECV_ERROR;
}

/* Run w->curl until it ends, close() asks, or (with idle) no byte came for
 * the op timeout plus IDLE_EXTRA_MS. */
static enum outcome run(struct etcd_watch *w, bool idle)
{
	long long idle_ms = (long long)w->timeout_ms + IDLE_EXTRA_MS;
	enum outcome out = OUT_ERROR;
	int running = 1;
	CURLcode rc;

	w->why[0] = '\0';
	w->last_byte_ms = now_ms();
	if (curl_multi_add_handle(w->multi, w->curl) != CURLM_OK) {
		snprintf(w->why, sizeof(w->why), "cannot start a transfer");
		return OUT_ERROR;
	}
	while (running) {
		if (stopping(w)) {
			out = OUT_STOPPED;
			goto out;
		}
		if (idle && now_ms() - w->last_byte_ms > idle_ms) {
			snprintf(w->why, sizeof(w->why),
				 "nothing received for %lld ms", idle_ms);
			out = OUT_IDLE;
			goto out;
		}
		if (curl_multi_perform(w->multi, &running) != CURLM_OK)
			break;
		if (running)
			curl_multi_poll(w->multi, NULL, 0, POLL_MS, NULL);
	}
	rc = transfer_result(w);
	if (rc == CURLE_OK)
		out = OUT_DONE;
	else if (!w->why[0])
		snprintf(w->why, sizeof(w->why), "%s", curl_easy_strerror(rc));
out:
	curl_multi_remove_handle(w->multi, w->curl);
	return out;
}

/* Set up w->curl: a POST of body to api on the current endpoint, bytes to
 * wf. 0 or -ENOMEM. */
static int prepare(struct etcd_watch *w, const char *api, const char *body,
		   curl_write_callback wf)
{
	w->curl = etcd_http_handle(w->http, w->ep, api);
	if (!w->curl)
		return -ENOMEM;
	curl_easy_setopt(w->curl, CURLOPT_COPYPOSTFIELDS, body);
	curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, wf);
	curl_easy_setopt(w->curl, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(w->curl, CURLOPT_ERRORBUFFER, w->why);
	curl_easy_setopt(w->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_MS);
	curl_easy_setopt(w->curl, CURLOPT_TCP_KEEPIDLE, KEEPALIVE_S);
	curl_easy_setopt(w->curl, CURLOPT_TCP_KEEPINTVL, KEEPALIVE_S);
	return 0;
}

/* Close w->curl. */
static void finish(struct etcd_watch *w)
{
	etcd_auth_detach(w->curl, etcd_http_headers(w->http));
	curl_easy_cleanup(w->curl);
	w->curl = NULL;
}

/* Append received bytes to w->reply (curl write callback). */
static size_t on_reply(char *data, size_t size, size_t nmemb, void *arg)
{
	struct etcd_watch *w = arg;
	size_t n = size * nmemb;
	char *b = realloc(w->reply.body, w->reply.len + n + 1);

	if (!b)
		return 0;
	memcpy(b + w->reply.len, data, n);
	w->reply.len += n;
	b[w->reply.len] = '\0';
	w->reply.body = b;
	return n;
}

/* The store's current revision, from a range on the key "ROOT/" (inside
 * the root's prefix, which is all a user's role may allow). */
static enum outcome fetch_revision(struct etcd_watch *w, int64_t *rev)
{
	char *k64 = NULL, *body = NULL, *key = NULL;
	enum outcome out = OUT_ERROR;

	if (asprintf(&key, "%s/", w->root) < 0)
		key = NULL;
	if (!key || topo_b64_encode(key, strlen(key), &k64) ||
	    asprintf(&body, "{\"key\":\"%s\",\"keys_only\":true}", k64) < 0)
		body = NULL;
	if (!body || prepare(w, "/v3/kv/range", body, on_reply)) {
		snprintf(w->why, sizeof(w->why), "out of memory");
		goto done;
	}
	curl_easy_setopt(w->curl, CURLOPT_TIMEOUT_MS, (long)w->timeout_ms);
	out = run(w, false);
	if (out == OUT_DONE) {
		curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE,
				  &w->reply.status);
		if (etcd_parse_reply_error(w->reply.status, w->reply.body,
					   w->reply.len, "watch") ||
		    etcd_parse_revision(w->reply.body, w->reply.len, "watch",
					rev)) {
			snprintf(w->why, sizeof(w->why),
				 "no usable revision (HTTP status %ld)",
				 w->reply.status);
			out = OUT_FAILED;
		}
	}
done:
	if (w->curl)
		finish(w);
	etcd_reply_free(&w->reply);
	free(body);
	free(k64);
	free(key);
	return out;
}

/* The stream began: wake watch(), log the end of a break. */
static void on_created(struct etcd_watch *w)
{
	pthread_mutex_lock(&w->lock);
	w->confirmed = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	w->backoff = BACKOFF_MIN_MS;
	if (w->broken)
		topo_info("etcd: watch stream resumed on %s from revision "
			  "%" PRId64,
			  ep_name(w), w->st.last_revision + 1);
	w->broken = false;
}

/* Feed received stream bytes to the stream (curl write callback). */
static size_t on_stream(char *data, size_t size, size_t nmemb, void *arg)
{
	struct etcd_watch *w = arg;
	size_t n = size * nmemb;
	bool was = w->st.created;

	w->last_byte_ms = now_ms();
	if (etcd_stream_feed(&w->st, data, n) != ETCD_STREAM_OK)
		return 0; /* CURLE_WRITE_ERROR: the verdict says why */
	if (!was && w->st.created)
		on_created(w);
	return n;
}

/* The create request from w->st.last_revision + 1, newly allocated; NULL if
 * out of memory. */
static char *create_request(struct etcd_watch *w)
{
	char *sub = NULL, *end = NULL, *k64 = NULL, *e64 = NULL, *s = NULL;
	char rev[24];
	size_t endlen;
	json_t *req = NULL;

	snprintf(rev, sizeof(rev), "%" PRId64, w->st.last_revision + 1);
	if (asprintf(&sub, "%s/", w->root) < 0) {
		sub = NULL;
		goto out;
	}
	if (etcd_prefix_end(sub, strlen(sub), &end, &endlen) ||
	    topo_b64_encode(sub, strlen(sub), &k64) ||
	    topo_b64_encode(end, endlen, &e64))
		goto out;
	req = json_pack("{s:{s:s,s:s,s:s,s:b}}", "create_request", "key", k64,
			"range_end", e64, "start_revision", rev,
			"progress_notify", 1);
	if (req)
		s = json_dumps(req, JSON_COMPACT);
out:
	json_decref(req);
	free(e64);
	free(k64);
	free(end);
	free(sub);
	return s;
}

/* One stream from w->st.last_revision + 1, until it ends. */
static enum outcome stream(struct etcd_watch *w)
{
	char *body = create_request(w);
	enum outcome out;
	long status = 0;

	if (!body || prepare(w, "/v3/watch", body, on_stream)) {
		free(body);
		snprintf(w->why, sizeof(w->why), "out of memory");
		return OUT_ERROR;
	}
	free(body);
	etcd_stream_reset(&w->st);
	out = run(w, true);
	curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &status);
	if (w->st.verdict == ETCD_STREAM_COMPACTED)
		out = OUT_COMPACTED;
	else if (w->st.verdict == ETCD_STREAM_FAILED)
		out = OUT_FAILED;
	if (out == OUT_DONE)
		snprintf(w->why, sizeof(w->why), "the server ended the stream");
	if (out == OUT_FAILED || out == OUT_COMPACTED)
		snprintf(w->why, sizeof(w->why), "%s", w->st.reason);
	if ((out == OUT_FAILED || out == OUT_DONE) && status != 200) {
		size_t n = strlen(w->why);

		snprintf(w->why + n, sizeof(w->why) - n, " (HTTP status %ld)",
			 status);
	}
	finish(w);
	etcd_split_clear(&w->st.split);
	return out == OUT_DONE ? OUT_ERROR : out;
}

/* One attempt: a start revision if needed, then a stream. */
static enum outcome attempt(struct etcd_watch *w)
{
	enum outcome out;
	int64_t rev;

	w->st.created = false;
	if (w->fresh) {
		out = fetch_revision(w, &rev);
		if (out != OUT_DONE)
			return out;
		if (w->initial)
			w->st.last_revision = rev;
		else
			etcd_stream_restart(&w->st, rev);
		w->fresh = false;
		w->initial = false;
	}
	return stream(w);
}

/* After an attempt: log, choose the endpoint, wait the backoff. */
static void after(struct etcd_watch *w, enum outcome out)
{
	if (out == OUT_COMPACTED) {
		topo_warn("etcd: watch: %s; starting afresh from the current "
			  "revision, all cached data is stale",
			  w->why);
		w->fresh = true;
	} else if (out == OUT_IDLE && w->st.created) {
		/* An idle stream is usually just quiet: only if the next
		 * attempt fails is this a break worth a line. */
		topo_debug("etcd: watch on %s: %s; reconnecting", ep_name(w),
			   w->why);
	} else {
		if (!w->broken)
			topo_warn("etcd: watch stream on %s broke: %s; "
				  "reconnecting",
				  ep_name(w), w->why);
		else
			topo_debug("etcd: watch on %s: %s", ep_name(w), w->why);
		w->broken = true;
		w->ep = (w->ep + 1) % etcd_http_count(w->http);
		etcd_auth_renew_if_stale(w->http, w->why);
	}
	nap(w, w->backoff);
	if (!w->st.created && w->backoff < BACKOFF_MAX_MS)
		w->backoff = w->backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
							     : w->backoff * 2;
}

/* The watch thread: attempt after attempt until close(). */
static void *watch_main(void *arg)
{
	struct etcd_watch *w = arg;

	while (!stopping(w)) {
		enum outcome out = attempt(w);

		if (out == OUT_STOPPED)
			break;
		after(w, out);
	}
	return NULL;
}

/* ---- start and stop ---- */

/* Free w and what it owns (the thread is not running). */
static void watch_free(struct etcd_watch *w)
{
	if (w->multi)
		curl_multi_cleanup(w->multi);
	etcd_split_clear(&w->st.split);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w->root);
	free(w);
}

/* A new watch, not running. NULL if out of memory. */
static struct etcd_watch *watch_new(struct etcd_http *h, const char *root,
				    unsigned timeout_ms)
{
	struct etcd_watch *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;

	if (!w)
		return NULL;
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	w->http = h;
	w->timeout_ms = timeout_ms ? timeout_ms : 10000;
	w->ep = etcd_http_current(h);
	w->fresh = w->initial = true;
	w->backoff = BACKOFF_MIN_MS;
	w->root = strdup(root);
	w->multi = curl_multi_init();
	if (!w->root || !w->multi) {
		watch_free(w);
		return NULL;
	}
	w->st.root = w->root;
	return w;
}

/* Wait until the first stream is confirmed or timeout_ms passed. */
static bool wait_confirmed(struct etcd_watch *w)
{
	long long deadline = now_ms() + w->timeout_ms;
	struct timespec ts = {.tv_sec = deadline / 1000,
			      .tv_nsec = (deadline % 1000) * 1000000};
	bool ok;

	pthread_mutex_lock(&w->lock);
	while (!w->confirmed &&
	       pthread_cond_timedwait(&w->cond, &w->lock, &ts) != ETIMEDOUT)
		;
	ok = w->confirmed;
	pthread_mutex_unlock(&w->lock);
	return ok;
}

/* Start; see watch.h. */
int etcd_watch_start(struct etcd_http *h, const char *root, unsigned timeout_ms,
		     topo_change_fn fn, void *arg, struct etcd_watch **out)
{
	struct etcd_watch *w = watch_new(h, root, timeout_ms);

	if (!w)
		return -ENOMEM;
	w->st.fn = fn;
	w->st.arg = arg;
	if (pthread_create(&w->thread, NULL, watch_main, w)) {
		watch_free(w);
		return -ENOMEM;
	}
	if (!wait_confirmed(w)) {
		topo_err("etcd: watch: no stream on %s within %u ms",
			 *root ? root : "/", w->timeout_ms);
		etcd_watch_stop(w);
		return -EIO;
	}
	*out = w;
	return 0;
}

/* Stop; see watch.h. */
void etcd_watch_stop(struct etcd_watch *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	curl_multi_wakeup(w->multi);
	pthread_join(w->thread, NULL);
	watch_free(w);
}
