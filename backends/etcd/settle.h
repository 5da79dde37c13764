/*
 * settle.h - deciding whether a transaction whose outcome is unknown landed.
 * Pure functions, so the unit tests can feed them crafted states.
 */
#ifndef TOPOFS_ETCD_SETTLE_H
#define TOPOFS_ETCD_SETTLE_H

#include <stdbool.h>
#include <stddef.h>

#include "json.h"
#include "topofs/backend.h"

/* Whether every write of ops[0..n) (one txn, with the compares kv_txn.c
 * builds) is visible in now[0..n), what a read of each op's key at one
 * revision found (kind ETCD_RESP_RANGE, found, meta), values[i] its value
 * (meta.size bytes, NULL if empty): whether an attempt of that txn landed.
 * See settle.c for the rules and for what they cannot tell. */
bool etcd_txn_landed(const struct topo_op *ops, size_t n,
		     const struct etcd_txn_step *now,
		     unsigned char *const *values);

#endif
