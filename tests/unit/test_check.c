/*
 * test_check.c - the pure parts of topofs --check: certificate expiry
 * (common/x509.c), the report, its JSON and exit status, CellInfo records
 * (fs/check_report.c), etcd's status and version answers
 * (backends/etcd/check.c), ZooKeeper's srvr answers (backends/zk/zk_check.c)
 * and the --check options.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../backends/etcd/check.h"
#include "../../backends/zk/zk_check.h"
#include "../../fs/check.h"
#include "check.h"
#include "options_util.h"
#include "topofs/x509.h"

/* v3 (with extensions), notAfter Dec 7 13:05:36 2027 GMT (UTCTime) */
static const char cert_v3[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBcjCCARigAwIBAgIUP+coZcEk5kVLS+lvR9JeH5FM3xUwCgYIKoZIzj0EAwIw\n"
    "DTELMAkGA1UEAwwCY2EwHhcNMjYxMjA3MTMwNTM2WhcNMjcxMjA3MTMwNTM2WjAM\n"
    "MQowCAYDVQQDDAFjMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8uGNS4tQU61r\n"
    "wT3m64zn+IWaTYNy++pe5D7F53inHOEIqJ0raJ2pMvaX84zK+8jEITR8R2QMwzLJ\n"
    "rUVcl1wV1qNXMFUwEwYDVR0lBAwwCgYIKwYBBQUHAwIwHQYDVR0OBBYEFJi478Az\n"
    "BxN0Dd6yFbZDsC2oPWyJMB8GA1UdIwQYMBaAFEGNcJK+q5ih2m4Lw4zn8PJjYSee\n"
    "MAoGCCqGSM49BAMCA0gAMEUCIQDwiXIiypduVrOvZuULB7/3EzGL3mUyL9Zwo+l9\n"
    "itHLtgIgfCbpC82qxPVxobqUqZOZ2SZ24Wgv+nTNMpdFo3VtJZ4=\n"
    "-----END CERTIFICATE-----\n";

/* v1 (no version field), notAfter Apr 24 13:05:33 2054 GMT
 * (GeneralizedTime) */
static const char cert_v1[] =
    "junk before\r\n-----BEGIN CERTIFICATE-----\r\n"
    "MIIBFjCBvAIUP+coZcEk5kVLS+lvR9JeH5FM3xQwCgYIKoZIzj0EAwIwDTELMAkG\r\n"
    "A1UEAwwCY2EwIBcNMjYxMjA3MTMwNTMzWhgPMjA1NDA0MjQxMzA1MzNaMAwxCjAI\r\n"
    "BgNVBAMMAWMwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATy4Y1Li1BTrWvBPebr\r\n"
    "jOf4hZpNg3L76l7kPsXneKcc4QionStonaky9pfzjMr7yMQhNHxHZAzDMsmtRVyX\r\n"
    "XBXWMAoGCCqGSM49BAMCA0kAMEYCIQD7dltuDxVCC/z8Hf+UqUOIg0mK2KSKCAHb\r\n"
    "MvutUx3e8gIhAJktpMOb2BqFdudj4wqD/VgKeb+NtF8FnJmBBpmGVFkJ\r\n"
    "-----END CERTIFICATE-----\r\n";

static void test_x509(void)
{
	int64_t t = 0;

	CHECK_INT(topo_x509_pem_not_after(cert_v3, strlen(cert_v3), &t), 0);
	CHECK_INT(t, 1828184736);
	CHECK_INT(topo_x509_pem_not_after(cert_v1, strlen(cert_v1), &t), 0);
	CHECK_INT(t, 2660648733);
	/* truncated, no block, bad base64: refused */
	CHECK_INT(topo_x509_pem_not_after(cert_v3, 200, &t), -EINVAL);
	CHECK_INT(topo_x509_pem_not_after("hello", 5, &t), -EINVAL);
	static const char bad64[] = "-----BEGIN CERTIFICATE-----\n!!\n"
				    "-----END CERTIFICATE-----\n";
	CHECK_INT(topo_x509_pem_not_after(bad64, strlen(bad64), &t), -EINVAL);
	static const unsigned char short_der[] = {0x30, 0x82, 0xff, 0xff};
	CHECK_INT(topo_x509_der_not_after(short_der, sizeof(short_der), &t),
		  -EINVAL);
	CHECK_INT(topo_x509_file_not_after("/nonexistent/cert.pem", &t),
		  -ENOENT);

	CHECK_INT(topo_x509_days_left(1000 + 86400 * 30, 1000), 30);
	CHECK_INT(topo_x509_days_left(1000 + 86400 * 30 - 1, 1000), 29);
	CHECK_INT(topo_x509_days_left(1000, 1000), 0);
	CHECK_INT(topo_x509_days_left(999, 1000), -1);
	CHECK_INT(topo_x509_days_left(1000 - 86400, 1000), -1);
	CHECK_INT(topo_x509_days_left(1000 - 86401, 1000), -2);
}

static void test_report(void)
{
	struct check_report r = {0};
	char line[256];

	CHECK_INT(check_exit_status(check_report_worst(&r)), 0);
	CHECK_INT(check_report_add(&r, TOPO_CHECK_OK, "h:1", "reachable",
				   "connected in 0.3 ms", 0.3),
		  0);
	CHECK_INT(check_exit_status(check_report_worst(&r)), 0);
	CHECK_INT(check_report_add(&r, TOPO_CHECK_WARN, NULL, "cluster",
				   "2 of 3 members answer", -1),
		  0);
	CHECK_INT(check_exit_status(check_report_worst(&r)), 1);
	check_line_format(&r.lines[0], line, sizeof(line));
	CHECK_STR(line, "ok    h:1 reachable  (connected in 0.3 ms)");
	check_line_format(&r.lines[1], line, sizeof(line));
	CHECK_STR(line, "warn  cluster  (2 of 3 members answer)");
	CHECK_INT(
	    check_report_add(&r, TOPO_CHECK_FAIL, NULL, "root", "gone", -1), 0);
	CHECK_INT(check_exit_status(check_report_worst(&r)), 2);
	check_line_format(&r.lines[2], line, sizeof(line));
	CHECK_STR(line, "FAIL  root  (gone)");

	char *text = check_report_json(&r, "zk2", "h:1", "/r", "--flags");
	json_t *doc = text ? json_loads(text, 0, NULL) : NULL;
	CHECK(doc != NULL);
	CHECK_STR(json_string_value(json_object_get(doc, "status")), "fail");
	CHECK_INT(json_integer_value(json_object_get(doc, "exit")), 2);
	json_t *checks = json_object_get(doc, "checks");
	CHECK_INT(json_array_size(checks), 3);
	json_t *c0 = json_array_get(checks, 0);
	CHECK_STR(json_string_value(json_object_get(c0, "server")), "h:1");
	CHECK_STR(json_string_value(json_object_get(c0, "level")), "ok");
	CHECK(json_real_value(json_object_get(c0, "ms")) == 0.3);
	json_t *c1 = json_array_get(checks, 1);
	CHECK(json_object_get(c1, "server") == NULL);
	CHECK(json_object_get(c1, "ms") == NULL);
	CHECK_STR(json_string_value(
		      json_object_get(json_array_get(checks, 2), "level")),
		  "fail");
	CHECK_STR(json_string_value(json_object_get(doc, "vitess_flags")),
		  "--flags");
	json_decref(doc);
	free(text);
	check_report_free(&r);

	char *flags = check_vitess_flags("etcd2", "a:1,b:2", "/vitess/global");
	CHECK_STR(flags, "--topo_implementation=etcd2 "
			 "--topo_global_server_address=a:1,b:2 "
			 "--topo_global_root=/vitess/global");
	free(flags);
}

static void test_cellinfo(void)
{
	/* server_address "z1:2181", root "/vitess/zone1", an unknown field 7 */
	static const unsigned char rec[] = {
	    0x0a, 7,	'z',  '1', ':', '2', '1', '8', '1',
	    0x38, 0x05, 0x12, 13,  '/', 'v', 'i', 't', 'e',
	    's',  's',	'/',  'z', 'o', 'n', 'e', '1'};
	char *addr = NULL, *root = NULL;

	CHECK_INT(check_cellinfo_parse(rec, sizeof(rec), &addr, &root), 0);
	CHECK_STR(addr, "z1:2181");
	CHECK_STR(root, "/vitess/zone1");
	free(addr), free(root);
	/* no root; malformed; empty */
	CHECK_INT(check_cellinfo_parse(rec, 9, &addr, &root), -EINVAL);
	CHECK_INT(check_cellinfo_parse((const unsigned char *)"\xff\xff", 2,
				       &addr, &root),
		  -EINVAL);
	CHECK_INT(check_cellinfo_parse(rec, 0, &addr, &root), -EINVAL);
}

static void test_etcd_answers(void)
{
	static const char status[] =
	    "{\"header\":{\"cluster_id\":\"14841639068965178418\","
	    "\"member_id\":\"10276657743932975437\",\"revision\":\"5\","
	    "\"raft_term\":\"2\"},\"version\":\"3.4.23\",\"dbSize\":\"20480\","
	    "\"leader\":\"10276657743932975437\",\"raftIndex\":\"8\"}";
	static const char no_leader[] =
	    "{\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\"}}";
	struct etcd_member_status st;
	char v[64];

	CHECK_INT(etcd_check_parse_status(status, strlen(status), &st), 0);
	CHECK_STR(st.cluster_id, "14841639068965178418");
	CHECK_STR(st.member_id, "10276657743932975437");
	CHECK_STR(st.leader, "10276657743932975437");
	CHECK_STR(st.version, "3.4.23");
	CHECK_INT(etcd_check_parse_status(no_leader, strlen(no_leader), &st),
		  0);
	CHECK_STR(st.leader, "");
	CHECK_INT(etcd_check_parse_status("{}", 2, &st), -EIO);
	CHECK_INT(etcd_check_parse_status("<html>", 6, &st), -EIO);

	static const char ver[] =
	    "{\"etcdserver\":\"3.4.23\",\"etcdcluster\":\"3.4.0\"}";
	CHECK_INT(etcd_check_parse_version(ver, strlen(ver), v, sizeof(v)), 0);
	CHECK_STR(v, "etcd 3.4.23");
	CHECK_INT(etcd_check_parse_version("{\"version\":1}", 13, v, sizeof(v)),
		  -EPROTO);
	CHECK_INT(etcd_check_parse_version(NULL, 0, v, sizeof(v)), -EPROTO);
}

static void test_zk_srvr(void)
{
	static const char ok[] =
	    "Zookeeper version: 3.8.0-debian--1, built on 2023-03-01 UTC\n"
	    "Latency min/avg/max: 0/0.4/3\nReceived: 10\nSent: 9\n"
	    "Connections: 1\nOutstanding: 0\nZxid: 0x100000004\n"
	    "Mode: follower\nNode count: 5\n";
	static const char nope[] =
	    "srvr is not executed because it is not in the whitelist.\n";
	static const char down[] =
	    "This ZooKeeper instance is not currently serving requests\n";
	struct zk_srvr s;

	zk_check_parse_srvr(ok, strlen(ok), &s);
	CHECK_INT(s.kind, ZK_SRVR_OK);
	CHECK_STR(s.version, "3.8.0");
	CHECK_STR(s.mode, "follower");
	zk_check_parse_srvr(nope, strlen(nope), &s);
	CHECK_INT(s.kind, ZK_SRVR_NOT_ALLOWED);
	zk_check_parse_srvr(down, strlen(down), &s);
	CHECK_INT(s.kind, ZK_SRVR_NOT_SERVING);
	zk_check_parse_srvr("HTTP/1.1 400 Bad Request\r\n", 26, &s);
	CHECK_INT(s.kind, ZK_SRVR_FOREIGN);
	zk_check_parse_srvr("", 0, &s);
	CHECK_INT(s.kind, ZK_SRVR_FOREIGN);
}

static void test_options(void)
{
	struct topofs_opts o;
	struct fuse_args fa;
	char err[256];

	const char *a1[] = {"topofs", "--check", "zk2://z1:2181,z2:2181/v/g",
			    NULL};
	CHECK_INT(parse(&o, &fa, err, a1), 0);
	CHECK(o.check && !o.check_write && !o.check_json);
	CHECK_STR(o.implementation, "zk2");
	CHECK_STR(o.servers, "z1:2181,z2:2181");
	CHECK_STR(o.root, "/v/g");
	CHECK(o.mountpoint == NULL);
	done(&o, &fa);

	const char *a2[] = {"topofs", "--check=write", "--json",
			    "--topo_global_root=/r", NULL};
	CHECK_INT(parse(&o, &fa, err, a2), 0);
	CHECK(o.check && o.check_write && o.check_json);
	CHECK_STR(o.implementation, "etcd2");
	CHECK_STR(o.root, "/r");
	done(&o, &fa);

	const char *a3[] = {"topofs", "--check", "etcd2://a:1/r", "/mnt", NULL};
	refused(a3, "--check takes no mount point");
	const char *a4[] = {"topofs", "--check=often", NULL};
	refused(a4, "unknown option '--check=often' (see --help)");
	const char *a5[] = {"topofs", "--json", "/mnt", NULL};
	refused(a5, "--json goes with --check");
}

int main(void)
{
	test_x509();
	test_report();
	test_cellinfo();
	test_etcd_answers();
	test_zk_srvr();
	test_options();
	return check_report();
}
