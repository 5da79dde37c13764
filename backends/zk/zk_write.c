/*
 * zk_write.c - the ZooKeeper backend's writes: put, put_same, del, mkdir,
 * the missing parents (and, with -o create_root, the root) they create
 * with their parents' ACLs, and settling each after a lost connection.
 *
 * Writes and connection loss
 *
 *   A request cut by a connection loss may or may not have been applied.
 *   Reads are simply sent again. A write is settled by re-reading the node:
 *   a set or create whose value (and, for a set, version v+1) is there has
 *   succeeded; one that is visibly not applied is sent once more; anything
 *   else is a conflict. A multi is settled the same way, op by op. A delete
 *   goes right behind an exists of its node on the same session (no extra
 *   round trip): if the delete's answer is lost and the node is gone, the
 *   delete succeeded only if the exists found the node (or, without its
 *   answer either, if the caller named the version it saw); a node that was
 *   not there gives -ENOENT, an unknown past -EIO. Left ambiguous: another
 *   client deleting the node between our exists and our delete is taken
 *   for our success (the node is gone either way).
 *
 *   A znode deleted and created again restarts its data version at 0, so
 *   a set with the version a writer read may fit the new znode. put_same
 *   (a file's commit) names the czxid the writer read: an exists just
 *   before the set checks it (no request compares a czxid), and the set's
 *   answer, the stat of the znode written, shows a re-creation that
 *   slipped in between -- too late to keep the other client's value, but
 *   reported (-ESTALE, logged), never taken for our success.
 *
 * ACLs
 *
 *   A znode we create (a put's missing parents, a create, mkdir, a multi's
 *   creates, the root with -o create_root) takes the ACL of its parent,
 *   asked with zoo_aget_acl once per parent per operation (struct zk_acls),
 *   pipelined for a chain of parents, so a protected tree stays protected.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zookeeper/zookeeper.h>

#include "topofs/log.h"
#include "zk_internal.h"
#include "zkutil.h"

/* ---- writes -------------------------------------------------------------- */

/* One write's inputs. */
struct wr {
	struct topo_store *s;
	const char *abs;
	const void *value;
	size_t len;
	int version;   /* set/delete: expected version, -1 for any */
	int64_t czxid; /* set: the znode read, by its czxid (0: any) */
	int64_t deadline;
	struct topo_meta *meta; /* may be NULL */
	bool parents;		/* create: make missing ancestors first */
	struct zk_acls *acls;	/* creates: ACLs learnt during the call */
};

/* Send a create/set/delete of w once: 0 with *out answered, or errno. */
static int wr_send(const struct wr *w, enum zreq_kind kind,
		   const struct ACL_vector *acl, struct zreq **out)
{
	struct zreq *r = zk_req_new(kind, w->abs);
	if (!r)
		return -ENOMEM;
	r->in_acl = acl;
	r->in_value = w->len ? w->value : "";
	r->in_len = (int)w->len;
	r->in_version = w->version;
	const char *what = kind == ZR_CREATE ? "create"
			   : kind == ZR_SET  ? "set"
					     : "delete";
	int rc = zk_call(w->s, r, w->deadline, what);
	if (rc == 0)
		*out = r;
	return rc;
}

/* Finish a write from its answer: meta on success, the errno otherwise. */
static int wr_finish(const struct wr *w, struct zreq *r, const char *what)
{
	int rc = zk_errno(r->rc, what, w->abs);
	if (rc == 0 && w->meta)
		zk_meta_of(&r->stat, w->meta);
	if (rc == 0 && w->meta)
		w->meta->size = w->len;
	zk_req_free(r);
	return rc;
}

/* Ask the ACLs of abs[i][0..lens[i]) for i < n, pipelined, and remember
 * in `acls` those of the nodes that exist (a missing one is left out). */
