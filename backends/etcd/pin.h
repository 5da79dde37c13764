/*
 * pin.h - point-in-time mounts of etcd v3: checking a revision given with
 * -o revision=N, or pinning the current one for -o snapshot, before
 * anything is mounted.
 */
#ifndef TOPOFS_ETCD_PIN_H
#define TOPOFS_ETCD_PIN_H

#include <stdbool.h>
#include <stdint.h>

#include "http.h"

/* The store's current revision (the header of a status answer). 0 or a
 * negative errno (logged naming `what`; only at LOG_DEBUG if NULL). */
int etcd_current_revision(struct etcd_http *h, const char *what, int64_t *rev);

/* The revision to pin: `want` (> 0) if etcd still has it, or with
 * `snapshot` the current one; 0 (nothing pinned) if neither is asked.
 * `root` is the store's root key: the check reads below it (all a user's
 * role may allow). -EINVAL with one line in errbuf for a compacted or
 * future revision, -EIO (or the store's errno) with the cause in errbuf
 * otherwise. */
int etcd_pin(struct etcd_http *h, const char *servers, const char *root,
	     int64_t want, bool snapshot, int64_t *pinned, char *errbuf,
	     size_t errlen);

#endif
