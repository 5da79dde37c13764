/*
 * zk.c - the ZooKeeper backend ("zk2"), on the multi-threaded C client
 * (libzookeeper_mt).
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
 *   Bulk listing keeps up to ZK_WINDOW requests in flight in one batch: the
 *   caller's thread sends, waits for any answer, and sends what that answer
 *   calls for (children of a node with children, data of each child). One
 *   session answers in order, so pipelined creates of /a, /a/b, /a/b/c work.
 *
 *   Sessions. `struct zsess` is one zhandle_t with the last state the
 *   watcher saw, under its own mutex and condition variable; operations
 *   wait there (with their deadline) until the state is CONNECTED. The
 *   store's mutex guards the pointer to the current session and the
 *   sessions' reference counts: each operation holds a reference for its
 *   duration. When a session expires the watcher marks it dead; the next
 *   operation makes a new one (re-adding the credentials) and the old handle
 *   is closed by whoever drops its last reference -- always an operation's
 *   thread, never the client's completion thread, where zookeeper_close
 *   must not be called. Requests in flight on an expired session fail with
 *   -EIO. Lock order: store->mu, then zsess->mu; batch mutexes and
 *   store->wmu are leaves.
 *
 *   In flight. Every request sent is on its session's in-flight list (under
 *   zsess->mu) from just before the send until its completion runs. Closing
 *   a session first waits, up to the session timeout, for that list to
 *   empty: after an operation timed out on a frozen server its requests are
 *   still in flight, and the client fails them with a connection loss
 *   within two thirds of the session timeout. (Closed with requests in
 *   flight, the 3.8 client queues their completions with ZCLOSING and
 *   never runs them: its own entries and our requests and batches leak.)
 *   What is still listed once zookeeper_close has joined the client's
 *   threads is completed with ZCLOSING by the closer itself.
 *
 * Watches
 *
 *   The 3.8 C client has no persistent recursive watches (no zoo_add_watch;
 *   3.6 servers have them, this client cannot ask), so we use one-shot
 *   watches. Once watch() is called, list() asks the data (zoo_awget) and
 *   the children (zoo_awget_children) of every node it reads -- of leaves
 *   too: only a child watch tells that a file became a directory -- and
 *   get() the data and the children likewise (a node the cache learns of
 *   by get(), one another client created, must be watched as a listed
 *   one), or on a missing node an exists watch (zoo_awexists)
 *   that tells its creation. The watcher of every watch is the session's
 *   own (on_event, zsess): the client keeps one entry per path for that
 *   pair however often the path is read (the server, one per path and
 *   kind), so repeated listings do not grow memory, and a session event
 *   reaches it once. A fired watch becomes one notice: NodeCreated,
 *   NodeDataChanged, NodeCreated on N -> TOPO_CHANGE_NODE N; NodeDeleted on
 *   N -> TOPO_CHANGE_DELETED N;
 *   NodeChildrenChanged on N -> TOPO_CHANGE_CHILDREN N. The watch is then
 *   gone until the next read of N, which the filesystem makes because of
 *   the notice. Notices come on the completion thread in the server's
 *   order; fn is called without any lock of ours (store->wmu only counts
 *   calls in progress), and close() marks the store closed and waits for
 *   those calls, so none comes once close() has returned.
 *
 *   A reconnect within the session keeps the watches: the client sets
 *   them again (one SetWatches request) and the server fires those whose
 *   node changed meanwhile. An expired session has lost them all and what
 *   changed while it was cut off: TOPO_CHANGE_ALL, and the next operation
 *   opens a new session. One more case gives TOPO_CHANGE_ALL: a server
 *   drops a connection whose SetWatches request is over jute.maxbuffer
 *   (1 MB of paths: ~10,000 watched nodes), and the client would reconnect
 *   and be dropped forever; three connections lost within 2 s of being
 *   made, and we give the session up for a new one.
 *
 * Timeouts
 *
 *   Every operation has one deadline, timeout_ms from its start, shared by
 *   the wait for a connection, the request, and any re-read after a
 *   connection loss; a listing's deadline moves on with each answer (it
 *   fails when the server is silent for timeout_ms). The session timeout asked
 * of the server is timeout_ms clamped to [4 s, 40 s] (the server's default
 * range of 2..20 ticks): the client notices a silent server after two thirds of
 * it and fails the requests in flight with ZCONNECTIONLOSS, inside our own
 * deadline.
 *
 * Writes and connection loss
 *
 *   A request cut by a connection loss may or may not have been applied.
 *   Reads are simply sent again. A write is settled by re-reading the node:
 *   a set or create whose value (and, for a set, version v+1) is there has
 *   succeeded; one that is visibly not applied is sent once more; anything
 *   else is a conflict. A multi is settled the same way, op by op. A delete
 *   goes right behind an exists of its node on the same session (no extra
 *   round trip): if the delete's answer is lost and the node is gone, the
 *   delete succeeded only if the exists found the node (or, without its
 *   answer either, if the caller named the version it saw); a node that was
 *   not there gives -ENOENT, an unknown past -EIO. Left ambiguous: another
 *   client deleting the node between our exists and our delete is taken
 *   for our success (the node is gone either way).
 *
 *   A znode deleted and created again restarts its data version at 0, so
 *   a set with the version a writer read may fit the new znode. put_same
 *   (a file's commit) names the czxid the writer read: an exists just
 *   before the set checks it (no request compares a czxid), and the set's
 *   answer, the stat of the znode written, shows a re-creation that
 *   slipped in between -- too late to keep the other client's value, but
 *   reported (-ESTALE, logged), never taken for our success.
 *
 * ACLs
 *
 *   A znode we create (a put's missing parents, a create, mkdir, a multi's
 *   creates, the root with -o create_root) takes the ACL of its parent,
 *   asked with zoo_aget_acl once per parent per operation (struct zk_acls),
 *   pipelined for a chain of parents, so a protected tree stays protected.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zookeeper/zookeeper.h>

#include "topofs/backend.h"
#include "topofs/log.h"
#include "zkutil.h"

#define ZK_WINDOW 256 /* listing requests in flight */
#define ZK_MAX_OPS 1000
/* A session whose connections are lost within ZK_BRIEF_MS of being made,
 * ZK_BRIEF_MAX times in a row, is given up for a new one. */
#define ZK_BRIEF_MS 2000
#define ZK_BRIEF_MAX 3

/* ---- time ---------------------------------------------------------------- */

/* Milliseconds on the monotonic clock. */
static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait on cv until signalled or the monotonic deadline; ETIMEDOUT after. */
static int cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
			   int64_t deadline)
{
	struct timespec ts = {
	    .tv_sec = deadline / 1000,
	    .tv_nsec = (deadline % 1000) * 1000000,
	};
	return pthread_cond_timedwait(cv, mu, &ts);
}

/* Initialise a mutex and a condition variable that waits on CLOCK_MONOTONIC. */
static void sync_init(pthread_mutex_t *mu, pthread_cond_t *cv)
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
static int zk_errno(int zrc, const char *what, const char *path)
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
static bool conn_lost(int zrc)
{
	return zrc == ZCONNECTIONLOSS || zrc == ZOPERATIONTIMEOUT;
}

/* ---- requests and batches ------------------------------------------------ */

struct zsess {
	zhandle_t *zh;
	struct topo_store *store;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int state; /* last session state the watcher saw */
	bool connected_once;
	bool dead; /* expired or refused: never usable again */
	bool auth_failed;
	int refs;	       /* under store->mu */
	int64_t connected_at;  /* when the state last became connected */
	int short_conns;       /* connections lost right after being made */
	struct zreq *inflight; /* sent, completion not called yet (mu) */
	int ninflight;	       /* their number (mu) */
};

struct topo_store {
	char *servers;
	char *root; /* normalised: "" for "/", else "/a/b" */
	char *auth_file;
	char *auth_scheme, *auth_cert; /* NULL without an auth file */
	unsigned timeout_ms;
	int session_ms;
	bool missing_root_ok; /* -o create_root: make the root at open */
	pthread_mutex_t mu;   /* guards sess and every zsess.refs */
	struct zsess *sess;
	/* change notices (see "Watches" above), under wmu */
	pthread_mutex_t wmu;
	pthread_cond_t wcv;
	topo_change_fn fn; /* NULL until watch() */
	void *fn_arg;
	bool closed;	/* close() has begun: no more notices */
	int delivering; /* calls of fn in progress */
};

enum zreq_kind {
	ZR_GET,
	ZR_CHILDREN,
	ZR_EXISTS,
	ZR_ACL,
	ZR_CREATE,
	ZR_SET,
	ZR_DELETE,
	ZR_MULTI,
};

struct zbatch;
struct zsess;

struct zreq {
	struct zbatch *b;
	struct zsess *ss;	    /* the session it was sent on */
	struct zreq *next;	    /* in a batch's done list or a queue */
	struct zreq *iprev, *inext; /* in its session's in-flight list */
	enum zreq_kind kind;
	int rc;	     /* the answer's ZooKeeper code */
	bool watch;  /* reads: leave a watch (session watcher) */
	bool orphan; /* send failed but a completion may still come */
	char *path;  /* absolute znode path, owned */
	/* inputs, borrowed for the send only (the client copies them) */
	const char *in_value;
	int in_len;
	int in_version;
	const zoo_op_t *in_ops;
	const struct ACL_vector *in_acl; /* ZR_CREATE */
	/* answers, owned */
	struct Stat stat;
	char *value; /* ZR_GET: a copy, NULL when empty */
	int value_len;
	char *names; /* ZR_CHILDREN: nnames NUL-terminated names */
	int nnames;
	struct ACL_vector acl; /* ZR_ACL */
	int nops;	       /* ZR_MULTI */
	zoo_op_result_t *results;
};

