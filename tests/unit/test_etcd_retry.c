/* test_etcd_retry.c - failover on etcd (issue 6): which answers mean "try
 * again" (backends/etcd/json.c), reading keys back after a write whose
 * outcome was unknown and deciding whether it landed (settle.c), and the
 * retry loop of backends/etcd/http.c against scripted fake members on
 * loopback. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "topofs/base64.h"
#include "../../backends/etcd/http.h"
#include "../../backends/etcd/json.h"
#include "../../backends/etcd/settle.h"
#include "check.h"
#include "etcd_text.h"

#define HDR "\"header\":{\"cluster_id\":\"1\",\"revision\":\"42\"}"
#define LEADER_CHANGED                                                         \
	"{\"error\":\"etcdserver: leader changed\",\"code\":14,"               \
	"\"message\":\"etcdserver: leader changed\"}"

/* Milliseconds on the monotonic clock. */
static long long ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- what etcd's errors mean ------------------------------------------- */

static void test_error_retryable(void)
{
	/* elections, overload, timeouts: try again */
	CHECK_INT(etcd_error_retryable(14, "etcdserver: leader changed"), 1);
	CHECK_INT(etcd_error_retryable(14, "etcdserver: no leader"), 1);
	CHECK_INT(etcd_error_retryable(14, "etcdserver: request timed out"), 1);
	CHECK_INT(etcd_error_retryable(14, NULL), 1);
	CHECK_INT(etcd_error_retryable(14, "transport is closing"), 1);
	CHECK_INT(etcd_error_retryable(4, "context deadline exceeded"), 1);
	CHECK_INT(etcd_error_retryable(2, "raft proposal dropped"), 1);
	CHECK_INT(etcd_error_retryable(9, "etcdserver: not leader"), 1);
	CHECK_INT(etcd_error_retryable(8, "etcdserver: too many requests"), 1);
	CHECK_INT(etcd_error_retryable(-1, "etcdserver: no leader"), 1);
	CHECK_INT(etcd_error_retryable(
		      14, "etcdserver: request timed out, possibly due to "
			  "previous leader failure"),
		  1);
	CHECK_INT(etcd_error_retryable(
		      14, "etcdserver: rpc not supported for learner"),
		  1);
	/* final */
	CHECK_INT(etcd_error_retryable(3, "etcdserver: request is too large"),
		  0);
	CHECK_INT(etcd_error_retryable(
		      3, "etcdserver: too many operations in txn request"),
		  0);
	CHECK_INT(etcd_error_retryable(7, "etcdserver: permission denied"), 0);
	CHECK_INT(etcd_error_retryable(16, "etcdserver: invalid auth token"),
		  0);
	CHECK_INT(etcd_error_retryable(
		      11, "etcdserver: mvcc: required revision has been "
			  "compacted"),
		  0);
	CHECK_INT(etcd_error_retryable(
		      8, "etcdserver: mvcc: database space exceeded"),
		  0);
	CHECK_INT(etcd_error_retryable(3, "user name is empty"), 0);
	/* a final code wins over a message that looks transient */
	CHECK_INT(etcd_error_retryable(7, "etcdserver: no leader"), 0);
	CHECK_INT(etcd_error_retryable(3, "request timed out"), 0);
	/* unknown: final (never retry nonsense until the deadline) */
	CHECK_INT(etcd_error_retryable(2, "something odd"), 0);
	CHECK_INT(etcd_error_retryable(-1, NULL), 0);
	CHECK_INT(etcd_error_retryable(13, ""), 0);
}

/* etcd_reply_retryable on a NUL-terminated body. */
static int reply_retry(long status, const char *body)
{
	return etcd_reply_retryable(status, body, strlen(body));
}

