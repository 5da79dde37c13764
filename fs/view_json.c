/*
 * view_json.c - the generic protobuf wire <-> JSON converter (see
 * view_json.h), driven by the message tables of proto.h.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../backends/etcd/base64.h"
#include "view_json.h"

/* ---- growable byte buffer ---- */

struct buf {
	unsigned char *p;
	size_t len, cap;
	bool nomem;
};

/* Append n bytes of d to b; on failure set b->nomem and drop the bytes. */
static void buf_put(struct buf *b, const void *d, size_t n)
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

/* Append NUL-terminated s to b. */
static void buf_puts(struct buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

/* Append printf-formatted text (short: under 64 bytes) to b. */
static void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		buf_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : 0);
}

/* ---- error context: the path of the value at hand ---- */

struct ctx {
	char path[512];
	size_t plen;
	char *err;
	size_t errlen;
	bool ints_as_real; /* JSON read with JSON_DECODE_INT_AS_REAL */
};

/* Start the path with the short name of m ("topodata.Shard" -> "Shard"). */
static void ctx_init(struct ctx *c, const struct proto_message *m, char *err,
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

/* Append a formatted segment to the path; returns the length to pop to. */
static size_t path_push(struct ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static size_t path_push(struct ctx *c, const char *fmt, ...)
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

/* Cut the path back to length old. */
static void path_pop(struct ctx *c, size_t old)
{
	c->plen = old;
	c->path[old] = 0;
}

/* Write "<path>: <reason>" to the error buffer; returns -EINVAL. */
static int fail(struct ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fail(struct ctx *c, const char *fmt, ...)
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
static int read_varint(const unsigned char **p, const unsigned char *end,
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

/* Read a little-endian fixed value of n bytes. 0, or -1 if truncated. */
static int read_fixed(const unsigned char **p, const unsigned char *end, int n,
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
		return read_varint(p, end, &f->v);
	case WT_I64:
		return read_fixed(p, end, 8, &f->v);
	case WT_I32:
		return read_fixed(p, end, 4, &f->v);
	case WT_LEN:
		if (read_varint(p, end, &f->v) || f->v > (uint64_t)(end - *p))
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
	if (read_varint(p, end, &tag) || tag >> 3 == 0 || tag >> 3 > 0x1fffffff)
		return -1;
	f->num = (uint32_t)(tag >> 3);
	f->wt = (unsigned)(tag & 7);
	if (read_value(p, end, f, depth))
		return -1;
	f->end = *p;
	return 1;
}

/* Read the next top-level field: 1, 0 at end, -1 if malformed. */
static int wire_next(const unsigned char **p, const unsigned char *end,
		     struct wf *f)
{
	int r = wire_next_depth(p, end, f, 0);

	return r == 1 && f->wt == WT_EGROUP ? -1 : r;
}

/* True if w[0..n) is a well-formed sequence of fields. */
static bool wire_valid(const unsigned char *w, size_t n)
{
	const unsigned char *p = w;
	struct wf f;
	int r;

	while ((r = wire_next(&p, w + n, &f)) == 1)
		;
	return r == 0;
}

/* Append a varint. */
static void put_varint(struct buf *b, uint64_t v)
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
	buf_put(b, tmp, n);
}

/* Append a little-endian fixed value of n bytes. */
static void put_fixed(struct buf *b, uint64_t v, int n)
{
	unsigned char tmp[8];

	for (int i = 0; i < n; i++)
		tmp[i] = (unsigned char)(v >> (8 * i));
	buf_put(b, tmp, (size_t)n);
}

/* Append a tag. */
static void put_tag(struct buf *b, uint32_t num, unsigned wt)
{
	put_varint(b, (uint64_t)num << 3 | wt);
}

/* Append a length-delimited field. */
static void put_len(struct buf *b, uint32_t num, const void *d, size_t n)
{
	put_tag(b, num, WT_LEN);
	put_varint(b, n);
	buf_put(b, d, n);
}

/* The wire type of a single value of type t. */
static unsigned type_wt(enum proto_type t)
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

/* True if values of type t are packed when repeated. */
static bool packable(enum proto_type t)
{
	return type_wt(t) != WT_LEN;
}

/* True if a wire field of type wt can hold (part of) field f. */
static bool wt_fits(const struct proto_field *f, unsigned wt)
{
	return wt == type_wt(f->type) || ((f->flags & PROTO_REPEATED) &&
					  packable(f->type) && wt == WT_LEN);
}

/* True if d[0..n) is a map entry of e: only key = 1 and value = 2, of the
 * expected wire types. */
static bool entry_ok(const struct proto_message *e, const unsigned char *d,
		     size_t n)
{
	const unsigned char *p = d;
	struct wf g;
	int r;

	while ((r = wire_next(&p, d + n, &g)) == 1) {
		const struct proto_field *f = proto_field_by_number(e, g.num);

		if (!f || g.wt != type_wt(f->type))
			return false;
	}
	return r == 0;
}

/* True if wire field g of map field f is not an entry JSON can show: not
 * a well-formed entry, or a key with a NUL byte (JSON readers refuse it). */
static bool is_unknown_entry(const struct proto_field *f, const struct wf *g)
{
	const unsigned char *p;
	struct wf k = {0};

	if (g->wt != WT_LEN || !entry_ok(f->message, g->data, g->len))
		return true;
	p = g->data;
	while (wire_next(&p, g->data + g->len, &k) == 1)
		if (k.num == 1 && k.len && memchr(k.data, 0, k.len))
			return true;
	return false;
}

/* True if wire field g of a message m is not described by its table:
 * an unknown number, an unexpected wire type or an odd map entry. */
static bool is_unknown(const struct proto_message *m, const struct wf *g)
{
	const struct proto_field *f = proto_field_by_number(m, g->num);

	if (!f || !wt_fits(f, g->wt))
		return true;
	return (f->flags & PROTO_MAP) && is_unknown_entry(f, g);
}

/* ---- decoding: wire -> JSON ---- */

struct dec {
	struct ctx c;
	struct buf out;
};

/* Append two spaces per level. */
static void indent(struct buf *b, int level)
{
	for (int i = 0; i < level; i++)
		buf_put(b, "  ", 2);
}

/* True if s[0..n) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i], len, min;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0)
			len = 2, min = 0x80, cp = c & 0x1f;
		else if ((c & 0xf0) == 0xe0)
			len = 3, min = 0x800, cp = c & 0x0f;
		else if ((c & 0xf8) == 0xf0)
			len = 4, min = 0x10000, cp = c & 0x07;
		else
			return false;
		if (n - i < len)
			return false;
		for (unsigned k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

/* Append s[0..n) as a JSON string (UTF-8 kept, controls escaped). */
static void put_json_string(struct buf *b, const unsigned char *s, size_t n)
{
	static const char special[] = "\"\\\b\f\n\r\t", letter[] = "\"\\bfnrt";

	buf_put(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		const char *q = s[i] ? strchr(special, s[i]) : NULL;

		if (q)
			buf_printf(b, "\\%c", letter[q - special]);
		else if (s[i] < 0x20)
			buf_printf(b, "\\u%04x", s[i]);
		else
			buf_put(b, &s[i], 1);
	}
	buf_put(b, "\"", 1);
}

/* The shortest significant digits of finite non-zero v (a float when
 * bits32) that read back as v, into digits; returns the decimal exponent
 * (v = d.ddd * 10^exp). */
static int shortest_digits(double v, bool bits32, char digits[24])
{
	char tmp[40], *e;
	int nd = 0;

	for (int prec = 0; prec < 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec, v);
		if (bits32 ? (float)strtod(tmp, NULL) == (float)v
			   : strtod(tmp, NULL) == v)
			break;
	}
	e = strchr(tmp, 'e');
	for (char *p = tmp; p < e; p++)
		if (*p >= '0' && *p <= '9')
			digits[nd++] = *p;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = 0;
	return atoi(e + 1);
}

/* Write finite non-zero v (a float when bits32) as the shortest text that
 * reads back the same, laid out as protobuf's JSON does (ES6 number text):
 * exponent form below 1e-6 and from 1e21, else plain decimals. */
static void fmt_float(char *out, size_t outlen, double v, bool bits32)
{
	static const char zeros[] = "0000000000000000000000";
	const char *sign = v < 0 ? "-" : "";
	double a = fabs(v);
	char d[24];
	int exp = shortest_digits(v, bits32, d), nd = (int)strlen(d);

	if (bits32 ? ((float)a < 1e-6f || (float)a >= 1e21f)
		   : (a < 1e-6 || a >= 1e21))
		snprintf(out, outlen, "%s%c%s%se%c%d", sign, d[0],
			 nd > 1 ? "." : "", d + 1, exp < 0 ? '-' : '+',
			 abs(exp));
	else if (exp < 0) /* 0.000ddd */
		snprintf(out, outlen, "%s0.%.*s%s", sign, -exp - 1, zeros, d);
	else if (nd <= exp + 1) /* ddd000 */
		snprintf(out, outlen, "%s%s%.*s", sign, d, exp + 1 - nd, zeros);
	else /* ddd.ddd */
		snprintf(out, outlen, "%s%.*s.%s", sign, exp + 1, d,
			 d + exp + 1);
}

/* Append a float/double value as JSON (number, or the special strings). */
static void put_float(struct buf *b, double v, bool bits32)
{
	char tmp[64];

	if (isnan(v))
		buf_puts(b, "\"NaN\"");
	else if (isinf(v))
		buf_puts(b, v < 0 ? "\"-Infinity\"" : "\"Infinity\"");
	else if (v == 0)
		buf_puts(b, signbit(v) ? "-0.0" : "0"); /* "-0" would read 0 */
	else {
		fmt_float(tmp, sizeof(tmp), v, bits32);
		buf_puts(b, tmp);
	}
}

/* The double held in the bits of a fixed64 / fixed32 value. */
static double bits_double(uint64_t v, bool bits32)
{
	if (bits32) {
		uint32_t u = (uint32_t)v;
		float f;

		memcpy(&f, &u, sizeof(f));
		return f;
	}
	double d;

	memcpy(&d, &v, sizeof(d));
	return d;
}

/* Append scalar value g of field f as JSON. 0 or -EINVAL (bad UTF-8). */
static int put_scalar(struct dec *d, const struct proto_field *f,
		      const struct wf *g)
{
	struct buf *b = &d->out;
	const char *name;
	char *s;

	switch (f->type) {
	case PROTO_INT32:
		buf_printf(b, "%d", (int32_t)(uint32_t)g->v);
		return 0;
	case PROTO_INT64:
		buf_printf(b, "\"%lld\"", (long long)(int64_t)g->v);
		return 0;
	case PROTO_UINT32:
		buf_printf(b, "%u", (uint32_t)g->v);
		return 0;
	case PROTO_UINT64:
		buf_printf(b, "\"%llu\"", (unsigned long long)g->v);
		return 0;
	case PROTO_BOOL:
		buf_puts(b, g->v ? "true" : "false");
		return 0;
	case PROTO_ENUM:
		name = proto_enum_name(f->enum_type, (int32_t)(uint32_t)g->v);
		if (name)
			buf_printf(b, "\"%s\"", name);
		else
			buf_printf(b, "%d", (int32_t)(uint32_t)g->v);
		return 0;
	case PROTO_DOUBLE:
	case PROTO_FLOAT:
		put_float(b, bits_double(g->v, f->type == PROTO_FLOAT),
			  f->type == PROTO_FLOAT);
		return 0;
	case PROTO_STRING:
		if (!utf8_valid(g->data, g->len))
			return fail(&d->c, "invalid UTF-8 in string");
		put_json_string(b, g->data, g->len);
		return 0;
	case PROTO_BYTES:
		if (etcd_b64_encode(g->data, g->len, &s))
			return -ENOMEM;
		buf_printf(b, "\"");
		buf_puts(b, s);
		buf_printf(b, "\"");
		free(s);
		return 0;
	case PROTO_MESSAGE:
		break;
	}
	return -EINVAL;
}

/* True if scalar value g is the default of field f's type. */
static bool scalar_default(const struct proto_field *f, const struct wf *g)
{
	switch (f->type) {
	case PROTO_INT32:
	case PROTO_UINT32:
	case PROTO_ENUM:
	case PROTO_FLOAT:
		return (uint32_t)g->v == 0;
	case PROTO_STRING:
	case PROTO_BYTES:
		return g->len == 0;
	default:
		return g->v == 0;
	}
}

static int dec_message(struct dec *d, const struct proto_message *m,
		       const unsigned char *w, size_t n, int level);

/* Start the next member `key` of an object at level (opening it first). */
static void member(struct dec *d, int level, int *count, const char *key,
		   size_t keylen)
{
	buf_puts(&d->out, (*count)++ ? ",\n" : "{\n");
	indent(&d->out, level + 1);
	put_json_string(&d->out, (const unsigned char *)key, keylen);
	buf_put(&d->out, ": ", 2);
}

/* Close an object at level with count members. */
static void close_object(struct dec *d, int level, int count)
{
	if (!count) {
		buf_puts(&d->out, "{}");
		return;
	}
	buf_puts(&d->out, "\n");
	indent(&d->out, level);
	buf_puts(&d->out, "}");
}

/* Append message field f of w[0..n) (all occurrences merged, as protobuf
 * does) as a JSON object at level. */
static int put_message(struct dec *d, const struct proto_field *f,
		       const unsigned char *w, size_t n, int level)
{
	const unsigned char *p = w, *one = NULL;
	struct buf all = {0};
	size_t onelen = 0, hits = 0;
	struct wf g;
	int r;

	while (wire_next(&p, w + n, &g) == 1) {
		if (g.num != f->number || g.wt != WT_LEN)
			continue;
		if (hits++ == 0)
			one = g.data, onelen = g.len;
		buf_put(&all, g.data, g.len);
	}
	if (all.nomem)
		return -ENOMEM;
	r = hits > 1 ? dec_message(d, f->message, all.p, all.len, level)
		     : dec_message(d, f->message, one, onelen, level);
	free(all.p);
	return r;
}

/* Find the last scalar occurrence of f in w[0..n). 1 if found, else 0. */
static int last_scalar(const struct proto_field *f, const unsigned char *w,
		       size_t n, struct wf *last)
{
	const unsigned char *p = w;
	struct wf g;
	int found = 0;

	memset(last, 0, sizeof(*last));
	while (wire_next(&p, w + n, &g) == 1) {
		if (g.num == f->number && g.wt == type_wt(f->type)) {
			*last = g;
			found = 1;
		}
	}
	return found;
}

/* True if w[0..n) has an occurrence of message field f. */
static bool has_message(const struct proto_field *f, const unsigned char *w,
			size_t n)
{
	struct wf g;

	return last_scalar(f, w, n, &g);
}

/* Member for singular field f, if set. */
static int dec_singular(struct dec *d, const struct proto_field *f,
			const unsigned char *w, size_t n, int level, int *count)
{
	struct wf g;

	if (f->type == PROTO_MESSAGE) {
		if (!has_message(f, w, n))
			return 0;
		member(d, level, count, f->name, strlen(f->name));
		return put_message(d, f, w, n, level + 1);
	}
	if (!last_scalar(f, w, n, &g))
		return 0;
	if (!(f->flags & PROTO_OPTIONAL) && scalar_default(f, &g))
		return 0;
	member(d, level, count, f->name, strlen(f->name));
	return put_scalar(d, f, &g);
}

/* Read one packed element of f at *p. 0, or -1 if malformed. */
static int packed_next(const struct proto_field *f, const unsigned char **p,
		       const unsigned char *end, struct wf *e)
{
	memset(e, 0, sizeof(*e));
	switch (type_wt(f->type)) {
	case WT_I64:
		return read_fixed(p, end, 8, &e->v);
	case WT_I32:
		return read_fixed(p, end, 4, &e->v);
	default:
		return read_varint(p, end, &e->v);
	}
}

/* Append element i of a repeated field (array opened lazily). */
static void element(struct dec *d, int level, size_t *count)
{
	buf_puts(&d->out, (*count)++ ? ",\n" : "[\n");
	indent(&d->out, level + 1);
}

/* Append one element of repeated field f held in wire field g. */
static int dec_element(struct dec *d, const struct proto_field *f,
		       const struct wf *g, int level, size_t *count)
{
	size_t old = path_push(&d->c, "[%zu]", *count);
	int r;

	element(d, level, count);
	if (f->type == PROTO_MESSAGE)
		r = dec_message(d, f->message, g->data, g->len, level + 1);
	else
		r = put_scalar(d, f, g);
	path_pop(&d->c, old);
	return r;
}

/* Append the elements of a packed run g of field f. */
static int dec_packed(struct dec *d, const struct proto_field *f,
		      const struct wf *g, int level, size_t *count)
{
	const unsigned char *p = g->data, *end = g->data + g->len;
	struct wf e;
	int r;

	while (p < end) {
		if (packed_next(f, &p, end, &e))
			return fail(&d->c, "malformed packed field");
		r = dec_element(d, f, &e, level, count);
		if (r)
			return r;
	}
	return 0;
}

/* Write the array of repeated field f's elements at level. */
static int dec_repeated_values(struct dec *d, const struct proto_field *f,
			       const unsigned char *w, size_t n, int level,
			       size_t *count)
{
	const unsigned char *p = w;
	struct wf g;
	int r = 0;

	while (!r && wire_next(&p, w + n, &g) == 1) {
		if (g.num != f->number || !wt_fits(f, g.wt))
			continue;
		if (g.wt == WT_LEN && packable(f->type))
			r = dec_packed(d, f, &g, level, count);
		else
			r = dec_element(d, f, &g, level, count);
	}
	return r;
}

/* True if w[0..n) holds at least one element of repeated field f. */
static bool has_elements(const struct proto_field *f, const unsigned char *w,
			 size_t n)
{
	const unsigned char *p = w;
	struct wf g;

	while (wire_next(&p, w + n, &g) == 1)
		if (g.num == f->number && wt_fits(f, g.wt) &&
		    !(g.wt == WT_LEN && packable(f->type) && g.len == 0))
			return true;
	return false;
}

/* Member for repeated (non-map) field f, if it has elements. */
static int dec_repeated(struct dec *d, const struct proto_field *f,
			const unsigned char *w, size_t n, int level, int *count)
{
	size_t elems = 0;
	int r;

	if (!has_elements(f, w, n))
		return 0;
	member(d, level, count, f->name, strlen(f->name));
	r = dec_repeated_values(d, f, w, n, level + 1, &elems);
	if (r)
		return r;
	buf_puts(&d->out, "\n");
	indent(&d->out, level + 1);
	buf_puts(&d->out, "]");
	return 0;
}

/* A map entry: its key, its bytes, its position on the wire. */
struct entry {
	const unsigned char *key;
	size_t keylen;
	const unsigned char *data;
	size_t len;
	size_t index;
};

/* Order entries by key bytes, then by position. */
static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
	int c = n ? memcmp(x->key, y->key, n) : 0;

	if (c)
		return c;
	if (x->keylen != y->keylen)
		return x->keylen < y->keylen ? -1 : 1;
	return x->index < y->index ? -1 : 1;
}

/* Collect the entries of map field f in w[0..n) into a new sorted array
 * *out of *count. 0 or -ENOMEM. */
static int map_entries(const struct proto_field *f, const unsigned char *w,
		       size_t n, struct entry **out, size_t *count)
{
	const unsigned char *p = w;
	struct entry *v = NULL, *nv;
	size_t c = 0;
	struct wf g, k;

	while (wire_next(&p, w + n, &g) == 1) {
		if (g.num != f->number || is_unknown_entry(f, &g))
			continue;
		nv = realloc(v, (c + 1) * sizeof(*v));
		if (!nv) {
			free(v);
			return -ENOMEM;
		}
		v = nv;
		last_scalar(&f->message->fields[0], g.data, g.len, &k);
		v[c] = (struct entry){k.data, k.len, g.data, g.len, c};
		c++;
	}
	if (c)
		qsort(v, c, sizeof(*v), entry_cmp);
	*out = v;
	*count = c;
	return 0;
}

/* Append the value field vf of map entry e[0..n) at level (a default value
 * when absent). */
static int put_map_value(struct dec *d, const struct proto_field *vf,
			 const unsigned char *e, size_t n, int level)
{
	struct wf g;

	if (vf->type == PROTO_MESSAGE)
		return put_message(d, vf, e, n, level);
	last_scalar(vf, e, n, &g);
	return put_scalar(d, vf, &g);
}

/* True if entries a and b have the same key. */
static bool same_key(const struct entry *a, const struct entry *b)
{
	return a->keylen == b->keylen &&
	       (!a->keylen || memcmp(a->key, b->key, a->keylen) == 0);
}

/* Append the entries v[0..c) of map field f as an object at level. */
static int put_map(struct dec *d, const struct proto_field *f,
		   const struct entry *v, size_t c, int level)
{
	int mc = 0, r = 0;

	for (size_t i = 0; !r && i < c; i++) {
		size_t old;

		if (i + 1 < c && same_key(&v[i], &v[i + 1]))
			continue; /* the last one wins */
		old = path_push(&d->c, "[\"%.*s\"]", (int)v[i].keylen,
				(const char *)v[i].key);
		if (!utf8_valid(v[i].key, v[i].keylen))
			r = fail(&d->c, "invalid UTF-8 in map key");
		else {
			member(d, level, &mc, (const char *)v[i].key,
			       v[i].keylen);
			r = put_map_value(d, &f->message->fields[1], v[i].data,
					  v[i].len, level + 1);
		}
		path_pop(&d->c, old);
	}
	close_object(d, level, mc);
	return r;
}

/* Member for map field f, if it has entries. */
static int dec_map(struct dec *d, const struct proto_field *f,
		   const unsigned char *w, size_t n, int level, int *count)
{
	struct entry *v;
	size_t c;
	int r;

	r = map_entries(f, w, n, &v, &c);
	if (r || !c)
		return r;
	member(d, level, count, f->name, strlen(f->name));
	r = put_map(d, f, v, c, level + 1);
	free(v);
	return r;
}

/* Member VIEW_JSON_UNKNOWN for the fields of w[0..n) that m does not
 * describe, if any. */
static int dec_unknown(struct dec *d, const struct proto_message *m,
		       const unsigned char *w, size_t n, int level, int *count)
{
	const unsigned char *p = w;
	struct buf u = {0};
	struct wf g;
	char *s;

	while (wire_next(&p, w + n, &g) == 1)
		if (is_unknown(m, &g))
			buf_put(&u, g.start, (size_t)(g.end - g.start));
	if (u.nomem)
		return -ENOMEM;
	if (!u.len)
		return 0;
	if (etcd_b64_encode(u.p, u.len, &s)) {
		free(u.p);
		return -ENOMEM;
	}
	member(d, level, count, VIEW_JSON_UNKNOWN, strlen(VIEW_JSON_UNKNOWN));
	put_json_string(&d->out, (const unsigned char *)s, strlen(s));
	free(s);
	free(u.p);
	return 0;
}

/* Member for field f of message wire w[0..n), if it is set. */
static int dec_field(struct dec *d, const struct proto_field *f,
		     const unsigned char *w, size_t n, int level, int *count)
{
	size_t old = path_push(&d->c, ".%s", f->name);
	int r;

	if (f->flags & PROTO_MAP)
		r = dec_map(d, f, w, n, level, count);
	else if (f->flags & PROTO_REPEATED)
		r = dec_repeated(d, f, w, n, level, count);
	else
		r = dec_singular(d, f, w, n, level, count);
	path_pop(&d->c, old);
	return r;
}

/* Append message m held in w[0..n) as a JSON object at level. */
static int dec_message(struct dec *d, const struct proto_message *m,
		       const unsigned char *w, size_t n, int level)
{
	static const unsigned char none[1];
	int count = 0, r = 0;

	if (!w)
		w = none;
	if (!wire_valid(w, n))
		return fail(&d->c, "malformed protobuf data");
	for (size_t i = 0; !r && i < m->nfields; i++)
		r = dec_field(d, &m->fields[i], w, n, level, &count);
	if (!r)
		r = dec_unknown(d, m, w, n, level, &count);
	if (!r)
		close_object(d, level, count);
	return r;
}

/* See view_json.h. */
int view_json_decode(const struct proto_message *m, const unsigned char *wire,
		     size_t len, char **json, size_t *jsonlen, char *err,
		     size_t errlen)
{
	struct dec d = {0};
	int r;

	ctx_init(&d.c, m, err, errlen);
	r = dec_message(&d, m, wire, len, 0);
	buf_puts(&d.out, "\n");
	if (!r && d.out.nomem)
		r = -ENOMEM;
	if (r) {
		free(d.out.p);
		return r;
	}
	*json = (char *)d.out.p;
	*jsonlen = d.out.len;
	return 0;
}

/* ---- encoding: JSON -> wire ---- */

/* A scalar ready for the wire: varint or fixed bits in v, or d[0..n). */
struct sval {
	uint64_t v;
	const unsigned char *d;
	size_t n;
	unsigned char *owned; /* freed by the caller */
};

/* The JSON kind of v, for messages. */
static const char *kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_NULL:
		return "null";
	}
	return "?";
}

