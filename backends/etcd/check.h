/*
 * check.h - topofs --check for etcd (check.c): each member on its own over a
 * connection of its own (GET /version, the TLS handshake and certificates,
 * the user's login, POST /v3/maintenance/status), then whether the members
 * form one cluster with a leader. The parsing parts are pure, for the unit
 * tests. The etcd v2 backend shares it: its servers are etcd 3 servers.
 */
#ifndef TOPOFS_ETCD_CHECK_H
#define TOPOFS_ETCD_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "topofs/backend.h"

/* What /v3/maintenance/status says of a member. uint64 ids are kept as the
 * decimal strings the gateway writes ("" when absent). */
struct etcd_member_status {
	char cluster_id[24];
	char member_id[24];
	char leader[24]; /* "" or "0": the member knows no leader */
	char version[32];
};

/* Parse a status answer. 0, or -EIO if it is not one. Pure. */
int etcd_check_parse_status(const char *json, size_t len,
			    struct etcd_member_status *out);

/* The server version of a GET /version answer ({"etcdserver":"3.4.23",
 * "etcdcluster":"3.4.0"}) into out (n bytes). 0, or -EPROTO if it is not
 * etcd's. Pure. */
int etcd_check_parse_version(const char *json, size_t len, char *out, size_t n);

/* check: see backend.h. */
int etcd_check(const struct topo_conf *conf, topo_check_fn fn, void *arg,
	       char *errbuf, size_t errlen);

/* identify: see backend.h. */
int etcd_identify(const char *address, unsigned timeout_ms, char *desc,
		  size_t desclen);

#endif