static void test_reply_retryable(void)
{
	CHECK_INT(reply_retry(200, "{" HDR "}"), 0);
	CHECK_INT(reply_retry(200, LEADER_CHANGED), 0);
	CHECK_INT(reply_retry(503, LEADER_CHANGED), 1);
	CHECK_INT(reply_retry(503, "{\"error\":\"etcdserver: no leader\"}"), 1);
	CHECK_INT(reply_retry(500, "{\"error\":\"raft proposal dropped\","
				   "\"code\":2,\"message\":\"raft proposal "
				   "dropped\"}"),
		  1);
	CHECK_INT(reply_retry(429, "{\"code\":8,\"message\":\"etcdserver: too "
				   "many requests\"}"),
		  1);
	CHECK_INT(reply_retry(400, "{\"error\":\"etcdserver: request is too "
				   "large\",\"code\":3}"),
		  0);
	CHECK_INT(reply_retry(403, "{\"code\":7,\"message\":\"etcdserver: "
				   "permission denied\"}"),
		  0);
	/* an error object's own code beats the HTTP status */
	CHECK_INT(reply_retry(503, "{\"code\":3,\"message\":\"bad\"}"), 0);
	/* no error object: the status decides */
	CHECK_INT(reply_retry(503, "<html>Service Unavailable</html>"), 1);
	CHECK_INT(reply_retry(502, ""), 1);
	CHECK_INT(reply_retry(504, "{}"), 1);
	CHECK_INT(reply_retry(429, "[1]"), 1);
	CHECK_INT(reply_retry(500, "garbage"), 0);
	CHECK_INT(reply_retry(404, "404 page not found"), 0);
	CHECK_INT(etcd_reply_retryable(503, NULL, 0), 1);
}

/* --- reading keys back ------------------------------------------------- */

static void test_parse_txn_values(void)
{
	struct etcd_txn_step st[3];
	unsigned char *v[3];
	char *j = fmt("{" HDR ",\"succeeded\":true,\"responses\":["
		      "{\"response_range\":{" HDR ",\"kvs\":[{\"key\":\"%s\","
		      "\"create_revision\":\"5\",\"mod_revision\":\"12\","
		      "\"version\":\"3\",\"value\":\"%s\"}],\"count\":\"1\"}},"
		      "{\"response_range\":{" HDR "}},"
		      "{\"response_range\":{" HDR ",\"kvs\":[{\"key\":\"%s\","
		      "\"create_revision\":\"7\",\"mod_revision\":\"7\","
		      "\"version\":\"1\"}],\"count\":\"1\"}}]}",
		      b64("/r/a"), b64("hello"), b64("/r/c"));

	CHECK_INT(etcd_parse_txn_values(j, strlen(j), "t", st, v, 3), 0);
	CHECK_INT(st[0].kind, ETCD_RESP_RANGE);
	CHECK_INT(st[0].found, 1);
	CHECK_INT(st[0].meta.version, 12);
	CHECK_INT(st[0].meta.create_id, 5);
	CHECK_INT(st[0].meta.change_count, 3);
	CHECK_INT(st[0].meta.size, 5);
	CHECK_MEM(v[0], 5, "hello", 5);
	CHECK_INT(st[1].kind, ETCD_RESP_RANGE);
	CHECK_INT(st[1].found, 0);
	CHECK(v[1] == NULL);
	CHECK_INT(st[2].found, 1);
	CHECK_INT(st[2].meta.size, 0);
	CHECK(v[2] == NULL);
	free(v[0]);
	/* the wrong number of ranges */
	CHECK_INT(etcd_parse_txn_values(j, strlen(j), "t", st, v, 2), -EIO);
	CHECK(v[0] == NULL && v[1] == NULL);
	free(j);

	/* not a range */
	j = "{" HDR ",\"succeeded\":true,\"responses\":["
	    "{\"response_put\":{" HDR "}}]}";
	CHECK_INT(etcd_parse_txn_values(j, strlen(j), "t", st, v, 1), -EIO);
	/* two keys in a one-key range */
	j = fmt("{" HDR ",\"succeeded\":true,\"responses\":["
		"{\"response_range\":{\"kvs\":[{\"key\":\"%s\"},"
		"{\"key\":\"%s\"}]}}]}",
		b64("/r/a"), b64("/r/b"));
	CHECK_INT(etcd_parse_txn_values(j, strlen(j), "t", st, v, 1), -EIO);
	free(j);
	/* a failed bad value after a good one frees the good one (ASan) */
	j = fmt("{" HDR ",\"succeeded\":true,\"responses\":["
		"{\"response_range\":{\"kvs\":[{\"key\":\"%s\",\"value\":"
		"\"%s\"}]}},{\"response_range\":{\"kvs\":[{\"key\":\"%s\","
		"\"value\":\"!!\"}]}}]}",
		b64("/r/a"), b64("x"), b64("/r/b"));
	CHECK_INT(etcd_parse_txn_values(j, strlen(j), "t", st, v, 2), -EIO);
	CHECK(v[0] == NULL && v[1] == NULL);
	free(j);
	/* compares (none are sent) that failed */
	j = "{" HDR ",\"responses\":[{\"response_range\":{}}]}";
	CHECK_INT(etcd_parse_txn_values(j, strlen(j), "t", st, v, 1), -EIO);
	j = "not json";
	CHECK_INT(etcd_parse_txn_values(j, strlen(j), "t", st, v, 1), -EIO);
}