/* Parse a decimal integer string s (optional '-' when sgn). 0, -ERANGE if
 * it does not fit, or -EINVAL if it is not one. */
static int parse_int_string(const char *s, bool sgn, int64_t *i, uint64_t *u)
{
	const char *p = s + (*s == '-');
	char *end;

	if (!*p || strspn(p, "0123456789") != strlen(p))
		return -EINVAL;
	errno = 0;
	if (sgn)
		*i = strtoll(s, &end, 10);
	else if (*s == '-')
		return strspn(p, "0") == strlen(p) ? (*u = 0, 0) : -ERANGE;
	else
		*u = strtoull(s, &end, 10);
	return errno == ERANGE ? -ERANGE : 0;
}

/* The limits of an integer type: signedness and bit width. */
struct ilimits {
	bool sgn;
	int bits;
	const char *name;
};

/* True if the value (i if signed, else u; neg if below 0) fits l. */
static bool in_range(struct ilimits l, bool neg, int64_t i, uint64_t u)
{
	if (l.bits == 64)
		return l.sgn || !neg;
	if (l.sgn)
		return i >= INT32_MIN && i <= INT32_MAX;
	return !neg && u <= UINT32_MAX;
}

/* Read integral double d into *i and *u, its text into text. */
static int int_from_real(struct ctx *c, double d, struct ilimits l, int64_t *i,
			 uint64_t *u, char *text, size_t textlen)
{
	snprintf(text, textlen, "%.17g", d);
	if (d != trunc(d))
		return fail(c, "value %s is not an integer", text);
	if (d < -9223372036854775808.0 || d >= 18446744073709551616.0 ||
	    (l.sgn && d >= 9223372036854775808.0))
		return fail(c, "value %s out of range for %s", text, l.name);
	if (c->ints_as_real && fabs(d) > 9007199254740992.0)
		return fail(c,
			    "value %s too large to read exactly here; write "
			    "it as a string",
			    text);
	if (d < 0)
		*i = (int64_t)d, *u = (uint64_t)*i;
	else
		*u = (uint64_t)d, *i = (int64_t)*u;
	return 0;
}

