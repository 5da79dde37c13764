/* Unit tests of fs/handle.c's memory of versions seen per path: what an
 * open's compare-and-set base may come from. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* A writable handle of path holding `content`, opened by pid at version,
 * edited (dirty) or not. */
static struct handle *open_file(struct handle_list *l, const char *path,
				const char *content, pid_t pid, int64_t version,
				bool dirty)
{
	size_t len = strlen(content);
	unsigned char *buf = malloc(len ? len : 1);
	memcpy(buf, content, len);
	struct topo_meta meta = {.version = version, .size = len};
	struct handle *h = handle_new(l, path, false, buf, len, version, &meta);
	h->writable = true;
	h->pid = pid;
	h->dirty = dirty;
	return h;
}

/* stat by path shows an open file's size while it has edits: pid's own
 * first, else the newest; unlinked and clean handles do not count. */
static void test_open_size_prefers_own_process(void)
{
	struct handle_list l;
	handle_list_init(&l);
	size_t len = 99;
	struct handle *a = open_file(&l, "k", "aaaa", 10, 5, true);
	CHECK(!handle_open_size(&l, "k", true, 10, &len)); /* a data file */
	struct handle *b = open_file(&l, "k", "bb", 20, 5, true);
	struct handle *c = open_file(&l, "k", "cccccc", 30, 5, false);
	CHECK(handle_open_size(&l, "k", false, 10, &len));
	CHECK_INT(len, 4);
	CHECK(handle_open_size(&l, "k", false, 20, &len));
	CHECK_INT(len, 2);
	CHECK(handle_open_size(&l, "k", false, 30, &len)); /* c is clean */
	CHECK_INT(len, 2);
	CHECK(!handle_open_size(&l, "other", false, 10, &len));
	CHECK_INT(handles_unlink(&l, "k", false), 0); /* none new */
	CHECK(!handle_open_size(&l, "k", false, 10, &len));
	handle_free(&l, a);
	handle_free(&l, b);
	handle_free(&l, c);
	handle_list_destroy(&l);
}

/* A stat by path while files not read yet are open with other versions
 * than the store's: the requesting process gets its newest open file's
 * version (not an older one whose RELEASE has not come yet), any other
 * process the store's, told not to be kept; files read already, scratch
 * files, files not yet in the store and unlinked ones do not count. */
static void test_view_of_open_files(void)
{
	struct handle_list l;
	handle_list_init(&l);
	struct topo_meta m = {0};
	size_t len = 0;
	/* the store holds version 7, 4 bytes */
	CHECK_INT(handle_view_of(&l, "k", false, 10, 7, 4, &m, &len),
		  VIEW_STORE);
	struct handle *old = open_file(&l, "k", "old", 10, 5, false);
	CHECK_INT(handle_view_of(&l, "k", false, 10, 7, 4, &m, &len), VIEW_OWN);
	CHECK_INT(m.version, 5);
	CHECK_INT(len, 3);
	CHECK_INT(handle_view_of(&l, "k", false, 20, 7, 4, &m, &len),
		  VIEW_OTHERS);
	CHECK_INT(handle_view_of(&l, "k", true, 10, 7, 4, &m, &len),
		  VIEW_STORE); /* another name: k/.topofs-data */
	CHECK_INT(handle_view_of(&l, "k2", false, 10, 7, 4, &m, &len),
		  VIEW_STORE);
	/* pid 10 opens again and gets the store's version: its newest
	 * decides; the old one still counts for others */
	struct handle *cur = open_file(&l, "k", "cur!", 10, 7, false);
	CHECK_INT(handle_view_of(&l, "k", false, 10, 7, 4, &m, &len),
		  VIEW_STORE);
	CHECK_INT(handle_view_of(&l, "k", false, 20, 7, 4, &m, &len),
		  VIEW_OTHERS);
	handle_free(&l, old);
	CHECK_INT(handle_view_of(&l, "k", false, 20, 7, 4, &m, &len),
		  VIEW_STORE);
	/* the same version at another shown length (a view's size) */
	CHECK_INT(handle_view_of(&l, "k", false, 10, 7, 5, &m, &len), VIEW_OWN);
	CHECK_INT(len, 4);
	/* a file read already no longer counts, for pid nor others */
	struct handle *read = open_file(&l, "k", "rd", 20, 6, false);
	CHECK_INT(handle_view_of(&l, "k", false, 20, 7, 4, &m, &len), VIEW_OWN);
	char b[8];
	CHECK_INT(handle_read(read, b, 1, 0), 1);
	CHECK_INT(handle_view_of(&l, "k", false, 20, 7, 4, &m, &len),
		  VIEW_STORE);
	CHECK_INT(handle_view_of(&l, "k", false, 30, 7, 4, &m, &len),
		  VIEW_STORE);
	handle_free(&l, read);
	/* not counted: unlinked, scratch, not yet in the store, queued */
	handles_unlink(&l, "k", false);
	CHECK_INT(handle_view_of(&l, "k", false, 10, 7, 5, &m, &len),
		  VIEW_STORE);
	struct handle *scr = open_file(&l, "k", "s", 10, 1, false);
	scr->scratch = true;
	struct handle *fresh =
	    open_file(&l, "k", "n", 10, TOPO_EXPECT_ABSENT, true);
	struct handle *queued = open_file(&l, "k", "q", 20, 3, true);
	queued->queued = true;
	CHECK_INT(handle_view_of(&l, "k", false, 10, 7, 4, &m, &len),
		  VIEW_STORE);
	CHECK_INT(handle_view_of(&l, "k", false, 30, 7, 4, &m, &len),
		  VIEW_STORE);
	handle_free(&l, queued);
	handle_free(&l, fresh);
	handle_free(&l, scr);
	handle_free(&l, cur);
	handle_list_destroy(&l);
}

