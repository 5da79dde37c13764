/*
 * main.c - start-up: parse, check the store, mount, daemonise, serve.
 *
 * The store is checked before anything is mounted, so that a bad flag, an
 * unreachable server or a bad root ends the program with one line on stderr
 * and nothing mounted. The store is then closed and opened again after
 * daemonising: threads (the ZooKeeper client's, curl's resolver) do not
 * survive fork.
 */
#include <errno.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "deploy.h"
#include "lowlevel.h"
#include "topofs.h"
#include "topofs/log.h"

static void usage(void)
{
	fputs(opts_usage, stdout);
}

/* The files named by options, made absolute: the daemon runs in "/". A
 * file that does not exist stays as given (the backend names it). */
static void absolute_files(struct topofs_opts *o)
{
	char **files[] = {&o->tls_cert, &o->tls_key, &o->tls_ca,
			  &o->zk_auth_file, &o->etcd_password_file};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *abs = *files[i] ? realpath(*files[i], NULL) : NULL;
		if (abs) {
			free(*files[i]);
			*files[i] = abs;
		}
	}
}

/* Connect to the store described by o: 0 and *st, or -errno with a message
 * already printed. */
static int connect_store(const struct topo_backend *be,
			 const struct topofs_opts *o, struct topo_store **st)
{
	char err[512];
	int rc = topofs_connect(be, o, st, err, sizeof(err));
	if (rc)
		topo_err("%s", err);
	return rc;
}

/* -o snapshot: the revision the probe pinned becomes -o revision=N, so
 * that the store opened again after daemonising shows the same one. */
static int pin_snapshot(const struct topo_backend *be, struct topo_store *st,
			struct topofs_opts *o)
{
	bool pinned = false;
	int64_t rev = 0;
	int rc = be->revision ? be->revision(st, &rev, &pinned) : -ENOTSUP;
	if (!rc && !pinned)
		rc = -EIO;
	if (rc) {
		topo_err("cannot pin a snapshot revision: %s", strerror(-rc));
		return rc;
	}
	topo_info("snapshot: the store as of revision %lld", (long long)rev);
	o->pin_revision = rev;
	o->snapshot = 0;
	return 0;
}

/* Check that the store answers and the root is usable, then disconnect. */
static int probe_store(const struct topo_backend *be, struct topofs_opts *o)
{
	struct topo_store *st = NULL;
	int rc = connect_store(be, o, &st);
	if (!rc && o->snapshot)
		rc = pin_snapshot(be, st, o);
	if (st)
		be->close(st);
	return rc;
}

static int run_loop(struct fuse_session *se, const struct topofs_opts *o)
{
	if (o->single_thread)
		return fuse_session_loop(se) < 0 ? 1 : 0;
	struct fuse_loop_config *loop = fuse_loop_cfg_create();
	if (!loop)
		return 1;
	fuse_loop_cfg_set_max_threads(loop, 16);
	fuse_loop_cfg_set_idle_threads(loop, 8);
	int rc = fuse_session_loop_mt(se, loop);
	fuse_loop_cfg_destroy(loop);
	return rc < 0 ? 1 : 0; /* a signal ends the loop with 0 */
}

/* How the mount shows in /proc/mounts, df and findmnt: type fuse.topofs and
 * source IMPL://SERVERS/ROOT (the SOURCE form), as mount(8) and fstab name
 * it. Inserted first, so that the user's own -o fsname=/subtype= win. */
static int add_mount_names(struct fuse_args *args, const struct topofs_opts *o)
{
	char *src = NULL;
	if (asprintf(&src, "%s://%s%s", o->implementation, o->servers,
		     o->root) < 0)
		return -1;
	/* "-ofsname=" and the source, commas and backslashes escaped */
	char *opt = malloc(strlen("-ofsname=") + 2 * strlen(src) + 1);
	int rc = -1;
	if (opt) {
		char *d = stpcpy(opt, "-ofsname=");
		for (const char *s = src; *s; s++) {
			if (*s == ',' || *s == '\\')
				*d++ = '\\';
			*d++ = *s;
		}
		*d = '\0';
		rc = fuse_opt_insert_arg(args, 1, opt) ||
		     fuse_opt_insert_arg(args, 1, "-osubtype=topofs");
	}
	free(opt);
	free(src);
	return rc ? -1 : 0;
}

/* Stop what serves the mount: the deployment's cells, then the store.
 * rc: the exit status so far. */
static int stop_serving(struct topofs *t, struct deploy *d, int rc)
{
	size_t failed = deploy_stop(d) + topofs_stop_store(t);
	if (failed) {
		topo_err("-o writeback: %zu creates failed (logged above); "
			 "exit status 1",
			 failed);
		rc = 1;
	}
	return rc;
}

/* Unmounted: a stop signal from now on changes nothing, and must not end
 * the exit under way (LeakSanitizer's check at exit takes a while).
 * libfuse's handlers go (they name the session), without the default
 * actions coming back: fuse_remove_signal_handlers leaves a handler that
 * is not its own in place. */
static void ignore_stop_signals(struct fuse_session *se)
{
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	fuse_remove_signal_handlers(se);
}