/* Read an integral JSON number or (when strings) a decimal string into
 * *out as a varint payload (signed values sign-extended). */
static int get_integer(struct ctx *c, const json_t *v, struct ilimits l,
		       bool strings, uint64_t *out)
{
	int64_t i = 0;
	uint64_t u = 0;
	bool neg = false;
	char text[64];

	if (json_is_integer(v)) {
		i = json_integer_value(v);
		neg = i < 0;
		u = (uint64_t)i;
		snprintf(text, sizeof(text), "%lld", (long long)i);
	} else if (json_is_real(v)) {
		int r = int_from_real(c, json_real_value(v), l, &i, &u, text,
				      sizeof(text));

		if (r)
			return r;
		neg = json_real_value(v) < 0;
	} else if (strings && json_is_string(v)) {
		const char *s = json_string_value(v);
		int r = parse_int_string(s, l.sgn, &i, &u);

		if (r == -EINVAL || strlen(s) != json_string_length(v))
			return fail(c, "invalid integer '%.40s'", s);
		if (r == -ERANGE)
			return fail(c, "value %.40s out of range for %s", s,
				    l.name);
		if (l.sgn)
			u = (uint64_t)i, neg = i < 0;
		snprintf(text, sizeof(text), "%.40s", s);
	} else {
		return fail(c, "expected a number%s, got %s",
			    strings ? " or a string of digits" : "", kind(v));
	}
	if (!in_range(l, neg, i, u))
		return fail(c, "value %s out of range for %s", text, l.name);
	*out = u;
	return 0;
}

