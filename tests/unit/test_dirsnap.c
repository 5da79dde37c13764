/* Unit tests of an open directory's packed snapshot (fs/dirsnap.c) and of
 * the metadata packing it shares with the cache (fs/meta_pack.c): every
 * field round-trips exactly, edge values included; entries read back in
 * order and from any index (a listing resumed at an offset); and the bytes
 * an entry takes, against the array of struct dirent_copy it replaced.
 *
 * The random part is seeded: TOPOFS_TEST_SEED=n to repeat another run. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../fs/dirsnap.h"
#include "../../fs/meta_pack.h"
#include "check.h"
#include "meta_util.h"

static bool same_stat(const struct cache_stat *a, const struct cache_stat *b)
{
	return a->is_dir == b->is_dir && a->has_data == b->has_data &&
	       a->data_shown == b->data_shown &&
	       same_meta(&a->meta, &b->meta) && a->local_dir == b->local_dir &&
	       a->real_dir == b->real_dir && a->subdirs == b->subdirs &&
	       a->newest == b->newest;
}

/* ---- random values ---- */

/* Mostly what stores give (0, small, around 10^6, nanosecond times), and
 * any value, and the extremes. */
static int64_t rnd_i64(void)
{
	switch (rand() % 8) {
	case 0:
		return 0;
	case 1:
		return rand() % 100;
	case 2:
		return -(rand() % 100);
	case 3:
		return 1000000 + rand() % 100000;
	case 4:
		return 1700000000000000000 + (int64_t)(rnd_u64() >> 20);
	case 5:
		return rand() & 1 ? INT64_MIN : INT64_MAX;
	default:
		return (int64_t)rnd_u64();
	}
}

static struct topo_meta rnd_meta(void)
{
	if (rand() % 4 == 0)
		return (struct topo_meta){0};
	return (struct topo_meta){.version = rnd_i64(),
				  .create_id = rnd_i64(),
				  .modify_id = rnd_i64(),
				  .change_count = rnd_i64(),
				  .child_count = rnd_i64(),
				  .num_children = rnd_i64(),
				  .ctime_ns = rnd_i64(),
				  .mtime_ns = rnd_i64(),
				  .lease = rnd_i64(),
				  .size = (uint64_t)rnd_i64(),
				  .ephemeral = rand() & 1,
				  .has_data = rand() & 1,
				  .real_dir = rand() & 1,
				  .denied = rand() & 1};
}

/* An entry as it went in. */
struct want {
	char name[256]; /* up to NAME_MAX bytes */
	struct cache_stat cs;
	bool from_memory;
	bool null_cs; /* added with cs NULL: must read back as all zero */
};

static void rnd_name(char *name)
{
	size_t len;
	switch (rand() % 8) {
	case 0:
		len = 0;
		break;
	case 1:
		len = 255;
		break;
	default:
		len = (size_t)(rand() % 40);
	}
	for (size_t i = 0; i < len; i++)
		name[i] = (char)(1 + rand() % 255); /* any byte but NUL */
	name[len] = '\0';
}

static void rnd_want(struct want *w)
{
	memset(w, 0, sizeof(*w));
	rnd_name(w->name);
	w->from_memory = rand() & 1;
	if ((w->null_cs = rand() % 8 == 0))
		return;
	w->cs.is_dir = rand() & 1;
	w->cs.has_data = rand() & 1;
	w->cs.data_shown = rand() & 1;
	w->cs.local_dir = rand() & 1;
	w->cs.real_dir = rand() & 1;
	w->cs.meta = rnd_meta();
	if (rand() & 1) {
		w->cs.subdirs = (size_t)rnd_u64() >> (rand() % 64);
		w->cs.newest = rnd_i64();
	}
}

/* ---- checks ---- */

static int add_want(struct dirsnap *s, const struct want *w)
{
	return dirsnap_add(s, w->name, w->null_cs ? NULL : &w->cs,
			   w->from_memory);
}

