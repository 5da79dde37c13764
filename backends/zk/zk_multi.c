/*
 * zk_multi.c - the ZooKeeper backend's multi: ops applied atomically with
 * one zoo_amulti. A multi cut off by a connection loss is settled op by
 * op (see "Writes and connection loss" in zk_write.c); the nodes it
 * creates take their parents' ACLs (see "ACLs" there).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zookeeper/zookeeper.h>

#include "topofs/log.h"
#include "zk_internal.h"
#include "zkutil.h"

/* ---- multi --------------------------------------------------------------- */

/* One multi's inputs. */
struct mu {
	struct topo_store *s;
	const struct topo_op *ops;
	size_t n;
	char **abs;	/* znode paths of ops */
	zoo_op_t *zops; /* the client's op descriptions */
	int64_t deadline;
	struct zk_acls acls; /* parents' ACLs, then those of the creates */
};

/* Whether op i creates a node. */
static bool mu_creates(const struct mu *m, size_t i)
{
	return m->ops[i].kind == TOPO_OP_PUT &&
	       m->ops[i].expect == TOPO_EXPECT_ABSENT;
}

/* Whether an op before `i` creates the node abs[0..len). */
static bool mu_created_before(const struct mu *m, size_t i, const char *abs,
			      size_t len)
{
	for (size_t j = 0; j < i; j++)
		if (mu_creates(m, j) && strlen(m->abs[j]) == len &&
		    memcmp(m->abs[j], abs, len) == 0)
			return true;
	return false;
}

/* The znode paths of the ops. */
static int mu_paths(struct mu *m)
{
	for (size_t i = 0; i < m->n; i++)
		if (!(m->abs[i] = zk_abs_path(m->s->root, m->ops[i].path)))
			return -ENOMEM;
	return 0;
}

/* The ACL of every node the multi creates: that of its parent, asked in
 * one pipelined round trip, or that of a node created by an earlier op.
 * -ENOENT if a parent neither exists nor is created before. */
static int mu_acls(struct mu *m)
{
	size_t nq = 0, *q = calloc(m->n, sizeof(*q));
	const char **qabs = calloc(m->n, sizeof(*qabs));
	int rc = q && qabs ? 0 : -ENOMEM;
	for (size_t i = 0; !rc && i < m->n; i++) {
		size_t plen = zk_parent_len(m->abs[i]);
		if (!mu_creates(m, i) ||
		    mu_created_before(m, i, m->abs[i], plen))
			continue;
		bool dup = false; /* asked for an earlier op already */
		for (size_t j = 0; j < nq && !dup; j++)
			dup = q[j] == plen &&
			      memcmp(qabs[j], m->abs[i], plen) == 0;
		if (!dup) {
			qabs[nq] = m->abs[i];
			q[nq++] = plen;
		}
	}
	if (!rc && nq)
		rc = zk_acls_fetch(m->s, qabs, q, nq, &m->acls, m->deadline);
	for (size_t i = 0; !rc && i < m->n; i++) {
		if (!mu_creates(m, i))
			continue;
		size_t plen = zk_parent_len(m->abs[i]);
		const struct ACL_vector *a =
		    zk_acls_find(&m->acls, m->abs[i], plen);
		rc = a ? zk_acls_add(&m->acls, m->abs[i], strlen(m->abs[i]), a)
		       : -ENOENT;
	}
	free(q);
	free(qabs);
	return rc;
}

/* Describe op i to the client; adds its request bytes to *total. */
static int mu_build_one(struct mu *m, size_t i, size_t *total)
{
	const struct topo_op *op = &m->ops[i];
	const char *abs = m->abs[i];
	if (op->expect < TOPO_EXPECT_ABSENT)
		return -EINVAL;
	if (op->expect > INT32_MAX)
		return -ESTALE;
	int v = op->expect == TOPO_EXPECT_ANY ? -1 : (int)op->expect;
	*total += strlen(abs) + ZK_OP_OVERHEAD;
	if (op->kind == TOPO_OP_DELETE) {
		if (op->expect == TOPO_EXPECT_ABSENT)
			return -EINVAL;
		zoo_delete_op_init(&m->zops[i], abs, v);
		return 0;
	}
	if (op->len > ZK_MAX_VALUE)
		return -EFBIG;
	*total += op->len;
	const char *val = op->len ? op->value : "";
	if (op->expect == TOPO_EXPECT_ABSENT) {
		const struct ACL_vector *acl =
		    zk_acls_find(&m->acls, abs, strlen(abs));
		*total += zk_acl_bytes(acl);
		zoo_create_op_init(&m->zops[i], abs, val, (int)op->len, acl,
				   ZOO_PERSISTENT, NULL, 0);
	} else
		zoo_set_op_init(&m->zops[i], abs, val, (int)op->len, v, NULL);
	return 0;
}

/* Describe every op; -EFBIG if the whole request is over the limit. */
static int mu_build(struct mu *m)
{
	size_t total = ZK_OP_OVERHEAD;
	int rc = mu_paths(m);
	for (size_t i = 0; !rc && i < m->n; i++) /* before asking ACLs */
		if (m->ops[i].expect < TOPO_EXPECT_ABSENT ||
		    (m->ops[i].kind == TOPO_OP_DELETE &&
		     m->ops[i].expect == TOPO_EXPECT_ABSENT))
			rc = -EINVAL;
	if (!rc)
		rc = mu_acls(m);
	if (rc)
		return rc;
	for (size_t i = 0; !rc && i < m->n; i++)
		rc = mu_build_one(m, i, &total);
	if (rc)
		return rc;
	return total > ZK_PACKET_MAX ? -EFBIG : 0;
}

