/*
 * view.h - what `read` returns and `write` accepts, chosen per mount
 * (SPEC 8): the stored bytes (-o view=raw), or, with -o view=json, Vitess
 * records (chosen by file name, proto.c) as JSON (view_json_*.c). Every other
 * file stays raw. A stored value that is not a valid record reads raw (and
 * is logged once per path and version), so nothing is hidden.
 */
#ifndef TOPOFS_VIEW_H
#define TOPOFS_VIEW_H

#include <stdbool.h>
#include <stddef.h>

#include "proto.h"

struct topofs;

/* The record type shown as JSON for store path `path`, or NULL (raw). */
const struct proto_message *view_type(const struct topofs *t, const char *path,
				      bool is_data);

/* What a reader of `path` sees for the stored raw[0..len): *out (malloc'd,
 * caller frees; may be NULL when *outlen is 0) and, in *type, the record
 * type it is JSON of (NULL: raw). 0 or -ENOMEM. */
int view_out(const struct topofs *t, const char *path, bool is_data,
	     const unsigned char *raw, size_t len, unsigned char **out,
	     size_t *outlen, const struct proto_message **type);

#endif