static void check_entry(const struct dirsnap *s, size_t i, const struct want *w)
{
	struct dirsnap_entry e;
	memset(&e, 0xa5, sizeof(e)); /* nothing left over counts */
	CHECK_INT(dirsnap_get(s, i, &e), 0);
	CHECK_STR(e.name, w->name);
	CHECK(same_stat(&e.cs, &w->cs)); /* a NULL cs reads as w's zero */
	CHECK(e.from_memory == w->from_memory);
}

static void check_varint(uint64_t v)
{
	unsigned char buf[META_VARINT_MAX + 1] = {0};
	buf[META_VARINT_MAX] = 0x5a; /* must stay */
	size_t n = meta_put_varint(buf, v);
	CHECK(n >= 1 && n <= META_VARINT_MAX);
	const unsigned char *p = buf;
	CHECK(meta_get_varint(&p) == v);
	CHECK(p == buf + n);
	CHECK_INT(buf[META_VARINT_MAX], 0x5a);
}

static void check_meta(const struct topo_meta *m)
{
	unsigned char buf[META_PACKED_MAX + 1];
	memset(buf, 0x5a, sizeof(buf));
	size_t n = meta_pack(m, buf);
	CHECK(n >= 11 && n < META_PACKED_MAX);
	struct topo_meta got;
	memset(&got, 0xa5, sizeof(got));
	CHECK(meta_unpack(buf, &got) == buf + n);
	CHECK(same_meta(&got, m));
	CHECK_INT(buf[META_PACKED_MAX], 0x5a);
}

/* ---- tests ---- */

static void test_meta_pack(void)
{
	static const int64_t edge[] = {0,
				       1,
				       -1,
				       63,
				       64,
				       -64,
				       -65,
				       127,
				       128,
				       1000000,
				       -1000000,
				       INT64_MIN,
				       INT64_MAX,
				       INT64_MIN + 1,
				       INT64_MAX - 1};
	size_t n = sizeof(edge) / sizeof(edge[0]);
	for (size_t i = 0; i < n; i++)
		check_varint((uint64_t)edge[i]);
	check_varint(UINT64_MAX);
	check_varint((uint64_t)1 << 63);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			int64_t a = edge[i], b = edge[j];
			struct topo_meta m = {a, b, a, b, a,
					      b, a, b, a, (uint64_t)b};
			check_meta(&m);
			m = (struct topo_meta){
			    b, a, a,	       a,    b,	    b,	  b,
			    a, b, (uint64_t)a, true, false, true, false};
			check_meta(&m);
		}
	struct topo_meta m = {0};
	unsigned char buf[META_PACKED_MAX];
	CHECK_INT(meta_pack(&m, buf), 11);
	for (int i = 0; i < 11; i++)
		CHECK_INT(buf[i], 0);
	for (int b = 0; b < 16; b++) { /* each bool alone is not zero */
		m = (struct topo_meta){.ephemeral = b & 1,
				       .has_data = b & 2,
				       .real_dir = b & 4,
				       .denied = b & 8};
		check_meta(&m);
	}
	for (int i = 0; i < 5000; i++) {
		m = rnd_meta();
		check_meta(&m);
	}
}

