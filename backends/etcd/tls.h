/*
 * tls.h - TLS to etcd (--topo_etcd_tls_cert, --topo_etcd_tls_key,
 * --topo_etcd_tls_ca): the checks made before mounting, so that a TLS
 * problem ends the program with one line that says which file or which
 * side is wrong, rather than curl's generic "cannot reach".
 *
 * With any of the three flags the gateway is spoken to over https; the
 * server's certificate must chain to the CA file (or the system's CAs
 * without --topo_etcd_tls_ca) and name the host of the address (an IP
 * address must be in its subjectAltName); the client certificate and key
 * are sent when given. http.c sets those options on every handle.
 */
#ifndef TOPOFS_ETCD_TLS_H
#define TOPOFS_ETCD_TLS_H

#include <stddef.h>

#include <curl/curl.h>

#include "http.h"
#include "topofs/backend.h"

/* Check that the TLS files of conf make sense and can be read: 0, or
 * -EINVAL / a negative errno with a one-line reason in errbuf (naming the
 * flag and the file). */
int etcd_tls_check_files(const struct topo_conf *conf, char *errbuf,
			 size_t errlen);

/* The one-line reason (into out, n bytes) for a failed TLS connection to
 * `endpoint` that ended with curl's code rc and message `detail`. Pure. */
void etcd_tls_explain(CURLcode rc, const char *detail,
		      const struct topo_conf *conf, const char *endpoint,
		      char *out, size_t n);

/* With TLS configured: check the files, then connect to the endpoints in
 * turn until one answers. 0 when one did (or none could be reached at all:
 * the caller reports that), else a negative errno with the reason in
 * errbuf (etcd_tls_explain). Without TLS: 0 at once. */
int etcd_tls_probe(struct etcd_http *h, const struct topo_conf *conf,
		   char *errbuf, size_t errlen);

#endif
