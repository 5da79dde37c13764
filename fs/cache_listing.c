/*
 * cache_listing.c - listings: re-listing a directory's subtree from the
 * store, building the listing into the tree, and deciding whether the
 * listing the cache holds is fresh (see cache.c for the overview,
 * cache_internal.h for what the cache's files share).
 *
 * Concurrency
 *   Re-listing a directory takes `refresh_mu` for the duration of the
 *   store request; `mu` is not held across it (cache.c, Concurrency).
 *
 *   A listing fetched while the filesystem wrote to the store, or while a
 *   watch reported a change, may predate that change. While a listing is in
 *   flight (`listing`), every write or change notice that touches its
 *   subtree raises `conflict` to the change's version (or to "unknown").
 *   The listing is applied as it is if it is at least that recent (etcd:
 *   its revision covers the change). Else, if only change notices came
 *   (up to RACED_MAX), it is applied and then those notices again, as if
 *   they had come just after it: each makes what it names read again
 *   (ZooKeeper's listings have no revision, and one of a tree that
 *   another client keeps writing would never be clean). Else it is
 *   fetched again. So the cache never goes back to a value older than a
 *   change it was told about.
 *
 * Freshness
 *   With a watch (cache_watch_started), a listed directory stays fresh
 *   until a change notice marks it stale: no time limit. Without one, a
 *   listing is trusted for ttl_ms. A directory whose ZooKeeper child watch
 *   fired (`kids_unwatched`) is trusted for ttl_ms from when it was last
 *   confirmed, then check_kids confirms it with one names-only read
 *   (cache_notice.c, Freshness).
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

/* ---- listings racing writes and notices ---- */

/* Whether a change at `path` touches the listing in flight. mu held. */
static bool touches_listing(const struct cache *c, const char *path)
{
	return c->listing &&
	       (path_within(path, c->listing) || path_within(c->listing, path));
}

static void raise_conflict(struct cache *c, int64_t version)
{
	if (version <= 0)
		version = INT64_MAX;
	if (version > c->conflict)
		c->conflict = version;
}

/* Record our own write at `path` (version, or -1 if unknown) against the
 * listing in flight, if it touches the listed subtree. mu held. */
void cache_touch(struct cache *c, const char *path, int64_t version)
{
	if (!touches_listing(c, path))
		return;
	raise_conflict(c, version);
	c->unreplayable = true;
}

/* Record a change notice against the listing in flight, if it touches the
 * listed subtree, to be replayed after it (see Concurrency). mu held. */
void cache_touch_notice(struct cache *c, enum topo_change what,
			const char *path, int64_t version)
{
	if (!touches_listing(c, path))
		return;
	raise_conflict(c, version);
	char *copy = c->nraced < RACED_MAX ? strdup(path) : NULL;
	if (!copy) {
		c->unreplayable = true;
		return;
	}
	c->raced[c->nraced++] = (struct raced_notice){
	    .what = what, .path = copy, .version = version};
}

/* Forget the notices recorded against a listing. mu held. */
static void clear_raced(struct cache *c)
{
	for (size_t i = 0; i < c->nraced; i++)
		free(c->raced[i].path);
	c->nraced = 0;
	c->unreplayable = false;
}

/* ---- building a subtree from a listing ---- */

static void log_invalid_once(struct cache *c, const char *path)
{
	for (size_t i = 0; i < c->nlogged; i++)
		if (strcmp(c->logged[i], path) == 0)
			return;
	char **l = realloc(c->logged, (c->nlogged + 1) * sizeof(*l));
	if (!l)
		return;
	c->logged = l;
	c->logged[c->nlogged] = strdup(path);
	if (c->logged[c->nlogged])
		c->nlogged++;
	topo_warn("not shown: key '%s' has a segment that cannot be a file "
		  "name",
		  path);
}

/* ---- building a listing into a new subtree ---- */

/* A listing on its way into the cache: the backend hands its entries over
 * as it reads them (struct topo_listing_sink), and each goes at once into
 * a new subtree, so a listing of the whole tree and the tree built from it
 * are never both in memory whole. The subtree is the listing thread's own
 * until apply_listing puts it in the tree: built without `mu`. */
struct build {
	struct cache *c;
	const char *dir;
	struct cnode *top; /* the node for dir, once an entry came */
};