/* --- did the uncertain txn land? --------------------------------------- */

/* What a read found: a key with mod_revision mod, create_revision create
 * and value v (NULL: absent). */
static struct etcd_txn_step found(int64_t mod, int64_t create, const char *v)
{
	struct etcd_txn_step st = {.kind = ETCD_RESP_RANGE};

	if (!v)
		return st;
	st.found = true;
	st.meta.version = st.meta.modify_id = mod;
	st.meta.create_id = create;
	st.meta.size = strlen(v);
	st.meta.has_data = true;
	return st;
}

/* etcd_txn_landed for one op against one state. */
static int landed1(struct topo_op op, int64_t mod, int64_t create,
		   const char *v)
{
	struct etcd_txn_step st = found(mod, create, v);
	unsigned char *val = v && *v ? (unsigned char *)v : NULL;

	return etcd_txn_landed(&op, 1, &st, &val);
}

static struct topo_op put(const char *v, int64_t expect)
{
	return (struct topo_op){.kind = TOPO_OP_PUT,
				.path = "k",
				.value = v,
				.len = strlen(v),
				.expect = expect};
}

static struct topo_op del(int64_t expect)
{
	return (struct topo_op){
	    .kind = TOPO_OP_DELETE, .path = "k", .expect = expect};
}

static void test_landed_single(void)
{
	/* put with a version: our value, written after the expected
	 * revision, on the key we compared against */
	CHECK_INT(landed1(put("new", 10), 12, 5, "new"), 1);
	CHECK_INT(landed1(put("new", 10), 11, 10, "new"), 1);
	CHECK_INT(landed1(put("new", 10), 12, 5, "other"), 0);
	CHECK_INT(landed1(put("new", 10), 12, 5, "ne"), 0);
	CHECK_INT(landed1(put("new", 10), 12, 5, "newer"), 0);
	CHECK_INT(landed1(put("new", 10), 10, 5, "new"), 0);  /* untouched */
	CHECK_INT(landed1(put("new", 10), 12, 11, "new"), 0); /* recreated */
	CHECK_INT(landed1(put("new", 10), 0, 0, NULL), 0);    /* deleted */
	CHECK_INT(landed1(put("", 10), 12, 5, ""), 1);	      /* empty value */
	CHECK_INT(landed1(put("", 10), 12, 5, "x"), 0);
	CHECK_INT(landed1(put("new", 0), 12, 5, "new"), 0); /* no version 0 */
	/* create: our value, made by the write that holds it */
	CHECK_INT(landed1(put("v", TOPO_EXPECT_ABSENT), 20, 20, "v"), 1);
	CHECK_INT(landed1(put("v", TOPO_EXPECT_ABSENT), 21, 20, "v"), 0);
	CHECK_INT(landed1(put("v", TOPO_EXPECT_ABSENT), 20, 20, "w"), 0);
	CHECK_INT(landed1(put("v", TOPO_EXPECT_ABSENT), 0, 0, NULL), 0);
	/* a put of any version: our value */
	CHECK_INT(landed1(put("v", TOPO_EXPECT_ANY), 30, 2, "v"), 1);
	CHECK_INT(landed1(put("v", TOPO_EXPECT_ANY), 30, 2, "w"), 0);
	CHECK_INT(landed1(put("v", TOPO_EXPECT_ANY), 0, 0, NULL), 0);
	/* delete: the key is gone */
	CHECK_INT(landed1(del(10), 0, 0, NULL), 1);
	CHECK_INT(landed1(del(TOPO_EXPECT_ANY), 0, 0, NULL), 1);
	CHECK_INT(landed1(del(10), 10, 5, "x"), 0);
	CHECK_INT(landed1(del(10), 12, 5, "x"), 0);
	/* no ops, or an answer that is not a read */
	{
		struct topo_op op = put("v", 1);
		struct etcd_txn_step st = found(2, 1, "v");
		unsigned char *val = (unsigned char *)"v";

		CHECK_INT(etcd_txn_landed(&op, 0, &st, &val), 0);
		st.kind = ETCD_RESP_PUT;
		CHECK_INT(etcd_txn_landed(&op, 1, &st, &val), 0);
	}
}

