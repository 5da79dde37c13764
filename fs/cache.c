/*
 * cache.c - the tree as last seen from the store (see cache.h).
 *
 * Concurrency
 *   FUSE calls us from many threads. One mutex, `mu`, guards the whole tree;
 *   it is never held across a store request. Re-listing a directory takes
 *   `refresh_mu` for the duration of the store request, so that when many
 *   threads find the same directory stale at once, one fetches and the
 *   others find it fresh when they get the lock.
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
 *   listing is trusted for ttl_ms.
 *
 *   ZooKeeper's watches are one-shot: once a directory's child watch has
 *   fired (TOPO_CHANGE_CHILDREN, mostly for our own creates, already
 *   recorded), no notice comes for it until its children are read again.
 *   Re-listing the subtree at every such notice made a restore of n files
 *   cost O(n^2). Instead the directory is marked `kids_unwatched`: its
 *   listing is trusted for ttl_ms from when it was last confirmed, then
 *   one names-only read (backend children(), which sets the watch again)
 *   confirms it, or a difference re-lists it. cache_recheck does that
 *   check ttl_ms after the notice even when nobody asks, so that other
 *   clients' changes reach the kernel too.
 *
 *   That delay is for our own writes only. A child notice that comes
 *   while none of our store writes is in flight (cache_write_begin/end),
 *   nor ended within OWN_WRITE_GRACE_MS, is another client's change:
 *   the listing is not trusted from then on, and the next access
 *   confirms it at once with one names-only read. (ZooKeeper sends a
 *   notice our write caused before that write's answer, on the same
 *   session, so our own notices come while the write is in flight.)
 *
 * Shape
 *   Nodes hold their children in an array sorted by name (binary search;
 *   listings arrive sorted, so building is mostly appending). A node is a
 *   directory if it has children, is the root, was made by mkdir (`local`)
 *   or is one in the store (`real_dir`, ZooKeeper).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "path.h"
#include "topofs/log.h"

#define RACED_MAX 64	      /* notices replayed after a listing they raced */
#define OWN_WRITE_GRACE_MS 20 /* see Freshness */

struct cnode {
	char *name;
	struct cnode **kids; /* sorted by name */
	size_t nkids, capkids;
	unsigned char *value; /* meta.size bytes; NULL when empty */
	struct topo_meta meta;
	uint64_t fetched_ms; /* directories: when last listed (0: never) */
	bool has_data;
	bool local_dir; /* made by mkdir through this mount (etcd: in memory
			   only) */
	bool real_dir;	/* a directory in the store (ZooKeeper) */
	bool stale;	/* a notice said it changed: get() it again */
	int64_t derived_for; /* modify_id derived_size was computed for */
	size_t derived_size; /* e.g. the length of the value's JSON view */
	bool pending;	     /* created by -o writeback, maybe not in the
				store yet: kept across listings */
	bool kids_unwatched; /* its child watch fired: see Freshness */
	uint64_t kids_seq;   /* stamp of the last child notice (see
				check_kids) */
	uint64_t stale_seq;  /* stamp of the last notice or write: a get()
				that raced one is not taken for the newest */
	int64_t noticed;     /* stale: the newest version a notice named
				(INT64_MAX: a notice without one) */
};

struct cache {
	const struct topo_backend *be;
	struct topo_store *st;
	unsigned ttl_ms;

	pthread_mutex_t refresh_mu; /* one store listing at a time; guards: */
	uint64_t failed_ms;	    /* when the last listing failed */
	int failed_rc;		    /* and how */

