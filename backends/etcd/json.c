/* json.c - see json.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "json.h"
#include "topofs/base64.h"
#include "topofs/log.h"

/* Log one malformed answer and return -EIO. */
static int bad_answer(const char *what, const char *why)
{
	topo_err("etcd: %s: malformed answer: %s", what, why);
	return -EIO;
}

/* The level of a log line about an error: LOG_DEBUG when the caller
 * reports it itself (what == NULL, see json.h). */
static int level(const char *what, int lvl)
{
	return what ? lvl : LOG_DEBUG;
}

#define NAME(what) ((what) ? (what) : "probe")

/* Map an etcd error; see json.h. */
int etcd_errno(long code, const char *message, const char *what)
{
	const char *m = message ? message : "";

	/* Over --max-request-bytes, or over gRPC's own limit (that plus
	 * 512 KiB): "received message larger than max". */
	if (strstr(m, "request is too large") ||
	    strstr(m, "received message larger than max")) {
		topo_log(level(what, LOG_WARNING), "etcd: %s: %s", NAME(what),
			 m);
		return -EFBIG;
	}
	/* The quota (--quota-backend-bytes) is full: etcd raised its NOSPACE
	 * alarm and takes no write until compacted, defragmented and the
	 * alarm disarmed. Told by the message: its code, 8
	 * RESOURCE_EXHAUSTED, is also that of "too many requests". The
	 * filesystem logs the failure naming the key: debug only here. */
	if (strstr(m, "database space exceeded")) {
		topo_debug("etcd: %s: %s", NAME(what), m);
		return -ENOSPC;
	}
	if (strstr(m, "too many operations in txn request")) {
		topo_log(level(what, LOG_WARNING), "etcd: %s: %s", NAME(what),
			 m);
		return -E2BIG;
	}
	/* 7 PERMISSION_DENIED, 16 UNAUTHENTICATED; etcd 3.4 sends a missing
	 * user as INVALID_ARGUMENT "user name is empty". */
	if (code == 7 || code == 16 || strstr(m, "user name is empty")) {
		topo_log(level(what, LOG_WARNING),
			 "etcd: %s: not authorised: %s", NAME(what), m);
		return -EACCES;
	}
	/* A pinned listing revision went away: the caller starts over. */
	if (strstr(m, "required revision has been compacted")) {
		topo_debug("etcd: %s: %s", NAME(what), m);
		return -EAGAIN;
	}
	topo_log(level(what, LOG_ERR), "etcd: %s: %s (code %ld)", NAME(what),
		 message ? m : "error", code);
	return -EIO;
}

/* Messages of errors that mean "not now": a leader election (no leader,
 * leader changed, a proposal dropped for want of a leader, a request timed
 * out waiting for one), an overloaded, stopping or unhealthy member, a
 * learner that serves no requests yet. etcd 3.4 sends some of them with
 * codes other than 14 (FailedPrecondition "not leader", Unknown "raft
 * proposal dropped", ResourceExhausted "too many requests"). */
static const char *const retry_messages[] = {
    "no leader",
    "not leader",
    "leader changed",
    "raft proposal dropped",
    "request timed out",
    "too many requests",
    "server stopped",
    "unhealthy cluster",
    "not supported for learner",
};

/* Whether an etcd error means "try again"; see json.h. */
bool etcd_error_retryable(long code, const char *message)
{
	const char *m = message ? message : "";

	/* Final whatever the message says: invalid argument (too large, too
	 * many operations), permission denied, out of range (compacted),
	 * unauthenticated. */
	if (code == 3 || code == 7 || code == 11 || code == 16)
		return false;
	/* 14 Unavailable is etcd's code for every "not now" error; 4
	 * DeadlineExceeded is gRPC's own timeout. */
	if (code == 14 || code == 4)
		return true;
	for (size_t i = 0;
	     i < sizeof(retry_messages) / sizeof(retry_messages[0]); i++)
		if (strstr(m, retry_messages[i]))
			return true;
	return false;
}

/* Whether an HTTP status without an etcd error object means "try again":
 * too many requests, or a proxy that found no server behind it. */
static bool retryable_status(long status)
{
	return status == 429 || status == 502 || status == 503 || status == 504;
}

