/* tls.c - see tls.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "auth.h"
#include "http.h"
#include "tls.h"

#define PROBE_API "/v3/maintenance/status"
#define PROBE_MS 5000 /* at most, per endpoint */

/* Whether file can be opened for reading: 0 or a negative errno with the
 * reason in errbuf. */
static int readable(const char *flag, const char *file, char *errbuf,
		    size_t errlen)
{
	int fd;

	if (!file)
		return 0;
	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int err = errno;

		snprintf(errbuf, errlen, "cannot read --%s file %s: %s", flag,
			 file, strerror(err));
		return -err;
	}
	close(fd);
	return 0;
}

/* Check the files; see tls.h. */
int etcd_tls_check_files(const struct topo_conf *conf, char *errbuf,
			 size_t errlen)
{
	int err;

	if (conf->tls_key && !conf->tls_cert) {
		snprintf(errbuf, errlen,
			 "--topo_etcd_tls_key needs --topo_etcd_tls_cert (the "
			 "client certificate of that key)");
		return -EINVAL;
	}
	if ((err = readable("topo_etcd_tls_cert", conf->tls_cert, errbuf,
			    errlen)) ||
	    (err = readable("topo_etcd_tls_key", conf->tls_key, errbuf,
			    errlen)) ||
	    (err = readable("topo_etcd_tls_ca", conf->tls_ca, errbuf, errlen)))
		return err;
	return 0;
}

/* Explain a failed TLS connection; see tls.h. */
void etcd_tls_explain(CURLcode rc, const char *detail,
		      const struct topo_conf *conf, const char *endpoint,
		      char *out, size_t n)
{
	const char *d = detail && *detail ? detail : curl_easy_strerror(rc);
	const char *ca = conf->tls_ca ? conf->tls_ca : "the system's CAs";
	const char *colon = strrchr(endpoint, ':');
	int hostlen = colon ? (int)(colon - endpoint) : (int)strlen(endpoint);

	switch (rc) {
	case CURLE_PEER_FAILED_VERIFICATION:
		snprintf(out, n,
			 "etcd at %s: its certificate is not trusted (CA: %s; "
			 "it must also name the host %.*s): %s",
			 endpoint, ca, hostlen, endpoint, d);
		return;
	case CURLE_SSL_CACERT_BADFILE:
		snprintf(out, n, "cannot use --topo_etcd_tls_ca file %s: %s",
			 ca, d);
		return;
	case CURLE_SSL_CERTPROBLEM:
		snprintf(out, n,
			 "cannot use the client certificate %s with the key "
			 "%s: %s",
			 conf->tls_cert ? conf->tls_cert : "(none)",
			 conf->tls_key ? conf->tls_key : conf->tls_cert, d);
		return;
	default:
		break;
	}
	if (!conf->tls_cert)
		snprintf(out, n,
			 "etcd at %s refused the TLS connection (does it want "
			 "a client certificate? --topo_etcd_tls_cert, "
			 "--topo_etcd_tls_key): %s",
			 endpoint, d);
	else
		snprintf(out, n,
			 "etcd at %s refused the TLS connection with the "
			 "client certificate %s (not from a CA it trusts?): %s",
			 endpoint, conf->tls_cert, d);
}

/* Discard an answer's bytes (curl write callback). */
static size_t discard(char *data, size_t size, size_t nmemb, void *arg)
{
	(void)data, (void)arg;
	return size * nmemb;
}

/* One connection to endpoint i. curl's code, with its message in detail. */
static CURLcode probe_one(struct etcd_http *h, size_t i, long ms, char *detail)
{
	CURL *c = etcd_http_handle(h, i, PROBE_API);
	CURLcode rc;

	if (!c)
		return CURLE_OUT_OF_MEMORY;
	detail[0] = '\0';
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{}");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, detail);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ms);
	rc = curl_easy_perform(c);
	etcd_auth_detach(c, etcd_http_headers(h));
	curl_easy_cleanup(c);
	return rc;
}

/* Whether rc says nothing about TLS: the endpoint was not reached. */
static bool unreached(CURLcode rc)
{
	return rc == CURLE_COULDNT_CONNECT ||
	       rc == CURLE_COULDNT_RESOLVE_HOST ||
	       rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_OUT_OF_MEMORY;
}

/* Probe; see tls.h. */
int etcd_tls_probe(struct etcd_http *h, const struct topo_conf *conf,
		   char *errbuf, size_t errlen)
{
	char detail[CURL_ERROR_SIZE];
	long ms = conf->timeout_ms && conf->timeout_ms < PROBE_MS
		      ? (long)conf->timeout_ms
		      : PROBE_MS;
	int err;

	if (!conf->tls_cert && !conf->tls_key && !conf->tls_ca)
		return 0;
	err = etcd_tls_check_files(conf, errbuf, errlen);
	if (err)
		return err;
	for (size_t i = 0; i < etcd_http_count(h); i++) {
		CURLcode rc = probe_one(h, i, ms, detail);

		if (rc == CURLE_OK)
			return 0;
		if (unreached(rc))
			continue;
		etcd_tls_explain(rc, detail, conf, etcd_http_name(h, i), errbuf,
				 errlen);
		return -EACCES;
	}
	return 0; /* nobody answered: probe_reach says so */
}
