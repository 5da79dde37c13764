/* test_etcd_parse.c - backends/etcd/json.c: parsing etcd's JSON gateway
 * answers, fed as strings, including proto3's omitted fields and malformed
 * answers (which must give -EIO, never a crash). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topofs/base64.h"
#include "../../backends/etcd/json.h"
#include "check.h"
#include "etcd_text.h"

#define HDR                                                                    \
	"\"header\":{\"cluster_id\":\"1\",\"revision\":\"42\",\"raft_term\":"  \
	"\"2\"}"

/* Parse a range answer for key under root into l/page. */
static int range(const char *json, const char *root, const char *key,
		 struct topo_listing *l, struct etcd_page *page)
{
	memset(l, 0, sizeof(*l));
	memset(page, 0, sizeof(*page));
	return etcd_parse_range(json, strlen(json), root, key, l, page);
}

static void test_range_full(void)
{
	struct topo_listing l;
	struct etcd_page p;
	char *j =
	    fmt("{" HDR ",\"kvs\":[{\"key\":\"%s\",\"create_revision\":\"5\","
		"\"mod_revision\":\"9\",\"version\":\"3\",\"value\":\"%s\","
		"\"lease\":\"7587869215335423234\"}],\"count\":\"1\"}",
		b64("/vitess/global/keyspaces/ks/Keyspace"), b64("hello"));

	CHECK_INT(range(j, "/vitess/global", "/vitess/global", &l, &p), 0);
	CHECK_INT(p.revision, 42);
	CHECK(!p.more);
	CHECK_INT(l.count, 1);
	if (l.count == 1) {
		struct topo_entry *e = &l.entries[0];

		CHECK_STR(e->path, "keyspaces/ks/Keyspace");
		CHECK_INT(e->meta.version, 9);
		CHECK_INT(e->meta.create_id, 5);
		CHECK_INT(e->meta.change_count, 3);
		CHECK_INT(e->meta.lease, 7587869215335423234LL);
		CHECK(e->meta.ephemeral);
		CHECK(e->meta.has_data);
		CHECK(!e->meta.real_dir);
		CHECK_INT(e->meta.mtime_ns, 0);
		CHECK_INT(e->meta.size, 5);
		CHECK_MEM(e->value, e->meta.size, "hello", 5);
	}
	CHECK_STR((char *)p.last_key, "/vitess/global/keyspaces/ks/Keyspace");
	CHECK_INT(p.last_len, strlen("/vitess/global/keyspaces/ks/Keyspace"));
	topo_listing_free(&l);
	etcd_page_clear(&p);
	free(j);
}

static void test_range_omitted(void)
{
	struct topo_listing l;
	struct etcd_page p;
	/* No value (empty), no lease, integers as JSON numbers too. */
	char *j = fmt("{" HDR ",\"kvs\":[{\"key\":\"%s\",\"create_revision\":3,"
		      "\"mod_revision\":\"3\",\"version\":\"1\"}]}",
		      b64("/r/empty"));

	CHECK_INT(range(j, "/r", "/r", &l, &p), 0);
	CHECK_INT(l.count, 1);
	if (l.count == 1) {
		CHECK_STR(l.entries[0].path, "empty");
		CHECK_INT(l.entries[0].meta.size, 0);
		CHECK(l.entries[0].value == NULL);
		CHECK(!l.entries[0].meta.ephemeral);
		CHECK_INT(l.entries[0].meta.lease, 0);
		CHECK_INT(l.entries[0].meta.create_id, 3);
	}
	topo_listing_free(&l);
	etcd_page_clear(&p);
	free(j);

	/* No kvs, no count, no more: an empty listing. */
	CHECK_INT(range("{" HDR "}", "/r", "/r", &l, &p), 0);
	CHECK_INT(l.count, 0);
	CHECK(!p.more);
	CHECK(p.last_key == NULL);
	CHECK_INT(p.revision, 42);
	etcd_page_clear(&p);

	/* An explicit empty value is empty too. */
	j = fmt("{" HDR ",\"kvs\":[{\"key\":\"%s\",\"value\":\"\"}]}",
		b64("/r/x"));
	CHECK_INT(range(j, "/r", "/r", &l, &p), 0);
	CHECK_INT(l.count, 1);
	if (l.count == 1) {
		CHECK_INT(l.entries[0].meta.size, 0);
		CHECK(l.entries[0].value == NULL);
		CHECK_INT(l.entries[0].meta.version, 0);
	}
	topo_listing_free(&l);
	etcd_page_clear(&p);
	free(j);
}

