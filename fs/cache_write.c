/*
 * cache_write.c - our own writes, recorded in the tree: what a put, a
 * delete, mkdir or rmdir did in the store, and what a directory rename is
 * about to do, so that the next access sees it without a re-listing (see
 * cache.c for the overview, cache_internal.h for what the cache's files
 * share).
 *
 * Each write is also recorded against a listing in flight that it touches
 * (touch: cache_listing.c, Concurrency), and a put or delete gives the
 * node a new stamp, so that a get() answer that predates it is not taken
 * (cache_notice.c, Notices).
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

void cache_note_put(struct cache *c, const char *path, const void *value,
		    size_t len, const struct topo_meta *meta)
{
	struct topo_meta m = *meta;
	m.size = len;
	pthread_mutex_lock(&c->mu);
	cache_touch(c, path, meta->version);
	struct cnode *n = cache_walk(c->root, path, true);
	if (n)
		n->stale_seq = cache_next_stamp(c); /* a get() in flight may
						 predate this write */
	if (n && cache_older_than_cached(n, meta)) {
		; /* a listing or notice already showed a later write */
	} else if (n && cache_node_set_value(n, value, &m) == 0) {
		/* The watch often tells of our own write before the store's
		 * answer to it arrives: a notice of this version or an older
		 * one is answered by this write. */
		if (n->stale && meta->version > 0 &&
		    cache_node_noticed(n) <= meta->version)
			n->stale = false;
	} else if (n) {
		cache_node_clear_value(n); /* ENOMEM: re-list rather than lie */
		struct cnode *parent = cache_walk_parent(c, path);
		if (parent)
			parent->fetched_ms = 0;
	}
	pthread_mutex_unlock(&c->mu);
}

void cache_note_delete(struct cache *c, const char *path, bool keep_parent)
{
	pthread_mutex_lock(&c->mu);
	cache_touch(c, path, -1);
	struct cnode *n = cache_walk(c->root, path, false);
	struct cnode *parent = *path ? cache_walk_parent(c, path) : NULL;
	if (n) {
		n->stale_seq = cache_next_stamp(c); /* a get() in flight may
						 predate this delete */
		cache_node_clear_value(n);
		if (parent && cache_node_is_empty(n)) {
			cache_kid_remove(parent, n);
			cache_node_free(n);
		}
	}
	if (keep_parent && *path && path_parent_len(path)) {
		/* The watch may have told us first and pruned the parent:
		 * make it again, as the directory the user still sees. */
		char dir[4096];
		snprintf(dir, sizeof(dir), "%.*s", (int)path_parent_len(path),
			 path);
		parent = cache_walk(c->root, dir, true);
		if (parent && !parent->nkids)
			parent->local_dir = true;
	} else {
		cache_prune_empty(c, path);
	}
	pthread_mutex_unlock(&c->mu);
}

