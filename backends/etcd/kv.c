/*
 * kv.c - the etcd v3 backend ("etcd2"), over etcd's JSON gateway.
 *
 * Key mapping: the root "/vitess/global" (trailing slashes stripped; "/"
 * becomes the empty prefix) and the relative path "a/b" make the key
 * "/vitess/global/a/b"; the path "" is the root key itself.
 *
 * Writes are transactions: a compare per operation (ABSENT: version == 0;
 * a version v: mod_revision == v), the writes on success, and on failure a
 * keys-only range per key, read in the same revision as the compares, which
 * tells -EEXIST, -ENOENT and -ESTALE apart exactly.
 *
 * Failover: http.c sends every request again, to another member or after a
 * pause, when its member dies or answers "try again" (a leader election),
 * until the operation's deadline. A write sent again whose compares then
 * fail may be failing on its own first attempt: txn_settle() reads the keys
 * back and settle.c decides whether that attempt landed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth.h"
#include "base64.h"
#include "http.h"
#include "json.h"
#include "kv.h"
#include "settle.h"
#include "tls.h"
#include "pin.h"
#include "watch.h"
#include "topofs/backend.h"
#include "topofs/log.h"

/*
 * etcd's default --max-request-bytes is 1572864 for the whole request
 * (key, value and protobuf framing), so a value may use all of it but 1 KiB
 * for the key and framing. The JSON gateway's base64 does not count: the
 * limit applies to the gRPC message it forwards.
 */
#define ETCD_MAX_REQUEST 1572864
#define ETCD_MAX_VALUE (ETCD_MAX_REQUEST - 1024)
#define ETCD_MAX_TXN_OPS 128	/* default --max-txn-ops */
#define ETCD_PAGE 500		/* keys per range request in a listing */
#define ETCD_QUOTA (2ull << 30) /* default --quota-backend-bytes */
#define LIST_RETRIES 3		/* fresh starts after a compaction */

struct topo_store {
	struct etcd_http *http;
	char *root; /* the root key; "" for "/" */
	bool quiet; /* while opening: open() reports failures in errbuf */
	bool root_key_hidden; /* the user may not read the root key itself */
	unsigned timeout_ms;
	struct etcd_watch *watch; /* NULL until watch() */
	int64_t pinned; /* -o revision/snapshot: every read at this revision,
			   no write (0: the current revision) */
};

/* The key for a relative path, newly allocated. 0 or -ENOMEM. */
static int make_key(const struct topo_store *s, const char *path, char **key)
{
	int n;

	if (!*path)
		n = asprintf(key, "%s", s->root);
	else
		n = asprintf(key, "%s/%s", s->root, path);
	return n < 0 ? -ENOMEM : 0;
}

/* The first key after every key that starts with k[0..n): k with its last
 * byte below 0xff incremented and the rest dropped; "\0" (all keys) if there
 * is none. Newly allocated, *outlen bytes. 0 or -ENOMEM. */
int etcd_prefix_end(const char *k, size_t n, char **out, size_t *outlen)
{
	char *e = malloc(n + 1);

	if (!e)
		return -ENOMEM;
	memcpy(e, k, n);
	while (n > 0 && (unsigned char)e[n - 1] == 0xff)
		n--;
	if (n == 0) {
		e[0] = '\0';
		*outlen = 1;
	} else {
		e[n - 1]++;
		*outlen = n;
	}
	*out = e;
	return 0;
}

/* Set obj[name] to the base64 of p[0..n). 0 or -ENOMEM. */
static int set_bytes(json_t *obj, const char *name, const void *p, size_t n)
{
	char *b64;
	int err = etcd_b64_encode(p, n, &b64);

	if (err)
		return err;
	err = json_object_set_new(obj, name, json_string_nocheck(b64));
	free(b64);
	return err ? -ENOMEM : 0;
}

/* Set obj[name] to an int64, as proto3 JSON writes it (a string). 0 or
 * -ENOMEM. */
static int set_int64(json_t *obj, const char *name, int64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return json_object_set_new(obj, name, json_string(buf)) ? -ENOMEM : 0;
}

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

/* POST req (JSON) to api until `deadline` (0: the timeout from now) and
 * check the answer for an etcd error. `uncertain` as for etcd_http_post
 * (NULL for a read). 0 and *reply, or a negative errno (logged, naming
 * `what`). */
