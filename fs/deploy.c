/*
 * deploy.c - the deployment view (-o cells): global/ and one directory per
 * cell, each on its own store. See deploy.h; the operations of the top
 * directory are in deploy_top.c.
 *
 * Parts
 *   A part is a top directory: the global one (main.c's struct topofs,
 *   always connected) or a cell's (a struct topofs of its own, connected
 *   by a thread of the part: connector). A cell's part is listed from the
 *   moment its CellInfo is seen, in one of three states:
 *     CONNECTING  the first attempt is under way: requests at or below its
 *                 top directory wait for it (bounded by -o timeout);
 *     DOWN        an attempt failed (logged once): requests below it fail
 *                 with EIO at once while the connector retries;
 *     UP          served by topofs_ops. A store that fails later is the
 *                 backend's business: its requests fail within -o timeout
 *                 and it reconnects by itself.
 *
 * Following the CellInfo records
 *   The reconciler thread reads cells/ and each cells/<cell>/CellInfo from
 *   the global part's cache (kept fresh by its change notices: no store
 *   request while nothing changes) every RECONCILE_MS, and also at once
 *   when a request names a top-level name that is no part (a restore
 *   writes a CellInfo, then at once the cell's files). A cell whose record
 *   appears gets a part; one whose record goes, or names other servers or
 *   another root, has its part retired (and a new one made). The kernel is
 *   told through the top directory: the retired part's node is unlinked
 *   (its name gets a new node, so the kernel drops everything it held
 *   below it), its name expired, now and RENOTIFY_MS later.
 *
 * Lifetime and locks
 *   `lock` guards the part lists and every part's state and holds. A part
 *   is held by each request routed to it (until the request ends) and by
 *   each file or directory open in it; a retired part is freed by the
 *   reconciler once no one holds it. Waiting for a connection happens
 *   under `lock`'s condition `changed`; nothing else waits while holding
 *   `lock`. `reconcile_lock` makes reconciles one at a time; `lock` is
 *   taken inside it, never the other way.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deploy.h"
#include "deploy_internal.h"
#include "lowlevel.h"
#include "topofs.h"
#include "topofs/log.h"
#include "view_wire.h"

#define RECONCILE_MS 300  /* CellInfo changes show within this */
#define RETRY_MIN_MS 500  /* a cell that is down: first retry */
#define RETRY_MAX_MS 3000 /* ... and the longest wait between */
#define CELLINFO "CellInfo"

/* ---- time ---- */

static struct timespec deadline_in(unsigned ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* ---- what the CellInfo records say ---- */

/* One cell as its CellInfo describes it. */
struct cell_conf {
	char name[NAME_MAX + 1];
	char *servers; /* CellInfo.server_address */
	char *root;    /* CellInfo.root, without trailing slashes */
};

static void confs_free(struct cell_conf *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(c[i].servers);
		free(c[i].root);
	}
	free(c);
}

/* Log `what` about cell `name` once (until it is fixed: a CellInfo
 * that stays wrong is not logged every RECONCILE_MS). */
static void complain_once(struct deploy *d, const char *name, const char *what)
{
	char key[NAME_MAX + 256];
	snprintf(key, sizeof(key), "%s: %s", name, what);
	for (size_t i = 0; i < d->ncomplaints; i++)
		if (strcmp(d->complaints[i], key) == 0)
			return;
	char **c = realloc(d->complaints,
			   (d->ncomplaints + 1) * sizeof(*d->complaints));
	if (c) {
		d->complaints = c;
		if ((c[d->ncomplaints] = strdup(key)))
			d->ncomplaints++;
	}
	topo_warn("-o cells: cell '%s' not shown: %s", name, what);
}

/* A string field of a CellInfo (wire data). */
static char *wire_string(const struct wf *f)
{
	if (f->wt != WT_LEN || memchr(f->data, '\0', f->len))
		return NULL;
	return strndup((const char *)f->data, f->len);
}

