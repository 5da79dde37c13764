/*
 * dirsnap.c - an open directory's snapshot of its entries, packed into one
 * byte arena with an offset per entry (see dirsnap.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dirsnap.h"
#include "meta_pack.h"

/* The flags byte that starts an entry. */
enum {
	F_IS_DIR = 1 << 0,
	F_HAS_DATA = 1 << 1,
	F_DATA_SHOWN = 1 << 2,
	F_LOCAL_DIR = 1 << 3,
	F_REAL_DIR = 1 << 4,
	F_FROM_MEMORY = 1 << 5,
	F_META = 1 << 6,   /* packed metadata follows */
	F_COUNTS = 1 << 7, /* subdirs and newest follow */
};

/* The most an entry takes besides its name and the name's NUL. */
#define HEAD_MAX (1 + META_PACKED_MAX + 2 * META_VARINT_MAX)

/* Make room for `more` bytes past s->used in the arena: 0 or -ENOMEM. */
static int arena_room(struct dirsnap *s, size_t more)
{
	if (more > DIRSNAP_ARENA_MAX - s->used)
		return -ENOMEM;
	size_t need = s->used + more;
	if (need <= s->cap)
		return 0;
	size_t cap = s->cap ? s->cap : 1024;
	while (cap < need) /* double, up to the limit (no size_t overflow) */
		cap = cap > DIRSNAP_ARENA_MAX / 2 ? DIRSNAP_ARENA_MAX : cap * 2;
	unsigned char *a = realloc(s->arena, cap);
	if (!a)
		return -ENOMEM;
	s->arena = a;
	s->cap = cap;
	return 0;
}

/* Make room for one more offset: 0 or -ENOMEM. */
static int offset_room(struct dirsnap *s)
{
	if (s->count < s->slots)
		return 0;
	size_t slots = s->slots ? s->slots * 2 : 64;
	if (slots > SIZE_MAX / sizeof(*s->at))
		return -ENOMEM;
	uint32_t *at = realloc(s->at, slots * sizeof(*at));
	if (!at)
		return -ENOMEM;
	s->at = at;
	s->slots = slots;
	return 0;
}

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Write the entry at p (HEAD_MAX + len + 1 bytes): its length. */
static size_t encode(unsigned char *p, const char *name, size_t len,
		     const struct cache_stat *cs, bool from_memory)
{
	unsigned flags =
	    (cs->is_dir ? F_IS_DIR : 0) | (cs->has_data ? F_HAS_DATA : 0) |
	    (cs->data_shown ? F_DATA_SHOWN : 0) |
	    (cs->local_dir ? F_LOCAL_DIR : 0) |
	    (cs->real_dir ? F_REAL_DIR : 0) | (from_memory ? F_FROM_MEMORY : 0);
	size_t n = 1;
	/* packed, then dropped again if it is the zero meta (an entry made
	 * in memory, a directory that is only a prefix of keys): only that
	 * one packs as zero bytes (meta_pack.h) */
	size_t m = meta_pack(&cs->meta, p + n);
	if (!all_zero(p + n, m)) {
		flags |= F_META;
		n += m;
	}
	if (cs->subdirs || cs->newest) { /* directories only */
		flags |= F_COUNTS;
		n += meta_put_varint(p + n, (uint64_t)cs->subdirs);
		n += meta_put_varint(p + n, (uint64_t)cs->newest);
	}
	p[0] = (unsigned char)flags;
	memcpy(p + n, name, len + 1);
	return n + len + 1;
}

int dirsnap_add(struct dirsnap *s, const char *name,
		const struct cache_stat *cs, bool from_memory)
{
	static const struct cache_stat none;
	size_t len = strlen(name);
	if (len > DIRSNAP_ARENA_MAX)
		return -ENOMEM;
	int rc = offset_room(s);
	if (!rc)
		rc = arena_room(s, HEAD_MAX + len + 1);
	if (rc)
		return rc;
	/* arena_room kept used + the entry within DIRSNAP_ARENA_MAX */
	s->at[s->count++] = (uint32_t)s->used;
	s->used +=
	    encode(s->arena + s->used, name, len, cs ? cs : &none, from_memory);
	return 0;
}

int dirsnap_get(const struct dirsnap *s, size_t i, struct dirsnap_entry *e)
{
	if (i >= s->count)
		return -ERANGE;
	const unsigned char *p = s->arena + s->at[i];
	unsigned flags = *p++;
	memset(e, 0, sizeof(*e));
	e->cs.is_dir = flags & F_IS_DIR;
	e->cs.has_data = flags & F_HAS_DATA;
	e->cs.data_shown = flags & F_DATA_SHOWN;
	e->cs.local_dir = flags & F_LOCAL_DIR;
	e->cs.real_dir = flags & F_REAL_DIR;
	e->from_memory = flags & F_FROM_MEMORY;
	if (flags & F_META)
		p = meta_unpack(p, &e->cs.meta);
	if (flags & F_COUNTS) {
		e->cs.subdirs = (size_t)meta_get_varint(&p);
		e->cs.newest = (int64_t)meta_get_varint(&p);
	}
	e->name = (const char *)p;
	return 0;
}

void dirsnap_trim(struct dirsnap *s)
{
	if (s->used && s->used < s->cap) {
		unsigned char *a = realloc(s->arena, s->used);
		if (a) { /* else keep the larger block: nothing is lost */
			s->arena = a;
			s->cap = s->used;
		}
	}
	if (s->count && s->count < s->slots) {
		uint32_t *at = realloc(s->at, s->count * sizeof(*at));
		if (at) {
			s->at = at;
			s->slots = s->count;
		}
	}
}

size_t dirsnap_bytes(const struct dirsnap *s)
{
	return s->cap + s->slots * sizeof(*s->at);
}

void dirsnap_clear(struct dirsnap *s)
{
	free(s->arena);
	free(s->at);
	memset(s, 0, sizeof(*s));
}