/* Read a JSON number or "NaN"/"Infinity"/"-Infinity"/numeric string. */
static int get_double(struct ctx *c, const json_t *v, bool bits32, double *d)
{
	const char *s;
	char *end;

	if (json_is_number(v)) {
		*d = json_number_value(v);
	} else if (json_is_string(v)) {
		s = json_string_value(v);
		if (strcmp(s, "NaN") == 0)
			*d = NAN;
		else if (strcmp(s, "Infinity") == 0)
			*d = INFINITY;
		else if (strcmp(s, "-Infinity") == 0)
			*d = -INFINITY;
		else if (!*s || strspn(s, "0123456789+-.eE") != strlen(s) ||
			 (*d = strtod(s, &end), *end) || isinf(*d))
			return fail(c, "invalid number '%.40s'", s);
	} else {
		return fail(c, "expected a number, got %s", kind(v));
	}
	if (bits32 && isfinite(*d) && isinf((float)*d))
		return fail(c, "value %g out of range for float", *d);
	return 0;
}

/* Decode base64 (standard or URL-safe, padding optional) into s->owned. */
static int get_bytes(struct ctx *c, const json_t *v, struct sval *s)
{
	size_t n, i;
	char *t;
	int r;

	if (!json_is_string(v))
		return fail(c, "expected a base64 string, got %s", kind(v));
	n = json_string_length(v);
	t = malloc(n + 4);
	if (!t)
		return -ENOMEM;
	memcpy(t, json_string_value(v), n);
	for (i = 0; i < n; i++)
		t[i] = t[i] == '-' ? '+' : t[i] == '_' ? '/' : t[i];
	while (n % 4 && n % 4 != 1)
		t[n++] = '=';
	r = etcd_b64_decode(t, n, &s->owned, &s->n);
	free(t);
	if (r == -EINVAL)
		return fail(c, "invalid base64");
	s->d = s->owned;
	return r;
}

