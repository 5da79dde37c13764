/*
 * v2.c - the etcd v2 keys API backend (-o etcd_api=v2 with etcd2), over
 * /v2/keys (etcd 3.4 serves it with --enable-v2=true; its v2 keys are a
 * store apart from the v3 keys).
 *
 * v2 has real directories: mkdir creates one (dir=true), rmdir removes an
 * empty one (dir=true, never recursive), and a key cannot have children.
 * A node's version is its modifiedIndex: compare-and-set is prevIndex,
 * create-if-absent prevExist=false. A listing is one recursive GET of the
 * subtree (quorum=true: linearizable, so our own writes always show); its
 * revision is the answer's X-Etcd-Index. Change notices come from a long
 * poll on the root (v2watch.c).
 *
 * v2 has no transactions: multi() takes one operation (max_ops 1), so a
 * rename is EXDEV and mv copies. Values travel as JSON strings, which
 * etcd answers with invalid UTF-8 replaced: a value that is not UTF-8 text
 * without NUL is refused with EINVAL rather than corrupted. Keys whose
 * name begins with '_' are hidden by v2 from every listing: not written.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../etcd/check.h"
#include "../etcd/http.h"
#include "etcdv2.h"
#include "v2json.h"
#include "topofs/backend.h"
#include "topofs/log.h"

/* etcd's default --max-request-bytes bounds the raft request that carries
 * the value; leave 1 KiB for the key and framing (as the v3 backend). */
#define V2_MAX_VALUE (1572864 - 1024)

struct topo_store {
	struct etcd_http *http;
	char *root; /* the root key without trailing slash; "" for "/" */
	bool quiet; /* while opening: open() reports failures in errbuf */
	struct etcdv2_watch *watch; /* NULL until watch() */
};

/* The key for a relative path, for messages. */
static void key_name(const struct topo_store *s, const char *path, char *buf,
		     size_t len)
{
	/* root "" is the store's root "/": its key is "/", "a" is "/a" */
	snprintf(buf, len, "%s%s%s", s->root, *path || !*s->root ? "/" : "",
		 path);
}

/* One request on the key of `path`. 0 and *reply (a 2xx answer), or a
 * negative errno (logged naming the key unless quiet); *index (if not
 * NULL) is the store's index from the answer's header or error. */
static int call(struct topo_store *s, const char *method, const char *path,
		const char *query, const char *form, size_t formlen,
		struct etcd_reply *reply, int64_t *index)
{
	struct etcd_request rq = {.method = method,
				  .form = form,
				  .len = formlen,
				  .idempotent = strcmp(method, "GET") == 0};
	char key[512], why[256], *api;
	int64_t hdr, eidx;
	int err = etcdv2_key_api(s->root, path, query, &api);

	if (err)
		return err;
	key_name(s, path, key, sizeof(key));
	rq.api = api;
	err = etcd_http_request(s->http, &rq, s->quiet ? NULL : key, reply,
				&hdr, why, sizeof(why));
	free(api);
	if (err)
		return err;
	err = etcdv2_parse_error(reply->status, reply->body, reply->len,
				 s->quiet ? NULL : key, &eidx);
	if (index)
		*index = err && eidx >= 0 ? eidx : hdr;
	if (err)
		etcd_reply_free(reply);
	return err;
}

/* list: see backend.h. */
static int v2_list(struct topo_store *s, const char *path,
		   struct topo_listing *out)
{
	struct etcd_reply reply;
	char key[512];
	int64_t index = 0;
	int err;

	/* The answer is one document, whole in memory anyway, in creation
	 * order: sorted whole first, then handed over (no sink meanwhile). */
	const struct topo_listing_sink *sink = out->sink;
	topo_listing_restart(out);
	out->sink = NULL;
	err = call(s, "GET", path, "recursive=true&quorum=true", NULL, 0,
		   &reply, &index);
	if (err == -ENOENT) {
		out->revision = index > 0 ? index : 0;
		out->sink = sink;
		return 0; /* an empty listing */
	}
	if (err)
		return err;
	key_name(s, path, key, sizeof(key));
	err = etcdv2_parse_nodes(reply.body, reply.len, s->root, key, out);
	etcd_reply_free(&reply);
	if (err) {
		topo_listing_free(out);
		return err;
	}
	topo_listing_sort(out); /* v2 lists in creation order */
	out->revision = index > 0 ? index : 0;
	out->sink = sink;
	return 0;
}

