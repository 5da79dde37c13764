/*
 * cache_notice.c - change notices and staleness: what a notice from the
 * store's watch changes in the tree, the get() that re-reads a node a
 * notice made stale, and the rechecks of a directory's children after a
 * ZooKeeper child notice (see cache.c for the overview, cache_internal.h
 * for what the cache's files share).
 *
 * Notices
 *   A notice that a node changed or was created marks just that node
 *   `stale` when the listing that decides about it is in the cache (a new
 *   key is recorded at once, with the directories above it); else that
 *   listing is marked for re-listing. A delete removes the node. A notice
 *   of our own write, already recorded, changes nothing. Notices that
 *   come while a listing is in flight are replayed after it
 *   (cache_listing.c, Concurrency).
 *
 *   The next access re-reads a stale node with one get() (a directory with
 *   more than STALE_GET_MAX stale children is re-listed instead). Each
 *   notice and each of our writes gives the node a new stamp (next_stamp):
 *   a get() answer is taken only if the node still has the stamp it had
 *   when asked, and is not older than what the cache holds.
 *
 * Freshness
 *   ZooKeeper's watches are one-shot: once a directory's child watch has
 *   fired (TOPO_CHANGE_CHILDREN, mostly for our own creates, already
 *   recorded), no notice comes for it until its children are read again.
 *   Re-listing the subtree at every such notice made a restore of n files
 *   cost O(n^2). Instead the directory is marked `kids_unwatched`: its
 *   listing is trusted for ttl_ms from when it was last confirmed, then
 *   one names-only read (backend children(), which sets the watch again)
 *   confirms it, or a difference re-lists it (check_kids, in
 *   cache_listing.c). cache_recheck does that check ttl_ms after the
 *   notice even when nobody asks, so that other clients' changes reach
 *   the kernel too.
 *
 *   That delay is for our own writes only. A child notice that comes
 *   while none of our store writes is in flight (cache_write_begin/end),
 *   nor ended within OWN_WRITE_GRACE_MS, is another client's change:
 *   the listing is not trusted from then on, and the next access
 *   confirms it at once with one names-only read. (ZooKeeper sends a
 *   notice our write caused before that write's answer, on the same
 *   session, so our own notices come while the write is in flight.)
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "cache_internal.h"
#include "path.h"
#include "topofs/log.h"

#define OWN_WRITE_GRACE_MS 20 /* see Freshness */

/* ---- our writes in flight ---- */

/* Whether one of our store writes is in flight or just ended (see
 * Freshness). mu held. */
static bool own_write_recent(const struct cache *c)
{
	return c->own_writes > 0 ||
	       cache_now_ms() - c->own_write_ms < OWN_WRITE_GRACE_MS;
}

void cache_write_begin(struct cache *c)
{
	pthread_mutex_lock(&c->mu);
	c->own_writes++;
	pthread_mutex_unlock(&c->mu);
}

void cache_write_end(struct cache *c)
{
	pthread_mutex_lock(&c->mu);
	c->own_writes--;
	c->own_write_ms = cache_now_ms();
	pthread_mutex_unlock(&c->mu);
}

/* ---- marking stale ---- */

/* A stamp for a node's stale_seq or kids_seq, never given before. A read
 * of the store made while a node had stamp s is taken only if the node at
 * that path still has stamp s when the answer comes. Stamps are unique
 * across nodes because a node may be replaced meanwhile (a re-listing
 * builds new nodes): a per-node count would start again from 0 there and
 * could match, and an old answer (ENOENT from before a create) would be
 * taken for the new node. Called with mu held. */
uint64_t cache_next_stamp(struct cache *c)
{
	return ++c->stamps;
}

/* A notice said n changed (to `version`, or <= 0 if it did not say):
 * read it again at the next access. The version is kept (in n's ext) only
 * where a write of ours may still answer it (cache_note_put): not for a
 * node -o writeback created that the store has not confirmed yet, which
 * its batch marks stale again without a version (writeback.c). That ext
 * was 48 bytes from malloc per file of a restore (a heaptrack profile of
 * one at 100k keys: 104,803 of them; some 50 MB at 1M). */