/* Read an enum value: a name of e or a number. */
static int get_enum(struct ctx *c, const struct proto_enum *e, const json_t *v,
		    uint64_t *out)
{
	static const struct ilimits l = {true, 32, "enum"};
	int32_t n;

	if (json_is_string(v)) {
		if (proto_enum_number(e, json_string_value(v), &n))
			return fail(c, "unknown enum value '%.40s' for %s",
				    json_string_value(v), e->name);
		*out = (uint64_t)(int64_t)n;
		return 0;
	}
	if (json_is_number(v))
		return get_integer(c, v, l, false, out);
	return fail(c, "expected an enum name or number, got %s", kind(v));
}

/* Read JSON value v as a scalar of field f. */
static int get_scalar(struct ctx *c, const struct proto_field *f,
		      const json_t *v, struct sval *s)
{
	static const struct ilimits i32 = {true, 32, "int32"},
				    i64 = {true, 64, "int64"},
				    u32 = {false, 32, "uint32"},
				    u64 = {false, 64, "uint64"};
	double d;
	float fl;
	int r;

	memset(s, 0, sizeof(*s));
	switch (f->type) {
	case PROTO_INT32:
		return get_integer(c, v, i32, false, &s->v);
	case PROTO_INT64:
		return get_integer(c, v, i64, true, &s->v);
	case PROTO_UINT32:
		return get_integer(c, v, u32, false, &s->v);
	case PROTO_UINT64:
		return get_integer(c, v, u64, true, &s->v);
	case PROTO_ENUM:
		return get_enum(c, f->enum_type, v, &s->v);
	case PROTO_BOOL:
		if (!json_is_boolean(v))
			return fail(c, "expected true or false, got %s",
				    kind(v));
		s->v = json_is_true(v);
		return 0;
	case PROTO_DOUBLE:
		r = get_double(c, v, false, &d);
		memcpy(&s->v, &d, sizeof(d));
		return r;
	case PROTO_FLOAT: {
		uint32_t u;

		r = get_double(c, v, true, &d);
		fl = (float)d;
		memcpy(&u, &fl, sizeof(u));
		s->v = u;
		return r;
	}
	case PROTO_STRING:
		if (!json_is_string(v))
			return fail(c, "expected a string, got %s", kind(v));
		s->d = (const unsigned char *)json_string_value(v);
		s->n = json_string_length(v);
		return 0;
	case PROTO_BYTES:
		return get_bytes(c, v, s);
	case PROTO_MESSAGE:
		break;
	}
	return -EINVAL;
}