static void test_range_more_and_filter(void)
{
	struct topo_listing l;
	struct etcd_page p;
	char *j = fmt("{" HDR ",\"kvs\":[{\"key\":\"%s\",\"value\":\"%s\"},"
		      "{\"key\":\"%s\"},{\"key\":\"%s\"},{\"key\":\"%s\"},"
		      "{\"key\":\"%s\"}],\"more\":true,\"count\":\"99\"}",
		      b64("/r/a"), b64("\x01\x00"), b64("/r/a-foo"),
		      b64("/r/a.b"), b64("/r/a/b"), b64("/r/a/c/d"));

	CHECK_INT(range(j, "/r", "/r/a", &l, &p), 0);
	CHECK(p.more);
	CHECK_INT(l.count, 3);
	if (l.count == 3) {
		CHECK_STR(l.entries[0].path, "a");
		CHECK_STR(l.entries[1].path, "a/b");
		CHECK_STR(l.entries[2].path, "a/c/d");
	}
	CHECK_STR((char *)p.last_key, "/r/a/c/d");
	topo_listing_free(&l);
	etcd_page_clear(&p);
	free(j);

	/* The last key counts even when filtered out. */
	j = fmt("{" HDR ",\"kvs\":[{\"key\":\"%s\"},{\"key\":\"%s\"}],"
		"\"more\":true}",
		b64("/r/a/b"), b64("/r/a-z"));
	CHECK_INT(range(j, "/r", "/r/a", &l, &p), 0);
	CHECK_INT(l.count, 1);
	CHECK_STR((char *)p.last_key, "/r/a-z");
	topo_listing_free(&l);
	etcd_page_clear(&p);
	free(j);
}

static void test_range_root(void)
{
	struct topo_listing l;
	struct etcd_page p;
	/* The root key itself is the path "". */
	char *j = fmt("{" HDR ",\"kvs\":[{\"key\":\"%s\"},{\"key\":\"%s\"}]}",
		      b64("/r"), b64("/r/x"));

	CHECK_INT(range(j, "/r", "/r", &l, &p), 0);
	CHECK_INT(l.count, 2);
	if (l.count == 2) {
		CHECK_STR(l.entries[0].path, "");
		CHECK_STR(l.entries[1].path, "x");
	}
	topo_listing_free(&l);
	etcd_page_clear(&p);
	free(j);

	/* Root "/" is the empty prefix. */
	j = fmt("{" HDR ",\"kvs\":[{\"key\":\"%s\"},{\"key\":\"%s\"}]}",
		b64("/vitess"), b64("/vitess/global/x"));
	CHECK_INT(range(j, "", "", &l, &p), 0);
	CHECK_INT(l.count, 2);
	if (l.count == 2) {
		CHECK_STR(l.entries[0].path, "vitess");
		CHECK_STR(l.entries[1].path, "vitess/global/x");
	}
	topo_listing_free(&l);
	etcd_page_clear(&p);
	free(j);
}

