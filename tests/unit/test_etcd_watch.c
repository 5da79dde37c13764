/* test_etcd_watch.c - backends/etcd/watch.c: cutting a /v3/watch stream into
 * objects and turning its responses into change notices, fed whole, byte by
 * byte and in odd chunkings; plus the thread giving up cleanly on a server
 * that is not there. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "topofs/base64.h"
#include "../../backends/etcd/http.h"
#include "../../backends/etcd/auth.h"
#include "../../backends/etcd/watch.h"
#include "check.h"
#include "etcd_text.h"

#define HDR(rev)                                                               \
	"\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"revision\":"   \
	"\"" rev "\",\"raft_term\":\"2\"}"

/* What the callback heard: "N path@version;" and "ALL;" in order. */
static char heard[4096];

static void record(void *arg, enum topo_change what, const char *path,
		   int64_t version)
{
	size_t n = strlen(heard);

	(void)arg;
	if (what == TOPO_CHANGE_ALL)
		snprintf(heard + n, sizeof(heard) - n, "ALL;");
	else
		snprintf(heard + n, sizeof(heard) - n, "%s %s@%" PRId64 ";",
			 what == TOPO_CHANGE_NODE      ? "N"
			 : what == TOPO_CHANGE_DELETED ? "D"
						       : "C",
			 path, version);
}

/* Feed text to a fresh stream for root (from last) in chunks of `chunk`
 * bytes (0: whole); the verdict, with the stream left in *st. */
static enum etcd_verdict feed(struct etcd_stream *st, const char *root,
			      int64_t last, const char *text, size_t chunk)
{
	size_t n = strlen(text);
	enum etcd_verdict v = ETCD_STREAM_OK;

	memset(st, 0, sizeof(*st));
	st->root = root;
	st->fn = record;
	st->last_revision = last;
	heard[0] = '\0';
	etcd_stream_reset(st);
	if (!chunk)
		chunk = n ? n : 1;
	for (size_t i = 0; i < n; i += chunk)
		v = etcd_stream_feed(st, text + i,
				     n - i < chunk ? n - i : chunk);
	return v;
}

static const size_t chunkings[] = {0, 1, 2, 3, 7, 13, 64};
#define NCHUNK (sizeof(chunkings) / sizeof(chunkings[0]))

/* A stream of creation, put (type omitted), delete, a sibling, the root key
 * itself and a deep key, in every chunking. */
static void test_events(void)
{
	char *s = fmt(
	    "{\"result\":{" HDR(
		"10") ",\"created\":true}}\n"
		      "{\"result\":{" HDR(
			  "11") ",\"events\":[{\"kv\":{\"key\":\"%s\","
				"\"create_revision\":\"11\",\"mod_revision\":"
				"\"11\",\"version\":"
				"\"1\",\"value\":\"%s\"}}]}}\n"
				"{\"result\":{" HDR(
				    "12") ",\"events\":[{\"type\":\"DELETE\","
					  "\"kv\":{\"key\":\"%s\",\"mod_"
					  "revision\":\"12\"}}]}}"
					  "{\"result\":{" HDR(
					      "14") ",\"events\":["
						    "{\"type\":\"PUT\",\"kv\":{"
						    "\"key\":\"%s\",\"mod_"
						    "revision\":\"13\"}},"
						    "{\"kv\":{\"key\":\"%s\","
						    "\"mod_revision\":\"14\","
						    "\"value\":\"%s\"}},"
						    "{\"type\":\"PUT\",\"kv\":{"
						    "\"key\":\"%s\",\"mod_"
						    "revision\":\"14\"}}"
						    "]}}\r\n",
	    b64("/vt/global/a"), b64("x}{\"\\"), b64("/vt/global/a"),
	    b64("/vt/global-sibling/a"), b64("/vt/global"), b64("{\"}"),
	    b64("/vt/global/ks/x/Keyspace"));

	for (size_t c = 0; c < NCHUNK; c++) {
		struct etcd_stream st;

		CHECK_INT(feed(&st, "/vt/global", 9, s, chunkings[c]),
			  ETCD_STREAM_OK);
		CHECK(st.created);
		CHECK_STR(heard, "N a@11;D a@12;N @14;N ks/x/Keyspace@14;");
		CHECK_INT(st.last_revision, 14);
		etcd_split_clear(&st.split);
	}
	free(s);
}

/* Progress notices move the resume point; a created header does not (etcd
 * may still be catching up), nor does a header ahead of the events. */
