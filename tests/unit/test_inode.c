/* Unit tests of fs/inode.c: the table of the nodes the kernel knows. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../fs/inode.h"
#include "check.h"

static struct inode_table *it;

/* Look name up in parent as type; returns the node ID (0 on error). */
static uint64_t look(uint64_t parent, const char *name, mode_t type)
{
	uint64_t ino = 0;
	CHECK_INT(inode_lookup(it, parent, name, type, &ino), 0);
	return ino;
}

/* The path of ino, or the errno as text ("-116" for ESTALE). */
static const char *path_of(uint64_t ino)
{
	static char buf[4096];
	int rc = inode_path(it, ino, buf, sizeof(buf));
	if (rc)
		snprintf(buf, sizeof(buf), "%d", rc);
	return buf;
}

static void test_root(void)
{
	CHECK_INT(inode_count(it), 1);
	CHECK_STR(path_of(INODE_ROOT), "/");
	char buf[64];
	CHECK_INT(inode_child_path(it, INODE_ROOT, "a", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "/a");
	struct inode_ref r;
	CHECK_INT(inode_find(it, "", &r), 0);
	CHECK_INT(r.ino, INODE_ROOT);
	CHECK_INT(r.parent, 0);
	CHECK_STR(r.name, "");
	CHECK_INT(r.type, S_IFDIR);
	CHECK_INT(inode_find(it, "/", &r), 0);
	CHECK_INT(r.ino, INODE_ROOT);
	/* the root is never forgotten */
	inode_forget(it, INODE_ROOT, 5);
	CHECK_INT(inode_count(it), 1);
}

static void test_lookup_counting(void)
{
	uint64_t a = look(INODE_ROOT, "a", S_IFDIR);
	CHECK_INT(a, 2); /* IDs count up from the root's */
	CHECK_INT(look(INODE_ROOT, "a", S_IFDIR), a);
	CHECK_INT(inode_nlookup(it, a), 2);
	uint64_t b = look(a, "b", S_IFREG);
	CHECK_INT(b, 3);
	CHECK_STR(path_of(b), "/a/b");
	CHECK_INT(inode_count(it), 3);

	inode_forget(it, b, 1);
	CHECK_INT(inode_count(it), 2);
	CHECK_STR(path_of(b), "-116"); /* -ESTALE: unknown now */
	/* a name forgotten and looked up again gets a new ID */
	uint64_t b2 = look(a, "b", S_IFREG);
	CHECK_INT(b2, 4);
	CHECK_STR(path_of(b2), "/a/b");

	inode_forget(it, a, 1);
	CHECK_INT(inode_nlookup(it, a), 1);
	CHECK_STR(path_of(b2), "/a/b");
	/* forgetting more than it holds forgets what it holds */
	inode_forget(it, b2, 7);
	inode_forget(it, a, 7);
	CHECK_INT(inode_count(it), 1);
	CHECK_INT(inode_nlookup(it, a), 0);

	uint64_t ino = 99;
	CHECK_INT(inode_lookup(it, 12345, "x", S_IFREG, &ino), -ESTALE);
	CHECK_INT(ino, 99);
}

/* A directory the kernel forgot before its child stays while the child
 * names it (FORGETs come in any order). */
static void test_parent_outlives_forget(void)
{
	uint64_t d = look(INODE_ROOT, "d", S_IFDIR);
	uint64_t e = look(d, "e", S_IFREG);
	inode_forget(it, d, 1);
	CHECK_INT(inode_count(it), 3);
	CHECK_STR(path_of(e), "/d/e");
	/* and a new lookup finds the same node */
	CHECK_INT(look(INODE_ROOT, "d", S_IFDIR), d);
	inode_forget(it, d, 1);
	inode_forget(it, e, 1);
	CHECK_INT(inode_count(it), 1);
}

static void test_rename_moves_subtree(void)
{
	uint64_t a = look(INODE_ROOT, "a", S_IFDIR);
	uint64_t x = look(a, "x", S_IFDIR);
	uint64_t y = look(x, "y", S_IFREG);
	uint64_t z = look(INODE_ROOT, "z", S_IFDIR);
	CHECK_STR(path_of(y), "/a/x/y");

	CHECK_INT(inode_rename(it, INODE_ROOT, "a", z, "moved"), 0);
	CHECK_STR(path_of(a), "/z/moved");
	CHECK_STR(path_of(x), "/z/moved/x");
	CHECK_STR(path_of(y), "/z/moved/x/y");
	struct inode_ref r;
	CHECK_INT(inode_find(it, "a", &r), -ENOENT);
	CHECK_INT(inode_find(it, "z/moved/x/y", &r), 0);
	CHECK_INT(r.ino, y);
	CHECK_INT(r.parent, x);
	CHECK_STR(r.name, "y");
	CHECK_INT(r.type, S_IFREG);

	/* a rename within one directory, and a name with no node */
	CHECK_INT(inode_rename(it, x, "y", x, "y2"), 0);
	CHECK_STR(path_of(y), "/z/moved/x/y2");
	CHECK_INT(inode_rename(it, x, "none", x, "other"), 0);
	CHECK_INT(inode_count(it), 5);

	inode_forget(it, y, 1);
	inode_forget(it, x, 1);
	inode_forget(it, a, 1);
	inode_forget(it, z, 1);
	CHECK_INT(inode_count(it), 1);
}

/* The node ID inode_find gives for path (0: none). */
static uint64_t find(const char *path)
{
	struct inode_ref r;
	return inode_find(it, path, &r) == 0 ? r.ino : 0;
}

/* A name lives in its node (8 bytes at least); a rename writes a name that
 * fits over it, and keeps a longer one as an owned copy. Each step checks
 * the node by ID, by its new name, and that the old name is gone; ASan
 * catches an owned name leaked or freed twice. */
static void test_rename_names(void)
{
	uint64_t d = look(INODE_ROOT, "d", S_IFDIR);
	uint64_t a = look(d, "a", S_IFREG); /* 1 byte: 8 in the node */
	static const char *const steps[] = {
	    "seven77",			    /* 7 bytes: still in the node */
	    "eight888",			    /* 8: owned */
	    "a-name-longer-than-a-pointer", /* owned, the last copy freed */
	    "b",			    /* back in the node */
	    "c",			    /* in the node, shorter than it */
	    "sixteen-bytes-16",		    /* owned again */
	    "sixteen-bytes-17",		    /* owned, the last copy freed */
	};
	const char *old = "a";
	char want[64];
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		CHECK_INT(inode_rename(it, d, old, d, steps[i]), 0);
		snprintf(want, sizeof(want), "/d/%s", steps[i]);
		CHECK_STR(path_of(a), want);
		CHECK_INT(find(want), a);
		snprintf(want, sizeof(want), "/d/%s", old);
		CHECK_INT(find(want), 0);
		/* a lookup of the new name finds the same node */
		CHECK_INT(look(d, steps[i], S_IFREG), a);
		old = steps[i];
	}
	CHECK_INT(inode_nlookup(it, a), 8);
	CHECK_INT(inode_count(it), 3);

	/* a directory with an owned name: its children follow it */
	uint64_t e = look(d, "e", S_IFREG);
	CHECK_INT(inode_rename(it, INODE_ROOT, "d", INODE_ROOT,
			       "a-directory-renamed-to-a-long-name"),
		  0);
	CHECK_STR(path_of(a), "/a-directory-renamed-to-a-long-name/"
			      "sixteen-bytes-17");
	CHECK_STR(path_of(e), "/a-directory-renamed-to-a-long-name/e");
	CHECK_INT(find("a-directory-renamed-to-a-long-name/e"), e);

	/* unlinked with an owned name, then the name looked up: a new node */
	const char *dn = "/a-directory-renamed-to-a-long-name";
	inode_unlink(it, d, "sixteen-bytes-17");
	CHECK_STR(path_of(a), "-116");
	CHECK_INT(inode_nlookup(it, a), 8);
	snprintf(want, sizeof(want), "%s/sixteen-bytes-17", dn);
	CHECK_INT(find(want), 0);
	uint64_t a2 = look(d, "sixteen-bytes-17", S_IFREG);
	CHECK(a2 != a);
	CHECK_STR(path_of(a2), want);

	/* renamed over while its name is owned: the target's name is freed,
	 * the target kept for its holders */
	CHECK_INT(
	    inode_rename(it, d, "sixteen-bytes-17", d, "owned-name-of-a2"), 0);
	CHECK_INT(inode_rename(it, d, "e", d, "owned-name-of-a2"), 0);
	snprintf(want, sizeof(want), "%s/owned-name-of-a2", dn);
	CHECK_STR(path_of(e), want);
	CHECK_INT(find(want), e);
	CHECK_STR(path_of(a2), "-116");
	CHECK_INT(inode_count(it), 5);

	inode_forget(it, a, 8);
	inode_forget(it, a2, 1);
	inode_forget(it, e, 1);
	inode_forget(it, d, 1);
	CHECK_INT(inode_count(it), 1);
	CHECK_INT(find("a-directory-renamed-to-a-long-name"), 0);
}