/* Mount, daemonise, connect and serve until unmounted. */
static int serve_session(struct topofs *t, struct fuse_session *se,
			 const struct topofs_opts *o)
{
	int rc = 1;
	struct deploy *d = NULL;
	bool handlers = false;
	if (fuse_session_mount(se, o->mountpoint) != 0)
		return 1;
	if (fuse_daemonize(o->foreground) != 0)
		goto out_unmount;
	/* Until unmounted: a SIGTERM (even a second one, as the kernel sends
	 * a parent-death signal) ends the loop, never the daemon before it
	 * unmounts. */
	handlers = fuse_set_signal_handlers(se) == 0;
	if (!handlers)
		goto out_unmount;
	if (!o->foreground)
		topo_log_to_syslog(true);
	if (connect_store(t->be, o, &t->st))
		goto out_unmount;
	if (topofs_serve_store(t))
		goto out_close;
	if (o->cells &&
	    !(d = deploy_start(t, o->cells_list, o->pin_revision != 0)))
		goto out_close;
	lowlevel_set_deploy(t->ll, d);
	if (!o->foreground)
		topo_info("topofs %s: %s://%s%s%s mounted on %s",
			  TOPOFS_VERSION, o->implementation, o->servers,
			  o->root, o->cells ? " (-o cells)" : "",
			  o->mountpoint);
	rc = run_loop(se, o);
	lowlevel_stop(t->ll);
	if (!o->foreground)
		topo_info("stopping: %s", o->mountpoint);
out_close:
	rc = stop_serving(t, d, rc);
out_unmount:
	fuse_session_unmount(se);
	if (handlers)
		ignore_stop_signals(se);
	return rc;
}

static int serve(struct topofs *t, struct fuse_args *args,
		 const struct topofs_opts *o)
{
	int rc = 1;
	/* Reading must not invalidate attributes (atime): the stores keep
	 * none, and every read would cost a GETATTR. */
	if (fuse_opt_add_arg(args, "-onoatime") != 0 ||
	    add_mount_names(args, o) != 0)
		return 1;
	if (!(t->ll = lowlevel_new(t)))
		return 1;
	struct fuse_session *se = lowlevel_session(t->ll, args);
	if (se) { /* else libfuse printed why (an unknown -o option) */
		rc = serve_session(t, se, o);
		fuse_session_destroy(se);
	}
	lowlevel_free(t->ll);
	t->ll = NULL;
	return rc;
}

/* One malloc arena for all threads, unless MALLOC_ARENA_MAX says otherwise.
 * glibc gives threads arenas of their own, and here memory is mostly
 * allocated by one thread and freed by another (a value the ZooKeeper
 * client's thread received, replaced when a FUSE thread writes): memory
 * freed into an arena its thread rarely allocates from again stays resident.
 * A 10k-key restore through a ZooKeeper mount peaked at 43 MiB resident
 * with 2-core glibc's default of 16 arenas, 28 MiB with one; the heap
 * itself was 24 MiB (valgrind --tool=massif). The requests are served by
 * a few threads on a few cores, so one arena lock costs nothing measurable. */
static void one_malloc_arena(void)
{
	if (!getenv("MALLOC_ARENA_MAX"))
		mallopt(M_ARENA_MAX, 1);
}

int main(int argc, char **argv)
{
	struct topofs_opts o;
	struct fuse_args args;
	char err[512] = "";
	int rc = 1;

	one_malloc_arena();
	if (opts_parse(argc, argv, &o, &args, err, sizeof(err)) != 0) {
		fprintf(stderr, "topofs: %s\n", err);
		rc = o.check ? 2 : 1; /* --check: 1 means warnings */
		goto out;
	}
	if (o.show_help || o.show_version) {
		if (o.show_help)
			usage();
		else
			printf("topofs %s (libfuse %s)\n", TOPOFS_VERSION,
			       fuse_pkgversion());
		rc = 0;
		goto out;
	}
	if (o.debug)
		o.foreground = 1;
	topo_log_set_debug(o.debug);
	if (o.check) { /* topofs --check: no mount (check.c) */
		rc = check_main(&o);
		goto out;
	}

	char *mnt = realpath(o.mountpoint, NULL);
	if (!mnt) {
		fprintf(stderr, "topofs: bad mountpoint '%s': %s\n",
			o.mountpoint, strerror(errno));
		goto out;
	}
	free(o.mountpoint);
	o.mountpoint = mnt;
	absolute_files(&o);

	struct topofs t = {
	    .be = topo_backend_select(o.implementation, o.etcd_api),
	    .opts = &o,
	    .uid = o.uid ? (uid_t)o.uid_value : getuid(),
	    .gid = o.gid ? (gid_t)o.gid_value : getgid(),
	    .json_view = strcmp(o.view, "json") == 0,
	    .top = "",
	    .dirs = OPEN_DIRS_INIT,
	};
	if (probe_store(t.be, &o) != 0)
		goto out;
	if (o.pin_revision) { /* a past revision: read-only, like -o ro */
		o.read_only = 1;
		if (fuse_opt_add_arg(&args, "-oro") != 0)
			goto out;
	}
	if (scratch_patterns_parse(&t.scratch_names, o.scratch) != 0)
		goto out;
	scratch_init(&t.scratch);
	handle_list_init(&t.handles);
	rc = serve(&t, &args, &o);
	ops_close_dirs(&t);
	handle_list_destroy(&t.handles);
	scratch_destroy(&t.scratch);
	scratch_patterns_free(&t.scratch_names);
out:
	fuse_opt_free_args(&args);
	opts_free(&o);
	return rc;
}