int zk_acls_fetch(struct topo_store *s, const char *const *abs,
		  const size_t *lens, size_t n, struct zk_acls *acls,
		  int64_t deadline)
{
	struct zreq **rs = calloc(n ? n : 1, sizeof(*rs));
	int rc = rs ? 0 : -ENOMEM;
	for (size_t i = 0; !rc && i < n; i++) {
		char *p = strndup(abs[i], lens[i]);
		rs[i] = p ? zk_req_new(ZR_ACL, p) : NULL;
		free(p);
		rc = rs[i] ? 0 : -ENOMEM;
	}
	if (rc) {
		for (size_t i = 0; rs && i < n; i++)
			zk_req_free(rs[i]);
		free(rs);
		return rc;
	}
	rc = zk_call_all(s, rs, n, deadline, "get ACL of");
	if (rc) {
		free(rs); /* the requests are consumed */
		return rc;
	}
	bool lost = false;
	for (size_t i = 0; i < n; i++) {
		struct zreq *r = rs[i];
		if (rc)
			;
		else if (r->rc == ZOK)
			rc = zk_acls_add(acls, abs[i], lens[i], &r->acl);
		else if (zk_conn_lost(r->rc))
			lost = true;
		else if (r->rc != ZNONODE)
			rc = zk_errno(r->rc, "get ACL of", r->path);
		zk_req_free(r);
	}
	free(rs);
	if (!rc && lost && zk_now_ms() + 20 < deadline) {
		usleep(20000); /* let the session notice, then ask again */
		return zk_acls_fetch(s, abs, lens, n, acls, deadline);
	}
	if (!rc && lost)
		rc = zk_errno(ZCONNECTIONLOSS, "get ACL of", abs[0]);
	return rc;
}

/* The ACL a new znode at `abs` takes: its parent's, asked once per call
 * (the pointer is valid until the next zk_acls_add). -ENOENT if the
 * parent does not exist. */
static int parent_acl(struct topo_store *s, const char *abs,
		      struct zk_acls *acls, int64_t deadline,
		      const struct ACL_vector **out)
{
	size_t plen = zk_parent_len(abs);
	if (!zk_acls_find(acls, abs, plen)) {
		int rc = zk_acls_fetch(s, &abs, &plen, 1, acls, deadline);
		if (rc)
			return rc;
	}
	*out = zk_acls_find(acls, abs, plen);
	return *out ? 0 : -ENOENT;
}

/* Create (empty data) the znodes abs[0..lens[i]), i < n, each the parent
 * of the next, and the parent of the first existing: one pipelined round
 * trip for their ACLs, one for the creates (a session applies its
 * requests in order). A node that is missing takes the ACL of its parent
 * (for a chain of missing ones: that of the deepest existing ancestor);
 * one that exists is left as it is. */
static int make_chain(struct topo_store *s, const char *abs, const size_t *lens,
		      size_t n, struct zk_acls *acls, int64_t deadline)
{
	if (n == 0)
		return 0;
	char *top = strndup(abs, lens[0]);
	if (!top)
		return -ENOMEM;
	size_t q[129], nq = 0, plen = zk_parent_len(top);
	const char *qabs[129];
	free(top);
	if (!zk_acls_find(acls, abs, plen))
		q[nq++] = plen;
	for (size_t i = 0; i < n && i < 128; i++)
		if (!zk_acls_find(acls, abs, lens[i]))
			q[nq++] = lens[i];
	for (size_t i = 0; i < nq; i++)
		qabs[i] = abs;
	int rc = nq ? zk_acls_fetch(s, qabs, q, nq, acls, deadline) : 0;
	if (!rc && !zk_acls_find(acls, abs, plen))
		rc = -ENOENT; /* the first one's parent is missing */
	for (size_t i = 0; !rc && i < n; i++) {
		size_t up = i ? lens[i - 1] : plen;
		if (!zk_acls_find(acls, abs, lens[i]))
			rc = zk_acls_add(acls, abs, lens[i],
					 zk_acls_find(acls, abs, up));
	}
	struct zreq **rs = rc ? NULL : calloc(n, sizeof(*rs));
	if (!rc && !rs)
		rc = -ENOMEM;
	for (size_t i = 0; !rc && i < n; i++) {
		char *p = strndup(abs, lens[i]);
		rs[i] = p ? zk_req_new(ZR_CREATE, p) : NULL;
		free(p);
		if (!rs[i]) {
			for (size_t j = 0; j < i; j++)
				zk_req_free(rs[j]);
			rc = -ENOMEM;
			break;
		}
		rs[i]->in_value = "";
		rs[i]->in_acl = zk_acls_find(acls, abs, lens[i]);
	}
	if (!rc)
		rc = zk_call_all(s, rs, n, deadline, "create parent");
	if (rc) {
		free(rs); /* the requests are consumed */
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		struct zreq *r = rs[i];
		if (!rc && r->rc != ZOK && r->rc != ZNODEEXISTS)
			rc = zk_errno(r->rc, "create parent", r->path);
		zk_req_free(r);
	}
	free(rs);
	return rc;
}

/* Create the missing ancestors of w->abs below the root. Never creates
 * the root itself: a missing root gives -ENOENT. */