static void test_range_nul_key(void)
{
	struct topo_listing l;
	struct etcd_page p;
	/* "/r/a\0b" in base64, then a normal key. */
	const char *j = "{" HDR ",\"kvs\":[{\"key\":\"L3IvYQBi\"},"
			"{\"key\":\"L3IvYgBj\"}]}";

	CHECK_INT(range(j, "/r", "/r", &l, &p), 0);
	CHECK_INT(l.count, 0);
	CHECK_INT(p.last_len, 6);
	CHECK_MEM(p.last_key, p.last_len, "/r/b\0c", 6);
	topo_listing_free(&l);
	etcd_page_clear(&p);
}

/* A range answer that must be rejected with -EIO, leaving nothing leaked. */
static void check_bad_range(const char *json)
{
	struct topo_listing l;
	struct etcd_page p;

	CHECK_INT(range(json, "/r", "/r", &l, &p), -EIO);
	topo_listing_free(&l);
	etcd_page_clear(&p);
}

static void test_range_bad(void)
{
	char *j;

	check_bad_range("");
	check_bad_range("{");
	check_bad_range("not json");
	check_bad_range("[]");
	check_bad_range("\"header\"");
	check_bad_range("{\"kvs\":[]}"); /* no header */
	check_bad_range("{\"header\":[]}");
	check_bad_range("{\"header\":{\"revision\":\"x\"}}");
	check_bad_range("{\"header\":{\"revision\":\"12a\"}}");
	check_bad_range("{\"header\":{\"revision\":\"\"}}");
	check_bad_range("{\"header\":{\"revision\":1.5}}");
	check_bad_range("{\"header\":{\"revision\":\"99999999999999999999\"}}");
	check_bad_range("{" HDR ",\"kvs\":{}}");
	check_bad_range("{" HDR ",\"kvs\":null}");
	check_bad_range("{" HDR ",\"kvs\":[1]}");
	check_bad_range("{" HDR ",\"kvs\":[{}]}"); /* no key */
	check_bad_range("{" HDR ",\"kvs\":[{\"key\":\"\"}]}");
	check_bad_range("{" HDR ",\"kvs\":[{\"key\":\"L3Iv!\"}]}");
	check_bad_range("{" HDR ",\"kvs\":[{\"key\":\"L3I\"}]}");
	check_bad_range("{" HDR ",\"kvs\":[{\"key\":5}]}");
	check_bad_range("{" HDR ",\"more\":\"true\"}");
	check_bad_range("{" HDR ",\"more\":1}");
	check_bad_range("{" HDR "," HDR "}"); /* duplicate member */

	j = fmt("{" HDR ",\"kvs\":[{\"key\":\"%s\",\"value\":\"aGk\"}]}",
		b64("/r/x"));
	check_bad_range(j);
	free(j);
	j = fmt("{" HDR ",\"kvs\":[{\"key\":\"%s\",\"value\":7}]}",
		b64("/r/x"));
	check_bad_range(j);
	free(j);
	j = fmt("{" HDR ",\"kvs\":[{\"key\":\"%s\",\"mod_revision\":true}]}",
		b64("/r/x"));
	check_bad_range(j);
	free(j);
	j = fmt("{" HDR ",\"kvs\":[{\"key\":\"%s\",\"lease\":\"abc\"}]}",
		b64("/r/x"));
	check_bad_range(j);
	free(j);
	/* A bad entry after a good one: still -EIO. */
	j = fmt("{" HDR ",\"kvs\":[{\"key\":\"%s\",\"value\":\"%s\"},"
		"{\"key\":\"%s\",\"version\":[]}]}",
		b64("/r/x"), b64("v"), b64("/r/y"));
	check_bad_range(j);
	free(j);
}

/* Parse a txn answer into steps[0..4). */
static int txn(const char *json, int64_t *rev, bool *ok,
	       struct etcd_txn_step *steps, size_t *count)
{
	return etcd_parse_txn(json, strlen(json), "/r/k", rev, ok, steps, 4,
			      count);
}

