/*
 * check.c - topofs --check for etcd (see check.h and backend.h).
 *
 * Each address is checked on its own, over an etcd_http of one endpoint,
 * so that failover never hides a member that is down:
 *   GET /version      reachable, answers as etcd (its version), the TLS
 *                     handshake, the server's certificate (CURLINFO_CERTINFO);
 *   authenticate      the user's password accepted (-o etcd_user);
 *   POST /v3/maintenance/status
 *                     the member's cluster_id, member_id and leader, and
 *                     the round-trip time (it needs no user).
 * Then, for the store as a whole: the client certificate's expiry (the
 * PEM file), one cluster_id among the members that answered, and one
 * leader they agree on.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "auth.h"
#include "check.h"
#include "http.h"
#include "tls.h"
#include "topofs/x509.h"

#define WARN_DAYS 30 /* a certificate with fewer days left is a warning */

/* One run of the checks: where the results go. */
struct run {
	const struct topo_conf *conf;
	topo_check_fn fn;
	void *arg;
};

/* Report one result: value formatted from fmt. */
#define emit(r, ...) topo_check_report((r)->fn, (r)->arg, __VA_ARGS__)

/* ---- parsing (pure) ---- */

/* Copy the string or integer member `name` of obj into out (n bytes). */
static void copy_field(json_t *obj, const char *name, char *out, size_t n)
{
	json_t *v = json_object_get(obj, name);

	out[0] = '\0';
	if (json_is_string(v))
		snprintf(out, n, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(out, n, "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
}

/* Parse a status answer; see check.h. */
int etcd_check_parse_status(const char *json, size_t len,
			    struct etcd_member_status *out)
{
	json_t *doc = json_loadb(json, len, 0, NULL);
	json_t *hdr = json_object_get(doc, "header");
	int err = -EIO;

	memset(out, 0, sizeof(*out));
	if (json_is_object(hdr)) {
		copy_field(hdr, "cluster_id", out->cluster_id,
			   sizeof(out->cluster_id));
		copy_field(hdr, "member_id", out->member_id,
			   sizeof(out->member_id));
		copy_field(doc, "leader", out->leader, sizeof(out->leader));
		copy_field(doc, "version", out->version, sizeof(out->version));
		err = out->cluster_id[0] && out->member_id[0] ? 0 : -EIO;
	}
	json_decref(doc);
	return err;
}

/* Parse a /version answer; see check.h. */
int etcd_check_parse_version(const char *json, size_t len, char *out, size_t n)
{
	json_t *doc = json_loadb(json, len, 0, NULL);
	json_t *v = json_object_get(doc, "etcdserver");
	int err = json_is_string(v) ? 0 : -EPROTO;

	if (!err)
		snprintf(out, n, "etcd %s", json_string_value(v));
	json_decref(doc);
	return err;
}

/* A decimal uint64 id as etcdctl shows it (hex); "none" for "" or "0". */
static const char *hex_id(const char *dec, char *buf, size_t n)
{
	unsigned long long v = strtoull(dec, NULL, 10);

	if (!v)
		return "none";
	snprintf(buf, n, "%llx", v);
	return buf;
}

/* ---- GET /version on one endpoint ---- */

/* What one GET /version found. */
struct fetch {
	CURLcode rc;
	long status;
	struct etcd_reply body;
	double total_ms, connect_ms; /* connect_ms 0: no TCP connection */
	bool have_cert;
	int64_t cert_not_after; /* the server's own certificate */
	char detail[CURL_ERROR_SIZE];
};

/* Append received bytes to a reply (curl write callback). */
static size_t collect(char *data, size_t size, size_t nmemb, void *arg)
{
	size_t n = size * nmemb;
	/* no /version answer is 64 KiB long */
	return etcd_reply_append(arg, data, n, 65536) ? 0 : n;
}

/* The expiry of the server's certificate, from curl's certificate info
 * (the first of the chain: the server's own). */
static void server_cert(CURL *c, struct fetch *f)
{
	struct curl_certinfo *ci = NULL;

	if (curl_easy_getinfo(c, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci ||
	    ci->num_of_certs < 1)
		return;
	for (struct curl_slist *l = ci->certinfo[0]; l; l = l->next)
		if (strncmp(l->data, "Cert:", 5) == 0 &&
		    topo_x509_pem_not_after(l->data + 5, strlen(l->data + 5),
					    &f->cert_not_after) == 0)
			f->have_cert = true;
}

/* GET /version from endpoint 0 of h within ms; verify: check the server's
 * certificate (off only to read an untrusted one's expiry). */
static void fetch_version(struct etcd_http *h, long ms, bool verify,
			  struct fetch *f)
{
	CURL *c = etcd_http_handle(h, 0, "/version");
	double t = 0;

	memset(f, 0, sizeof(*f));
	f->rc = CURLE_OUT_OF_MEMORY;
	if (!c)
		return;
	curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &f->body);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, f->detail);
	curl_easy_setopt(c, CURLOPT_CERTINFO, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ms);
	if (!verify) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	f->rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f->status);
	curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &t);
	f->total_ms = t * 1000;
	curl_easy_getinfo(c, CURLINFO_CONNECT_TIME, &t);
	f->connect_ms = t * 1000;
	server_cert(c, f);
	etcd_auth_detach(c, etcd_http_headers(h));
	curl_easy_cleanup(c);
}