int deploy_parse_cellinfo(const unsigned char *v, size_t len, char **servers,
			  char **root, const char **why)
{
	const unsigned char *p = v, *end = v + len;
	struct wf f;
	int more;
	*servers = *root = NULL;
	while ((more = vw_wire_next(&p, end, &f)) == 1) {
		char **dst = f.num == 1 ? servers : f.num == 2 ? root : NULL;
		if (!dst)
			continue; /* a field of a newer Vitess */
		free(*dst);
		if (!(*dst = wire_string(&f))) {
			*why = "its CellInfo is not a topodata.CellInfo";
			return -EINVAL;
		}
	}
	if (more < 0) {
		*why = "its CellInfo is not a topodata.CellInfo";
		return -EINVAL;
	}
	if (!*servers || !**servers || strchr(*servers, ' ')) {
		*why = "its CellInfo has no server_address";
		return -EINVAL;
	}
	size_t n = *root ? strlen(*root) : 0;
	while (n > 1 && (*root)[n - 1] == '/')
		(*root)[--n] = '\0';
	if (!n || (*root)[0] != '/' || (n > 1 && !path_store_ok(*root + 1))) {
		*why = "its CellInfo has no usable root (an absolute path "
		       "without empty, '.' or '..' parts)";
		return -EINVAL;
	}
	return 0;
}

bool deploy_wants(const struct deploy *d, const char *name)
{
	if (strcmp(name, DEPLOY_GLOBAL) == 0)
		return false;
	if (!d->filter)
		return true;
	size_t n = strlen(name);
	for (const char *c = d->filter; *c;) {
		size_t len = strcspn(c, ",");
		if (len == n && strncmp(c, name, n) == 0)
			return true;
		c += len + (c[len] == ',');
	}
	return false;
}

struct name_list {
	char (*names)[NAME_MAX + 1];
	size_t n, cap;
};

/* Append name to l: 0 or -ENOMEM. */
static int names_add(struct name_list *l, const char *name)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		void *g = realloc(l->names, cap * sizeof(*l->names));
		if (!g)
			return -ENOMEM;
		l->names = g;
		l->cap = cap;
	}
	snprintf(l->names[l->n++], NAME_MAX + 1, "%s", name);
	return 0;
}

/* A cache_dir_fn: the directories of a listing into the name_list arg. */
static int collect_dir(void *arg, const char *name, const struct cache_stat *st)
{
	return st->is_dir ? names_add(arg, name) : 0;
}

/* Read cell `name`'s CellInfo from the global cache into *c: 0, -ENOENT
 * (no such cell), -EINVAL (logged once), or the store's error. */
static int read_cell(struct deploy *d, const char *name, struct cell_conf *c)
{
	char key[PATH_MAX];
	unsigned char *v = NULL;
	struct topo_meta meta;
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(key, sizeof(key), "cells/%s/%s", name, CELLINFO);
	int rc = cache_value(d->global->cache, key, &v, &meta);
	if (rc)
		return rc;
	if (meta.size == 0)
		return -ENOENT; /* being written (a create, then its bytes) */
	const char *why = NULL;
	rc = deploy_parse_cellinfo(v, meta.size, &c->servers, &c->root, &why);
	free(v);
	if (rc) {
		complain_once(d, name, why);
		free(c->servers);
		free(c->root);
		c->servers = c->root = NULL;
	}
	return rc;
}

/* Every cell that the global root's CellInfo records describe (and the
 * filter lets in), in byte order: 0, or the store's error (then the parts
 * are left as they are). */
static int read_cells(struct deploy *d, struct cell_conf **out, size_t *nout)
{
	struct name_list l = {0};
	int rc = cache_list_dir(d->global->cache, "cells", collect_dir, &l);
	*out = NULL;
	*nout = 0;
	if (rc == -ENOENT || rc == -ENOTDIR)
		rc = 0; /* no cells (yet) */
	struct cell_conf *confs =
	    !rc && l.n ? calloc(l.n, sizeof(*confs)) : NULL;
	if (!rc && l.n && !confs)
		rc = -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; !rc && i < l.n; i++) {
		if (strcmp(l.names[i], DEPLOY_GLOBAL) == 0)
			complain_once(d, l.names[i],
				      "Vitess reserves the name 'global'");
		if (!deploy_wants(d, l.names[i]))
			continue;
		int r = read_cell(d, l.names[i], &confs[n]);
		if (r == 0)
			n++;
		else if (r != -ENOENT && r != -EINVAL)
			rc = r; /* the store failed: decide nothing */
	}
	free(l.names);
	if (rc) {
		confs_free(confs, n);
		return rc;
	}
	*out = confs;
	*nout = n;
	return 0;
}

