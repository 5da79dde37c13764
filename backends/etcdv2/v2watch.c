/*
 * v2watch.c - change notices from etcd's v2 keys API: a long poll
 * GET /v2/keys/ROOT?wait=true&recursive=true&waitIndex=N, one change per
 * answer, from a thread of its own; see etcdv2.h.
 *
 * Resuming: the next poll waits from the change's index + 1, so nothing
 * is lost across polls, reconnects or a switch to another member. etcd
 * keeps the last 1000 changes only: a wait index older than that is
 * answered with error 401 "event index cleared", and then everything may
 * have changed (TOPO_CHANGE_ALL) and the poll goes on from the index that
 * answer names. A poll that ends without a change (it is bounded, so that
 * a dead connection is noticed) resumes after the index its answer's
 * header named when it started: no change below the root happened up to
 * then, or the poll would have answered with it. That keeps the wait index
 * recent while the root is quiet and others write elsewhere.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "etcdv2.h"
#include "v2json.h"
#include "topofs/log.h"

#define POLL_MS 30000	/* longest poll before asking again */
#define CONNECT_MS 2000 /* per connection attempt */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000
#define KEEPALIVE_S 5L	      /* TCP keepalive idle time and probe interval */
#define MAX_ANSWER (8u << 20) /* one change: a value and its previous one */

struct etcdv2_watch {
	struct etcd_http *http; /* borrowed from the store */
	char *root;
	topo_change_fn fn;
	void *arg;
	pthread_t thread;
	atomic_bool stop;

	/* The thread's own. */
	CURL *curl;    /* kept across polls: one connection */
	size_t ep;     /* endpoint index (taken modulo the count) */
	int64_t index; /* the next wait index */
	int64_t hdr;   /* the running poll's X-Etcd-Index, -1: none yet */
	bool broken;   /* a break was logged, not yet its end */
	unsigned backoff;
	struct etcd_reply reply;
};

/* curl's progress callback: abort the transfer when close() asks. */
static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c,
		       curl_off_t d)
{
	struct etcdv2_watch *w = arg;

	(void)a, (void)b, (void)c, (void)d;
	return atomic_load(&w->stop) ? 1 : 0;
}

/* Append received bytes to the answer (curl write callback). */
static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	size_t n = size * nmemb;
	return etcd_reply_append(arg, data, n, MAX_ANSWER) ? 0 : n;
}

/* Keep the X-Etcd-Index header (curl header callback). */
static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	static const char name[] = "x-etcd-index:";
	struct etcdv2_watch *w = arg;
	size_t n = size * nmemb, len = sizeof(name) - 1;

	if (n > len && n < 64 && strncasecmp(data, name, len) == 0) {
		char buf[64];

		memcpy(buf, data + len, n - len);
		buf[n - len] = '\0';
		w->hdr = strtoll(buf, NULL, 10);
	}
	return n;
}

/* Sleep ms milliseconds, or less when close() asks. */
static void nap(struct etcdv2_watch *w, unsigned ms)
{
	for (unsigned slept = 0; slept < ms && !atomic_load(&w->stop);
	     slept += 50) {
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

/* A handle for the current endpoint, with our callbacks; NULL on ENOMEM. */
static CURL *handle(struct etcdv2_watch *w)
{
	CURL *c = w->curl;

	if (c)
		return c;
	c = etcd_http_handle(w->http, w->ep, "/v2/keys");
	if (!c)
		return NULL;
	curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &w->reply);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, w);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, w);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)POLL_MS);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_MS);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, KEEPALIVE_S);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, KEEPALIVE_S);
	w->curl = c;
	return c;
}

/* The URL of the next poll on endpoint w->ep. 0 or -ENOMEM. */
static int poll_url(struct etcdv2_watch *w, char **url)
{
	char query[96], *api;
	int err;

	snprintf(query, sizeof(query),
		 "wait=true&recursive=true&waitIndex=%" PRId64, w->index);
	err = etcdv2_key_api(w->root, "", query, &api);
	if (err)
		return err;
	if (asprintf(url, "%s%s", etcd_http_base(w->http, w->ep), api) < 0)
		err = -ENOMEM;
	free(api);
	return err;
}

/* Hand one change to fn; changes to hidden keys are never shown. */
static void deliver(struct etcdv2_watch *w, const struct etcdv2_event *ev)
{
	if (!ev->path || etcdv2_hidden(ev->path))
		return;
	w->fn(w->arg, ev->deleted ? TOPO_CHANGE_DELETED : TOPO_CHANGE_NODE,
	      ev->path, ev->index);
}