/* Read an error object ({"error", "code", "message"}): false if the body
 * is none; else *code (-1 if not given) and *msg (NULL if not given,
 * borrowed from *doc, which the caller releases). */
static bool error_object(const char *json, size_t len, json_t **doc, long *code,
			 const char **msg)
{
	json_t *c, *m;

	*doc = json_loadb(json, len, 0, NULL);
	if (!*doc || !json_is_object(*doc))
		return false;
	c = json_object_get(*doc, "code");
	m = json_object_get(*doc, "message");
	if (!json_is_string(m))
		m = json_object_get(*doc, "error");
	if (!json_is_integer(c) && !json_is_string(m))
		return false;
	*code = json_is_integer(c) ? (long)json_integer_value(c) : -1;
	*msg = json_is_string(m) ? json_string_value(m) : NULL;
	return true;
}

/* Whether an HTTP answer asks to try again; see json.h. */
bool etcd_reply_retryable(long status, const char *json, size_t len)
{
	const char *msg;
	json_t *doc;
	long code;
	bool retry;

	if (status == 200)
		return false;
	if (error_object(json, len, &doc, &code, &msg))
		retry = etcd_error_retryable(code, msg);
	else
		retry = retryable_status(status);
	json_decref(doc);
	return retry;
}

/* Load an answer that must be a JSON object. 0 or -EIO. */
static int load_object(const char *json, size_t len, const char *what,
		       json_t **out)
{
	json_error_t jerr;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);

	if (!root) {
		topo_err("etcd: %s: malformed answer: %s", what, jerr.text);
		return -EIO;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		return bad_answer(what, "not an object");
	}
	*out = root;
	return 0;
}

/* Check an HTTP answer; see json.h. */
int etcd_parse_reply_error(long status, const char *json, size_t len,
			   const char *what)
{
	const char *msg;
	json_t *doc;
	long code;
	int err;

	if (status == 200)
		return 0;
	if (!error_object(json, len, &doc, &code, &msg)) {
		json_decref(doc);
		topo_log(level(what, LOG_ERR),
			 "etcd: %s: HTTP status %ld: %.*s", NAME(what), status,
			 len ? (int)(len < 100 ? len : 100) : 7,
			 len ? json : "(empty)");
		return -EIO;
	}
	err = etcd_errno(code, msg, what);
	json_decref(doc);
	return err;
}

/* A proto3 int64 field: absent = 0, a decimal string or a JSON integer.
 * 0 or -EIO. */
static int get_int64(json_t *obj, const char *name, int64_t *v,
		     const char *what)
{
	json_t *f = json_object_get(obj, name);
	const char *s;
	char *end;
	long long n;

	*v = 0;
	if (!f)
		return 0;
	if (json_is_integer(f)) {
		*v = json_integer_value(f);
		return 0;
	}
	if (!json_is_string(f))
		goto bad;
	s = json_string_value(f);
	if (!(*s >= '0' && *s <= '9') &&
	    !(*s == '-' && s[1] >= '0' && s[1] <= '9'))
		goto bad;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno || *end)
		goto bad;
	*v = n;
	return 0;
bad:
	topo_err("etcd: %s: malformed answer: field %s is not an int64", what,
		 name);
	return -EIO;
}

/* A proto3 bool field: absent = false. 0 or -EIO. */
static int get_bool(json_t *obj, const char *name, bool *v, const char *what)
{
	json_t *f = json_object_get(obj, name);

	*v = false;
	if (!f)
		return 0;
	if (!json_is_boolean(f)) {
		topo_err("etcd: %s: malformed answer: field %s is not a bool",
			 what, name);
		return -EIO;
	}
	*v = json_is_true(f);
	return 0;
}

/* A proto3 repeated or message field: absent = NULL, else of `type`.
 * 0 or -EIO. */
static int get_typed(json_t *obj, const char *name, json_type type, json_t **v,
		     const char *what)
{
	json_t *f = json_object_get(obj, name);

	*v = NULL;
	if (!f)
		return 0;
	if (json_typeof(f) != type) {
		topo_err(
		    "etcd: %s: malformed answer: field %s has the wrong type",
		    what, name);
		return -EIO;
	}
	*v = f;
	return 0;
}

