/*
 * zk_request.c - the ZooKeeper backend's requests and batches: one request
 * handed to the client's asynchronous calls, its completion, and the
 * batch it is answered in; time and error helpers.
 *
 * Concurrency
 *
 *   The client runs two threads of its own per handle: an I/O thread that
 *   talks to the server, and a completion thread that calls our completion
 *   functions and the session watcher, one at a time, in the order the
 *   server answered. Those threads do not survive fork(): the program opens
 *   a store to probe the server, closes it, forks, and opens it again.
 *
 *   We use only the asynchronous calls. Every request is a `struct zreq`
 *   sent within a `struct zbatch`: a small mailbox with a mutex, a condition
 *   variable (on CLOCK_MONOTONIC) and a reference count. The completion
 *   copies what the client lends it (value, stat, child names) into the
 *   zreq, appends the zreq to the batch's done list and signals. The caller
 *   waits with pthread_cond_timedwait up to the operation's deadline, so a
 *   dead server costs at most timeout_ms, never a hang. A caller that gives
 *   up simply drops its reference: the batch (and every zreq still in
 *   flight) is freed by whichever completion drops the last reference, so a
 *   late answer never writes into freed memory. Completions never block and
 *   never take any other lock than their batch's.
 *
 *   Bulk listing: see zk_read.c; sessions and requests in flight: see
 *   zk_session.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zookeeper/zookeeper.h>

#include "topofs/log.h"
#include "zk_internal.h"
#include "zkutil.h"

/* ---- time ---------------------------------------------------------------- */

/* Milliseconds on the monotonic clock. */
int64_t zk_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait on cv until signalled or the monotonic deadline; ETIMEDOUT after. */
int zk_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
		       int64_t deadline)
{
	struct timespec ts = {
	    .tv_sec = deadline / 1000,
	    .tv_nsec = (deadline % 1000) * 1000000,
	};
	return pthread_cond_timedwait(cv, mu, &ts);
}

/* Initialise a mutex and a condition variable that waits on CLOCK_MONOTONIC. */
void zk_sync_init(pthread_mutex_t *mu, pthread_cond_t *cv)
{
	pthread_condattr_t a;
	pthread_mutex_init(mu, NULL);
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
}

/* ---- errors -------------------------------------------------------------- */

/* The one place ZooKeeper result codes become errnos; logs the unexpected. */
int zk_errno(int zrc, const char *what, const char *path)
{
	switch (zrc) {
	case ZOK:
		return 0;
	case ZNONODE:
		return -ENOENT;
	case ZNODEEXISTS:
		return -EEXIST;
	case ZNOTEMPTY:
		return -ENOTEMPTY;
	case ZBADVERSION:
		return -ESTALE;
	case ZNOAUTH:
	case ZAUTHFAILED:
		return -EACCES;
	case ZNOCHILDRENFOREPHEMERALS:
		return -ENOTDIR;
	case ZBADARGUMENTS:
		topo_warn("zk: %s %s: invalid znode path", what, path);
		return -EINVAL;
	default:
		topo_err("zk: %s %s: %s", what, path, zerror(zrc));
		return -EIO;
	}
}

/* Whether a result says the connection went away mid-request. */
bool zk_conn_lost(int zrc)
{
	return zrc == ZCONNECTIONLOSS || zrc == ZOPERATIONTIMEOUT;
}

/* ---- requests and batches ------------------------------------------------ */

/* A new request for `abs` (copied); NULL when out of memory. */
struct zreq *zk_req_new(enum zreq_kind kind, const char *abs)
{
	struct zreq *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->kind = kind;
	r->path = strdup(abs);
	if (!r->path) {
		free(r);
		return NULL;
	}
	return r;
}

/* Forget a request's answer so that it can be sent again. */
static void req_reset(struct zreq *r)
{
	free(r->value);
	free(r->names);
	zk_acl_free(&r->acl);
	r->value = r->names = NULL;
	r->value_len = r->nnames = 0;
	r->rc = ZOK;
	r->next = NULL;
	if (r->results)
		memset(r->results, 0, (size_t)r->nops * sizeof(*r->results));
}