static int call(struct topo_store *s, const char *api, json_t *req,
		long long deadline, bool *uncertain, const char *what,
		struct etcd_reply *reply)
{
	char *body = json_dumps(req, JSON_COMPACT);
	int err;

	if (!body)
		return -ENOMEM;
	if (s->quiet)
		what = NULL;
	if (!deadline)
		deadline = etcd_http_deadline(s->http);
	err = etcd_auth_call(s->http, api, body, strlen(body), deadline,
			     uncertain, what, reply);
	free(body);
	return err;
}

/* One range request [start, end) at revision rev (0: current), limit
 * `limit` (0: none); the answer is parsed into out/page for the subtree of
 * key. 0 or a negative errno. */
static int range_page(struct topo_store *s, const char *key, const char *start,
		      size_t startlen, const char *end, size_t endlen,
		      int64_t rev, int64_t limit, bool keys_only,
		      struct topo_listing *out, struct etcd_page *page)
{
	struct etcd_reply reply;
	json_t *req = json_object();
	int err = -ENOMEM;

	if (!req)
		return -ENOMEM;
	if (set_bytes(req, "key", start, startlen) ||
	    (end && set_bytes(req, "range_end", end, endlen)) ||
	    (rev && set_int64(req, "revision", rev)) ||
	    (limit && set_int64(req, "limit", limit)) ||
	    (keys_only && json_object_set_new(req, "keys_only", json_true())))
		goto out;
	err = call(s, "/v3/kv/range", req, 0, NULL, key, &reply);
	if (err)
		goto out;
	err = etcd_parse_range(reply.body, reply.len, s->root, key, out, page);
	etcd_reply_free(&reply);
out:
	json_decref(req);
	return err;
}

/* Add the root key itself to a listing of the root, read alone at revision
 * rev, unless the user may not read it (probe_root). 0 or a negative
 * errno. */
static int add_root_key(struct topo_store *s, int64_t rev,
			struct topo_listing *out)
{
	struct etcd_page page = {0};
	size_t before = out->count;
	int err = 0;

	if (!s->root_key_hidden)
		err = range_page(s, s->root, s->root, strlen(s->root), NULL, 0,
				 rev, 0, false, out, &page);
	etcd_page_clear(&page);
	if (!err && out->count > before)
		topo_listing_sort(out); /* "" goes first */
	return err;
}

/* Read the subtree of key page by page, every page at the first page's
 * revision. 0, -EAGAIN (that revision was compacted) or a negative errno. */
static int list_pages(struct topo_store *s, const char *key,
		      struct topo_listing *out)
{
	struct etcd_page page = {0};
	char *sub = NULL, *end = NULL, *start = NULL;
	size_t endlen, startlen;
	int64_t rev = s->pinned;
	int err = -ENOMEM;

	/* [key, prefix_end(key "/")): key itself, key/..., and siblings such
	 * as "key-foo" that the parser filters out. The key "" cannot exist. */
	if (asprintf(&sub, "%s/", key) < 0) {
		sub = NULL;
		goto out;
	}
	if (etcd_prefix_end(sub, strlen(sub), &end, &endlen))
		goto out;
	/* The root's listing stays inside its prefix, ROOT/: the root key
	 * itself is read alone, after (add_root_key). */
	start = strdup(*key && strcmp(key, s->root) != 0 ? key : sub);
	if (!start)
		goto out;
	startlen = strlen(start);
	for (;;) {
		err = range_page(s, key, start, startlen, end, endlen, rev,
				 ETCD_PAGE, false, out, &page);
		if (err)
			goto out;
		if (!rev)
			rev = out->revision = page.revision;
		if (!page.more)
			break;
		if (!page.last_key) {
			topo_err("etcd: %s: malformed answer: more keys but "
				 "none given",
				 key);
			err = -EIO;
			goto out;
		}
		/* Next page: just after the last key (its NUL is the "\0"). */
		free(start);
		start = (char *)page.last_key;
		startlen = page.last_len + 1;
		page.last_key = NULL;
	}
	if (*key && strcmp(key, s->root) == 0)
		err = add_root_key(s, rev, out);
out:
	etcd_page_clear(&page);
	free(start);
	free(end);
	free(sub);
	return err;
}

