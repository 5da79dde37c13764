/* test_etcd_auth.c - the pure parts of etcd users and TLS checks: the
 * password file, the authenticate answer, stale tokens, TLS messages. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../backends/etcd/auth.h"
#include "../../backends/etcd/tls.h"
#include "check.h"

/* One password file's contents: the result and, if 0, the password. */
static void password_is(const char *buf, size_t n, int want_rc,
			const char *want)
{
	char *pw = (char *)"unset";
	CHECK_INT(etcd_password_parse(buf, n, &pw), want_rc);
	if (want_rc == 0)
		CHECK_STR(pw, want);
	else
		CHECK(pw == NULL);
	free(want_rc == 0 ? pw : NULL);
}

static void test_password_parse(void)
{
	password_is("s3cret\n", 7, 0, "s3cret");
	password_is("s3cret", 6, 0, "s3cret");
	password_is("s3cret\r\n", 8, 0, "s3cret");
	password_is("with space \t\n\n", 14, 0, "with space \t");
	password_is("p:w,d=x\"'\\\n", 11, 0, "p:w,d=x\"'\\");
	password_is("", 0, -EINVAL, NULL);
	password_is("\n", 1, -EINVAL, NULL);
	password_is("\r\n", 2, -EINVAL, NULL);
	password_is("a\nb\n", 4, -EINVAL, NULL); /* two lines */
	password_is("a\0b\n", 4, -EINVAL, NULL); /* a NUL byte */
}

/* A temporary file with these contents and mode; its path (static). */
static const char *tmpfile_with(const char *text, mode_t mode)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/topofs-test-pw-XXXXXX");
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return "/nonexistent";
	CHECK_INT(write(fd, text, strlen(text)), (long long)strlen(text));
	fchmod(fd, mode);
	close(fd);
	return path;
}

static void test_password_read(void)
{
	char err[256] = "", *pw = NULL;
	const char *p = tmpfile_with("hunter2\n", 0600);
	CHECK_INT(etcd_password_read(p, &pw, err, sizeof(err)), 0);
	CHECK_STR(pw, "hunter2");
	free(pw);
	unlink(p);

	p = tmpfile_with("one\ntwo\n", 0600);
	CHECK_INT(etcd_password_read(p, &pw, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "must hold one non-empty line") != NULL);
	CHECK(strstr(err, "two") == NULL); /* never the contents */
	unlink(p);

	CHECK_INT(etcd_password_read("/nonexistent/pw", &pw, err, sizeof(err)),
		  -ENOENT);
	CHECK_STR(err, "cannot read etcd password file /nonexistent/pw: No "
		       "such file or directory");
	CHECK_INT(etcd_password_read("/tmp", &pw, err, sizeof(err)), -EINVAL);
	CHECK_STR(err,
		  "cannot read etcd password file /tmp: not a regular file");
}

static void test_token(void)
{
	char *tok = NULL;
	const char ok[] = "{\"header\":{\"revision\":\"2\"},\"token\":"
			  "\"XWQtYNUGHuMOZupg.15\"}";
	CHECK_INT(etcd_parse_token(200, ok, strlen(ok), &tok), 0);
	CHECK_STR(tok, "XWQtYNUGHuMOZupg.15");
	free(tok);

	const char bad[] = "{\"error\":\"etcdserver: authentication failed, "
			   "invalid user ID or password\",\"message\":"
			   "\"etcdserver: authentication failed, invalid user "
			   "ID or password\",\"code\":3}";
	CHECK_INT(etcd_parse_token(400, bad, strlen(bad), &tok), -EACCES);
	CHECK(tok == NULL);

	const char off[] = "{\"error\":\"etcdserver: authentication is not "
			   "enabled\",\"message\":\"etcdserver: authentication "
			   "is not enabled\",\"code\":9}";
	CHECK_INT(etcd_parse_token(400, off, strlen(off), &tok), -ENOTSUP);

	/* Answers that make no sense, or a token that cannot be a header. */
	const char *junk[] = {
	    "",
	    "[]",
	    "{}",
	    "{\"token\":\"\"}",
	    "{\"token\":7}",
	    "{\"token\":\"a b\"}",
	    "{\"token\":\"a\\r\\nX-Evil: 1\"}",
	    "{\"token\":\"caf\\u00e9\"}",
	};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		CHECK_INT(etcd_parse_token(200, junk[i], strlen(junk[i]), &tok),
			  -EIO);
		CHECK(tok == NULL);
	}
	const char unavail[] = "{\"error\":\"etcdserver: request timed "
			       "out\",\"code\":14}";
	CHECK_INT(etcd_parse_token(503, unavail, strlen(unavail), &tok), -EIO);
	CHECK_INT(etcd_parse_token(502, NULL, 0, &tok), -EIO);
}

