/*
 * zk.c - the ZooKeeper backend ("zk2"), on the multi-threaded C client
 * (libzookeeper_mt): opening and closing a store, the stat as extended
 * attributes, and the backend's table (topo_backend_zk).
 *
 * The backend's files, each with its part of the design at its top:
 *
 *   zk_internal.h  the store, sessions, requests and batches, and the
 *                  functions one file calls in another
 *   zk_request.c   Concurrency: the client's threads; requests, batches
 *                  and completions; time and error helpers
 *   zk_session.c   Sessions, In flight, Timeouts: connecting, the session
 *                  watcher, renewing an expired session; sending requests
 *                  and waiting for them (zk_call, zk_call_all)
 *   zk_watch.c     Watches: watch(), the watches reads leave, notices
 *   zk_read.c      Bulk listing: list, get, children; single reads
 *   zk_write.c     Writes and connection loss, ACLs: put, put_same, del,
 *                  mkdir, the parents and root they create, settling
 *   zk_multi.c     multi, settled op by op
 *   zkutil.c       the pure parts: paths, auth file, sizes, ACL lists
 *
 *   Lock order: store->mu, then zsess->mu; batch mutexes and store->wmu
 *   are leaves.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topofs/backend.h"
#include "topofs/log.h"
#include "zk_check.h"
#include "zk_internal.h"
#include "zkutil.h"

/* ---- open / close -------------------------------------------------------- */

/* Free a store and its strings (its session already dropped). */
static void store_free(struct topo_store *s)
{
	if (!s)
		return;
	free(s->servers);
	free(s->root);
	free(s->auth_file);
	free(s->auth_scheme);
	free(s->auth_cert);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->wcv);
	pthread_mutex_destroy(&s->wmu);
	free(s);
}