static void test_landed_multi(void)
{
	/* a rename: create the new name, delete the old one */
	struct topo_op ren[2] = {put("data", TOPO_EXPECT_ABSENT), del(8)};
	/* two puts of one txn */
	struct topo_op two[2] = {put("a", 3), put("b", 4)};
	struct etcd_txn_step st[2];
	unsigned char *val[2];

	st[0] = found(40, 40, "data");
	st[1] = found(0, 0, NULL);
	val[0] = (unsigned char *)"data";
	val[1] = NULL;
	CHECK_INT(etcd_txn_landed(ren, 2, st, val), 1);
	st[1] = found(8, 2, "old"); /* the old name is still there */
	val[1] = (unsigned char *)"old";
	CHECK_INT(etcd_txn_landed(ren, 2, st, val), 0);
	st[0] = found(0, 0, NULL); /* neither */
	val[0] = NULL;
	CHECK_INT(etcd_txn_landed(ren, 2, st, val), 0);
	st[0] = found(40, 40, "data"); /* the old name gone, not ours new */
	st[0].meta.create_id = 39;
	val[0] = (unsigned char *)"data";
	st[1] = found(0, 0, NULL);
	val[1] = NULL;
	CHECK_INT(etcd_txn_landed(ren, 2, st, val), 0);

	st[0] = found(50, 1, "a");
	st[1] = found(50, 2, "b");
	val[0] = (unsigned char *)"a";
	val[1] = (unsigned char *)"b";
	CHECK_INT(etcd_txn_landed(two, 2, st, val), 1);
	st[1].meta.version = 51; /* not one txn */
	CHECK_INT(etcd_txn_landed(two, 2, st, val), 0);
	st[1].meta.version = 50;
	val[1] = (unsigned char *)"c"; /* one op visible, not the other */
	CHECK_INT(etcd_txn_landed(two, 2, st, val), 0);
}

/* --- the retry loop against fake members -------------------------------- */

/* What a fake member does with one request. */
enum act {
	END,   /* end of the script */
	CUT,   /* read the request, close without an answer (a killed member) */
	REPLY, /* answer status/body, then close the connection */
	HANG,  /* read the request, answer nothing until the client gives up
		  (a follower holding what it forwarded to a dead leader) */
	GONE,  /* stop listening: later connections are refused */
};

struct step {
	enum act act;
	int status;
	const char *body;
};

struct member {
	int fd;
	int port;
	const struct step *script;
	int served; /* requests read */
	pthread_t thread;
};