/* get: see backend.h. */
static int v2_get(struct topo_store *s, const char *path,
		  struct topo_entry *out)
{
	struct topo_listing l = {0};
	struct etcd_reply reply;
	char key[512];
	int err;

	memset(out, 0, sizeof(*out));
	err = call(s, "GET", path, "quorum=true", NULL, 0, &reply, NULL);
	if (err)
		return err;
	key_name(s, path, key, sizeof(key));
	err = etcdv2_parse_nodes(reply.body, reply.len, s->root, key, &l);
	etcd_reply_free(&reply);
	/* The node comes first, a directory's children after it. */
	if (!err && (l.count == 0 || strcmp(l.entries[0].path, path) != 0)) {
		topo_err("etcd v2: %s: malformed answer: another key", key);
		err = -EIO;
	}
	if (!err) {
		*out = l.entries[0];
		l.entries[0].path = NULL;
		l.entries[0].value = NULL;
	}
	topo_listing_free(&l);
	return err;
}

/* A key the v2 API would hide or garble: -EINVAL with a log line. */
static int check_write(struct topo_store *s, const char *path,
		       const void *value, size_t len)
{
	char key[512];

	key_name(s, path, key, sizeof(key));
	if (etcdv2_hidden(path)) {
		topo_err("etcd v2: %s: not written: v2 hides keys whose name "
			 "begins with '_'",
			 key);
		return -EINVAL;
	}
	if (len > V2_MAX_VALUE) {
		topo_warn("etcd v2: %s: value of %zu bytes is over the limit "
			  "of %d",
			  key, len, V2_MAX_VALUE);
		return -EFBIG;
	}
	if (!etcdv2_value_ok(value, len)) {
		topo_err("etcd v2: %s: not written: the v2 API keeps values as "
			 "UTF-8 text without NUL bytes, and this one is not",
			 key);
		return -EINVAL;
	}
	return 0;
}

/* The query that makes a write compare-and-set on `expect`. */
static void expect_query(int64_t expect, char *buf, size_t len)
{
	if (expect == TOPO_EXPECT_ABSENT)
		snprintf(buf, len, "prevExist=false");
	else if (expect > 0)
		snprintf(buf, len, "prevIndex=%" PRId64, expect);
	else if (expect == 0) /* a directory made here: no index known */
		snprintf(buf, len, "prevExist=true");
	else
		buf[0] = '\0';
}

/* put: see backend.h. */
static int v2_put(struct topo_store *s, const char *path, const void *value,
		  size_t len, int64_t expect, struct topo_meta *meta)
{
	struct etcd_reply reply;
	struct topo_meta m;
	char query[64], key[512], *form;
	size_t formlen;
	int err = check_write(s, path, value, len);

	if (err)
		return err;
	if (!*path && !*s->root)
		return -EISDIR; /* the store's root is a directory */
	if ((err = etcdv2_form_value(value, len, &form, &formlen)))
		return err;
	expect_query(expect, query, sizeof(query));
	err = call(s, "PUT", path, *query ? query : NULL, form, formlen, &reply,
		   NULL);
	free(form);
	if (err)
		return err;
	key_name(s, path, key, sizeof(key));
	err = etcdv2_parse_write(reply.body, reply.len, key, &m);
	etcd_reply_free(&reply);
	if (!err && meta) {
		*meta = m;
		meta->size = len;
	}
	return err;
}

/* del: see backend.h. A directory is removed with dir=true (v2 compares
 * no index on a directory, and never recursively: -ENOTEMPTY). */
