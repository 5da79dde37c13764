/*
 * writeback.h - -o writeback: creates applied later, in batches.
 *
 * A restore (`tar -x`, `cp -a`) creates thousands of keys; one store round
 * trip each makes it slower than a sequential client. With -o writeback the
 * creation of a new file (its first commit) and, on stores with real
 * directories, mkdir are recorded in the cache at once (the mount shows
 * them) and queued; one thread of ours applies the queue in order, as
 * multi() transactions of many creates each.
 *
 * What is given up: a create that the store refuses (another client made
 * the key meanwhile, a permission, the store down) is known only later. It
 * is logged, dropped from the cache, and reported by the next fsync (of any
 * file or directory of the mount) and by topofs's exit status at unmount.
 * A write of a key whose create is queued (writeback_queued), an rmdir and
 * a rename first wait for the queue (writeback_wait), so the store sees
 * each key's operations in the order they were made.
 */
#ifndef TOPOFS_WRITEBACK_H
#define TOPOFS_WRITEBACK_H

#include <stdbool.h>
#include <stddef.h>

#include "cache.h"
#include "topofs/backend.h"

struct writeback;

/* Called on the queue's thread for each path written (its cached metadata
 * is then marked stale): tell the kernel. */
typedef void (*writeback_applied_fn)(void *arg, const char *path);

/* Start the queue's thread. NULL on failure. */
struct writeback *writeback_start(const struct topo_backend *be,
				  struct topo_store *st, struct cache *cache,
				  writeback_applied_fn applied, void *arg);

/* Queue the creation of `path` with value[0..len) (copied), or of an empty
 * directory node (is_dir). Waits while the queue is full. 0 or -ENOMEM. */
int writeback_create(struct writeback *w, const char *path, const void *value,
		     size_t len, bool is_dir);

/* Wait until everything queued before the call is applied. NULL is ok. */
void writeback_wait(struct writeback *w);

/* Whether a create of `path` is queued or being applied. NULL is ok. */
bool writeback_queued(struct writeback *w, const char *path);

/* writeback_wait if a create of `path` is queued (before another write of
 * that key). NULL is ok. */
void writeback_wait_for(struct writeback *w, const char *path);

/* writeback_wait, then report: -EIO if a queued create failed since the
 * last report, else 0. NULL is ok. */
int writeback_sync(struct writeback *w);

/* Apply what is queued, stop the thread and free everything. Returns how
 * many creates failed over the queue's life. NULL is ok. */
size_t writeback_stop(struct writeback *w);

#endif
