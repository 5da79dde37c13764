/*
 * cache_internal.h - what the cache's files share: the tree's node, the
 * cache itself, and the helpers one file calls in another. Not for use
 * outside fs/cache*.c (the filesystem uses cache.h).
 *
 *   cache.c          the tree: nodes, their sorted child arrays, walks;
 *                    the queries answered from it; creation and freeing
 *   cache_listing.c  listings: fetching a subtree, building it into the
 *                    tree, races with writes and notices, freshness
 *   cache_notice.c   change notices and staleness: what a notice marks,
 *                    get() answers for stale nodes, rechecks of children
 *   cache_write.c    our own writes, recorded in the tree
 *
 * "mu held" below: called with the cache's `mu` locked, returning with it
 * still locked and never dropping it. Node helpers work on the tree (mu
 * held) or on nodes not in it yet (a subtree being built).
 */
#ifndef TOPOFS_CACHE_INTERNAL_H
#define TOPOFS_CACHE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"

#define RACED_MAX 64 /* notices replayed after a listing they raced */

/* What few nodes need: allocated on first use (cache_node_ext), freed with
 * the node. A node without one reads as all zero. */
struct cnode_ext {
	int64_t derived_for; /* modify_id derived_size was computed for */
	size_t derived_size; /* e.g. the length of the value's JSON view */
	uint64_t kids_seq;   /* stamp of the last child notice (see
				check_kids) */
	int64_t noticed;     /* stale: the newest version a notice named
				(INT64_MAX: a notice without one) */
};

/* One node of the tree, in one allocation with its name (a tree of a
 * million keys is two million of these: see docs/performance.md, Memory).
 * Rarely used fields are in `ext`. */
struct cnode {
	/* Its nkids children, sorted by name: read and written through
	 * cache_kids() only. capkids <= 1: no allocation, `one` is the kid
	 * when nkids == 1 (most directories hold one: Vitess's
	 * tablets/X/Tablet; a million arrays of one pointer were 32 MB from
	 * malloc). capkids > 1: `many`, an array of capkids slots. */
	union {
		struct cnode **many;
		struct cnode *one;
	} kids;
	unsigned char *data;   /* has_data: its metadata, packed, and its
				  value, in one allocation (cache.c, Values);
				  NULL otherwise */
	struct cnode_ext *ext; /* owned; NULL until needed */
	uint64_t fetched_ms;   /* directories: when last listed (0: never) */
	uint64_t stale_seq;    /* stamp of the last notice or write: a get()
				  that raced one is not taken for the newest */
	uint32_t nkids, capkids;
	bool has_data : 1;
	bool local_dir : 1;	 /* made by mkdir through this mount (etcd: in
				    memory only) */
	bool real_dir : 1;	 /* a directory in the store (ZooKeeper) */
	bool stale : 1;		 /* a notice said it changed: get() it again */
	bool pending : 1;	 /* created by -o writeback, maybe not in the
				    store yet: kept across listings */
	bool kids_unwatched : 1; /* its child watch fired: see
				    cache_notice.c, Freshness */
	char name[];		 /* NUL-terminated */
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
				  RACED_MAX notices: no replay (see
				  cache_listing.c, Concurrency) */
	uint64_t stamps;       /* the last stamp given (see next_stamp) */
	bool pending_ever;     /* some node was ever pending (-o writeback) */
	unsigned own_writes;   /* our store writes in flight (see
				  cache_notice.c, Freshness) */
	uint64_t own_write_ms; /* when the last of them ended */
	char **logged; /* invalid keys already logged, to log each once */
	size_t nlogged;
};

/* n's children as an array of nkids (see struct cnode): the node's own
 * slot while capkids <= 1, so valid only until n changes. */
static inline struct cnode **cache_kids(struct cnode *n)
{
	return n->capkids <= 1 ? &n->kids.one : n->kids.many;
}

static inline struct cnode *const *cache_kids_const(const struct cnode *n)
{
	return n->capkids <= 1 ? &n->kids.one : n->kids.many;
}

/* ---- cache.c: the tree ---- */

/* Milliseconds on the monotonic clock. No lock. */
uint64_t cache_now_ms(void);

/* A new childless node named name[0..len). NULL on ENOMEM. No lock. */
struct cnode *cache_node_new(const char *name, size_t len);
/* Free n and everything below it (NULL: nothing). mu held, or detached. */
void cache_node_free(struct cnode *n);
/* n itself (detached: nobody points to it) under a new name; n's old
 * pointer is then invalid. NULL on ENOMEM (n is left as it was). */
struct cnode *cache_node_rename(struct cnode *n, const char *name);
/* n's ext, made if missing: NULL on ENOMEM. mu held. */
struct cnode_ext *cache_node_ext(struct cnode *n);
/* The newest version a notice named for stale n (see cnode_ext): when it
 * could not be recorded (ENOMEM), unknown (INT64_MAX). mu held. */