/* A table freed with nodes whose names are owned, named or unlinked
 * (ASan: each freed once). */
static void test_free_with_owned_names(void)
{
	struct inode_table *t = inode_table_new();
	CHECK(t != NULL);
	uint64_t x, y, z;
	CHECK_INT(inode_lookup(t, INODE_ROOT, "x", S_IFDIR, &x), 0);
	CHECK_INT(inode_lookup(t, x, "y", S_IFREG, &y), 0);
	CHECK_INT(inode_lookup(t, x, "z", S_IFREG, &z), 0);
	CHECK_INT(
	    inode_rename(t, INODE_ROOT, "x", INODE_ROOT, "a-long-owned-name"),
	    0);
	CHECK_INT(inode_rename(t, x, "y", x, "another-long-owned-name"), 0);
	CHECK_INT(inode_rename(t, x, "z", x, "a-third-one-soon-unlinked"), 0);
	inode_unlink(t, x, "a-third-one-soon-unlinked");
	char buf[64];
	CHECK_INT(inode_path(t, y, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "/a-long-owned-name/another-long-owned-name");
	CHECK_INT(inode_path(t, z, buf, sizeof(buf)), -ESTALE);
	inode_table_free(t);
}

static void test_rename_over_keeps_open_target(void)
{
	uint64_t f = look(INODE_ROOT, "f", S_IFREG);
	uint64_t g = look(INODE_ROOT, "g", S_IFREG);
	CHECK_INT(inode_rename(it, INODE_ROOT, "f", INODE_ROOT, "g"), 0);
	CHECK_STR(path_of(f), "/g");
	CHECK_STR(path_of(g), "-116");	    /* renamed over: no path */
	CHECK_INT(inode_nlookup(it, g), 1); /* but held until forgotten */
	CHECK_INT(inode_count(it), 3);
	struct inode_ref r;
	CHECK_INT(inode_find(it, "g", &r), 0);
	CHECK_INT(r.ino, f);
	inode_forget(it, g, 1);
	CHECK_INT(inode_count(it), 2);
	inode_forget(it, f, 1);
	CHECK_INT(inode_count(it), 1);
}

static void test_unlink_keeps_open_node(void)
{
	uint64_t d = look(INODE_ROOT, "d", S_IFDIR);
	uint64_t f = look(d, "f", S_IFREG);
	inode_unlink(it, d, "f");
	CHECK_STR(path_of(f), "-116");
	CHECK_INT(inode_nlookup(it, f), 1);
	CHECK_INT(inode_count(it), 3);
	struct inode_ref r;
	CHECK_INT(inode_find(it, "d/f", &r), -ENOENT);
	/* the name may come back: a new node */
	uint64_t f2 = look(d, "f", S_IFREG);
	CHECK(f2 != f);
	CHECK_STR(path_of(f2), "/d/f");
	inode_unlink(it, d, "absent"); /* nothing */

	/* rmdir: the children of an unlinked directory have no path */
	uint64_t e = look(d, "e", S_IFDIR);
	uint64_t g = look(e, "g", S_IFREG);
	inode_unlink(it, d, "e");
	CHECK_STR(path_of(g), "-116");
	char buf[64];
	CHECK_INT(inode_child_path(it, e, "x", buf, sizeof(buf)), -ESTALE);
	/* a lookup under it (one that raced the rmdir) links nothing */
	uint64_t none = 77;
	size_t before = inode_count(it);
	CHECK_INT(inode_lookup(it, e, "x", S_IFREG, &none), -ESTALE);
	CHECK_INT(none, 77);
	CHECK_INT(inode_count(it), before);

	inode_forget(it, f, 1);
	inode_forget(it, e, 1);
	CHECK_INT(inode_count(it), 5); /* e stays while g names it */
	inode_forget(it, g, 1);
	inode_forget(it, f2, 1);
	inode_forget(it, d, 1);
	CHECK_INT(inode_count(it), 1);
}

/* A name that changes type gets a new node; the old one keeps working for
 * its holders but has no path. */
static void test_type_change_new_node(void)
{
	uint64_t f = look(INODE_ROOT, "f", S_IFREG);
	CHECK(inode_type_is(it, f, S_IFREG));
	CHECK(!inode_type_is(it, f, S_IFDIR));
	uint64_t d = look(INODE_ROOT, "f", S_IFDIR);
	CHECK(d != f);
	CHECK_STR(path_of(d), "/f");
	CHECK_STR(path_of(f), "-116");
	CHECK_INT(inode_nlookup(it, f), 1);
	CHECK_INT(inode_nlookup(it, d), 1);
	CHECK(inode_type_is(it, 777777, S_IFLNK)); /* unknown: nothing to
						     contradict */
	inode_forget(it, f, 1);
	inode_forget(it, d, 1);
	CHECK_INT(inode_count(it), 1);
}

static void test_path_lengths(void)
{
	uint64_t a = look(INODE_ROOT, "a", S_IFDIR);
	uint64_t b = look(a, "b", S_IFREG);
	char buf[8];
	CHECK_INT(inode_path(it, b, buf, 4), -ENAMETOOLONG);
	CHECK_INT(inode_path(it, b, buf, 5), 0); /* "/a/b" and the NUL */
	CHECK_STR(buf, "/a/b");
	CHECK_INT(inode_path(it, INODE_ROOT, buf, 1), -ENAMETOOLONG);
	CHECK_INT(inode_path(it, INODE_ROOT, buf, 2), 0);
	CHECK_STR(buf, "/");
	CHECK_INT(inode_child_path(it, a, "cd", buf, 5), -ENAMETOOLONG);
	CHECK_INT(inode_child_path(it, a, "cd", buf, 6), 0);
	CHECK_STR(buf, "/a/cd");
	inode_forget(it, b, 1);
	inode_forget(it, a, 1);
}

/* test_many's names: directory k, renamed halfway if even; file i,
 * renamed as it is made if i % 3 is 1 (to an owned name) or 2 (over its
 * name in the node). */
static const char *many_dir(int k, bool renamed, char *buf, size_t size)
{
	if (renamed && k % 2 == 0)
		snprintf(buf, size, "directory-number-%d", k);
	else
		snprintf(buf, size, "d%d", k);
	return buf;
}

static const char *many_file(int i, bool renamed, char *buf, size_t size)
{
	if (renamed && i % 3 == 1)
		snprintf(buf, size, "renamed-to-a-long-name-%d", i);
	else
		snprintf(buf, size, "%c%d", renamed && i % 3 == 2 ? 'r' : 'f',
			 i);
	return buf;
}

/* Many nodes, renamed as the hashes double from 64 buckets to thousands:
 * every node is still found by its ID and by its parent and name. */
static void test_many(void)
{
	enum { D = 30, N = 20000 };
	static uint64_t dirs[D], files[N];
	char name[64], name2[64], dname[64];
	for (int k = 0; k < D; k++)
		dirs[k] =
		    look(INODE_ROOT, many_dir(k, false, name, 64), S_IFDIR);
	for (int i = 0; i < N; i++) {
		uint64_t d = dirs[i % D];
		files[i] = look(d, many_file(i, false, name, 64), S_IFREG);
		CHECK_INT(
		    inode_rename(it, d, name, d, many_file(i, true, name2, 64)),
		    0);
		if (i != N / 2)
			continue;
		for (int k = 0; k < D; k += 2)
			CHECK_INT(inode_rename(it, INODE_ROOT,
					       many_dir(k, false, name, 64),
					       INODE_ROOT,
					       many_dir(k, true, name2, 64)),
				  0);
	}
	CHECK_INT(inode_count(it), 1 + D + N);
	int wrong = 0;
	for (int i = 0; i < N; i++) {
		char want[160];
		snprintf(want, sizeof(want), "/%s/%s",
			 many_dir(i % D, true, dname, 64),
			 many_file(i, true, name, 64));
		wrong += strcmp(path_of(files[i]), want) != 0;
		struct inode_ref r;
		wrong += inode_find(it, want, &r) != 0 || r.ino != files[i] ||
			 r.parent != dirs[i % D] ||
			 strcmp(r.name, many_file(i, true, name, 64)) != 0;
	}
	CHECK_INT(wrong, 0);

	struct inode_ref *refs;
	inode_unlink(it, dirs[0], "f0");
	CHECK_INT(inode_list(it, &refs), 1 + D + N);
	int unlinked = 0;
	for (int i = 0; i < 1 + D + N; i++)
		unlinked += refs[i].parent == 0 && refs[i].ino != INODE_ROOT;
	CHECK_INT(unlinked, 1);
	free(refs);

	for (int k = 0; k < D; k++)
		inode_forget(it, dirs[k], 1);
	for (int i = 0; i < N; i++)
		inode_forget(it, files[i], 1);
	CHECK_INT(inode_count(it), 1);
}

static void test_changes(void)
{
	uint64_t c = inode_changes(it);
	inode_note_change(it);
	inode_note_change(it);
	CHECK_INT(inode_changes(it), c + 2);
}

int main(void)
{
	it = inode_table_new();
	CHECK(it != NULL);
	test_root();
	test_lookup_counting();
	test_parent_outlives_forget();
	test_rename_moves_subtree();
	test_rename_names();
	test_free_with_owned_names();
	test_rename_over_keeps_open_target();
	test_unlink_keeps_open_node();
	test_type_change_new_node();
	test_path_lengths();
	test_many();
	test_changes();
	inode_table_free(it);
	return check_report();
}