/* Whether curl's code says the TLS layer failed. */
static bool tls_failure(CURLcode rc, const char *detail, bool tls)
{
	switch (rc) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_USE_SSL_FAILED:
		return true;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		/* TLS 1.3: a refused client certificate shows as an alert on
		 * the first read */
		return tls &&
		       (strstr(detail, "SSL") || strstr(detail, "alert"));
	default:
		return false;
	}
}

/* Whether curl's code says nothing answered at the address. */
static bool unreached(const struct fetch *f)
{
	return f->rc == CURLE_COULDNT_CONNECT ||
	       f->rc == CURLE_COULDNT_RESOLVE_HOST ||
	       (f->rc == CURLE_OPERATION_TIMEDOUT && f->connect_ms <= 0);
}

/* Report the days left on a certificate. */
static void cert_days(const struct run *r, const char *server, const char *what,
		      int64_t not_after)
{
	long days = topo_x509_days_left(not_after, (int64_t)time(NULL));
	time_t t = (time_t)not_after;
	struct tm tm;
	char date[32];

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", &tm);
	if (days < 0)
		emit(r, TOPO_CHECK_FAIL, server, what, -1, false,
		     "expired on %s", date);
	else
		emit(r, days < WARN_DAYS ? TOPO_CHECK_WARN : TOPO_CHECK_OK,
		     server, what, -1, false, "%ld days left, until %s", days,
		     date);
}

/* With the TLS handshake failed: read the server's certificate without
 * checking it, only to say when it expires. */
static void untrusted_cert_days(const struct run *r, struct etcd_http *h,
				const char *addr)
{
	struct fetch f;

	fetch_version(h, (long)r->conf->timeout_ms, false, &f);
	if (f.have_cert)
		cert_days(r, addr, "tls server certificate", f.cert_not_after);
	etcd_reply_free(&f.body);
}

/* Whether the server at addr answers a TLS handshake: an answer over
 * https, a certificate shown, or a TLS alert (a server that wants a
 * client certificate). A server that merely drops the connection does
 * not. */
static bool speaks_tls(const char *addr, unsigned timeout_ms)
{
	struct topo_conf c = {.timeout_ms = timeout_ms};
	struct etcd_http *h = NULL;
	char url[300], e[256];
	struct fetch f;
	bool yes;

	snprintf(url, sizeof(url), "https://%s", addr);
	c.servers = url;
	if (etcd_http_open(&c, &h, e, sizeof(e)))
		return false;
	fetch_version(h, (long)timeout_ms, false, &f);
	yes = f.rc == CURLE_OK || f.have_cert || strstr(f.detail, "alert");
	etcd_reply_free(&f.body);
	etcd_http_close(h);
	return yes;
}

/* A failed GET /version that is TLS's doing: reported, and true. Without
 * the TLS flags, a server that answers https only says so. */
static bool report_tls_failure(const struct run *r, struct etcd_http *h,
			       const char *addr, const struct fetch *f,
			       bool tls)
{
	char why[768];

	if (tls_failure(f->rc, f->detail, tls)) {
		etcd_tls_explain(f->rc, f->detail, r->conf, addr, why,
				 sizeof(why));
		emit(r, TOPO_CHECK_FAIL, addr, "tls handshake", -1, false, "%s",
		     why);
		untrusted_cert_days(r, h, addr);
		return true;
	}
	if (tls || f->rc == CURLE_OK || f->rc == CURLE_OPERATION_TIMEDOUT ||
	    !speaks_tls(addr, r->conf->timeout_ms))
		return false;
	emit(r, TOPO_CHECK_FAIL, addr, "tls handshake", -1, false,
	     "the server speaks TLS: give --topo_etcd_tls_ca (and _cert, "
	     "_key)");
	return true;
}

