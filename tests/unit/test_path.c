/* Unit tests of fs/path.c: segment rules, FUSE path mapping, scratch names,
 * inode numbers; and the longest path, as the node table builds it. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "../../fs/inode.h"
#include "../../fs/path.h"
#include "check.h"

static void test_segments(void)
{
	CHECK(path_segment_ok("a", 1));
	CHECK(path_segment_ok("-80", 3));
	CHECK(path_segment_ok("name with spaces", 16));
	CHECK(path_segment_ok("\xc3\xbc", 2));
	CHECK(!path_segment_ok("", 0));
	CHECK(!path_segment_ok(".", 1));
	CHECK(!path_segment_ok("..", 2));
	CHECK(path_segment_ok("...", 3));
	CHECK(!path_segment_ok("a\0b", 3));
	CHECK(!path_segment_ok(".topofs-data", 12));
	char long_name[300];
	memset(long_name, 'x', sizeof(long_name));
	CHECK(path_segment_ok(long_name, 255));
	CHECK(!path_segment_ok(long_name, 256));

	CHECK(path_store_ok(""));
	CHECK(path_store_ok("keyspaces/ks/Keyspace"));
	CHECK(!path_store_ok("a//b"));
	CHECK(!path_store_ok("/a"));
	CHECK(!path_store_ok("a/"));
	CHECK(!path_store_ok("a/./b"));
	CHECK(!path_store_ok("a/../b"));
	CHECK(!path_store_ok("a/.topofs-data/b"));
}

static void test_from_fuse(void)
{
	char out[64];
	bool is_data;
	CHECK_INT(path_from_fuse("/", out, sizeof(out), &is_data), 0);
	CHECK_STR(out, "");
	CHECK(!is_data);
	CHECK_INT(path_from_fuse("/a/b", out, sizeof(out), &is_data), 0);
	CHECK_STR(out, "a/b");
	CHECK(!is_data);
	CHECK_INT(path_from_fuse("/a/.topofs-data", out, sizeof(out), &is_data),
		  0);
	CHECK_STR(out, "a");
	CHECK(is_data);
	CHECK_INT(path_from_fuse("/.topofs-data", out, sizeof(out), &is_data),
		  0);
	CHECK_STR(out, "");
	CHECK(is_data);
	CHECK_INT(
	    path_from_fuse("/a/.topofs-data/b", out, sizeof(out), &is_data),
	    -EINVAL);
	CHECK_INT(path_from_fuse("/abcdefgh", out, 4, &is_data), -ENAMETOOLONG);
	char longpath[300] = "/";
	memset(longpath + 1, 'n', 256);
	char big[512];
	CHECK_INT(path_from_fuse(longpath, big, sizeof(big), &is_data),
		  -ENAMETOOLONG);
	longpath[256] = '\0'; /* 255 bytes: fine */
	CHECK_INT(path_from_fuse(longpath, big, sizeof(big), &is_data), 0);
	CHECK_INT(path_from_fuse("/x.topofs-data", out, sizeof(out), &is_data),
		  0);
	CHECK(!is_data);
}

static void test_parts(void)
{
	CHECK_INT(path_parent_len("a/b/c"), 3);
	CHECK_INT(path_parent_len("a"), 0);
	CHECK_INT(path_parent_len(""), 0);
	CHECK_STR(path_basename("a/b/c"), "c");
	CHECK_STR(path_basename("c"), "c");
	char out[8];
	CHECK_INT(path_join(out, sizeof(out), "", "x"), 0);
	CHECK_STR(out, "x");
	CHECK_INT(path_join(out, sizeof(out), "a/b", "x"), 0);
	CHECK_STR(out, "a/b/x");
	CHECK_INT(path_join(out, sizeof(out), "a/b/c", "xyz"), -ENAMETOOLONG);
	CHECK(path_within("a/b", "a"));
	CHECK(path_within("a", "a"));
	CHECK(!path_within("ab", "a"));
	CHECK(path_within("anything", ""));
}

static void test_ino(void)
{
	CHECK_INT(path_ino("", false), 1);
	CHECK(path_ino("", true) > 1);
	CHECK(path_ino("a", false) != path_ino("a", true));
	CHECK(path_ino("a/b", false) == path_ino("a/b", false));
	CHECK(path_ino("a/b", false) != path_ino("a/c", false));
	/* a deployment view: the same path in two top directories differs,
	 * and a top directory's root is the path of its name */
	CHECK_INT(path_ino_at("", "a/b", false), path_ino("a/b", false));
	CHECK_INT(path_ino_at("zone1", "a", false), path_ino("zone1/a", false));
	CHECK_INT(path_ino_at("zone1", "", false), path_ino("zone1", false));
	CHECK_INT(path_ino_at("zone1", "a", true), path_ino("zone1/a", true));
	CHECK(path_ino_at("zone1", "a", false) !=
	      path_ino_at("zone2", "a", false));
	CHECK(path_ino_at("zone1", "", false) > 1);
}

