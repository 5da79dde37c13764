/*
 * zk_watch.c - the ZooKeeper backend's change notices: watch(), the
 * watches that reads and creates leave, and a fired watch as a notice.
 * (Session events reach zk_on_event, in zk_session.c.)
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
 *   own (zk_on_event, zsess): the client keeps one entry per path for that
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
 */
#include <errno.h>
#include <pthread.h>

#include <zookeeper/zookeeper.h>

#include "zk_internal.h"
#include "zkutil.h"

/* ---- watch --------------------------------------------------------------- */

/* Deliver one change notice to the filesystem, unless close() has begun;
 * fn runs without any lock of ours held. */
void zk_notify(struct topo_store *s, enum topo_change what, const char *rel)
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
void zk_on_node_event(struct zsess *ss, int type, const char *path)
{
	const char *rel;
	if (!zk_below_root(ss->store->root, path, &rel))
		return; /* not ours (we only watch below the root) */
	if (type == ZOO_CHILD_EVENT)
		zk_notify(ss->store, TOPO_CHANGE_CHILDREN, rel);
	else if (type == ZOO_DELETED_EVENT)
		zk_notify(ss->store, TOPO_CHANGE_DELETED, rel);
	else if (type == ZOO_CREATED_EVENT || type == ZOO_CHANGED_EVENT)
		zk_notify(ss->store, TOPO_CHANGE_NODE, rel);
	/* ZOO_NOTWATCHING_EVENT: a removed watch; we remove none */
}

/* Start change notices: from now on list() and get() leave watches on what
 * they read, and fired watches and session expiry reach fn. */
int zk_watch(struct topo_store *s, topo_change_fn fn, void *arg)
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
bool zk_watching(struct topo_store *s)
{
	pthread_mutex_lock(&s->wmu);
	bool w = s->fn != NULL && !s->closed;
	pthread_mutex_unlock(&s->wmu);
	return w;
}

/* Send watched reads of abs, one of each of kinds[0..n), without waiting
 * for them: the answers free themselves with their batch. Sent before a
 * later request of this thread, they reach the server first (a session
 * is served in order). */
void zk_leave_watches(struct topo_store *s, const char *abs,
		      const enum zreq_kind *kinds, size_t n)
{
	struct zsess *ss;
	if (!zk_watching(s) || zk_sess_get(s, zk_deadline_of(s), &ss))
		return;
	struct zbatch *b = zk_batch_new();
	for (size_t i = 0; b && i < n; i++) {
		struct zreq *r = zk_req_new(kinds[i], abs);
		if (!r)
			break;
		r->watch = true;
		if (zk_req_submit(ss, b, r) != ZOK)
			break; /* r consumed */
	}
	if (b)
		zk_batch_unref(b);
	zk_sess_put(s, ss);
}

/* After our own create of abs, leave the watches a listing would have left
 * on it (data and children: see Watches), so that other clients' changes
 * to it are told although no listing reads it. */
void zk_watch_created(struct topo_store *s, const char *abs)
{
	const enum zreq_kind kinds[] = {ZR_EXISTS, ZR_CHILDREN};
	zk_leave_watches(s, abs, kinds, 2);
}
