/*
 * ops.c - the FUSE operations, by path (the shape of libfuse's high-level
 * API, served to the kernel by lowlevel.c).
 *
 * Every operation maps its FUSE path to a store path (path.c), then asks the
 * cache (reads), an open handle (I/O on open files), the scratch files
 * (editor temporaries) or the backend (writes, recorded in the cache after
 * they succeed). No operation knows which store it talks to.
 *
 * Return values follow libfuse: 0 or a negative errno (read and write return
 * a byte count). Store conflicts (-ESTALE from a backend) become -EIO with a
 * log line naming the key (SPEC 7).
 *
 * The operations, by concern (what they share: ops_internal.h):
 *   ops_attr_dir.c  attributes (getattr) and directories (listing, mkdir,
 *                   rmdir)
 *   ops_file.c      open files: open, create, read, write, truncate, flush,
 *                   fsync, release
 *   ops_name.c      names: unlink and rename
 *   ops_meta.c      statfs, the modes, owners and times the stores do not
 *                   keep, and the store's metadata as extended attributes
 * This file: the helpers they all use, INIT (the kernel's cache policy),
 * the store's change notices (the kernel's invalidations) and topofs_ops.
 */
#include <errno.h>
#include <fuse.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lowlevel.h"
#include "ops_internal.h"
#include "topofs.h"
#include "topofs/log.h"

struct topofs *ops_fs(void)
{
	return topofs_request()->t;
}

/* Resolve a FUSE path. -ENOENT for a name that cannot exist in the store.
 * A scratch name, and everything below a scratch directory, is memory only
 * (scratch.h); a scratch directory has no .topofs-data (it holds no value).
 */
int ops_resolve(struct topofs *t, const char *fuse_path, struct tpath *tp)
{
	int rc = path_from_fuse(fuse_path, tp->p, sizeof(tp->p), &tp->is_data);
	if (rc)
		return rc == -EINVAL ? -ENOENT : rc; /* or -ENAMETOOLONG */
	tp->scratch = *tp->p && scratch_in_path(&t->scratch_names, tp->p);
	return tp->scratch && tp->is_data ? -ENOENT : 0;
}

bool ops_read_only(const struct topofs *t)
{
	return t->opts->read_only;
}

/* The errno for a failed store write, the way SPEC 7 says: a conflict is
 * EIO with a log line naming the key; other failures are logged too. */
int ops_store_error(struct topofs *t, const char *path, int rc,
		    const char *what)
{
	if (rc == -ESTALE) {
		topo_err("%s: not %s: changed by another client meanwhile",
			 path, what);
		cache_invalidate(t->cache, path);
		return -EIO;
	}
	if (rc && rc != -ENOENT && rc != -EEXIST && rc != -ENOTEMPTY)
		topo_err("%s: not %s: %s", path, what, strerror(-rc));
	return rc;
}

/* How long the kernel may keep what a pinned (past-revision) mount shows:
 * for as long as it likes; a day is "forever" to the kernel's caches. */
#define PINNED_KERNEL_TTL 86400.0

/* How long the kernel may keep names and attributes while the store's
 * watch tells it of every change (topofs_on_change): an hour. */
#define WATCHED_KERNEL_TTL 3600.0

/* The kernel's cache policy, read by lowlevel.c: cfg's entry_timeout,
 * attr_timeout, negative_timeout and kernel_cache (file pages kept across
 * opens); the rest of cfg means nothing here. */
static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct topofs *t = ops_fs();
	/* With the store's watch, every change reaches the kernel as an
	 * invalidation of the node, of its name (a file may gain children
	 * and become a directory: the kernel must look the name up again)
	 * and of its parent's listing: names and attributes may be kept
	 * long. Without one, for the cache lifetime. New names must show at
	 * once: no negative caching. */
	double ttl = t->opts->cache_ttl_ms / 1000.0;
	cfg->entry_timeout = t->watched ? WATCHED_KERNEL_TTL : ttl;
	cfg->attr_timeout = t->watched ? WATCHED_KERNEL_TTL : ttl;
	cfg->negative_timeout = 0;
	cfg->kernel_cache = 0; /* files are read with direct I/O: see
				  ops_open_snapshot */
	if (t->opts->pin_revision) {
		/* A past revision never changes: names, absent names,
		 * attributes and pages may stay in the kernel (open_store
		 * serves such files without direct I/O). */
		cfg->entry_timeout = PINNED_KERNEL_TTL;
		cfg->attr_timeout = PINNED_KERNEL_TTL;
		cfg->negative_timeout = PINNED_KERNEL_TTL;
		cfg->kernel_cache = 1;
	}
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	return t;
}

