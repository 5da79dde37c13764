/*
 * view_wire.c - the protobuf wire format under the JSON view (see
 * view_wire.h): reading and writing fields, which fields a message table
 * describes, and the byte buffer and error path both directions share.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view_wire.h"

/* ---- growable byte buffer ---- */

void vw_buf_put(struct buf *b, const void *d, size_t n)
{
	if (b->nomem || n == 0)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		unsigned char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->nomem = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
	b->p[b->len] = 0;
}

void vw_buf_puts(struct buf *b, const char *s)
{
	vw_buf_put(b, s, strlen(s));
}

void vw_buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		vw_buf_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : 0);
}

/* ---- error context: the path of the value at hand ---- */

void vw_ctx_init(struct ctx *c, const struct proto_message *m, char *err,
		 size_t errlen)
{
	const char *dot = strrchr(m->name, '.');

	c->plen = 0;
	c->path[0] = 0;
	snprintf(c->path, sizeof(c->path), "%s", dot ? dot + 1 : m->name);
	c->plen = strlen(c->path);
	c->err = err;
	c->errlen = errlen;
	c->ints_as_real = false;
	if (err && errlen)
		err[0] = 0;
}

size_t path_push(struct ctx *c, const char *fmt, ...)
{
	size_t old = c->plen;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(c->path + old, sizeof(c->path) - old, fmt, ap);
	va_end(ap);
	if (n > 0)
		c->plen = old + (size_t)n < sizeof(c->path)
			      ? old + (size_t)n
			      : sizeof(c->path) - 1;
	return old;
}

void path_pop(struct ctx *c, size_t old)
{
	c->plen = old;
	c->path[old] = 0;
}

int vw_fail(struct ctx *c, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->err && c->errlen)
		snprintf(c->err, c->errlen, "%s: %s", c->path, msg);
	return -EINVAL;
}

/* ---- wire format ---- */

