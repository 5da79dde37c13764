/*
 * view_json_decode.c - the JSON view's decoding: protobuf wire bytes of a
 * record -> JSON text as Vitess prints it (view_json_decode, see
 * view_json.h), driven by the message tables of proto.h.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topofs/base64.h"
#include "view_json.h"
#include "view_wire.h"

struct dec {
	struct ctx c;
	struct buf out;
};

/* Append two spaces per level. */
static void indent(struct buf *b, int level)
{
	for (int i = 0; i < level; i++)
		vw_buf_put(b, "  ", 2);
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

	vw_buf_put(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		const char *q = s[i] ? strchr(special, s[i]) : NULL;

		if (q)
			vw_buf_printf(b, "\\%c", letter[q - special]);
		else if (s[i] < 0x20)
			vw_buf_printf(b, "\\u%04x", s[i]);
		else
			vw_buf_put(b, &s[i], 1);
	}
	vw_buf_put(b, "\"", 1);
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
		vw_buf_puts(b, "\"NaN\"");
	else if (isinf(v))
		vw_buf_puts(b, v < 0 ? "\"-Infinity\"" : "\"Infinity\"");
	else if (v == 0)
		vw_buf_puts(b,
			    signbit(v) ? "-0.0" : "0"); /* "-0" would read 0 */
	else {
		fmt_float(tmp, sizeof(tmp), v, bits32);
		vw_buf_puts(b, tmp);
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
		vw_buf_printf(b, "%d", (int32_t)(uint32_t)g->v);
		return 0;
	case PROTO_INT64:
		vw_buf_printf(b, "\"%lld\"", (long long)(int64_t)g->v);
		return 0;
	case PROTO_UINT32:
		vw_buf_printf(b, "%u", (uint32_t)g->v);
		return 0;
	case PROTO_UINT64:
		vw_buf_printf(b, "\"%llu\"", (unsigned long long)g->v);
		return 0;
	case PROTO_BOOL:
		vw_buf_puts(b, g->v ? "true" : "false");
		return 0;
	case PROTO_ENUM:
		name = proto_enum_name(f->enum_type, (int32_t)(uint32_t)g->v);
		if (name)
			vw_buf_printf(b, "\"%s\"", name);
		else
			vw_buf_printf(b, "%d", (int32_t)(uint32_t)g->v);
		return 0;
	case PROTO_DOUBLE:
	case PROTO_FLOAT:
		put_float(b, bits_double(g->v, f->type == PROTO_FLOAT),
			  f->type == PROTO_FLOAT);
		return 0;
	case PROTO_STRING:
		if (!utf8_valid(g->data, g->len))
			return vw_fail(&d->c, "invalid UTF-8 in string");
		put_json_string(b, g->data, g->len);
		return 0;
	case PROTO_BYTES:
		if (topo_b64_encode(g->data, g->len, &s))
			return -ENOMEM;
		vw_buf_printf(b, "\"");
		vw_buf_puts(b, s);
		vw_buf_printf(b, "\"");
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
	vw_buf_puts(&d->out, (*count)++ ? ",\n" : "{\n");
	indent(&d->out, level + 1);
	put_json_string(&d->out, (const unsigned char *)key, keylen);
	vw_buf_put(&d->out, ": ", 2);
}

/* Close an object at level with count members. */
static void close_object(struct dec *d, int level, int count)
{
	if (!count) {
		vw_buf_puts(&d->out, "{}");
		return;
	}
	vw_buf_puts(&d->out, "\n");
	indent(&d->out, level);
	vw_buf_puts(&d->out, "}");
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

	while (vw_wire_next(&p, w + n, &g) == 1) {
		if (g.num != f->number || g.wt != WT_LEN)
			continue;
		if (hits++ == 0)
			one = g.data, onelen = g.len;
		vw_buf_put(&all, g.data, g.len);
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
	while (vw_wire_next(&p, w + n, &g) == 1) {
		if (g.num == f->number && g.wt == vw_type_wt(f->type)) {
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
	switch (vw_type_wt(f->type)) {
	case WT_I64:
		return vw_read_fixed(p, end, 8, &e->v);
	case WT_I32:
		return vw_read_fixed(p, end, 4, &e->v);
	default:
		return vw_read_varint(p, end, &e->v);
	}
}

/* Append element i of a repeated field (array opened lazily). */
static void element(struct dec *d, int level, size_t *count)
{
	vw_buf_puts(&d->out, (*count)++ ? ",\n" : "[\n");
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
			return vw_fail(&d->c, "malformed packed field");
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

	while (!r && vw_wire_next(&p, w + n, &g) == 1) {
		if (g.num != f->number || !vw_wt_fits(f, g.wt))
			continue;
		if (g.wt == WT_LEN && vw_packable(f->type))
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

	while (vw_wire_next(&p, w + n, &g) == 1)
		if (g.num == f->number && vw_wt_fits(f, g.wt) &&
		    !(g.wt == WT_LEN && vw_packable(f->type) && g.len == 0))
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
	vw_buf_puts(&d->out, "\n");
	indent(&d->out, level + 1);
	vw_buf_puts(&d->out, "]");
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

	while (vw_wire_next(&p, w + n, &g) == 1) {
		if (g.num != f->number || vw_is_unknown_entry(f, &g))
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
			r = vw_fail(&d->c, "invalid UTF-8 in map key");
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

	while (vw_wire_next(&p, w + n, &g) == 1)
		if (vw_is_unknown(m, &g))
			vw_buf_put(&u, g.start, (size_t)(g.end - g.start));
	if (u.nomem)
		return -ENOMEM;
	if (!u.len)
		return 0;
	if (topo_b64_encode(u.p, u.len, &s)) {
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
	if (!vw_wire_valid(w, n))
		return vw_fail(&d->c, "malformed protobuf data");
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

	vw_ctx_init(&d.c, m, err, errlen);
	r = dec_message(&d, m, wire, len, 0);
	vw_buf_puts(&d.out, "\n");
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