static void test_txn(void)
{
	struct etcd_txn_step st[4];
	int64_t rev = 0;
	bool ok = true;
	size_t n = 9;
	char *j;

	/* Compare failed: "succeeded" and "responses" both omitted. */
	CHECK_INT(txn("{" HDR "}", &rev, &ok, st, &n), 0);
	CHECK(!ok);
	CHECK_INT(n, 0);
	CHECK_INT(rev, 42);

	/* Failure branch: one range that found the key, one that did not. */
	j = fmt(
	    "{" HDR ",\"responses\":[{\"response_range\":{\"header\":"
	    "{\"revision\":\"42\"},\"kvs\":[{\"key\":\"%s\",\"mod_revision\":"
	    "\"17\",\"create_revision\":\"4\",\"version\":\"2\"}],"
	    "\"count\":\"1\"}},{\"response_range\":{\"header\":"
	    "{\"revision\":\"42\"}}}]}",
	    b64("/r/k"));
	CHECK_INT(txn(j, &rev, &ok, st, &n), 0);
	CHECK(!ok);
	CHECK_INT(n, 2);
	CHECK_INT(st[0].kind, ETCD_RESP_RANGE);
	CHECK(st[0].found);
	CHECK_INT(st[0].meta.version, 17);
	CHECK_INT(st[0].meta.create_id, 4);
	CHECK_INT(st[1].kind, ETCD_RESP_RANGE);
	CHECK(!st[1].found);
	free(j);

	/* Success: put, delete (one deleted), delete (none: omitted). */
	CHECK_INT(txn("{" HDR ",\"succeeded\":true,\"responses\":["
		      "{\"response_put\":{\"header\":{\"revision\":\"42\"}}},"
		      "{\"response_delete_range\":{\"deleted\":\"1\"}},"
		      "{\"response_delete_range\":{}}]}",
		      &rev, &ok, st, &n),
		  0);
	CHECK(ok);
	CHECK_INT(n, 3);
	CHECK_INT(st[0].kind, ETCD_RESP_PUT);
	CHECK_INT(st[1].kind, ETCD_RESP_DELETE);
	CHECK_INT(st[1].deleted, 1);
	CHECK_INT(st[2].kind, ETCD_RESP_DELETE);
	CHECK_INT(st[2].deleted, 0);

	/* Malformed. */
	CHECK_INT(txn("{" HDR ",\"succeeded\":\"yes\"}", &rev, &ok, st, &n),
		  -EIO);
	CHECK_INT(txn("{" HDR ",\"responses\":{}}", &rev, &ok, st, &n), -EIO);
	CHECK_INT(txn("{" HDR ",\"responses\":[{}]}", &rev, &ok, st, &n), -EIO);
	CHECK_INT(txn("{" HDR ",\"responses\":[3]}", &rev, &ok, st, &n), -EIO);
	CHECK_INT(txn("{" HDR ",\"responses\":[{\"response_txn\":{}}]}", &rev,
		      &ok, st, &n),
		  -EIO);
	CHECK_INT(txn("{" HDR ",\"responses\":[{\"response_put\":[]}]}", &rev,
		      &ok, st, &n),
		  -EIO);
	CHECK_INT(txn("{" HDR ",\"responses\":[{\"response_delete_range\":"
		      "{\"deleted\":true}}]}",
		      &rev, &ok, st, &n),
		  -EIO);
	CHECK_INT(txn("{" HDR ",\"responses\":[{\"response_range\":"
		      "{\"kvs\":[{\"key\":\"@@@@\"}]}}]}",
		      &rev, &ok, st, &n),
		  -EIO);
	CHECK_INT(txn("{" HDR ",\"responses\":[{\"response_put\":{}},"
		      "{\"response_put\":{}},{\"response_put\":{}},"
		      "{\"response_put\":{}},{\"response_put\":{}}]}",
		      &rev, &ok, st, &n),
		  -EIO); /* more than 4 */
	CHECK_INT(txn("{\"succeeded\":true}", &rev, &ok, st, &n), -EIO);
	CHECK_INT(txn("nope", &rev, &ok, st, &n), -EIO);
}

