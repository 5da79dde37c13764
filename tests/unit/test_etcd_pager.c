/*
 * test_etcd_pager.c - the windows of an etcd listing (backends/etcd/pager.c)
 * against a simulated server: every key of the range comes exactly once and
 * in order, whatever the keys (binary, prefixes of each other, NULs, 0xff),
 * and the keys the server walks to count each window's keys (what etcd 3.4
 * and 3.5 do for every range request) stay O(n) on Vitess-shaped trees.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../backends/etcd/pager.h"
#include "check.h"

struct key {
	unsigned char *b;
	size_t len;
};

struct store {
	struct key *keys; /* sorted, unique */
	size_t n, cap;
};

static int key_cmp(const unsigned char *a, size_t alen, const unsigned char *b,
		   size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	return c ? c : alen < blen ? -1 : alen > blen;
}

static int sort_cmp(const void *x, const void *y)
{
	const struct key *a = x, *b = y;
	return key_cmp(a->b, a->len, b->b, b->len);
}

static void add(struct store *s, const void *b, size_t len)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->keys = realloc(s->keys, s->cap * sizeof(*s->keys));
	}
	s->keys[s->n].b = malloc(len ? len : 1);
	memcpy(s->keys[s->n].b, b, len);
	s->keys[s->n++].len = len;
}

static void adds(struct store *s, const char *k)
{
	add(s, k, strlen(k));
}

/* Sort and drop duplicates. */
static void seal(struct store *s)
{
	qsort(s->keys, s->n, sizeof(*s->keys), sort_cmp);
	size_t j = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (j && !sort_cmp(&s->keys[j - 1], &s->keys[i]))
			free(s->keys[i].b);
		else
			s->keys[j++] = s->keys[i];
	}
	s->n = j;
}

static void store_free(struct store *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->keys[i].b);
	free(s->keys);
	memset(s, 0, sizeof(*s));
}