static int make_parents(const struct wr *w)
{
	size_t lens[128], n = zk_ancestors(w->s->root, w->abs, lens, 128);
	if (n > 128)
		return -ENAMETOOLONG;
	return make_chain(w->s, w->abs, lens, n, w->acls, w->deadline);
}

/* Create the root and its missing ancestors (empty data). */
int zk_create_root(struct topo_store *s, int64_t deadline)
{
	size_t lens[129], n = zk_ancestors("", s->root, lens, 128);
	if (n > 128)
		return -ENAMETOOLONG;
	lens[n++] = strlen(s->root);
	struct zk_acls acls = {0};
	int rc = make_chain(s, s->root, lens, n, &acls, deadline);
	zk_acls_free(&acls);
	if (!rc)
		topo_info("zk: created root %s", s->root);
	return rc;
}

/* Finish a write sent a second time after a connection loss: a second loss
 * right after a successful re-read means the server refuses the request,
 * which it does (by closing the connection) for one over jute.maxbuffer. */
static int wr_finish_retry(const struct wr *w, struct zreq *r, const char *what)
{
	if (zk_conn_lost(r->rc) && w->len > 65536) {
		topo_err(
		    "zk: %s %s: the server dropped the connection twice on "
		    "a %zu-byte value: too large for it",
		    what, w->abs, w->len);
		zk_req_free(r);
		return -EFBIG;
	}
	return wr_finish(w, r, what);
}

static int do_create(const struct wr *w, bool settle);

/* A create was cut off by a connection loss: did it land? It did if the
 * node holds our value; it did not if the node is absent: send it again. */
static int create_settle(const struct wr *w)
{
	struct zreq *g;
	topo_debug("zk: create %s: connection lost, checking", w->abs);
	int rc = zk_read_node(w->s, w->abs, w->deadline, &g);
	if (rc == -ENOENT)
		return do_create(w, false);
	if (rc)
		return rc;
	rc = zk_same_value(g, w->value, w->len) ? 0 : -EEXIST;
	if (rc == 0 && w->meta)
		zk_meta_of(&g->stat, w->meta);
	zk_req_free(g);
	return rc;
}

/* Create w's node (and its missing ancestors if w->parents); settle a
 * connection loss if `settle`, else report it (second attempt). */
static int do_create(const struct wr *w, bool settle)
{
	const struct ACL_vector *acl;
	int rc = parent_acl(w->s, w->abs, w->acls, w->deadline, &acl);
	if (rc == -ENOENT && w->parents) {
		rc = make_parents(w);
		if (!rc)
			rc = parent_acl(w->s, w->abs, w->acls, w->deadline,
					&acl);
	}
	if (rc)
		return rc;
	struct zreq *r;
	rc = wr_send(w, ZR_CREATE, acl, &r);
	if (rc)
		return rc;
	if (r->rc == ZNONODE && w->parents) {
		/* the parent was deleted since we asked its ACL */
		zk_req_free(r);
		rc = make_parents(w);
		if (!rc)
			rc = parent_acl(w->s, w->abs, w->acls, w->deadline,
					&acl);
		if (!rc)
			rc = wr_send(w, ZR_CREATE, acl, &r);
		if (rc)
			return rc;
	}
	if (zk_conn_lost(r->rc) && settle) {
		zk_req_free(r);
		return create_settle(w);
	}
	rc = settle ? wr_finish(w, r, "create")
		    : wr_finish_retry(w, r, "create");
	if (rc == 0)
		zk_watch_created(w->s, w->abs);
	return rc;
}

static int set_answer(const struct wr *w, struct zreq *r, bool retry);

/* A set was cut off by a connection loss: it landed if the node holds our
 * value at version v+1 (any version for an unconditional set); if the node
 * is still at v, send it again; otherwise another client got in between
 * (or the znode is another one, w->czxid). */
static int set_settle(const struct wr *w)
{
	struct zreq *g;
	topo_debug("zk: set %s: connection lost, checking", w->abs);
	int rc = zk_read_node(w->s, w->abs, w->deadline, &g);
	if (rc)
		return rc;
	enum zk_set_fate fate =
	    zk_set_fate(w->version, w->czxid, g->stat.version, g->stat.czxid,
			zk_same_value(g, w->value, w->len));
	if (fate == ZK_SET_LANDED && w->meta)
		zk_meta_of(&g->stat, w->meta);
	zk_req_free(g);
	if (fate == ZK_SET_LANDED)
		return 0;
	if (fate == ZK_SET_CONFLICT) {
		topo_warn("zk: set %s: changed by another client while the "
			  "connection was lost",
			  w->abs);
		return -ESTALE;
	}
	struct zreq *r;
	rc = wr_send(w, ZR_SET, NULL, &r);
	return rc ? rc : set_answer(w, r, true);
}