/* A proto3 bytes field: absent = empty. *buf is owned, NUL-terminated, NULL
 * when empty. 0, -EIO or -ENOMEM. */
static int get_bytes(json_t *obj, const char *name, unsigned char **buf,
		     size_t *len, const char *what)
{
	json_t *f = json_object_get(obj, name);
	int err;

	*buf = NULL;
	*len = 0;
	if (!f)
		return 0;
	if (!json_is_string(f)) {
		topo_err("etcd: %s: malformed answer: field %s is not a string",
			 what, name);
		return -EIO;
	}
	err = topo_b64_decode(json_string_value(f), json_string_length(f), buf,
			      len);
	if (err == -EINVAL) {
		topo_err("etcd: %s: malformed answer: field %s is not base64",
			 what, name);
		return -EIO;
	}
	if (!err && *len == 0) {
		free(*buf);
		*buf = NULL;
	}
	return err;
}

/* The header revision, which every answer carries. 0 or -EIO. */
static int get_revision(json_t *root, int64_t *revision, const char *what)
{
	json_t *header;
	int err = get_typed(root, "header", JSON_OBJECT, &header, what);

	if (err)
		return err;
	if (!header)
		return bad_answer(what, "no header");
	return get_int64(header, "revision", revision, what);
}

/* One mvccpb.KeyValue: its key (owned, NUL-terminated), metadata and value
 * (owned, NULL if empty or `value` is NULL). 0, -EIO or -ENOMEM. */
static int parse_kv(json_t *kv, const char *what, unsigned char **key,
		    size_t *keylen, struct topo_meta *meta,
		    unsigned char **value)
{
	unsigned char *v = NULL;
	size_t vlen;
	int err;

	if (!json_is_object(kv))
		return bad_answer(what, "a kv is not an object");
	memset(meta, 0, sizeof(*meta));
	err = get_bytes(kv, "key", key, keylen, what);
	if (err)
		return err;
	if (!*key) {
		err = bad_answer(what, "a kv has no key");
		goto fail;
	}
	if ((err = get_int64(kv, "mod_revision", &meta->version, what)) ||
	    (err = get_int64(kv, "create_revision", &meta->create_id, what)) ||
	    (err = get_int64(kv, "version", &meta->change_count, what)) ||
	    (err = get_int64(kv, "lease", &meta->lease, what)) ||
	    (err = get_bytes(kv, "value", &v, &vlen, what)))
		goto fail;
	meta->size = vlen;
	meta->modify_id = meta->version;
	meta->ephemeral = meta->lease != 0;
	meta->has_data = true;
	if (value)
		*value = v;
	else
		free(v);
	return 0;
fail:
	free(*key);
	*key = NULL;
	return err;
}

/* Free what a page owns. */
void etcd_page_clear(struct etcd_page *page)
{
	free(page->last_key);
	free(page->first_key);
	memset(page, 0, sizeof(*page));
}

/* Whether k is `key` itself or below `key/`. */
static bool in_subtree(const unsigned char *k, size_t klen, const char *key)
{
	size_t n = strlen(key);

	if (klen < n || memcmp(k, key, n) != 0)
		return false;
	return klen == n || k[n] == '/';
}

/* Add one kv of a range answer to `out` if it lies in the subtree; takes
 * ownership of value. 0 or -ENOMEM. */
static int add_entry(struct topo_listing *out, const char *root,
		     const char *key, const unsigned char *k, size_t klen,
		     const struct topo_meta *meta, unsigned char *value)
{
	size_t rootlen = strlen(root), skip;
	int err;

	if (!in_subtree(k, klen, key)) {
		free(value);
		return 0;
	}
	if (memchr(k, '\0', klen)) {
		topo_warn("etcd: key under %s holds a NUL byte; not shown",
			  key);
		free(value);
		return 0;
	}
	skip = klen > rootlen ? rootlen + 1 : klen;
	err = topo_listing_add(out, (const char *)k + skip, klen - skip, meta,
			       value);
	if (err)
		free(value);
	return err;
}

/* Parse a range answer; see json.h. */
int etcd_parse_range(const char *json, size_t len, const char *root,
		     const char *key, struct topo_listing *out,
		     struct etcd_page *page)
{
	const char *what = *key ? key : "/";
	json_t *doc, *kvs;
	size_t i;
	int err;