struct zbatch {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs;	   /* the caller's + one per request in flight */
	struct zreq *done; /* answered, not yet taken */
	struct zreq **done_tail;
};

/* A new request for `abs` (copied); NULL when out of memory. */
static struct zreq *req_new(enum zreq_kind kind, const char *abs)
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
static void req_free(struct zreq *r)
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
static struct zbatch *batch_new(void)
{
	struct zbatch *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	sync_init(&b->mu, &b->cv);
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
		req_free(r);
	}
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

/* Drop one reference; the last one frees the batch. */
static void batch_unref(struct zbatch *b)
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
static void req_done(struct zreq *r)
{
	inflight_del(r);
	req_file(r);
}

/* Next answered request of the batch, or NULL at the deadline. */
static struct zreq *batch_next(struct zbatch *b, int64_t deadline)
{
	struct zreq *r = NULL;
	pthread_mutex_lock(&b->mu);
	for (;;) {
		while (!b->done &&
		       cond_wait_until(&b->cv, &b->mu, deadline) != ETIMEDOUT)
			;
		r = b->done;
		if (!r)
			break;
		b->done = r->next;
		if (!b->done)
			b->done_tail = &b->done;
		if (!r->orphan)
			break;
		req_free(r); /* a request whose send had failed after all */
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
	req_done(r);
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
	req_done(r);
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
	req_done(r);
}

/* Completion of zoo_aset: keep the node's new stat. */
static void on_stat(int rc, const struct Stat *st, const void *data)
{
	struct zreq *r = (struct zreq *)data;
	r->rc = rc;
	if (rc == ZOK && st)
		r->stat = *st;
	req_done(r);
}

/* Completion of zoo_adelete and zoo_amulti. */
static void on_void(int rc, const void *data)
{
	struct zreq *r = (struct zreq *)data;
	r->rc = rc;
	req_done(r);
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
	req_done(r);
}

static void on_event(zhandle_t *zh, int type, int state, const char *path,
		     void *ctx);

/* Hand one request to the client; its ZooKeeper code. Reads marked
 * `watch` leave a watch whose watcher is the session's own (on_event, ss):
 * the client keeps one entry per path for that pair, however often the
 * path is read. */
static int req_send(zhandle_t *zh, struct zreq *r)
{
	watcher_fn wf = r->watch ? on_event : NULL;
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
static int req_submit(struct zsess *ss, struct zbatch *b, struct zreq *r)
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
	batch_unref(b);
	req_free(r);
	return zrc;
}

/* ---- sessions ------------------------------------------------------------ */

/* The client's own log lines, shown only with -d. */
static void client_log(const char *msg)
{
	topo_debug("zk client: %s", msg);
}

static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;

/* Point the client's handle-less log stream at /dev/null, once. */
static void quiet_stream(void)
{
	FILE *f = fopen("/dev/null", "w");
	if (f)
		zoo_set_log_stream(f); /* kept open for the process's life */
}

/* Make the client quiet: warnings and errors, to our debug log only. */
static void client_quiet(void)
{
	pthread_once(&quiet_once, quiet_stream);
	zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
}

/* Deliver one change notice to the filesystem, unless close() has begun;
 * fn runs without any lock of ours held. */
static void notify(struct topo_store *s, enum topo_change what, const char *rel)
{
	pthread_mutex_lock(&s->wmu);
	topo_change_fn fn = s->closed ? NULL : s->fn;
	void *arg = s->fn_arg;
	if (fn)
		s->delivering++;
	pthread_mutex_unlock(&s->wmu);
	if (!fn)
		return;
	fn(arg, what, rel, -1);
	pthread_mutex_lock(&s->wmu);
	if (--s->delivering == 0)
		pthread_cond_broadcast(&s->wcv);
	pthread_mutex_unlock(&s->wmu);
}

/* A node watch fired (completion thread): tell what it means. The client
 * has forgotten that watch; the next read of the node sets it again. */
static void on_node_event(struct zsess *ss, int type, const char *path)
{
	const char *rel;
	if (!zk_below_root(ss->store->root, path, &rel))
		return; /* not ours (we only watch below the root) */
	if (type == ZOO_CHILD_EVENT)
		notify(ss->store, TOPO_CHANGE_CHILDREN, rel);
	else if (type == ZOO_DELETED_EVENT)
		notify(ss->store, TOPO_CHANGE_DELETED, rel);
	else if (type == ZOO_CREATED_EVENT || type == ZOO_CHANGED_EVENT)
		notify(ss->store, TOPO_CHANGE_NODE, rel);
	/* ZOO_NOTWATCHING_EVENT: a removed watch; we remove none */
}

/* The session's watcher (completion thread), for session events and for
 * every node watch: track the state, wake waiters, send notices. */
static void on_event(zhandle_t *zh, int type, int state, const char *path,
		     void *ctx)
{
	struct zsess *ss = ctx;
	if (type != ZOO_SESSION_EVENT) {
		on_node_event(ss, type, path);
		return;
	}
	pthread_mutex_lock(&ss->mu);
	int was = ss->state;
	bool again = ss->connected_once;
	ss->state = state;
	if (state == ZOO_CONNECTED_STATE && !ss->connected_once)
		topo_debug("zk: session 0x%llx established",
			   (unsigned long long)zoo_client_id(zh)->client_id);
	if (state == ZOO_CONNECTED_STATE) {
		ss->connected_once = true;
		ss->connected_at = now_ms();
	}
	bool give_up = false;
	if (state == ZOO_CONNECTING_STATE && was == ZOO_CONNECTED_STATE) {
		/* A server drops a connection at once if the watches the
		 * client sets again on it (one SetWatches request) are over
		 * jute.maxbuffer; the session then never recovers. */
		bool brief = now_ms() - ss->connected_at < ZK_BRIEF_MS;
		ss->short_conns = brief ? ss->short_conns + 1 : 0;
		give_up = ss->short_conns >= ZK_BRIEF_MAX && !ss->dead;
	}
	if (state == ZOO_EXPIRED_SESSION_STATE ||
	    state == ZOO_AUTH_FAILED_STATE || give_up)
		ss->dead = true;
	if (state == ZOO_AUTH_FAILED_STATE)
		ss->auth_failed = true;
	pthread_cond_broadcast(&ss->cv);
	pthread_mutex_unlock(&ss->mu);

	if (give_up) {
		topo_warn("zk: ZooKeeper at %s drops every new connection of "
			  "the session (too many watches for jute.maxbuffer?); "
			  "opening a new session",
			  ss->store->servers);
		notify(ss->store, TOPO_CHANGE_ALL, "");
		return;
	}

	const char *servers = ss->store->servers;
	if (state == ZOO_CONNECTED_STATE && again && was != state)
		topo_info("zk: reconnected to ZooKeeper at %s", servers);
	else if (state == ZOO_CONNECTING_STATE && was == ZOO_CONNECTED_STATE)
		topo_warn(
		    "zk: lost connection to ZooKeeper at %s, reconnecting",
		    servers);
	else if (state == ZOO_AUTH_FAILED_STATE)
		topo_err("zk: ZooKeeper refused the credentials of %s",
			 ss->store->auth_file ? ss->store->auth_file
					      : "(none)");
	if (state == ZOO_EXPIRED_SESSION_STATE && was != state) {
		/* Every watch of this session is gone, and what changed
		 * while it was cut off was never told: all is stale. The
		 * next operation opens a new session; the listings made
		 * again on it set new watches. */
		topo_warn("zk: ZooKeeper session expired; opening a new one");
		notify(ss->store, TOPO_CHANGE_ALL, "");
	}
}

/* Start a new session (connecting in the background) with one reference. */
static int sess_new(struct topo_store *s, struct zsess **out)
{
	struct zsess *ss = calloc(1, sizeof(*ss));
	if (!ss)
		return -ENOMEM;
	sync_init(&ss->mu, &ss->cv);
	ss->store = s;
	ss->state = ZOO_CONNECTING_STATE;
	ss->refs = 1;
	client_quiet();
	errno = 0;
	ss->zh = zookeeper_init2(s->servers, on_event, s->session_ms, NULL, ss,
				 ZOO_NO_LOG_CLIENTENV, client_log);
	if (!ss->zh) {
		int e = errno ? errno : EINVAL;
		pthread_cond_destroy(&ss->cv);
		pthread_mutex_destroy(&ss->mu);
		free(ss);
		return -e;
	}
	/* By default the client resolves the host names again each time it
	 * polls its socket: thousands of getaddrinfo calls per listing. Only
	 * resolve when (re)connecting. */
	zoo_set_servers_resolution_delay(ss->zh, -1);
	if (s->auth_scheme)
		zoo_add_auth(ss->zh, s->auth_scheme, s->auth_cert,
			     (int)strlen(s->auth_cert), NULL, NULL);
	*out = ss;
	return 0;
}

/* Wait, at most until `deadline`, for the session's requests in flight to
 * be answered (or failed by the client on a connection loss). */
static int inflight_wait(struct zsess *ss, int64_t deadline)
{
	pthread_mutex_lock(&ss->mu);
	while (ss->ninflight > 0 &&
	       cond_wait_until(&ss->cv, &ss->mu, deadline) != ETIMEDOUT)
		;
	int n = ss->ninflight;
	pthread_mutex_unlock(&ss->mu);
	return n;
}

/* Close a session's handle and free it (never on the completion thread).
 * Requests still in flight (an operation that timed out left them) are
 * waited for up to the session timeout: a silent server makes the client
 * fail them with a connection loss within two thirds of it, and their
 * completions free them. Whatever the client never answered is freed
 * here once zookeeper_close has stopped its threads. */
static void sess_free(struct zsess *ss)
{
	const clientid_t *id = zoo_client_id(ss->zh);
	topo_debug("zk: closing session 0x%llx",
		   id ? (unsigned long long)id->client_id : 0ULL);
	int left = inflight_wait(ss, now_ms() + ss->store->session_ms);
	if (left)
		topo_debug("zk: closing with %d requests unanswered", left);
	zookeeper_close(ss->zh);
	for (;;) { /* no completion can run any more */
		pthread_mutex_lock(&ss->mu);
		struct zreq *r = ss->inflight;
		pthread_mutex_unlock(&ss->mu);
		if (!r)
			break;
		r->rc = ZCLOSING;
		req_done(r); /* frees r with its batch, now unreferenced */
	}
	pthread_cond_destroy(&ss->cv);
	pthread_mutex_destroy(&ss->mu);
	free(ss);
}

/* Drop one reference to a session; the last one closes it. */
static void sess_put(struct topo_store *s, struct zsess *ss)
{
	pthread_mutex_lock(&s->mu);
	bool last = --ss->refs == 0;
	pthread_mutex_unlock(&s->mu);
	if (last)
		sess_free(ss);
}

/* Wait until the session is connected: 0, -EACCES (refused), -EIO. */
static int sess_wait(struct zsess *ss, int64_t deadline)
{
	int rc = -EIO;
	pthread_mutex_lock(&ss->mu);
	while (!ss->dead && ss->state != ZOO_CONNECTED_STATE &&
	       cond_wait_until(&ss->cv, &ss->mu, deadline) != ETIMEDOUT)
		;
	if (ss->state == ZOO_CONNECTED_STATE)
		rc = 0;
	else if (ss->auth_failed)
		rc = -EACCES;
	pthread_mutex_unlock(&ss->mu);
	return rc;
}

/* Whether a session is dead but worth replacing (expired, not refused). */
static bool sess_renewable(struct zsess *ss)
{
	pthread_mutex_lock(&ss->mu);
	bool r = ss->dead && !ss->auth_failed;
	pthread_mutex_unlock(&ss->mu);
	return r;
}

/* A reference to the current session, replacing an expired one. */
static int sess_current(struct topo_store *s, struct zsess **out)
{
	struct zsess *old = NULL;
	int rc = 0;
	pthread_mutex_lock(&s->mu);
	if (s->sess && sess_renewable(s->sess)) {
		struct zsess *fresh;
		rc = sess_new(s, &fresh);
		if (rc == 0) {
			old = s->sess;
			s->sess = fresh;
			old->refs--; /* the store's reference */
			if (old->refs > 0)
				old = NULL; /* its last user will close it */
		}
	}
	if (s->sess)
		s->sess->refs++;
	*out = s->sess;
	pthread_mutex_unlock(&s->mu);
	if (old)
		sess_free(old);
	if (rc)
		topo_err("zk: cannot start a new ZooKeeper session: %s",
			 strerror(-rc));
	return *out ? 0 : -EIO;
}

/* A connected session by the deadline (renewing expired ones), referenced. */
static int sess_get(struct topo_store *s, int64_t deadline, struct zsess **out)
{
	for (;;) {
		struct zsess *ss;
		int rc = sess_current(s, &ss);
		if (rc)
			return rc;
		rc = sess_wait(ss, deadline);
		if (rc == 0) {
			*out = ss;
			return 0;
		}
		bool retry = sess_renewable(ss) && now_ms() < deadline;
		sess_put(s, ss);
		if (!retry)
			return rc;
	}
}

/* ---- single requests ----------------------------------------------------- */

/* Whether a request only reads (and so may simply be sent again). */
static bool req_is_read(const struct zreq *r)
{
	return r->kind == ZR_GET || r->kind == ZR_CHILDREN ||
	       r->kind == ZR_EXISTS || r->kind == ZR_ACL;
}

/* Free a list of requests linked by `next`. */
static void req_free_list(struct zreq *r)
{
	while (r) {
		struct zreq *next = r->next;
		req_free(r);
		r = next;
	}
}

/* Send reqs[0..n) in this order on one connected session (which applies
 * them in order) and wait for every answer: 0 with each reqs[i]->rc set,
 * or a negative errno, and then every reqs[i] is consumed. */
static int call_all(struct topo_store *s, struct zreq **reqs, size_t n,
		    int64_t deadline, const char *what)
{
	struct zsess *ss;
	struct zbatch *b = NULL;
	int rc = sess_get(s, deadline, &ss);
	if (rc == -EIO)
		topo_err("zk: %s %s: not connected to ZooKeeper at %s", what,
			 reqs[0]->path, s->servers);
	if (!rc && !(b = batch_new())) {
		sess_put(s, ss);
		rc = -ENOMEM;
	}
	if (rc) {
		for (size_t i = 0; i < n; i++)
			req_free(reqs[i]);
		return rc;
	}
	char *path = strdup(reqs[0]->path); /* for the log, once r is gone */
	size_t sent = 0, got = 0;
	int zrc = ZOK;
	for (; sent < n && zrc == ZOK; sent++)
		zrc = req_submit(ss, b, reqs[sent]);
	if (zrc != ZOK)
		sent--; /* that one is consumed */
	for (size_t i = sent + (zrc != ZOK); i < n; i++)
		req_free(reqs[i]); /* never sent */
	struct zreq *answered = NULL, *r;
	while (got < sent && (r = batch_next(b, deadline))) {
		r->next = answered;
		answered = r;
		got++;
	}
	batch_unref(b);
	sess_put(s, ss);
	if (zrc == ZOK && got == n) {
		free(path);
		return 0;
	}
	req_free_list(answered);
	if (zrc != ZOK)
		rc = zk_errno(zrc, what, path ? path : "?");
	else
		topo_err("zk: %s %s: no answer within %u ms", what,
			 path ? path : "?", s->timeout_ms);
	free(path);
	return zrc != ZOK ? rc : -EIO;
}

/* Send r once on a connected session and wait for the answer: 0 with
 * r->rc set, or a negative errno (r is then consumed). */
static int call_once(struct topo_store *s, struct zreq *r, int64_t deadline,
		     const char *what)
{
	return call_all(s, &r, 1, deadline, what);
}

/* Like call_once, but reads are sent again after a connection loss. */
static int zk_call(struct topo_store *s, struct zreq *r, int64_t deadline,
		   const char *what)
{
	for (;;) {
		int rc = call_once(s, r, deadline, what);
		if (rc || !req_is_read(r) || !conn_lost(r->rc))
			return rc;
		if (now_ms() + 20 >= deadline)
			return 0; /* the caller maps the connection loss */
		usleep(20000);	  /* let the session notice, then wait for it */
	}
}

/* The operation's deadline. */
static int64_t deadline_of(const struct topo_store *s)
{
	return now_ms() + s->timeout_ms;
}

/* ---- metadata ------------------------------------------------------------ */

/* Our metadata from a znode's stat. */
static void meta_of(const struct Stat *st, struct topo_meta *m)
{
	memset(m, 0, sizeof(*m));
	m->version = st->version;
	m->create_id = st->czxid;
	m->modify_id = st->mzxid;
	m->change_count = st->version;
	m->child_count = st->cversion;
	m->num_children = st->numChildren;
	m->ctime_ns = st->ctime * 1000000;
	m->mtime_ns = st->mtime * 1000000;
	m->lease = st->ephemeralOwner;
	m->ephemeral = st->ephemeralOwner != 0;
	m->size = st->dataLength > 0 ? (uint64_t)st->dataLength : 0;
	m->has_data = true;
	m->real_dir = st->numChildren > 0;
}

/* Read one znode by absolute path: 0 with *out (answered, ZOK) or errno. */
static int read_node_w(struct topo_store *s, const char *abs, int64_t deadline,
		       bool watch, struct zreq **out)
{
	struct zreq *r = req_new(ZR_GET, abs);
	if (!r)
		return -ENOMEM;
	r->watch = watch;
	int rc = zk_call(s, r, deadline, "get");
	if (rc)
		return rc;
	if (r->rc != ZOK) {
		rc = zk_errno(r->rc, "get", abs);
		req_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

/* Read one znode without leaving a watch. */
static int read_node(struct topo_store *s, const char *abs, int64_t deadline,
		     struct zreq **out)
{
	return read_node_w(s, abs, deadline, false, out);
}

/* Whether a znode exists (0 or -ENOENT, else an errno); leaves a watch
 * if `watch` (on a missing node, one that fires when it is created). */
static int node_exists(struct topo_store *s, const char *abs, int64_t deadline,
		       bool watch)
{
	struct zreq *r = req_new(ZR_EXISTS, abs);
	if (!r)
		return -ENOMEM;
	r->watch = watch;
	int rc = zk_call(s, r, deadline, "exists");
	if (rc)
		return rc; /* r consumed */
	rc = zk_errno(r->rc, "exists", abs);
	req_free(r);
	return rc;
}

/* Whether a read answer holds exactly this value. */
static bool same_value(const struct zreq *g, const void *value, size_t len)
{
	return (size_t)g->value_len == len &&
	       (len == 0 || memcmp(g->value, value, len) == 0);
}

/* ---- open / close -------------------------------------------------------- */

/* Free a store and its strings (its session already dropped). */
static void store_free(struct topo_store *s)
{
	if (!s)
		return;
	free(s->servers);
	free(s->root);
	free(s->auth_file);
	free(s->auth_scheme);
	free(s->auth_cert);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->wcv);
	pthread_mutex_destroy(&s->wmu);
	free(s);
}

/* Copy the settings into a new store; a reason in errbuf on failure. */
static int store_new(const struct topo_conf *conf, struct topo_store **out,
		     char *errbuf, size_t errlen)
{
	if (!conf->servers || !conf->servers[0]) {
		snprintf(errbuf, errlen, "no ZooKeeper server address given");
		return -EINVAL;
	}
	struct topo_store *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->wmu, NULL);
	pthread_cond_init(&s->wcv, NULL);
	s->timeout_ms = conf->timeout_ms ? conf->timeout_ms : 10000;
	s->session_ms = zk_session_ms(s->timeout_ms);
	s->missing_root_ok = conf->missing_root_ok;
	s->servers = strdup(conf->servers);
	int rc =
	    zk_root_norm(conf->root ? conf->root : "/vitess/global", &s->root);
	if (rc == -EINVAL)
		snprintf(errbuf, errlen, "root %s is not an absolute path",
			 conf->root);
	else if (!rc && !s->servers)
		rc = -ENOMEM;
	if (!rc && conf->zk_auth_file) {
		s->auth_file = strdup(conf->zk_auth_file);
		rc = s->auth_file
			 ? zk_auth_read(conf->zk_auth_file, &s->auth_scheme,
					&s->auth_cert, errbuf, errlen)
			 : -ENOMEM;
	}
	if (rc) {
		if (rc == -ENOMEM)
			snprintf(errbuf, errlen, "out of memory");
		store_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

static int create_root(struct topo_store *s, int64_t deadline);

/* Check that the root znode exists (making it with -o create_root) and can
 * hold children. */
static int check_root(struct topo_store *s, int64_t deadline, char *errbuf,
		      size_t errlen)
{
	const char *root = s->root[0] ? s->root : "/";
	struct zreq *g;
	int rc = read_node(s, root, deadline, &g);
	if (rc == -ENOENT && s->missing_root_ok) {
		rc = create_root(s, deadline);
		if (rc == 0)
			rc = read_node(s, root, deadline, &g);
	}
	if (rc == -ENOENT)
		snprintf(
		    errbuf, errlen,
		    "root %s does not exist in ZooKeeper (use -o create_root)",
		    root);
	else if (rc == -EACCES)
		snprintf(errbuf, errlen,
			 "not allowed to read root %s in ZooKeeper (%s%s)",
			 root,
			 s->auth_file ? "with the credentials in "
				      : "no --topo_zk_auth_file given",
			 s->auth_file ? s->auth_file : "");
	else if (rc)
		snprintf(errbuf, errlen,
			 "cannot read root %s in ZooKeeper at %s", root,
			 s->servers);
	if (rc)
		return rc;
	if (g->stat.ephemeralOwner != 0) {
		snprintf(errbuf, errlen, "root %s is an ephemeral znode", root);
		rc = -ENOTDIR;
	}
	req_free(g);
	return rc;
}

static void zk_close(struct topo_store *s);

/* Connect, wait for the session, and check the root. */
static int zk_open(const struct topo_conf *conf, struct topo_store **out,
		   char *errbuf, size_t errlen)
{
	struct topo_store *s;
	int rc = store_new(conf, &s, errbuf, errlen);
	if (rc)
		return rc;
	int64_t deadline = deadline_of(s);
	rc = sess_new(s, &s->sess);
	if (rc) {
		snprintf(
		    errbuf, errlen,
		    "cannot use ZooKeeper address %s (bad or unknown host)",
		    s->servers);
		store_free(s);
		return rc == -ENOMEM ? rc : -EINVAL;
	}
	rc = sess_wait(s->sess, deadline);
	if (rc == -EACCES)
		snprintf(errbuf, errlen,
			 "ZooKeeper at %s refused the credentials in %s",
			 s->servers, s->auth_file);
	else if (rc)
		snprintf(errbuf, errlen, "cannot reach ZooKeeper at %s",
			 s->servers);
	else
		rc = check_root(s, deadline, errbuf, errlen);
	if (rc) {
		zk_close(s);
		return rc;
	}
	topo_debug("zk: connected to %s, root %s, session timeout %d ms",
		   s->servers, s->root[0] ? s->root : "/", s->session_ms);
	*out = s;
	return 0;
}

/* Close the session (waits for the client's threads) and free the store.
 * No notice is delivered once this has begun, nor after it returns. */
static void zk_close(struct topo_store *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->wmu);
	s->closed = true;
	while (s->delivering > 0)
		pthread_cond_wait(&s->wcv, &s->wmu);
	pthread_mutex_unlock(&s->wmu);
	pthread_mutex_lock(&s->mu);
	struct zsess *ss = s->sess;
	s->sess = NULL;
	pthread_mutex_unlock(&s->mu);
	if (ss)
		sess_put(s, ss);
	store_free(s);
}

/* ---- watch --------------------------------------------------------------- */

/* Start change notices: from now on list() and get() leave watches on what
 * they read, and fired watches and session expiry reach fn. */
static int zk_watch(struct topo_store *s, topo_change_fn fn, void *arg)
{
	if (!fn)
		return -EINVAL;
	pthread_mutex_lock(&s->wmu);
	s->fn = fn;
	s->fn_arg = arg;
	pthread_mutex_unlock(&s->wmu);
	return 0;
}

/* Whether reads leave watches. */
static bool watching(struct topo_store *s)
{
	pthread_mutex_lock(&s->wmu);
	bool w = s->fn != NULL && !s->closed;
	pthread_mutex_unlock(&s->wmu);
	return w;
}

/* ---- list ---------------------------------------------------------------- */

/* One pipelined walk over a subtree. */
struct walk {
	struct topo_store *s;
	struct zsess *ss;
	struct zbatch *b;
	struct topo_listing *out;
	struct zreq *todo, **todo_tail; /* made, not sent yet */
	size_t inflight;
	bool reconnect; /* wait for the session before sending */
	bool watch;	/* leave watches on what is read */
	int64_t deadline;
	const char *top; /* absolute path of the listed node */
};

/* Queue a request for `abs` (taken over: freed here on failure). */
static int walk_push(struct walk *w, enum zreq_kind kind, char *abs)
{
	if (!abs)
		return -ENOMEM;
	struct zreq *r = req_new(kind, abs);
	free(abs);
	if (!r)
		return -ENOMEM;
	r->watch = w->watch;
	*w->todo_tail = r;
	w->todo_tail = &r->next;
	return 0;
}

/* Queue the reads of a node (`abs` taken over). Watched, a node's children
 * are asked at once, whether it has any or not: the child watch on a leaf
 * is what tells that it became a directory. Unwatched, they are asked
 * when its data shows it has some. */
static int walk_push_node(struct walk *w, char *abs)
{
	if (!w->watch)
		return walk_push(w, ZR_GET, abs);
	int rc = walk_push(w, ZR_CHILDREN, abs ? strdup(abs) : NULL);
	int rc2 = walk_push(w, ZR_GET, abs);
	return rc ? rc : rc2;
}

/* Queue an answered request again (after a connection loss). */
static void walk_requeue(struct walk *w, struct zreq *r)
{
	r->next = NULL;
	*w->todo_tail = r;
	w->todo_tail = &r->next;
	w->reconnect = true;
}

/* Send queued requests while the window has room. */
static int walk_pump(struct walk *w)
{
	if (w->reconnect && w->todo) {
		usleep(20000);
		int rc = sess_wait(w->ss, w->deadline);
		if (rc) {
			topo_err("zk: list: connection to ZooKeeper at %s lost",
				 w->s->servers);
			return rc;
		}
		w->reconnect = false;
	}
	while (w->todo && w->inflight < ZK_WINDOW) {
		struct zreq *r = w->todo;
		w->todo = r->next;
		if (!w->todo)
			w->todo_tail = &w->todo;
		char *path = strdup(r->path);
		int zrc = req_submit(w->ss, w->b, r);
		int rc =
		    zrc == ZOK ? 0 : zk_errno(zrc, "list", path ? path : "?");
		free(path);
		if (rc)
			return rc;
		w->inflight++;
	}
	return 0;
}

/* Add a node's answer to the listing and queue its children. */
static int walk_node(struct walk *w, struct zreq *r)
{
	struct topo_meta m;
	meta_of(&r->stat, &m);
	m.size = (uint64_t)r->value_len;
	const char *rel = zk_rel_path(w->s->root, r->path);
	int rc = topo_listing_add(w->out, rel, strlen(rel), &m,
				  (unsigned char *)r->value);
	if (rc)
		return rc;
	r->value = NULL; /* now the listing's */
	if (r->stat.numChildren > 0 && !w->watch)
		rc = walk_push(w, ZR_CHILDREN, strdup(r->path));
	return rc;
}

/* Queue the reads of every child named in the answer. */
static int walk_children(struct walk *w, struct zreq *r)
{
	const char *name = r->names;
	for (int i = 0; i < r->nnames; i++) {
		int rc = walk_push_node(w, zk_join(r->path, name));
		if (rc)
			return rc;
		name += strlen(name) + 1;
	}
	return 0;
}

/* A node below the listed one that our credentials may not read: its name
 * (from its parent's children) is all that shows, so that one protected
 * znode does not make the whole listing fail. */
static int walk_denied(struct walk *w, struct zreq *r)
{
	if (r->kind != ZR_GET)
		return 0; /* its children stay unknown */
	/* shown as a directory: its listing and anything below it are
	 * EACCES (a protected znode is most often a subtree) */
	struct topo_meta m = {
	    .has_data = true, .real_dir = true, .denied = true};
	const char *rel = zk_rel_path(w->s->root, r->path);
	return topo_listing_add(w->out, rel, strlen(rel), &m, NULL);
}

/* Handle one answer of the walk (r is the walk's to keep or free). */
static int walk_take(struct walk *w, struct zreq *r)
{
	int rc = 0;
	if (conn_lost(r->rc) && now_ms() < w->deadline) {
		walk_requeue(w, r);
		return 0;
	}
	if (r->rc == ZOK)
		rc = r->kind == ZR_GET ? walk_node(w, r) : walk_children(w, r);
	else if (r->rc == ZNOAUTH && strcmp(r->path, w->top) != 0)
		rc = walk_denied(w, r);
	else if (r->rc != ZNONODE) /* vanished mid-walk: skip */
		rc = zk_errno(r->rc, "list", r->path);
	req_free(r);
	return rc;
}

/* Free the requests not sent yet. */
static void walk_drop(struct walk *w)
{
	while (w->todo) {
		struct zreq *r = w->todo;
		w->todo = r->next;
		req_free(r);
	}
}

/* Run the walk until every answer is in. */
static int walk_run(struct walk *w)
{
	int rc = walk_pump(w);
	while (!rc && w->inflight > 0) {
		struct zreq *r = batch_next(w->b, w->deadline);
		if (!r) {
			topo_err("zk: list: no answer from ZooKeeper at %s "
				 "within %u ms",
				 w->s->servers, w->s->timeout_ms);
			return -EIO;
		}
		w->inflight--;
		/* A long listing is bounded by progress: it fails when no
		 * answer comes for timeout_ms, not after timeout_ms in all
		 * (a watched listing of 10,000 nodes is 20,000 requests). */
		w->deadline = now_ms() + w->s->timeout_ms;
		rc = walk_take(w, r);
		if (!rc)
			rc = walk_pump(w);
	}
	return rc;
}

/* Every node at path and below, pipelined, breadth first. */
static int zk_list(struct topo_store *s, const char *path,
		   struct topo_listing *out)
{
	struct walk w = {
	    .s = s,
	    .out = out,
	    .watch = watching(s),
	    .deadline = deadline_of(s),
	};
	w.todo_tail = &w.todo;
	memset(out, 0, sizeof(*out));
	int rc = sess_get(s, w.deadline, &w.ss);
	if (rc) {
		topo_err("zk: list %s: not connected to ZooKeeper at %s", path,
			 s->servers);
		return rc;
	}
	char *top = zk_abs_path(s->root, path);
	w.top = top;
	w.b = batch_new();
	rc = w.b && top ? walk_push_node(&w, strdup(top)) : -ENOMEM;
	if (!rc)
		rc = walk_run(&w);
	walk_drop(&w);
	if (w.b)
		batch_unref(w.b); /* answers still in flight free themselves */
	sess_put(s, w.ss);
	free(top);
	if (rc)
		topo_listing_free(out);
	else
		topo_listing_sort(out);
	return rc;
}

/* ---- get ----------------------------------------------------------------- */

/* Send watched reads of abs, one of each of kinds[0..n), without waiting
 * for them: the answers free themselves with their batch. Sent before a
 * later request of this thread, they reach the server first (a session
 * is served in order). */
static void leave_watches(struct topo_store *s, const char *abs,
			  const enum zreq_kind *kinds, size_t n)
{
	struct zsess *ss;
	if (!watching(s) || sess_get(s, deadline_of(s), &ss))
		return;
	struct zbatch *b = batch_new();
	for (size_t i = 0; b && i < n; i++) {
		struct zreq *r = req_new(kinds[i], abs);
		if (!r)
			break;
		r->watch = true;
		if (req_submit(ss, b, r) != ZOK)
			break; /* r consumed */
	}
	if (b)
		batch_unref(b);
	sess_put(s, ss);
}

/* One node with its value. */
static int zk_get(struct topo_store *s, const char *path,
		  struct topo_entry *out)
{
	char *abs = zk_abs_path(s->root, path);
	if (!abs)
		return -ENOMEM;
	struct zreq *g;
	int64_t deadline = deadline_of(s);
	bool watch = watching(s);
	/* Watched, a node read here is watched as a listing would leave it:
	 * its children too, read first. Without that child watch, a file the
	 * cache learnt of by get() (one another client created) that then
	 * gains a child is never told, and shows as a file for good. */
	const enum zreq_kind kids = ZR_CHILDREN;
	leave_watches(s, abs, &kids, 1); /* (none when not watching) */
	int rc = read_node_w(s, abs, deadline, watch, &g);
	/* Watched, a missing node gets an exists watch, which tells its
	 * creation; if it was created in between, read it again. */
	for (int i = 0; rc == -ENOENT && watch && i < 3; i++) {
		rc = node_exists(s, abs, deadline, true);
		if (rc == 0)
			rc = read_node_w(s, abs, deadline, true, &g);
		else if (rc == -ENOENT)
			break;
	}
	free(abs);
	if (rc)
		return rc;
	memset(out, 0, sizeof(*out));
	out->path = strdup(path);
	if (!out->path) {
		req_free(g);
		return -ENOMEM;
	}
	meta_of(&g->stat, &out->meta);
	out->meta.size = (uint64_t)g->value_len;
	out->value = (unsigned char *)g->value;
	g->value = NULL;
	req_free(g);
	return 0;
}

/* children: see backend.h. */
static int zk_children(struct topo_store *s, const char *path, char **names,
		       size_t *count)
{
	*names = NULL;
	*count = 0;
	char *abs = zk_abs_path(s->root, path);
	struct zreq *r = abs ? req_new(ZR_CHILDREN, abs) : NULL;
	free(abs);
	if (!r)
		return -ENOMEM;
	r->watch = watching(s);
	int rc = zk_call(s, r, deadline_of(s), "list children of");
	if (rc)
		return rc; /* r consumed */
	rc = zk_errno(r->rc, "list children of", r->path);
	if (rc == 0) {
		*names = r->names;
		*count = (size_t)r->nnames;
		r->names = NULL;
	}
	req_free(r);
	return rc;
}

/* ---- writes -------------------------------------------------------------- */

/* One write's inputs. */
struct wr {
	struct topo_store *s;
	const char *abs;
	const void *value;
	size_t len;
	int version;   /* set/delete: expected version, -1 for any */
	int64_t czxid; /* set: the znode read, by its czxid (0: any) */
	int64_t deadline;
	struct topo_meta *meta; /* may be NULL */
	bool parents;		/* create: make missing ancestors first */
	struct zk_acls *acls;	/* creates: ACLs learnt during the call */
};

/* Send a create/set/delete of w once: 0 with *out answered, or errno. */
static int wr_send(const struct wr *w, enum zreq_kind kind,
		   const struct ACL_vector *acl, struct zreq **out)
{
	struct zreq *r = req_new(kind, w->abs);
	if (!r)
		return -ENOMEM;
	r->in_acl = acl;
	r->in_value = w->len ? w->value : "";
	r->in_len = (int)w->len;
	r->in_version = w->version;
	const char *what = kind == ZR_CREATE ? "create"
			   : kind == ZR_SET  ? "set"
					     : "delete";
	int rc = zk_call(w->s, r, w->deadline, what);
	if (rc == 0)
		*out = r;
	return rc;
}

/* Finish a write from its answer: meta on success, the errno otherwise. */
static int wr_finish(const struct wr *w, struct zreq *r, const char *what)
{
	int rc = zk_errno(r->rc, what, w->abs);
	if (rc == 0 && w->meta)
		meta_of(&r->stat, w->meta);
	if (rc == 0 && w->meta)
		w->meta->size = w->len;
	req_free(r);
	return rc;
}

/* Ask the ACLs of abs[i][0..lens[i]) for i < n, pipelined, and remember
 * in `acls` those of the nodes that exist (a missing one is left out). */
static int acls_fetch(struct topo_store *s, const char *const *abs,
		      const size_t *lens, size_t n, struct zk_acls *acls,
		      int64_t deadline)
{
	struct zreq **rs = calloc(n ? n : 1, sizeof(*rs));
	int rc = rs ? 0 : -ENOMEM;
	for (size_t i = 0; !rc && i < n; i++) {
		char *p = strndup(abs[i], lens[i]);
		rs[i] = p ? req_new(ZR_ACL, p) : NULL;
		free(p);
		rc = rs[i] ? 0 : -ENOMEM;
	}
	if (rc) {
		for (size_t i = 0; rs && i < n; i++)
			req_free(rs[i]);
		free(rs);
		return rc;
	}
	rc = call_all(s, rs, n, deadline, "get ACL of");
	if (rc) {
		free(rs); /* the requests are consumed */
		return rc;
	}
	bool lost = false;
	for (size_t i = 0; i < n; i++) {
		struct zreq *r = rs[i];
		if (rc)
			;
		else if (r->rc == ZOK)
			rc = zk_acls_add(acls, abs[i], lens[i], &r->acl);
		else if (conn_lost(r->rc))
			lost = true;
		else if (r->rc != ZNONODE)
			rc = zk_errno(r->rc, "get ACL of", r->path);
		req_free(r);
	}
	free(rs);
	if (!rc && lost && now_ms() + 20 < deadline) {
		usleep(20000); /* let the session notice, then ask again */
		return acls_fetch(s, abs, lens, n, acls, deadline);
	}
	if (!rc && lost)
		rc = zk_errno(ZCONNECTIONLOSS, "get ACL of", abs[0]);
	return rc;
}

/* The ACL a new znode at `abs` takes: its parent's, asked once per call
 * (the pointer is valid until the next zk_acls_add). -ENOENT if the
 * parent does not exist. */
static int parent_acl(struct topo_store *s, const char *abs,
		      struct zk_acls *acls, int64_t deadline,
		      const struct ACL_vector **out)
{
	size_t plen = zk_parent_len(abs);
	if (!zk_acls_find(acls, abs, plen)) {
		int rc = acls_fetch(s, &abs, &plen, 1, acls, deadline);
		if (rc)
			return rc;
	}
	*out = zk_acls_find(acls, abs, plen);
	return *out ? 0 : -ENOENT;
}

/* Create (empty data) the znodes abs[0..lens[i]), i < n, each the parent
 * of the next, and the parent of the first existing: one pipelined round
 * trip for their ACLs, one for the creates (a session applies its
 * requests in order). A node that is missing takes the ACL of its parent
 * (for a chain of missing ones: that of the deepest existing ancestor);
 * one that exists is left as it is. */
static int make_chain(struct topo_store *s, const char *abs, const size_t *lens,
		      size_t n, struct zk_acls *acls, int64_t deadline)
{
	if (n == 0)
		return 0;
	char *top = strndup(abs, lens[0]);
	if (!top)
		return -ENOMEM;
	size_t q[129], nq = 0, plen = zk_parent_len(top);
	const char *qabs[129];
	free(top);
	if (!zk_acls_find(acls, abs, plen))
		q[nq++] = plen;
	for (size_t i = 0; i < n && i < 128; i++)
		if (!zk_acls_find(acls, abs, lens[i]))
			q[nq++] = lens[i];
	for (size_t i = 0; i < nq; i++)
		qabs[i] = abs;
	int rc = nq ? acls_fetch(s, qabs, q, nq, acls, deadline) : 0;
	if (!rc && !zk_acls_find(acls, abs, plen))
		rc = -ENOENT; /* the first one's parent is missing */
	for (size_t i = 0; !rc && i < n; i++) {
		size_t up = i ? lens[i - 1] : plen;
		if (!zk_acls_find(acls, abs, lens[i]))
			rc = zk_acls_add(acls, abs, lens[i],
					 zk_acls_find(acls, abs, up));
	}
	struct zreq **rs = rc ? NULL : calloc(n, sizeof(*rs));
	if (!rc && !rs)
		rc = -ENOMEM;
	for (size_t i = 0; !rc && i < n; i++) {
		char *p = strndup(abs, lens[i]);
		rs[i] = p ? req_new(ZR_CREATE, p) : NULL;
		free(p);
		if (!rs[i]) {
			for (size_t j = 0; j < i; j++)
				req_free(rs[j]);
			rc = -ENOMEM;
			break;
		}
		rs[i]->in_value = "";
		rs[i]->in_acl = zk_acls_find(acls, abs, lens[i]);
	}
	if (!rc)
		rc = call_all(s, rs, n, deadline, "create parent");
	if (rc) {
		free(rs); /* the requests are consumed */
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		struct zreq *r = rs[i];
		if (!rc && r->rc != ZOK && r->rc != ZNODEEXISTS)
			rc = zk_errno(r->rc, "create parent", r->path);
		req_free(r);
	}
	free(rs);
	return rc;
}
/* Create the missing ancestors of w->abs below the root. Never creates
 * the root itself: a missing root gives -ENOENT. */
static int make_parents(const struct wr *w)
{
	size_t lens[128], n = zk_ancestors(w->s->root, w->abs, lens, 128);
	if (n > 128)
		return -ENAMETOOLONG;
	return make_chain(w->s, w->abs, lens, n, w->acls, w->deadline);
}

/* Create the root and its missing ancestors (empty data). */
static int create_root(struct topo_store *s, int64_t deadline)
{
	size_t lens[129], n = zk_ancestors("", s->root, lens, 128);
	if (n > 128)
		return -ENAMETOOLONG;
	lens[n++] = strlen(s->root);
	struct zk_acls acls = {0};
	int rc = make_chain(s, s->root, lens, n, &acls, deadline);
	zk_acls_free(&acls);
	if (!rc)
		topo_info("zk: created root %s", s->root);
	return rc;
}

/* Finish a write sent a second time after a connection loss: a second loss
 * right after a successful re-read means the server refuses the request,
 * which it does (by closing the connection) for one over jute.maxbuffer. */
static int wr_finish_retry(const struct wr *w, struct zreq *r, const char *what)
{
	if (conn_lost(r->rc) && w->len > 65536) {
		topo_err(
		    "zk: %s %s: the server dropped the connection twice on "
		    "a %zu-byte value: too large for it",
		    what, w->abs, w->len);
		req_free(r);
		return -EFBIG;
	}
	return wr_finish(w, r, what);
}

static int do_create(const struct wr *w, bool settle);

/* After our own create of abs, leave the watches a listing would have left
 * on it (data and children: see Watches), so that other clients' changes
 * to it are told although no listing reads it. */
static void watch_created(struct topo_store *s, const char *abs)
{
	const enum zreq_kind kinds[] = {ZR_EXISTS, ZR_CHILDREN};
	leave_watches(s, abs, kinds, 2);
}

/* A create was cut off by a connection loss: did it land? It did if the
 * node holds our value; it did not if the node is absent: send it again. */
static int create_settle(const struct wr *w)
{
	struct zreq *g;
	topo_debug("zk: create %s: connection lost, checking", w->abs);
	int rc = read_node(w->s, w->abs, w->deadline, &g);
	if (rc == -ENOENT)
		return do_create(w, false);
	if (rc)
		return rc;
	rc = same_value(g, w->value, w->len) ? 0 : -EEXIST;
	if (rc == 0 && w->meta)
		meta_of(&g->stat, w->meta);
	req_free(g);
	return rc;
}

/* Create w's node (and its missing ancestors if w->parents); settle a
 * connection loss if `settle`, else report it (second attempt). */
static int do_create(const struct wr *w, bool settle)
{
	const struct ACL_vector *acl;
	int rc = parent_acl(w->s, w->abs, w->acls, w->deadline, &acl);
	if (rc == -ENOENT && w->parents) {
		rc = make_parents(w);
		if (!rc)
			rc = parent_acl(w->s, w->abs, w->acls, w->deadline,
					&acl);
	}
	if (rc)
		return rc;
	struct zreq *r;
	rc = wr_send(w, ZR_CREATE, acl, &r);
	if (rc)
		return rc;
	if (r->rc == ZNONODE && w->parents) {
		/* the parent was deleted since we asked its ACL */
		req_free(r);
		rc = make_parents(w);
		if (!rc)
			rc = parent_acl(w->s, w->abs, w->acls, w->deadline,
					&acl);
		if (!rc)
			rc = wr_send(w, ZR_CREATE, acl, &r);
		if (rc)
			return rc;
	}
	if (conn_lost(r->rc) && settle) {
		req_free(r);
		return create_settle(w);
	}
	rc = settle ? wr_finish(w, r, "create")
		    : wr_finish_retry(w, r, "create");
	if (rc == 0)
		watch_created(w->s, w->abs);
	return rc;
}

static int set_answer(const struct wr *w, struct zreq *r, bool retry);

/* A set was cut off by a connection loss: it landed if the node holds our
 * value at version v+1 (any version for an unconditional set); if the node
 * is still at v, send it again; otherwise another client got in between
 * (or the znode is another one, w->czxid). */
static int set_settle(const struct wr *w)
{
	struct zreq *g;
	topo_debug("zk: set %s: connection lost, checking", w->abs);
	int rc = read_node(w->s, w->abs, w->deadline, &g);
	if (rc)
		return rc;
	enum zk_set_fate fate =
	    zk_set_fate(w->version, w->czxid, g->stat.version, g->stat.czxid,
			same_value(g, w->value, w->len));
	if (fate == ZK_SET_LANDED && w->meta)
		meta_of(&g->stat, w->meta);
	req_free(g);
	if (fate == ZK_SET_LANDED)
		return 0;
	if (fate == ZK_SET_CONFLICT) {
		topo_warn("zk: set %s: changed by another client while the "
			  "connection was lost",
			  w->abs);
		return -ESTALE;
	}
	struct zreq *r;
	rc = wr_send(w, ZR_SET, NULL, &r);
	return rc ? rc : set_answer(w, r, true);
}

/* The node at w's path is not the znode the writer read (w->czxid). */
static int set_recreated(const struct wr *w, int64_t czxid, bool written)
{
	if (written)
		topo_err("zk: set %s: wrote over a znode another client "
			 "created at that path (czxid 0x%llx, not 0x%llx) at "
			 "the same time",
			 w->abs, (unsigned long long)czxid,
			 (unsigned long long)w->czxid);
	else
		topo_warn("zk: set %s: deleted and created again by another "
			  "client since it was read (czxid 0x%llx, not 0x%llx)",
			  w->abs, (unsigned long long)czxid,
			  (unsigned long long)w->czxid);
	return -ESTALE;
}

/* Finish a set from its answer (`retry`: sent a second time). A znode
 * re-created between our check of it and the set shows in the answer's
 * stat, that of the znode written: too late to keep the other client's
 * value, but never reported as our success. */
static int set_answer(const struct wr *w, struct zreq *r, bool retry)
{
	if (r->rc == ZOK && !zk_same_node(w->czxid, r->stat.czxid)) {
		int rc = set_recreated(w, r->stat.czxid, true);
		req_free(r);
		return rc;
	}
	return retry ? wr_finish_retry(w, r, "set") : wr_finish(w, r, "set");
}

/* Before a set on the znode w->czxid: is that znode still at the path?
 * setData's version check cannot tell: a znode deleted and created again
 * restarts its data version at 0 and may reach the expected one again.
 * (No ZooKeeper request compares a czxid, so this is a read of its own,
 * answered before the set is sent.) 0, -ENOENT, -ESTALE or errno. */
static int set_check_node(const struct wr *w)
{
	struct zreq *r = req_new(ZR_EXISTS, w->abs);
	if (!r)
		return -ENOMEM;
	int rc = zk_call(w->s, r, w->deadline, "exists");
	if (rc)
		return rc; /* r consumed */
	rc = zk_errno(r->rc, "exists", w->abs);
	if (rc == 0 && !zk_same_node(w->czxid, r->stat.czxid))
		rc = set_recreated(w, r->stat.czxid, false);
	req_free(r);
	return rc;
}

/* Set w's node's value with version w->version (-1: any), on the znode
 * w->czxid if not 0. */
static int do_set(const struct wr *w)
{
	struct zreq *r;
	int rc = w->czxid ? set_check_node(w) : 0;
	if (!rc)
		rc = wr_send(w, ZR_SET, NULL, &r);
	if (rc)
		return rc;
	if (conn_lost(r->rc)) {
		req_free(r);
		return set_settle(w);
	}
	return set_answer(w, r, false);
}

/* A put on an absolute path, by `expect`. */
static int put_abs(struct wr *w, int64_t expect)
{
	w->parents = true;
	if (expect == TOPO_EXPECT_ABSENT)
		return do_create(w, true);
	w->version = expect == TOPO_EXPECT_ANY ? -1 : (int)expect;
	int rc = do_set(w);
	if (rc != -ENOENT || expect != TOPO_EXPECT_ANY)
		return rc;
	rc = do_create(w, true);
	if (rc == -EEXIST) /* another client created it meanwhile */
		rc = do_set(w);
	return rc;
}

/* Write a value with compare-and-set on `expect` and, for a version, on
 * the znode created at `czxid` (0: any). */
static int zk_put_same(struct topo_store *s, const char *path,
		       const void *value, size_t len, int64_t expect,
		       int64_t czxid, struct topo_meta *meta)
{
	if (expect < TOPO_EXPECT_ABSENT)
		return -EINVAL;
	if (expect > INT32_MAX)
		return -ESTALE; /* no znode has such a data version */
	if (len > ZK_MAX_VALUE)
		return -EFBIG;
	struct zk_acls acls = {0};
	struct wr w = {
	    .s = s,
	    .abs = zk_abs_path(s->root, path),
	    .value = value,
	    .len = len,
	    .deadline = deadline_of(s),
	    .meta = meta,
	    .acls = &acls,
	    .czxid = expect >= 0 ? czxid : 0,
	};
	if (!w.abs)
		return -ENOMEM;
	int rc = zk_fits(w.abs, len) ? put_abs(&w, expect) : -EFBIG;
	free((char *)w.abs);
	zk_acls_free(&acls);
	return rc;
}

/* The delete of w's node was cut off by a connection loss; `before` is
 * what the exists sent just ahead of it found: 1 the node at the expected
 * version, 0 no node, 2 another version, -1 no answer. An absent node
 * means our delete landed only if the node was there when it was sent:
 * the exists says so, or, without its answer, the caller's expected
 * version (it saw the node). Residual ambiguity: another client deleting
 * the node between our exists and our delete (or, without the exists'
 * answer, after the caller saw it) is reported as our success -- the
 * node is gone either way. */
static int del_settle(const struct wr *w, int before)
{
	topo_debug("zk: delete %s: connection lost, checking", w->abs);
	if (before == 0)
		return -ENOENT; /* nothing was there to delete */
	if (before == 2) {
		topo_warn("zk: delete %s: changed by another client", w->abs);
		return -ESTALE;
	}
	struct zreq *g;
	int rc = read_node(w->s, w->abs, w->deadline, &g);
	if (rc == -ENOENT && (before == 1 || w->version >= 0))
		return 0; /* ours landed */
	if (rc == -ENOENT) {
		topo_err("zk: delete %s: connection lost; the node is gone, "
			 "but whether it was there before is unknown",
			 w->abs);
		return -EIO;
	}
	if (rc)
		return rc;
	bool untouched = w->version < 0 || g->stat.version == w->version;
	req_free(g);
	if (!untouched)
		return -ESTALE;
	struct zreq *r;
	rc = wr_send(w, ZR_DELETE, NULL, &r);
	return rc ? rc : wr_finish(w, r, "delete");
}

/* Write a value with compare-and-set on `expect`. */
static int zk_put(struct topo_store *s, const char *path, const void *value,
		  size_t len, int64_t expect, struct topo_meta *meta)
{
	return zk_put_same(s, path, value, len, expect, 0, meta);
}

/* Delete w's node with version w->version, settling a connection loss.
 * An exists of the node goes just ahead of the delete on the same
 * session (no extra round trip): its answer says whether the node was
 * there for the delete, should the delete's own answer be lost. */
static int do_del(const struct wr *w)
{
	struct zreq *rs[2] = {req_new(ZR_EXISTS, w->abs),
			      req_new(ZR_DELETE, w->abs)};
	if (!rs[0] || !rs[1]) {
		req_free(rs[0]);
		req_free(rs[1]);
		return -ENOMEM;
	}
	rs[1]->in_version = w->version;
	int rc = call_all(w->s, rs, 2, w->deadline, "delete");
	if (rc)
		return rc;
	struct zreq *e = rs[0], *d = rs[1];
	int before = e->rc == ZNONODE ? 0 : -1;
	if (e->rc == ZOK)
		before =
		    w->version < 0 || e->stat.version == w->version ? 1 : 2;
	req_free(e);
	if (!conn_lost(d->rc))
		return wr_finish(w, d, "delete");
	req_free(d);
	return del_settle(w, before);
}

/* Delete one znode (never its parents) with compare-and-set on `expect`. */
static int zk_del(struct topo_store *s, const char *path, int64_t expect)
{
	if (expect < TOPO_EXPECT_ANY)
		return -EINVAL;
	if (expect > INT32_MAX)
		return -ESTALE;
	struct wr w = {
	    .s = s,
	    .abs = zk_abs_path(s->root, path),
	    .version = (int)expect,
	    .deadline = deadline_of(s),
	};
	if (!w.abs)
		return -ENOMEM;
	int rc = do_del(&w);
	free((char *)w.abs);
	return rc;
}

/* Create an empty znode; -EEXIST if present, -ENOENT without a parent.
 * *meta (may be NULL): the new znode's, from the create's answer. */
static int zk_mkdir_meta(struct topo_store *s, const char *path,
			 struct topo_meta *meta)
{
	struct zk_acls acls = {0};
	struct wr w = {
	    .s = s,
	    .abs = zk_abs_path(s->root, path),
	    .value = "",
	    .version = -1,
	    .deadline = deadline_of(s),
	    .meta = meta,
	    .acls = &acls,
	};
	if (!w.abs)
		return -ENOMEM;
	int rc = do_create(&w, true);
	free((char *)w.abs);
	zk_acls_free(&acls);
	return rc;
}

/* Create an empty znode; -EEXIST if present, -ENOENT without a parent. */
static int zk_mkdir(struct topo_store *s, const char *path)
{
	return zk_mkdir_meta(s, path, NULL);
}

/* ---- multi --------------------------------------------------------------- */

/* One multi's inputs. */
struct mu {
	struct topo_store *s;
	const struct topo_op *ops;
	size_t n;
	char **abs;	/* znode paths of ops */
	zoo_op_t *zops; /* the client's op descriptions */
	int64_t deadline;
	struct zk_acls acls; /* parents' ACLs, then those of the creates */
};

/* Whether op i creates a node. */
static bool mu_creates(const struct mu *m, size_t i)
{
	return m->ops[i].kind == TOPO_OP_PUT &&
	       m->ops[i].expect == TOPO_EXPECT_ABSENT;
}

/* Whether an op before `i` creates the node abs[0..len). */
static bool mu_created_before(const struct mu *m, size_t i, const char *abs,
			      size_t len)
{
	for (size_t j = 0; j < i; j++)
		if (mu_creates(m, j) && strlen(m->abs[j]) == len &&
		    memcmp(m->abs[j], abs, len) == 0)
			return true;
	return false;
}

/* The znode paths of the ops. */
static int mu_paths(struct mu *m)
{
	for (size_t i = 0; i < m->n; i++)
		if (!(m->abs[i] = zk_abs_path(m->s->root, m->ops[i].path)))
			return -ENOMEM;
	return 0;
}

/* The ACL of every node the multi creates: that of its parent, asked in
 * one pipelined round trip, or that of a node created by an earlier op.
 * -ENOENT if a parent neither exists nor is created before. */
static int mu_acls(struct mu *m)
{
	size_t nq = 0, *q = calloc(m->n, sizeof(*q));
	const char **qabs = calloc(m->n, sizeof(*qabs));
	int rc = q && qabs ? 0 : -ENOMEM;
	for (size_t i = 0; !rc && i < m->n; i++) {
		size_t plen = zk_parent_len(m->abs[i]);
		if (!mu_creates(m, i) ||
		    mu_created_before(m, i, m->abs[i], plen))
			continue;
		bool dup = false; /* asked for an earlier op already */
		for (size_t j = 0; j < nq && !dup; j++)
			dup = q[j] == plen &&
			      memcmp(qabs[j], m->abs[i], plen) == 0;
		if (!dup) {
			qabs[nq] = m->abs[i];
			q[nq++] = plen;
		}
	}
	if (!rc && nq)
		rc = acls_fetch(m->s, qabs, q, nq, &m->acls, m->deadline);
	for (size_t i = 0; !rc && i < m->n; i++) {
		if (!mu_creates(m, i))
			continue;
		size_t plen = zk_parent_len(m->abs[i]);
		const struct ACL_vector *a =
		    zk_acls_find(&m->acls, m->abs[i], plen);
		rc = a ? zk_acls_add(&m->acls, m->abs[i], strlen(m->abs[i]), a)
		       : -ENOENT;
	}
	free(q);
	free(qabs);
	return rc;
}

/* Describe op i to the client; adds its request bytes to *total. */
static int mu_build_one(struct mu *m, size_t i, size_t *total)
{
	const struct topo_op *op = &m->ops[i];
	const char *abs = m->abs[i];
	if (op->expect < TOPO_EXPECT_ABSENT)
		return -EINVAL;
	if (op->expect > INT32_MAX)
		return -ESTALE;
	int v = op->expect == TOPO_EXPECT_ANY ? -1 : (int)op->expect;
	*total += strlen(abs) + ZK_OP_OVERHEAD;
	if (op->kind == TOPO_OP_DELETE) {
		if (op->expect == TOPO_EXPECT_ABSENT)
			return -EINVAL;
		zoo_delete_op_init(&m->zops[i], abs, v);
		return 0;
	}
	if (op->len > ZK_MAX_VALUE)
		return -EFBIG;
	*total += op->len;
	const char *val = op->len ? op->value : "";
	if (op->expect == TOPO_EXPECT_ABSENT) {
		const struct ACL_vector *acl =
		    zk_acls_find(&m->acls, abs, strlen(abs));
		*total += zk_acl_bytes(acl);
		zoo_create_op_init(&m->zops[i], abs, val, (int)op->len, acl,
				   ZOO_PERSISTENT, NULL, 0);
	} else
		zoo_set_op_init(&m->zops[i], abs, val, (int)op->len, v, NULL);
	return 0;
}

/* Describe every op; -EFBIG if the whole request is over the limit. */
static int mu_build(struct mu *m)
{
	size_t total = ZK_OP_OVERHEAD;
	int rc = mu_paths(m);
	for (size_t i = 0; !rc && i < m->n; i++) /* before asking ACLs */
		if (m->ops[i].expect < TOPO_EXPECT_ABSENT ||
		    (m->ops[i].kind == TOPO_OP_DELETE &&
		     m->ops[i].expect == TOPO_EXPECT_ABSENT))
			rc = -EINVAL;
	if (!rc)
		rc = mu_acls(m);
	if (rc)
		return rc;
	for (size_t i = 0; !rc && i < m->n; i++)
		rc = mu_build_one(m, i, &total);
	if (rc)
		return rc;
	return total > ZK_PACKET_MAX ? -EFBIG : 0;
}

/* Send the multi once: 0 with *out answered, or errno. */
static int mu_send(const struct mu *m, struct zreq **out)
{
	struct zreq *r = req_new(ZR_MULTI, m->abs[0]);
	if (!r)
		return -ENOMEM;
	r->nops = (int)m->n;
	r->in_ops = m->zops;
	r->results = calloc(m->n, sizeof(*r->results));
	if (!r->results) {
		req_free(r);
		return -ENOMEM;
	}
	int rc = zk_call(m->s, r, m->deadline, "multi");
	if (rc == 0)
		*out = r;
	return rc;
}

/* The errno of a multi's answer: that of the first op that failed. */
static int mu_result(const struct mu *m, struct zreq *r)
{
	int rc = 0;
	for (size_t i = 0; r->rc != ZOK && i < m->n && !rc; i++) {
		int err = r->results[i].err;
		if (err != ZOK && err != ZRUNTIMEINCONSISTENCY)
			rc = zk_errno(err, "multi", m->abs[i]);
	}
	if (!rc && r->rc != ZOK)
		rc = zk_errno(r->rc, "multi", m->abs[0]);
	req_free(r);
	return rc;
}

/* Whether op i's effect is visible: 1, 0, or a negative errno. */
static int mu_visible(const struct mu *m, size_t i)
{
	const struct topo_op *op = &m->ops[i];
	struct zreq *g;
	int rc = read_node(m->s, m->abs[i], m->deadline, &g);
	if (op->kind == TOPO_OP_DELETE)
		return rc == -ENOENT ? 1 : rc == 0 ? (req_free(g), 0) : rc;
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	rc = same_value(g, op->value, op->len);
	req_free(g);
	return rc;
}

/* A multi was cut off by a connection loss: if every effect is visible it
 * landed; otherwise send it once more (its version checks keep a multi
 * that did land from applying twice). */
static int mu_settle(const struct mu *m)
{
	topo_debug("zk: multi %s: connection lost, checking", m->abs[0]);
	for (size_t i = 0; i < m->n; i++) {
		int v = mu_visible(m, i);
		if (v < 0)
			return v;
		if (v == 0) {
			struct zreq *r;
			int rc = mu_send(m, &r);
			return rc ? rc : mu_result(m, r);
		}
	}
	return 0;
}

/* Apply ops atomically with one zoo_amulti. */
static int mu_run(struct mu *m)
{
	int rc = mu_build(m);
	if (rc)
		return rc;
	struct zreq *r;
	rc = mu_send(m, &r);
	if (rc)
		return rc;
	if (!conn_lost(r->rc))
		return mu_result(m, r);
	req_free(r);
	return mu_settle(m);
}

/* A multi applied op: its node's new data version, where it follows from
 * the op (a create starts at 0; a set with a version check adds 1). */
static void mu_tell_version(const struct topo_op *op)
{
	if (op->kind != TOPO_OP_PUT || !op->version_out)
		return;
	if (op->expect == TOPO_EXPECT_ABSENT)
		*op->version_out = 0;
	else if (op->expect >= 0)
		*op->version_out = op->expect + 1;
}

static int zk_multi(struct topo_store *s, const struct topo_op *ops, size_t n);

/* zk_multi of ops[0..n) without its guards (there are some). Guards are
 * ignored (no TOPO_CAP_GUARD): ZooKeeper has no revision of a listing to
 * check them against, and deleting a znode that has children fails the
 * multi anyway. */
static int multi_unguarded(struct topo_store *s, const struct topo_op *ops,
			   size_t n)
{
	struct topo_op *kept = calloc(n, sizeof(*kept));
	size_t k = 0;
	if (!kept)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (ops[i].kind != TOPO_OP_GUARD)
			kept[k++] = ops[i];
	int rc = zk_multi(s, kept, k);
	free(kept);
	return rc;
}

/* All of ops[0..n) atomically or none: PUT with TOPO_EXPECT_ABSENT creates
 * (the parent must exist), PUT with a version or TOPO_EXPECT_ANY sets an
 * existing node, DELETE deletes with a version or any. */
static int zk_multi(struct topo_store *s, const struct topo_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ops[i].kind == TOPO_OP_GUARD)
			return multi_unguarded(s, ops, n);
	if (n == 0)
		return 0;
	if (n > ZK_MAX_OPS)
		return -E2BIG;
	struct mu m = {
	    .s = s,
	    .ops = ops,
	    .n = n,
	    .abs = calloc(n, sizeof(char *)),
	    .zops = calloc(n, sizeof(zoo_op_t)),
	    .deadline = deadline_of(s),
	};
	int rc = m.abs && m.zops ? mu_run(&m) : -ENOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++)
		mu_tell_version(&ops[i]);
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (mu_creates(&m, i))
			watch_created(s, m.abs[i]); /* as after a create */
	for (size_t i = 0; m.abs && i < n; i++)
		free(m.abs[i]);
	free(m.abs);
	free(m.zops);
	zk_acls_free(&m.acls);
	return rc;
}