/* ---- change notices: the kernel's invalidations ---- */

/* Queue an invalidation on n, counted in t->unsettled until done. */
static void queue_inval(struct topofs *t, struct notifier *n, const char *p,
			enum topofs_inval kind)
{
	bool all = kind == INVAL_ALL;
	unsettled_queued(&t->unsettled, p, all);
	if (!notifier_push(n, p, kind))
		unsettled_written(&t->unsettled, p, all);
}

void topofs_invalidate(struct topofs *t, const char *p, enum topofs_inval kind)
{
	/* A reply being built from the cache as it was may carry what this
	 * change replaced: it must know now, not when the notifier's thread
	 * gets to it (that thread may wait long for the kernel's locks). */
	lowlevel_note_change(t->ll);
	/* Done at once, and again a little later: a LOOKUP or READDIRPLUS
	 * answered just before the change may reach the kernel's caches just
	 * after the first invalidation (lowlevel.c). */
	queue_inval(t, t->notifier, p, kind);
	queue_inval(t, t->renotifier, p, kind);
}

void topofs_invalidate_later(struct topofs *t, const char *p,
			     enum topofs_inval kind)
{
	queue_inval(t, t->renotifier, p, kind);
}

void topofs_tell_kernel(void *arg, const char *path, int kind)
{
	struct topofs *t = arg;
	lowlevel_invalidate(t, path, kind);
	unsettled_written(&t->unsettled, path, kind == INVAL_ALL);
}

bool topofs_unsettled(struct topofs *t, const char *p)
{
	/* after the last invalidation, a reply that raced it may be kept
	 * for the race lifetime (cache_ttl at most: lowlevel.c) */
	return unsettled_is(&t->unsettled, p, unsettled_now_ms(),
			    t->opts->cache_ttl_ms);
}

static enum topofs_inval inval_kind(enum topo_change what)
{
	switch (what) {
	case TOPO_CHANGE_NODE:
		return INVAL_NODE;
	case TOPO_CHANGE_DELETED:
		return INVAL_GONE;
	case TOPO_CHANGE_CHILDREN:
		return INVAL_CHILDREN;
	default:
		return INVAL_ALL;
	}
}

void topofs_on_change(void *arg, enum topo_change what, const char *path,
		      int64_t version)
{
	struct topofs *t = arg;
	size_t grown;
	cache_notice(t->cache, what, path, version, &grown);
	if (what == TOPO_CHANGE_CHILDREN)
		notifier_push(t->rechecker, path, 0);
	topofs_invalidate(t, what == TOPO_CHANGE_ALL ? "" : path,
			  inval_kind(what));
	if (grown != CACHE_NOT_GROWN && grown < path_parent_len(path)) {
		/* New directories above the node: the kernel may know them
		 * already (a listing raced the notice) yet hold a listing of
		 * their parent that lacks them. */
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%.*s", (int)grown, path);
		topofs_invalidate(t, dir, INVAL_CHILDREN);
	}
}

void topofs_written(void *arg, const char *path)
{
	topofs_invalidate(arg, path, INVAL_WRITTEN);
}

void topofs_recheck(void *arg, const char *path, int kind)
{
	struct topofs *t = arg;
	(void)kind;
	if (cache_recheck(t->cache, path) > 0)
		topofs_invalidate(t, path, INVAL_CHILDREN);
}

const struct fuse_operations topofs_ops = {
    .init = op_init,
    .getattr = op_getattr,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .mkdir = op_mkdir,
    .rmdir = op_rmdir,
    .open = op_open,
    .create = op_create,
    .read = op_read,
    .write = op_write,
    .truncate = op_truncate,
    .flush = op_flush,
    .fsync = op_fsync,
    .fsyncdir = op_fsyncdir,
    .release = op_release,
    .unlink = op_unlink,
    .rename = op_rename,
    .statfs = op_statfs,
    .chmod = op_chmod,
    .chown = op_chown,
    .utimens = op_utimens,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .setxattr = op_setxattr,
    .removexattr = op_removexattr,
};