/* Take one complete answer. 0, or -EIO (nothing usable: try again). */
static int take(struct etcdv2_watch *w, long status)
{
	struct etcdv2_event ev;
	int64_t index;
	int err = etcdv2_parse_error(status, w->reply.body, w->reply.len,
				     "watch", &index);

	if (err == -EAGAIN) { /* the wait index was cleared */
		topo_warn("etcd v2: watch: changes before index %" PRId64
			  " are gone: re-reading everything",
			  w->index);
		w->fn(w->arg, TOPO_CHANGE_ALL, "", -1);
		if (index >= w->index)
			w->index = index + 1;
		return 0;
	}
	if (err)
		return -EIO;
	err = etcdv2_parse_event(w->reply.body, w->reply.len, w->root, &ev);
	if (err) {
		/* Something was said that we cannot read: all may have
		 * changed. Go on from where the poll started. */
		w->fn(w->arg, TOPO_CHANGE_ALL, "", -1);
		if (w->hdr >= w->index)
			w->index = w->hdr + 1;
		return 0;
	}
	deliver(w, &ev);
	if (ev.index >= w->index)
		w->index = ev.index + 1;
	free(ev.path);
	return 0;
}

/* The connection is back: say so once. */
static void healed(struct etcdv2_watch *w)
{
	if (w->broken)
		topo_warn("etcd v2: watch resumed on %s at index %" PRId64,
			  etcd_http_name(w->http, w->ep), w->index);
	w->broken = false;
	w->backoff = 0;
}

/* The connection failed: log once, try the next endpoint after a pause. */
static void broke(struct etcdv2_watch *w, const char *why)
{
	if (!w->broken)
		topo_warn("etcd v2: watch on %s broken (%s): resuming from "
			  "index %" PRId64,
			  etcd_http_name(w->http, w->ep), why, w->index);
	w->broken = true;
	curl_easy_cleanup(w->curl);
	w->curl = NULL;
	w->ep++;
	w->backoff = w->backoff ? w->backoff * 2 : BACKOFF_MIN_MS;
	if (w->backoff > BACKOFF_MAX_MS)
		w->backoff = BACKOFF_MAX_MS;
	nap(w, w->backoff);
}

/* One poll. */
static void poll_once(struct etcdv2_watch *w)
{
	CURL *c = handle(w);
	char *url = NULL;
	long status = 0;
	CURLcode rc;

	if (!c || poll_url(w, &url)) {
		broke(w, "out of memory");
		return;
	}
	etcd_reply_free(&w->reply);
	w->hdr = -1;
	curl_easy_setopt(c, CURLOPT_URL, url);
	rc = curl_easy_perform(c);
	free(url);
	if (atomic_load(&w->stop))
		return;
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (take(w, status) == 0) {
			healed(w);
			return;
		}
		broke(w, "an answer that is not a change");
	} else if (rc == CURLE_OPERATION_TIMEDOUT && w->hdr >= 0 &&
		   w->reply.len == 0) {
		/* A quiet poll: nothing changed below the root up to w->hdr
		 * (see the top of this file). */
		if (w->hdr >= w->index)
			w->index = w->hdr + 1;
		healed(w);
	} else {
		broke(w, curl_easy_strerror(rc));
	}
}

static void *watch_main(void *arg)
{
	struct etcdv2_watch *w = arg;

	while (!atomic_load(&w->stop))
		poll_once(w);
	return NULL;
}

static void watch_free(struct etcdv2_watch *w)
{
	if (w->curl)
		curl_easy_cleanup(w->curl);
	etcd_reply_free(&w->reply);
	free(w->root);
	free(w);
}

int etcdv2_watch_start(struct etcd_http *http, const char *root, int64_t from,
		       topo_change_fn fn, void *arg, struct etcdv2_watch **out)
{
	struct etcdv2_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->http = http;
	w->fn = fn;
	w->arg = arg;
	w->index = from;
	w->ep = etcd_http_current(http);
	atomic_init(&w->stop, false);
	w->root = strdup(root);
	if (!w->root) {
		free(w);
		return -ENOMEM;
	}
	if (pthread_create(&w->thread, NULL, watch_main, w)) {
		watch_free(w);
		return -EAGAIN;
	}
	*out = w;
	return 0;
}

void etcdv2_watch_stop(struct etcdv2_watch *w)
{
	if (!w)
		return;
	atomic_store(&w->stop, true);
	pthread_join(w->thread, NULL);
	watch_free(w);
}
