/*
 * json.h - parsing etcd's v3 JSON gateway answers. Pure functions on a
 * string, so the unit tests can feed them crafted answers.
 *
 * proto3 JSON leaves out every zero, false or empty field; int64 fields come
 * as strings. Anything else that does not fit (invalid JSON, bad base64,
 * wrong types) gives -EIO and one log line naming `what` (the key).
 */
#ifndef TOPOFS_ETCD_JSON_H
#define TOPOFS_ETCD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "topofs/backend.h"

/* Map an etcd (gRPC status) error to a negative errno: the one place where
 * the store's errors become errnos. `message` may be NULL. Logs one line
 * naming `what`, or only at LOG_DEBUG when `what` is NULL (the caller
 * reports the failure itself, as open() does). */
int etcd_errno(long code, const char *message, const char *what);

/* Whether an etcd (gRPC status) error means "try again": the request was
 * not served now but may be a moment later or on another member (a leader
 * election, an overloaded or stopping member, a timeout). Errors that will
 * not change by trying again (invalid or too large requests, permission
 * denied, compacted revisions) and unknown ones are final. `message` may be
 * NULL. Pure: no log. */
bool etcd_error_retryable(long code, const char *message);

/* Whether an HTTP answer asks to try again: an error object that
 * etcd_error_retryable() calls so, or, without one, a status of 429, 502,
 * 503 or 504. A 200 never does. Pure: no log. */
bool etcd_reply_retryable(long status, const char *json, size_t len);

/* Check an HTTP answer: an error object ({"error","code","message"}) or a
 * status other than 200 gives its errno (via etcd_errno, `what` as there),
 * else 0. */
int etcd_parse_reply_error(long status, const char *json, size_t len,
			   const char *what);

/* One page of a range answer. */
struct etcd_page {
	int64_t revision;	 /* header revision */
	bool more;		 /* more keys past the limit */
	unsigned char *last_key; /* last key of the page (any, even filtered
				    out), owned, NUL-terminated; NULL if none */
	size_t last_len;
	unsigned char *first_key; /* its first key, likewise */
	size_t first_len;
	size_t nkeys;  /* keys in the page, filtered out or not */
	int64_t count; /* keys in the range asked, given or not (0: not said) */
};

/* Free what a page owns. */
void etcd_page_clear(struct etcd_page *page);

/* Parse a /v3/kv/range answer and append to `out` the keys that are `key`
 * itself or lie below `key + "/"`, with paths relative to `root` (the root
 * key, "" for "/"; `key` starts with root). Keys holding a NUL byte are
 * skipped with a warning. `page` is filled (cleared first). */
int etcd_parse_range(const char *json, size_t len, const char *root,
		     const char *key, struct topo_listing *out,
		     struct etcd_page *page);

/* What one txn response said. */
enum etcd_resp_kind {
	ETCD_RESP_NONE,
	ETCD_RESP_RANGE,
	ETCD_RESP_PUT,
	ETCD_RESP_DELETE,
};

struct etcd_txn_step {
	enum etcd_resp_kind kind;
	bool found;	       /* range: a key came back */
	struct topo_meta meta; /* range: the first key's metadata */
	int64_t deleted;       /* delete: how many keys went */
};

/* Parse a /v3/kv/txn answer: the header revision, whether the compares
 * held, and the responses into steps[0..max) (*count of them; more than max
 * is -EIO). */
int etcd_parse_txn(const char *json, size_t len, const char *what,
		   int64_t *revision, bool *succeeded,
		   struct etcd_txn_step *steps, size_t max, size_t *count);

/* Parse the answer of a txn without compares whose responses are n ranges
 * of one key each, with values (a read of n keys at one revision):
 * steps[i] (kind ETCD_RESP_RANGE, found, meta) and values[i] (meta.size
 * bytes, owned, NULL if absent or empty) for the i-th range. 0, or -EIO
 * (logged, naming `what`) or -ENOMEM with every values[i] NULL. */
int etcd_parse_txn_values(const char *json, size_t len, const char *what,
			  struct etcd_txn_step *steps, unsigned char **values,
			  size_t n);

/* Parse a /v3/maintenance/status answer: the database size in bytes. */
int etcd_parse_status(const char *json, size_t len, uint64_t *db_size);

/* The header revision of any answer (e.g. a range), naming `what`. */
int etcd_parse_revision(const char *json, size_t len, const char *what,
			int64_t *revision);

/* One change of a watch response. */
struct etcd_event {
	char *path;	  /* relative to the root, owned */
	int64_t revision; /* the change's revision (kv.mod_revision) */
	bool deleted;
};

/* One response of a /v3/watch stream. */
struct etcd_watch_resp {
	int64_t revision;	  /* header revision; 0 when not given */
	int64_t compact_revision; /* > 0: the start revision was compacted */
	bool created, canceled;
	char *reason;		   /* cancel_reason, owned; NULL if none */
	struct etcd_event *events; /* in the store's order, owned */
	size_t count;
	int64_t max_revision; /* of every event, dropped ones too; 0: none */
};

/* Free what a watch response owns. */
void etcd_watch_resp_clear(struct etcd_watch_resp *r);

/* Parse one object of a watch stream, {"result": WatchResponse}, keeping the
 * events on `root` itself and below `root + "/"` (the root key, "" for "/")
 * with paths relative to it; other keys and keys holding a NUL are dropped.
 * An event without "type" is a PUT (proto3 default). An error object
 * ({"error", "code", "message"} or {"error": {"grpc_code", "message"}})
 * gives its errno via etcd_errno (-EAGAIN: compacted) with its message in
 * r->reason; anything else -EIO (logged). r is cleared first; after an
 * error it holds no events. */
int etcd_parse_watch(const char *json, size_t len, const char *root,
		     struct etcd_watch_resp *r);

#endif
