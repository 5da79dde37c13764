/* Unit tests of fs/path.c: segment rules, FUSE path mapping, scratch names,
 * inode numbers. */
#include <errno.h>
#include <string.h>

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

int main(void)
{
	test_segments();
	test_from_fuse();
	test_parts();
	test_ino();
	test_scratch();
	return check_report();
}
