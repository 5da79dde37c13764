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
	unsigned char *copy = NULL;
	if (len) {
		copy = malloc(len);
		if (copy)
			memcpy(copy, value, len);
	}
	pthread_mutex_lock(&c->mu);
	touch(c, path, meta->version);
	struct cnode *n = walk(c->root, path, true);
	if (n)
		n->stale_seq = next_stamp(c); /* a get() in flight may
						 predate this write */
	if (n && older_than_cached(n, meta)) {
		; /* a listing or notice already showed a later write */
	} else if (n && (copy || !len)) {
		node_set_value(n, copy, meta);
		n->meta.size = len;
		copy = NULL;
		/* The watch often tells of our own write before the store's
		 * answer to it arrives: a notice of this version or an older
		 * one is answered by this write. */
		if (n->stale && meta->version > 0 &&
		    n->noticed <= meta->version)
			n->stale = false;
	} else if (n) {
		node_clear_value(n); /* ENOMEM: re-list rather than lie */
		struct cnode *parent = walk_parent(c, path);
		if (parent)
			parent->fetched_ms = 0;
	}
	pthread_mutex_unlock(&c->mu);
	free(copy);
}

void cache_note_delete(struct cache *c, const char *path, bool keep_parent)
{
	pthread_mutex_lock(&c->mu);
	touch(c, path, -1);
	struct cnode *n = walk(c->root, path, false);
	struct cnode *parent = *path ? walk_parent(c, path) : NULL;
	if (n) {
		n->stale_seq = next_stamp(c); /* a get() in flight may
						 predate this delete */
		node_clear_value(n);
		if (parent && node_is_empty(n)) {
			kid_remove(parent, n);
			node_free(n);
		}
	}
	if (keep_parent && *path && path_parent_len(path)) {
		/* The watch may have told us first and pruned the parent:
		 * make it again, as the directory the user still sees. */
		char dir[4096];
		snprintf(dir, sizeof(dir), "%.*s", (int)path_parent_len(path),
			 path);
		parent = walk(c->root, dir, true);
		if (parent && !parent->nkids)
			parent->local_dir = true;
	} else {
		prune_empty(c, path);
	}
	pthread_mutex_unlock(&c->mu);
}

/* cache_mkdir; `meta` (NULL: unknown) is the store's node's, for real. */
static int mkdir_node(struct cache *c, const char *path, bool real,
		      const struct topo_meta *meta)
{
	int rc = lock_fresh(c, path, false);
	if (rc)
		return rc;
	touch(c, path, -1);
	const char *base = path_basename(path);
	struct cnode *parent = walk_parent(c, path);
	struct cnode *n = parent ? kid_find(parent, base, strlen(base)) : NULL;
	if (!parent) {
		rc = -ENOENT;
	} else if (!node_is_dir(c, parent)) {
		rc = -ENOTDIR;
	} else if (n && !real) {
		rc = -EEXIST;
	} else if (!n && !(n = kid_get(parent, base, strlen(base)))) {
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
			node_set_value(n, NULL, &m);
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
	int rc = lock_fresh(c, path, true); /* children's notices included */
	if (rc)
		return rc;
	struct cnode *n = walk(c->root, path, false);
	struct cnode *parent = *path ? walk_parent(c, path) : NULL;
	if (!n || !parent)
		rc = n ? -EBUSY : -ENOENT;
	else if (!node_is_dir(c, n))
		rc = -ENOTDIR;
	else if (n->nkids || data_shown(c, n))
		rc = -ENOTEMPTY;
	if (!rc) {
		kid_remove(parent, n);
		node_free(n);
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
	char *name = strdup(base);
	char dir[4096];
	snprintf(dir, sizeof(dir), "%.*s", (int)path_parent_len(to), to);
	struct cnode *parent = name ? walk(c->root, dir, true) : NULL;
	if (parent) {
		struct cnode *old = kid_find(parent, base, strlen(base));
		if (old) {
			kid_remove(parent, old);
			node_free(old);
		}
		bool found;
		size_t i = kid_index(parent, base, strlen(base), &found);
		free(n->name);
		n->name = name;
		name = NULL;
		if (kid_insert_at(parent, i, n) == 0)
			return true;
	}
	free(name);
	node_free(n);
	return false;
}

void cache_move_subtree(struct cache *c, const char *from, const char *to)
{
	pthread_mutex_lock(&c->mu);
	touch(c, from, -1);
	touch(c, to, -1);
	struct cnode *n = *from ? walk(c->root, from, false) : NULL;
	struct cnode *parent = n ? walk_parent(c, from) : NULL;
	if (parent) {
		kid_remove(parent, n);
		/* The parent of `to` stays what it was: a listing must not be
		 * made to decide about it (with `from` gone, the nearest
		 * directory the cache knows may be the root) */
		if (!node_adopt(c, n, to))
			prune_empty(c, to);
		prune_empty(c, from);
	}
	pthread_mutex_unlock(&c->mu);
}

void cache_set_pending(struct cache *c, const char *path, bool pending)
{
	pthread_mutex_lock(&c->mu);
	struct cnode *n = walk(c->root, path, false);
	if (n)
		n->pending = pending;
	c->pending_ever |= pending;
	pthread_mutex_unlock(&c->mu);
}
