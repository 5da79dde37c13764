/*
 * kv.c - the etcd v3 backend ("etcd2"), over etcd's JSON gateway: the
 * backend table, opening (the probes of the servers and of the root), and
 * the helpers its other files share (kv_internal.h). Reads and listings
 * are in kv_read.c; transactions and writes in kv_txn.c.
 *
 * Key mapping: the root "/vitess/global" (trailing slashes stripped; "/"
 * becomes the empty prefix) and the relative path "a/b" make the key
 * "/vitess/global/a/b"; the path "" is the root key itself.
 *
 * Writes are transactions (kv_txn.c): a compare per operation (ABSENT:
 * version == 0; a version v: mod_revision == v), the writes on success, and
 * on failure a keys-only range per key, read in the same revision as the
 * compares, which tells -EEXIST, -ENOENT and -ESTALE apart exactly.
 *
 * Failover: http.c sends every request again, to another member or after a
 * pause, when its member dies or answers "try again" (a leader election),
 * until the operation's deadline. A write sent again whose compares then
 * fail may be failing on its own first attempt: txn_settle() reads the keys
 * back and settle.c decides whether that attempt landed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth.h"
#include "check.h"
#include "topofs/base64.h"
#include "http.h"
#include "json.h"
#include "kv_internal.h"
#include "tls.h"
#include "pin.h"
#include "watch.h"
#include "topofs/backend.h"
#include "topofs/log.h"

#define ETCD_QUOTA (2ull << 30) /* default --quota-backend-bytes */

/* The key for a relative path, newly allocated. 0 or -ENOMEM. */
int etcd_make_key(const struct topo_store *s, const char *path, char **key)
{
	int n;

	if (!*path)
		n = asprintf(key, "%s", s->root);
	else
		n = asprintf(key, "%s/%s", s->root, path);
	return n < 0 ? -ENOMEM : 0;
}

/* The first key after every key that starts with k[0..n): k with its last
 * byte below 0xff incremented and the rest dropped; "\0" (all keys) if there
 * is none. Newly allocated, *outlen bytes. 0 or -ENOMEM. */
int etcd_prefix_end(const char *k, size_t n, char **out, size_t *outlen)
{
	char *e = malloc(n + 1);

	if (!e)
		return -ENOMEM;
	memcpy(e, k, n);
	while (n > 0 && (unsigned char)e[n - 1] == 0xff)
		n--;
	if (n == 0) {
		e[0] = '\0';
		*outlen = 1;
	} else {
		e[n - 1]++;
		*outlen = n;
	}
	*out = e;
	return 0;
}

/* Set obj[name] to the base64 of p[0..n). 0 or -ENOMEM. */
int etcd_set_bytes(json_t *obj, const char *name, const void *p, size_t n)
{
	char *b64;
	int err = topo_b64_encode(p, n, &b64);

	if (err)
		return err;
	err = json_object_set_new(obj, name, json_string_nocheck(b64));
	free(b64);
	return err ? -ENOMEM : 0;
}

/* Set obj[name] to an int64, as proto3 JSON writes it (a string). 0 or
 * -ENOMEM. */
int etcd_set_int64(json_t *obj, const char *name, int64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return json_object_set_new(obj, name, json_string(buf)) ? -ENOMEM : 0;
}

/* POST req (JSON) to api until `deadline` (0: the timeout from now) and
 * check the answer for an etcd error. `uncertain` as for etcd_http_post
 * (NULL for a read). 0 and *reply, or a negative errno (logged, naming
 * `what`). */
int etcd_call(struct topo_store *s, const char *api, json_t *req,
	      long long deadline, bool *uncertain, const char *what,
	      struct etcd_reply *reply)
{
	char *body = json_dumps(req, JSON_COMPACT);
	int err;

	if (!body)
		return -ENOMEM;
	if (s->quiet)
		what = NULL;
	if (!deadline)
		deadline = etcd_http_deadline(s->http);
	err = etcd_auth_call(s->http, api, body, strlen(body), deadline,
			     uncertain, what, reply);
	free(body);
	return err;
}