/* ZooKeeper's stat as "user.zk.*" attributes (times in ms, as zkCli). */
static size_t zk_xattrs(const struct topo_meta *m, struct topo_xattr *out)
{
	const struct topo_xattr x[] = {
	    {"user.zk.czxid", m->create_id},
	    {"user.zk.mzxid", m->modify_id},
	    {"user.zk.ctime", m->ctime_ns / 1000000},
	    {"user.zk.mtime", m->mtime_ns / 1000000},
	    {"user.zk.version", m->change_count},
	    {"user.zk.cversion", m->child_count},
	    {"user.zk.ephemeral_owner", m->lease},
	    {"user.zk.data_length", (int64_t)m->size},
	    {"user.zk.num_children", m->num_children},
	};
	size_t n = sizeof(x) / sizeof(x[0]);
	memcpy(out, x, sizeof(x)); /* n <= TOPO_XATTR_MAX */
	return n;
}

const struct topo_backend topo_backend_zk = {
    .name = "zk2",
    .children = zk_children,
    .caps = TOPO_CAP_REAL_DIRS,
    .max_value = ZK_MAX_VALUE,
    .max_ops = ZK_MAX_OPS,
    .open = zk_open,
    .close = zk_close,
    .list = zk_list,
    .get = zk_get,
    .put = zk_put,
    .put_same = zk_put_same,
    .del = zk_del,
    .multi = zk_multi,
    .mkdir = zk_mkdir,
    .mkdir_meta = zk_mkdir_meta,
    .space = NULL, /* ZooKeeper has no quota we could report */
    .watch = zk_watch,
    .xattrs = zk_xattrs,
};
