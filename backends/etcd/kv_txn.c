/*
 * kv_txn.c - the etcd backend's writes (see kv.c): every put, delete and
 * multi is one transaction; its JSON (etcd_build_txn, kv.h), the reading
 * of its answer, and the settling of one whose outcome was unknown.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http.h"
#include "json.h"
#include "kv.h"
#include "settle.h"
#include "kv_internal.h"
#include "watch.h"
#include "topofs/backend.h"
#include "topofs/log.h"

/* Set obj[name] to a string. 0 or -ENOMEM. */
static int set_str(json_t *obj, const char *name, const char *v)
{
	return json_object_set_new(obj, name, json_string(v)) ? -ENOMEM : 0;
}

/* Append a new object to arr, wrapped as {wrap: {}} when wrap is not NULL;
 * *inner is the object to fill (borrowed). 0 or -ENOMEM. */
static int append_obj(json_t *arr, const char *wrap, json_t **inner)
{
	json_t *o = json_object(), *w;

	if (!o)
		return -ENOMEM;
	w = o;
	if (wrap) {
		w = json_object();
		if (!w || json_object_set_new(w, wrap, o)) {
			json_decref(w);
			json_decref(o);
			return -ENOMEM;
		}
	}
	if (json_array_append_new(arr, w))
		return -ENOMEM;
	*inner = o;
	return 0;
}

/* The keys below a guard's key: [key "/", prefix_end(key "/")), newly
 * allocated (*sub NUL-terminated). 0 or -ENOMEM. */