/* Report what GET /version found; true if the member answers as etcd. */
static bool report_version(const struct run *r, struct etcd_http *h,
			   const char *addr, const struct fetch *f, bool tls)
{
	char desc[64];
	const char *d = f->detail[0] ? f->detail : curl_easy_strerror(f->rc);

	if (unreached(f)) {
		emit(r, TOPO_CHECK_FAIL, addr, "reachable", -1, false,
		     "cannot connect (-o timeout %u ms): %s",
		     r->conf->timeout_ms, d);
		return false;
	}
	emit(r, TOPO_CHECK_OK, addr, "reachable", f->connect_ms, false,
	     "connected in %.1f ms", f->connect_ms);
	if (report_tls_failure(r, h, addr, f, tls))
		return false;
	if (f->rc == CURLE_OPERATION_TIMEDOUT) {
		emit(r, TOPO_CHECK_FAIL, addr, "store", -1, false,
		     "connected, but no answer within %u ms",
		     r->conf->timeout_ms);
		return false;
	}
	if (f->rc != CURLE_OK || f->status != 200 ||
	    etcd_check_parse_version(f->body.body, f->body.len, desc,
				     sizeof(desc))) {
		emit(r, TOPO_CHECK_FAIL, addr, "store", -1, true,
		     "does not answer as etcd (%s)",
		     f->rc != CURLE_OK ? d : "GET /version: not etcd's answer");
		return false;
	}
	if (tls)
		emit(r, TOPO_CHECK_OK, addr, "tls handshake", -1, false,
		     "server certificate trusted (CA: %s)",
		     r->conf->tls_ca ? r->conf->tls_ca : "the system's CAs");
	if (f->have_cert)
		cert_days(r, addr, "tls server certificate", f->cert_not_after);
	emit(r, TOPO_CHECK_OK, addr, "store", f->total_ms, false, "%s", desc);
	return true;
}

/* ---- the user and the status ---- */

/* -o etcd_user: log in on this member alone. */
static void check_login(const struct run *r, struct etcd_http *h,
			const char *addr)
{
	char err[512] = "";
	int rc;

	if (!r->conf->etcd_user)
		return;
	rc = etcd_auth_login(h, addr, err, sizeof(err));
	if (rc)
		emit(r, TOPO_CHECK_FAIL, addr, "credentials", -1, false, "%s",
		     err);
	else
		emit(r, TOPO_CHECK_OK, addr, "credentials", -1, false,
		     "user %s accepted", r->conf->etcd_user);
}

/* Milliseconds on the monotonic clock, as a double. */
static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
}

/* POST /v3/maintenance/status to this member alone: its ids and leader,
 * and the round trip. 0 and *st, or -EIO (reported). */
static int check_status(const struct run *r, struct etcd_http *h,
			const char *addr, struct etcd_member_status *st)
{
	struct etcd_reply reply;
	char why[256] = "", a[24], b[24];
	double t0 = now_ms(), ms;
	int err = etcd_http_post(h, "/v3/maintenance/status", "{}", 2,
				 etcd_http_deadline(h), NULL, NULL, &reply, why,
				 sizeof(why));

	ms = now_ms() - t0;
	if (!err && (reply.status != 200 ||
		     etcd_check_parse_status(reply.body, reply.len, st)))
		err = -EIO;
	if (err) {
		emit(r, TOPO_CHECK_FAIL, addr, "status", -1, false,
		     "no usable answer to /v3/maintenance/status%s%s",
		     why[0] ? ": " : "", why);
		etcd_reply_free(&reply);
		return -EIO;
	}
	etcd_reply_free(&reply);
	emit(r,
	     ms > r->conf->timeout_ms / 2.0 ? TOPO_CHECK_WARN : TOPO_CHECK_OK,
	     addr, "round trip", ms, false, "%.1f ms", ms);
	if (!strtoull(st->leader, NULL, 10))
		emit(r, TOPO_CHECK_FAIL, addr, "leader", -1, false,
		     "member %s knows no leader (no quorum?)",
		     hex_id(st->member_id, a, sizeof(a)));
	else
		emit(r, TOPO_CHECK_OK, addr, "leader", -1, false,
		     "member %s, leader %s%s, cluster %s",
		     hex_id(st->member_id, a, sizeof(a)),
		     hex_id(st->leader, b, sizeof(b)),
		     strcmp(st->leader, st->member_id) ? "" : " (this member)",
		     hex_id(st->cluster_id, why, sizeof(why)));
	return 0;
}

/* Every check of one address; true and *st if it answered as etcd. */
static bool check_member(const struct run *r, const char *addr,
			 struct etcd_member_status *st)
{
	struct topo_conf c = *r->conf;
	struct etcd_http *h = NULL;
	struct fetch f;
	char err[512] = "";
	bool ok = false;