/* Free a request and its answer. NULL is allowed. */
void zk_req_free(struct zreq *r)
{
	if (!r)
		return;
	free(r->value);
	free(r->names);
	zk_acl_free(&r->acl);
	free(r->results);
	free(r->path);
	free(r);
}

/* A new batch with the caller's reference; NULL when out of memory. */
struct zbatch *zk_batch_new(void)
{
	struct zbatch *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	zk_sync_init(&b->mu, &b->cv);
	b->refs = 1;
	b->done_tail = &b->done;
	return b;
}

/* Free a batch that nobody references any more, with unclaimed answers. */
static void batch_free(struct zbatch *b)
{
	while (b->done) {
		struct zreq *r = b->done;
		b->done = r->next;
		zk_req_free(r);
	}
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

/* Drop one reference; the last one frees the batch. */
void zk_batch_unref(struct zbatch *b)
{
	pthread_mutex_lock(&b->mu);
	bool last = --b->refs == 0;
	pthread_mutex_unlock(&b->mu);
	if (last)
		batch_free(b);
}

/* Add r to its session's in-flight list (before it is sent). */
static void inflight_add(struct zsess *ss, struct zreq *r)
{
	pthread_mutex_lock(&ss->mu);
	r->iprev = NULL;
	r->inext = ss->inflight;
	if (ss->inflight)
		ss->inflight->iprev = r;
	ss->inflight = r;
	ss->ninflight++;
	pthread_mutex_unlock(&ss->mu);
}

/* Take r off its session's in-flight list; wakes a closer at zero. */
static void inflight_del(struct zreq *r)
{
	struct zsess *ss = r->ss;
	pthread_mutex_lock(&ss->mu);
	if (r->iprev)
		r->iprev->inext = r->inext;
	else
		ss->inflight = r->inext;
	if (r->inext)
		r->inext->iprev = r->iprev;
	r->iprev = r->inext = NULL;
	if (--ss->ninflight == 0)
		pthread_cond_broadcast(&ss->cv);
	pthread_mutex_unlock(&ss->mu);
}

/* File an answered request in its batch and wake the caller. */
static void req_file(struct zreq *r)
{
	struct zbatch *b = r->b;
	pthread_mutex_lock(&b->mu);
	r->next = NULL;
	*b->done_tail = r;
	b->done_tail = &r->next;
	bool last = --b->refs == 0;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
	if (last)
		batch_free(b);
}

/* Completion side: the request is answered (r->rc and the answer set). */
void zk_req_done(struct zreq *r)
{
	inflight_del(r);
	req_file(r);
}

/* Next answered request of the batch, or NULL at the deadline. */
struct zreq *zk_batch_next(struct zbatch *b, int64_t deadline)
{
	struct zreq *r = NULL;
	pthread_mutex_lock(&b->mu);
	for (;;) {
		while (!b->done && zk_cond_wait_until(&b->cv, &b->mu,
						      deadline) != ETIMEDOUT)
			;
		r = b->done;
		if (!r)
			break;
		b->done = r->next;
		if (!b->done)
			b->done_tail = &b->done;
		if (!r->orphan)
			break;
		zk_req_free(r); /* a request whose send had failed after all */
	}
	pthread_mutex_unlock(&b->mu);
	return r;
}

/* Completion of zoo_aget: copy value and stat. */
static void on_get(int rc, const char *value, int len, const struct Stat *st,
		   const void *data)
{
	struct zreq *r = (struct zreq *)data;
	r->rc = rc;
	if (rc == ZOK) {
		r->stat = *st;
		r->value_len = len > 0 ? len : 0;
		if (len > 0 && (r->value = malloc((size_t)len)))
			memcpy(r->value, value, (size_t)len);
		else if (len > 0)
			r->rc = ZSYSTEMERROR; /* out of memory */
	}
	zk_req_done(r);
}

/* Completion of zoo_aget_children: pack the names into one buffer. */
static void on_children(int rc, const struct String_vector *sv,
			const void *data)
{
	struct zreq *r = (struct zreq *)data;
	r->rc = rc;
	if (rc == ZOK && sv && sv->count > 0) {
		size_t total = 0;
		for (int i = 0; i < sv->count; i++)
			total += strlen(sv->data[i]) + 1;
		char *p = r->names = malloc(total);
		if (!p) {
			r->rc = ZSYSTEMERROR;
		} else {
			for (int i = 0; i < sv->count; i++)
				p = stpcpy(p, sv->data[i]) + 1;
			r->nnames = sv->count;
		}
	}
	zk_req_done(r);
}

/* Completion of zoo_acreate2: keep the new node's stat. */
static void on_create(int rc, const char *name, const struct Stat *st,
		      const void *data)
{
	struct zreq *r = (struct zreq *)data;
	(void)name;
	r->rc = rc;
	if (rc == ZOK && st)
		r->stat = *st;
	zk_req_done(r);
}

/* Completion of zoo_aset: keep the node's new stat. */
static void on_stat(int rc, const struct Stat *st, const void *data)
{
	struct zreq *r = (struct zreq *)data;
	r->rc = rc;
	if (rc == ZOK && st)
		r->stat = *st;
	zk_req_done(r);
}

/* Completion of zoo_adelete and zoo_amulti. */
static void on_void(int rc, const void *data)
{
	struct zreq *r = (struct zreq *)data;
	r->rc = rc;
	zk_req_done(r);
}

/* Completion of zoo_aget_acl: keep a copy of the ACL. */
static void on_acl(int rc, struct ACL_vector *acl, struct Stat *st,
		   const void *data)
{
	struct zreq *r = (struct zreq *)data;
	(void)st;
	r->rc = rc;
	if (rc == ZOK && zk_acl_copy(&r->acl, acl))
		r->rc = ZSYSTEMERROR; /* out of memory */
	zk_req_done(r);
}

/* Hand one request to the client; its ZooKeeper code. Reads marked
 * `watch` leave a watch whose watcher is the session's own (zk_on_event, ss):
 * the client keeps one entry per path for that pair, however often the
 * path is read. */
static int req_send(zhandle_t *zh, struct zreq *r)
{
	watcher_fn wf = r->watch ? zk_on_event : NULL;
	void *wc = r->watch ? r->ss : NULL;
	switch (r->kind) {
	case ZR_GET:
		return zoo_awget(zh, r->path, wf, wc, on_get, r);
	case ZR_CHILDREN:
		return zoo_awget_children(zh, r->path, wf, wc, on_children, r);
	case ZR_EXISTS:
		return zoo_awexists(zh, r->path, wf, wc, on_stat, r);
	case ZR_ACL:
		return zoo_aget_acl(zh, r->path, on_acl, r);
	case ZR_CREATE:
		return zoo_acreate2(zh, r->path, r->in_value, r->in_len,
				    r->in_acl, ZOO_PERSISTENT, on_create, r);
	case ZR_SET:
		return zoo_aset(zh, r->path, r->in_value, r->in_len,
				r->in_version, on_stat, r);
	case ZR_DELETE:
		return zoo_adelete(zh, r->path, r->in_version, on_void, r);
	case ZR_MULTI:
		return zoo_amulti(zh, r->nops, r->in_ops, r->results, on_void,
				  r);
	}
	return ZBADARGUMENTS;
}

/* Send r within batch b on session ss. ZOK, or a code and r is no longer
 * the caller's. r is on the session's in-flight list from before the send
 * until its completion (or the session's close) takes it off. */
int zk_req_submit(struct zsess *ss, struct zbatch *b, struct zreq *r)
{
	req_reset(r);
	r->b = b;
	r->ss = ss;
	pthread_mutex_lock(&b->mu);
	b->refs++;
	pthread_mutex_unlock(&b->mu);
	inflight_add(ss, r);
	int zrc = req_send(ss->zh, r);
	if (zrc == ZOK)
		return ZOK;
	if (zrc == ZMARSHALLINGERROR) {
		/* The completion may have been registered before the client
		 * failed to queue the bytes: leave r to it (or to the
		 * session's close). */
		r->orphan = true;
		return zrc;
	}
	inflight_del(r);
	zk_batch_unref(b);
	zk_req_free(r);
	return zrc;
}
