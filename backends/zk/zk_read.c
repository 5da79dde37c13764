/*
 * zk_read.c - the ZooKeeper backend's reads: list (a pipelined walk of a
 * subtree), get and children, and the single reads the writes use.
 *
 * Bulk listing
 *
 *   Bulk listing keeps up to ZK_WINDOW requests in flight in one batch: the
 *   caller's thread sends, waits for any answer, and sends what that answer
 *   calls for (children of a node with children, data of each child). One
 *   session answers in order, so pipelined creates of /a, /a/b, /a/b/c work.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zookeeper/zookeeper.h>

#include "topofs/log.h"
#include "zk_internal.h"
#include "zkutil.h"

#define ZK_WINDOW 256 /* listing requests in flight */

/* ---- metadata ------------------------------------------------------------ */

/* Our metadata from a znode's stat. */
void zk_meta_of(const struct Stat *st, struct topo_meta *m)
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
	struct zreq *r = zk_req_new(ZR_GET, abs);
	if (!r)
		return -ENOMEM;
	r->watch = watch;
	int rc = zk_call(s, r, deadline, "get");
	if (rc)
		return rc;
	if (r->rc != ZOK) {
		rc = zk_errno(r->rc, "get", abs);
		zk_req_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

/* Read one znode without leaving a watch. */
int zk_read_node(struct topo_store *s, const char *abs, int64_t deadline,
		 struct zreq **out)
{
	return read_node_w(s, abs, deadline, false, out);
}

/* Whether a znode exists (0 or -ENOENT, else an errno); leaves a watch
 * if `watch` (on a missing node, one that fires when it is created). */
static int node_exists(struct topo_store *s, const char *abs, int64_t deadline,
		       bool watch)
{
	struct zreq *r = zk_req_new(ZR_EXISTS, abs);
	if (!r)
		return -ENOMEM;
	r->watch = watch;
	int rc = zk_call(s, r, deadline, "exists");
	if (rc)
		return rc; /* r consumed */
	rc = zk_errno(r->rc, "exists", abs);
	zk_req_free(r);
	return rc;
}

/* Whether a read answer holds exactly this value. */
bool zk_same_value(const struct zreq *g, const void *value, size_t len)
{
	return (size_t)g->value_len == len &&
	       (len == 0 || memcmp(g->value, value, len) == 0);
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
	struct zreq *r = zk_req_new(kind, abs);
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
		int rc = zk_sess_wait(w->ss, w->deadline);
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
		int zrc = zk_req_submit(w->ss, w->b, r);
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
	zk_meta_of(&r->stat, &m);
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

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Queue the reads of every child named in the answer, in name order:
 * ZooKeeper answers in the order asked, so a directory's entries reach the
 * cache sorted and each goes at the end of its parent's child array (in
 * the server's order, a 500,000-entry directory would be built in
 * quadratic time once the cache takes a listing in batches). */
static int walk_children(struct walk *w, struct zreq *r)
{
	const char **names = calloc((size_t)r->nnames + 1, sizeof(*names));
	if (!names)
		return -ENOMEM;
	const char *name = r->names;
	for (int i = 0; i < r->nnames; i++) {
		names[i] = name;
		name += strlen(name) + 1;
	}
	qsort(names, (size_t)r->nnames, sizeof(*names), name_cmp);
	int rc = 0;
	for (int i = 0; !rc && i < r->nnames; i++)
		rc = walk_push_node(w, zk_join(r->path, names[i]));
	free(names);
	return rc;
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
	if (zk_conn_lost(r->rc) && zk_now_ms() < w->deadline) {
		walk_requeue(w, r);
		return 0;
	}
	if (r->rc == ZOK)
		rc = r->kind == ZR_GET ? walk_node(w, r) : walk_children(w, r);
	else if (r->rc == ZNOAUTH && strcmp(r->path, w->top) != 0)
		rc = walk_denied(w, r);
	else if (r->rc != ZNONODE) /* vanished mid-walk: skip */
		rc = zk_errno(r->rc, "list", r->path);
	zk_req_free(r);
	return rc;
}

/* Free the requests not sent yet. */
static void walk_drop(struct walk *w)
{
	while (w->todo) {
		struct zreq *r = w->todo;
		w->todo = r->next;
		zk_req_free(r);
	}
}

/* Run the walk until every answer is in. */
static int walk_run(struct walk *w)
{
	int rc = walk_pump(w);
	while (!rc && w->inflight > 0) {
		struct zreq *r = zk_batch_next(w->b, w->deadline);
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
		w->deadline = zk_now_ms() + w->s->timeout_ms;
		rc = walk_take(w, r);
		if (!rc)
			rc = walk_pump(w);
	}
	return rc;
}

/* Every node at path and below, pipelined, breadth first. */
int zk_list(struct topo_store *s, const char *path, struct topo_listing *out)
{
	struct walk w = {
	    .s = s,
	    .out = out,
	    .watch = zk_watching(s),
	    .deadline = zk_deadline_of(s),
	};
	w.todo_tail = &w.todo;
	topo_listing_restart(out);
	int rc = zk_sess_get(s, w.deadline, &w.ss);
	if (rc) {
		topo_err("zk: list %s: not connected to ZooKeeper at %s", path,
			 s->servers);
		return rc;
	}
	char *top = zk_abs_path(s->root, path);
	w.top = top;
	w.b = zk_batch_new();
	rc = w.b && top ? walk_push_node(&w, strdup(top)) : -ENOMEM;
	if (!rc)
		rc = walk_run(&w);
	walk_drop(&w);
	if (w.b) /* answers still in flight free themselves */
		zk_batch_unref(w.b);
	zk_sess_put(s, w.ss);
	free(top);
	if (rc)
		topo_listing_free(out);
	else
		topo_listing_sort(out);
	return rc;
}

/* ---- get ----------------------------------------------------------------- */

/* One node with its value. */
int zk_get(struct topo_store *s, const char *path, struct topo_entry *out)
{
	char *abs = zk_abs_path(s->root, path);
	if (!abs)
		return -ENOMEM;
	struct zreq *g;
	int64_t deadline = zk_deadline_of(s);
	bool watch = zk_watching(s);
	/* Watched, a node read here is watched as a listing would leave it:
	 * its children too, read first. Without that child watch, a file the
	 * cache learnt of by get() (one another client created) that then
	 * gains a child is never told, and shows as a file for good. */
	const enum zreq_kind kids = ZR_CHILDREN;
	zk_leave_watches(s, abs, &kids, 1); /* (none when not watching) */
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
		zk_req_free(g);
		return -ENOMEM;
	}
	zk_meta_of(&g->stat, &out->meta);
	out->meta.size = (uint64_t)g->value_len;
	out->value = (unsigned char *)g->value;
	g->value = NULL;
	zk_req_free(g);
	return 0;
}

/* children: see backend.h. */
int zk_children(struct topo_store *s, const char *path, char **names,
		size_t *count)
{
	*names = NULL;
	*count = 0;
	char *abs = zk_abs_path(s->root, path);
	struct zreq *r = abs ? zk_req_new(ZR_CHILDREN, abs) : NULL;
	free(abs);
	if (!r)
		return -ENOMEM;
	r->watch = zk_watching(s);
	int rc = zk_call(s, r, zk_deadline_of(s), "list children of");
	if (rc)
		return rc; /* r consumed */
	rc = zk_errno(r->rc, "list children of", r->path);
	if (rc == 0) {
		*names = r->names;
		*count = (size_t)r->nnames;
		r->names = NULL;
	}
	zk_req_free(r);
	return rc;
}
