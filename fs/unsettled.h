/*
 * unsettled.h - which paths the kernel may still hold old attributes of.
 *
 * When the store changes a node, the kernel is told on the notifier threads
 * (notify.h): at once and again RENOTIFY_MS later, while a reply that
 * raced the change may keep the old attributes briefly (lowlevel.c, A reply
 * racing an invalidation). Until then an open may take the new value while
 * the kernel still answers fstat with the old value's size, and a reader
 * that reads what fstat says (tar, cp) gets a value cut or padded to
 * another one's size. An open of an unsettled path has the kernel drop the
 * node's attributes first (lowlevel.c, ll_open).
 *
 * The table is a fixed array of slots indexed by a hash of the path: paths
 * sharing a slot share its state, so a path may look unsettled when it is
 * not (an attribute request more), never the other way round. Lock-free:
 * any thread may call any function.
 */
#ifndef TOPOFS_UNSETTLED_H
#define TOPOFS_UNSETTLED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define UNSETTLED_SLOTS 512

struct unsettled_slot {
	atomic_int pending;	  /* invalidations queued, not yet written */
	_Atomic uint64_t last_ms; /* when the last one was queued or written
				     (CLOCK_MONOTONIC) */
};

struct unsettled {
	struct unsettled_slot slot[UNSETTLED_SLOTS];
	struct unsettled_slot all; /* changes of every path (INVAL_ALL) */
};

/* An empty table: every path settled. */
void unsettled_init(struct unsettled *u);

/* An invalidation of path (of every path with `all`) is queued. */
void unsettled_queued(struct unsettled *u, const char *path, bool all);

/* A queued invalidation of path (every path with `all`) is written, or
 * dropped. Pairs with unsettled_queued. */
void unsettled_written(struct unsettled *u, const char *path, bool all);

/* Whether the kernel may hold attributes of path from before its last
 * change at now_ms: an invalidation of it is still queued, or one was
 * queued or written less than linger_ms ago. */
bool unsettled_is(const struct unsettled *u, const char *path, uint64_t now_ms,
		  uint64_t linger_ms);

/* CLOCK_MONOTONIC in milliseconds, the clock of the functions above. */
uint64_t unsettled_now_ms(void);

#endif