	c.servers = addr;
	if (etcd_http_open(&c, &h, err, sizeof(err))) {
		emit(r, TOPO_CHECK_FAIL, addr, "address", -1, false, "%s", err);
		return false;
	}
	fetch_version(h, (long)c.timeout_ms, true, &f);
	if (report_version(r, h, addr, &f,
			   c.tls_cert || c.tls_key || c.tls_ca)) {
		check_login(r, h, addr);
		ok = check_status(r, h, addr, st) == 0;
	}
	etcd_reply_free(&f.body);
	etcd_http_close(h);
	return ok;
}

/* ---- the store as a whole ---- */

/* The client certificate's days left (once: the same file everywhere). */
static void client_cert(const struct run *r)
{
	int64_t not_after;
	int err;

	if (!r->conf->tls_cert)
		return;
	err = topo_x509_file_not_after(r->conf->tls_cert, &not_after);
	if (err)
		emit(r, TOPO_CHECK_FAIL, NULL, "tls client certificate", -1,
		     false, "cannot read a certificate from %s: %s",
		     r->conf->tls_cert, strerror(-err));
	else
		cert_days(r, NULL, "tls client certificate", not_after);
}

/* One cluster, one leader among the members that answered. */
static void cluster_verdict(const struct run *r,
			    const struct etcd_member_status *st,
			    const bool *answered, size_t n)
{
	const struct etcd_member_status *first = NULL;
	size_t up = 0;
	bool split = false, leaders_differ = false;
	char a[24], b[24];

	for (size_t i = 0; i < n; i++) {
		if (!answered[i])
			continue;
		up++;
		if (!first) {
			first = &st[i];
			continue;
		}
		split |= strcmp(first->cluster_id, st[i].cluster_id) != 0;
		leaders_differ |= strcmp(first->leader, st[i].leader) != 0;
	}
	if (!first)
		emit(r, TOPO_CHECK_FAIL, NULL, "cluster", -1, false,
		     "no member of %zu answers", n);
	else if (split)
		emit(r, TOPO_CHECK_FAIL, NULL, "cluster", -1, false,
		     "the addresses belong to different etcd clusters (see "
		     "the leader lines)");
	else
		emit(r,
		     up < n || leaders_differ ? TOPO_CHECK_WARN : TOPO_CHECK_OK,
		     NULL, "cluster", -1, false,
		     "%zu of %zu members answer, cluster %s, leader %s%s", up,
		     n, hex_id(first->cluster_id, a, sizeof(a)),
		     hex_id(first->leader, b, sizeof(b)),
		     leaders_differ ? " (the members disagree on it)" : "");
}

/* check: see backend.h. */
int etcd_check(const struct topo_conf *conf, topo_check_fn fn, void *arg,
	       char *errbuf, size_t errlen)
{
	struct run r = {.conf = conf, .fn = fn, .arg = arg};
	char *list = strdup(conf->servers ? conf->servers : ""), *save = NULL;
	size_t n = 1;
	struct etcd_member_status *st;
	bool *answered;

	for (const char *c = list ? list : ""; *c; c++)
		n += *c == ',';
	st = calloc(n, sizeof(*st));
	answered = calloc(n, sizeof(*answered));
	if (!list || !st || !answered) {
		free(list), free(st), free(answered);
		snprintf(errbuf, errlen, "out of memory");
		return -ENOMEM;
	}
	client_cert(&r);
	n = 0;
	for (char *a = strtok_r(list, ",", &save); a;
	     a = strtok_r(NULL, ",", &save), n++)
		answered[n] = check_member(&r, a, &st[n]);
	cluster_verdict(&r, st, answered, n);
	free(list), free(st), free(answered);
	return 0;
}

/* identify: see backend.h. Plain http first, then https without checking
 * the certificate (an etcd with TLS answers plain http with HTTP 400). */
int etcd_identify(const char *address, unsigned timeout_ms, char *desc,
		  size_t desclen)
{
	static const char *const schemes[] = {"http://", "https://"};
	int err = -EIO;

	for (size_t i = 0; i < 2 && err != 0; i++) {
		struct topo_conf c = {.timeout_ms = timeout_ms / 2 + 1};
		struct etcd_http *h = NULL;
		char url[300], e[256];
		struct fetch f;

		snprintf(url, sizeof(url), "%s%s", schemes[i], address);
		c.servers = url;
		if (etcd_http_open(&c, &h, e, sizeof(e)))
			return -EIO;
		fetch_version(h, (long)c.timeout_ms, false, &f);
		if (f.rc == CURLE_OK && f.status == 200 &&
		    !etcd_check_parse_version(f.body.body, f.body.len, desc,
					      desclen))
			err = 0;
		else if (f.connect_ms > 0)
			err = -EPROTO;
		etcd_reply_free(&f.body);
		etcd_http_close(h);
	}
	return err;
}