/* Append the payload of scalar s of type t (no tag). */
static void put_payload(struct buf *b, enum proto_type t, const struct sval *s)
{
	switch (type_wt(t)) {
	case WT_I64:
		put_fixed(b, s->v, 8);
		break;
	case WT_I32:
		put_fixed(b, s->v, 4);
		break;
	case WT_LEN:
		put_varint(b, s->n);
		buf_put(b, s->d, s->n);
		break;
	default:
		put_varint(b, s->v);
	}
}

/* True if s is the default value of type t. */
static bool sval_default(enum proto_type t, const struct sval *s)
{
	return type_wt(t) == WT_LEN ? s->n == 0 : s->v == 0;
}

static int enc_message(struct ctx *c, const struct proto_message *m,
		       const json_t *obj, struct buf *out);

/* Append JSON value v as field f (one value; `force` writes defaults). */
static int enc_value(struct ctx *c, const struct proto_field *f,
		     const json_t *v, struct buf *out, bool force)
{
	struct buf sub = {0};
	struct sval s;
	int r;

	if (json_is_null(v) && force)
		return fail(c, "expected a value, got null");
	if (f->type == PROTO_MESSAGE) {
		r = enc_message(c, f->message, v, &sub);
		if (!r)
			put_len(out, f->number, sub.p, sub.len);
		free(sub.p);
		return r ? r : sub.nomem ? -ENOMEM : 0;
	}
	r = get_scalar(c, f, v, &s);
	if (!r && (force || !sval_default(f->type, &s))) {
		put_tag(out, f->number, type_wt(f->type));
		put_payload(out, f->type, &s);
	}
	free(s.owned);
	return r;
}