static void test_progress(void)
{
	struct etcd_stream st;
	char *s = fmt(
	    "{\"result\":{" HDR(
		"50") ",\"created\":true}}"
		      "{\"result\":{" HDR(
			  "60") ",\"events\":[{\"kv\":{"
				"\"key\":\"%s\",\"mod_revision\":\"21\"}}]}}",
	    b64("/r/k"));

	CHECK_INT(feed(&st, "/r", 20, s, 5), ETCD_STREAM_OK);
	CHECK_INT(st.last_revision, 21);
	CHECK_STR(heard, "N k@21;");
	etcd_split_clear(&st.split);
	free(s);

	CHECK_INT(feed(&st, "/r", 20, "{\"result\":{" HDR("77") "}}", 1),
		  ETCD_STREAM_OK);
	CHECK_INT(st.last_revision, 77);
	CHECK_STR(heard, "");
	etcd_split_clear(&st.split);

	/* Only sibling events: nothing delivered, but the point moves. */
	s = fmt("{\"result\":{" HDR(
		    "30") ",\"events\":[{\"kv\":{"
			  "\"key\":\"%s\",\"mod_revision\":\"30\"}}]}}",
		b64("/r.bak"));
	CHECK_INT(feed(&st, "/r", 20, s, 0), ETCD_STREAM_OK);
	CHECK_INT(st.last_revision, 30);
	CHECK_STR(heard, "");
	etcd_split_clear(&st.split);
	free(s);
}

/* The root "/" (root key ""): paths lose their leading slash. */
static void test_slash_root(void)
{
	struct etcd_stream st;
	char *s = fmt("{\"result\":{" HDR(
			  "3") ",\"events\":[{\"kv\":{"
			       "\"key\":\"%s\",\"mod_revision\":\"3\"}}]}}",
		      b64("/a/b"));

	CHECK_INT(feed(&st, "", 2, s, 3), ETCD_STREAM_OK);
	CHECK_STR(heard, "N a/b@3;");
	etcd_split_clear(&st.split);
	free(s);
}

/* Compaction: created, then canceled with compact_revision; later bytes
 * are ignored; a restart delivers ALL and moves the resume point. */
static void test_compacted(void)
{
	const char *s =
	    "{\"result\":{" HDR("4") ",\"created\":true}}\n"
				     "{\"result\":{\"header\":{\"cluster_id\":"
				     "\"1\"},\"canceled\":true,"
				     "\"compact_revision\":\"3\"}}\n"
				     "garbage that must not be looked at";

	for (size_t c = 0; c < NCHUNK; c++) {
		struct etcd_stream st;

		CHECK_INT(feed(&st, "/r", 1, s, chunkings[c]),
			  ETCD_STREAM_COMPACTED);
		CHECK(st.created);
		CHECK_STR(heard, "");
		CHECK_STR(st.reason, "revision 2 is compacted (up to 3)");
		etcd_stream_restart(&st, 99);
		CHECK_STR(heard, "ALL;");
		CHECK_INT(st.last_revision, 99);
		etcd_split_clear(&st.split);
	}
	/* The same as an error object. */
	{
		struct etcd_stream st;

		CHECK_INT(feed(&st, "/r", 1,
			       "{\"error\":{\"grpc_code\":11,\"http_code\":400,"
			       "\"message\":\"etcdserver: mvcc: required "
			       "revision has been compacted\"}}",
			       4),
			  ETCD_STREAM_COMPACTED);
		CHECK_STR(st.reason, "etcdserver: mvcc: required revision has "
				     "been compacted");
		etcd_split_clear(&st.split);
	}
	/* Canceled for another reason: the reason is kept. */
	{
		struct etcd_stream st;

		CHECK_INT(feed(&st, "/r", 1,
			       "{\"result\":{\"canceled\":true,"
			       "\"cancel_reason\":\"nope\"}}",
			       0),
			  ETCD_STREAM_FAILED);
		CHECK_STR(st.reason, "canceled by etcd: nope");
		etcd_split_clear(&st.split);
	}
}

/* A watch that etcd refuses comes created and canceled at once: it is no
 * watch (never confirmed), and the reason is kept (an invalid token is
 * told from a permission denied by it). */
static void test_refused(void)
{
	struct etcd_stream st;

	CHECK_INT(
	    feed(
		&st, "/r", 1,
		"{\"result\":{" HDR(
		    "2") ",\"watch_id\":\"-1\","
			 "\"created\":true,\"canceled\":true,\"cancel_reason\":"
			 "\"rpc error: code = Unauthenticated desc = "
			 "etcdserver: "
			 "invalid auth token\"}}",
		0),
	    ETCD_STREAM_FAILED);
	CHECK(!st.created);
	CHECK(etcd_auth_token_invalid(st.reason));
	etcd_split_clear(&st.split);
	CHECK_INT(
	    feed(&st, "/r", 1,
		 "{\"result\":{" HDR(
		     "2") ",\"created\":true,"
			  "\"canceled\":true,\"cancel_reason\":\"rpc error: "
			  "code = "
			  "PermissionDenied desc = etcdserver: permission "
			  "denied\"}}",
		 0),
	    ETCD_STREAM_FAILED);
	CHECK(!st.created);
	CHECK(!etcd_auth_token_invalid(st.reason));
	etcd_split_clear(&st.split);
}