int vw_read_varint(const unsigned char **p, const unsigned char *end,
		   uint64_t *v)
{
	uint64_t r = 0;

	for (int shift = 0; shift < 70 && *p < end; shift += 7) {
		unsigned char b = *(*p)++;

		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return -1;
}

int vw_read_fixed(const unsigned char **p, const unsigned char *end, int n,
		  uint64_t *v)
{
	if (end - *p < n)
		return -1;
	*v = 0;
	for (int i = n - 1; i >= 0; i--)
		*v = *v << 8 | (*p)[i];
	*p += n;
	return 0;
}

static int wire_next_depth(const unsigned char **p, const unsigned char *end,
			   struct wf *f, int depth);

/* Skip a group's contents up to its end-group tag for number num. */
static int skip_group(const unsigned char **p, const unsigned char *end,
		      uint32_t num, int depth)
{
	struct wf g;
	int r;

	if (depth > 64)
		return -1;
	while ((r = wire_next_depth(p, end, &g, depth + 1)) == 1)
		if (g.wt == WT_EGROUP)
			return g.num == num ? 0 : -1;
	return -1;
}

/* Read the value of a field of wire type f->wt. 0, or -1 if malformed. */
static int read_value(const unsigned char **p, const unsigned char *end,
		      struct wf *f, int depth)
{
	switch (f->wt) {
	case WT_VARINT:
		return vw_read_varint(p, end, &f->v);
	case WT_I64:
		return vw_read_fixed(p, end, 8, &f->v);
	case WT_I32:
		return vw_read_fixed(p, end, 4, &f->v);
	case WT_LEN:
		if (vw_read_varint(p, end, &f->v) ||
		    f->v > (uint64_t)(end - *p))
			return -1;
		f->data = *p;
		f->len = (size_t)f->v;
		*p += f->len;
		return 0;
	case WT_SGROUP:
		return skip_group(p, end, f->num, depth);
	case WT_EGROUP:
		return 0;
	}
	return -1;
}

/* Read the next field at *p: 1, 0 at end, -1 if malformed. */
static int wire_next_depth(const unsigned char **p, const unsigned char *end,
			   struct wf *f, int depth)
{
	uint64_t tag;

	if (*p >= end)
		return 0;
	memset(f, 0, sizeof(*f));
	f->start = *p;
	if (vw_read_varint(p, end, &tag) || tag >> 3 == 0 ||
	    tag >> 3 > 0x1fffffff)
		return -1;
	f->num = (uint32_t)(tag >> 3);
	f->wt = (unsigned)(tag & 7);
	if (read_value(p, end, f, depth))
		return -1;
	f->end = *p;
	return 1;
}

int vw_wire_next(const unsigned char **p, const unsigned char *end,
		 struct wf *f)
{
	int r = wire_next_depth(p, end, f, 0);

	return r == 1 && f->wt == WT_EGROUP ? -1 : r;
}

bool vw_wire_valid(const unsigned char *w, size_t n)
{
	const unsigned char *p = w;
	struct wf f;
	int r;

	while ((r = vw_wire_next(&p, w + n, &f)) == 1)
		;
	return r == 0;
}

void vw_put_varint(struct buf *b, uint64_t v)
{
	unsigned char tmp[10];
	size_t n = 0;

	do {
		tmp[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	vw_buf_put(b, tmp, n);
}

void vw_put_fixed(struct buf *b, uint64_t v, int n)
{
	unsigned char tmp[8];

	for (int i = 0; i < n; i++)
		tmp[i] = (unsigned char)(v >> (8 * i));
	vw_buf_put(b, tmp, (size_t)n);
}

void vw_put_tag(struct buf *b, uint32_t num, unsigned wt)
{
	vw_put_varint(b, (uint64_t)num << 3 | wt);
}

void vw_put_len(struct buf *b, uint32_t num, const void *d, size_t n)
{
	vw_put_tag(b, num, WT_LEN);
	vw_put_varint(b, n);
	vw_buf_put(b, d, n);
}

unsigned vw_type_wt(enum proto_type t)
{
	switch (t) {
	case PROTO_DOUBLE:
		return WT_I64;
	case PROTO_FLOAT:
		return WT_I32;
	case PROTO_STRING:
	case PROTO_BYTES:
	case PROTO_MESSAGE:
		return WT_LEN;
	default:
		return WT_VARINT;
	}
}

bool vw_packable(enum proto_type t)
{
	return vw_type_wt(t) != WT_LEN;
}

bool vw_wt_fits(const struct proto_field *f, unsigned wt)
{
	return wt == vw_type_wt(f->type) ||
	       ((f->flags & PROTO_REPEATED) && vw_packable(f->type) &&
		wt == WT_LEN);
}

/* True if d[0..n) is a map entry of e: only key = 1 and value = 2, of the
 * expected wire types. */
static bool entry_ok(const struct proto_message *e, const unsigned char *d,
		     size_t n)
{
	const unsigned char *p = d;
	struct wf g;
	int r;

	while ((r = vw_wire_next(&p, d + n, &g)) == 1) {
		const struct proto_field *f = proto_field_by_number(e, g.num);

		if (!f || g.wt != vw_type_wt(f->type))
			return false;
	}
	return r == 0;
}

bool vw_is_unknown_entry(const struct proto_field *f, const struct wf *g)
{
	const unsigned char *p;
	struct wf k = {0};

	if (g->wt != WT_LEN || !entry_ok(f->message, g->data, g->len))
		return true;
	p = g->data;
	while (vw_wire_next(&p, g->data + g->len, &k) == 1)
		if (k.num == 1 && k.len && memchr(k.data, 0, k.len))
			return true;
	return false;
}

bool vw_is_unknown(const struct proto_message *m, const struct wf *g)
{
	const struct proto_field *f = proto_field_by_number(m, g->num);

	if (!f || !vw_wt_fits(f, g->wt))
		return true;
	return (f->flags & PROTO_MAP) && vw_is_unknown_entry(f, g);
}