/* ---- parts ---- */

static bool same_conf(const struct deploy_part *p, const struct cell_conf *c)
{
	return strcmp(p->opts.servers, c->servers) == 0 &&
	       strcmp(p->opts.root, c->root) == 0;
}

/* Pin a cell's store as -o snapshot does (main.c): the revision it has
 * now. 0, or -errno with the reason in err. */
static int pin_part(struct deploy_part *p, struct topo_store *st, char *err,
		    size_t errlen)
{
	bool pinned = false;
	int64_t rev = 0;
	int rc = p->t->be->revision ? p->t->be->revision(st, &rev, &pinned)
				    : -ENOTSUP;
	if (!rc && !pinned)
		rc = -EIO;
	if (rc) {
		snprintf(err, errlen, "cannot pin a snapshot revision: %s",
			 strerror(-rc));
		return rc;
	}
	topo_info("-o cells: cell '%s': the store as of revision %lld", p->name,
		  (long long)rev);
	p->opts.pin_revision = rev;
	p->opts.snapshot = 0;
	return 0;
}

/* One attempt to connect part p: 0 (served), or -errno and err. */
static int connect_once(struct deploy_part *p, char *err, size_t errlen)
{
	struct topo_store *st = NULL;
	int rc = topofs_connect(p->t->be, &p->opts, &st, err, errlen);
	if (!rc && p->opts.snapshot)
		rc = pin_part(p, st, err, errlen);
	if (rc) {
		if (st)
			p->t->be->close(st);
		return rc;
	}
	p->fs.st = st;
	rc = topofs_serve_store(&p->fs);
	if (rc) {
		snprintf(err, errlen, "%s", strerror(-rc));
		topofs_stop_store(&p->fs);
	}
	return rc;
}

/* The connector: connect part p, retrying while it is down. */
static void *connector(void *arg)
{
	struct deploy_part *p = arg;
	struct deploy *d = p->d;
	unsigned wait_ms = RETRY_MIN_MS;
	bool logged = false;
	for (;;) {
		char err[512];
		int rc = connect_once(p, err, sizeof(err));
		pthread_mutex_lock(&d->lock);
		p->state = rc ? PART_DOWN : PART_UP;
		pthread_cond_broadcast(&d->changed);
		if (!rc || p->stop) {
			pthread_mutex_unlock(&d->lock);
			if (!rc)
				topo_info("-o cells: cell '%s': %s%s%s",
					  p->name, logged ? "back: " : "",
					  p->opts.servers, p->opts.root);
			return NULL;
		}
		if (!logged)
			topo_err("-o cells: cell '%s' (%s%s) is down, its "
				 "files fail with EIO until it answers: %s",
				 p->name, p->opts.servers, p->opts.root, err);
		logged = true;
		struct timespec until = deadline_in(wait_ms);
		while (!p->stop && pthread_cond_timedwait(&d->changed, &d->lock,
							  &until) == 0)
			;
		bool stop = p->stop;
		pthread_mutex_unlock(&d->lock);
		if (stop)
			return NULL;
		wait_ms =
		    wait_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : wait_ms * 2;
	}
}

/* A new part for cell c (taking its strings), its connector started. NULL
 * on failure (logged). */
