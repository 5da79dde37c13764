/*
 * kv.h - the pure part of the etcd backend's writes (kv_txn.c) that the
 * unit tests check: the JSON of a transaction.
 */
#ifndef TOPOFS_ETCD_KV_H
#define TOPOFS_ETCD_KV_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "topofs/backend.h"

/* Build the /v3/kv/txn request for ops[0..n) on the etcd keys keys[0..n)
 * (ops[i].path's key): the compares (a put of ANY: none; ABSENT: version
 * == 0; a version v: mod_revision == v, and the key must exist for a
 * delete; a guard: two, see kv_txn.c), the writes on success, one
 * keys-only range per op on failure; with `readback` a range of keys[0]
 * follows the writes. 0 and *out (the caller's), -EINVAL, -E2BIG (over
 * etcd's --max-txn-ops compares) or -ENOMEM. */
int etcd_build_txn(const struct topo_op *ops, char *const *keys, size_t n,
		   bool readback, json_t **out);

#endif