static void test_stale(void)
{
	CHECK(etcd_auth_token_invalid("{\"error\":\"etcdserver: invalid auth "
				      "token\",\"code\":16}"));
	CHECK(etcd_auth_token_invalid("canceled by etcd: rpc error: code = "
				      "Unauthenticated desc = etcdserver: "
				      "invalid auth token"));
	CHECK(!etcd_auth_token_invalid("etcdserver: permission denied"));
	CHECK(!etcd_auth_token_invalid("etcdserver: user name is empty"));
	CHECK(!etcd_auth_token_invalid(NULL));
}

static void test_tls_messages(void)
{
	char out[512];
	struct topo_conf c = {.tls_ca = "/ca.crt"};
	etcd_tls_explain(CURLE_PEER_FAILED_VERIFICATION,
			 "SSL certificate problem: unable to get local issuer "
			 "certificate",
			 &c, "127.0.0.1:2379", out, sizeof(out));
	CHECK_STR(out, "etcd at 127.0.0.1:2379: its certificate is not "
		       "trusted (CA: /ca.crt; it must also name the host "
		       "127.0.0.1): SSL certificate problem: unable to get "
		       "local issuer certificate");
	etcd_tls_explain(CURLE_RECV_ERROR, "alert bad certificate", &c, "h:1",
			 out, sizeof(out));
	CHECK_STR(out, "etcd at h:1 refused the TLS connection (does it want "
		       "a client certificate? --topo_etcd_tls_cert, "
		       "--topo_etcd_tls_key): alert bad certificate");
	c.tls_cert = "/c.crt";
	c.tls_key = "/c.key";
	etcd_tls_explain(CURLE_SEND_ERROR, "", &c, "h:1", out, sizeof(out));
	CHECK_STR(out, "etcd at h:1 refused the TLS connection with the client "
		       "certificate /c.crt (not from a CA it trusts?): Failed "
		       "sending data to the peer");
	etcd_tls_explain(CURLE_SSL_CERTPROBLEM, "unable to set private key", &c,
			 "h:1", out, sizeof(out));
	CHECK_STR(out, "cannot use the client certificate /c.crt with the key "
		       "/c.key: unable to set private key");
}

static void test_tls_files(void)
{
	char err[256] = "";
	struct topo_conf c = {.tls_key = "/k"};
	CHECK_INT(etcd_tls_check_files(&c, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "--topo_etcd_tls_key needs --topo_etcd_tls_cert (the "
		       "client certificate of that key)");
	struct topo_conf d = {.tls_cert = "/nonexistent.crt"};
	CHECK_INT(etcd_tls_check_files(&d, err, sizeof(err)), -ENOENT);
	CHECK_STR(err, "cannot read --topo_etcd_tls_cert file "
		       "/nonexistent.crt: No such file or directory");
	struct topo_conf e = {.tls_ca = "/dev/null"};
	CHECK_INT(etcd_tls_check_files(&e, err, sizeof(err)), 0);
}

int main(void)
{
	test_password_parse();
	test_password_read();
	test_token();
	test_stale();
	test_tls_messages();
	test_tls_files();
	return check_report();
}
