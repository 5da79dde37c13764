/*
 * meta_util.h - drawing and comparing struct topo_meta's numbers in unit
 * tests (test_dirsnap.c, test_cache_model.c).
 */
#ifndef TOPOFS_TEST_META_UTIL_H
#define TOPOFS_TEST_META_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "topofs/backend.h"

/* 64 random bits from rand() (which gives at least 15). */
static inline uint64_t rnd_u64(void)
{
	uint64_t v = 0;
	for (int i = 0; i < 4; i++)
		v = v << 16 | (uint64_t)(rand() & 0xffff);
	return v;
}

/* Field by field (no padding compared). */
static inline bool same_meta(const struct topo_meta *a,
			     const struct topo_meta *b)
{
	return a->version == b->version && a->create_id == b->create_id &&
	       a->modify_id == b->modify_id &&
	       a->change_count == b->change_count &&
	       a->child_count == b->child_count &&
	       a->num_children == b->num_children &&
	       a->ctime_ns == b->ctime_ns && a->mtime_ns == b->mtime_ns &&
	       a->lease == b->lease && a->size == b->size &&
	       a->ephemeral == b->ephemeral && a->has_data == b->has_data &&
	       a->real_dir == b->real_dir && a->denied == b->denied;
}

#endif