static void node_mark_stale(struct cache *c, struct cnode *n, int64_t version)
{
	if (version <= 0 || n->pending)
		version = INT64_MAX;
	if (!n->stale || version > cache_node_noticed(n)) {
		/* without an ext, a stale node's noticed is INT64_MAX */
		if (n->ext || (version != INT64_MAX && cache_node_ext(n)))
			n->ext->noticed = version;
	}
	n->stale = true;
	n->stale_seq = cache_next_stamp(c);
}

void cache_mark_stale(struct cache *c, const char *path)
{
	pthread_mutex_lock(&c->mu);
	struct cnode *n = cache_walk(c->root, path, false);
	if (n) {
		node_mark_stale(c, n, -1);
		n->pending = false;
	}
	pthread_mutex_unlock(&c->mu);
}

/* ---- answers to get() for stale nodes ---- */

#define STALE_GET_MAX 16 /* more stale nodes in one directory: re-list it */

struct stale_ref {
	char path[4096];
	uint64_t seq;
};

/* Add node n (store path p) to refs if a notice made it stale. */
static int want_stale(const struct cnode *n, const char *p,
		      struct stale_ref **refs, size_t *count)
{
	if (!n->stale || *count > STALE_GET_MAX)
		return 0;
	if (*count < STALE_GET_MAX) {
		/* made on the first stale node: most calls find none */
		if (!*refs && !(*refs = malloc(STALE_GET_MAX * sizeof(**refs))))
			return -ENOMEM;
		struct stale_ref *r = &(*refs)[*count];
		snprintf(r->path, sizeof(r->path), "%s", p);
		r->seq = n->stale_seq;
	}
	(*count)++;
	return 0;
}

/* Drop the children of n that the store says it no longer has. */
static void drop_kids(struct cnode *n)
{
	struct cnode **k = cache_kids(n);
	for (size_t i = 0; i < n->nkids; i++) {
		cache_node_free(k[i]);
		k[i] = NULL;
	}
	n->nkids = 0;
}

/* Whether meta m describes an older state of node n than the cached one:
 * modify_id (etcd mod_revision, ZooKeeper mzxid) only grows. */
bool cache_older_than_cached(const struct cnode *n, const struct topo_meta *m)
{
	if (!n->has_data || m->modify_id <= 0)
		return false;
	struct topo_meta cached;
	cache_node_meta(n, &cached);
	return cached.modify_id > m->modify_id;
}

/* Take a get() answer for a stale node, unless a newer notice, a delete
 * notice or one of our own writes came meanwhile (all bump stale_seq),
 * another get() answered first, or it is older than what the cache holds.
 * False when the node is left stale (ask again). */
static bool apply_get(struct cache *c, const struct stale_ref *ref, int rc,
		      struct topo_entry *e)
{
	struct cnode *n = cache_walk(c->root, ref->path, false);
	if (!n || (rc && rc != -ENOENT))
		return true; /* nothing to correct, or the caller reports rc */
	/* Not stale any more: another get() answered, maybe a newer one (an
	 * ENOENT older than a value has no version to compare). */
	if (!n->stale)
		return true;
	if (n->stale_seq != ref->seq ||
	    (!rc && cache_older_than_cached(n, &e->meta)))
		return false; /* still stale: ask again */
	bool real_dirs = c->be->caps & TOPO_CAP_REAL_DIRS;
	if (!rc && cache_node_set_value(n, e->value, &e->meta))
		return false; /* ENOMEM: still stale, ask again */
	n->stale = false;
	if (n->ext)
		n->ext->noticed = 0;
	if (!rc) {
		if (real_dirs && !e->meta.real_dir && !n->local_dir)
			drop_kids(n); /* the store has none left */
		return true;
	}
	cache_node_clear_value(n);
	struct cnode *parent =
	    *ref->path ? cache_walk_parent(c, ref->path) : NULL;
	if (parent && (cache_node_is_empty(n) || real_dirs)) {
		cache_kid_remove(parent, n);
		cache_node_free(n);
		if (real_dirs)
			cache_lost_child(c, parent);
		cache_prune_empty(c, ref->path);
	}
	return true;
}