/* space: see backend.h. */
static int etcd_space(struct topo_store *s, uint64_t *total, uint64_t *used)
{
	struct etcd_reply reply;
	json_t *req = json_object();
	int err;

	if (!req)
		return -ENOMEM;
	err = etcd_call(s, "/v3/maintenance/status", req, 0, NULL, "status",
			&reply);
	json_decref(req);
	if (err)
		return err;
	err = etcd_parse_status(reply.body, reply.len, used);
	etcd_reply_free(&reply);
	if (err)
		return err;
	*total = ETCD_QUOTA;
	if (*used > *total)
		*total = *used * 2;
	return 0;
}

/* Check that the root is usable: absent, or a directory (keys below it),
 * even if the root key itself holds a value, but not a lone key.
 * 0 or a negative errno with a reason in errbuf. */
static int probe_root(struct topo_store *s, const struct topo_conf *conf,
		      char *errbuf, size_t errlen)
{
	const char *servers = conf->servers;
	struct topo_listing l = {0};
	struct etcd_page page = {0};
	char *sub = NULL, *end = NULL;
	size_t endlen;
	bool below;
	int err = -ENOMEM;

	if (asprintf(&sub, "%s/", s->root) < 0) {
		sub = NULL;
		goto out;
	}
	if (etcd_prefix_end(sub, strlen(sub), &end, &endlen))
		goto out;
	/* Does anything lie below the root? (Then it is a directory.) */
	err = etcd_range_page(s, s->root, sub, strlen(sub), end, endlen,
			      s->pinned, 1, true, &l, &page);
	if (err || !*s->root)
		goto out;
	below = l.count > 0;
	/* The root key itself: a role on the prefix ROOT/ alone does not
	 * allow it; its own value is then not shown. */
	err = etcd_read_key(s, s->root, true, &l);
	if (err == -EACCES) {
		topo_debug("etcd: %s: the root key itself is not readable",
			   s->root);
		s->root_key_hidden = true;
		err = 0;
	}
	if (err || below)
		goto out;
	/* Nothing below: the root key itself must not exist. */
	if (l.count > 0) {
		snprintf(errbuf, errlen, "%s is a key, not a directory",
			 s->root);
		err = -ENOTDIR;
	} else if (!conf->missing_root_ok) {
		snprintf(errbuf, errlen,
			 "no keys under %s in etcd at %s (for a new, empty "
			 "topology use -o create_root)",
			 s->root, servers);
		err = -ENOENT;
	}
out:
	if (err == -EIO)
		snprintf(errbuf, errlen,
			 "etcd at %s gave no usable answer (-d shows why)",
			 servers);
	else if (err == -EACCES && conf->etcd_user)
		snprintf(errbuf, errlen,
			 "etcd at %s: user %s may not read the keys under %s/",
			 servers, conf->etcd_user, s->root);
	else if (err == -EACCES)
		snprintf(errbuf, errlen,
			 "etcd at %s: not authorised to read the keys under "
			 "%s/ (a user is needed: -o etcd_user=)",
			 servers, s->root);
	else if (err == -ENOMEM)
		snprintf(errbuf, errlen, "out of memory");
	etcd_page_clear(&page);
	topo_listing_free(&l);
	free(end);
	free(sub);
	return err;
}

/* Probe the servers once: can a trivial request get through at all? 0 or
 * -EIO with the cause in errbuf. */