/* Copy the settings into a new store; a reason in errbuf on failure. */
static int store_new(const struct topo_conf *conf, struct topo_store **out,
		     char *errbuf, size_t errlen)
{
	if (!conf->servers || !conf->servers[0]) {
		snprintf(errbuf, errlen, "no ZooKeeper server address given");
		return -EINVAL;
	}
	struct topo_store *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->wmu, NULL);
	pthread_cond_init(&s->wcv, NULL);
	s->timeout_ms = conf->timeout_ms ? conf->timeout_ms : 10000;
	s->session_ms = zk_session_ms(s->timeout_ms);
	s->missing_root_ok = conf->missing_root_ok;
	s->servers = strdup(conf->servers);
	int rc =
	    zk_root_norm(conf->root ? conf->root : "/vitess/global", &s->root);
	if (rc == -EINVAL)
		snprintf(errbuf, errlen, "root %s is not an absolute path",
			 conf->root);
	else if (!rc && !s->servers)
		rc = -ENOMEM;
	if (!rc && conf->zk_auth_file) {
		s->auth_file = strdup(conf->zk_auth_file);
		rc = s->auth_file
			 ? zk_auth_read(conf->zk_auth_file, &s->auth_scheme,
					&s->auth_cert, errbuf, errlen)
			 : -ENOMEM;
	}
	if (rc) {
		if (rc == -ENOMEM)
			snprintf(errbuf, errlen, "out of memory");
		store_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

/* Check that the root znode exists (making it with -o create_root) and can
 * hold children. */
static int check_root(struct topo_store *s, int64_t deadline, char *errbuf,
		      size_t errlen)
{
	const char *root = s->root[0] ? s->root : "/";
	struct zreq *g;
	int rc = zk_read_node(s, root, deadline, &g);
	if (rc == -ENOENT && s->missing_root_ok) {
		rc = zk_create_root(s, deadline);
		if (rc == 0)
			rc = zk_read_node(s, root, deadline, &g);
	}
	if (rc == -ENOENT)
		snprintf(
		    errbuf, errlen,
		    "root %s does not exist in ZooKeeper (use -o create_root)",
		    root);
	else if (rc == -EACCES)
		snprintf(errbuf, errlen,
			 "not allowed to read root %s in ZooKeeper (%s%s)",
			 root,
			 s->auth_file ? "with the credentials in "
				      : "no --topo_zk_auth_file given",
			 s->auth_file ? s->auth_file : "");
	else if (rc)
		snprintf(errbuf, errlen,
			 "cannot read root %s in ZooKeeper at %s", root,
			 s->servers);
	if (rc)
		return rc;
	if (g->stat.ephemeralOwner != 0) {
		snprintf(errbuf, errlen, "root %s is an ephemeral znode", root);
		rc = -ENOTDIR;
	}
	zk_req_free(g);
	return rc;
}

static void zk_close(struct topo_store *s);

/* Connect, wait for the session, and check the root. */
static int zk_open(const struct topo_conf *conf, struct topo_store **out,
		   char *errbuf, size_t errlen)
{
	struct topo_store *s;
	int rc = store_new(conf, &s, errbuf, errlen);
	if (rc)
		return rc;
	int64_t deadline = zk_deadline_of(s);
	rc = zk_sess_new(s, &s->sess);
	if (rc) {
		snprintf(
		    errbuf, errlen,
		    "cannot use ZooKeeper address %s (bad or unknown host)",
		    s->servers);
		store_free(s);
		return rc == -ENOMEM ? rc : -EINVAL;
	}
	rc = zk_sess_wait(s->sess, deadline);
	if (rc == -EACCES)
		snprintf(errbuf, errlen,
			 "ZooKeeper at %s refused the credentials in %s",
			 s->servers, s->auth_file);
	else if (rc)
		snprintf(errbuf, errlen, "cannot reach ZooKeeper at %s",
			 s->servers);
	else
		rc = check_root(s, deadline, errbuf, errlen);
	if (rc) {
		zk_close(s);
		return rc;
	}
	topo_debug("zk: connected to %s, root %s, session timeout %d ms",
		   s->servers, s->root[0] ? s->root : "/", s->session_ms);
	*out = s;
	return 0;
}

/* Close the session (waits for the client's threads) and free the store.
 * No notice is delivered once this has begun, nor after it returns. */
static void zk_close(struct topo_store *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->wmu);
	s->closed = true;
	while (s->delivering > 0)
		pthread_cond_wait(&s->wcv, &s->wmu);
	pthread_mutex_unlock(&s->wmu);
	pthread_mutex_lock(&s->mu);
	struct zsess *ss = s->sess;
	s->sess = NULL;
	pthread_mutex_unlock(&s->mu);
	if (ss)
		zk_sess_put(s, ss);
	store_free(s);
}

/* ZooKeeper's stat as "user.zk.*" attributes (times in ms, as zkCli). */
static size_t zk_xattrs(const struct topo_meta *m, struct topo_xattr *out)
{
	const struct topo_xattr x[] = {
	    {"user.zk.czxid", m->create_id},
	    {"user.zk.mzxid", m->modify_id},
	    {"user.zk.ctime", m->ctime_ns / 1000000},
	    {"user.zk.mtime", m->mtime_ns / 1000000},
	    {"user.zk.version", m->change_count},
	    {"user.zk.cversion", m->child_count},
	    {"user.zk.ephemeral_owner", m->lease},
	    {"user.zk.data_length", (int64_t)m->size},
	    {"user.zk.num_children", m->num_children},
	};
	size_t n = sizeof(x) / sizeof(x[0]);
	memcpy(out, x, sizeof(x)); /* n <= TOPO_XATTR_MAX */
	return n;
}

const struct topo_backend topo_backend_zk = {
    .name = "zk2",
    .children = zk_children,
    .caps = TOPO_CAP_REAL_DIRS,
    .max_value = ZK_MAX_VALUE,
    .max_ops = ZK_MAX_OPS,
    .open = zk_open,
    .close = zk_close,
    .list = zk_list,
    .get = zk_get,
    .put = zk_put,
    .put_same = zk_put_same,
    .del = zk_del,
    .multi = zk_multi,
    .mkdir = zk_mkdir,
    .mkdir_meta = zk_mkdir_meta,
    .space = NULL, /* ZooKeeper has no quota we could report */
    .watch = zk_watch,
    .xattrs = zk_xattrs,
    .check = zk_check,
    .identify = zk_identify,
};