	etcd_page_clear(page);
	err = load_object(json, len, what, &doc);
	if (err)
		return err;
	if ((err = get_revision(doc, &page->revision, what)) ||
	    (err = get_bool(doc, "more", &page->more, what)) ||
	    (err = get_int64(doc, "count", &page->count, what)) ||
	    (err = get_typed(doc, "kvs", JSON_ARRAY, &kvs, what)))
		goto out;
	for (i = 0; kvs && i < json_array_size(kvs); i++) {
		struct topo_meta meta;
		unsigned char *k, *value;
		size_t klen;

		err = parse_kv(json_array_get(kvs, i), what, &k, &klen, &meta,
			       &value);
		if (err)
			goto out;
		err = add_entry(out, root, key, k, klen, &meta, value);
		if (i == 0 && !err) {
			page->first_key = malloc(klen + 1);
			if (page->first_key) {
				memcpy(page->first_key, k, klen + 1);
				page->first_len = klen;
			} else {
				err = -ENOMEM;
			}
		}
		page->nkeys++;
		free(page->last_key);
		page->last_key = k;
		page->last_len = klen;
		if (err)
			goto out;
	}
out:
	json_decref(doc);
	return err;
}

/* One RangeResponse inside a txn: whether the key exists, and its meta. */
static int parse_txn_range(json_t *r, const char *what,
			   struct etcd_txn_step *step)
{
	json_t *kvs;
	unsigned char *k;
	size_t klen;
	int err = get_typed(r, "kvs", JSON_ARRAY, &kvs, what);

	step->kind = ETCD_RESP_RANGE;
	if (err || !kvs || json_array_size(kvs) == 0)
		return err;
	err = parse_kv(json_array_get(kvs, 0), what, &k, &klen, &step->meta,
		       NULL);
	if (err)
		return err;
	free(k);
	step->found = true;
	return 0;
}

/* One ResponseOp of a txn answer into *step. 0 or -EIO. */
static int parse_txn_step(json_t *op, const char *what,
			  struct etcd_txn_step *step)
{
	json_t *r;
	int err;

	memset(step, 0, sizeof(*step));
	if (!json_is_object(op))
		return bad_answer(what, "a txn response is not an object");
	if ((err = get_typed(op, "response_range", JSON_OBJECT, &r, what)))
		return err;
	if (r)
		return parse_txn_range(r, what, step);
	if ((err = get_typed(op, "response_put", JSON_OBJECT, &r, what)))
		return err;
	if (r) {
		step->kind = ETCD_RESP_PUT;
		return 0;
	}
	if ((err =
		 get_typed(op, "response_delete_range", JSON_OBJECT, &r, what)))
		return err;
	if (r) {
		step->kind = ETCD_RESP_DELETE;
		return get_int64(r, "deleted", &step->deleted, what);
	}
	return bad_answer(what, "unknown txn response");
}

/* Parse a txn answer; see json.h. */
int etcd_parse_txn(const char *json, size_t len, const char *what,
		   int64_t *revision, bool *succeeded,
		   struct etcd_txn_step *steps, size_t max, size_t *count)
{
	json_t *doc, *resp;
	size_t i, n;
	int err;

	*count = 0;
	err = load_object(json, len, what, &doc);
	if (err)
		return err;
	if ((err = get_revision(doc, revision, what)) ||
	    (err = get_bool(doc, "succeeded", succeeded, what)) ||
	    (err = get_typed(doc, "responses", JSON_ARRAY, &resp, what)))
		goto out;
	n = resp ? json_array_size(resp) : 0;
	if (n > max) {
		err = bad_answer(what, "too many txn responses");
		goto out;
	}
	for (i = 0; i < n; i++) {
		err = parse_txn_step(json_array_get(resp, i), what, &steps[i]);
		if (err)
			goto out;
	}
	*count = n;
out:
	json_decref(doc);
	return err;
}

/* One RangeResponse of a read-only txn into *step and *value (the value
 * of its single key, owned). 0, -EIO or -ENOMEM. */