/* The node at w's path is not the znode the writer read (w->czxid). */
static int set_recreated(const struct wr *w, int64_t czxid, bool written)
{
	if (written)
		topo_err("zk: set %s: wrote over a znode another client "
			 "created at that path (czxid 0x%llx, not 0x%llx) at "
			 "the same time",
			 w->abs, (unsigned long long)czxid,
			 (unsigned long long)w->czxid);
	else
		topo_warn("zk: set %s: deleted and created again by another "
			  "client since it was read (czxid 0x%llx, not 0x%llx)",
			  w->abs, (unsigned long long)czxid,
			  (unsigned long long)w->czxid);
	return -ESTALE;
}

/* Finish a set from its answer (`retry`: sent a second time). A znode
 * re-created between our check of it and the set shows in the answer's
 * stat, that of the znode written: too late to keep the other client's
 * value, but never reported as our success. */
static int set_answer(const struct wr *w, struct zreq *r, bool retry)
{
	if (r->rc == ZOK && !zk_same_node(w->czxid, r->stat.czxid)) {
		int rc = set_recreated(w, r->stat.czxid, true);
		zk_req_free(r);
		return rc;
	}
	return retry ? wr_finish_retry(w, r, "set") : wr_finish(w, r, "set");
}

/* Before a set on the znode w->czxid: is that znode still at the path?
 * setData's version check cannot tell: a znode deleted and created again
 * restarts its data version at 0 and may reach the expected one again.
 * (No ZooKeeper request compares a czxid, so this is a read of its own,
 * answered before the set is sent.) 0, -ENOENT, -ESTALE or errno. */
static int set_check_node(const struct wr *w)
{
	struct zreq *r = zk_req_new(ZR_EXISTS, w->abs);
	if (!r)
		return -ENOMEM;
	int rc = zk_call(w->s, r, w->deadline, "exists");
	if (rc)
		return rc; /* r consumed */
	rc = zk_errno(r->rc, "exists", w->abs);
	if (rc == 0 && !zk_same_node(w->czxid, r->stat.czxid))
		rc = set_recreated(w, r->stat.czxid, false);
	zk_req_free(r);
	return rc;
}

/* Set w's node's value with version w->version (-1: any), on the znode
 * w->czxid if not 0. */
static int do_set(const struct wr *w)
{
	struct zreq *r;
	int rc = w->czxid ? set_check_node(w) : 0;
	if (!rc)
		rc = wr_send(w, ZR_SET, NULL, &r);
	if (rc)
		return rc;
	if (zk_conn_lost(r->rc)) {
		zk_req_free(r);
		return set_settle(w);
	}
	return set_answer(w, r, false);
}

/* A put on an absolute path, by `expect`. */
static int put_abs(struct wr *w, int64_t expect)
{
	w->parents = true;
	if (expect == TOPO_EXPECT_ABSENT)
		return do_create(w, true);
	w->version = expect == TOPO_EXPECT_ANY ? -1 : (int)expect;
	int rc = do_set(w);
	if (rc != -ENOENT || expect != TOPO_EXPECT_ANY)
		return rc;
	rc = do_create(w, true);
	if (rc == -EEXIST) /* another client created it meanwhile */
		rc = do_set(w);
	return rc;
}

/* Write a value with compare-and-set on `expect` and, for a version, on
 * the znode created at `czxid` (0: any). */
int zk_put_same(struct topo_store *s, const char *path, const void *value,
		size_t len, int64_t expect, int64_t czxid,
		struct topo_meta *meta)
{
	if (expect < TOPO_EXPECT_ABSENT)
		return -EINVAL;
	if (expect > INT32_MAX)
		return -ESTALE; /* no znode has such a data version */
	if (len > ZK_MAX_VALUE)
		return -EFBIG;
	struct zk_acls acls = {0};
	struct wr w = {
	    .s = s,
	    .abs = zk_abs_path(s->root, path),
	    .value = value,
	    .len = len,
	    .deadline = zk_deadline_of(s),
	    .meta = meta,
	    .acls = &acls,
	    .czxid = expect >= 0 ? czxid : 0,
	};
	if (!w.abs)
		return -ENOMEM;
	int rc = zk_fits(w.abs, len) ? put_abs(&w, expect) : -EFBIG;
	free((char *)w.abs);
	zk_acls_free(&acls);
	return rc;
}

