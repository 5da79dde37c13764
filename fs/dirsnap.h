/*
 * dirsnap.h - an open directory's snapshot of its entries, packed.
 *
 * readdir takes the entries of a directory once, at offset 0, and serves
 * the listing from them in as many requests as the kernel makes (see
 * op_readdir). A directory of 512,000 names (Vitess's tablets/) held as an
 * array of struct cache_stat with a strdup'ed name each took 171 bytes a
 * name, 88 MB while `tar` had it open; packed, 27 to 51 bytes (names of 16
 * bytes; the measurements are in tests/unit/test_dirsnap.c).
 *
 * Layout: one byte arena, entry after entry, each
 *   flags byte    the cache_stat's bools, from_memory, and whether the
 *                 next two parts are there (a file has no counts; an
 *                 entry made in memory and an etcd directory have no
 *                 metadata)
 *   [metadata]    meta_pack() (meta_pack.h)
 *   [counts]      subdirs, newest: varints
 *   name          NUL-terminated
 * and an array of uint32_t, the offset of entry i in the arena, so that a
 * listing resumes at any entry. uint32_t rather than size_t: 4 bytes a
 * name less (of those 27 to 51), and 4 GiB of arena is over ten million
 * names of the longest kind (255 bytes) and a hundred million of the usual
 * kind; an add that would not fit fails with -ENOMEM, as running out of
 * memory would.
 *
 * Not locked, as the array it replaced was not: the kernel sends the
 * READDIRs of one open directory one at a time (fuse_readdir holds the
 * open file's readdir lock).
 */
#ifndef TOPOFS_DIRSNAP_H
#define TOPOFS_DIRSNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"

/* The arena may not grow past this (the offsets are uint32_t). */
#define DIRSNAP_ARENA_MAX ((size_t)UINT32_MAX)

/* A snapshot; all zero is an empty one. */
struct dirsnap {
	unsigned char *arena; /* owned: the entries, packed */
	size_t used, cap;     /* bytes of arena in use, allocated */
	uint32_t *at;	      /* owned: the offset of entry i in arena */
	size_t count, slots;  /* entries, slots allocated in at */
};

/* One entry, decoded. */
struct dirsnap_entry {
	const char *name; /* borrowed from the snapshot: valid until it is
			     added to, trimmed or cleared */
	struct cache_stat cs;
	bool from_memory; /* scratch or not yet committed: stat it by path */
};

/* Append an entry: name, its stat (NULL: all zero) and from_memory.
 * 0 or -ENOMEM (the snapshot is unchanged then). */
int dirsnap_add(struct dirsnap *s, const char *name,
		const struct cache_stat *cs, bool from_memory);

/* Entry i into *e: 0, or -ERANGE if there is no entry i. */
int dirsnap_get(const struct dirsnap *s, size_t i, struct dirsnap_entry *e);

/* Give back the room allocated beyond what is in use (once the snapshot
 * is complete: growing doubles). */
void dirsnap_trim(struct dirsnap *s);

/* The bytes allocated for s (arena and offsets). */
size_t dirsnap_bytes(const struct dirsnap *s);

/* Free everything; s is an empty snapshot again. */
void dirsnap_clear(struct dirsnap *s);

#endif
