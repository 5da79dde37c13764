/*
 * options_pin.c - the options that choose how topofs talks to etcd:
 * -o etcd_api=v2|v3 and the point-in-time mounts -o revision=N and
 * -o snapshot (see options.h). Kept apart from options.c, which checks
 * everything else.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "topofs/backend.h"

/* A revision: a whole number from 1 to INT64_MAX. */
static int parse_revision(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < 1)
		return -EINVAL;
	*out = v;
	return 0;
}

/* -o etcd_api: v3 or v2, and only for etcd2. */
static int check_api(const struct topofs_opts *o, char *err, size_t errlen)
{
	if (!o->etcd_api)
		return 0;
	if (strcmp(o->etcd_api, "v3") != 0 && strcmp(o->etcd_api, "v2") != 0) {
		snprintf(err, errlen,
			 "unknown etcd_api '%s' (supported: v3, v2)",
			 o->etcd_api);
		return -EINVAL;
	}
	if (strcmp(o->implementation, "etcd2") != 0) {
		snprintf(err, errlen, "-o etcd_api is for etcd (etcd2), not %s",
			 o->implementation);
		return -EINVAL;
	}
	return 0;
}

/* -o revision=N and -o snapshot: one of them, on a store with history. */
static int check_pin(struct topofs_opts *o, char *err, size_t errlen)
{
	const struct topo_backend *be =
	    topo_backend_select(o->implementation, o->etcd_api);
	const char *what = o->snapshot ? "snapshot" : "revision";

	if (o->revision && parse_revision(o->revision, &o->pin_revision)) {
		snprintf(err, errlen,
			 "bad revision '%s': a store revision, a whole "
			 "number from 1",
			 o->revision);
		return -EINVAL;
	}
	if (!o->revision && !o->snapshot)
		return 0;
	if (o->revision && o->snapshot) {
		snprintf(err, errlen,
			 "-o revision and -o snapshot exclude each other "
			 "(snapshot pins the current revision)");
		return -EINVAL;
	}
	if (!be || !(be->caps & TOPO_CAP_PIN)) {
		snprintf(err, errlen,
			 "-o %s needs etcd's v3 API (etcd2): %s%s keeps no "
			 "history of past revisions",
			 what, o->implementation,
			 o->etcd_api && !strcmp(o->implementation, "etcd2")
			     ? " over the v2 API"
			     : "");
		return -EINVAL;
	}
	return 0;
}

int opts_check_store(struct topofs_opts *o, char *err, size_t errlen)
{
	int rc = check_api(o, err, errlen);

	if (!rc && !topo_backend_select(o->implementation, o->etcd_api)) {
		snprintf(err, errlen, "no backend for %s with etcd_api=%s",
			 o->implementation, o->etcd_api);
		rc = -EINVAL;
	}
	return rc ? rc : check_pin(o, err, errlen);
}