/* Read one HTTP request (headers and Content-Length body) from c. */
static void read_request(int c)
{
	char buf[8192];
	size_t n = 0;
	char *end = NULL;
	long body = 0;

	while (!end && n < sizeof(buf) - 1) {
		ssize_t r = read(c, buf + n, sizeof(buf) - 1 - n);

		if (r <= 0)
			return;
		n += (size_t)r;
		buf[n] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	if (!end)
		return;
	for (char *p = buf; p && p < end; p = strstr(p, "\r\n") + 2)
		if (strncasecmp(p, "Content-Length:", 15) == 0)
			body = strtol(p + 15, NULL, 10);
	body -= (long)(n - (size_t)(end + 4 - buf));
	while (body > 0) {
		ssize_t r = read(c, buf, sizeof(buf));

		if (r <= 0)
			return;
		body -= r;
	}
}

/* Answer nothing on c until the client closes it (10 s at most). */
static void wait_client_gone(int c)
{
	struct timeval tv = {.tv_sec = 10};
	char buf[512];

	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (read(c, buf, sizeof(buf)) > 0)
		;
}

/* The member's thread: one connection per step of its script, until the
 * script ends or member_stop(). */
static void *serve(void *arg)
{
	struct member *m = arg;

	for (const struct step *s = m->script; s->act != END; s++) {
		int c;
		char *head;

		if (s->act == GONE) {
			/* Linux: a listening socket shut down refuses */
			shutdown(m->fd, SHUT_RDWR);
			break;
		}
		c = accept(m->fd, NULL, NULL);
		if (c < 0)
			break;
		read_request(c);
		m->served++;
		if (s->act == HANG)
			wait_client_gone(c);
		if (s->act == REPLY) {
			head = fmt("HTTP/1.1 %d X\r\nContent-Type: "
				   "application/json\r\nContent-Length: "
				   "%zu\r\nConnection: close\r\n\r\n%s",
				   s->status, strlen(s->body), s->body);
			if (send(c, head, strlen(head), MSG_NOSIGNAL) < 0)
				perror("send");
			free(head);
		}
		close(c);
	}
	return NULL;
}

/* Start a member on a free loopback port with a script. */
static void member_start(struct member *m, const struct step *script)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);

	memset(m, 0, sizeof(*m));
	m->script = script;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	m->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (m->fd < 0 || bind(m->fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(m->fd, 8) || getsockname(m->fd, (struct sockaddr *)&a, &len))
		abort();
	m->port = ntohs(a.sin_port);
	pthread_create(&m->thread, NULL, serve, m);
}

/* Stop a member (its thread, waiting in accept, wakes up) and close its
 * port: later connections are refused. */
static void member_stop(struct member *m)
{
	shutdown(m->fd, SHUT_RDWR);
	pthread_join(m->thread, NULL);
	close(m->fd);
}

/* Open a transport on "127.0.0.1:PORT,..." with a timeout. */
static struct etcd_http *open_http(const char *servers, unsigned ms)
{
	struct topo_conf conf = {
	    .servers = servers, .root = "/r", .timeout_ms = ms};
	struct etcd_http *h;
	char err[256];

	if (etcd_http_open(&conf, &h, err, sizeof(err)))
		abort();
	return h;
}

/* POST "{}" as a write (uncertain != NULL) or a read. */
static int post(struct etcd_http *h, bool *uncertain, struct etcd_reply *r)
{
	char why[256];

	return etcd_http_post(h, "/v3/kv/txn", "{}", 2, etcd_http_deadline(h),
			      uncertain, "test", r, why, sizeof(why));
}