/* Append the elements of JSON array v as repeated field f. */
static int enc_repeated(struct ctx *c, const struct proto_field *f,
			const json_t *v, struct buf *out)
{
	struct buf packed = {0};
	struct sval s;
	int r = 0;

	if (!json_is_array(v))
		return fail(c, "expected an array, got %s", kind(v));
	for (size_t i = 0; !r && i < json_array_size(v); i++) {
		size_t old = path_push(c, "[%zu]", i);
		const json_t *e = json_array_get(v, i);

		if (json_is_null(e))
			r = fail(c, "expected a value, got null");
		else if (!packable(f->type))
			r = enc_value(c, f, e, out, true);
		else if (!(r = get_scalar(c, f, e, &s)))
			put_payload(&packed, f->type, &s);
		path_pop(c, old);
	}
	if (!r && packed.len)
		put_len(out, f->number, packed.p, packed.len);
	r = r ? r : packed.nomem ? -ENOMEM : 0;
	free(packed.p);
	return r;
}

/* A JSON object member: key bytes and value. */
struct member {
	const char *key;
	size_t keylen;
	const json_t *value;
};

/* Order members by key bytes. */
static int member_cmp(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
	int c = memcmp(x->key, y->key, n);

	return c ? c : (x->keylen > y->keylen) - (x->keylen < y->keylen);
}

/* Append one map entry {1: key, 2: value} of map field f. */
static int enc_entry(struct ctx *c, const struct proto_field *f,
		     const struct member *mb, struct buf *out)
{
	struct buf e = {0};
	size_t old = path_push(c, "[\"%.*s\"]", (int)mb->keylen, mb->key);
	int r;

	put_len(&e, 1, mb->key, mb->keylen);
	r = enc_value(c, &f->message->fields[1], mb->value, &e, true);
	if (!r)
		put_len(out, f->number, e.p, e.len);
	r = r ? r : e.nomem ? -ENOMEM : 0;
	free(e.p);
	path_pop(c, old);
	return r;
}

/* Append the members of JSON object v as map field f, sorted by key. */
static int enc_map(struct ctx *c, const struct proto_field *f, const json_t *v,
		   struct buf *out)
{
	size_t n = 0, i = 0;
	struct member *mb;
	void *it;
	int r = 0;