static int build_top(struct build *b)
{
	const char *base = path_basename(b->dir);
	if (!b->top)
		b->top = cache_node_new(base, strlen(base));
	return b->top ? 0 : -ENOMEM;
}

/* Put one entry of the listing into the subtree, if it belongs there. */
static int build_entry(struct build *b, const struct topo_entry *e)
{
	struct cnode *n;
	size_t skip = *b->dir ? strlen(b->dir) + 1 : 0;
	if (strcmp(e->path, b->dir) == 0) {
		n = b->top;
	} else if (path_within(e->path, b->dir) && path_store_ok(e->path)) {
		n = cache_walk(b->top, e->path + skip, true);
	} else {
		if (path_within(e->path, b->dir)) {
			pthread_mutex_lock(&b->c->mu);
			log_invalid_once(b->c, e->path);
			pthread_mutex_unlock(&b->c->mu);
		}
		return 0;
	}
	return n && !cache_node_set_value(n, e->value, &e->meta) ? 0 : -ENOMEM;
}

/* topo_listing_sink.take */
static int build_take(void *ctx, const struct topo_entry *entries, size_t count)
{
	struct build *b = ctx;
	int rc = build_top(b);
	for (size_t i = 0; !rc && i < count; i++)
		rc = build_entry(b, &entries[i]);
	return rc;
}

/* topo_listing_sink.restart */
static void build_restart(void *ctx)
{
	struct build *b = ctx;
	cache_node_free(b->top);
	b->top = NULL;
}

/* Copy the directories made by mkdir in `old` into `new` (same position):
 * in-memory ones always; on a store with real directories only onto nodes
 * the store still has (another client may have deleted them). */
static void carry_local_dirs(const struct cache *c, struct cnode *old,
			     struct cnode *new)
{
	bool create = !(c->be->caps & TOPO_CAP_REAL_DIRS);
	if (old->local_dir)
		new->local_dir = true;
	for (size_t i = 0; i < old->nkids; i++) {
		struct cnode *o = cache_kids(old)[i];
		if (!o->local_dir && o->nkids == 0)
			continue;
		struct cnode *n = cache_kid_find(new, o->name, strlen(o->name));
		if (!n && (!create || (!o->local_dir && !o->nkids)))
			continue;
		if (!n)
			n = cache_kid_get(new, o->name, strlen(o->name));
		if (!n)
			continue; /* ENOMEM: lose an empty in-memory dir */
		carry_local_dirs(c, o, n);
		if (cache_node_is_empty(n) && !o->local_dir) {
			cache_kid_remove(new,
					 n); /* nothing local below after all */
			cache_node_free(n);
		}
	}
}

/* Copy into `new` the nodes of `old` that -o writeback created and the
 * store may not have yet (a listing that lacks them must not hide them). */
static void carry_pending(struct cnode *old, struct cnode *new)
{
	for (size_t i = 0; i < old->nkids; i++) {
		struct cnode *o = cache_kids(old)[i];
		size_t len = strlen(o->name);
		struct cnode *n = cache_kid_find(new, o->name, len);
		if (!n && o->pending &&
		    (n = cache_kid_get(new, o->name, len))) {
			n->data = o->data; /* move: old is freed after */
			o->data = NULL;
			n->has_data = o->has_data;
			n->local_dir = o->local_dir;
			n->real_dir = o->real_dir;
			n->fetched_ms = o->fetched_ms;
			n->pending = true;
		}
		if (n && o->nkids)
			carry_pending(o, n);
	}
}

/* Replace the subtree at `dir` by `fresh`, built from a listing (taken:
 * put in the tree or freed). Called with mu held. */
static void apply_listing(struct cache *c, const char *dir, struct cnode *fresh)
{
	struct cnode *parent = *dir ? cache_walk_parent(c, dir) : NULL;
	if (*dir && !parent) {
		cache_node_free(fresh); /* an ancestor vanished meanwhile */
		return;
	}
	struct cnode *old = *dir ? cache_walk(c->root, dir, false) : c->root;
	if (old)
		carry_local_dirs(c, old, fresh);
	if (old && c->pending_ever)
		carry_pending(old, fresh);
	cache_node_trim(fresh);
	cache_mark_fetched(c, fresh, cache_now_ms());
	if (!*dir) {
		c->root = fresh;
	} else {
		if (old)
			cache_kid_remove(parent, old);
		bool found;
		size_t i = cache_kid_index(parent, fresh->name,
					   strlen(fresh->name), &found);
		if (cache_node_is_empty(fresh) ||
		    cache_kid_insert_at(parent, i, fresh)) {
			cache_node_free(fresh);
			cache_prune_empty(c, dir);
		}
	}
	cache_node_free(old);
}

