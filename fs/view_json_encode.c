/*
 * view_json_encode.c - the JSON view's encoding: JSON text of a record ->
 * canonical protobuf wire bytes (view_json_encode, see view_json.h), driven
 * by the message tables of proto.h.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "topofs/base64.h"
#include "view_json.h"
#include "view_wire.h"

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
		return vw_fail(c, "value %s is not an integer", text);
	if (d < -9223372036854775808.0 || d >= 18446744073709551616.0 ||
	    (l.sgn && d >= 9223372036854775808.0))
		return vw_fail(c, "value %s out of range for %s", text, l.name);
	if (c->ints_as_real && fabs(d) > 9007199254740992.0)
		return vw_fail(c,
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
			return vw_fail(c, "invalid integer '%.40s'", s);
		if (r == -ERANGE)
			return vw_fail(c, "value %.40s out of range for %s", s,
				       l.name);
		if (l.sgn)
			u = (uint64_t)i, neg = i < 0;
		snprintf(text, sizeof(text), "%.40s", s);
	} else {
		return vw_fail(c, "expected a number%s, got %s",
			       strings ? " or a string of digits" : "",
			       kind(v));
	}
	if (!in_range(l, neg, i, u))
		return vw_fail(c, "value %s out of range for %s", text, l.name);
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
			return vw_fail(c, "invalid number '%.40s'", s);
	} else {
		return vw_fail(c, "expected a number, got %s", kind(v));
	}
	if (bits32 && isfinite(*d) && isinf((float)*d))
		return vw_fail(c, "value %g out of range for float", *d);
	return 0;
}

/* Decode base64 (standard or URL-safe, padding optional) into s->owned. */
static int get_bytes(struct ctx *c, const json_t *v, struct sval *s)
{
	size_t n, i;
	char *t;
	int r;

	if (!json_is_string(v))
		return vw_fail(c, "expected a base64 string, got %s", kind(v));
	n = json_string_length(v);
	t = malloc(n + 4);
	if (!t)
		return -ENOMEM;
	memcpy(t, json_string_value(v), n);
	for (i = 0; i < n; i++)
		t[i] = t[i] == '-' ? '+' : t[i] == '_' ? '/' : t[i];
	while (n % 4 && n % 4 != 1)
		t[n++] = '=';
	r = topo_b64_decode(t, n, &s->owned, &s->n);
	free(t);
	if (r == -EINVAL)
		return vw_fail(c, "invalid base64");
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
			return vw_fail(c, "unknown enum value '%.40s' for %s",
				       json_string_value(v), e->name);
		*out = (uint64_t)(int64_t)n;
		return 0;
	}
	if (json_is_number(v))
		return get_integer(c, v, l, false, out);
	return vw_fail(c, "expected an enum name or number, got %s", kind(v));
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
			return vw_fail(c, "expected true or false, got %s",
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
			return vw_fail(c, "expected a string, got %s", kind(v));
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
	switch (vw_type_wt(t)) {
	case WT_I64:
		vw_put_fixed(b, s->v, 8);
		break;
	case WT_I32:
		vw_put_fixed(b, s->v, 4);
		break;
	case WT_LEN:
		vw_put_varint(b, s->n);
		vw_buf_put(b, s->d, s->n);
		break;
	default:
		vw_put_varint(b, s->v);
	}
}

/* True if s is the default value of type t. */
static bool sval_default(enum proto_type t, const struct sval *s)
{
	return vw_type_wt(t) == WT_LEN ? s->n == 0 : s->v == 0;
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
		return vw_fail(c, "expected a value, got null");
	if (f->type == PROTO_MESSAGE) {
		r = enc_message(c, f->message, v, &sub);
		if (!r)
			vw_put_len(out, f->number, sub.p, sub.len);
		free(sub.p);
		return r ? r : sub.nomem ? -ENOMEM : 0;
	}
	r = get_scalar(c, f, v, &s);
	if (!r && (force || !sval_default(f->type, &s))) {
		vw_put_tag(out, f->number, vw_type_wt(f->type));
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
		return vw_fail(c, "expected an array, got %s", kind(v));
	for (size_t i = 0; !r && i < json_array_size(v); i++) {
		size_t old = path_push(c, "[%zu]", i);
		const json_t *e = json_array_get(v, i);

		if (json_is_null(e))
			r = vw_fail(c, "expected a value, got null");
		else if (!vw_packable(f->type))
			r = enc_value(c, f, e, out, true);
		else if (!(r = get_scalar(c, f, e, &s)))
			put_payload(&packed, f->type, &s);
		path_pop(c, old);
	}
	if (!r && packed.len)
		vw_put_len(out, f->number, packed.p, packed.len);
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

	vw_put_len(&e, 1, mb->key, mb->keylen);
	r = enc_value(c, &f->message->fields[1], mb->value, &e, true);
	if (!r)
		vw_put_len(out, f->number, e.p, e.len);
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
		return vw_fail(c, "expected an object, got %s", kind(v));
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
			return vw_fail(c, "unknown field '%.60s'", key);
		if (strcmp(key, f->name) != 0 && json_object_get(obj, f->name))
			return vw_fail(c, "field '%s' given twice (as '%s')",
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
	if (!r && !vw_wire_valid(s.d ? s.d : (const unsigned char *)"", s.n))
		r = vw_fail(c, "not a sequence of protobuf fields");
	if (!r)
		vw_buf_put(out, s.d, s.n);
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
		return vw_fail(c, "expected an object, got %s", kind(obj));
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

	vw_ctx_init(&c, m, err, errlen);
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
