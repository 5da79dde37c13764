/* test_etcdv2_parse.c - backends/etcdv2: parsing etcd's v2 keys API
 * answers (listings, writes, errors, watch events) with exact results,
 * malformed answers (-EIO, never a crash), the UTF-8 rule for values, and
 * the URLs and form bodies. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../backends/etcdv2/etcdv2.h"
#include "../../backends/etcdv2/v2json.h"
#include "check.h"

static int nodes(const char *json, const char *root, struct topo_listing *l)
{
	memset(l, 0, sizeof(*l));
	return etcdv2_parse_nodes(json, strlen(json), root, "test", l);
}

static void test_listing_recursive(void)
{
	/* as etcd 3.4 answers GET /v2/keys/r?recursive=true (creation order) */
	const char *j =
	    "{\"action\":\"get\",\"node\":{\"key\":\"/r\",\"dir\":true,"
	    "\"nodes\":[{\"key\":\"/r/a\",\"value\":\"hello\","
	    "\"modifiedIndex\":9,\"createdIndex\":4},"
	    "{\"key\":\"/r/d\",\"dir\":true,\"nodes\":[{\"key\":\"/r/d/b\","
	    "\"value\":\"\",\"modifiedIndex\":6,\"createdIndex\":6}],"
	    "\"modifiedIndex\":5,\"createdIndex\":5},"
	    "{\"key\":\"/r/t\",\"value\":\"v\",\"expiration\":"
	    "\"2026-11-26T23:08:46.603468017Z\",\"ttl\":100,"
	    "\"modifiedIndex\":18,\"createdIndex\":18},"
	    "{\"key\":\"/r/z\",\"value\":\"a\\u0000b\\u00e9\","
	    "\"modifiedIndex\":20,\"createdIndex\":20}],"
	    "\"modifiedIndex\":4,\"createdIndex\":4}}";
	struct topo_listing l;

	CHECK_INT(nodes(j, "/r", &l), 0);
	CHECK_INT(l.count, 6);
	if (l.count == 6) {
		CHECK_STR(l.entries[0].path, "");
		CHECK(l.entries[0].meta.real_dir);
		CHECK(l.entries[0].meta.has_data);
		CHECK_INT(l.entries[0].meta.size, 0);
		CHECK_INT(l.entries[0].meta.version, 4);
		CHECK(l.entries[0].value == NULL);

		CHECK_STR(l.entries[1].path, "a");
		CHECK_MEM(l.entries[1].value, l.entries[1].meta.size, "hello",
			  5);
		CHECK_INT(l.entries[1].meta.version, 9);
		CHECK_INT(l.entries[1].meta.modify_id, 9);
		CHECK_INT(l.entries[1].meta.create_id, 4);
		CHECK(!l.entries[1].meta.real_dir);
		CHECK(!l.entries[1].meta.ephemeral);
		CHECK_INT(l.entries[1].meta.lease, 0);

		CHECK_STR(l.entries[2].path, "d");
		CHECK(l.entries[2].meta.real_dir);
		CHECK_INT(l.entries[2].meta.version, 5);

		CHECK_STR(l.entries[3].path, "d/b");
		CHECK_INT(l.entries[3].meta.size, 0);
		CHECK(l.entries[3].value == NULL);
		CHECK(l.entries[3].meta.has_data);

		CHECK_STR(l.entries[4].path, "t");
		CHECK(l.entries[4].meta.ephemeral);
		CHECK_INT(l.entries[4].meta.lease, 100);

		/* "\u0000" and UTF-8 come back as their bytes */
		CHECK_STR(l.entries[5].path, "z");
		CHECK_MEM(l.entries[5].value, l.entries[5].meta.size,
			  "a\0b\xc3\xa9", 5);
	}
	topo_listing_free(&l);
}

static void test_listing_store_root(void)
{
	/* the store's root "/" has no key and no indices */
	const char *j = "{\"action\":\"get\",\"node\":{\"dir\":true,"
			"\"nodes\":[{\"key\":\"/r\",\"dir\":true,"
			"\"modifiedIndex\":4,\"createdIndex\":4},"
			"{\"key\":\"/k\",\"value\":\"1\",\"modifiedIndex\":7,"
			"\"createdIndex\":7}]}}";
	struct topo_listing l;

	CHECK_INT(nodes(j, "", &l), 0);
	CHECK_INT(l.count, 3);
	if (l.count == 3) {
		CHECK_STR(l.entries[0].path, "");
		CHECK(l.entries[0].meta.real_dir);
		CHECK_INT(l.entries[0].meta.version, 0);
		CHECK_STR(l.entries[1].path, "r");
		CHECK_STR(l.entries[2].path, "k");
		CHECK_MEM(l.entries[2].value, l.entries[2].meta.size, "1", 1);
	}
	topo_listing_free(&l);
}