/* The delete of w's node was cut off by a connection loss; `before` is
 * what the exists sent just ahead of it found: 1 the node at the expected
 * version, 0 no node, 2 another version, -1 no answer. An absent node
 * means our delete landed only if the node was there when it was sent:
 * the exists says so, or, without its answer, the caller's expected
 * version (it saw the node). Residual ambiguity: another client deleting
 * the node between our exists and our delete (or, without the exists'
 * answer, after the caller saw it) is reported as our success -- the
 * node is gone either way. */
static int del_settle(const struct wr *w, int before)
{
	topo_debug("zk: delete %s: connection lost, checking", w->abs);
	if (before == 0)
		return -ENOENT; /* nothing was there to delete */
	if (before == 2) {
		topo_warn("zk: delete %s: changed by another client", w->abs);
		return -ESTALE;
	}
	struct zreq *g;
	int rc = zk_read_node(w->s, w->abs, w->deadline, &g);
	if (rc == -ENOENT && (before == 1 || w->version >= 0))
		return 0; /* ours landed */
	if (rc == -ENOENT) {
		topo_err("zk: delete %s: connection lost; the node is gone, "
			 "but whether it was there before is unknown",
			 w->abs);
		return -EIO;
	}
	if (rc)
		return rc;
	bool untouched = w->version < 0 || g->stat.version == w->version;
	zk_req_free(g);
	if (!untouched)
		return -ESTALE;
	struct zreq *r;
	rc = wr_send(w, ZR_DELETE, NULL, &r);
	return rc ? rc : wr_finish(w, r, "delete");
}

/* Write a value with compare-and-set on `expect`. */
int zk_put(struct topo_store *s, const char *path, const void *value,
	   size_t len, int64_t expect, struct topo_meta *meta)
{
	return zk_put_same(s, path, value, len, expect, 0, meta);
}

/* Delete w's node with version w->version, settling a connection loss.
 * An exists of the node goes just ahead of the delete on the same
 * session (no extra round trip): its answer says whether the node was
 * there for the delete, should the delete's own answer be lost. */
static int do_del(const struct wr *w)
{
	struct zreq *rs[2] = {zk_req_new(ZR_EXISTS, w->abs),
			      zk_req_new(ZR_DELETE, w->abs)};
	if (!rs[0] || !rs[1]) {
		zk_req_free(rs[0]);
		zk_req_free(rs[1]);
		return -ENOMEM;
	}
	rs[1]->in_version = w->version;
	int rc = zk_call_all(w->s, rs, 2, w->deadline, "delete");
	if (rc)
		return rc;
	struct zreq *e = rs[0], *d = rs[1];
	int before = e->rc == ZNONODE ? 0 : -1;
	if (e->rc == ZOK)
		before =
		    w->version < 0 || e->stat.version == w->version ? 1 : 2;
	zk_req_free(e);
	if (!zk_conn_lost(d->rc))
		return wr_finish(w, d, "delete");
	zk_req_free(d);
	return del_settle(w, before);
}

/* Delete one znode (never its parents) with compare-and-set on `expect`. */
int zk_del(struct topo_store *s, const char *path, int64_t expect)
{
	if (expect < TOPO_EXPECT_ANY)
		return -EINVAL;
	if (expect > INT32_MAX)
		return -ESTALE;
	struct wr w = {
	    .s = s,
	    .abs = zk_abs_path(s->root, path),
	    .version = (int)expect,
	    .deadline = zk_deadline_of(s),
	};
	if (!w.abs)
		return -ENOMEM;
	int rc = do_del(&w);
	free((char *)w.abs);
	return rc;
}

/* Create an empty znode; -EEXIST if present, -ENOENT without a parent.
 * *meta (may be NULL): the new znode's, from the create's answer. */
int zk_mkdir_meta(struct topo_store *s, const char *path,
		  struct topo_meta *meta)
{
	struct zk_acls acls = {0};
	struct wr w = {
	    .s = s,
	    .abs = zk_abs_path(s->root, path),
	    .value = "",
	    .version = -1,
	    .deadline = zk_deadline_of(s),
	    .meta = meta,
	    .acls = &acls,
	};
	if (!w.abs)
		return -ENOMEM;
	int rc = do_create(&w, true);
	free((char *)w.abs);
	zk_acls_free(&acls);
	return rc;
}

/* Create an empty znode; -EEXIST if present, -ENOENT without a parent. */
int zk_mkdir(struct topo_store *s, const char *path)
{
	return zk_mkdir_meta(s, path, NULL);
}