int64_t cache_node_noticed(const struct cnode *n);
/* Give every child array below n (n included) its exact size, once a
 * listing is built. mu held, or detached. */
void cache_node_trim(struct cnode *n);
/* Whether n is a directory (see cache.c, Shape). mu held. */
bool cache_node_is_dir(const struct cache *c, const struct cnode *n);
/* Whether n's own value is shown as a file. mu held. */
bool cache_data_shown(const struct cache *c, const struct cnode *n);
/* Whether n holds nothing and may be pruned (never a stale one). mu held. */
bool cache_node_is_empty(const struct cnode *n);

/* Index of child name[0..len) in n, or where it would go. mu held. */
size_t cache_kid_index(const struct cnode *n, const char *name, size_t len,
		       bool *found);
/* Put kid into n's children at index i; -ENOMEM leaves n unchanged. mu
 * held. */
int cache_kid_insert_at(struct cnode *n, size_t i, struct cnode *kid);
/* n's child name[0..len), or NULL. mu held. */
struct cnode *cache_kid_find(const struct cnode *n, const char *name,
			     size_t len);
/* n's child name[0..len), made if missing; NULL on ENOMEM. mu held. */
struct cnode *cache_kid_get(struct cnode *n, const char *name, size_t len);
/* Unlink kid from n's children without freeing it. mu held. */
void cache_kid_remove(struct cnode *n, struct cnode *kid);

/* walk, also telling in *made where in p the first node made starts. mu
 * held. */
struct cnode *cache_walk_made(struct cnode *top, const char *p, bool create,
			      const char **made);
/* The node at store path p below top (made with create), or NULL. mu held. */
struct cnode *cache_walk(struct cnode *top, const char *p, bool create);
/* The node of p's parent directory, or NULL. mu held. */
struct cnode *cache_walk_parent(struct cache *c, const char *p);

/* Give n a copy of the value (meta->size bytes) and its metadata: 0 or
 * -ENOMEM (n is left as it was). mu held. */
int cache_node_set_value(struct cnode *n, const unsigned char *value,
			 const struct topo_meta *meta);
/* n's metadata in *m (all zero when n has no value). mu held. */
void cache_node_meta(const struct cnode *n, struct topo_meta *m);
/* n's value (m->size bytes, NULL when it has none), its metadata in *m.
 * Valid until n changes. mu held. */
const unsigned char *cache_node_value(const struct cnode *n,
				      struct topo_meta *m);
/* Drop n's value and metadata. mu held. */
void cache_node_clear_value(struct cnode *n);
/* Set fetched_ms of directory n and the directories below it. mu held. */
void cache_mark_fetched(struct cache *c, struct cnode *n, uint64_t when);
/* Remove the ancestors of path that are left empty. mu held. */
void cache_prune_empty(struct cache *c, const char *path);
/* A real directory that lost its last child may be a file again. mu held. */
void cache_lost_child(const struct cache *c, struct cnode *parent);

/* ---- cache_listing.c: listings and freshness ---- */

/* Record our own write at path against the listing in flight. mu held. */
void cache_touch(struct cache *c, const char *path, int64_t version);
/* Record a notice against the listing in flight, to replay. mu held. */
void cache_touch_notice(struct cache *c, enum topo_change what,
			const char *path, int64_t version);
/* Whether directory n's listing is still trusted. mu held. */
bool cache_is_fresh(const struct cache *c, const struct cnode *n);
/* The directory whose listing decides about path, its path written into
 * out. mu held. */
struct cnode *cache_deciding_dir(struct cache *c, const char *path, bool self,
				 char *out, size_t outlen);
/* Re-list dir from the store unless fresh now. mu NOT held; takes
 * refresh_mu, then mu, never across the store request. */
int cache_refresh(struct cache *c, const char *dir);
/* Confirm dir's children with a names-only read: 0, 1 (differ), or the
 * store's error. mu NOT held; takes refresh_mu and mu. */
int cache_check_kids(struct cache *c, const char *dir, bool force);
/* Make the answer about path current: 0 with mu held, or an error without
 * it. Called with mu NOT held. */
int cache_lock_fresh(struct cache *c, const char *path, bool self);

/* ---- cache_notice.c: notices and staleness ---- */

/* A stamp never given before, for stale_seq or kids_seq. mu held. */
uint64_t cache_next_stamp(struct cache *c);
/* Whether meta m is of an older state of n than the cached one. mu held. */
bool cache_older_than_cached(const struct cnode *n, const struct topo_meta *m);
/* get() the stale node at path (and its children with kids): 0, -EAGAIN,
 * or an error. Called and returns with mu held; drops it meanwhile. */
int cache_resolve_stale(struct cache *c, const char *path, bool kids);
/* Take one change notice into the tree (cache_notice). mu held. */
bool cache_notice_locked(struct cache *c, enum topo_change what,
			 const char *path, int64_t version, size_t *grown);

#endif
