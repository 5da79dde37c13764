/*
 * kv_internal.h - what the etcd v3 backend's own files (kv.c, kv_read.c,
 * kv_txn.c) share: the store, etcd's limits, and the functions one file
 * calls in another. Internal to backends/etcd/; each is described in full
 * where it is defined.
 */
#ifndef TOPOFS_ETCD_KV_INTERNAL_H
#define TOPOFS_ETCD_KV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "http.h"
#include "json.h"
#include "watch.h"
#include "topofs/backend.h"

/*
 * etcd's default --max-request-bytes is 1572864 for the whole request
 * (key, value and protobuf framing), so a value may use all of it but 1 KiB
 * for the key and framing. The JSON gateway's base64 does not count: the
 * limit applies to the gRPC message it forwards.
 */
#define ETCD_MAX_REQUEST 1572864
#define ETCD_MAX_VALUE (ETCD_MAX_REQUEST - 1024)
#define ETCD_MAX_TXN_OPS 128 /* default --max-txn-ops */

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

/* kv.c */

/* The key for a relative path, newly allocated. 0 or -ENOMEM. */
int etcd_make_key(const struct topo_store *s, const char *path, char **key);
/* Set obj[name] to the base64 of p[0..n). 0 or -ENOMEM. */
int etcd_set_bytes(json_t *obj, const char *name, const void *p, size_t n);
/* Set obj[name] to an int64 as proto3 JSON writes it. 0 or -ENOMEM. */
int etcd_set_int64(json_t *obj, const char *name, int64_t v);
/* POST req to api and check the answer for an etcd error: 0 and *reply. */
int etcd_call(struct topo_store *s, const char *api, json_t *req,
	      long long deadline, bool *uncertain, const char *what,
	      struct etcd_reply *reply);

/* kv_read.c */

/* One range request [start, end), parsed into out/page. 0 or -errno. */
int etcd_range_page(struct topo_store *s, const char *key, const char *start,
		    size_t startlen, const char *end, size_t endlen,
		    int64_t rev, int64_t limit, bool keys_only,
		    struct topo_listing *out, struct etcd_page *page);
/* Read one key into a one-entry listing (empty if absent). 0 or -errno. */
int etcd_read_key(struct topo_store *s, const char *key, bool keys_only,
		  struct topo_listing *l);
/* list: see backend.h. */
int etcd_list(struct topo_store *s, const char *path, struct topo_listing *out);
/* get: see backend.h. */
int etcd_get(struct topo_store *s, const char *path, struct topo_entry *out);

/* kv_txn.c */

/* put: see backend.h. */
int etcd_put(struct topo_store *s, const char *path, const void *value,
	     size_t len, int64_t expect, struct topo_meta *meta);
/* del: see backend.h. */
int etcd_del(struct topo_store *s, const char *path, int64_t expect);
/* multi: see backend.h. */
int etcd_multi(struct topo_store *s, const struct topo_op *ops, size_t n);

#endif
