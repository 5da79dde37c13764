/* test_zk_util.c - the pure helpers of the ZooKeeper backend. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../backends/zk/zkutil.h"
#include "check.h"

/* Root normalisation and the mapping between relative and znode paths. */
static void test_paths(void)
{
	char *root, *p;
	CHECK_INT(zk_root_norm("/vitess/global/", &root), 0);
	CHECK_STR(root, "/vitess/global");
	CHECK_STR(p = zk_abs_path(root, ""), "/vitess/global");
	free(p);
	CHECK_STR(p = zk_abs_path(root, "a/b"), "/vitess/global/a/b");
	CHECK_STR(zk_rel_path(root, p), "a/b");
	free(p);
	CHECK_STR(zk_rel_path(root, "/vitess/global"), "");
	free(root);

	CHECK_INT(zk_root_norm("/", &root), 0);
	CHECK_STR(root, "");
	CHECK_STR(p = zk_abs_path(root, ""), "/");
	CHECK_STR(zk_rel_path(root, p), "");
	free(p);
	CHECK_STR(p = zk_abs_path(root, "x"), "/x");
	CHECK_STR(zk_rel_path(root, p), "x");
	free(p);
	free(root);
	CHECK_INT(zk_root_norm("rel", &root), -EINVAL);

	CHECK_STR(p = zk_join("/", "a"), "/a");
	free(p);
	CHECK_STR(p = zk_join("/x/y", "a"), "/x/y/a");
	free(p);
}

/* The ancestors to create below the root, top first. */
static void test_ancestors(void)
{
	size_t lens[8];
	CHECK_INT(zk_ancestors("/r", "/r/a/b/c", lens, 8), 2);
	CHECK_INT(lens[0], 4);
	CHECK_INT(lens[1], 6);
	CHECK_INT(zk_ancestors("/r", "/r/a", lens, 8), 0);
	CHECK_INT(zk_ancestors("", "/a/b", lens, 8), 1);
	CHECK_INT(lens[0], 2);
	CHECK_INT(zk_ancestors("/r", "/r/a/b/c/d", lens, 1), 3);
}

/* The auth file's one line. */
static void test_auth(void)
{
	char *s = NULL, *c = NULL;
	CHECK_INT(zk_auth_parse("digest:user:pass\n", &s, &c), 0);
	CHECK_STR(s, "digest");
	CHECK_STR(c, "user:pass");
	free(s);
	free(c);
	CHECK_INT(zk_auth_parse("nocolon", &s, &c), -EINVAL);
	CHECK_INT(zk_auth_parse(":x", &s, &c), -EINVAL);
	CHECK_INT(zk_auth_parse("digest:\n", &s, &c), -EINVAL);

	char file[] = "/tmp/test_zk_authXXXXXX", err[256] = "";
	int fd = mkstemp(file);
	CHECK(fd >= 0);
	CHECK_INT(write(fd, "  digest:u:p  \n", 15), 15);
	close(fd);
	CHECK_INT(zk_auth_read(file, &s, &c, err, sizeof(err)), 0);
	CHECK_STR(c, "u:p");
	free(s);
	free(c);
	unlink(file);
	CHECK_INT(zk_auth_read(file, &s, &c, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, file) != NULL);
}

/* Session timeout and request size. */
static void test_limits(void)
{
	CHECK_INT(zk_session_ms(1000), 4000);
	CHECK_INT(zk_session_ms(10000), 10000);
	CHECK_INT(zk_session_ms(100000), 40000);
	CHECK(zk_fits("/vitess/global/keyspaces/ks/Keyspace", ZK_MAX_VALUE));
	CHECK(!zk_fits("/x", ZK_PACKET_MAX));
}

/* Parents, and which watch events name a node below the root. */
static void test_event_paths(void)
{
	const char *rel = NULL;
	CHECK_INT(zk_parent_len("/a/b"), 2);
	CHECK_INT(zk_parent_len("/a"), 1);
	CHECK_INT(zk_parent_len("/"), 0);
	CHECK_INT(zk_parent_len("/vitess/global/ks"), 14);

	CHECK(zk_below_root("/r", "/r", &rel));
	CHECK_STR(rel, "");
	CHECK(zk_below_root("/r", "/r/a/b", &rel));
	CHECK_STR(rel, "a/b");
	CHECK(!zk_below_root("/r", "/rx", &rel));
	CHECK(!zk_below_root("/r", "/rx/a", &rel));
	CHECK(!zk_below_root("/r", "/", &rel));
	CHECK(!zk_below_root("/r/s", "/r", &rel));
	CHECK(!zk_below_root("/r", NULL, &rel));
	CHECK(!zk_below_root("/r", "r/a", &rel));
	/* the root "/" normalises to "" */
	CHECK(zk_below_root("", "/", &rel));
	CHECK_STR(rel, "");
	CHECK(zk_below_root("", "/zookeeper/quota", &rel));
	CHECK_STR(rel, "zookeeper/quota");
}

/* A set on a znode known by its czxid, and what a re-read after a lost
 * connection says it did. */
static void test_set_fate(void)
{
	CHECK(zk_same_node(0, 0x42));
	CHECK(zk_same_node(0x42, 0x42));
	CHECK(!zk_same_node(0x42, 0x43));

	/* the same znode: by version and value, as before */
	CHECK_INT(zk_set_fate(3, 0x42, 4, 0x42, true), ZK_SET_LANDED);
	CHECK_INT(zk_set_fate(3, 0x42, 3, 0x42, false), ZK_SET_UNTOUCHED);
	CHECK_INT(zk_set_fate(3, 0x42, 4, 0x42, false), ZK_SET_CONFLICT);
	CHECK_INT(zk_set_fate(3, 0x42, 5, 0x42, true), ZK_SET_CONFLICT);
	/* an unconditional set on any znode */
	CHECK_INT(zk_set_fate(-1, 0, 9, 0x50, true), ZK_SET_LANDED);
	CHECK_INT(zk_set_fate(-1, 0, 9, 0x50, false), ZK_SET_UNTOUCHED);
	/* deleted and created again: another znode at the version expected
	 * (or at the one our set would lead to, with our value: it landed on
	 * the other client's znode) is never ours */
	CHECK_INT(zk_set_fate(3, 0x42, 3, 0x60, false), ZK_SET_CONFLICT);
	CHECK_INT(zk_set_fate(3, 0x42, 4, 0x60, true), ZK_SET_CONFLICT);
	CHECK_INT(zk_set_fate(0, 0x42, 0, 0x60, true), ZK_SET_CONFLICT);
	/* no czxid named: the version alone decides */
	CHECK_INT(zk_set_fate(0, 0, 0, 0x60, false), ZK_SET_UNTOUCHED);
}

int main(void)
{
	test_set_fate();
	test_paths();
	test_event_paths();
	test_ancestors();
	test_auth();
	test_limits();
	return check_report();
}
