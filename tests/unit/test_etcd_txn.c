/* test_etcd_txn.c - backends/etcd/kv_txn.c: the JSON of a transaction, byte
 * for byte (etcd_build_txn), above all the guard a directory rename sends
 * (issue 21): two compares, the node itself and the range below it, and a
 * read of what changed on failure. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../backends/etcd/kv.h"
#include "check.h"
#include "etcd_text.h"

/* The compact JSON etcd_build_txn makes of ops on keys (NULL on error,
 * *err set). The caller frees it. */
static char *txn(const struct topo_op *ops, char *const *keys, size_t n,
		 int *err)
{
	json_t *req = NULL;
	char *s = NULL;

	*err = etcd_build_txn(ops, keys, n, false, &req);
	if (!*err)
		s = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	return s;
}

static void test_guard_alone(void)
{
	struct topo_op g = {.kind = TOPO_OP_GUARD, .path = "D", .expect = 41};
	char *keys[] = {"/r/D"};
	int err;
	char *got = txn(&g, keys, 1, &err);
	/* [/r/D/, /r/D0): '0' follows '/' */
	char *want = fmt(
	    "{\"compare\":["
	    "{\"key\":\"%s\",\"target\":\"MOD\",\"result\":\"LESS\","
	    "\"mod_revision\":\"42\"},"
	    "{\"key\":\"%s\",\"range_end\":\"%s\",\"target\":\"MOD\","
	    "\"result\":\"LESS\",\"mod_revision\":\"42\"}],"
	    "\"success\":[],"
	    "\"failure\":[{\"request_range\":{\"key\":\"%s\",\"range_end\":"
	    "\"%s\",\"limit\":\"1\",\"min_mod_revision\":\"42\","
	    "\"keys_only\":true}}]}",
	    b64("/r/D"), b64("/r/D/"), b64("/r/D0"), b64("/r/D"), b64("/r/D0"));

	CHECK_INT(err, 0);
	CHECK_STR(got, want);
	free(got);
	free(want);
}

static void test_rename_with_guard(void)
{
	/* what rename_dir sends for D (value "v" at 7) to E, listed at 9 */
	struct topo_op ops[] = {
	    {.kind = TOPO_OP_PUT,
	     .path = "E/f",
	     .value = "v",
	     .len = 1,
	     .expect = TOPO_EXPECT_ABSENT},
	    {.kind = TOPO_OP_DELETE, .path = "D/f", .expect = 7},
	    {.kind = TOPO_OP_GUARD, .path = "D", .expect = 9},
	};
	char *keys[] = {"/r/E/f", "/r/D/f", "/r/D"};
	int err;
	char *got = txn(ops, keys, 3, &err);
	char *want = fmt(
	    "{\"compare\":["
	    "{\"key\":\"%s\",\"result\":\"EQUAL\",\"target\":\"VERSION\","
	    "\"version\":\"0\"},"
	    "{\"key\":\"%s\",\"result\":\"EQUAL\",\"target\":\"MOD\","
	    "\"mod_revision\":\"7\"},"
	    "{\"key\":\"%s\",\"target\":\"MOD\",\"result\":\"LESS\","
	    "\"mod_revision\":\"10\"},"
	    "{\"key\":\"%s\",\"range_end\":\"%s\",\"target\":\"MOD\","
	    "\"result\":\"LESS\",\"mod_revision\":\"10\"}],"
	    "\"success\":[{\"request_put\":{\"key\":\"%s\",\"value\":\"%s\"}},"
	    "{\"request_delete_range\":{\"key\":\"%s\"}}],"
	    "\"failure\":[{\"request_range\":{\"key\":\"%s\",\"keys_only\":"
	    "true}},"
	    "{\"request_range\":{\"key\":\"%s\",\"keys_only\":true}},"
	    "{\"request_range\":{\"key\":\"%s\",\"range_end\":\"%s\","
	    "\"limit\":\"1\",\"min_mod_revision\":\"10\","
	    "\"keys_only\":true}}]}",
	    b64("/r/E/f"), b64("/r/D/f"), b64("/r/D"), b64("/r/D/"),
	    b64("/r/D0"), b64("/r/E/f"), b64("v"), b64("/r/D/f"), b64("/r/E/f"),
	    b64("/r/D/f"), b64("/r/D"), b64("/r/D0"));

	CHECK_INT(err, 0);
	CHECK_STR(got, want);
	free(got);
	free(want);
}

/* n - 1 deletes and a guard: n + 1 compares (0 or the error). */
static int deletes_and_guard(size_t n)
{
	char *keys[128];
	struct topo_op ops[128];
	int err;

	for (size_t i = 0; i < n; i++) {
		keys[i] = "/r/D/k";
		ops[i] = (struct topo_op){
		    .kind = TOPO_OP_DELETE, .path = "D/k", .expect = 3};
	}
	ops[n - 1] =
	    (struct topo_op){.kind = TOPO_OP_GUARD, .path = "D", .expect = 3};
	keys[n - 1] = "/r/D";
	free(txn(ops, keys, n, &err));
	return err;
}

static void test_guard_bad_and_big(void)
{
	struct topo_op g = {.kind = TOPO_OP_GUARD, .path = "D"};
	char *keys[] = {"/r/D"};
	int err;

	g.expect = TOPO_EXPECT_ANY; /* not a revision */
	CHECK(txn(&g, keys, 1, &err) == NULL);
	CHECK_INT(err, -EINVAL);
	g.expect = INT64_MAX; /* expect + 1 would overflow */
	CHECK(txn(&g, keys, 1, &err) == NULL);
	CHECK_INT(err, -EINVAL);
	/* a guard is two compares: etcd takes 128 */
	CHECK_INT(deletes_and_guard(127), 0);
	CHECK_INT(deletes_and_guard(128), -E2BIG);
}

static void test_guard_on_last_byte(void)
{
	/* a key ending in 0xff: the range below it still starts at key "/"
	 * and ends just after it ('/' + 1 = '0') */
	struct topo_op g = {.kind = TOPO_OP_GUARD, .path = "x", .expect = 1};
	char *keys[] = {"/r/\xff"};
	char *below = fmt("%s/", keys[0]), *end = fmt("%s0", keys[0]);
	int err;
	char *got = txn(&g, keys, 1, &err);

	CHECK_INT(err, 0);
	CHECK(got && strstr(got, b64(below)) && strstr(got, b64(end)));
	free(got);
	free(below);
	free(end);
}

int main(void)
{
	test_guard_alone();
	test_rename_with_guard();
	test_guard_bad_and_big();
	test_guard_on_last_byte();
	return check_report();
}