/* Send the multi once: 0 with *out answered, or errno. */
static int mu_send(const struct mu *m, struct zreq **out)
{
	struct zreq *r = zk_req_new(ZR_MULTI, m->abs[0]);
	if (!r)
		return -ENOMEM;
	r->nops = (int)m->n;
	r->in_ops = m->zops;
	r->results = calloc(m->n, sizeof(*r->results));
	if (!r->results) {
		zk_req_free(r);
		return -ENOMEM;
	}
	int rc = zk_call(m->s, r, m->deadline, "multi");
	if (rc == 0)
		*out = r;
	return rc;
}

/* The errno of a multi's answer: that of the first op that failed. */
static int mu_result(const struct mu *m, struct zreq *r)
{
	int rc = 0;
	for (size_t i = 0; r->rc != ZOK && i < m->n && !rc; i++) {
		int err = r->results[i].err;
		if (err != ZOK && err != ZRUNTIMEINCONSISTENCY)
			rc = zk_errno(err, "multi", m->abs[i]);
	}
	if (!rc && r->rc != ZOK)
		rc = zk_errno(r->rc, "multi", m->abs[0]);
	zk_req_free(r);
	return rc;
}

/* Whether op i's effect is visible: 1, 0, or a negative errno. */
static int mu_visible(const struct mu *m, size_t i)
{
	const struct topo_op *op = &m->ops[i];
	struct zreq *g;
	int rc = zk_read_node(m->s, m->abs[i], m->deadline, &g);
	if (op->kind == TOPO_OP_DELETE)
		return rc == -ENOENT ? 1 : rc == 0 ? (zk_req_free(g), 0) : rc;
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	rc = zk_same_value(g, op->value, op->len);
	zk_req_free(g);
	return rc;
}

/* A multi was cut off by a connection loss: if every effect is visible it
 * landed; otherwise send it once more (its version checks keep a multi
 * that did land from applying twice). */
static int mu_settle(const struct mu *m)
{
	topo_debug("zk: multi %s: connection lost, checking", m->abs[0]);
	for (size_t i = 0; i < m->n; i++) {
		int v = mu_visible(m, i);
		if (v < 0)
			return v;
		if (v == 0) {
			struct zreq *r;
			int rc = mu_send(m, &r);
			return rc ? rc : mu_result(m, r);
		}
	}
	return 0;
}

/* Apply ops atomically with one zoo_amulti. */
static int mu_run(struct mu *m)
{
	int rc = mu_build(m);
	if (rc)
		return rc;
	struct zreq *r;
	rc = mu_send(m, &r);
	if (rc)
		return rc;
	if (!zk_conn_lost(r->rc))
		return mu_result(m, r);
	zk_req_free(r);
	return mu_settle(m);
}

/* A multi applied op: its node's new data version, where it follows from
 * the op (a create starts at 0; a set with a version check adds 1). */
static void mu_tell_version(const struct topo_op *op)
{
	if (op->kind != TOPO_OP_PUT || !op->version_out)
		return;
	if (op->expect == TOPO_EXPECT_ABSENT)
		*op->version_out = 0;
	else if (op->expect >= 0)
		*op->version_out = op->expect + 1;
}

/* zk_multi of ops[0..n) without its guards (there are some). Guards are
 * ignored (no TOPO_CAP_GUARD): ZooKeeper has no revision of a listing to
 * check them against, and deleting a znode that has children fails the
 * multi anyway. */
static int multi_unguarded(struct topo_store *s, const struct topo_op *ops,
			   size_t n)
{
	struct topo_op *kept = calloc(n, sizeof(*kept));
	size_t k = 0;
	if (!kept)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (ops[i].kind != TOPO_OP_GUARD)
			kept[k++] = ops[i];
	int rc = zk_multi(s, kept, k);
	free(kept);
	return rc;
}

/* All of ops[0..n) atomically or none: PUT with TOPO_EXPECT_ABSENT creates
 * (the parent must exist), PUT with a version or TOPO_EXPECT_ANY sets an
 * existing node, DELETE deletes with a version or any. */
int zk_multi(struct topo_store *s, const struct topo_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ops[i].kind == TOPO_OP_GUARD)
			return multi_unguarded(s, ops, n);
	if (n == 0)
		return 0;
	if (n > ZK_MAX_OPS)
		return -E2BIG;
	struct mu m = {
	    .s = s,
	    .ops = ops,
	    .n = n,
	    .abs = calloc(n, sizeof(char *)),
	    .zops = calloc(n, sizeof(zoo_op_t)),
	    .deadline = zk_deadline_of(s),
	};
	int rc = m.abs && m.zops ? mu_run(&m) : -ENOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++)
		mu_tell_version(&ops[i]);
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (mu_creates(&m, i))
			zk_watch_created(s, m.abs[i]); /* as after a create */
	for (size_t i = 0; m.abs && i < n; i++)
		free(m.abs[i]);
	free(m.abs);
	free(m.zops);
	zk_acls_free(&m.acls);
	return rc;
}