static void test_scratch(void)
{
	struct scratch_patterns sp;
	CHECK_INT(scratch_patterns_parse(&sp, scratch_default_list), 0);
	CHECK_INT(sp.count, 7);
	const char *yes[] = {
	    "a/.Keyspace.swp", ".x.swx",     "d/Shard~",   "4913",
	    "d/.#Tablet",      "#Keyspace#", "d/sedAb12Cd"};
	const char *no[] = {"Keyspace", "a/4913/Shard", "d/swp",      "x.swp",
			    "sed",	"d/sedAb12Cde", "d/Keyspace#"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		CHECK(scratch_match(&sp, yes[i]));
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		CHECK(!scratch_match(&sp, no[i]));
	scratch_patterns_free(&sp);

	CHECK_INT(scratch_patterns_parse(&sp, ""), 0);
	CHECK_INT(sp.count, 0);
	CHECK(!scratch_match(&sp, "x~"));
	CHECK_INT(scratch_patterns_parse(&sp, "a,,b"), -EINVAL);
	CHECK_INT(scratch_patterns_parse(&sp, ",a"), -EINVAL);
	CHECK_INT(scratch_patterns_parse(&sp, "a/b"), -EINVAL);
	CHECK_INT(scratch_patterns_parse(&sp, "*.tmp"), 0);
	CHECK(scratch_match(&sp, "x/y.tmp"));
	scratch_patterns_free(&sp);
}

/* Below a scratch directory everything is scratch, whatever its name. */
static void test_scratch_in_path(void)
{
	struct scratch_patterns sp;
	CHECK_INT(scratch_patterns_parse(&sp, scratch_default_list), 0);
	CHECK(scratch_in_path(&sp, "x~"));
	CHECK(scratch_in_path(&sp, "sd/x~"));
	CHECK(scratch_in_path(&sp, "sd/x~/file"));
	CHECK(scratch_in_path(&sp, "x~/a/b/c"));
	CHECK(scratch_in_path(&sp, "a/4913/Shard")); /* scratch_match: no */
	CHECK(!scratch_in_path(&sp, ""));
	CHECK(!scratch_in_path(&sp, "sd"));
	CHECK(!scratch_in_path(&sp, "keyspaces/ks/Keyspace"));
	CHECK(!scratch_in_path(&sp, "a~b/c")); /* *~ is the whole name */
	char deep[600];
	memset(deep, 'n', 300); /* a segment over NAME_MAX: no such name */
	strcpy(deep + 300, "/x~");
	CHECK(!scratch_in_path(&sp, deep));
	scratch_patterns_free(&sp);
	CHECK_INT(scratch_patterns_parse(&sp, ""), 0);
	CHECK(!scratch_in_path(&sp, "x~/y~"));
}

/* Fill buf with a relative path of exactly len bytes: names of up to 255
 * bytes joined by '/', the last one at least 1 byte long. */
static void long_path(char *buf, size_t len)
{
	size_t at = 0;
	while (at < len) {
		size_t n = len - at > 256 ? 255 : len - at;
		if (len - at > 255 && len - at <= 256)
			n = len - at - 2; /* leave a last name of 1 byte */
		memset(buf + at, 'a' + (char)(at / 256 % 26), n);
		at += n;
		if (at < len)
			buf[at++] = '/';
	}
	buf[len] = '\0';
}

/* A path of PATH_MAX - 1 bytes below the mount root is served: its FUSE
 * path (with the leading '/') fits TOPO_FUSE_PATH_MAX, and its store path
 * PATH_MAX. One byte more is ENAMETOOLONG. */
static void test_longest_path(void)
{
	static char rel[PATH_MAX + 8], fuse[PATH_MAX + 8];
	static char out[TOPO_FUSE_PATH_MAX], store[PATH_MAX];
	bool is_data;
	CHECK_INT(TOPO_FUSE_PATH_MAX, 4097);
	long_path(rel, PATH_MAX - 1);
	CHECK_INT(strlen(rel), 4095);
	fuse[0] = '/';
	strcpy(fuse + 1, rel);
	CHECK_INT(path_from_fuse(fuse, store, sizeof(store), &is_data), 0);
	CHECK_STR(store, rel);
	long_path(rel, PATH_MAX);
	strcpy(fuse + 1, rel);
	CHECK_INT(path_from_fuse(fuse, store, sizeof(store), &is_data),
		  -ENAMETOOLONG);

	/* the node table: the parent chain of rel, then its last name */
	struct inode_table *it = inode_table_new();
	for (size_t len = PATH_MAX - 1; len <= PATH_MAX; len++) {
		long_path(rel, len);
		uint64_t dir = INODE_ROOT;
		char *name = rel, *slash;
		while ((slash = strchr(name, '/'))) {
			*slash = '\0';
			CHECK_INT(inode_lookup(it, dir, name, S_IFDIR, &dir),
				  0);
			name = slash + 1;
		}
		int want = len < PATH_MAX ? 0 : -ENAMETOOLONG;
		CHECK_INT(inode_child_path(it, dir, name, out, sizeof(out)),
			  want);
		if (!want)
			CHECK_INT(strlen(out), 4096);
		CHECK_INT(inode_child_path(it, dir, name, out, PATH_MAX),
			  -ENAMETOOLONG); /* the old buffers */
	}
	inode_table_free(it);
}

int main(void)
{
	test_segments();
	test_from_fuse();
	test_parts();
	test_ino();
	test_scratch();
	test_scratch_in_path();
	test_longest_path();
	return check_report();
}