static void test_landed_guard(void)
{
	/* a directory rename: create, delete, and a guard on the old name,
	 * which writes nothing and so has nothing to show */
	struct topo_op ren[3] = {
	    put("data", TOPO_EXPECT_ABSENT),
	    del(8),
	    {.kind = TOPO_OP_GUARD, .path = "D", .expect = 9}};
	struct etcd_txn_step st[3];
	unsigned char *val[3] = {(unsigned char *)"data", NULL, NULL};

	st[0] = found(40, 40, "data");
	st[1] = found(0, 0, NULL);
	st[2] = found(0, 0, NULL); /* the directory holds no value */
	CHECK_INT(etcd_txn_landed(ren, 3, st, val), 1);
	st[2] = found(12, 12, ""); /* it does, changed since: still landed */
	CHECK_INT(etcd_txn_landed(ren, 3, st, val), 1);
	st[1] = found(8, 2, "old"); /* the old name is still there */
	val[1] = (unsigned char *)"old";
	CHECK_INT(etcd_txn_landed(ren, 3, st, val), 0);
	/* guards alone: no trace either way, never "landed" */
	CHECK_INT(etcd_txn_landed(&ren[2], 1, &st[2], &val[2]), 0);
}

/* An election on the only member: "try again" twice, then an answer. */
static void test_retry_election(void)
{
	static const struct step s[] = {
	    {REPLY, 503, LEADER_CHANGED},
	    {REPLY, 503, "{\"error\":\"etcdserver: no leader\",\"code\":14}"},
	    {REPLY, 200, "{\"ok\":1}"},
	    {END}};
	struct member m;
	struct etcd_reply r;
	struct etcd_http *h;
	char *servers;
	bool uncertain = false;
	long long t0;

	member_start(&m, s);
	servers = fmt("127.0.0.1:%d", m.port);
	h = open_http(servers, 5000);
	t0 = ms_now();
	CHECK_INT(post(h, &uncertain, &r), 0);
	CHECK(ms_now() - t0 >= 50 + 100); /* two pauses */
	CHECK_INT(r.status, 200);
	CHECK_STR(r.body, "{\"ok\":1}");
	CHECK_INT(uncertain, 1);
	etcd_reply_free(&r);
	member_stop(&m);
	CHECK_INT(m.served, 3);
	etcd_http_close(h);
	free(servers);
}

/* A final error is not tried again, and leaves a write certain. */
static void test_no_retry_final(void)
{
	static const struct step s[] = {
	    {REPLY, 400,
	     "{\"error\":\"etcdserver: request is too large\",\"code\":3}"},
	    {END}};
	struct member m;
	struct etcd_reply r;
	struct etcd_http *h;
	char *servers;
	bool uncertain = true;

	member_start(&m, s);
	servers = fmt("127.0.0.1:%d", m.port);
	h = open_http(servers, 5000);
	CHECK_INT(post(h, &uncertain, &r), 0);
	CHECK_INT(r.status, 400);
	CHECK_INT(uncertain, 0);
	etcd_reply_free(&r);
	member_stop(&m);
	CHECK_INT(m.served, 1);
	etcd_http_close(h);
	free(servers);
}

/* "Try again" until the deadline: the last answer goes to the caller. */
static void test_retry_deadline(void)
{
	static const struct step s[] = {{REPLY, 503, LEADER_CHANGED},
					{REPLY, 503, LEADER_CHANGED},
					{REPLY, 503, LEADER_CHANGED},
					{REPLY, 503, LEADER_CHANGED},
					{REPLY, 503, LEADER_CHANGED},
					{REPLY, 503, LEADER_CHANGED},
					{REPLY, 503, LEADER_CHANGED},
					{REPLY, 503, LEADER_CHANGED},
					{END}};
	struct member m;
	struct etcd_reply r;
	struct etcd_http *h;
	char *servers;
	long long t0, t;

	member_start(&m, s);
	servers = fmt("127.0.0.1:%d", m.port);
	h = open_http(servers, 600);
	t0 = ms_now();
	CHECK_INT(post(h, NULL, &r), 0);
	t = ms_now() - t0;
	CHECK(t >= 550 && t < 2000);
	CHECK_INT(r.status, 503);
	CHECK(r.body && strstr(r.body, "leader changed"));
	CHECK_INT(etcd_parse_reply_error(r.status, r.body, r.len, NULL), -EIO);
	etcd_reply_free(&r);
	/* 50+100+200 ms of pauses fit, 50+100+200+400 do not: 4 answers
	 * (fewer on a loaded machine) */
	member_stop(&m);
	CHECK(m.served >= 2 && m.served <= 4);
	etcd_http_close(h);
	free(servers);
}