static struct deploy_part *part_new(struct deploy *d, struct cell_conf *c)
{
	struct deploy_part *p = calloc(1, sizeof(*p));
	if (!p || !(p->name = strdup(c->name)))
		goto fail;
	p->d = d;
	p->t = &p->fs;
	p->opts = *d->global->opts; /* its strings stay the global's */
	p->opts.servers = c->servers;
	p->opts.root = c->root;
	c->servers = c->root = NULL;
	p->opts.pin_revision = 0;
	p->opts.snapshot = d->snapshot;
	/* On a store without directories (etcd) a cell's root with no key is
	 * an empty cell: its CellInfo says it exists. */
	if (!(d->global->be->caps & TOPO_CAP_REAL_DIRS))
		p->opts.create_root = 1;
	p->fs = (struct topofs){
	    .be = d->global->be,
	    .opts = &p->opts,
	    .uid = d->global->uid,
	    .gid = d->global->gid,
	    .ll = d->global->ll,
	    .json_view = d->global->json_view,
	    .top = p->name,
	    .part = p,
	    .dirs = OPEN_DIRS_INIT,
	};
	if (scratch_patterns_parse(&p->fs.scratch_names, p->opts.scratch))
		goto fail;
	scratch_init(&p->fs.scratch);
	handle_list_init(&p->fs.handles);
	p->inited = true;
	p->state = PART_CONNECTING;
	if (pthread_create(&p->connector, NULL, connector, p) != 0)
		goto fail;
	p->connector_started = true;
	return p;
fail:
	topo_err("-o cells: cell '%s': out of memory", c->name);
	part_free(p);
	return NULL;
}

size_t part_free(struct deploy_part *p)
{
	size_t failed = 0;
	if (!p)
		return 0;
	if (p->connector_started) {
		pthread_mutex_lock(&p->d->lock);
		p->stop = true;
		pthread_cond_broadcast(&p->d->changed);
		pthread_mutex_unlock(&p->d->lock);
		pthread_join(p->connector, NULL);
	}
	if (p->t == &p->fs) {
		failed = topofs_stop_store(&p->fs);
		if (p->inited) {
			ops_close_dirs(&p->fs);
			handle_list_destroy(&p->fs.handles);
			scratch_destroy(&p->fs.scratch);
			scratch_patterns_free(&p->fs.scratch_names);
		}
		free(p->opts.servers);
		free(p->opts.root);
	}
	free(p->name);
	free(p);
	return failed;
}

/* ---- following the records ---- */

/* Insert p into the listing, by name (global stays first). */
static void insert_part(struct deploy *d, struct deploy_part *p)
{
	struct deploy_part **pp = &d->parts->next;
	while (*pp && strcmp((*pp)->name, p->name) < 0)
		pp = &(*pp)->next;
	p->next = *pp;
	*pp = p;
}

static struct cell_conf *find_conf(struct cell_conf *c, size_t n,
				   const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(c[i].name, name) == 0)
			return &c[i];
	return NULL;
}

/* Take the cells whose records went or changed out of the listing (onto
 * the retired list); their names go into *gone. Under d->lock. */
static void retire_changed(struct deploy *d, struct cell_conf *c, size_t n,
			   struct name_list *gone)
{
	struct deploy_part **pp = &d->parts->next;
	while (*pp) {
		struct deploy_part *p = *pp;
		struct cell_conf *want = find_conf(c, n, p->name);
		if (want && same_conf(p, want)) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		p->retired = true;
		p->next = d->retired;
		d->retired = p;
		names_add(gone, p->name); /* (ENOMEM: the kernel keeps what it
					     holds below until it expires) */
		topo_info("-o cells: cell '%s' %s", p->name,
			  want ? "moved: reconnecting" : "removed");
	}
}

/* Make parts for the cells not listed yet. Under d->lock. */
static void add_new(struct deploy *d, struct cell_conf *c, size_t n,
		    struct name_list *added)
{
	for (size_t i = 0; i < n; i++) {
		if (deploy_find(d, c[i].name))
			continue;
		struct deploy_part *p = part_new(d, &c[i]);
		if (!p)
			continue;
		insert_part(d, p);
		names_add(added, p->name);
	}
}

/* The kernel drops what it holds of the top-level names that changed. */
static void tell_kernel(struct deploy *d, const struct name_list *gone,
			const struct name_list *added)
{
	for (size_t i = 0; i < gone->n; i++)
		lowlevel_forget_top(d->ll, gone->names[i]);
	for (size_t i = 0; i < gone->n + added->n; i++) {
		const char *name =
		    i < gone->n ? gone->names[i] : added->names[i - gone->n];
		notifier_push(d->top_now, name, 0);
		notifier_push(d->top_later, name, 0);
	}
}