static void test_edges(void)
{
	struct dirsnap s = {0};
	struct dirsnap_entry e;
	CHECK_INT(dirsnap_get(&s, 0, &e), -ERANGE);
	dirsnap_trim(&s); /* nothing to trim, nothing breaks */
	CHECK_INT(dirsnap_bytes(&s), 0);

	static struct want w[64 + 8];
	size_t n = 0;
	/* every combination of the flags, with a NULL or a zero stat */
	for (unsigned f = 0; f < 64; f++, n++) {
		snprintf(w[n].name, sizeof(w[n].name), "f%02u", f);
		w[n].cs.is_dir = f & 1;
		w[n].cs.has_data = f & 2;
		w[n].cs.data_shown = f & 4;
		w[n].cs.local_dir = f & 8;
		w[n].cs.real_dir = f & 16;
		w[n].from_memory = f & 32;
		w[n].null_cs = !(f & 31) && (f & 32); /* as collect_memory */
	}
	/* an empty name, NAME_MAX bytes, every byte but NUL */
	n++;
	memset(w[n].name, 'x', 255);
	n++;
	for (int i = 0; i < 255; i++)
		w[n].name[i] = (char)(255 - i);
	n++;
	/* the extremes of every number */
	struct cache_stat lo = {.meta = {INT64_MIN, INT64_MIN, INT64_MIN,
					 INT64_MIN, INT64_MIN, INT64_MIN,
					 INT64_MIN, INT64_MIN, INT64_MIN, 0},
				.subdirs = 0,
				.newest = INT64_MIN};
	struct cache_stat hi = {.is_dir = true,
				.has_data = true,
				.data_shown = true,
				.meta = {INT64_MAX, INT64_MAX, INT64_MAX,
					 INT64_MAX, INT64_MAX, INT64_MAX,
					 INT64_MAX, INT64_MAX, INT64_MAX,
					 UINT64_MAX, true, true, true, true},
				.local_dir = true,
				.real_dir = true,
				.subdirs = SIZE_MAX,
				.newest = INT64_MAX};
	w[n++].cs = lo;
	w[n].cs = hi;
	memset(w[n++].name, 'y', 255);
	w[n].cs = hi;
	w[n].cs.meta.modify_id = INT64_MIN; /* the differences wrap */
	w[n].cs.meta.change_count = INT64_MIN;
	w[n].cs.meta.mtime_ns = INT64_MIN;
	w[n++].cs.newest = -1;
	for (size_t i = 0; i < n; i++)
		CHECK_INT(add_want(&s, &w[i]), 0);
	CHECK_INT(s.count, n);
	for (size_t i = 0; i < n; i++)
		check_entry(&s, i, &w[i]);
	CHECK_INT(dirsnap_get(&s, n, &e), -ERANGE);
	CHECK_INT(dirsnap_get(&s, SIZE_MAX, &e), -ERANGE);
	dirsnap_trim(&s);
	CHECK_INT(dirsnap_bytes(&s), s.used + n * sizeof(uint32_t));
	for (size_t i = n; i-- > 0;)
		check_entry(&s, i, &w[i]);
	/* a new snapshot in the same struct, as at a rewinddir */
	dirsnap_clear(&s);
	CHECK(s.count == 0 && s.arena == NULL && s.at == NULL);
	CHECK_INT(dirsnap_get(&s, 0, &e), -ERANGE);
	CHECK_INT(add_want(&s, &w[n - 1]), 0);
	check_entry(&s, 0, &w[n - 1]);
	dirsnap_clear(&s);
}

/* Read s from entry `from` as readdir does, in chunks of random sizes (the
 * kernel's buffer filling up), each chunk resumed by the index after the
 * last one read: every entry once, in order. */
static void check_resumed(const struct dirsnap *s, const struct want *w,
			  size_t from)
{
	size_t i = from, seen = 0;
	for (;;) {
		size_t chunk = 1 + (size_t)(rand() % 300);
		struct dirsnap_entry e;
		size_t k = 0;
		for (; k < chunk && !dirsnap_get(s, i, &e); k++, i++, seen++)
			if (strcmp(e.name, w[i].name) ||
			    !same_stat(&e.cs, &w[i].cs) ||
			    e.from_memory != w[i].from_memory)
				break;
		if (k < chunk)
			break; /* the end, or a difference */
	}
	CHECK_INT(seen, s->count - from);
}

static void test_random(unsigned seed, size_t n)
{
	fprintf(stderr, "test_random: seed %u, %zu entries\n", seed, n);
	srand(seed);
	struct want *w = calloc(n, sizeof(*w));
	CHECK(w != NULL);
	if (!w)
		return;
	struct dirsnap s = {0};
	for (size_t i = 0; i < n; i++) {
		rnd_want(&w[i]);
		CHECK_INT(add_want(&s, &w[i]), 0);
	}
	CHECK_INT(s.count, n);
	for (size_t i = 0; i < n; i++)
		check_entry(&s, i, &w[i]);
	dirsnap_trim(&s);
	CHECK_INT(s.cap, s.used);
	CHECK_INT(s.slots, n);
	check_resumed(&s, w, 0);
	for (int k = 0; k < 200; k++) { /* seekdir to any offset */
		size_t from = (size_t)rand() % (n + 1);
		check_resumed(&s, w, from);
		if (from < n)
			check_entry(&s, from, &w[from]);
	}
	dirsnap_clear(&s);
	free(w);
}