/* The member a write goes to dies with it: the next member gets it, and
 * the outcome of the first attempt is unknown. */
static void test_failover_cut(void)
{
	static const struct step a[] = {{CUT}, {END}};
	static const struct step b[] = {{REPLY, 200, "{\"ok\":2}"}, {END}};
	struct member ma, mb;
	struct etcd_reply r;
	struct etcd_http *h;
	char *servers;
	bool uncertain = false;

	member_start(&ma, a);
	member_start(&mb, b);
	servers = fmt("127.0.0.1:%d,127.0.0.1:%d", ma.port, mb.port);
	h = open_http(servers, 5000);
	CHECK_INT(post(h, &uncertain, &r), 0);
	CHECK_INT(r.status, 200);
	CHECK_STR(r.body, "{\"ok\":2}");
	CHECK_INT(uncertain, 1);
	CHECK_INT(etcd_http_current(h), 1);
	etcd_reply_free(&r);
	member_stop(&ma);
	member_stop(&mb);
	CHECK_INT(ma.served, 1);
	CHECK_INT(mb.served, 1);
	etcd_http_close(h);
	free(servers);
}

/* Every member refusing connections: the store is down, fail at once
 * (not at the deadline). */
static void test_all_down(void)
{
	static const struct step none[] = {{END}};
	struct member ma, mb;
	struct etcd_reply r;
	struct etcd_http *h;
	char *servers;
	long long t0;

	member_start(&ma, none);
	member_start(&mb, none);
	member_stop(&ma); /* both ports closed: connections refused */
	member_stop(&mb);
	servers = fmt("127.0.0.1:%d,127.0.0.1:%d", ma.port, mb.port);
	h = open_http(servers, 5000);
	t0 = ms_now();
	CHECK_INT(post(h, NULL, &r), -EIO);
	CHECK(ms_now() - t0 < 1000);
	CHECK(r.body == NULL);
	etcd_http_close(h);
	free(servers);
}

/* Three members on loopback with these scripts, and their "host:port"
 * list in that order. */
static char *members_start(struct member m[3], const struct step *a,
			   const struct step *b, const struct step *c)
{
	member_start(&m[0], a);
	member_start(&m[1], b);
	member_start(&m[2], c);
	return fmt("127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", m[0].port,
		   m[1].port, m[2].port);
}

static void members_stop(struct member m[3])
{
	for (int i = 0; i < 3; i++)
		member_stop(&m[i]);
}

/* The member in use is the leader and dies with the write (issue 21 item
 * 10): the followers hold the write they forwarded to it until the client
 * gives up, and answer once a new leader is elected. Those are busy
 * members, not down ones: the write is sent again until one answers, within
 * the timeout (it ended with EIO after three "failures"). */
static void test_failover_leader_in_use(void)
{
	static const struct step a[] = {{CUT}, {GONE}, {END}};
	static const struct step b[] = {
	    {HANG}, {REPLY, 200, "{\"ok\":2}"}, {END}};
	static const struct step c[] = {
	    {HANG}, {REPLY, 200, "{\"ok\":3}"}, {END}};
	struct member m[3];
	struct etcd_reply r;
	char *servers = members_start(m, a, b, c);
	struct etcd_http *h = open_http(servers, 1200);
	bool uncertain = false;
	long long t0 = ms_now();

	CHECK_INT(post(h, &uncertain, &r), 0);
	CHECK(ms_now() - t0 < 1200);
	CHECK_INT(r.status, 200);
	CHECK_STR(r.body, "{\"ok\":2}"); /* a, b, c, a (refused), b */
	CHECK_INT(uncertain, 1);
	CHECK_INT(etcd_http_current(h), 1);
	etcd_reply_free(&r);
	members_stop(m);
	CHECK_INT(m[0].served, 1);
	CHECK_INT(m[1].served, 2);
	CHECK_INT(m[2].served, 1);
	etcd_http_close(h);
	free(servers);
}