static int guard_range(const char *key, char **sub, char **end, size_t *endlen)
{
	*end = NULL;
	if (asprintf(sub, "%s/", key) < 0) {
		*sub = NULL;
		return -ENOMEM;
	}
	if (etcd_prefix_end(*sub, strlen(*sub), end, endlen)) {
		free(*sub);
		*sub = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Add the compare "every key in [key, end) (end NULL: key alone) has a
 * mod_revision of at most rev" to cmp. An absent key compares as 0, so
 * keys deleted since pass: the deletes of the guarded ops check those.
 * 0 or -ENOMEM. */
static int add_not_after(json_t *cmp, const char *key, const char *end,
			 size_t endlen, int64_t rev)
{
	json_t *c;
	int err;

	if ((err = append_obj(cmp, NULL, &c)) ||
	    (err = etcd_set_bytes(c, "key", key, strlen(key))) ||
	    (end && (err = etcd_set_bytes(c, "range_end", end, endlen))) ||
	    (err = set_str(c, "target", "MOD")) ||
	    (err = set_str(c, "result", "LESS")))
		return err;
	return etcd_set_int64(c, "mod_revision", rev + 1);
}

/* The compares of a guard: the node itself, and every key below it. Two
 * compares, because one range [key, prefix_end(key "/")) would also take
 * in siblings such as "key-old" ('-' sorts before '/'). 0, -EINVAL or
 * -ENOMEM. */
static int add_guard(json_t *cmp, const struct topo_op *op, const char *key)
{
	char *sub, *end;
	size_t endlen;
	int err;

	if (op->expect < 0 || op->expect == INT64_MAX)
		return -EINVAL; /* not a revision */
	if ((err = guard_range(key, &sub, &end, &endlen)))
		return err;
	err = add_not_after(cmp, key, NULL, 0, op->expect);
	if (!err)
		err = add_not_after(cmp, sub, end, endlen, op->expect);
	free(sub);
	free(end);
	return err;
}

/* The failure branch's read for a guard: the first key at or below key
 * changed after the guarded revision, keys only (found: the guard
 * failed). [key, prefix_end(key "/")) may find a sibling such as
 * "key-old" too: only when the txn failed anyway, and only for its log
 * line. 0 or -ENOMEM. */
static int add_guard_read(json_t *failure, const struct topo_op *op,
			  const char *key)
{
	char *sub, *end;
	size_t endlen;
	json_t *r;
	int err;

	if ((err = guard_range(key, &sub, &end, &endlen)))
		return err;
	if (!(err = append_obj(failure, "request_range", &r)) &&
	    !(err = etcd_set_bytes(r, "key", key, strlen(key))) &&
	    !(err = etcd_set_bytes(r, "range_end", end, endlen)) &&
	    !(err = etcd_set_int64(r, "limit", 1)) &&
	    !(err = etcd_set_int64(r, "min_mod_revision", op->expect + 1)))
		err = json_object_set_new(r, "keys_only", json_true()) ? -ENOMEM
								       : 0;
	free(sub);
	free(end);
	return err;
}

/* Add the compares for one op to cmp. 0, -EINVAL or -ENOMEM. */
static int add_compares(json_t *cmp, const struct topo_op *op, const char *key)
{
	json_t *c;
	int err;

	if (op->kind == TOPO_OP_GUARD)
		return add_guard(cmp, op, key);
	if (op->expect == TOPO_EXPECT_ANY && op->kind == TOPO_OP_PUT)
		return 0;
	if (op->expect == TOPO_EXPECT_ABSENT && op->kind == TOPO_OP_DELETE)
		return -EINVAL;
	if (op->expect < 0 && op->expect != TOPO_EXPECT_ANY &&
	    op->expect != TOPO_EXPECT_ABSENT)
		return -EINVAL;
	/* The key must exist: deleting with ANY, and a version of 0 (no
	 * mod_revision is 0, but an absent key compares as 0). */
	if (op->expect == TOPO_EXPECT_ANY || op->expect == 0) {
		if ((err = append_obj(cmp, NULL, &c)) ||
		    (err = set_str(c, "target", "VERSION")) ||
		    (err = etcd_set_bytes(c, "key", key, strlen(key))) ||
		    (err = etcd_set_int64(c, "version", 0)) ||
		    (err = set_str(c, "result", "GREATER")))
			return err;
		if (op->expect == TOPO_EXPECT_ANY)
			return 0;
	}
	if ((err = append_obj(cmp, NULL, &c)) ||
	    (err = etcd_set_bytes(c, "key", key, strlen(key))) ||
	    (err = set_str(c, "result", "EQUAL")))
		return err;
	if (op->expect == TOPO_EXPECT_ABSENT)
		return (err = set_str(c, "target", "VERSION"))
			   ? err
			   : etcd_set_int64(c, "version", 0);
	return (err = set_str(c, "target", "MOD"))
		   ? err
		   : etcd_set_int64(c, "mod_revision", op->expect);
}

/* Add the write of one op to the success branch. 0 or -ENOMEM. */
static int add_write(json_t *success, const struct topo_op *op, const char *key)
{
	json_t *r;
	int err;

	if (op->kind == TOPO_OP_GUARD)
		return 0; /* compares only */
	if (op->kind == TOPO_OP_DELETE)
		return (err = append_obj(success, "request_delete_range", &r))
			   ? err
			   : etcd_set_bytes(r, "key", key, strlen(key));
	if ((err = append_obj(success, "request_put", &r)) ||
	    (err = etcd_set_bytes(r, "key", key, strlen(key))))
		return err;
	return op->len ? etcd_set_bytes(r, "value", op->value, op->len) : 0;
}

/* Add a range of one key to a branch, keys only (no value) or not. 0 or
 * -ENOMEM. */
static int add_read(json_t *branch, const char *key, bool keys_only)
{
	json_t *r;
	int err;

	if ((err = append_obj(branch, "request_range", &r)) ||
	    (err = etcd_set_bytes(r, "key", key, strlen(key))))
		return err;
	if (!keys_only)
		return 0;
	return json_object_set_new(r, "keys_only", json_true()) ? -ENOMEM : 0;
}

/* Build the txn for ops[0..n); see kv.h. */
int etcd_build_txn(const struct topo_op *ops, char *const *keys, size_t n,
		   bool readback, json_t **out)
{
	json_t *req = json_object(), *cmp = json_array(),
	       *success = json_array(), *failure = json_array();
	int err = -ENOMEM;

	if (!req || !cmp || !success || !failure) {
		json_decref(req);
		json_decref(cmp);
		json_decref(success);
		json_decref(failure);
		return -ENOMEM;
	}
	/* req owns the arrays from here (set_new takes them even on error). */
	if (json_object_set_new(req, "compare", cmp) ||
	    json_object_set_new(req, "success", success) ||
	    json_object_set_new(req, "failure", failure))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if ((err = add_compares(cmp, &ops[i], keys[i])) ||
		    (err = add_write(success, &ops[i], keys[i])))
			goto fail;
		err = ops[i].kind == TOPO_OP_GUARD
			  ? add_guard_read(failure, &ops[i], keys[i])
			  : add_read(failure, keys[i], true);
		if (err)
			goto fail;
	}
	if (readback && (err = add_read(success, keys[0], true)))
		goto fail;
	if (json_array_size(cmp) > ETCD_MAX_TXN_OPS) {
		err = -E2BIG;
		goto fail;
	}
	*out = req;
	return 0;
fail:
	json_decref(req);
	return err;
}

/* Whether the read st of a guard on key at revision rev shows a key at or
 * below it changed since. Logged at LOG_DEBUG: the caller may well try
 * again with a fresh listing (a directory rename does), and logs what
 * fails in the end. */
static bool guard_failed(const char *key, int64_t rev,
			 const struct etcd_txn_step *st)
{
	if (!st->found || st->meta.version <= rev)
		return false;
	topo_debug("etcd: %s: changed by another client (a key at or below "
		   "it has mod_revision %" PRId64 ", after the listing at "
		   "%" PRId64 ")",
		   key, st->meta.version, rev);
	return true;
}

/* The number of ops of ops[0..n) that write (all but guards): the
 * responses of a txn whose compares held. */
static size_t count_writes(const struct topo_op *ops, size_t n)
{
	size_t w = 0;

	for (size_t i = 0; i < n; i++)
		w += ops[i].kind != TOPO_OP_GUARD;
	return w;
}

/* Why the compares of a failed txn failed: the first op whose expectation
 * the ranges steps[0..n) (one per op: the failure branch's, or a read
 * after it) contradict; 0 (not logged) if every compare holds there. */
static int txn_failure(const struct topo_op *ops, char *const *keys, size_t n,
		       const struct etcd_txn_step *steps)
{
	for (size_t i = 0; i < n; i++) {
		const struct etcd_txn_step *st = &steps[i];
		int64_t want = ops[i].expect;

		if (st->kind != ETCD_RESP_RANGE) {
			topo_err("etcd: %s: malformed answer: txn failure "
				 "response %zu is not a range",
				 keys[i], i);
			return -EIO;
		}
		if (ops[i].kind == TOPO_OP_GUARD) {
			if (guard_failed(keys[i], want, st))
				return -ESTALE;
			continue;
		}
		if (want == TOPO_EXPECT_ABSENT && st->found) {
			topo_debug("etcd: %s: exists", keys[i]);
			return -EEXIST;
		}
		if (want != TOPO_EXPECT_ABSENT && !st->found &&
		    (want >= 0 || ops[i].kind == TOPO_OP_DELETE)) {
			topo_debug("etcd: %s: no such key", keys[i]);
			return -ENOENT;
		}
		if (want >= 0 && st->meta.version != want) {
			topo_warn("etcd: %s: changed by another client "
				  "(version %" PRId64 ", expected %" PRId64 ")",
				  keys[i], st->meta.version, want);
			return -ESTALE;
		}
	}
	return 0;
}

/* Parse the answer of a txn on ops[0..n) (with `readback`: a range after
 * the writes) into steps[0..n]: 0 with *ok (the compares held) and *rev
 * (the header revision), or -EIO. Compares held: one response per write
 * (guards have none), then the read-back; else one read per op. */
static int txn_parse(const struct etcd_reply *reply, const struct topo_op *ops,
		     char *const *keys, size_t n, bool readback,
		     struct etcd_txn_step *steps, bool *ok, int64_t *rev)
{
	size_t count, want, j = 0;
	int err = etcd_parse_txn(reply->body, reply->len, keys[0], rev, ok,
				 steps, n + 1, &count);

	if (err)
		return err;
	want = *ok ? count_writes(ops, n) + readback : n;
	if (count != want) {
		topo_err(
		    "etcd: %s: malformed answer: %zu txn responses, want %zu",
		    keys[0], count, want);
		return -EIO;
	}
	for (size_t i = 0; *ok && i < n; i++) {
		enum etcd_resp_kind k = ops[i].kind == TOPO_OP_PUT
					    ? ETCD_RESP_PUT
					    : ETCD_RESP_DELETE;
		if (ops[i].kind == TOPO_OP_GUARD)
			continue;
		if (steps[j++].kind != k) {
			topo_err("etcd: %s: malformed answer: txn response %zu "
				 "has the wrong kind",
				 keys[i], j - 1);
			return -EIO;
		}
	}
	return 0;
}

/* Read keys[0..n) with their values at one revision (a txn of ranges)
 * into now[] and values[] (owned). 0 or a negative errno. */
static int read_keys(struct topo_store *s, char *const *keys, size_t n,
		     long long deadline, struct etcd_txn_step *now,
		     unsigned char **values)
{
	struct etcd_reply reply;
	json_t *req = json_object(), *success = json_array();
	int err = -ENOMEM;

	if (!req || !success || json_object_set_new(req, "success", success)) {
		json_decref(req);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		if ((err = add_read(success, keys[i], false)))
			goto out;
	err = etcd_call(s, "/v3/kv/txn", req, deadline, NULL, keys[0], &reply);
	if (err)
		goto out;
	err = etcd_parse_txn_values(reply.body, reply.len, keys[0], now, values,
				    n);
	etcd_reply_free(&reply);
out:
	json_decref(req);
	return err;
}

/* The compares of a txn failed, but an earlier attempt of it may have
 * been applied (its outcome was unknown): read every key back and decide
 * with etcd_txn_landed() (settle.c tells why that is safe). Landed: 0 and
 * *meta (if not NULL, a single put) as the key is now. Else the conflict
 * the keys show, or -EIO if they show none (changed again meanwhile). */
static int txn_settle(struct topo_store *s, const struct topo_op *ops,
		      char *const *keys, size_t n, long long deadline,
		      struct topo_meta *meta)
{
	struct etcd_txn_step *now = calloc(n, sizeof(*now));
	unsigned char **values = calloc(n, sizeof(*values));
	int err = -ENOMEM;

	if (!now || !values)
		goto out;
	topo_debug("etcd: %s: compares failed after a cut-off attempt; "
		   "checking whether it was applied",
		   keys[0]);
	err = read_keys(s, keys, n, deadline, now, values);
	if (err)
		goto out;
	if (etcd_txn_landed(ops, n, now, values)) {
		topo_info("etcd: %s: the write was applied by an attempt "
			  "that was cut off",
			  keys[0]);
		if (meta)
			*meta = now[0].meta;
		goto out;
	}
	err = txn_failure(ops, keys, n, now);
	if (!err) {
		topo_err("etcd: %s: write cut off; whether it was applied is "
			 "unknown (the key changed again meanwhile)",
			 keys[0]);
		err = -EIO;
	}
out:
	for (size_t i = 0; values && i < n; i++)
		free(values[i]);
	free(values);
	free(now);
	return err;
}

/* Check the answer of a txn on ops[0..n) and fill *meta (if not NULL) from
 * the read-back after a single put. `uncertain`: an earlier attempt may
 * have been applied (settled if the compares failed). 0 or a negative
 * errno. */
static int txn_result(struct topo_store *s, const struct etcd_reply *reply,
		      const struct topo_op *ops, char *const *keys, size_t n,
		      bool uncertain, long long deadline,
		      struct topo_meta *meta)
{
	struct etcd_txn_step *steps = calloc(n + 1, sizeof(*steps));
	int64_t rev;
	bool ok;
	int err;

	if (!steps)
		return -ENOMEM;
	err = txn_parse(reply, ops, keys, n, meta != NULL, steps, &ok, &rev);
	if (err)
		goto out;
	if (!ok && uncertain) {
		err = txn_settle(s, ops, keys, n, deadline, meta);
	} else if (!ok) {
		err = txn_failure(ops, keys, n, steps);
		if (!err) {
			topo_err("etcd: %s: transaction failed but every "
				 "compare holds",
				 keys[0]);
			err = -EIO;
		}
	} else {
		for (size_t i = 0; i < n; i++) /* every put has its revision */
			if (ops[i].kind == TOPO_OP_PUT && ops[i].version_out)
				*ops[i].version_out = rev;
	}
	if (!err && ok && meta) {
		*meta = steps[count_writes(ops, n)].meta;
		meta->version = rev; /* the put's revision, whatever was read */
		meta->size = ops[0].len;
		meta->has_data = true;
	}
out:
	free(steps);
	return err;
}

/* Free keys[0..n) and the array. */
static void free_keys(char **keys, size_t n)
{
	for (size_t i = 0; keys && i < n; i++)
		free(keys[i]);
	free(keys);
}

/* Run ops[0..n) as one transaction, within one operation timeout (the
 * settling included). With meta (a single put), fill it with the new
 * metadata. 0 or a negative errno. */
static int run_txn(struct topo_store *s, const struct topo_op *ops, size_t n,
		   struct topo_meta *meta)
{
	long long deadline = etcd_http_deadline(s->http);
	struct etcd_reply reply;
	json_t *req = NULL;
	char **keys = calloc(n, sizeof(*keys));
	bool uncertain;
	int err = -ENOMEM;

	if (!keys)
		return -ENOMEM;
	if (s->pinned) {
		free(keys);
		return -EROFS; /* the past cannot change */
	}
	for (size_t i = 0; i < n; i++) {
		if ((err = etcd_make_key(s, ops[i].path, &keys[i])))
			goto out;
		if (!*keys[i]) {
			topo_err(
			    "etcd: cannot write the empty key (root \"/\")");
			err = -EINVAL;
			goto out;
		}
	}
	err = etcd_build_txn(ops, keys, n, meta != NULL, &req);
	if (err == -E2BIG)
		topo_warn("etcd: %s: over %d compares in one transaction",
			  keys[0], ETCD_MAX_TXN_OPS);
	if (err)
		goto out;
	err = etcd_call(s, "/v3/kv/txn", req, deadline, &uncertain, keys[0],
			&reply);
	if (err)
		goto out;
	err = txn_result(s, &reply, ops, keys, n, uncertain, deadline, meta);
	etcd_reply_free(&reply);
out:
	json_decref(req);
	free_keys(keys, n);
	return err;
}

/* put: see backend.h. */
int etcd_put(struct topo_store *s, const char *path, const void *value,
	     size_t len, int64_t expect, struct topo_meta *meta)
{
	struct topo_op op = {.kind = TOPO_OP_PUT,
			     .path = path,
			     .value = value,
			     .len = len,
			     .expect = expect};
	struct topo_meta m;
	int err;

	if (len > ETCD_MAX_VALUE) {
		topo_warn(
		    "etcd: %s%s%s: value of %zu bytes is over the limit of %d",
		    s->root, *path ? "/" : "", path, len, ETCD_MAX_VALUE);
		return -EFBIG;
	}
	err = run_txn(s, &op, 1, &m);
	if (!err && meta)
		*meta = m;
	return err;
}

/* del: see backend.h. */
int etcd_del(struct topo_store *s, const char *path, int64_t expect)
{
	struct topo_op op = {
	    .kind = TOPO_OP_DELETE, .path = path, .expect = expect};

	return run_txn(s, &op, 1, NULL);
}

/* multi: see backend.h. */
int etcd_multi(struct topo_store *s, const struct topo_op *ops, size_t n)
{
	if (n > ETCD_MAX_TXN_OPS) {
		topo_warn("etcd: %zu operations in one transaction, limit %d",
			  n, ETCD_MAX_TXN_OPS);
		return -E2BIG;
	}
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (ops[i].kind == TOPO_OP_PUT && ops[i].len > ETCD_MAX_VALUE) {
			topo_warn(
			    "etcd: %s: value of %zu bytes is over the limit",
			    ops[i].path, ops[i].len);
			return -EFBIG;
		}
	}
	return run_txn(s, ops, n, NULL);
}
