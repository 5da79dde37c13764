/*
 * check.c - topofs --check: runs the checks in order and reports them
 * (check.h). Knows no store: each server is checked by its backend's
 * check(), the root and the cells through open(), list() and get(), the
 * write probe through put() and del().
 *
 * Time: every step is bounded by -o timeout (the backends' own bounds), so
 * a run takes at most a few steps per address, the root and each cell times
 * that; nothing waits without a bound.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "topofs.h"
#include "topofs/log.h"

/* One run: the report, the store's backend and settings. */
struct run {
	struct check_report rep;
	const struct topo_backend *be;
	struct topo_conf conf;
	bool nomem;
};

static void add(struct run *r, enum topo_check_level level, const char *server,
		const char *what, double ms, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Add a line to the report, its value formatted from fmt. */
static void add(struct run *r, enum topo_check_level level, const char *server,
		const char *what, double ms, const char *fmt, ...)
{
	char value[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	if (check_report_add(&r->rep, level, server, what, value, ms))
		r->nomem = true;
}

/* Milliseconds on the monotonic clock. */
static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
}

/* ---- the servers ---- */

/* An address that answers, but not as the named store: which store does
 * it answer as? Asks every other backend's identify(). */
static void name_other_store(struct run *r, const char *server)
{
	const struct topo_backend *b;
	char desc[128];

	for (size_t i = 0; (b = topo_backend_nth(i)); i++) {
		if (strcmp(b->name, r->be->name) == 0 || !b->identify ||
		    b->identify(server, r->conf.timeout_ms, desc, sizeof(desc)))
			continue;
		add(r, TOPO_CHECK_FAIL, server, "implementation", -1,
		    "answers as %s (%s), not %s: --topo_implementation=%s",
		    b->name, desc, r->be->name, b->name);
		return;
	}
}

/* A result of the backend's check() (see backend.h), kept until all are
 * in: whether a member that is down fails the check depends on the rest. */
static void on_server_item(void *arg, const struct topo_check_item *it)
{
	struct check_report *held = arg;

	if (check_report_add(held, it->level, it->server, it->what, it->value,
			     it->ms) == 0)
		held->lines[held->n - 1].foreign = it->foreign;
}

/* Whether the store serves without the members that are down: some address
 * answers as the store and no verdict on the whole (cluster, ensemble)
 * failed. Returns the number of addresses that answer. */
static size_t store_serves(const struct check_report *held, bool *serves)
{
	size_t answered = 0;
	bool whole_failed = false;

	for (size_t i = 0; i < held->n; i++) {
		const struct check_line *l = &held->lines[i];
		if (l->server && strcmp(l->what, "store") == 0 &&
		    l->level != TOPO_CHECK_FAIL)
			answered++;
		whole_failed |= !l->server && l->level == TOPO_CHECK_FAIL;
	}
	*serves = answered && !whole_failed;
	return answered;
}

/* Every address on its own; the number that answer as the store. A member
 * that is down while the others serve is a warning (a degraded cluster),
 * not a failure. */
static size_t check_servers(struct run *r)
{
	struct check_report held = {0};
	char err[512] = "";
	size_t answered;
	bool serves;

	if (!r->be->check)
		return 1; /* nothing to tell: let open() say */
	if (r->be->check(&r->conf, on_server_item, &held, err, sizeof(err)))
		add(r, TOPO_CHECK_FAIL, NULL, "servers", -1, "%s", err);
	answered = store_serves(&held, &serves);
	for (size_t i = 0; i < held.n; i++) {
		struct check_line *l = &held.lines[i];
		bool down = serves && l->level == TOPO_CHECK_FAIL &&
			    strcmp(l->what, "reachable") == 0;
		add(r, down ? TOPO_CHECK_WARN : l->level, l->server, l->what,
		    l->ms, "%s%s", l->value,
		    down ? "; the other members serve" : "");
		if (l->foreign && l->server)
			name_other_store(r, l->server);
	}
	check_report_free(&held);
	return answered;
}

/* ---- the root ---- */

/* Open the store (never creating the root): the root's line, and the
 * store (caller closes) or NULL. */
static struct topo_store *check_root(struct run *r)
{
	struct topo_store *st = NULL;
	char err[512] = "";
	double t0 = now_ms();
	int rc = r->be->open(&r->conf, &st, err, sizeof(err));
	const char *why = err[0] ? err : strerror(-rc);

	if (!rc) {
		add(r, TOPO_CHECK_OK, NULL, "root", now_ms() - t0,
		    "%s exists, is a directory, readable", r->conf.root);
		return st;
	}
	/* Stores with directories of their own must have the root; on the
	 * others (etcd) an empty root is a new topology. */
	if (rc == -ENOENT && !(r->be->caps & TOPO_CAP_REAL_DIRS))
		add(r, TOPO_CHECK_WARN, NULL, "root", -1, "%s", why);
	else
		add(r, TOPO_CHECK_FAIL, NULL, "root", -1, "%s", why);
	return NULL;
}

/* ---- the cells ---- */

/* What one cell's checks found. */
struct cell_seen {
	enum topo_check_level worst;
	char first[512]; /* the first line that is not ok */
	size_t answered;
};

static void on_cell_item(void *arg, const struct topo_check_item *it)
{
	struct cell_seen *c = arg;

	if (it->server && strcmp(it->what, "store") == 0 &&
	    it->level != TOPO_CHECK_FAIL)
		c->answered++;
	if (it->level == TOPO_CHECK_OK)
		return;
	if (!c->first[0])
		snprintf(c->first, sizeof(c->first), "%s%s%s: %s",
			 it->server ? it->server : "", it->server ? " " : "",
			 it->what, it->value);
	if (it->level > c->worst)
		c->worst = it->level;
}

/* One cell: its servers answer, its root exists. A cell that fails is a
 * warning: the global topology works without it. */
static void check_cell(struct run *r, const char *cell, const char *servers,
		       const char *root)
{
	struct topo_conf c = r->conf;
	struct cell_seen seen = {.worst = TOPO_CHECK_OK};
	struct topo_store *st = NULL;
	char what[300], err[512] = "";

	c.servers = servers;
	c.root = root;
	snprintf(what, sizeof(what), "cell %s", cell);
	if (r->be->check &&
	    r->be->check(&c, on_cell_item, &seen, err, sizeof(err))) {
		add(r, TOPO_CHECK_WARN, NULL, what, -1, "%s: %s", servers, err);
		return;
	}
	if (!r->be->check || seen.answered) {
		int rc = r->be->open(&c, &st, err, sizeof(err));
		if (rc && !seen.first[0])
			snprintf(seen.first, sizeof(seen.first), "root: %s",
				 err[0] ? err : strerror(-rc));
		if (rc)
			seen.worst = TOPO_CHECK_FAIL;
		r->be->close(st);
	}
	if (seen.worst == TOPO_CHECK_OK)
		add(r, TOPO_CHECK_OK, NULL, what, -1,
		    "servers %s answer, root %s exists", servers, root);
	else
		add(r, TOPO_CHECK_WARN, NULL, what, -1,
		    "servers %s, root %s: %s", servers, root, seen.first);
}

/* The cell's name of a "cells/<cell>/CellInfo" path, into buf; false if
 * the path is not such a record. */
static bool cellinfo_name(const char *path, char *buf, size_t n)
{
	const char *name, *slash;

	if (strncmp(path, "cells/", 6) != 0)
		return false;
	name = path + 6;
	slash = strchr(name, '/');
	if (!slash || slash == name || strcmp(slash, "/CellInfo") != 0 ||
	    (size_t)(slash - name) >= n)
		return false;
	snprintf(buf, n, "%.*s", (int)(slash - name), name);
	return true;
}

/* Every cells/<cell>/CellInfo of the root: its cell checked. */
static void check_cells(struct run *r, struct topo_store *st)
{
	struct topo_listing l = {0};
	size_t cells = 0;
	int rc = r->be->list(st, "cells", &l);

	if (rc && rc != -ENOENT) {
		add(r, TOPO_CHECK_FAIL, NULL, "cells", -1,
		    "cannot read %s/cells: %s", r->conf.root, strerror(-rc));
		return;
	}
	for (size_t i = 0; i < l.count; i++) {
		const struct topo_entry *e = &l.entries[i];
		char name[256], *addr = NULL, *root = NULL;

		if (!cellinfo_name(e->path, name, sizeof(name)))
			continue;
		cells++;
		if (check_cellinfo_parse(e->value, e->meta.size, &addr,
					 &root)) {
			add(r, TOPO_CHECK_WARN, NULL, "cell", -1,
			    "%s/%s is not a CellInfo record with a server "
			    "address and a root",
			    r->conf.root, e->path);
			continue;
		}
		check_cell(r, name, addr, root);
		free(addr), free(root);
	}
	topo_listing_free(&l);
	if (!cells)
		add(r, TOPO_CHECK_OK, NULL, "cells", -1,
		    "no cells/<cell>/CellInfo records under %s", r->conf.root);
}

/* ---- --check=write ---- */

/* Create a probe key if absent, read it back, delete it by version. */
static void check_write(struct run *r, struct topo_store *st)
{
	char name[128], host[64] = "host", value[160];
	struct topo_meta meta = {0};
	struct topo_entry e = {0};
	double t0 = now_ms(), t1, t2, t3;
	int rc;

	gethostname(host, sizeof(host) - 1);
	snprintf(name, sizeof(name), ".topofs-check-%s-%ld", host,
		 (long)getpid());
	snprintf(value, sizeof(value), "topofs --check=write probe (%s)", host);
	rc = r->be->put(st, name, value, strlen(value), TOPO_EXPECT_ABSENT,
			&meta);
	t1 = now_ms();
	if (rc) {
		add(r, TOPO_CHECK_FAIL, NULL, "write", -1,
		    "create-if-absent of %s/%s: %s", r->conf.root, name,
		    strerror(-rc));
		return;
	}
	rc = r->be->get(st, name, &e);
	t2 = now_ms();
	bool same = !rc && e.meta.size == strlen(value) &&
		    memcmp(e.value, value, e.meta.size) == 0;
	topo_entry_free(&e);
	int del = r->be->del(st, name, meta.version);
	t3 = now_ms();
	if (del)
		add(r, TOPO_CHECK_FAIL, NULL, "write", -1,
		    "the probe key %s/%s is left behind (delete: %s): "
		    "delete it by hand",
		    r->conf.root, name, strerror(-del));
	else if (!same)
		add(r, TOPO_CHECK_FAIL, NULL, "write", -1,
		    "the probe key read back %s",
		    rc ? strerror(-rc) : "with another value");
	else
		add(r, TOPO_CHECK_OK, NULL, "write", t3 - t0,
		    "create %.1f ms, read %.1f ms, delete %.1f ms (%s/%s)",
		    t1 - t0, t2 - t1, t3 - t2, r->conf.root, name);
}

/* ---- the run ---- */

/* The store's settings from the options, as connect_store makes them
 * but never with -o create_root: a check creates nothing. */
static struct topo_conf conf_of(const struct topofs_opts *o)
{
	struct topo_conf conf = topofs_conf(o);
	conf.missing_root_ok = false;
	conf.snapshot = false;
	return conf;
}

/* The checks in order; the report is in r->rep. */
static void run_checks(struct run *r, bool write)
{
	struct topo_store *st = NULL;

	if (!check_servers(r))
		add(r, TOPO_CHECK_FAIL, NULL, "root", -1,
		    "%s not checked: no server answers as %s", r->conf.root,
		    r->be->name);
	else
		st = check_root(r);
	if (!st)
		return;
	check_cells(r, st);
	if (write && r->conf.revision)
		add(r, TOPO_CHECK_WARN, NULL, "write", -1,
		    "not tried: -o revision/snapshot is read-only");
	else if (write)
		check_write(r, st);
	r->be->close(st);
}

/* Print the end of the report: the flags, the verdict or the JSON. */
static int finish(struct run *r, const struct topofs_opts *o)
{
	char *flags = check_vitess_flags(r->be->name, o->servers, o->root);
	enum topo_check_level w = check_report_worst(&r->rep);
	int status = r->nomem || !flags ? 2 : check_exit_status(w);

	if (o->check_json) {
		char *doc = check_report_json(&r->rep, r->be->name, o->servers,
					      o->root, flags);
		if (doc)
			printf("%s\n", doc);
		else
			status = 2;
		free(doc);
	} else {
		printf("vitess flags: %s\n", flags ? flags : "(out of memory)");
		printf("result: %s (exit %d)\n",
		       w == TOPO_CHECK_OK     ? "all ok"
		       : w == TOPO_CHECK_WARN ? "warnings"
					      : "failures",
		       status);
	}
	free(flags);
	return status;
}

int check_main(const struct topofs_opts *o)
{
	struct run r = {
	    .rep = {.out = o->check_json ? NULL : stdout},
	    .be = topo_backend_select(o->implementation, o->etcd_api),
	    .conf = conf_of(o),
	};
	int status;

	if (!r.be) {
		fprintf(stderr, "topofs: no backend for %s\n",
			o->implementation);
		return 2;
	}
	run_checks(&r, o->check_write);
	status = finish(&r, o);
	check_report_free(&r.rep);
	return status;
}
