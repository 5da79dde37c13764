/*
 * cache.h - the tree as last seen from the store.
 *
 * The cache owns the tree that the filesystem serves: every node's kind,
 * metadata and value, filled by bulk listings of whole subtrees (one backend
 * list() per directory visit, not one request per file) and corrected by the
 * filesystem's own writes. A directory's listing is trusted for `ttl_ms`
 * after it was fetched; then the next access re-lists it.
 *
 * Directories made with mkdir on a store without real directories (etcd) live
 * only here, marked `local`, until a file is written below them.
 */
#ifndef TOPOFS_CACHE_H
#define TOPOFS_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "topofs/backend.h"

struct cache;

/* What the filesystem needs to know to stat a node. */
struct cache_stat {
	bool is_dir;
	bool has_data;	       /* the node holds a value (ZooKeeper: always) */
	bool data_shown;       /* ... and it is a file: the node itself, or
				  for a directory its .topofs-data */
	struct topo_meta meta; /* the value's metadata, when has_data */
	bool local_dir;	       /* made by mkdir through this mount */
	bool real_dir;	       /* a directory node in the store (ZooKeeper) */
	size_t subdirs;	       /* directories: child directories */
	int64_t newest;	       /* directories: newest child version */
};

/* A new empty cache over an open store. NULL on ENOMEM. */
struct cache *cache_new(const struct topo_backend *be, struct topo_store *st,
			unsigned ttl_ms);
void cache_free(struct cache *c);

/* Stat a store path, re-listing from the store if stale.
 * 0, -ENOENT, or the backend's error. */
int cache_stat(struct cache *c, const char *path, struct cache_stat *out);

/* cache_stat without `subdirs` and `newest` (left 0): O(1) in the number
 * of children, for the checks of writes (a create in a directory of 50,000
 * must not walk its siblings). */
int cache_stat_brief(struct cache *c, const char *path, struct cache_stat *out);

/* A copy of a node's value in *buf (malloc'd, caller frees; NULL for an
 * empty value) and its metadata. -ENOENT if the node has no value. */
int cache_value(struct cache *c, const char *path, unsigned char **buf,
		struct topo_meta *meta);

/* Call fn for every child of directory `path` in name order (with the cache
 * locked: fn must not call back into the cache). Returns 0, -ENOENT,
 * -ENOTDIR, the backend's error, or the first non-zero return of fn. */
typedef int (*cache_dir_fn)(void *arg, const char *name,
			    const struct cache_stat *st);
int cache_list_dir(struct cache *c, const char *path, cache_dir_fn fn,
		   void *arg);

/* A fresh copy of every stored node at or below `path` (values included),
 * in a listing the caller frees; *local_dirs tells whether in-memory
 * directories are among them. */
int cache_subtree(struct cache *c, const char *path, struct topo_listing *out,
		  bool *local_dirs);

/* A size derived from a node's value (the length of its JSON view),
 * remembered with the node for the value with that modify_id: true and
 * *size if known. The set is ignored unless the node still holds that
 * value. */
bool cache_derived_size(struct cache *c, const char *path, int64_t modify_id,
			size_t *size);
void cache_set_derived_size(struct cache *c, const char *path,
			    int64_t modify_id, size_t size);

/* One of our store writes (any put, delete, multi or mkdir) is in flight
 * between these: a ZooKeeper child notice that comes meanwhile may be its
 * own, and the listing it names is checked later (cache_notice.c,
 * Freshness). */
void cache_write_begin(struct cache *c);
void cache_write_end(struct cache *c);

/* Record our own successful store write of `path`. */
void cache_note_put(struct cache *c, const char *path, const void *value,
		    size_t len, const struct topo_meta *meta);

/* Record our own successful delete of `path`'s value. With keep_parent, a
 * parent directory left empty stays as an in-memory directory (so that
 * `rm dir/file; rmdir dir` works on etcd). */
void cache_note_delete(struct cache *c, const char *path, bool keep_parent);

/* Add a directory: in memory only (real=false), or one the store made
 * (real=true). -EEXIST, -ENOENT (no parent), -ENOTDIR. */
int cache_mkdir(struct cache *c, const char *path, bool real);

/* cache_mkdir(c, path, true) of a directory whose node the store's answer
 * described (`meta`, with its times: shown at once); NULL: unknown. */
int cache_mkdir_stored(struct cache *c, const char *path,
		       const struct topo_meta *meta);

/* Remove an empty directory node. -ENOENT, -ENOTEMPTY, -ENOTDIR. */
int cache_rmdir(struct cache *c, const char *path);

/* A directory rename about to be sent to the store: move the cached
 * subtree at `from`, in-memory directories included, to `to`. The values
 * keep their old versions until the store's notices or a re-listing
 * replace them. */
void cache_move_subtree(struct cache *c, const char *from, const char *to);

/* Change notices from the store's watch (topo_backend.watch). */

/* From now on listings stay fresh until a notice says otherwise. */
void cache_watch_started(struct cache *c);

/* Apply one notice: mark the listing that shows `path` stale. Returns false
 * when it reports our own write, already recorded (nothing changed). */
bool cache_changed(struct cache *c, enum topo_change what, const char *path,
		   int64_t version);

/* cache_changed, which also says in *grown which listing gained a name:
 * the length of the directory (a prefix of path) above the topmost node
 * the notice made the cache record, or CACHE_NOT_GROWN. A key created
 * below directories that are new too changes the listing of the first
 * directory that is not: the kernel must hear of that one. */
#define CACHE_NOT_GROWN ((size_t)-1)
bool cache_notice(struct cache *c, enum topo_change what, const char *path,
		  int64_t version, size_t *grown);

/* After a TOPO_CHANGE_CHILDREN notice for directory `path`: confirm its
 * children with the store (setting its child watch again) and re-list it
 * if they differ. 1 when it was re-listed or is a file now (it has none
 * left), 0 when nothing changed or there was nothing to check, or the
 * store's error. */
int cache_recheck(struct cache *c, const char *path);

/* Call fn(arg, path) for every node the cache holds (with the cache
 * locked: fn must not call back into the cache). */
void cache_for_each_path(struct cache *c, void (*fn)(void *, const char *),
			 void *arg);

/* Whether directory `path`'s listing stays as the cache holds it until a
 * change notice says otherwise: with the store's watch, except while a
 * ZooKeeper child watch that fired is not set again (see cache_notice.c,
 * Freshness; the listing is then trusted for ttl_ms only). */
bool cache_listing_watched(struct cache *c, const char *path);

/* Whether the cache holds `path` as a directory now, as the last listings
 * and notices left it (no store request; false for a node a notice made
 * uncertain). */
bool cache_knows_dir(struct cache *c, const char *path);

/* Whether the directory at `path` (known to the cache) holds anything but
 * ephemeral nodes, at any depth: on a store without real directories a
 * directory exists only through the keys shown, so -o noephemeral hides
 * one that holds only leased keys (SPEC 2). True for the root and for a
 * node the cache lacks. */
bool cache_dir_persistent(struct cache *c, const char *path);

/* The node at `path` changed in the store in a way the cache does not know
 * exactly (its metadata): the next access re-reads it with one get(). */
void cache_mark_stale(struct cache *c, const char *path);

/* Mark the node at `path` as created by -o writeback and maybe not in the
 * store yet (kept across listings), or no longer. cache_mark_stale also
 * ends it. */
void cache_set_pending(struct cache *c, const char *path, bool pending);

/* Forget what is known at and below `path`: the next access re-lists it. */
void cache_invalidate(struct cache *c, const char *path);

#endif
