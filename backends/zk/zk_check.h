/*
 * zk_check.h - topofs --check for ZooKeeper (zk_check.c): each server on
 * its own, with the four-letter word `srvr` (version, mode) and a session
 * of its own (credentials, round trip); then whether the servers form one
 * ensemble with one leader. The parsing of `srvr` is pure, for the tests.
 */
#ifndef TOPOFS_ZK_CHECK_H
#define TOPOFS_ZK_CHECK_H

#include <stddef.h>

#include "topofs/backend.h"

/* What a server answered to `srvr`. */
enum zk_srvr_kind {
	ZK_SRVR_OK,	     /* its version and mode */
	ZK_SRVR_NOT_ALLOWED, /* not in 4lw.commands.whitelist */
	ZK_SRVR_NOT_SERVING, /* up, but not serving (no quorum) */
	ZK_SRVR_FOREIGN,     /* not a ZooKeeper answer */
};

struct zk_srvr {
	enum zk_srvr_kind kind;
	char version[48]; /* "3.8.0" (ZK_SRVR_OK) */
	char mode[24];	  /* "leader", "follower", "standalone", ... */
};

/* Parse an answer to `srvr`, text[0..len). Pure. */
void zk_check_parse_srvr(const char *text, size_t len, struct zk_srvr *out);

/* check: see backend.h. */
int zk_check(const struct topo_conf *conf, topo_check_fn fn, void *arg,
	     char *errbuf, size_t errlen);

/* identify: see backend.h. */
int zk_identify(const char *address, unsigned timeout_ms, char *desc,
		size_t desclen);

#endif