static void test_listing_single_file(void)
{
	const char *j = "{\"action\":\"get\",\"node\":{\"key\":\"/r/a/b\","
			"\"value\":\"x y\",\"modifiedIndex\":12,"
			"\"createdIndex\":3}}";
	struct topo_listing l;

	CHECK_INT(nodes(j, "/r", &l), 0);
	CHECK_INT(l.count, 1);
	if (l.count == 1) {
		CHECK_STR(l.entries[0].path, "a/b");
		CHECK_MEM(l.entries[0].value, l.entries[0].meta.size, "x y", 3);
		CHECK_INT(l.entries[0].meta.version, 12);
	}
	topo_listing_free(&l);
}

static void test_listing_skips_nul_keys(void)
{
	const char *j = "{\"action\":\"get\",\"node\":{\"key\":\"/r\",\"dir\":"
			"true,\"nodes\":[{\"key\":\"/r/a\\u0000b\",\"value\":"
			"\"1\",\"modifiedIndex\":2},{\"key\":\"/r/c\","
			"\"value\":\"2\",\"modifiedIndex\":3}],"
			"\"modifiedIndex\":1}}";
	struct topo_listing l;

	CHECK_INT(nodes(j, "/r", &l), 0);
	CHECK_INT(l.count, 2);
	if (l.count == 2)
		CHECK_STR(l.entries[1].path, "c");
	topo_listing_free(&l);
}

static void test_listing_malformed(void)
{
	const char *bad[] = {
	    "",
	    "not json",
	    "[1,2]",
	    "{\"action\":\"get\"}",
	    "{\"action\":\"get\",\"node\":[]}",
	    "{\"node\":{\"key\":5}}",
	    "{\"node\":{\"key\":\"/r/a\",\"value\":7,\"modifiedIndex\":1}}",
	    "{\"node\":{\"key\":\"/r/a\",\"value\":\"x\","
	    "\"modifiedIndex\":\"1\"}}",
	    "{\"node\":{\"key\":\"/r/a\",\"value\":\"x\","
	    "\"modifiedIndex\":-1}}",
	    "{\"node\":{\"key\":\"/r/a\",\"dir\":\"yes\"}}",
	    "{\"node\":{\"key\":\"/r/a\",\"dir\":true,\"value\":\"x\"}}",
	    "{\"node\":{\"key\":\"/r\",\"dir\":true,\"nodes\":{}}}",
	    "{\"node\":{\"key\":\"/r\",\"dir\":true,\"nodes\":[5]}}",
	    "{\"node\":{\"key\":\"/r/a\",\"value\":\"x\",\"nodes\":[]}}",
	    "{\"node\":{\"key\":\"/other/a\",\"value\":\"x\"}}",
	    "{\"node\":{\"key\":\"/rx\",\"value\":\"x\"}}",
	    "{\"node\":{\"key\":\"/r//a\",\"value\":\"x\"}}",
	    "{\"node\":{\"key\":\"/r/a\",\"value\":\"x\",\"ttl\":\"5\"}}",
	    "{\"node\":{\"key\":\"/r/a\"},\"node\":{\"key\":\"/r/b\"}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct topo_listing l;
		int rc = nodes(bad[i], "/r", &l);
		if (rc != -EIO)
			fprintf(stderr, "case %zu: %s\n", i, bad[i]);
		CHECK_INT(rc, -EIO);
		topo_listing_free(&l);
	}
}