/* ---- freshness ---- */

bool cache_is_fresh(const struct cache *c, const struct cnode *n)
{
	return n->fetched_ms && ((c->watched && !n->kids_unwatched) ||
				 cache_now_ms() - n->fetched_ms < c->ttl_ms);
}

/* The directory whose listing decides about `path` (the parent of path, or
 * of the deepest ancestor that exists; `path` itself with self=true),
 * written into out. Called with mu held; returns its node. */
struct cnode *cache_deciding_dir(struct cache *c, const char *path, bool self,
				 char *out, size_t outlen)
{
	snprintf(out, outlen, "%s", path);
	if (!self && *out)
		out[path_parent_len(out)] = '\0';
	for (;;) {
		struct cnode *n = cache_walk(c->root, out, false);
		if (n && cache_node_is_dir(c, n))
			return n;
		if (!*out)
			return c->root;
		out[path_parent_len(out)] = '\0';
	}
}

/* Re-list `dir` from the store unless another thread just did. */
int cache_refresh(struct cache *c, const char *dir)
{
	int rc = 0;
	uint64_t waited_from = cache_now_ms();
	pthread_mutex_lock(&c->refresh_mu);
	if (c->failed_ms >= waited_from) {
		/* The store failed while we queued: don't wait for another
		 * timeout behind every other waiter. */
		rc = c->failed_rc;
		pthread_mutex_unlock(&c->refresh_mu);
		return rc;
	}
	for (int attempt = 0; attempt < 3; attempt++) {
		pthread_mutex_lock(&c->mu);
		struct cnode *n = cache_walk(c->root, dir, false);
		bool fresh = n && cache_is_fresh(c, n);
		if (!fresh) {
			c->listing = dir;
			c->conflict = 0;
		}
		pthread_mutex_unlock(&c->mu);
		if (fresh)
			break;

		struct build b = {.c = c, .dir = dir};
		const struct topo_listing_sink sink = {build_take,
						       build_restart, &b};
		struct topo_listing l = {.sink = &sink};
		rc = c->be->list(c->st, dir, &l);
		if (!rc)
			rc = topo_listing_flush(&l);
		if (!rc)
			rc = build_top(&b); /* an empty listing: no entry */
		pthread_mutex_lock(&c->mu);
		bool clean = c->conflict == 0 ||
			     (l.revision > 0 && l.revision >= c->conflict);
		bool applied = !rc && (clean || !c->unreplayable);
		if (applied) {
			apply_listing(c, dir, b.top);
			b.top = NULL;
		}
		for (size_t i = 0; applied && !clean && i < c->nraced; i++) {
			size_t grown; /* the kernel heard of it at the time */
			struct raced_notice *r = &c->raced[i];
			cache_notice_locked(c, r->what, r->path, r->version,
					    &grown);
		}
		clear_raced(c);
		c->listing = NULL;
		pthread_mutex_unlock(&c->mu);
		topo_listing_free(&l);
		cache_node_free(b.top); /* not applied: a listing too old */
		if (rc || applied)
			break;
	}
	if (rc) {
		c->failed_ms = cache_now_ms();
		c->failed_rc = rc;
	}
	pthread_mutex_unlock(&c->refresh_mu);
	return rc;
}

/* Whether the child watch of directory n fired and a names-only read can
 * confirm its listing (see Freshness). */
static bool can_check_kids(const struct cache *c, const struct cnode *n)
{
	return n->kids_unwatched && n->fetched_ms && c->be->children;
}

/* Whether the store's names[0..count) of n's children are the cache's. */
static bool same_kids(const struct cnode *n, const char *names, size_t count)
{
	size_t shown = 0;
	for (size_t i = 0; i < count; i++, names += strlen(names) + 1) {
		size_t len = strlen(names);
		bool found;
		if (!path_segment_ok(names, len))
			continue; /* never shown */
		size_t at = cache_kid_index(n, names, len, &found);
		if (!found)
			return false;
		shown += !cache_kids_const(n)[at]->pending;
	}
	size_t stored = 0; /* pending kids may or may not be there yet */
	for (size_t i = 0; i < n->nkids; i++)
		stored += !cache_kids_const(n)[i]->pending;
	return shown == stored;
}

