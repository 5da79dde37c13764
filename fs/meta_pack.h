/*
 * meta_pack.h - a node's metadata (struct topo_meta) packed into a few
 * bytes, for what is held per node or per name in memory: the cache's node
 * values (cache.c) and an open directory's snapshot (dirsnap.c).
 *
 * The ten integers are zigzag varints (a small negative number is short
 * too), some as differences that are mostly 0 or small (etcd: modify_id is
 * the version; ZooKeeper: change_count is the version, mtime near ctime),
 * then one byte of flags: some 10 to 40 bytes instead of struct
 * topo_meta's 88. Every value round-trips exactly (the differences wrap).
 *
 * The decoders trust their input: they read only what these encoders
 * wrote, in memory of ours, and check no bounds.
 */
#ifndef TOPOFS_META_PACK_H
#define TOPOFS_META_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "topofs/backend.h"

/* Room for any packed metadata (with one byte to spare for a length). */
#define META_PACKED_MAX (1 + 10 * 10 + 1)
/* Room for any one varint. */
#define META_VARINT_MAX 10

/* Pack meta into out (META_PACKED_MAX bytes): its length. The zero meta
 * packs as 11 zero bytes, and only it does. */
size_t meta_pack(const struct topo_meta *m, unsigned char *out);

/* Unpack meta from p; returns the end of it. */
const unsigned char *meta_unpack(const unsigned char *p, struct topo_meta *m);

/* v (as a signed value, zigzag) into p (META_VARINT_MAX bytes): the number
 * of bytes written. */
size_t meta_put_varint(unsigned char *p, uint64_t v);

/* The varint at *p, which moves past it. */
uint64_t meta_get_varint(const unsigned char **p);

#endif
