/*
 * zk_internal.h - what the files of the ZooKeeper backend share: the store,
 * its sessions, requests and batches, and the functions one file calls in
 * another (each in the file named above its group). Not for use outside
 * backends/zk/. See zk.c for the map of the files.
 */
#ifndef TOPOFS_ZK_INTERNAL_H
#define TOPOFS_ZK_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zookeeper/zookeeper.h>

#include "topofs/backend.h"

#define ZK_MAX_OPS 1000

struct zk_acls;

/* One ZooKeeper session (see "Sessions" in zk_session.c). */
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

/* An open store: its settings, its current session, its notices. */
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
	/* change notices (see "Watches" in zk_watch.c), under wmu */
	pthread_mutex_t wmu;
	pthread_cond_t wcv;
	topo_change_fn fn; /* NULL until watch() */
	void *fn_arg;
	bool closed;	/* close() has begun: no more notices */
	int delivering; /* calls of fn in progress */
};

/* What a request asks: one per asynchronous client call. */
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

/* One request, sent within a batch (see "Concurrency" in zk_request.c). */
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

/* A caller's mailbox for the answers of the requests it sent. */
struct zbatch {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs;	   /* the caller's + one per request in flight */
	struct zreq *done; /* answered, not yet taken */
	struct zreq **done_tail;
};

/* ---- zk_request.c: time, errors, requests and batches -------------------- */

/* Milliseconds on the monotonic clock. */
int64_t zk_now_ms(void);
/* Wait on cv until signalled or the monotonic deadline; ETIMEDOUT after. */
int zk_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
		       int64_t deadline);
/* Initialise a mutex and a condition variable that waits on CLOCK_MONOTONIC. */
void zk_sync_init(pthread_mutex_t *mu, pthread_cond_t *cv);
/* A ZooKeeper result code as 0 or a negative errno; logs the unexpected. */
int zk_errno(int zrc, const char *what, const char *path);
/* Whether a result says the connection went away mid-request. */
bool zk_conn_lost(int zrc);
/* A new request for `abs` (copied); NULL when out of memory. */
struct zreq *zk_req_new(enum zreq_kind kind, const char *abs);
/* Free a request and its answer. NULL is allowed. */
void zk_req_free(struct zreq *r);
/* A new batch with the caller's reference; NULL when out of memory. */
struct zbatch *zk_batch_new(void);
/* Drop one reference to a batch; the last one frees it. */
void zk_batch_unref(struct zbatch *b);
/* Completion side: r is answered; off its session's list, into its batch. */
void zk_req_done(struct zreq *r);
/* Next answered request of the batch, or NULL at the deadline. */
struct zreq *zk_batch_next(struct zbatch *b, int64_t deadline);
/* Send r within b on ss: ZOK, or a code and r is no longer the caller's. */
int zk_req_submit(struct zsess *ss, struct zbatch *b, struct zreq *r);

/* ---- zk_session.c: sessions, sending and waiting ------------------------- */

/* The session's watcher (completion thread): state, node watches, notices. */
void zk_on_event(zhandle_t *zh, int type, int state, const char *path,
		 void *ctx);
/* Start a new session (connecting in the background) with one reference. */
int zk_sess_new(struct topo_store *s, struct zsess **out);
/* Drop one reference to a session; the last one closes it. */
void zk_sess_put(struct topo_store *s, struct zsess *ss);
/* Wait until the session is connected: 0, -EACCES (refused), -EIO. */
int zk_sess_wait(struct zsess *ss, int64_t deadline);
/* A connected session by the deadline (renewing expired ones), referenced. */
int zk_sess_get(struct topo_store *s, int64_t deadline, struct zsess **out);
/* Send reqs[0..n) in order, wait for all: 0 with each rc set, or errno. */
int zk_call_all(struct topo_store *s, struct zreq **reqs, size_t n,
		int64_t deadline, const char *what);
/* Send r, reads again after a connection loss: 0 with r->rc, or errno. */
int zk_call(struct topo_store *s, struct zreq *r, int64_t deadline,
	    const char *what);
/* The deadline of an operation starting now (timeout_ms from now). */
int64_t zk_deadline_of(const struct topo_store *s);

/* ---- zk_watch.c: change notices ------------------------------------------ */

/* Deliver one change notice to the filesystem, unless close() has begun. */
void zk_notify(struct topo_store *s, enum topo_change what, const char *rel);
/* A node watch fired (completion thread): the notice it means, if any. */
void zk_on_node_event(struct zsess *ss, int type, const char *path);
/* watch(): from now on reads leave watches, and notices reach fn. */
int zk_watch(struct topo_store *s, topo_change_fn fn, void *arg);
/* Whether reads leave watches. */
bool zk_watching(struct topo_store *s);
/* Send watched reads of abs, one of each of kinds[0..n), without waiting. */
void zk_leave_watches(struct topo_store *s, const char *abs,
		      const enum zreq_kind *kinds, size_t n);
/* After our own create of abs, leave the watches a listing would leave. */
void zk_watch_created(struct topo_store *s, const char *abs);

/* ---- zk_read.c: list, get, children, single reads ------------------------ */

/* Our metadata from a znode's stat. */
void zk_meta_of(const struct Stat *st, struct topo_meta *m);
/* Read one znode, no watch: 0 with *out (answered, ZOK) or errno. */
int zk_read_node(struct topo_store *s, const char *abs, int64_t deadline,
		 struct zreq **out);
/* Whether a read answer holds exactly this value. */
bool zk_same_value(const struct zreq *g, const void *value, size_t len);
/* list(): every node at path and below, pipelined, breadth first. */
int zk_list(struct topo_store *s, const char *path, struct topo_listing *out);
/* get(): one node with its value. */
int zk_get(struct topo_store *s, const char *path, struct topo_entry *out);
/* children(): the names of path's children (see backend.h). */
int zk_children(struct topo_store *s, const char *path, char **names,
		size_t *count);

/* ---- zk_write.c: writes, parents and their ACLs -------------------------- */

/* Ask the ACLs of abs[i][0..lens[i]), i < n; keep those that exist. */
int zk_acls_fetch(struct topo_store *s, const char *const *abs,
		  const size_t *lens, size_t n, struct zk_acls *acls,
		  int64_t deadline);
/* Create the root and its missing ancestors (empty data). */
int zk_create_root(struct topo_store *s, int64_t deadline);
/* put_same(): put with compare-and-set on `expect` and the znode `czxid`. */
int zk_put_same(struct topo_store *s, const char *path, const void *value,
		size_t len, int64_t expect, int64_t czxid,
		struct topo_meta *meta);
/* put(): write a value with compare-and-set on `expect`. */
int zk_put(struct topo_store *s, const char *path, const void *value,
	   size_t len, int64_t expect, struct topo_meta *meta);
/* del(): delete one znode with compare-and-set on `expect`. */
int zk_del(struct topo_store *s, const char *path, int64_t expect);
/* mkdir_meta(): create an empty znode, with its metadata in *meta. */
int zk_mkdir_meta(struct topo_store *s, const char *path,
		  struct topo_meta *meta);
/* mkdir(): create an empty znode; -EEXIST if present, -ENOENT no parent. */
int zk_mkdir(struct topo_store *s, const char *path);

/* ---- zk_multi.c ---------------------------------------------------------- */

/* multi(): all of ops[0..n) atomically or none. */
int zk_multi(struct topo_store *s, const struct topo_op *ops, size_t n);

#endif