	pthread_mutex_t mu; /* guards everything below */
	struct cnode *root;
	bool watched;	     /* change notices keep listings fresh */
	const char *listing; /* the directory being listed, or NULL */
	int64_t conflict;    /* newest change to it meanwhile (0: none) */
	struct raced_notice {
		enum topo_change what;
		char *path; /* owned */
		int64_t version;
	} raced[RACED_MAX]; /* the notices that touched it meanwhile */
	size_t nraced;
	bool unreplayable;     /* a write touched it meanwhile, or more than
				  RACED_MAX notices: no replay (see above) */
	uint64_t stamps;       /* the last stamp given (see next_stamp) */
	bool pending_ever;     /* some node was ever pending (-o writeback) */
	unsigned own_writes;   /* our store writes in flight (see Freshness) */
	uint64_t own_write_ms; /* when the last of them ended */
	char **logged; /* invalid keys already logged, to log each once */
	size_t nlogged;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Whether one of our store writes is in flight or just ended (see
 * Freshness). mu held. */
static bool own_write_recent(const struct cache *c)
{
	return c->own_writes > 0 ||
	       now_ms() - c->own_write_ms < OWN_WRITE_GRACE_MS;
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
	c->own_write_ms = now_ms();
	pthread_mutex_unlock(&c->mu);
}

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
static void touch(struct cache *c, const char *path, int64_t version)
{
	if (!touches_listing(c, path))
		return;
	raise_conflict(c, version);
	c->unreplayable = true;
}

/* Record a change notice against the listing in flight, if it touches the
 * listed subtree, to be replayed after it (see Concurrency). mu held. */
static void touch_notice(struct cache *c, enum topo_change what,
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

/* ---- nodes ---- */

static struct cnode *node_new(const char *name, size_t len)
{
	struct cnode *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->name = strndup(name, len);
	if (!n->name) {
		free(n);
		return NULL;
	}
	return n;
}

static void node_free(struct cnode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		node_free(n->kids[i]);
	free(n->kids);
	free(n->value);
	free(n->name);
	free(n);
}

static bool node_is_dir(const struct cache *c, const struct cnode *n)
{
	return n == c->root || n->nkids > 0 || n->local_dir || n->real_dir;
}

/* Whether a node's own value is a file: always for a file; for a directory
 * (as DIR/.topofs-data) unless it is the empty data that every ZooKeeper
 * directory node has. */
static bool data_shown(const struct cache *c, const struct cnode *n)
{
	if (!n->has_data)
		return false;
	return !node_is_dir(c, n) || n->meta.size > 0 ||
	       !(c->be->caps & TOPO_CAP_REAL_DIRS);
}

/* Whether n holds nothing: no children, no value, not a directory of its
 * own. A stale node is not empty: a notice said it changed and its value,
 * not read yet, may be there (etcd: the put of "k" seen, then the delete
 * of "k/c", its last child, must not prune "k"). */
static bool node_is_empty(const struct cnode *n)
{
	return !n->nkids && !n->has_data && !n->local_dir && !n->real_dir &&
	       !n->stale;
}

/* strcmp of NUL-terminated a against b[0..blen) (b holds no NUL). */
static int name_cmp(const char *a, const char *b, size_t blen)
{
	int cmp = strncmp(a, b, blen);
	if (cmp)
		return cmp;
	return a[blen] ? 1 : 0;
}

/* Index of child `name` in n, or where it would go (*found says which). */
static size_t kid_index(const struct cnode *n, const char *name, size_t len,
			bool *found)
{
	size_t lo = 0, hi = n->nkids;
	*found = false;
	/* listings arrive sorted: try "after the last child" first */
	if (hi > 0 && name_cmp(n->kids[hi - 1]->name, name, len) < 0)
		return hi;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int cmp = name_cmp(n->kids[mid]->name, name, len);
		if (cmp == 0) {
			*found = true;
			return mid;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Put `kid` into n at position i. -ENOMEM leaves n unchanged. */
static int kid_insert_at(struct cnode *n, size_t i, struct cnode *kid)
{
	if (n->nkids == n->capkids) {
		size_t cap = n->capkids ? n->capkids * 2 : 4;
		struct cnode **k = realloc(n->kids, cap * sizeof(*k));
		if (!k)
			return -ENOMEM;
		n->kids = k;
		n->capkids = cap;
	}
	memmove(&n->kids[i + 1], &n->kids[i],
		(n->nkids - i) * sizeof(n->kids[0]));
	n->kids[i] = kid;
	n->nkids++;
	return 0;
}

static struct cnode *kid_find(const struct cnode *n, const char *name,
			      size_t len)
{
	bool found;
	size_t i = kid_index(n, name, len, &found);
	return found ? n->kids[i] : NULL;
}

/* The child `name` of n, created if missing. NULL on ENOMEM. */
static struct cnode *kid_get(struct cnode *n, const char *name, size_t len)
{
	bool found;
	size_t i = kid_index(n, name, len, &found);
	if (found)
		return n->kids[i];
	struct cnode *kid = node_new(name, len);
	if (kid && kid_insert_at(n, i, kid)) {
		node_free(kid);
		kid = NULL;
	}
	return kid;
}

/* Remove child `kid` from n (does not free it). */
static void kid_remove(struct cnode *n, struct cnode *kid)
{
	for (size_t i = 0; i < n->nkids; i++) {
		if (n->kids[i] == kid) {
			memmove(&n->kids[i], &n->kids[i + 1],
				(n->nkids - i - 1) * sizeof(n->kids[0]));
			n->nkids--;
			return;
		}
	}
}

/* Walk from `top` along store path p; NULL if some segment is missing.
 * With create, missing nodes are made (NULL then means ENOMEM); they are as
 * fresh as their parent, which has just been told about them. With `made`,
 * *made is set to where in p the first node made starts (unchanged if none
 * was). */
static struct cnode *walk_made(struct cnode *top, const char *p, bool create,
			       const char **made)
{
	struct cnode *n = top;
	while (n && *p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		struct cnode *next = kid_find(n, p, len);
		if (!next && create) {
			next = kid_get(n, p, len);
			if (next)
				next->fetched_ms = n->fetched_ms;
			if (made && !*made)
				*made = p;
		}
		n = next;
		p = slash ? slash + 1 : p + len;
	}
	return n;
}

static struct cnode *walk(struct cnode *top, const char *p, bool create)
{
	return walk_made(top, p, create, NULL);
}

/* The parent node of store path p, or NULL. */
static struct cnode *walk_parent(struct cache *c, const char *p)
{
	size_t plen = path_parent_len(p);
	char *parent = strndup(p, plen);
	if (!parent)
		return NULL;
	struct cnode *n = walk(c->root, parent, false);
	free(parent);
	return n;
}

static void node_set_value(struct cnode *n, unsigned char *value,
			   const struct topo_meta *meta)
{
	free(n->value);
	n->value = value;
	n->meta = *meta;
	n->has_data = true;
	n->real_dir = meta->real_dir;
}

/* A stamp for a node's stale_seq or kids_seq, never given before. A read
 * of the store made while a node had stamp s is taken only if the node at
 * that path still has stamp s when the answer comes. Stamps are unique
 * across nodes because a node may be replaced meanwhile (a re-listing
 * builds new nodes): a per-node count would start again from 0 there and
 * could match, and an old answer (ENOENT from before a create) would be
 * taken for the new node. Called with mu held. */
static uint64_t next_stamp(struct cache *c)
{
	return ++c->stamps;
}

/* A notice said n changed (to `version`, or <= 0 if it did not say):
 * read it again at the next access. */
static void node_mark_stale(struct cache *c, struct cnode *n, int64_t version)
{
	if (version <= 0)
		version = INT64_MAX;
	if (!n->stale || version > n->noticed)
		n->noticed = version;
	n->stale = true;
	n->stale_seq = next_stamp(c);
}

static void node_clear_value(struct cnode *n)
{
	free(n->value);
	n->value = NULL;
	memset(&n->meta, 0, sizeof(n->meta));
	n->has_data = false;
}

static void mark_fetched(struct cache *c, struct cnode *n, uint64_t when)
{
	if (!node_is_dir(c, n))
		return;
	n->fetched_ms = when;
	for (size_t i = 0; i < n->nkids; i++)
		mark_fetched(c, n->kids[i], when);
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

/* Build the node for `dir` from the listing (taking its values). */
static struct cnode *build_subtree(struct cache *c, const char *dir,
				   struct topo_listing *l)
{
	const char *base = path_basename(dir);
	struct cnode *top = node_new(base, strlen(base));
	if (!top)
		return NULL;
	size_t skip = *dir ? strlen(dir) + 1 : 0;
	for (size_t i = 0; i < l->count; i++) {
		struct topo_entry *e = &l->entries[i];
		struct cnode *n;
		if (strcmp(e->path, dir) == 0) {
			n = top;
		} else if (path_within(e->path, dir) &&
			   path_store_ok(e->path)) {
			n = walk(top, e->path + skip, true);
			if (!n)
				goto nomem;
		} else {
			if (path_within(e->path, dir))
				log_invalid_once(c, e->path);
			continue;
		}
		node_set_value(n, e->value, &e->meta);
		e->value = NULL; /* the node owns it now */
	}
	return top;
nomem:
	node_free(top);
	return NULL;
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
		struct cnode *o = old->kids[i];
		if (!o->local_dir && o->nkids == 0)
			continue;
		struct cnode *n = kid_find(new, o->name, strlen(o->name));
		if (!n && (!create || (!o->local_dir && !o->nkids)))
			continue;
		if (!n)
			n = kid_get(new, o->name, strlen(o->name));
		if (!n)
			continue; /* ENOMEM: lose an empty in-memory dir */
		carry_local_dirs(c, o, n);
		if (node_is_empty(n) && !o->local_dir) {
			kid_remove(new, n); /* nothing local below after all */
			node_free(n);
		}
	}
}

/* Copy into `new` the nodes of `old` that -o writeback created and the
 * store may not have yet (a listing that lacks them must not hide them). */
static void carry_pending(struct cnode *old, struct cnode *new)
{
	for (size_t i = 0; i < old->nkids; i++) {
		struct cnode *o = old->kids[i];
		size_t len = strlen(o->name);
		struct cnode *n = kid_find(new, o->name, len);
		if (!n && o->pending && (n = kid_get(new, o->name, len))) {
			n->value = o->value; /* move: old is freed after */
			o->value = NULL;
			n->meta = o->meta;
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

/* Remove now-empty implicit ancestors of `path` (etcd has no empty dirs). */
static void prune_empty(struct cache *c, const char *path)
{
	char buf[4096];
	if (strlen(path) >= sizeof(buf))
		return;
	strcpy(buf, path);
	while (*buf) {
		buf[path_parent_len(buf)] = '\0';
		struct cnode *n = walk(c->root, buf, false);
		if (!n || n == c->root || !node_is_empty(n))
			return;
		struct cnode *parent = walk_parent(c, buf);
		if (!parent)
			return;
		if (!n->fetched_ms)
			parent->fetched_ms = 0; /* its pending re-listing */
		kid_remove(parent, n);
		node_free(n);
	}
}

/* Replace the subtree at `dir` by the listing. Called with mu held. */
static void apply_listing(struct cache *c, const char *dir,
			  struct topo_listing *l)
{
	struct cnode *fresh = build_subtree(c, dir, l);
	if (!fresh)
		return; /* ENOMEM: keep the old view, re-list next time */
	struct cnode *parent = *dir ? walk_parent(c, dir) : NULL;
	if (*dir && !parent) {
		node_free(fresh); /* an ancestor vanished meanwhile */
		return;
	}
	struct cnode *old = *dir ? walk(c->root, dir, false) : c->root;
	if (old)
		carry_local_dirs(c, old, fresh);
	if (old && c->pending_ever)
		carry_pending(old, fresh);
	mark_fetched(c, fresh, now_ms());
	if (!*dir) {
		c->root = fresh;
	} else {
		if (old)
			kid_remove(parent, old);
		bool found;
		size_t i =
		    kid_index(parent, fresh->name, strlen(fresh->name), &found);
		if (node_is_empty(fresh) || kid_insert_at(parent, i, fresh)) {
			node_free(fresh);
			prune_empty(c, dir);
		}
	}
	node_free(old);
}

/* ---- freshness ---- */

static bool is_fresh(const struct cache *c, const struct cnode *n)
{
	return n->fetched_ms && ((c->watched && !n->kids_unwatched) ||
				 now_ms() - n->fetched_ms < c->ttl_ms);
}

/* The directory whose listing decides about `path` (the parent of path, or
 * of the deepest ancestor that exists; `path` itself with self=true),
 * written into out. Called with mu held; returns its node. */
static struct cnode *deciding_dir(struct cache *c, const char *path, bool self,
				  char *out, size_t outlen)
{
	snprintf(out, outlen, "%s", path);
	if (!self && *out)
		out[path_parent_len(out)] = '\0';
	for (;;) {
		struct cnode *n = walk(c->root, out, false);
		if (n && node_is_dir(c, n))
			return n;
		if (!*out)
			return c->root;
		out[path_parent_len(out)] = '\0';
	}
}

static bool notice_locked(struct cache *c, enum topo_change what,
			  const char *path, int64_t version, size_t *grown);

/* Re-list `dir` from the store unless another thread just did. */
static int refresh(struct cache *c, const char *dir)
{
	int rc = 0;
	uint64_t waited_from = now_ms();
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
		struct cnode *n = walk(c->root, dir, false);
		bool fresh = n && is_fresh(c, n);
		if (!fresh) {
			c->listing = dir;
			c->conflict = 0;
		}
		pthread_mutex_unlock(&c->mu);
		if (fresh)
			break;

		struct topo_listing l = {0};
		rc = c->be->list(c->st, dir, &l);
		pthread_mutex_lock(&c->mu);
		bool clean = c->conflict == 0 ||
			     (l.revision > 0 && l.revision >= c->conflict);
		bool applied = !rc && (clean || !c->unreplayable);
		if (applied)
			apply_listing(c, dir, &l);
		for (size_t i = 0; applied && !clean && i < c->nraced; i++) {
			size_t grown; /* the kernel heard of it at the time */
			struct raced_notice *r = &c->raced[i];
			notice_locked(c, r->what, r->path, r->version, &grown);
		}
		clear_raced(c);
		c->listing = NULL;
		pthread_mutex_unlock(&c->mu);
		topo_listing_free(&l);
		if (rc || applied)
			break;
	}
	if (rc) {
		c->failed_ms = now_ms();
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

static void lost_child(const struct cache *c, struct cnode *parent);

/* Whether the store's names[0..count) of n's children are the cache's. */
static bool same_kids(const struct cnode *n, const char *names, size_t count)
{
	size_t shown = 0;
	for (size_t i = 0; i < count; i++, names += strlen(names) + 1) {
		size_t len = strlen(names);
		bool found;
		if (!path_segment_ok(names, len))
			continue; /* never shown */
		size_t at = kid_index(n, names, len, &found);
		if (!found)
			return false;
		shown += !n->kids[at]->pending;
	}
	size_t stored = 0; /* pending kids may or may not be there yet */
	for (size_t i = 0; i < n->nkids; i++)
		stored += !n->kids[i]->pending;
	return shown == stored;
}

/* Confirm the children of `dir` with one names-only read, which also sets
 * its child watch again: 0 when they are the cache's (its listing is fresh
 * again) or when nothing is known, 1 when they differ (it is marked for
 * re-listing) or when it has none left and is a file again, or the
 * store's error. Unless `force`, only while its listing is not trusted any
 * more. */
static int check_kids(struct cache *c, const char *dir, bool force)
{
	pthread_mutex_lock(&c->refresh_mu); /* one store listing at a time */
	pthread_mutex_lock(&c->mu);
	struct cnode *n = walk(c->root, dir, false);
	bool check = n && can_check_kids(c, n) && (force || !is_fresh(c, n));
	uint64_t seq = n ? n->kids_seq : 0;
	pthread_mutex_unlock(&c->mu);
	if (!check) {
		pthread_mutex_unlock(&c->refresh_mu);
		return 0; /* another thread did it meanwhile */
	}
	char *names = NULL;
	size_t count = 0;
	uint64_t asked = now_ms();
	int rc = c->be->children(c->st, dir, &names, &count);
	pthread_mutex_unlock(&c->refresh_mu);
	pthread_mutex_lock(&c->mu);
	n = walk(c->root, dir, false);
	if (n && n->kids_seq == seq && (rc == 0 || rc == -ENOENT)) {
		if (rc == 0 && same_kids(n, names, count)) {
			bool was_dir = node_is_dir(c, n);
			n->kids_unwatched = false;
			n->fetched_ms = asked;
			lost_child(c, n); /* none left: a file again */
			if (was_dir && !node_is_dir(c, n))
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

int cache_recheck(struct cache *c, const char *path)
{
	int rc = check_kids(c, path, true);
	if (rc > 0) {
		int lrc = refresh(c, path);
		if (lrc)
			rc = lrc;
	}
	return rc;
}

#define STALE_GET_MAX 16 /* more stale nodes in one directory: re-list it */

struct stale_ref {
	char path[4096];
	uint64_t seq;
};

/* Add node n (store path p) to refs if a notice made it stale. */
static void want_stale(const struct cnode *n, const char *p,
		       struct stale_ref *refs, size_t *count)
{
	if (!n->stale || *count > STALE_GET_MAX)
		return;
	if (*count < STALE_GET_MAX) {
		snprintf(refs[*count].path, sizeof(refs[*count].path), "%s", p);
		refs[*count].seq = n->stale_seq;
	}
	(*count)++;
}

/* A store with real directories: a node whose last child went is a file
 * again (Vitess's rule), unless it was made by mkdir here, or the store's
 * directories are nodes of their own (etcd v2), which stay directories, or
 * children may have come that the cache does not know yet (its child watch
 * fired: check_kids decides then). */
static void lost_child(const struct cache *c, struct cnode *parent)
{
	if (parent && !parent->nkids && !parent->local_dir &&
	    !parent->kids_unwatched && !(c->be->caps & TOPO_CAP_DIR_NODES))
		parent->real_dir = false;
}

/* Drop the children of n that the store says it no longer has. */
static void drop_kids(struct cnode *n)
{
	for (size_t i = 0; i < n->nkids; i++)
		node_free(n->kids[i]);
	n->nkids = 0;
}

/* Whether meta m describes an older state of node n than the cached one:
 * modify_id (etcd mod_revision, ZooKeeper mzxid) only grows. */
static bool older_than_cached(const struct cnode *n, const struct topo_meta *m)
{
	return n->has_data && m->modify_id > 0 &&
	       n->meta.modify_id > m->modify_id;
}

/* Take a get() answer for a stale node, unless a newer notice, a delete
 * notice or one of our own writes came meanwhile (all bump stale_seq),
 * another get() answered first, or it is older than what the cache holds.
 * False when the node is left stale (ask again). */
static bool apply_get(struct cache *c, const struct stale_ref *ref, int rc,
		      struct topo_entry *e)
{
	struct cnode *n = walk(c->root, ref->path, false);
	if (!n || (rc && rc != -ENOENT))
		return true; /* nothing to correct, or the caller reports rc */
	/* Not stale any more: another get() answered, maybe a newer one (an
	 * ENOENT older than a value has no version to compare). */
	if (!n->stale)
		return true;
	if (n->stale_seq != ref->seq || (!rc && older_than_cached(n, &e->meta)))
		return false; /* still stale: ask again */
	n->stale = false;
	n->noticed = 0;
	bool real_dirs = c->be->caps & TOPO_CAP_REAL_DIRS;
	if (!rc) {
		node_set_value(n, e->value, &e->meta);
		e->value = NULL;
		if (real_dirs && !e->meta.real_dir && !n->local_dir)
			drop_kids(n); /* the store has none left */
		return true;
	}
	node_clear_value(n);
	struct cnode *parent = *ref->path ? walk_parent(c, ref->path) : NULL;
	if (parent && (node_is_empty(n) || real_dirs)) {
		kid_remove(parent, n);
		node_free(n);
		if (real_dirs)
			lost_child(c, parent);
		prune_empty(c, ref->path);
	}
	return true;
}

/* Re-read the stale node at `path` (and its children with kids=true) with
 * one get() each. Called and returns with mu held; drops it meanwhile.
 * -EAGAIN: too many (the directory was marked for re-listing instead), or
 * a notice or write raced an answer and the node is still stale: the
 * caller asks again rather than answer with what it knows is old. */
static int resolve_stale(struct cache *c, const char *path, bool kids)
{
	struct cnode *n = walk(c->root, path, false);
	if (!n)
		return 0;
	struct stale_ref *refs = malloc(STALE_GET_MAX * sizeof(*refs));
	if (!refs)
		return -ENOMEM;
	size_t count = 0;
	bool raced = false;
	want_stale(n, path, refs, &count);
	for (size_t i = 0; kids && i < n->nkids; i++) {
		char p[4096];
		if (path_join(p, sizeof(p), path, n->kids[i]->name) == 0)
			want_stale(n->kids[i], p, refs, &count);
	}
	int rc = 0;
	if (count > STALE_GET_MAX) {
		n->fetched_ms = 0;
		rc = -EAGAIN;
	} else if (count) {
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

/* Make the cache's answer about `path` current (with self, also the list of
 * its children); returns 0 with mu held, or an error without. */
static int lock_fresh(struct cache *c, const char *path, bool self)
{
	char dir[4096];
	pthread_mutex_lock(&c->mu);
	for (int attempt = 0; attempt < 3; attempt++) {
		struct cnode *d = deciding_dir(c, path, self, dir, sizeof(dir));
		if (d->meta.denied) {
			pthread_mutex_unlock(&c->mu);
			return -EACCES; /* a node the store will not show us */
		}
		if (!is_fresh(c, d)) {
			bool check = can_check_kids(c, d);
			pthread_mutex_unlock(&c->mu);
			int rc = check ? check_kids(c, dir, false) : 0;
			if (rc >= 0)
				rc = refresh(c, dir); /* none if now fresh */
			if (rc)
				return rc;
			pthread_mutex_lock(&c->mu);
		}
		int rc = resolve_stale(c, path, self);
		if (rc == 0)
			return 0;
		if (rc != -EAGAIN) {
			pthread_mutex_unlock(&c->mu);
			return rc;
		}
	}
	return 0; /* still changing: answer with what we have */
}

/* ---- queries ---- */

/* counts: also subdirs and newest, which cost O(children). */
static void fill_stat(const struct cache *c, const struct cnode *n,
		      struct cache_stat *out, bool counts)
{
	memset(out, 0, sizeof(*out));
	out->is_dir = node_is_dir(c, n);
	out->has_data = n->has_data;
	out->data_shown = data_shown(c, n);
	out->local_dir = n->local_dir;
	out->real_dir = n->real_dir;
	if (n->has_data)
		out->meta = n->meta;
	if (!out->is_dir || !counts)
		return;
	for (size_t i = 0; i < n->nkids; i++) {
		const struct cnode *k = n->kids[i];
		if (node_is_dir(c, k))
			out->subdirs++;
		if (k->has_data && k->meta.version > out->newest)
			out->newest = k->meta.version;
	}
	if (n->has_data && n->meta.version > out->newest)
		out->newest = n->meta.version;
}

static int stat_path(struct cache *c, const char *path, struct cache_stat *out,
		     bool counts)
{
	int rc = lock_fresh(c, path, false);
	if (rc)
		return rc;
	struct cnode *n = walk(c->root, path, false);
	if (n)
		fill_stat(c, n, out, counts);
	pthread_mutex_unlock(&c->mu);
	return n ? 0 : -ENOENT;
}

int cache_stat(struct cache *c, const char *path, struct cache_stat *out)
{
	return stat_path(c, path, out, true);
}

int cache_stat_brief(struct cache *c, const char *path, struct cache_stat *out)
{
	return stat_path(c, path, out, false);
}

int cache_value(struct cache *c, const char *path, unsigned char **buf,
		struct topo_meta *meta)
{
	int rc = lock_fresh(c, path, false);
	if (rc)
		return rc;
	struct cnode *n = walk(c->root, path, false);
	*buf = NULL;
	if (!n || !n->has_data) {
		rc = -ENOENT;
	} else if (n->meta.size) {
		*buf = malloc(n->meta.size);
		if (*buf)
			memcpy(*buf, n->value, n->meta.size);
		else
			rc = -ENOMEM;
	}
	if (!rc)
		*meta = n->meta;
	pthread_mutex_unlock(&c->mu);
	return rc;
}

int cache_list_dir(struct cache *c, const char *path, cache_dir_fn fn,
		   void *arg)
{
	int rc = lock_fresh(c, path, true);
	if (rc)
		return rc;
	struct cnode *n = walk(c->root, path, false);
	if (!n)
		rc = -ENOENT;
	else if (!node_is_dir(c, n))
		rc = -ENOTDIR;
	for (size_t i = 0; !rc && i < n->nkids; i++) {
		struct cache_stat st;
		fill_stat(c, n->kids[i], &st, true);
		rc = fn(arg, n->kids[i]->name, &st);
	}
	if (!rc && data_shown(c, n)) {
		struct cache_stat st = {
		    .has_data = true, .data_shown = true, .meta = n->meta};
		rc = fn(arg, TOPO_DATA_NAME, &st);
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* Append every stored node of n (at store path p) to l. */
static int collect(const struct cnode *n, char *p, size_t plen, size_t cap,
		   struct topo_listing *l, bool *local_dirs)
{
	if (n->local_dir)
		*local_dirs = true;
	if (n->has_data) {
		unsigned char *v = NULL;
		if (n->meta.size) {
			v = malloc(n->meta.size);
			if (!v)
				return -ENOMEM;
			memcpy(v, n->value, n->meta.size);
		}
		int rc = topo_listing_add(l, p, plen, &n->meta, v);
		if (rc) {
			free(v);
			return rc;
		}
	}
	for (size_t i = 0; i < n->nkids; i++) {
		size_t nlen = strlen(n->kids[i]->name);
		size_t len = plen ? plen + 1 + nlen : nlen;
		if (len >= cap)
			return -ENAMETOOLONG;
		if (plen)
			p[plen] = '/';
		memcpy(p + (plen ? plen + 1 : 0), n->kids[i]->name, nlen + 1);
		int rc = collect(n->kids[i], p, len, cap, l, local_dirs);
		p[plen] = '\0';
		if (rc)
			return rc;
	}
	return 0;
}

int cache_subtree(struct cache *c, const char *path, struct topo_listing *out,
		  bool *local_dirs)
{
	cache_invalidate(c, path); /* a rename must see the store as it is */
	int rc = lock_fresh(c, path, true);
	if (rc)
		return rc;
	*local_dirs = false;
	char p[4096];
	struct cnode *n = walk(c->root, path, false);
	if (!n) {
		rc = -ENOENT;
	} else {
		snprintf(p, sizeof(p), "%s", path);
		rc = collect(n, p, strlen(p), sizeof(p), out, local_dirs);
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* ---- sizes derived from values ---- */

bool cache_derived_size(struct cache *c, const char *path, int64_t modify_id,
			size_t *size)
{
	pthread_mutex_lock(&c->mu);
	struct cnode *n = walk(c->root, path, false);
	bool known = n && modify_id > 0 && n->derived_for == modify_id;
	if (known)
		*size = n->derived_size;
	pthread_mutex_unlock(&c->mu);
	return known;
}

void cache_set_derived_size(struct cache *c, const char *path,
			    int64_t modify_id, size_t size)
{
	pthread_mutex_lock(&c->mu);
	struct cnode *n = walk(c->root, path, false);
	if (n && n->has_data && n->meta.modify_id == modify_id) {
		n->derived_for = modify_id;
		n->derived_size = size;
	}
	pthread_mutex_unlock(&c->mu);
}

/* ---- our own writes ---- */

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

void cache_mark_stale(struct cache *c, const char *path)
{
	pthread_mutex_lock(&c->mu);
	struct cnode *n = walk(c->root, path, false);
	if (n) {
		node_mark_stale(c, n, -1);
		n->pending = false;
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

void cache_invalidate(struct cache *c, const char *path)
{
	pthread_mutex_lock(&c->mu);
	touch(c, path, -1);
	char dir[4096];
	struct cnode *d = deciding_dir(c, path, true, dir, sizeof(dir));
	mark_fetched(c, d, 0);
	pthread_mutex_unlock(&c->mu);
}

/* ---- change notices ---- */

void cache_watch_started(struct cache *c)
{
	pthread_mutex_lock(&c->mu);
	c->watched = true;
	pthread_mutex_unlock(&c->mu);
}

/* Another client deleted the node at `path`: its value goes; so does the
 * node unless it has children (etcd: a key that is also a prefix). */
static void forget_node(struct cache *c, const char *path, struct cnode *n)
{
	n->stale_seq = next_stamp(c); /* a get() in flight predates this */
	node_clear_value(n);
	n->stale = false;
	n->local_dir = false;
	n->real_dir = false;
	struct cnode *parent = *path ? walk_parent(c, path) : NULL;
	bool real_dirs = c->be->caps & TOPO_CAP_REAL_DIRS;
	if (parent && (!n->nkids || real_dirs)) {
		kid_remove(parent, n);
		node_free(n);
		if (real_dirs)
			lost_child(c, parent);
		prune_empty(c, path);
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
	struct cnode *d = deciding_dir(c, path, false, dir, sizeof(dir));
	size_t skip = *dir ? strlen(dir) + 1 : 0;
	if (!is_fresh(c, d))
		return NULL;
	if ((c->be->caps & TOPO_CAP_REAL_DIRS) &&
	    strlen(dir) != path_parent_len(path))
		return NULL; /* a parent that is a node of its own is missing */
	const char *made = NULL;
	struct cnode *n = walk_made(d, path + skip, true, &made);
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
static bool notice_locked(struct cache *c, enum topo_change what,
			  const char *path, int64_t version, size_t *grown)
{
	char dir[4096];
	bool changed = true;
	*grown = CACHE_NOT_GROWN;
	struct cnode *n = walk(c->root, path, false);
	if (what == TOPO_CHANGE_ALL) {
		mark_fetched(c, c->root, 0);
	} else if (what == TOPO_CHANGE_NODE && n && n->has_data &&
		   version > 0 && n->meta.version == version) {
		changed = false; /* our own write, already recorded */
	} else if (what == TOPO_CHANGE_DELETED) {
		if (n &&
		    (version <= 0 || !n->has_data || n->meta.version < version))
			forget_node(c, path, n);
		else
			changed = false; /* gone already, or newer */
	} else if (what == TOPO_CHANGE_NODE &&
		   mark_node_stale(c, path, version, grown)) {
		; /* one get() at the next access */
	} else if (what == TOPO_CHANGE_CHILDREN && n && node_is_dir(c, n) &&
		   n->fetched_ms) {
		n->kids_unwatched = true; /* see Freshness */
		n->kids_seq = next_stamp(c);
		if (!own_write_recent(c))
			n->fetched_ms = 1; /* another client's: check now */
	} else if (what == TOPO_CHANGE_CHILDREN && n && !node_is_dir(c, n)) {
		/* A file that gained a child, or a directory whose last child
		 * went: its own kind is read again, not its parent's whole
		 * listing (that made a restore over existing files quadratic)
		 */
		node_mark_stale(c, n, -1);
		n->fetched_ms = 0;
	} else {
		struct cnode *d = deciding_dir(
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
	touch_notice(c, what, what == TOPO_CHANGE_ALL ? "" : path, version);
	bool changed = notice_locked(c, what, path, version, grown);
	pthread_mutex_unlock(&c->mu);
	return changed;
}

bool cache_listing_watched(struct cache *c, const char *path)
{
	pthread_mutex_lock(&c->mu);
	struct cnode *n = walk(c->root, path, false);
	bool watched = c->watched && !(n && n->kids_unwatched);
	pthread_mutex_unlock(&c->mu);
	return watched;
}

bool cache_knows_dir(struct cache *c, const char *path)
{
	pthread_mutex_lock(&c->mu);
	struct cnode *n = walk(c->root, path, false);
	bool dir = n && !n->stale && node_is_dir(c, n);
	pthread_mutex_unlock(&c->mu);
	return dir;
}

/* Whether n or a node below it is more than ephemeral: a value that is
 * not, a directory made through the mount or in the store, or a node not
 * known for sure (stale, pending). mu held. */
static bool holds_persistent(const struct cnode *n)
{
	if ((n->has_data && !n->meta.ephemeral) || n->local_dir ||
	    n->real_dir || n->pending || n->stale)
		return true;
	for (size_t i = 0; i < n->nkids; i++)
		if (holds_persistent(n->kids[i]))
			return true;
	return false;
}

bool cache_dir_persistent(struct cache *c, const char *path)
{
	pthread_mutex_lock(&c->mu);
	struct cnode *n = walk(c->root, path, false);
	bool shown = !n || !*path || holds_persistent(n);
	pthread_mutex_unlock(&c->mu);
	return shown;
}

/* Collect the paths of every node under n (store path p), depth first. */
static int collect_paths(const struct cnode *n, char *p, size_t plen,
			 size_t cap, void (*fn)(void *, const char *),
			 void *arg)
{
	fn(arg, p);
	for (size_t i = 0; i < n->nkids; i++) {
		size_t nlen = strlen(n->kids[i]->name);
		size_t len = plen ? plen + 1 + nlen : nlen;
		if (len >= cap)
			continue;
		if (plen)
			p[plen] = '/';
		memcpy(p + (plen ? plen + 1 : 0), n->kids[i]->name, nlen + 1);
		collect_paths(n->kids[i], p, len, cap, fn, arg);
		p[plen] = '\0';
	}
	return 0;
}

void cache_for_each_path(struct cache *c, void (*fn)(void *, const char *),
			 void *arg)
{
	char p[4096] = "";
	pthread_mutex_lock(&c->mu);
	collect_paths(c->root, p, 0, sizeof(p), fn, arg);
	pthread_mutex_unlock(&c->mu);
}

/* ---- life ---- */

struct cache *cache_new(const struct topo_backend *be, struct topo_store *st,
			unsigned ttl_ms)
{
	struct cache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->root = node_new("", 0);
	if (!c->root) {
		free(c);
		return NULL;
	}
	c->be = be;
	c->st = st;
	c->ttl_ms = ttl_ms ? ttl_ms : 1;
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->refresh_mu, NULL);
	return c;
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	node_free(c->root);
	for (size_t i = 0; i < c->nlogged; i++)
		free(c->logged[i]);
	free(c->logged);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->refresh_mu);
	free(c);
}