static int parse_read(json_t *op, const char *what, struct etcd_txn_step *step,
		      unsigned char **value)
{
	json_t *r, *kvs;
	unsigned char *k;
	size_t klen;
	int err;

	memset(step, 0, sizeof(*step));
	step->kind = ETCD_RESP_RANGE;
	if (!json_is_object(op))
		return bad_answer(what, "a txn response is not an object");
	if ((err = get_typed(op, "response_range", JSON_OBJECT, &r, what)) ||
	    (err = r ? get_typed(r, "kvs", JSON_ARRAY, &kvs, what)
		     : bad_answer(what, "a txn response is not a range")))
		return err;
	if (!kvs || json_array_size(kvs) == 0)
		return 0;
	if (json_array_size(kvs) > 1)
		return bad_answer(what, "several keys in a one-key range");
	err = parse_kv(json_array_get(kvs, 0), what, &k, &klen, &step->meta,
		       value);
	if (err)
		return err;
	free(k);
	step->found = true;
	return 0;
}

/* Parse a txn of ranges with values; see json.h. */
int etcd_parse_txn_values(const char *json, size_t len, const char *what,
			  struct etcd_txn_step *steps, unsigned char **values,
			  size_t n)
{
	json_t *doc, *resp;
	int64_t rev;
	bool ok;
	size_t i = 0;
	int err;

	memset(values, 0, n * sizeof(*values));
	err = load_object(json, len, what, &doc);
	if (err)
		return err;
	if ((err = get_revision(doc, &rev, what)) ||
	    (err = get_bool(doc, "succeeded", &ok, what)) ||
	    (err = get_typed(doc, "responses", JSON_ARRAY, &resp, what)))
		goto out;
	if (!ok || json_array_size(resp) != n) {
		err = bad_answer(what, "not one range per key");
		goto out;
	}
	for (i = 0; i < n && !err; i++)
		err = parse_read(json_array_get(resp, i), what, &steps[i],
				 &values[i]);
out:
	for (size_t j = 0; err && j < i; j++) {
		free(values[j]);
		values[j] = NULL;
	}
	json_decref(doc);
	return err;
}

/* Parse a status answer; see json.h. */
int etcd_parse_status(const char *json, size_t len, uint64_t *db_size)
{
	json_t *doc;
	int64_t rev, size;
	int err = load_object(json, len, "status", &doc);

	if (err)
		return err;
	if ((err = get_revision(doc, &rev, "status")) ||
	    (err = get_int64(doc, "dbSize", &size, "status")))
		goto out;
	if (size < 0) {
		err = bad_answer("status", "negative dbSize");
		goto out;
	}
	*db_size = (uint64_t)size;
out:
	json_decref(doc);
	return err;
}

/* Parse any answer's header revision; see json.h. */
int etcd_parse_revision(const char *json, size_t len, const char *what,
			int64_t *revision)
{
	json_t *doc;
	int err = load_object(json, len, what, &doc);

	if (err)
		return err;
	err = get_revision(doc, revision, what);
	json_decref(doc);
	return err;
}

/* Free what a watch response owns. */
void etcd_watch_resp_clear(struct etcd_watch_resp *r)
{
	for (size_t i = 0; i < r->count; i++)
		free(r->events[i].path);
	free(r->events);
	free(r->reason);
	memset(r, 0, sizeof(*r));
}

/* An event's type: "PUT" (or absent, or 0) or "DELETE" (or 1). 0 or -EIO. */
static int event_type(json_t *ev, bool *deleted)
{
	json_t *t = json_object_get(ev, "type");

	*deleted = false;
	if (!t || (json_is_string(t) && !strcmp(json_string_value(t), "PUT")) ||
	    (json_is_integer(t) && json_integer_value(t) == 0))
		return 0;
	if ((json_is_string(t) && !strcmp(json_string_value(t), "DELETE")) ||
	    (json_is_integer(t) && json_integer_value(t) == 1)) {
		*deleted = true;
		return 0;
	}
	return bad_answer("watch", "unknown event type");
}

/* Append one event to r if its key k[0..klen) lies under root. 0 or
 * -ENOMEM. */