/* cache_mkdir; `meta` (NULL: unknown) is the store's node's, for real. */
static int mkdir_node(struct cache *c, const char *path, bool real,
		      const struct topo_meta *meta)
{
	int rc = cache_lock_fresh(c, path, false);
	if (rc)
		return rc;
	cache_touch(c, path, -1);
	const char *base = path_basename(path);
	struct cnode *parent = cache_walk_parent(c, path);
	struct cnode *n =
	    parent ? cache_kid_find(parent, base, strlen(base)) : NULL;
	if (!parent) {
		rc = -ENOENT;
	} else if (!cache_node_is_dir(c, parent)) {
		rc = -ENOTDIR;
	} else if (n && !real) {
		rc = -EEXIST;
	} else if (!n && !(n = cache_kid_get(parent, base, strlen(base)))) {
		rc = -ENOMEM;
	} else {
		/* A directory while we know it; one made in the store (which
		 * a re-listing may already show) is a node with empty data:
		 * the store's answer's metadata (its times), or else version
		 * 0 like every new ZooKeeper node. */
		n->local_dir = true;
		n->real_dir = real;
		if (real && !n->has_data) {
			struct topo_meta m =
			    meta ? *meta : (struct topo_meta){0};
			m.has_data = m.real_dir = true;
			m.size = 0;
			/* ENOMEM: shown as a directory without data until
			 * the next listing */
			(void)cache_node_set_value(n, NULL, &m);
		}
		if (!n->fetched_ms)
			n->fetched_ms = parent->fetched_ms;
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

int cache_mkdir(struct cache *c, const char *path, bool real)
{
	return mkdir_node(c, path, real, NULL);
}

int cache_mkdir_stored(struct cache *c, const char *path,
		       const struct topo_meta *meta)
{
	return mkdir_node(c, path, true, meta);
}

int cache_rmdir(struct cache *c, const char *path)
{
	int rc =
	    cache_lock_fresh(c, path, true); /* children's notices included */
	if (rc)
		return rc;
	struct cnode *n = cache_walk(c->root, path, false);
	struct cnode *parent = *path ? cache_walk_parent(c, path) : NULL;
	if (!n || !parent)
		rc = n ? -EBUSY : -ENOENT;
	else if (!cache_node_is_dir(c, n))
		rc = -ENOTDIR;
	else if (n->nkids || cache_data_shown(c, n))
		rc = -ENOTEMPTY;
	if (!rc) {
		cache_kid_remove(parent, n);
		cache_node_free(n);
	}
	/* The directory it was in stays while the user works in it (`rm -r`
	 * removes it next), as after an unlink (cache_note_delete): on etcd
	 * it has no key of its own, on ZooKeeper a znode that lost its last
	 * child is a file. Also when the delete's notice came first. */
	if ((!rc || rc == -ENOENT) && parent && parent != c->root &&
	    !parent->nkids)
		parent->local_dir = true;
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* Take node n (already detached) in as the node at store path `to`,
 * replacing what the cache had there. False on ENOMEM (n is then freed). */
static bool node_adopt(struct cache *c, struct cnode *n, const char *to)
{
	const char *base = path_basename(to);
	char dir[4096];
	snprintf(dir, sizeof(dir), "%.*s", (int)path_parent_len(to), to);
	struct cnode *parent = cache_walk(c->root, dir, true);
	struct cnode *renamed = parent ? cache_node_rename(n, base) : NULL;
	if (renamed) {
		n = renamed;
		struct cnode *old = cache_kid_find(parent, base, strlen(base));
		if (old) {
			cache_kid_remove(parent, old);
			cache_node_free(old);
		}
		bool found;
		size_t i = cache_kid_index(parent, base, strlen(base), &found);
		if (cache_kid_insert_at(parent, i, n) == 0)
			return true;
	}
	cache_node_free(n);
	return false;
}

void cache_move_subtree(struct cache *c, const char *from, const char *to)
{
	pthread_mutex_lock(&c->mu);
	cache_touch(c, from, -1);
	cache_touch(c, to, -1);
	struct cnode *n = *from ? cache_walk(c->root, from, false) : NULL;
	struct cnode *parent = n ? cache_walk_parent(c, from) : NULL;
	if (parent) {
		cache_kid_remove(parent, n);
		/* The parent of `to` stays what it was: a listing must not be
		 * made to decide about it (with `from` gone, the nearest
		 * directory the cache knows may be the root) */
		if (!node_adopt(c, n, to))
			cache_prune_empty(c, to);
		cache_prune_empty(c, from);
	}
	pthread_mutex_unlock(&c->mu);
}

void cache_set_pending(struct cache *c, const char *path, bool pending)
{
	pthread_mutex_lock(&c->mu);
	struct cnode *n = cache_walk(c->root, path, false);
	if (n)
		n->pending = pending;
	c->pending_ever |= pending;
	pthread_mutex_unlock(&c->mu);
}