/* The index of the first key >= k ("\0" as an end: past every key). */
static size_t lower(const struct store *s, const unsigned char *k, size_t len,
		    bool is_end)
{
	if (is_end && len == 1 && k[0] == 0)
		return s->n;
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (key_cmp(s->keys[mid].b, s->keys[mid].len, k, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct result {
	size_t got;	 /* keys given, in order */
	size_t walked;	 /* keys the server counted */
	size_t requests; /* range requests */
	bool in_order;	 /* every key given was the next one expected */
	int err;
};

/* List [start, end) of s through the pager, `limit` keys per page. */
static struct result list(const struct store *s, const void *start,
			  size_t startlen, const unsigned char *end,
			  size_t endlen, size_t limit)
{
	struct result r = {.in_order = true};
	struct etcd_pager p;
	size_t want = lower(s, start, startlen, false);
	size_t last = lower(s, end, endlen, true);
	r.err = etcd_pager_init(&p, start, startlen, end, endlen);
	while (!r.err && !p.done && r.requests < 10 * s->n + 100) {
		const unsigned char *stop;
		size_t stoplen;
		etcd_pager_stop(&p, &stop, &stoplen);
		size_t a = lower(s, p.start, p.startlen, false);
		size_t b = lower(s, stop, stoplen, true);
		size_t count = b > a ? b - a : 0;
		size_t give = count < limit ? count : limit;
		r.walked += count;
		r.requests++;
		for (size_t i = a; i < a + give; i++)
			r.in_order = r.in_order && i == want++;
		r.got += give;
		const struct key *f = give ? &s->keys[a] : NULL;
		const struct key *l = give ? &s->keys[a + give - 1] : NULL;
		r.err = etcd_pager_next(&p, count > limit, f ? f->b : NULL,
					f ? f->len : 0, l ? l->b : NULL,
					l ? l->len : 0, give, count, limit);
	}
	r.in_order = r.in_order && want == last && p.done;
	etcd_pager_free(&p);
	return r;
}

/* Every key of the store, listed from "" to "\0". */
static struct result list_all(const struct store *s, size_t limit)
{
	static const unsigned char unbounded[1] = {0};
	return list(s, "", 0, unbounded, 1, limit);
}

/* Vitess-shaped: a few cells and keyspaces with shards, and n tablets in
 * one directory, each a directory of one record. */
static void vitess(struct store *s, const char *root, int tablets)
{
	char k[256];
	for (int ks = 0; ks < 40; ks++) {
		snprintf(k, sizeof(k), "%s/keyspaces/ks%03d/Keyspace", root,
			 ks);
		adds(s, k);
		for (int sh = 0; sh < 16; sh++) {
			snprintf(k, sizeof(k),
				 "%s/keyspaces/ks%03d/shards/%02x-%02x/Shard",
				 root, ks, sh * 16, sh * 16 + 16);
			adds(s, k);
		}
	}
	for (int c = 0; c < 3; c++) {
		snprintf(k, sizeof(k), "%s/cells/zone%d/CellInfo", root, c);
		adds(s, k);
	}
	for (int t = 0; t < tablets; t++) {
		snprintf(k, sizeof(k), "%s/tablets/zone%d-%010d/Tablet", root,
			 t % 3, 100 + t);
		adds(s, k);
	}
	seal(s);
}

/* List a Vitess tree of `tablets` tablets; the keys walked per key. */
static double walked_per_key(int tablets)
{
	struct store s = {0};
	vitess(&s, "/vitess/global", tablets);
	const char *sub = "/vitess/global/";
	const unsigned char end[] = "/vitess/global0"; /* prefix end of sub */
	struct result r =
	    list(&s, sub, strlen(sub), end, strlen((char *)end), 500);
	CHECK_INT(r.err, 0);
	CHECK_INT(r.got, s.n);
	CHECK(r.in_order);
	CHECK(r.requests < 3 * s.n / 500 + 100);
	fprintf(stderr, "vitess %zu keys: %zu requests, %zu keys walked\n", s.n,
		r.requests, r.walked);
	double per_key = (double)r.walked / (double)s.n;
	store_free(&s);
	return per_key;
}

/* The server's work per key does not grow with the tree: with a fixed
 * range end it grows tenfold from 20,000 to 200,000 keys (n / 1000 keys
 * walked per key: 20 and 200). */
static void test_vitess_tree_is_linear(void)
{
	double small = walked_per_key(20000), big = walked_per_key(200000);
	CHECK(small < 8 && big < 8);
	CHECK(big < 1.5 * small);
}

/* Keys of every byte, of lengths 0..12, many sharing prefixes. */
static void test_random_binary_keys(void)
{
	srand(7);
	for (int round = 0; round < 40; round++) {
		struct store s = {0};
		int n = rand() % 3000;
		unsigned char k[12];
		for (int i = 0; i < n; i++) {
			size_t len = (size_t)(rand() % 12) + 1;
			for (size_t j = 0; j < len; j++) {
				int r = rand() % 8;
				k[j] = r == 0	? 0
				       : r == 1 ? 0xff
				       : r == 2 ? (unsigned char)(rand() % 4)
						: (unsigned char)rand();
			}
			add(&s, k, len);
		}
		seal(&s);
		size_t limit = (size_t)(rand() % 50) + 1;
		struct result r = list_all(&s, limit);
		CHECK_INT(r.err, 0);
		CHECK_INT(r.got, s.n);
		CHECK(r.in_order);
		store_free(&s);
	}
}

/* Keys that are prefixes of one another, trailing NULs and 0xff. */
static void test_prefixes_and_edges(void)
{
	struct store s = {0};
	const unsigned char ff[] = {0xff, 0xff, 0xff};
	const unsigned char a0[] = {'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	add(&s, "a", 1);
	for (size_t i = 2; i <= sizeof(a0); i++)
		add(&s, a0, i);
	add(&s, ff, 1);
	add(&s, ff, 2);
	add(&s, ff, 3);
	add(&s, "a\x01", 2);
	add(&s, "\0", 1);
	for (int i = 0; i < 300; i++) {
		char k[32];
		snprintf(k, sizeof(k), "a/%d", i);
		adds(&s, k);
	}
	seal(&s);
	for (size_t limit = 1; limit <= 7; limit++) {
		struct result r = list_all(&s, limit);
		CHECK_INT(r.err, 0);
		CHECK_INT(r.got, s.n);
		CHECK(r.in_order);
	}
	/* a sub-range: [a/, a0) holds the 300 "a/..." keys only */
	struct result r = list(&s, "a/", 2, (const unsigned char *)"a0", 2, 16);
	CHECK_INT(r.got, 300);
	CHECK(r.in_order);
	store_free(&s);
}

/* Sparse keys, then a dense block with a long common prefix, then sparse
 * again: a wrong guess costs requests or one long walk, never a key. */
static void test_density_changes(void)
{
	struct store s = {0};
	char k[128];
	for (int i = 0; i < 2000; i++) {
		snprintf(k, sizeof(k), "k/%08x", (unsigned)i * 2654435761u);
		adds(&s, k);
	}
	for (int i = 0; i < 50000; i++) {
		snprintf(k, sizeof(k), "k/80000000/deep/deeper/%09d", i);
		adds(&s, k);
	}
	seal(&s);
	struct result r =
	    list(&s, "k/", 2, (const unsigned char *)"k0", 2, 500);
	CHECK_INT(r.got, s.n);
	CHECK(r.in_order);
	/* a fixed range end: 52 n; windows about 10 n (each digit's end
	 * leaves byte values no key has, and the guess widens past them) */
	CHECK(r.walked < 16 * s.n);
	fprintf(stderr,
		"density changes, %zu keys: %zu requests, %zu keys "
		"walked\n",
		s.n, r.requests, r.walked);
	store_free(&s);
}

static void test_small_ranges(void)
{
	struct store s = {0};
	struct result r = list_all(&s, 500); /* empty */
	CHECK_INT(r.got, 0);
	CHECK_INT(r.requests, 1);
	CHECK(r.in_order);
	for (int i = 0; i < 501; i++) {
		char k[16];
		snprintf(k, sizeof(k), "%04d", i);
		adds(&s, k);
		seal(&s);
		if (i != 0 && i != 499 && i != 500)
			continue;
		r = list_all(&s, 500);
		CHECK_INT(r.got, s.n);
		CHECK(r.in_order);
		/* one page: one request, as before windows */
		CHECK_INT(r.requests, s.n <= 500 ? 1 : 2);
	}
	store_free(&s);
}

/* Answers that cannot be: -EIO, not a loop or a lost key. */
static void test_bad_answers(void)
{
	struct etcd_pager p;
	const unsigned char end[] = "z";
	CHECK_INT(etcd_pager_init(&p, "a", 1, end, 1), 0);
	CHECK_INT(etcd_pager_next(&p, true, NULL, 0, NULL, 0, 0, 9, 500), -EIO);
	CHECK_INT(etcd_pager_next(&p, false, (const unsigned char *)"b", 1,
				  (const unsigned char *)"c", 1, 501, 501, 500),
		  -EIO);
	CHECK(!p.done);
	etcd_pager_free(&p);
}

int main(void)
{
	test_vitess_tree_is_linear();
	test_random_binary_keys();
	test_prefixes_and_edges();
	test_density_changes();
	test_small_ranges();
	test_bad_answers();
	return check_report();
}