static int v2_del(struct topo_store *s, const char *path, int64_t expect)
{
	struct etcd_reply reply;
	char query[64];
	int err;

	if (expect == TOPO_EXPECT_ABSENT)
		return -EINVAL;
	expect_query(expect == 0 ? TOPO_EXPECT_ANY : expect, query,
		     sizeof(query));
	err = call(s, "DELETE", path, *query ? query : NULL, NULL, 0, &reply,
		   NULL);
	if (err == -EISDIR) /* "Not a file": a directory */
		err =
		    call(s, "DELETE", path, "dir=true", NULL, 0, &reply, NULL);
	if (!err)
		etcd_reply_free(&reply);
	return err;
}

/* multi: see backend.h. One operation at most: v2 has no transactions.
 * Guards are ignored (no TOPO_CAP_GUARD). */
static int v2_multi(struct topo_store *s, const struct topo_op *ops, size_t n)
{
	const struct topo_op *op = NULL;
	size_t writes = 0;

	for (size_t i = 0; i < n; i++)
		if (ops[i].kind != TOPO_OP_GUARD && !writes++)
			op = &ops[i];
	if (writes == 0)
		return 0;
	if (writes > 1) {
		topo_debug("etcd v2: %zu operations: no transactions in v2",
			   writes);
		return -E2BIG;
	}
	if (op->kind == TOPO_OP_DELETE)
		return v2_del(s, op->path, op->expect);
	return v2_put(s, op->path, op->value, op->len, op->expect, NULL);
}

/* mkdir: see backend.h. */
static int v2_mkdir(struct topo_store *s, const char *path)
{
	struct etcd_reply reply;
	int err = check_write(s, path, "", 0);

	if (err)
		return err;
	err = call(s, "PUT", path, "dir=true&prevExist=false", NULL, 0, &reply,
		   NULL);
	if (!err)
		etcd_reply_free(&reply);
	return err;
}

/* user.etcd.*: the node's own numbers, as the v2 API names them. */
static size_t v2_xattrs(const struct topo_meta *m, struct topo_xattr *out)
{
	out[0] = (struct topo_xattr){"user.etcd.created_index", m->create_id};
	out[1] = (struct topo_xattr){"user.etcd.modified_index", m->version};
	out[2] = (struct topo_xattr){"user.etcd.ttl", m->lease};
	return 3;
}

/* watch: see backend.h. The long poll starts after the store's current
 * index, read now, so every change from here on is delivered. */
static int v2_watch(struct topo_store *s, topo_change_fn fn, void *arg)
{
	struct etcd_reply reply;
	int64_t index = -1;
	int err;

	if (s->watch)
		return -EBUSY;
	err = call(s, "GET", "", "quorum=true", NULL, 0, &reply, &index);
	if (!err)
		etcd_reply_free(&reply);
	if (err && err != -ENOENT)
		return err;
	if (index < 0) {
		topo_err("etcd v2: no X-Etcd-Index in the answer");
		return -EIO;
	}
	return etcdv2_watch_start(s->http, s->root, index + 1, fn, arg,
				  &s->watch);
}

/* close: see backend.h. */
static void v2_close(struct topo_store *s)
{
	if (!s)
		return;
	etcdv2_watch_stop(s->watch); /* first: the thread uses s->http */
	etcd_http_close(s->http);
	free(s->root);
	free(s);
}

/* Why the first request failed, for errbuf. */
static void probe_error(const struct topo_store *s, const char *servers,
			const struct etcd_reply *reply, int err, char *errbuf,
			size_t errlen)
{
	if (err == -EACCES)
		snprintf(errbuf, errlen, "etcd at %s: not authorised", servers);
	else if (reply->status == 404)
		snprintf(errbuf, errlen,
			 "etcd at %s does not serve the v2 API (/v2/keys): "
			 "start it with --enable-v2=true, or drop "
			 "-o etcd_api=v2",
			 servers);
	else
		snprintf(errbuf, errlen,
			 "etcd at %s gave no usable v2 answer for %s (-d "
			 "shows why)",
			 servers, *s->root ? s->root : "/");
}

/* The root node, read without logging. 0 and *e, -ENOENT (absent), or
 * another negative errno with the reason in errbuf. */