/* Re-read the stale node at `path` (and its children with kids=true) with
 * one get() each. Called and returns with mu held; drops it meanwhile.
 * -EAGAIN: too many (the directory was marked for re-listing instead), or
 * a notice or write raced an answer and the node is still stale: the
 * caller asks again rather than answer with what it knows is old. */
int cache_resolve_stale(struct cache *c, const char *path, bool kids)
{
	struct cnode *n = cache_walk(c->root, path, false);
	if (!n)
		return 0;
	struct stale_ref *refs = NULL;
	size_t count = 0;
	bool raced = false;
	int rc = want_stale(n, path, &refs, &count);
	for (size_t i = 0; kids && !rc && i < n->nkids; i++) {
		struct cnode *k = cache_kids(n)[i];
		char p[4096];
		if (k->stale && path_join(p, sizeof(p), path, k->name) == 0)
			rc = want_stale(k, p, &refs, &count);
	}
	if (!rc && count > STALE_GET_MAX) {
		n->fetched_ms = 0;
		rc = -EAGAIN;
	} else if (!rc && count) {
		pthread_mutex_unlock(&c->mu);
		for (size_t i = 0; i < count && !rc; i++) {
			struct topo_entry e = {0};
			int grc = c->be->get(c->st, refs[i].path, &e);
			pthread_mutex_lock(&c->mu);
			if (!apply_get(c, &refs[i], grc, &e))
				raced = true;
			pthread_mutex_unlock(&c->mu);
			topo_entry_free(&e);
			if (grc && grc != -ENOENT)
				rc = grc;
		}
		pthread_mutex_lock(&c->mu);
	}
	free(refs);
	return rc == 0 && raced ? -EAGAIN : rc;
}

/* ---- change notices ---- */

void cache_watch_started(struct cache *c)
{
	pthread_mutex_lock(&c->mu);
	c->watched = true;
	pthread_mutex_unlock(&c->mu);
}

bool cache_listing_watched(struct cache *c, const char *path)
{
	pthread_mutex_lock(&c->mu);
	struct cnode *n = cache_walk(c->root, path, false);
	bool watched = c->watched && !(n && n->kids_unwatched);
	pthread_mutex_unlock(&c->mu);
	return watched;
}

/* Another client deleted the node at `path`: its value goes; so does the
 * node unless it has children (etcd: a key that is also a prefix). */
static void forget_node(struct cache *c, const char *path, struct cnode *n)
{
	n->stale_seq =
	    cache_next_stamp(c); /* a get() in flight predates this */
	cache_node_clear_value(n);
	n->stale = false;
	n->local_dir = false;
	n->real_dir = false;
	struct cnode *parent = *path ? cache_walk_parent(c, path) : NULL;
	bool real_dirs = c->be->caps & TOPO_CAP_REAL_DIRS;
	if (parent && (!n->nkids || real_dirs)) {
		cache_kid_remove(parent, n);
		cache_node_free(n);
		if (real_dirs)
			cache_lost_child(c, parent);
		cache_prune_empty(c, path);
	}
}

/* The node at `path`, made if the listing that decides about it is in the
 * cache and lacks it (a key created since, maybe below directories that are
 * new too); NULL when that listing is not in the cache. When it made nodes,
 * *grown is the length of the directory (a prefix of path) that gained the
 * topmost of them. */
static struct cnode *noticed_node(struct cache *c, const char *path,
				  size_t *grown)
{
	char dir[4096];
	struct cnode *d = cache_deciding_dir(c, path, false, dir, sizeof(dir));
	size_t skip = *dir ? strlen(dir) + 1 : 0;
	if (!cache_is_fresh(c, d))
		return NULL;
	if ((c->be->caps & TOPO_CAP_REAL_DIRS) &&
	    strlen(dir) != path_parent_len(path))
		return NULL; /* a parent that is a node of its own is missing */
	const char *made = NULL;
	struct cnode *n = cache_walk_made(d, path + skip, true, &made);
	if (!made)
		return n; /* known already */
	*grown = made == path ? 0 : (size_t)(made - path) - 1;
	if (n && (c->be->caps & TOPO_CAP_REAL_DIRS))
		n->fetched_ms = 0; /* ZooKeeper: a node may be created with its
				      children, before a child watch could tell
				      of them: list it if it is a directory */
	return n;
}