	if (!json_is_object(v))
		return fail(c, "expected an object, got %s", kind(v));
	n = json_object_size(v);
	mb = calloc(n ? n : 1, sizeof(*mb));
	if (!mb)
		return -ENOMEM;
	for (it = json_object_iter((json_t *)v); it && i < n;
	     it = json_object_iter_next((json_t *)v, it), i++)
		mb[i] = (struct member){json_object_iter_key(it),
					json_object_iter_key_len(it),
					json_object_iter_value(it)};
	qsort(mb, i, sizeof(*mb), member_cmp);
	for (size_t k = 0; !r && k < i; k++)
		r = enc_entry(c, f, &mb[k], out);
	free(mb);
	return r;
}

/* Append JSON value v (not null) as field f. */
static int enc_field(struct ctx *c, const struct proto_field *f,
		     const json_t *v, struct buf *out)
{
	if (f->flags & PROTO_MAP)
		return enc_map(c, f, v, out);
	if (f->flags & PROTO_REPEATED)
		return enc_repeated(c, f, v, out);
	return enc_value(c, f, v, out, (f->flags & PROTO_OPTIONAL) != 0);
}

/* Write the lowerCamelCase JSON name of proto name `name` into out. */
static void camel_name(const char *name, char *out, size_t outlen)
{
	size_t o = 0;

	for (bool up = false; *name && o + 1 < outlen; name++) {
		if (*name == '_') {
			up = true;
			continue;
		}
		out[o++] = up && *name >= 'a' && *name <= 'z'
			       ? (char)(*name - 'a' + 'A')
			       : *name;
		up = false;
	}
	out[o] = 0;
}

/* The member of obj for field f, under its proto or camelCase name. */
static const json_t *field_value(const json_t *obj, const struct proto_field *f)
{
	const json_t *v = json_object_get(obj, f->name);
	char camel[128];

	if (v)
		return v;
	camel_name(f->name, camel, sizeof(camel));
	return json_object_get(obj, camel);
}

/* Check that every member name of obj names a field of m, once. */
static int check_names(struct ctx *c, const struct proto_message *m,
		       const json_t *obj)
{
	const char *key;
	json_t *v;
	char camel[128];

	json_object_foreach((json_t *)obj, key, v)
	{
		const struct proto_field *f = NULL;

		if (strcmp(key, VIEW_JSON_UNKNOWN) == 0)
			continue;
		for (size_t i = 0; !f && i < m->nfields; i++) {
			camel_name(m->fields[i].name, camel, sizeof(camel));
			if (strcmp(key, m->fields[i].name) == 0 ||
			    strcmp(key, camel) == 0)
				f = &m->fields[i];
		}
		if (!f)
			return fail(c, "unknown field '%.60s'", key);
		if (strcmp(key, f->name) != 0 && json_object_get(obj, f->name))
			return fail(c, "field '%s' given twice (as '%s')",
				    f->name, key);
	}
	return 0;
}

/* Append the bytes of member VIEW_JSON_UNKNOWN of obj, if present. */
static int enc_unknown(struct ctx *c, const json_t *obj, struct buf *out)
{
	const json_t *v = json_object_get(obj, VIEW_JSON_UNKNOWN);
	struct sval s = {0};
	size_t old;
	int r;

	if (!v || json_is_null(v))
		return 0;
	old = path_push(c, "." VIEW_JSON_UNKNOWN);
	r = get_bytes(c, v, &s);
	if (!r && !wire_valid(s.d ? s.d : (const unsigned char *)"", s.n))
		r = fail(c, "not a sequence of protobuf fields");
	if (!r)
		buf_put(out, s.d, s.n);
	free(s.owned);
	path_pop(c, old);
	return r;
}

/* Append JSON object obj as the fields of message m. */
static int enc_message(struct ctx *c, const struct proto_message *m,
		       const json_t *obj, struct buf *out)
{
	int r;

	if (!json_is_object(obj))
		return fail(c, "expected an object, got %s", kind(obj));
	r = check_names(c, m, obj);
	for (size_t i = 0; !r && i < m->nfields; i++) {
		const struct proto_field *f = &m->fields[i];
		const json_t *v = field_value(obj, f);
		size_t old;

		if (!v || json_is_null(v))
			continue;
		old = path_push(c, ".%s", f->name);
		r = enc_field(c, f, v, out);
		path_pop(c, old);
	}
	return r ? r : enc_unknown(c, obj, out);
}

/* See view_json.h. */
int view_json_encode(const struct proto_message *m, const char *json,
		     size_t len, unsigned char **wire, size_t *wirelen,
		     char *err, size_t errlen)
{
	struct buf out = {0};
	json_error_t je;
	struct ctx c;
	json_t *root;
	int r;

	ctx_init(&c, m, err, errlen);
	root =
	    json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
	if (!root && json_error_code(&je) == json_error_numeric_overflow) {
		/* an integer beyond 64 bits: fine for a double field */
		c.ints_as_real = true;
		root = json_loadb(json, len,
				  JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL |
				      JSON_DECODE_INT_AS_REAL,
				  &je);
	}
	if (!root) {
		if (json_error_code(&je) == json_error_out_of_memory)
			return -ENOMEM;
		if (err && errlen)
			snprintf(err, errlen, "invalid JSON at line %d: %s",
				 je.line, je.text);
		return -EINVAL;
	}
	r = enc_message(&c, m, root, &out);
	json_decref(root);
	if (!r && !out.p && !out.nomem)
		out.p = calloc(1, 1);
	if (!r && (out.nomem || !out.p))
		r = -ENOMEM;
	if (r) {
		free(out.p);
		return r;
	}
	*wire = out.p;
	*wirelen = out.len;
	return 0;
}
