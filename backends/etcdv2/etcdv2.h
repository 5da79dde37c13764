/*
 * etcdv2.h - the etcd v2 keys API backend's own helpers: URLs and form
 * bodies (v2util.c) and the change notices by long poll (v2watch.c).
 */
#ifndef TOPOFS_ETCDV2_H
#define TOPOFS_ETCDV2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../etcd/http.h"
#include "topofs/backend.h"

/* The API path of the key for `path` below `root` (the root key without
 * trailing slash, "" for "/"), each byte other than [A-Za-z0-9-._~/]
 * percent-encoded, and "?query" if query is not NULL: "/v2/keys/r/a%20b".
 * Newly allocated. 0 or -ENOMEM. */
int etcdv2_key_api(const char *root, const char *path, const char *query,
		   char **out);

/* The form body "value=..." for v[0..len) (every byte but [A-Za-z0-9-._~]
 * percent-encoded), newly allocated, *outlen bytes. 0 or -ENOMEM. */
int etcdv2_form_value(const void *v, size_t len, char **out, size_t *outlen);

/* Whether a segment of path begins with '_': etcd v2 hides such keys from
 * every listing (its "hidden" nodes). */
bool etcdv2_hidden(const char *path);

/* The long poll (?wait=true&recursive=true&waitIndex=N) on the root. */
struct etcdv2_watch;

/* Start delivering every change below `root` from index `from` on to
 * fn(arg, ...), from a thread of its own, over http (borrowed: it must
 * outlive the watch). 0 and *out, or a negative errno. */
int etcdv2_watch_start(struct etcd_http *http, const char *root, int64_t from,
		       topo_change_fn fn, void *arg, struct etcdv2_watch **out);

/* Stop the thread (within about a second) and free w. NULL is allowed. */
void etcdv2_watch_stop(struct etcdv2_watch *w);

#endif
