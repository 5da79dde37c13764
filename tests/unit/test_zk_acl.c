/* test_zk_acl.c - ACL lists of the ZooKeeper backend: new znodes take the
 * ACL of their parent, learnt once per parent per operation. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../backends/zk/zkutil.h"
#include "check.h"

static struct ACL two[] = {
    {31, {"digest", "u:hash="}},
    {1, {"world", "anyone"}},
};
static struct ACL one[] = {{31, {"ip", "127.0.0.1"}}};

/* Whether two lists are equal, entry by entry. */
static int same(const struct ACL_vector *a, const struct ACL_vector *b)
{
	if (a->count != b->count)
		return 0;
	for (int32_t i = 0; i < a->count; i++)
		if (a->data[i].perms != b->data[i].perms ||
		    strcmp(a->data[i].id.scheme, b->data[i].id.scheme) ||
		    strcmp(a->data[i].id.id, b->data[i].id.id))
			return 0;
	return 1;
}

/* A copy is deep: it outlives the client's answer it was made from. */
static void test_copy(void)
{
	struct ACL_vector src = {2, two}, dst;
	CHECK_INT(zk_acl_copy(&dst, &src), 0);
	CHECK(same(&dst, &src));
	CHECK(dst.data != src.data);
	CHECK(dst.data[0].id.id != src.data[0].id.id);
	zk_acl_free(&dst);
	CHECK_INT(dst.count, 0);
	CHECK(dst.data == NULL);
	zk_acl_free(&dst); /* twice is harmless */

	struct ACL_vector empty = {0, NULL};
	CHECK_INT(zk_acl_copy(&dst, &empty), 0);
	CHECK_INT(dst.count, 0);
	CHECK_INT(zk_acl_copy(&dst, NULL), 0);
	CHECK_INT(dst.count, 0);

	/* 4 count + per entry: 4 perms, 4+6 "digest", 4+7 "u:hash=" ... */
	CHECK_INT(zk_acl_bytes(&src),
		  4 + (4 + 4 + 6 + 4 + 7) + (4 + 4 + 5 + 4 + 6));
	CHECK_INT(zk_acl_bytes(NULL), 4);
}

/* The per-operation cache, looked up by a prefix of a longer path. */
static void test_cache(void)
{
	struct zk_acls c = {0};
	struct ACL_vector v2 = {2, two}, v1 = {1, one};
	const char *abs = "/r/a/b";
	CHECK(zk_acls_find(&c, abs, 2) == NULL);
	CHECK_INT(zk_acls_add(&c, abs, 2, &v2), 0); /* "/r" */
	CHECK_INT(zk_acls_add(&c, "/", 1, &v1), 0);
	const struct ACL_vector *got = zk_acls_find(&c, "/r/x", 2);
	CHECK(got && same(got, &v2));
	CHECK(zk_acls_find(&c, abs, 4) == NULL); /* "/r/a" */
	CHECK(zk_acls_find(&c, "/rr", 3) == NULL);
	got = zk_acls_find(&c, "/", 1);
	CHECK(got && same(got, &v1));

	/* a node inherits: adding from a pointer into the cache itself is
	 * fine even when the cache grows */
	char path[32];
	for (int i = 0; i < 40; i++) {
		snprintf(path, sizeof(path), "/r/n%d", i);
		CHECK_INT(zk_acls_add(&c, path, strlen(path),
				      zk_acls_find(&c, "/r", 2)),
			  0);
	}
	got = zk_acls_find(&c, "/r/n39", 6);
	CHECK(got && same(got, &v2));

	/* adding a known path replaces its ACL */
	CHECK_INT(zk_acls_add(&c, "/r", 2, &v1), 0);
	got = zk_acls_find(&c, "/r", 2);
	CHECK(got && same(got, &v1));
	CHECK_INT(c.n, 42);
	zk_acls_free(&c);
	CHECK_INT(c.n, 0);
	zk_acls_free(&c);
}

int main(void)
{
	test_copy();
	test_cache();
	return check_report();
}