/* A read at the pinned revision found it compacted: -EIO, logged. */
static int pinned_gone(const struct topo_store *s, const char *key)
{
	topo_err("etcd: %s: revision %" PRId64 " has been compacted since "
		 "mounting: remount",
		 key, s->pinned);
	return -EIO;
}

/* list: see backend.h. */
static int etcd_list(struct topo_store *s, const char *path,
		     struct topo_listing *out)
{
	char *key;
	int err;

	memset(out, 0, sizeof(*out));
	err = make_key(s, path, &key);
	if (err)
		return err;
	for (int i = 0; i < LIST_RETRIES; i++) {
		err = list_pages(s, key, out);
		if (err != -EAGAIN || s->pinned) /* a pinned one stays gone */
			break;
		topo_listing_free(out);
	}
	if (err == -EAGAIN && s->pinned)
		err = pinned_gone(s, key);
	if (err == -EAGAIN) {
		topo_err("etcd: %s: listing revision compacted %d times", key,
			 LIST_RETRIES);
		err = -EIO;
	}
	if (err)
		topo_listing_free(out);
	free(key);
	return err;
}

/* Read one key into a one-entry listing. 0 or a negative errno; an absent
 * key leaves the listing empty. */
static int read_key(struct topo_store *s, const char *key, bool keys_only,
		    struct topo_listing *l)
{
	struct etcd_page page = {0};
	int err = range_page(s, key, key, strlen(key), NULL, 0, s->pinned, 0,
			     keys_only, l, &page);

	etcd_page_clear(&page);
	return err;
}

/* get: see backend.h. */
static int etcd_get(struct topo_store *s, const char *path,
		    struct topo_entry *out)
{
	struct topo_listing l = {0};
	char *key;
	int err;

	memset(out, 0, sizeof(*out));
	err = make_key(s, path, &key);
	if (err)
		return err;
	err = *key && !(!*path && s->root_key_hidden)
		  ? read_key(s, key, false, &l)
		  : 0;
	if (err == -EAGAIN)
		err = pinned_gone(s, key);
	if (!err && l.count == 0)
		err = -ENOENT;
	if (!err) {
		*out = l.entries[0];
		l.entries[0].path = NULL;
		l.entries[0].value = NULL;
	}
	topo_listing_free(&l);
	free(key);
	return err;
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
	    (err = set_bytes(c, "key", key, strlen(key))) ||
	    (end && (err = set_bytes(c, "range_end", end, endlen))) ||
	    (err = set_str(c, "target", "MOD")) ||
	    (err = set_str(c, "result", "LESS")))
		return err;
	return set_int64(c, "mod_revision", rev + 1);
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
	    !(err = set_bytes(r, "key", key, strlen(key))) &&
	    !(err = set_bytes(r, "range_end", end, endlen)) &&
	    !(err = set_int64(r, "limit", 1)) &&
	    !(err = set_int64(r, "min_mod_revision", op->expect + 1)))
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
		    (err = set_bytes(c, "key", key, strlen(key))) ||
		    (err = set_int64(c, "version", 0)) ||
		    (err = set_str(c, "result", "GREATER")))
			return err;
		if (op->expect == TOPO_EXPECT_ANY)
			return 0;
	}
	if ((err = append_obj(cmp, NULL, &c)) ||
	    (err = set_bytes(c, "key", key, strlen(key))) ||
	    (err = set_str(c, "result", "EQUAL")))
		return err;
	if (op->expect == TOPO_EXPECT_ABSENT)
		return (err = set_str(c, "target", "VERSION"))
			   ? err
			   : set_int64(c, "version", 0);
	return (err = set_str(c, "target", "MOD"))
		   ? err
		   : set_int64(c, "mod_revision", op->expect);
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
			   : set_bytes(r, "key", key, strlen(key));
	if ((err = append_obj(success, "request_put", &r)) ||
	    (err = set_bytes(r, "key", key, strlen(key))))
		return err;
	return op->len ? set_bytes(r, "value", op->value, op->len) : 0;
}

/* Add a range of one key to a branch, keys only (no value) or not. 0 or
 * -ENOMEM. */