static void test_status(void)
{
	const char *good =
	    "{" HDR ",\"version\":\"3.4.23\",\"dbSize\":\"28672\","
	    "\"leader\":\"1\",\"dbSizeInUse\":\"16384\"}";
	uint64_t size = 1;

	CHECK_INT(etcd_parse_status(good, strlen(good), &size), 0);
	CHECK_INT(size, 28672);
	CHECK_INT(etcd_parse_status("{" HDR "}", strlen("{" HDR "}"), &size),
		  0);
	CHECK_INT(size, 0);
	CHECK_INT(etcd_parse_status("{" HDR ",\"dbSize\":\"-1\"}",
				    strlen("{" HDR ",\"dbSize\":\"-1\"}"),
				    &size),
		  -EIO);
	CHECK_INT(etcd_parse_status("{" HDR ",\"dbSize\":{}}",
				    strlen("{" HDR ",\"dbSize\":{}}"), &size),
		  -EIO);
	CHECK_INT(etcd_parse_status("{}", 2, &size), -EIO);
}

/* The errno of an error answer with this status. */
static int reply_error(long status, const char *json)
{
	return etcd_parse_reply_error(status, json, strlen(json), "/r/k");
}

static void test_errors(void)
{
	CHECK_INT(reply_error(200, "{" HDR "}"), 0);
	CHECK_INT(
	    reply_error(400, "{\"error\":\"etcdserver: request is too large\","
			     "\"message\":\"etcdserver: request is too large\","
			     "\"code\":3}"),
	    -EFBIG);
	CHECK_INT(reply_error(400,
			      "{\"error\":\"etcdserver: too many operations "
			      "in txn request\",\"code\":3}"),
		  -E2BIG);
	CHECK_INT(reply_error(403,
			      "{\"error\":\"etcdserver: permission denied\","
			      "\"message\":\"etcdserver: permission denied\","
			      "\"code\":7}"),
		  -EACCES);
	CHECK_INT(reply_error(401,
			      "{\"message\":\"etcdserver: invalid auth token\","
			      "\"code\":16}"),
		  -EACCES);
	CHECK_INT(reply_error(400,
			      "{\"message\":\"etcdserver: user name is empty\","
			      "\"code\":3}"),
		  -EACCES);
	CHECK_INT(reply_error(400,
			      "{\"message\":\"etcdserver: mvcc: required "
			      "revision has been compacted\",\"code\":11}"),
		  -EAGAIN);
	CHECK_INT(reply_error(503, "{\"message\":\"etcdserver: no leader\","
				   "\"code\":14}"),
		  -EIO);
	CHECK_INT(reply_error(400, "{\"error\":\"unexpected EOF\",\"code\":3}"),
		  -EIO);
	CHECK_INT(reply_error(404, "404 page not found"), -EIO);
	CHECK_INT(reply_error(502, ""), -EIO);
	CHECK_INT(reply_error(500, "[1]"), -EIO);
	CHECK_INT(reply_error(500, "{}"), -EIO);
	/* the quota full (issue 21): code 8 is also "too many requests" */
	CHECK_INT(
	    etcd_errno(8, "etcdserver: mvcc: database space exceeded", "/r/k"),
	    -ENOSPC);
	CHECK_INT(reply_error(429,
			      "{\"error\":\"etcdserver: mvcc: database space "
			      "exceeded\",\"code\":8,\"message\":\"etcdserver: "
			      "mvcc: database space exceeded\"}"),
		  -ENOSPC);
	CHECK_INT(etcd_errno(8, "etcdserver: too many requests", "/r/k"), -EIO);
	CHECK_INT(etcd_errno(16, NULL, "/r/k"), -EACCES);
}

int main(void)
{
	test_range_full();
	test_range_omitted();
	test_range_more_and_filter();
	test_range_root();
	test_range_nul_key();
	test_range_bad();
	test_txn();
	test_status();
	test_errors();
	return check_report();
}
