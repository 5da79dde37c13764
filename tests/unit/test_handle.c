/* Unit tests of fs/handle.c's memory of versions seen per path: what an
 * open's compare-and-set base may come from. */
#include <stdint.h>
#include <stdlib.h>

#include "../../fs/handle.h"
#include "check.h"

/* An entry only seen (not moved) never changes the caller's base: it is
 * another open's newest version, not the one this open's bytes have. */
static void test_take_moved_leaves_base_of_unmoved(void)
{
	struct handle_list l;
	handle_list_init(&l);
	handle_seen(&l, "counter", 1053);
	int64_t base = 1040;
	CHECK(!handle_take_moved(&l, "counter", &base));
	CHECK_INT(base, 1040);
	CHECK(!handle_take_moved(&l, "other", &base));
	CHECK_INT(base, 1040);
	handle_list_destroy(&l);
}

/* A moved entry gives the version read before the move, once. */
static void test_take_moved_gives_version_once(void)
{
	struct handle_list l;
	handle_list_init(&l);
	handle_seen(&l, "Keyspace", 7);
	handle_seen(&l, "Shard", 9);
	handle_seen_moved(&l, "Keyspace", 12); /* 7 was read first */
	int64_t base = 99;
	CHECK(handle_take_moved(&l, "Keyspace", &base));
	CHECK_INT(base, 7);
	base = 99;
	CHECK(!handle_take_moved(&l, "Keyspace", &base));
	CHECK_INT(base, 99);
	int64_t v = 0;
	CHECK(handle_seen_version(&l, "Shard", &v));
	CHECK_INT(v, 9);
	handle_list_destroy(&l);
}

/* A path never seen before: the move records the version given. */
static void test_moved_without_seen(void)
{
	struct handle_list l;
	handle_list_init(&l);
	handle_seen_moved(&l, "a/b", 3);
	int64_t base = -1;
	CHECK(handle_take_moved(&l, "a/b", &base));
	CHECK_INT(base, 3);
	handle_list_destroy(&l);
}

/* The memory is bounded: the oldest paths are forgotten, the newest kept. */
static void test_seen_is_bounded(void)
{
	struct handle_list l;
	handle_list_init(&l);
	char p[32];
	for (int i = 0; i < SEEN_MAX + 5; i++) {
		snprintf(p, sizeof(p), "k%d", i);
		handle_seen(&l, p, i + 1);
	}
	int64_t v = 0;
	CHECK(!handle_seen_version(&l, "k0", &v));
	snprintf(p, sizeof(p), "k%d", SEEN_MAX + 4);
	CHECK(handle_seen_version(&l, p, &v));
	CHECK_INT(v, SEEN_MAX + 5);
	handle_list_destroy(&l);
}

/* What each process last read is kept per (path, process); the general
 * "seen" list does not answer for it and it does not answer for that. */
static void test_last_read_is_per_process(void)
{
	struct handle_list l;
	handle_list_init(&l);
	handle_read_by(&l, "ks/Keyspace", 100, 4);
	handle_read_by(&l, "ks/Keyspace", 200, 6);
	handle_read_by(&l, "ks/Shard", 100, 9);
	handle_seen(&l, "ks/Keyspace", 8);
	int64_t v = -7;
	CHECK(handle_last_read(&l, "ks/Keyspace", 100, &v));
	CHECK_INT(v, 4);
	CHECK(handle_last_read(&l, "ks/Keyspace", 200, &v));
	CHECK_INT(v, 6);
	CHECK(handle_last_read(&l, "ks/Shard", 100, &v));
	CHECK_INT(v, 9);
	v = -7;
	CHECK(!handle_last_read(&l, "ks/Keyspace", 300, &v));
	CHECK(!handle_last_read(&l, "ks/Shard", 200, &v));
	CHECK(!handle_last_read(&l, "ks", 100, &v));
	CHECK_INT(v, -7);
	CHECK(handle_seen_version(&l, "ks/Keyspace", &v));
	CHECK_INT(v, 8);
	/* a second read by the same process replaces its entry */
	handle_read_by(&l, "ks/Keyspace", 100, 11);
	CHECK(handle_last_read(&l, "ks/Keyspace", 100, &v));
	CHECK_INT(v, 11);
	handle_list_destroy(&l);
}

/* Bounded too: a process whose read is older than SEEN_MAX later reads is
 * forgotten (its rewrite then compares with the version it sees). */
static void test_last_read_is_bounded(void)
{
	struct handle_list l;
	handle_list_init(&l);
	for (int i = 0; i < SEEN_MAX + 1; i++)
		handle_read_by(&l, "counter", 1000 + i, i);
	int64_t v = -7;
	CHECK(!handle_last_read(&l, "counter", 1000, &v));
	CHECK(handle_last_read(&l, "counter", 1001, &v));
	CHECK_INT(v, 1);
	CHECK(handle_last_read(&l, "counter", 1000 + SEEN_MAX, &v));
	CHECK_INT(v, SEEN_MAX);
	handle_list_destroy(&l);
}

int main(void)
{
	test_last_read_is_per_process();
	test_last_read_is_bounded();
	test_take_moved_leaves_base_of_unmoved();
	test_take_moved_gives_version_once();
	test_moved_without_seen();
	test_seen_is_bounded();
	return check_report();
}