static int add_event(struct etcd_watch_resp *r, const char *root,
		     const unsigned char *k, size_t klen, int64_t revision,
		     bool deleted)
{
	size_t rootlen = strlen(root), skip;
	struct etcd_event *ev;

	if (!in_subtree(k, klen, root))
		return 0;
	if (memchr(k, '\0', klen)) {
		topo_warn("etcd: key under %s holds a NUL byte; not shown",
			  *root ? root : "/");
		return 0;
	}
	skip = klen > rootlen ? rootlen + 1 : klen;
	ev = &r->events[r->count];
	ev->path = strndup((const char *)k + skip, klen - skip);
	if (!ev->path)
		return -ENOMEM;
	ev->revision = revision;
	ev->deleted = deleted;
	r->count++;
	return 0;
}

/* One mvccpb.Event into r. 0, -EIO or -ENOMEM. */
static int parse_event(json_t *ev, const char *root, struct etcd_watch_resp *r)
{
	struct topo_meta meta;
	unsigned char *k;
	size_t klen;
	bool deleted;
	int err;

	if (!json_is_object(ev))
		return bad_answer("watch", "an event is not an object");
	if ((err = event_type(ev, &deleted)))
		return err;
	err = parse_kv(json_object_get(ev, "kv"), "watch", &k, &klen, &meta,
		       NULL);
	if (err)
		return err;
	if (meta.version > r->max_revision)
		r->max_revision = meta.version;
	err = add_event(r, root, k, klen, meta.version, deleted);
	free(k);
	return err;
}

/* A stream's error object: its errno (via etcd_errno, logged at LOG_DEBUG:
 * the watch reports it) and its message in r->reason. */
static int watch_error(json_t *doc, struct etcd_watch_resp *r)
{
	json_t *e = json_object_get(doc, "error");
	json_t *code = json_object_get(doc, "code");
	json_t *msg = json_object_get(doc, "message");

	if (json_is_object(e)) {
		code = json_object_get(e, "grpc_code");
		msg = json_object_get(e, "message");
	} else if (!json_is_string(msg)) {
		msg = e;
	}
	if (json_is_string(msg) &&
	    !(r->reason = strdup(json_string_value(msg))))
		return -ENOMEM;
	return etcd_errno(json_is_integer(code) ? (long)json_integer_value(code)
						: -1,
			  r->reason, NULL);
}

/* The fields of a WatchResponse, with its events. 0, -EIO or -ENOMEM. */
static int parse_watch_result(json_t *res, const char *root,
			      struct etcd_watch_resp *r)
{
	json_t *header, *evs, *reason;
	int err;

	if ((err = get_typed(res, "header", JSON_OBJECT, &header, "watch")) ||
	    (header &&
	     (err = get_int64(header, "revision", &r->revision, "watch"))) ||
	    (err = get_int64(res, "compact_revision", &r->compact_revision,
			     "watch")) ||
	    (err = get_bool(res, "created", &r->created, "watch")) ||
	    (err = get_bool(res, "canceled", &r->canceled, "watch")) ||
	    (err = get_typed(res, "cancel_reason", JSON_STRING, &reason,
			     "watch")) ||
	    (err = get_typed(res, "events", JSON_ARRAY, &evs, "watch")))
		return err;
	if (reason && !(r->reason = strdup(json_string_value(reason))))
		return -ENOMEM;
	if (!evs || json_array_size(evs) == 0)
		return 0;
	r->events = calloc(json_array_size(evs), sizeof(*r->events));
	if (!r->events)
		return -ENOMEM;
	for (size_t i = 0; i < json_array_size(evs); i++)
		if ((err = parse_event(json_array_get(evs, i), root, r)))
			return err;
	return 0;
}

/* Parse one watch stream object; see json.h. */
int etcd_parse_watch(const char *json, size_t len, const char *root,
		     struct etcd_watch_resp *r)
{
	json_t *doc, *res;
	int err;

	memset(r, 0, sizeof(*r));
	err = load_object(json, len, "watch", &doc);
	if (err)
		return err;
	res = json_object_get(doc, "result");
	if (json_is_object(res))
		err = parse_watch_result(res, root, r);
	else if (json_object_get(doc, "error"))
		err = watch_error(doc, r);
	else
		err = bad_answer("watch", "neither result nor error");
	json_decref(doc);
	if (err) {
		char *reason = r->reason;

		r->reason = NULL;
		etcd_watch_resp_clear(r);
		r->reason = reason;
	}
	return err;
}