static void test_errors(void)
{
	int64_t index;

	CHECK_INT(etcdv2_parse_error(200, "{}", 2, "t", &index), 0);
	CHECK_INT(index, -1);
	CHECK_INT(etcdv2_parse_error(201, "{}", 2, "t", NULL), 0);
#define ERR(code, msg)                                                         \
	"{\"errorCode\":" #code ",\"message\":\"" msg "\",\"cause\":\"/r/a\"," \
	"\"index\":77}"
	struct {
		long status;
		const char *body;
		int want;
	} cases[] = {
	    {404, ERR(100, "Key not found"), -ENOENT},
	    {412, ERR(101, "Compare failed"), -ESTALE},
	    {403, ERR(102, "Not a file"), -EISDIR},
	    {403, ERR(104, "Not a directory"), -ENOTDIR},
	    {412, ERR(105, "Key already exists"), -EEXIST},
	    {403, ERR(107, "Root is read only"), -EROFS},
	    {403, ERR(108, "Directory not empty"), -ENOTEMPTY},
	    {401, ERR(110, "The request requires user authentication"),
	     -EACCES},
	    {400,
	     ERR(401, "The event in requested index is outdated and "
		      "cleared"),
	     -EAGAIN},
	    {500, ERR(300, "Raft Internal Error"), -EIO},
	    {500,
	     "{\"errorCode\":300,\"message\":\"Raft Internal Error\","
	     "\"cause\":\"etcdserver: request is too large\",\"index\":77}",
	     -EFBIG},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		index = 0;
		CHECK_INT(etcdv2_parse_error(cases[i].status, cases[i].body,
					     strlen(cases[i].body), "t",
					     &index),
			  cases[i].want);
		CHECK_INT(index, 77);
	}
	/* not an error object: the v2 API is off, a proxy, ... */
	const char *junk[] = {"404 page not found",
			      "",
			      "{}",
			      "[]",
			      "{\"errorCode\":\"100\"}",
			      "{\"errorCode\":100,\"message\":5}"};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		CHECK_INT(etcdv2_parse_error(404, junk[i], strlen(junk[i]), "t",
					     &index),
			  -EIO);
}

static void test_write_answer(void)
{
	struct topo_meta m;
	const char *j =
	    "{\"action\":\"compareAndSwap\",\"node\":{\"key\":\"/r/a\","
	    "\"value\":\"new\",\"modifiedIndex\":31,\"createdIndex\":4},"
	    "\"prevNode\":{\"key\":\"/r/a\",\"value\":\"old\","
	    "\"modifiedIndex\":30,\"createdIndex\":4}}";

	CHECK_INT(etcdv2_parse_write(j, strlen(j), "t", &m), 0);
	CHECK_INT(m.version, 31);
	CHECK_INT(m.modify_id, 31);
	CHECK_INT(m.create_id, 4);
	CHECK_INT(m.size, 3);
	CHECK(m.has_data);
	CHECK(!m.real_dir);

	j = "{\"action\":\"create\",\"node\":{\"key\":\"/r/d\",\"dir\":true,"
	    "\"modifiedIndex\":40,\"createdIndex\":40}}";
	CHECK_INT(etcdv2_parse_write(j, strlen(j), "t", &m), 0);
	CHECK(m.real_dir);
	CHECK_INT(m.version, 40);

	const char *bad[] = {"{\"action\":\"set\"}",
			     "{\"action\":\"set\",\"node\":{\"key\":\"/r/a\"}}",
			     "{\"node\":{\"modifiedIndex\":true}}", "x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_INT(etcdv2_parse_write(bad[i], strlen(bad[i]), "t", &m),
			  -EIO);
}

