/*
 * settle.c - see settle.h.
 *
 * Why a write needs settling: a txn sent to a member that dies, or answered
 * "try again" (a leader election, a timeout), may or may not have been
 * applied. http.c sends it again (to another member) and says the outcome
 * of the first attempt is unknown. Sending it again is safe because every
 * write topofs makes is compare-and-set (mod_revision == expected, or
 * version == 0 for a create, or the key exists for a delete): the second
 * attempt can never overwrite a newer write of someone else. But when the
 * first attempt DID land, the second one's compares fail and would report a
 * conflict for a write that succeeded. So kv_txn.c then reads every key back
 * and asks etcd_txn_landed():
 *
 *   put with a version v   the key holds our value, its mod_revision is
 *                          past v and its create_revision not (the key we
 *                          compared against, not a new one made since);
 *   create (absent)        the key holds our value, created by the write
 *                          that holds it (create_revision == mod_revision);
 *   put of any version     the key holds our value;
 *   delete                 the key is absent;
 *   guard                  nothing (it writes nothing);
 *   every put              the same mod_revision: one txn, one revision.
 *
 * Landed: success, with the key's metadata as read. Not landed: the
 * conflict the read shows, as for any failed compare. The rules never call
 * a visibly missing write a success. What they cannot tell: another client
 * writing the very same bytes (or deleting the same key) in between counts
 * as ours -- the store holds what the caller wrote either way; and our
 * write overwritten by another client since counts as a conflict (an
 * error, never a false success).
 */
#include <string.h>

#include "settle.h"

/* Whether a put of op is visible in what a read of its key found. */
static bool put_visible(const struct topo_op *op,
			const struct etcd_txn_step *st,
			const unsigned char *value)
{
	const struct topo_meta *m = &st->meta;

	if (!st->found || m->size != op->len)
		return false;
	if (op->len > 0 && (!value || memcmp(value, op->value, op->len) != 0))
		return false;
	if (op->expect == TOPO_EXPECT_ABSENT)
		return m->create_id == m->version;
	if (op->expect >= 0)
		return m->version > op->expect && m->create_id <= op->expect;
	return op->expect == TOPO_EXPECT_ANY;
}

/* Whether a txn landed; see settle.h and above. */
bool etcd_txn_landed(const struct topo_op *ops, size_t n,
		     const struct etcd_txn_step *now,
		     unsigned char *const *values)
{
	int64_t rev = 0;
	bool writes = false;

	for (size_t i = 0; i < n; i++) {
		if (now[i].kind != ETCD_RESP_RANGE)
			return false;
		if (ops[i].kind == TOPO_OP_GUARD)
			continue; /* writes nothing: nothing to see */
		writes = true;
		if (ops[i].kind == TOPO_OP_DELETE) {
			if (now[i].found)
				return false;
			continue;
		}
		if (!put_visible(&ops[i], &now[i], values[i]))
			return false;
		if (rev != 0 && now[i].meta.version != rev)
			return false;
		rev = now[i].meta.version;
	}
	return writes; /* a txn of guards alone shows no trace */
}
