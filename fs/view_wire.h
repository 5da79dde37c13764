/*
 * view_wire.h - what the two directions of the JSON view (view_json.h)
 * share, for view_json_decode.c and view_json_encode.c only: a growable
 * byte buffer, the error path ("Shard.primary_alias.uid: ..."), and the
 * protobuf wire format (view_wire.c): reading and writing fields, and which
 * fields a message table of proto.h describes.
 */
#ifndef TOPOFS_VIEW_WIRE_H
#define TOPOFS_VIEW_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* ---- growable byte buffer ---- */

struct buf {
	unsigned char *p;
	size_t len, cap;
	bool nomem;
};

/* Append n bytes of d to b; on failure set b->nomem and drop the bytes. */
void vw_buf_put(struct buf *b, const void *d, size_t n);

/* Append NUL-terminated s to b. */
void vw_buf_puts(struct buf *b, const char *s);

/* Append printf-formatted text (short: under 64 bytes) to b. */
void vw_buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- error context: the path of the value at hand ---- */

struct ctx {
	char path[512];
	size_t plen;
	char *err;
	size_t errlen;
	bool ints_as_real; /* JSON read with JSON_DECODE_INT_AS_REAL */
};

/* Start the path with the short name of m ("topodata.Shard" -> "Shard"). */
void vw_ctx_init(struct ctx *c, const struct proto_message *m, char *err,
		 size_t errlen);

/* Append a formatted segment to the path; returns the length to pop to. */
size_t path_push(struct ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Cut the path back to length old. */
void path_pop(struct ctx *c, size_t old);

/* Write "<path>: <reason>" to the error buffer; returns -EINVAL. */
int vw_fail(struct ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- wire format ---- */

enum {
	WT_VARINT = 0,
	WT_I64 = 1,
	WT_LEN = 2,
	WT_SGROUP = 3,
	WT_EGROUP = 4,
	WT_I32 = 5
};

/* One field as read from the wire: its number, wire type, value (varint
 * or little-endian fixed), payload (WT_LEN) and raw extent, tag included. */
struct wf {
	uint32_t num;
	unsigned wt;
	uint64_t v;
	const unsigned char *data;
	size_t len;
	const unsigned char *start, *end;
};

/* Read a varint at *p (< end). 0, or -1 if truncated or over 10 bytes. */
int vw_read_varint(const unsigned char **p, const unsigned char *end,
		   uint64_t *v);

/* Read a little-endian fixed value of n bytes. 0, or -1 if truncated. */
int vw_read_fixed(const unsigned char **p, const unsigned char *end, int n,
		  uint64_t *v);

/* Read the next top-level field: 1, 0 at end, -1 if malformed. */
int vw_wire_next(const unsigned char **p, const unsigned char *end,
		 struct wf *f);

/* True if w[0..n) is a well-formed sequence of fields. */
bool vw_wire_valid(const unsigned char *w, size_t n);

/* Append a varint. */
void vw_put_varint(struct buf *b, uint64_t v);

/* Append a little-endian fixed value of n bytes. */
void vw_put_fixed(struct buf *b, uint64_t v, int n);

/* Append a tag. */
void vw_put_tag(struct buf *b, uint32_t num, unsigned wt);

/* Append a length-delimited field. */
void vw_put_len(struct buf *b, uint32_t num, const void *d, size_t n);

/* The wire type of a single value of type t. */
unsigned vw_type_wt(enum proto_type t);

/* True if values of type t are packed when repeated. */
bool vw_packable(enum proto_type t);

/* True if a wire field of type wt can hold (part of) field f. */
bool vw_wt_fits(const struct proto_field *f, unsigned wt);

/* True if wire field g of map field f is not an entry JSON can show: not
 * a well-formed entry, or a key with a NUL byte (JSON readers refuse it). */
bool vw_is_unknown_entry(const struct proto_field *f, const struct wf *g);

/* True if wire field g of a message m is not described by its table:
 * an unknown number, an unexpected wire type or an odd map entry. */
bool vw_is_unknown(const struct proto_message *m, const struct wf *g);

#endif