static int fetch_root(struct topo_store *s, const char *servers,
		      struct topo_entry *e, char *errbuf, size_t errlen)
{
	struct etcd_request rq = {.method = "GET", .idempotent = true};
	struct topo_listing l = {0};
	struct etcd_reply reply;
	char why[256], *api;
	int64_t index;
	int err = etcdv2_key_api(s->root, "", "quorum=true", &api);

	if (err)
		return err;
	rq.api = api;
	err = etcd_http_request(s->http, &rq, NULL, &reply, &index, why,
				sizeof(why));
	free(api);
	if (err) {
		snprintf(errbuf, errlen, "cannot reach etcd at %s", why);
		return err;
	}
	/* A 404 without a v2 error object: the v2 API is off (-EIO). */
	err =
	    etcdv2_parse_error(reply.status, reply.body, reply.len, NULL, NULL);
	if (!err)
		err = etcdv2_parse_nodes(reply.body, reply.len, s->root, "root",
					 &l);
	if (!err && l.count == 0)
		err = -EIO;
	if (err && err != -ENOENT)
		probe_error(s, servers, &reply, err, errbuf, errlen);
	if (!err) {
		*e = l.entries[0];
		l.entries[0].path = NULL;
		l.entries[0].value = NULL;
	}
	topo_listing_free(&l);
	etcd_reply_free(&reply);
	return err;
}

/* Check that the root is a directory, or absent and allowed (then made).
 * 0 or a negative errno with the reason in errbuf. */
static int probe_root(struct topo_store *s, const struct topo_conf *conf,
		      char *errbuf, size_t errlen)
{
	struct topo_entry e = {0};
	int err = fetch_root(s, conf->servers, &e, errbuf, errlen);

	if (err == -ENOENT && conf->missing_root_ok) {
		err = v2_mkdir(s, "");
		if (err == -EEXIST)
			err = 0; /* made meanwhile: fine */
		if (err)
			snprintf(errbuf, errlen,
				 "cannot create %s in etcd v2 at %s: %s",
				 s->root, conf->servers, strerror(-err));
	} else if (err == -ENOENT) {
		snprintf(errbuf, errlen,
			 "no directory %s in etcd v2 at %s (for a new, empty "
			 "topology use -o create_root)",
			 s->root, conf->servers);
	} else if (!err && !e.meta.real_dir) {
		snprintf(errbuf, errlen, "%s is a key, not a directory",
			 s->root);
		err = -ENOTDIR;
	}
	topo_entry_free(&e);
	return err;
}

/* open: see backend.h. */
static int v2_open(const struct topo_conf *conf, struct topo_store **out,
		   char *errbuf, size_t errlen)
{
	struct topo_store *s = calloc(1, sizeof(*s));
	int err;

	if (!s) {
		snprintf(errbuf, errlen, "out of memory");
		return -ENOMEM;
	}
	s->quiet = true;
	errbuf[0] = '\0';
	if ((err = etcd_root_key(conf->root, &s->root, errbuf, errlen)) ||
	    (err = etcd_http_open(conf, &s->http, errbuf, errlen)) ||
	    (err = probe_root(s, conf, errbuf, errlen))) {
		v2_close(s);
		return err;
	}
	s->quiet = false;
	*out = s;
	return 0;
}

const struct topo_backend topo_backend_etcdv2 = {
    .name = "etcd2",
    .caps = TOPO_CAP_REAL_DIRS | TOPO_CAP_REVISIONS | TOPO_CAP_DIR_NODES,
    .max_value = V2_MAX_VALUE,
    .max_ops = 1,
    .open = v2_open,
    .close = v2_close,
    .list = v2_list,
    .get = v2_get,
    .put = v2_put,
    .del = v2_del,
    .multi = v2_multi,
    .mkdir = v2_mkdir,
    .space = NULL,
    .watch = v2_watch,
    .children = NULL,
    .xattrs = v2_xattrs,
    .revision = NULL,
    /* its servers are etcd 3 servers: the same checks */
    .check = etcd_check,
    .identify = etcd_identify,
};