static int add_read(json_t *branch, const char *key, bool keys_only)
{
	json_t *r;
	int err;

	if ((err = append_obj(branch, "request_range", &r)) ||
	    (err = set_bytes(r, "key", key, strlen(key))))
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
	err = call(s, "/v3/kv/txn", req, deadline, NULL, keys[0], &reply);
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
		if ((err = make_key(s, ops[i].path, &keys[i])))
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
	err = call(s, "/v3/kv/txn", req, deadline, &uncertain, keys[0], &reply);
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
static int etcd_put(struct topo_store *s, const char *path, const void *value,
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
static int etcd_del(struct topo_store *s, const char *path, int64_t expect)
{
	struct topo_op op = {
	    .kind = TOPO_OP_DELETE, .path = path, .expect = expect};

	return run_txn(s, &op, 1, NULL);
}

/* multi: see backend.h. */
static int etcd_multi(struct topo_store *s, const struct topo_op *ops, size_t n)
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

/* space: see backend.h. */
static int etcd_space(struct topo_store *s, uint64_t *total, uint64_t *used)
{
	struct etcd_reply reply;
	json_t *req = json_object();
	int err;

	if (!req)
		return -ENOMEM;
	err = call(s, "/v3/maintenance/status", req, 0, NULL, "status", &reply);
	json_decref(req);
	if (err)
		return err;
	err = etcd_parse_status(reply.body, reply.len, used);
	etcd_reply_free(&reply);
	if (err)
		return err;
	*total = ETCD_QUOTA;
	if (*used > *total)
		*total = *used * 2;
	return 0;
}

/* Check that the root is usable: absent, or a directory (keys below it),
 * even if the root key itself holds a value, but not a lone key.
 * 0 or a negative errno with a reason in errbuf. */
static int probe_root(struct topo_store *s, const struct topo_conf *conf,
		      char *errbuf, size_t errlen)
{
	const char *servers = conf->servers;
	struct topo_listing l = {0};
	struct etcd_page page = {0};
	char *sub = NULL, *end = NULL;
	size_t endlen;
	bool below;
	int err = -ENOMEM;

	if (asprintf(&sub, "%s/", s->root) < 0) {
		sub = NULL;
		goto out;
	}
	if (etcd_prefix_end(sub, strlen(sub), &end, &endlen))
		goto out;
	/* Does anything lie below the root? (Then it is a directory.) */
	err = range_page(s, s->root, sub, strlen(sub), end, endlen, s->pinned,
			 1, true, &l, &page);
	if (err || !*s->root)
		goto out;
	below = l.count > 0;
	/* The root key itself: a role on the prefix ROOT/ alone does not
	 * allow it; its own value is then not shown. */
	err = read_key(s, s->root, true, &l);
	if (err == -EACCES) {
		topo_debug("etcd: %s: the root key itself is not readable",
			   s->root);
		s->root_key_hidden = true;
		err = 0;
	}
	if (err || below)
		goto out;
	/* Nothing below: the root key itself must not exist. */
	if (l.count > 0) {
		snprintf(errbuf, errlen, "%s is a key, not a directory",
			 s->root);
		err = -ENOTDIR;
	} else if (!conf->missing_root_ok) {
		snprintf(errbuf, errlen,
			 "no keys under %s in etcd at %s (for a new, empty "
			 "topology use -o create_root)",
			 s->root, servers);
		err = -ENOENT;
	}
out:
	if (err == -EIO)
		snprintf(errbuf, errlen,
			 "etcd at %s gave no usable answer (-d shows why)",
			 servers);
	else if (err == -EACCES && conf->etcd_user)
		snprintf(errbuf, errlen,
			 "etcd at %s: user %s may not read the keys under %s/",
			 servers, conf->etcd_user, s->root);
	else if (err == -EACCES)
		snprintf(errbuf, errlen,
			 "etcd at %s: not authorised to read the keys under "
			 "%s/ (a user is needed: -o etcd_user=)",
			 servers, s->root);
	else if (err == -ENOMEM)
		snprintf(errbuf, errlen, "out of memory");
	etcd_page_clear(&page);
	topo_listing_free(&l);
	free(end);
	free(sub);
	return err;
}

/* Probe the servers once: can a trivial request get through at all? 0 or
 * -EIO with the cause in errbuf. */
static int probe_reach(struct topo_store *s, const char *servers, char *errbuf,
		       size_t errlen)
{
	struct etcd_reply reply;
	char why[256];
	int err = etcd_http_post(s->http, "/v3/maintenance/status", "{}", 2,
				 etcd_http_deadline(s->http), NULL, NULL,
				 &reply, why, sizeof(why));

	if (err) {
		snprintf(errbuf, errlen, "cannot reach etcd at %s", why);
		return err;
	}
	if (reply.status != 200) {
		err = etcd_parse_reply_error(reply.status, reply.body,
					     reply.len, NULL);
		if (err == -EACCES)
			snprintf(errbuf, errlen, "etcd at %s: not authorised",
				 servers);
		else
			snprintf(errbuf, errlen,
				 "etcd at %s answers HTTP status %ld (not an "
				 "etcd v3 server?)",
				 servers, reply.status);
	}
	etcd_reply_free(&reply);
	return err;
}

/* close: see backend.h. */
static void etcd_close(struct topo_store *s)
{
	if (!s)
		return;
	etcd_watch_stop(s->watch); /* first: the thread uses s->http */
	etcd_http_close(s->http);
	free(s->root);
	free(s);
}

/* open: see backend.h. */
static int etcd_open(const struct topo_conf *conf, struct topo_store **out,
		     char *errbuf, size_t errlen)
{
	struct topo_store *s = calloc(1, sizeof(*s));
	int err;

	if (!s) {
		snprintf(errbuf, errlen, "out of memory");
		return -ENOMEM;
	}
	s->quiet = true;
	s->timeout_ms = conf->timeout_ms ? conf->timeout_ms : 10000;
	if ((err = etcd_root_key(conf->root, &s->root, errbuf, errlen)) ||
	    (err = etcd_http_open(conf, &s->http, errbuf, errlen)) ||
	    (err = etcd_tls_probe(s->http, conf, errbuf, errlen)) ||
	    (err = probe_reach(s, conf->servers, errbuf, errlen)) ||
	    (err = etcd_auth_login(s->http, conf->servers, errbuf, errlen)) ||
	    (err = etcd_pin(s->http, conf->servers, s->root, conf->revision,
			    conf->snapshot, &s->pinned, errbuf, errlen)) ||
	    (err = probe_root(s, conf, errbuf, errlen))) {
		etcd_close(s);
		return err;
	}
	s->quiet = false;
	*out = s;
	return 0;
}

/* watch: see backend.h and watch.h. Once per store: -EBUSY after that. */
static int etcd_watch(struct topo_store *s, topo_change_fn fn, void *arg)
{
	if (s->watch)
		return -EBUSY;
	if (s->pinned)
		return 0; /* nothing changes at a past revision */
	return etcd_watch_start(s->http, s->root, s->timeout_ms, fn, arg,
				&s->watch);
}

/* user.etcd.*: the key's own numbers, as etcd names them. */
static size_t etcd_xattrs(const struct topo_meta *m, struct topo_xattr *out)
{
	out[0] = (struct topo_xattr){"user.etcd.create_revision", m->create_id};
	out[1] = (struct topo_xattr){"user.etcd.mod_revision", m->version};
	out[2] = (struct topo_xattr){"user.etcd.version", m->change_count};
	out[3] = (struct topo_xattr){"user.etcd.lease", m->lease};
	return 4;
}

/* revision: see backend.h. */
static int etcd_revision(struct topo_store *s, int64_t *rev, bool *pinned)
{
	*pinned = s->pinned > 0;
	if (*pinned) {
		*rev = s->pinned;
		return 0;
	}
	return etcd_current_revision(s->http, "revision", rev);
}

const struct topo_backend topo_backend_etcd = {
    .name = "etcd2",
    .caps = TOPO_CAP_REVISIONS | TOPO_CAP_PIN | TOPO_CAP_GUARD,
    .max_value = ETCD_MAX_VALUE,
    .max_ops = ETCD_MAX_TXN_OPS,
    .open = etcd_open,
    .close = etcd_close,
    .list = etcd_list,
    .get = etcd_get,
    .put = etcd_put,
    .del = etcd_del,
    .multi = etcd_multi,
    .mkdir = NULL,
    .space = etcd_space,
    .watch = etcd_watch,
    .xattrs = etcd_xattrs,
    .revision = etcd_revision,
};