static int probe_reach(struct topo_store *s, const char *servers, char *errbuf,
		       size_t errlen)
{
	struct etcd_reply reply;
	char why[256];
	int err = etcd_http_post(s->http, "/v3/maintenance/status", "{}", 2,
				 etcd_http_deadline(s->http), NULL, NULL,
				 &reply, why, sizeof(why));

	if (err) {
		snprintf(errbuf, errlen, "cannot reach etcd at %s", why);
		return err;
	}
	if (reply.status != 200) {
		err = etcd_parse_reply_error(reply.status, reply.body,
					     reply.len, NULL);
		if (err == -EACCES)
			snprintf(errbuf, errlen, "etcd at %s: not authorised",
				 servers);
		else
			snprintf(errbuf, errlen,
				 "etcd at %s answers HTTP status %ld (not an "
				 "etcd v3 server?)",
				 servers, reply.status);
	}
	etcd_reply_free(&reply);
	return err;
}

/* close: see backend.h. */
static void etcd_close(struct topo_store *s)
{
	if (!s)
		return;
	etcd_watch_stop(s->watch); /* first: the thread uses s->http */
	etcd_http_close(s->http);
	free(s->root);
	free(s);
}

/* open: see backend.h. */
static int etcd_open(const struct topo_conf *conf, struct topo_store **out,
		     char *errbuf, size_t errlen)
{
	struct topo_store *s = calloc(1, sizeof(*s));
	int err;

	if (!s) {
		snprintf(errbuf, errlen, "out of memory");
		return -ENOMEM;
	}
	s->quiet = true;
	s->timeout_ms = conf->timeout_ms ? conf->timeout_ms : 10000;
	if ((err = etcd_root_key(conf->root, &s->root, errbuf, errlen)) ||
	    (err = etcd_http_open(conf, &s->http, errbuf, errlen)) ||
	    (err = etcd_tls_probe(s->http, conf, errbuf, errlen)) ||
	    (err = probe_reach(s, conf->servers, errbuf, errlen)) ||
	    (err = etcd_auth_login(s->http, conf->servers, errbuf, errlen)) ||
	    (err = etcd_pin(s->http, conf->servers, s->root, conf->revision,
			    conf->snapshot, &s->pinned, errbuf, errlen)) ||
	    (err = probe_root(s, conf, errbuf, errlen))) {
		etcd_close(s);
		return err;
	}
	s->quiet = false;
	*out = s;
	return 0;
}

/* watch: see backend.h and watch.h. Once per store: -EBUSY after that. */
static int etcd_watch(struct topo_store *s, topo_change_fn fn, void *arg)
{
	if (s->watch)
		return -EBUSY;
	if (s->pinned)
		return 0; /* nothing changes at a past revision */
	return etcd_watch_start(s->http, s->root, s->timeout_ms, fn, arg,
				&s->watch);
}

/* user.etcd.*: the key's own numbers, as etcd names them. */
static size_t etcd_xattrs(const struct topo_meta *m, struct topo_xattr *out)
{
	out[0] = (struct topo_xattr){"user.etcd.create_revision", m->create_id};
	out[1] = (struct topo_xattr){"user.etcd.mod_revision", m->version};
	out[2] = (struct topo_xattr){"user.etcd.version", m->change_count};
	out[3] = (struct topo_xattr){"user.etcd.lease", m->lease};
	return 4;
}

/* revision: see backend.h. */
static int etcd_revision(struct topo_store *s, int64_t *rev, bool *pinned)
{
	*pinned = s->pinned > 0;
	if (*pinned) {
		*rev = s->pinned;
		return 0;
	}
	return etcd_current_revision(s->http, "revision", rev);
}

const struct topo_backend topo_backend_etcd = {
    .name = "etcd2",
    .caps = TOPO_CAP_REVISIONS | TOPO_CAP_PIN | TOPO_CAP_GUARD,
    .max_value = ETCD_MAX_VALUE,
    .max_ops = ETCD_MAX_TXN_OPS,
    .open = etcd_open,
    .close = etcd_close,
    .list = etcd_list,
    .get = etcd_get,
    .put = etcd_put,
    .del = etcd_del,
    .multi = etcd_multi,
    .mkdir = NULL,
    .space = etcd_space,
    .watch = etcd_watch,
    .xattrs = etcd_xattrs,
    .revision = etcd_revision,
    .check = etcd_check,
    .identify = etcd_identify,
};