/* The leader dies while the member in use is a follower: both followers
 * hold the write, the leader's port refuses. Not "every member failed": the
 * follower in use answers the next attempt (it ended with EIO long before
 * the timeout). */
static void test_failover_leader_behind(void)
{
	static const struct step a[] = {
	    {HANG}, {REPLY, 200, "{\"ok\":1}"}, {END}};
	static const struct step b[] = {{HANG}, {END}};
	static const struct step none[] = {{END}};
	struct member m[3];
	struct etcd_reply r;
	char *servers = members_start(m, a, b, none);
	struct etcd_http *h;
	bool uncertain = false;
	long long t0;

	shutdown(m[2].fd, SHUT_RDWR); /* the leader, gone */
	h = open_http(servers, 1200);
	t0 = ms_now();
	CHECK_INT(post(h, &uncertain, &r), 0);
	CHECK(ms_now() - t0 < 1200);
	CHECK_INT(r.status, 200);
	CHECK_STR(r.body, "{\"ok\":1}");
	CHECK_INT(uncertain, 1);
	CHECK_INT(etcd_http_current(h), 0);
	etcd_reply_free(&r);
	members_stop(m);
	CHECK_INT(m[0].served, 2);
	CHECK_INT(m[1].served, 1);
	CHECK_INT(m[2].served, 0);
	etcd_http_close(h);
	free(servers);
}

/* One member that takes requests and never answers (no quorum behind it),
 * the others refusing: EIO at the deadline, not later. */
static void test_busy_until_deadline(void)
{
	static const struct step a[] = {{HANG}, {HANG}, {HANG}, {HANG},
					{HANG}, {HANG}, {END}};
	static const struct step none[] = {{END}};
	struct member m[3];
	struct etcd_reply r;
	char *servers = members_start(m, a, none, none);
	struct etcd_http *h;
	long long t0, t;

	shutdown(m[1].fd, SHUT_RDWR);
	shutdown(m[2].fd, SHUT_RDWR);
	h = open_http(servers, 800);
	t0 = ms_now();
	CHECK_INT(post(h, NULL, &r), -EIO);
	t = ms_now() - t0;
	CHECK(t >= 750 && t < 1500);
	CHECK(r.body == NULL);
	members_stop(m);
	CHECK(m[0].served >= 2);
	etcd_http_close(h);
	free(servers);
}

/* A store that is really down still fails at once, also when the member in
 * use dies with the request. */
static void test_all_down_after_cut(void)
{
	static const struct step a[] = {{CUT}, {GONE}, {END}};
	static const struct step none[] = {{END}};
	struct member m[3];
	struct etcd_reply r;
	char *servers = members_start(m, a, none, none);
	struct etcd_http *h;
	bool uncertain = false;
	long long t0;

	shutdown(m[1].fd, SHUT_RDWR);
	shutdown(m[2].fd, SHUT_RDWR);
	h = open_http(servers, 5000);
	t0 = ms_now();
	CHECK_INT(post(h, &uncertain, &r), -EIO);
	CHECK(ms_now() - t0 < 1000);
	CHECK_INT(uncertain, 1);
	members_stop(m);
	CHECK_INT(m[0].served, 1);
	etcd_http_close(h);
	free(servers);
}

int main(void)
{
	test_error_retryable();
	test_reply_retryable();
	test_parse_txn_values();
	test_landed_single();
	test_landed_multi();
	test_landed_guard();
	test_retry_election();
	test_no_retry_final();
	test_retry_deadline();
	test_failover_cut();
	test_all_down();
	test_failover_leader_in_use();
	test_failover_leader_behind();
	test_busy_until_deadline();
	test_all_down_after_cut();
	return check_report();
}