void deploy_reconcile(struct deploy *d)
{
	struct cell_conf *c;
	size_t n;
	struct name_list gone = {0}, added = {0};
	pthread_mutex_lock(&d->reconcile_lock);
	if (read_cells(d, &c, &n) == 0) {
		pthread_mutex_lock(&d->lock);
		retire_changed(d, c, n, &gone);
		add_new(d, c, n, &added);
		pthread_cond_broadcast(&d->wake); /* a retired part to free */
		pthread_mutex_unlock(&d->lock);
		confs_free(c, n);
		tell_kernel(d, &gone, &added);
	}
	pthread_mutex_unlock(&d->reconcile_lock);
	free(gone.names);
	free(added.names);
}

/* Free the retired parts no one holds any more. */
static void reap(struct deploy *d)
{
	for (;;) {
		pthread_mutex_lock(&d->lock);
		struct deploy_part **pp = &d->retired;
		while (*pp && (*pp)->holds)
			pp = &(*pp)->next;
		struct deploy_part *p = *pp;
		if (p)
			*pp = p->next;
		pthread_mutex_unlock(&d->lock);
		if (!p)
			return;
		part_free(p);
	}
}

static void *reconciler(void *arg)
{
	struct deploy *d = arg;
	pthread_mutex_lock(&d->lock);
	while (!d->stopping) {
		pthread_mutex_unlock(&d->lock);
		deploy_reconcile(d);
		reap(d);
		pthread_mutex_lock(&d->lock);
		struct timespec until = deadline_in(RECONCILE_MS);
		if (!d->stopping)
			pthread_cond_timedwait(&d->wake, &d->lock, &until);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* ---- life ---- */

struct deploy *deploy_start(struct topofs *t, const char *filter, bool snapshot)
{
	struct deploy *d = calloc(1, sizeof(*d));
	struct deploy_part *g = calloc(1, sizeof(*g));
	if (!d || !g || !(g->name = strdup(DEPLOY_GLOBAL)))
		goto fail;
	d->global = t;
	d->ll = t->ll;
	d->filter = filter;
	d->snapshot = snapshot;
	clock_gettime(CLOCK_REALTIME, &d->started);
	g->d = d;
	g->t = t;
	g->state = PART_UP;
	d->parts = g;
	t->top = DEPLOY_GLOBAL;
	t->part = g;
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->reconcile_lock, NULL);
	pthread_cond_init(&d->changed, NULL);
	pthread_cond_init(&d->wake, NULL);
	d->top_now = notifier_start(lowlevel_invalidate_top, d->ll, 0);
	d->top_later =
	    notifier_start(lowlevel_invalidate_top, d->ll, RENOTIFY_MS);
	deploy_reconcile(d); /* the cells listed from the first request on */
	if (pthread_create(&d->reconciler, NULL, reconciler, d) == 0) {
		d->reconciler_started = true;
		return d;
	}
	deploy_stop(d);
	t->top = "";
	t->part = NULL;
	topo_err("-o cells: cannot start a thread");
	return NULL;
fail:
	topo_err("-o cells: cannot start: out of memory");
	if (g)
		free(g->name);
	free(g);
	free(d);
	t->top = "";
	t->part = NULL;
	return NULL;
}

size_t deploy_stop(struct deploy *d)
{
	if (!d)
		return 0;
	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	pthread_cond_broadcast(&d->wake);
	pthread_mutex_unlock(&d->lock);
	if (d->reconciler_started)
		pthread_join(d->reconciler, NULL);
	notifier_stop(d->top_now, false);
	notifier_stop(d->top_later, false);
	notifier_free(d->top_now);
	notifier_free(d->top_later);
	size_t failed = 0;
	struct deploy_part *lists[] = {d->parts->next, d->retired};
	for (size_t i = 0; i < 2; i++)
		while (lists[i]) {
			struct deploy_part *p = lists[i];
			lists[i] = p->next;
			failed += part_free(p);
		}
	free(d->parts->name); /* the global part: its topofs is main.c's */
	free(d->parts);
	for (size_t i = 0; i < d->ncomplaints; i++)
		free(d->complaints[i]);
	free(d->complaints);
	pthread_cond_destroy(&d->changed);
	pthread_cond_destroy(&d->wake);
	pthread_mutex_destroy(&d->reconcile_lock);
	pthread_mutex_destroy(&d->lock);
	free(d);
	return failed;
}