/* ---- bytes per entry ---- */

/* What ops_attr_dir.c held per entry before this packing. */
struct dirent_copy {
	char *name;
	struct cache_stat cs;
	bool from_memory;
};

/* The heap chunk glibc's malloc gives n bytes on 64-bit (header and
 * rounding): strdup's cost beside the name's length. */
static size_t glibc_chunk(size_t n)
{
	size_t c = (n + 8 + 15) & ~(size_t)15;
	return c < 32 ? 32 : c;
}

/* n entries named as Vitess names tablets, of the given kind: bytes per
 * entry before (array of struct dirent_copy doubling from 64, a strdup'ed
 * name each) and after (arena and offsets, trimmed). */
static double measure(const char *kind, size_t n,
		      void (*fill)(struct cache_stat *, size_t))
{
	struct dirsnap s = {0};
	size_t names = 0, cap = 64;
	for (size_t i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "zone1-%010zu", 12345 + i * 7);
		struct cache_stat cs = {0};
		fill(&cs, i);
		CHECK_INT(dirsnap_add(&s, name, &cs, false), 0);
		names += glibc_chunk(strlen(name) + 1);
	}
	dirsnap_trim(&s);
	while (cap < n)
		cap *= 2;
	double before = (double)(cap * sizeof(struct dirent_copy) + names) / n;
	double after = (double)dirsnap_bytes(&s) / n;
	fprintf(stderr,
		"%-28s %zu entries: %.1f bytes/entry before (%.1f MB), "
		"%.1f after (%.1f MB; arena %.1f + offsets %zu)\n",
		kind, n, before, before * n / 1e6, after, after * n / 1e6,
		(double)s.used / n, sizeof(*s.at));
	dirsnap_clear(&s);
	return after;
}

/* etcd: a key (file) of ~150 bytes, mod_revision ~10^6, written once. */
static void etcd_file(struct cache_stat *cs, size_t i)
{
	int64_t rev = 1000000 + (int64_t)i * 3;
	cs->has_data = cs->data_shown = true;
	cs->meta = (struct topo_meta){.version = rev,
				      .create_id = rev,
				      .modify_id = rev,
				      .change_count = 1,
				      .size = 140 + i % 20,
				      .has_data = true};
}

/* etcd: tablets/zone1-.../ holding its Tablet key: a prefix, no meta. */
static void etcd_dir(struct cache_stat *cs, size_t i)
{
	cs->is_dir = true;
	cs->newest = 1000000 + (int64_t)i * 3;
}

/* ZooKeeper: a znode with one child (Tablet), empty data, zxids of epoch
 * 5, times in ns. */
static void zk_dir(struct cache_stat *cs, size_t i)
{
	int64_t zxid = (int64_t)5 << 32 | (int64_t)(1000 + i * 3);
	int64_t t = 1700000000000000000 + (int64_t)i * 1000000;
	cs->is_dir = cs->has_data = cs->real_dir = true;
	cs->meta = (struct topo_meta){.create_id = zxid,
				      .modify_id = zxid,
				      .child_count = 1,
				      .num_children = 1,
				      .ctime_ns = t,
				      .mtime_ns = t,
				      .has_data = true,
				      .real_dir = true};
	cs->newest = 0;
}

static void test_bytes_per_entry(void)
{
	/* bounds well above what the packing takes now (about 43, 27 and
	 * 51 bytes): a guard against losing it, not a benchmark */
	CHECK(measure("etcd file (issue 25 shape)", 512000, etcd_file) < 48);
	CHECK(measure("etcd directory (prefix)", 512000, etcd_dir) < 32);
	CHECK(measure("ZooKeeper directory znode", 512000, zk_dir) < 56);
}

int main(void)
{
	const char *env = getenv("TOPOFS_TEST_SEED");
	unsigned seed = env ? (unsigned)strtoul(env, NULL, 10) : 25;
	test_meta_pack();
	test_edges();
	test_random(seed, 20000);
	test_bytes_per_entry();
	return check_report();
}