/* unlink counts the open files not yet in the store; they leave listings
 * and pending stats. */
static void test_unlink_new_file(void)
{
	struct handle_list l;
	handle_list_init(&l);
	size_t len;
	struct handle *n =
	    open_file(&l, "d/tmp1", "", 10, TOPO_EXPECT_ABSENT, true);
	CHECK(handle_pending(&l, "d/tmp1", true, &len));
	CHECK_INT(handles_unlink(&l, "d/tmp1", false), 1);
	CHECK(n->unlinked);
	CHECK(!handle_pending(&l, "d/tmp1", true, &len));
	CHECK_INT(handles_unlink(&l, "d/tmp1", false), 0); /* gone already */
	handle_free(&l, n);
	handle_list_destroy(&l);
}

/* A rename moves the open files of the name (or below a directory), and
 * those based on the moved version compare with the new one; a stale one
 * keeps its base (its commit then fails). */
static void test_move_and_rebase(void)
{
	struct handle_list l;
	handle_list_init(&l);
	struct handle *f = open_file(&l, "a/f", "x", 10, 7, true);
	struct handle *stale = open_file(&l, "a/f", "y", 11, 6, true);
	struct handle *ab = open_file(&l, "ab/g", "z", 12, 3, true);
	struct handle *g = open_file(&l, "a/sub/g", "w", 13, 4, false);
	CHECK_INT(handles_move(&l, "a", "b", true), 0);
	CHECK_STR(f->path, "b/f");
	CHECK_STR(stale->path, "b/f");
	CHECK_STR(ab->path, "ab/g"); /* not below "a" */
	CHECK_STR(g->path, "b/sub/g");
	handles_rebase(&l, "b/f", 7, 40);
	CHECK_INT(f->base, 40);
	CHECK_INT(f->meta.version, 40);
	CHECK_INT(stale->base, 6);
	CHECK_INT(handles_move(&l, "b/f", "b/h", false), 0);
	CHECK_STR(f->path, "b/h");
	handle_free(&l, f);
	handle_free(&l, stale);
	handle_free(&l, ab);
	handle_free(&l, g);
	handle_list_destroy(&l);
}

/* A new file renamed before its first close takes the target's name and
 * the base given; it is never "the same bytes" as what the target holds. */
static void test_move_new_file(void)
{
	struct handle_list l;
	handle_list_init(&l);
	struct handle *n =
	    open_file(&l, "tmpXYZ", "", 10, TOPO_EXPECT_ABSENT, true);
	n->meta.version = 0; /* ZooKeeper's first version */
	CHECK_INT(handles_move_new(&l, "nosuch", "t", 0), 0);
	CHECK_INT(handles_move_new(&l, "tmpXYZ", "target", 0), 1);
	CHECK_STR(n->path, "target");
	CHECK_INT(n->base, 0);
	CHECK(n->meta.version != n->base);
	CHECK(n->dirty);
	handle_free(&l, n);
	handle_list_destroy(&l);
}

/* A process's own unlink and rename update what it is known to have read. */
static void test_read_by_follows_own_names(void)
{
	struct handle_list l;
	handle_list_init(&l);
	int64_t v;
	handle_read_by(&l, "f", 10, 5);
	handle_read_unlinked(&l, "f", 10);
	CHECK(handle_last_read(&l, "f", 10, &v));
	CHECK_INT(v, TOPO_EXPECT_ABSENT);
	handle_read_by(&l, "target", 10, 8);
	handle_read_renamed(&l, "tmp", "target", 10, 3, 9);
	CHECK(handle_last_read(&l, "target", 10, &v));
	CHECK_INT(v, 9);
	handle_read_by(&l, "a", 20, 4);
	handle_read_renamed(&l, "a", "b", 20, 4, 12);
	CHECK(handle_last_read(&l, "b", 20, &v));
	CHECK_INT(v, 12);
	CHECK(!handle_last_read(&l, "b", 10, &v));   /* not another's */
	handle_read_renamed(&l, "x", "y", 30, 1, 2); /* never read: nothing */
	CHECK(!handle_last_read(&l, "y", 30, &v));
	handle_list_destroy(&l);
}

int main(void)
{
	test_open_size_prefers_own_process();
	test_view_of_open_files();
	test_unlink_new_file();
	test_move_and_rebase();
	test_move_new_file();
	test_read_by_follows_own_names();
	test_last_read_is_per_process();
	test_last_read_is_bounded();
	test_take_moved_leaves_base_of_unmoved();
	test_take_moved_gives_version_once();
	test_moved_without_seen();
	test_seen_is_bounded();
	return check_report();
}