/* Everything that must end the stream (reconnect), never crash. */
static void test_failures(void)
{
	static const char *bad[] = {
	    "[1,2]",
	    "x",
	    "{\"result\":{" HDR("4") "}}}",
	    "{\"result\":{" HDR("4") "}]",
	    "{\"result\":\"no\"}",
	    "{\"other\":{}}",
	    "{\"result\":{\"events\":[{\"type\":\"MOVE\",\"kv\":{\"key\":"
	    "\"L3IvYQ==\"}}]}}",
	    "{\"result\":{\"events\":[{\"kv\":{\"key\":\"@@@@\"}}]}}",
	    "{\"result\":{\"events\":[{\"kv\":{}}]}}",
	    "{\"result\":{\"events\":[3]}}",
	    "{\"result\":{\"events\":{}}}",
	    "{\"result\":{\"header\":{\"revision\":\"x\"}}}",
	    "{\"result\":{\"canceled\":true,\"cancel_reason\":\"nope\"}}",
	    "{\"error\":\"invalid character 'g'\",\"message\":\"invalid "
	    "character 'g'\",\"code\":2}",
	    "{\"error\":{\"grpc_code\":14,\"message\":\"unavailable\"}}",
	    "Not Found",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (size_t c = 0; c < NCHUNK; c++) {
			struct etcd_stream st;

			CHECK_INT(feed(&st, "/r", 1, bad[i], chunkings[c]),
				  ETCD_STREAM_FAILED);
			CHECK_STR(heard, "");
			etcd_split_clear(&st.split);
		}
	}
}

/* A good response is delivered before bad data ends the stream. */
static void test_good_then_bad(void)
{
	struct etcd_stream st;
	char *s =
	    fmt("{\"result\":{" HDR(
		    "5") ",\"events\":[{\"kv\":{"
			 "\"key\":\"%s\",\"mod_revision\":\"5\"}}]}}\n{\"res",
		b64("/r/k"));
	char *t = fmt("%s%s", s, "ult\": nonsense}");

	CHECK_INT(feed(&st, "/r", 4, s, 1), ETCD_STREAM_OK);
	CHECK_STR(heard, "N k@5;");
	CHECK_INT(etcd_stream_feed(&st, "ult\": nonsense}", 15),
		  ETCD_STREAM_FAILED);
	CHECK_INT(st.last_revision, 5);
	etcd_split_clear(&st.split);
	CHECK_INT(feed(&st, "/r", 4, t, 0), ETCD_STREAM_FAILED);
	CHECK_STR(heard, "N k@5;");
	free(s);
	free(t);
}

/* The splitter alone: strings with braces and escapes, whitespace. */
static char objs[2048];

static int collect(void *arg, const char *json, size_t len)
{
	size_t n = strlen(objs);

	(void)arg;
	snprintf(objs + n, sizeof(objs) - n, "<%.*s>", (int)len, json);
	return 0;
}

static int refuse(void *arg, const char *json, size_t len)
{
	(void)arg, (void)json, (void)len;
	return -42;
}

static void test_splitter(void)
{
	const char *s = " {\"a\":\"}\\\"{[\\\\\"}\n\t{\"b\":[{},[]]}{}\r\n";

	for (size_t c = 0; c < NCHUNK; c++) {
		struct etcd_splitter sp = {0};
		size_t n = strlen(s), k = chunkings[c] ? chunkings[c] : n;
		int err = 0;

		objs[0] = '\0';
		for (size_t i = 0; i < n && !err; i += k)
			err = etcd_split_feed(&sp, s + i, n - i < k ? n - i : k,
					      collect, NULL);
		CHECK_INT(err, 0);
		CHECK_STR(objs,
			  "<{\"a\":\"}\\\"{[\\\\\"}><{\"b\":[{},[]]}><{}>");
		CHECK_INT(sp.depth, 0);
		etcd_split_clear(&sp);
	}
	{
		struct etcd_splitter sp = {0};

		CHECK_INT(etcd_split_feed(&sp, "{}", 2, refuse, NULL), -42);
		CHECK_INT(etcd_split_feed(&sp, "} ", 2, collect, NULL), -EIO);
		etcd_split_clear(&sp);
	}
}

/* The thread: with no server, watch start gives -EIO within about the
 * timeout, and frees everything (ASan checks). */
static void test_no_server(void)
{
	struct topo_conf conf = {.servers = "127.0.0.1:1,127.0.0.1:2",
				 .root = "/r",
				 .timeout_ms = 700};
	struct etcd_http *h;
	struct etcd_watch *w = NULL;
	char err[256];
	struct timespec a, b;
	long ms;

	CHECK_INT(etcd_http_open(&conf, &h, err, sizeof(err)), 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	CHECK_INT(etcd_watch_start(h, "/r", 700, record, NULL, &w), -EIO);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	CHECK(ms >= 600 && ms < 2500);
	CHECK(w == NULL);
	etcd_watch_stop(NULL);
	etcd_http_close(h);
}

int main(void)
{
	test_splitter();
	test_events();
	test_progress();
	test_slash_root();
	test_compacted();
	test_refused();
	test_failures();
	test_good_then_bad();
	test_no_server();
	return check_report();
}