static void test_events(void)
{
	struct etcdv2_event ev;
	const char *j = "{\"action\":\"set\",\"node\":{\"key\":\"/r/d/c\","
			"\"value\":\"y\",\"modifiedIndex\":7,"
			"\"createdIndex\":7}}";

	CHECK_INT(etcdv2_parse_event(j, strlen(j), "/r", &ev), 0);
	CHECK_STR(ev.path, "d/c");
	CHECK_INT(ev.index, 7);
	CHECK(!ev.deleted);
	CHECK(!ev.dir);
	free(ev.path);

	const char *removing[] = {"delete", "expire", "compareAndDelete"};
	for (size_t i = 0; i < 3; i++) {
		char buf[256];
		snprintf(buf, sizeof(buf),
			 "{\"action\":\"%s\",\"node\":{\"key\":\"/r/d\","
			 "\"dir\":true,\"modifiedIndex\":1023,"
			 "\"createdIndex\":5},\"prevNode\":{\"key\":\"/r/d\","
			 "\"dir\":true,\"modifiedIndex\":5,"
			 "\"createdIndex\":5}}",
			 removing[i]);
		CHECK_INT(etcdv2_parse_event(buf, strlen(buf), "/r", &ev), 0);
		CHECK_STR(ev.path, "d");
		CHECK_INT(ev.index, 1023);
		CHECK(ev.deleted);
		CHECK(ev.dir);
		free(ev.path);
	}
	/* the root itself, and a key outside it (no path) */
	j = "{\"action\":\"delete\",\"node\":{\"key\":\"/r\",\"dir\":true,"
	    "\"modifiedIndex\":50}}";
	CHECK_INT(etcdv2_parse_event(j, strlen(j), "/r", &ev), 0);
	CHECK_STR(ev.path, "");
	free(ev.path);
	j = "{\"action\":\"set\",\"node\":{\"key\":\"/rx/a\",\"value\":\"\","
	    "\"modifiedIndex\":51}}";
	CHECK_INT(etcdv2_parse_event(j, strlen(j), "/r", &ev), 0);
	CHECK(ev.path == NULL);
	CHECK_INT(ev.index, 51);

	const char *bad[] = {
	    "",
	    "{}",
	    "{\"action\":\"set\"}",
	    "{\"node\":{\"key\":\"/r/a\",\"modifiedIndex\":3}}",
	    "{\"action\":5,\"node\":{\"key\":\"/r/a\",\"modifiedIndex\":3}}",
	    "{\"action\":\"set\",\"node\":{\"key\":\"/r/a\"}}",
	    "{\"action\":\"set\",\"node\":{\"key\":\"/r/a\",\"modifiedIndex\":"
	    "0}}",
	    "{\"action\":\"set\",\"node\":{\"key\":\"/r/a\",\"dir\":1,"
	    "\"modifiedIndex\":3}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_INT(etcdv2_parse_event(bad[i], strlen(bad[i]), "/r", &ev),
			  -EIO);
		CHECK(ev.path == NULL);
	}
}

static void test_value_ok(void)
{
	CHECK(etcdv2_value_ok("", 0));
	CHECK(etcdv2_value_ok("plain text\n", 11));
	CHECK(etcdv2_value_ok("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
	CHECK(etcdv2_value_ok("\x01\x7f", 2));
	CHECK(!etcdv2_value_ok("a\0b", 3));
	CHECK(!etcdv2_value_ok("\xff", 1));
	CHECK(!etcdv2_value_ok("\xc3", 1));		/* cut short */
	CHECK(!etcdv2_value_ok("\xc0\xaf", 2));		/* overlong */
	CHECK(!etcdv2_value_ok("\xe0\x80\xaf", 3));	/* overlong */
	CHECK(!etcdv2_value_ok("\xed\xa0\x80", 3));	/* surrogate */
	CHECK(!etcdv2_value_ok("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	CHECK(!etcdv2_value_ok("\x80", 1));
}

static void test_urls(void)
{
	char *s;
	size_t n;

	CHECK_INT(etcdv2_key_api("/vitess/global", "a b/c%", "quorum=true", &s),
		  0);
	CHECK_STR(s, "/v2/keys/vitess/global/a%20b/c%25?quorum=true");
	free(s);
	CHECK_INT(etcdv2_key_api("/r", "", NULL, &s), 0);
	CHECK_STR(s, "/v2/keys/r");
	free(s);
	CHECK_INT(etcdv2_key_api("", "", NULL, &s), 0);
	CHECK_STR(s, "/v2/keys/");
	free(s);
	CHECK_INT(etcdv2_key_api("", "k?&#\xc3\xa9", "dir=true", &s), 0);
	CHECK_STR(s, "/v2/keys/k%3F%26%23%C3%A9?dir=true");
	free(s);
	CHECK_INT(etcdv2_form_value("a b/&=+\n", 8, &s, &n), 0);
	CHECK_STR(s, "value=a%20b%2F%26%3D%2B%0A");
	CHECK_INT(n, strlen(s));
	free(s);
	CHECK_INT(etcdv2_form_value("", 0, &s, &n), 0);
	CHECK_STR(s, "value=");
	free(s);

	CHECK(!etcdv2_hidden("a/b"));
	CHECK(!etcdv2_hidden("a_/b_c"));
	CHECK(etcdv2_hidden("_a"));
	CHECK(etcdv2_hidden("a/_b"));
}

int main(void)
{
	test_listing_recursive();
	test_listing_store_root();
	test_listing_single_file();
	test_listing_skips_nul_keys();
	test_listing_malformed();
	test_errors();
	test_write_answer();
	test_events();
	test_value_ok();
	test_urls();
	return check_report();
}