/* Confirm the children of `dir` with one names-only read, which also sets
 * its child watch again: 0 when they are the cache's (its listing is fresh
 * again) or when nothing is known, 1 when they differ (it is marked for
 * re-listing) or when it has none left and is a file again, or the
 * store's error. Unless `force`, only while its listing is not trusted any
 * more. */
int cache_check_kids(struct cache *c, const char *dir, bool force)
{
	pthread_mutex_lock(&c->refresh_mu); /* one store listing at a time */
	pthread_mutex_lock(&c->mu);
	struct cnode *n = cache_walk(c->root, dir, false);
	bool check =
	    n && can_check_kids(c, n) && (force || !cache_is_fresh(c, n));
	uint64_t seq = n && n->ext ? n->ext->kids_seq : 0;
	pthread_mutex_unlock(&c->mu);
	if (!check) {
		pthread_mutex_unlock(&c->refresh_mu);
		return 0; /* another thread did it meanwhile */
	}
	char *names = NULL;
	size_t count = 0;
	uint64_t asked = cache_now_ms();
	int rc = c->be->children(c->st, dir, &names, &count);
	pthread_mutex_unlock(&c->refresh_mu);
	pthread_mutex_lock(&c->mu);
	n = cache_walk(c->root, dir, false);
	if (n && (n->ext ? n->ext->kids_seq : 0) == seq &&
	    (rc == 0 || rc == -ENOENT)) {
		/* Names confirm names only: a notice that meanwhile asked for
		 * the whole listing again (fetched_ms = 0: a child's change
		 * found the listing untrusted, so the child was not marked
		 * stale) must get it, or that change is lost for good. */
		if (rc == 0 && n->fetched_ms && same_kids(n, names, count)) {
			bool was_dir = cache_node_is_dir(c, n);
			n->kids_unwatched = false;
			n->fetched_ms = asked;
			cache_lost_child(c, n); /* none left: a file again */
			if (was_dir && !cache_node_is_dir(c, n))
				rc = 1; /* a change the kernel must hear of */
		} else {
			n->fetched_ms = 0;
			rc = 1;
		}
	} else if (rc == -ENOENT) {
		rc = 0; /* gone, and a notice says so */
	}
	pthread_mutex_unlock(&c->mu);
	free(names);
	return rc;
}

/* Make the cache's answer about `path` current (with self, also the list of
 * its children); returns 0 with mu held, or an error without. */
int cache_lock_fresh(struct cache *c, const char *path, bool self)
{
	char dir[4096];
	pthread_mutex_lock(&c->mu);
	for (int attempt = 0; attempt < 3; attempt++) {
		struct cnode *d =
		    cache_deciding_dir(c, path, self, dir, sizeof(dir));
		struct topo_meta dm;
		cache_node_meta(d, &dm);
		if (dm.denied) {
			pthread_mutex_unlock(&c->mu);
			return -EACCES; /* a node the store will not show us */
		}
		if (!cache_is_fresh(c, d)) {
			bool check = can_check_kids(c, d);
			pthread_mutex_unlock(&c->mu);
			int rc = check ? cache_check_kids(c, dir, false) : 0;
			if (rc >= 0)
				rc = cache_refresh(c,
						   dir); /* none if now fresh */
			if (rc)
				return rc;
			pthread_mutex_lock(&c->mu);
		}
		int rc = cache_resolve_stale(c, path, self);
		if (rc == 0)
			return 0;
		if (rc != -EAGAIN) {
			pthread_mutex_unlock(&c->mu);
			return rc;
		}
	}
	return 0; /* still changing: answer with what we have */
}

void cache_invalidate(struct cache *c, const char *path)
{
	pthread_mutex_lock(&c->mu);
	cache_touch(c, path, -1);
	char dir[4096];
	struct cnode *d = cache_deciding_dir(c, path, true, dir, sizeof(dir));
	cache_mark_fetched(c, d, 0);
	pthread_mutex_unlock(&c->mu);
}