/* A notice that the node at `path` changed or was created: mark just that
 * node for a get() when the listing that decides about it is in the cache.
 * Recording a new key at once, rather than re-listing, also keeps the
 * directories above it: the other half of a directory rename (its old
 * name's deletes) must not prune a parent both names share. False when
 * there is nothing to correct that way (the caller then marks a listing
 * stale). */
static bool mark_node_stale(struct cache *c, const char *path, int64_t version,
			    size_t *grown)
{
	if (!*path) {
		node_mark_stale(c, c->root, version);
		return true;
	}
	if (!path_store_ok(path))
		return true; /* never shown */
	struct cnode *n = noticed_node(c, path, grown);
	if (!n)
		return false;
	node_mark_stale(c, n, version);
	return true;
}

bool cache_changed(struct cache *c, enum topo_change what, const char *path,
		   int64_t version)
{
	size_t grown;
	return cache_notice(c, what, path, version, &grown);
}

/* Take a change notice into the tree (cache_notice). mu held. */
bool cache_notice_locked(struct cache *c, enum topo_change what,
			 const char *path, int64_t version, size_t *grown)
{
	char dir[4096];
	bool changed = true;
	*grown = CACHE_NOT_GROWN;
	struct cnode *n = cache_walk(c->root, path, false);
	struct topo_meta m;
	if (n)
		cache_node_meta(n, &m);
	if (what == TOPO_CHANGE_ALL) {
		cache_mark_fetched(c, c->root, 0);
	} else if (what == TOPO_CHANGE_NODE && n && n->has_data &&
		   version > 0 && m.version == version) {
		changed = false; /* our own write, already recorded */
	} else if (what == TOPO_CHANGE_DELETED) {
		if (n && (version <= 0 || !n->has_data || m.version < version))
			forget_node(c, path, n);
		else
			changed = false; /* gone already, or newer */
	} else if (what == TOPO_CHANGE_NODE &&
		   mark_node_stale(c, path, version, grown)) {
		; /* one get() at the next access */
	} else if (what == TOPO_CHANGE_CHILDREN && n &&
		   cache_node_is_dir(c, n) && n->fetched_ms) {
		n->kids_unwatched = true; /* see Freshness */
		if (cache_node_ext(n))
			n->ext->kids_seq = cache_next_stamp(c);
		else
			n->fetched_ms = 0; /* ENOMEM: re-list it instead */
		if (!own_write_recent(c) && n->fetched_ms)
			n->fetched_ms = 1; /* another client's: check now */
	} else if (what == TOPO_CHANGE_CHILDREN && n &&
		   !cache_node_is_dir(c, n)) {
		/* A file that gained a child, or a directory whose last child
		 * went: its own kind is read again, not its parent's whole
		 * listing (that made a restore over existing files quadratic)
		 */
		node_mark_stale(c, n, -1);
		n->fetched_ms = 0;
	} else {
		struct cnode *d = cache_deciding_dir(
		    c, path, what == TOPO_CHANGE_CHILDREN, dir, sizeof(dir));
		d->fetched_ms = 0;
		if (what == TOPO_CHANGE_CHILDREN && n) {
			/* a file may have become a directory, or back */
			node_mark_stale(c, n, -1);
		}
	}
	return changed;
}

bool cache_notice(struct cache *c, enum topo_change what, const char *path,
		  int64_t version, size_t *grown)
{
	topo_debug("notice %d '%s' version %lld", (int)what, path,
		   (long long)version);
	pthread_mutex_lock(&c->mu);
	cache_touch_notice(c, what, what == TOPO_CHANGE_ALL ? "" : path,
			   version);
	bool changed = cache_notice_locked(c, what, path, version, grown);
	pthread_mutex_unlock(&c->mu);
	return changed;
}

int cache_recheck(struct cache *c, const char *path)
{
	int rc = cache_check_kids(c, path, true);
	if (rc > 0) {
		int lrc = cache_refresh(c, path);
		if (lrc)
			rc = lrc;
	}
	return rc;
}
