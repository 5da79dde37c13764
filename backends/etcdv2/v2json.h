/*
 * v2json.h - parsing etcd's v2 keys API answers (/v2/keys). Pure functions
 * on a string, so the unit tests can feed them crafted answers.
 *
 * A node is {"key": "/a/b", "dir": true, "value": "...", "nodes": [...],
 * "modifiedIndex": N, "createdIndex": N, "ttl": N, "expiration": "..."};
 * an error is {"errorCode": N, "message": "...", "cause": "...",
 * "index": N}. Anything that does not fit (invalid JSON, wrong types, a
 * key outside the root) gives -EIO and one log line naming `what`.
 */
#ifndef TOPOFS_ETCDV2_JSON_H
#define TOPOFS_ETCDV2_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "topofs/backend.h"

/* etcd v2 error codes (etcd's error package) that topofs tells apart. */
#define V2_KEY_NOT_FOUND 100
#define V2_TEST_FAILED 101
#define V2_NOT_FILE 102
#define V2_NOT_DIR 104
#define V2_NODE_EXIST 105
#define V2_ROOT_RONLY 107
#define V2_DIR_NOT_EMPTY 108
#define V2_UNAUTHORIZED 110
#define V2_EVENT_INDEX_CLEARED 401

/* Map an etcd v2 errorCode to a negative errno (-EAGAIN: the watch index
 * was cleared). `message` and `cause` may be NULL. Logs one line naming
 * `what` for the unexpected ones (only at LOG_DEBUG if `what` is NULL). */
int etcdv2_errno(long code, const char *message, const char *cause,
		 const char *what);

/* Check an HTTP answer: 200 and 201 are 0; an error object gives its errno
 * (etcdv2_errno) and, if index is not NULL, *index its "index" (-1 when
 * absent); anything else -EIO. */
int etcdv2_parse_error(long status, const char *json, size_t len,
		       const char *what, int64_t *index);

/* Parse a GET answer {"action": "get", "node": {...}} and append to `out`
 * the node and every node below it, with paths relative to `root` (the
 * root key without trailing slash, "" for "/"). A directory is an entry
 * with real_dir, has_data and size 0 (no value); a file's value is its
 * bytes (JSON "\u0000" included); a key with a TTL is ephemeral (lease:
 * the TTL in seconds). Keys holding a NUL are skipped with a warning. */
int etcdv2_parse_nodes(const char *json, size_t len, const char *root,
		       const char *what, struct topo_listing *out);

/* The new metadata from a write answer ({"action": "set", "node": ...}). */
int etcdv2_parse_write(const char *json, size_t len, const char *what,
		       struct topo_meta *meta);

/* One change from a wait=true answer. */
struct etcdv2_event {
	char *path;    /* relative to the root, owned; NULL: not below it */
	int64_t index; /* the change's index (node.modifiedIndex) */
	bool deleted;  /* delete, expire, compareAndDelete */
	bool dir;
};

/* Parse a wait=true answer {"action": ..., "node": {...}}. 0 or -EIO. */
int etcdv2_parse_event(const char *json, size_t len, const char *root,
		       struct etcdv2_event *ev);

/* Whether v[0..len) can be stored through the v2 API unchanged: its JSON
 * answers carry values as UTF-8 strings (etcd replaces invalid bytes by
 * U+FFFD), and topofs keeps them text: valid UTF-8 without NUL. */
bool etcdv2_value_ok(const void *v, size_t len);

#endif
