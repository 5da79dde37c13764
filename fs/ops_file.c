/*
 * ops_file.c - the FUSE operations on open files: open, create, read,
 * write, truncate, flush, fsync, release; and the kernel's node of an open
 * file (ops_bind_node, ops_getattr_node). See ops.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "ops_internal.h"
#include "topofs.h"
#include "topofs/log.h"

#define SCRATCH_MAX (64u << 20) /* scratch files are small editor files */

/* ---- open files ----
 *
 * ops_open_snapshot: every open file is its own snapshot (the value at open,
 * then its own edits), committed at close with compare-and-set. The
 * kernel's page cache is one per inode and would mix them: a reader would
 * see another process's uncommitted edits, or the empty file a writer's
 * O_TRUNC left in the kernel, and a read-modify-write could start from a
 * stale page and lose an update. So files are opened with direct I/O: every
 * read is served from the handle's own buffer. Read-only opens too: the
 * kernel bounds a cached read by the size it last heard of, and between a
 * change in the store and its invalidation reaching the kernel, pages of
 * the new value would be cut to the old size. A pinned mount (-o revision,
 * -o snapshot) is read-only and shows one revision that never changes:
 * there the kernel keeps pages, names and attributes (op_init). */

static size_t max_value(struct topofs *t, const struct handle *h)
{
	if (h->scratch)
		return SCRATCH_MAX;
	/* JSON text is longer than the record it encodes */
	return h->view ? 4 * t->be->max_value : t->be->max_value;
}

static int open_scratch(struct topofs *t, const struct tpath *tp,
			struct fuse_file_info *fi, bool create)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc;
	if (create)
		rc = scratch_create(&t->scratch, tp->p, fi->flags & O_EXCL);
	else if (fi->flags & O_TRUNC)
		rc = scratch_create(&t->scratch, tp->p, false);
	else
		rc = scratch_read(&t->scratch, tp->p, &buf, &len);
	if (rc)
		return rc;
	struct topo_meta meta = {0};
	struct handle *h = handle_new(&t->handles, tp->p, false, buf, len,
				      TOPO_EXPECT_ANY, &meta);
	if (!h)
		return -ENOMEM;
	h->scratch = true;
	h->writable = (fi->flags & O_ACCMODE) != O_RDONLY;
	h->append = fi->flags & O_APPEND;
	fi->direct_io = 1; /* see ops_open_snapshot */
	h->owner = t;
	fi->fh = (uintptr_t)h;
	return 0;
}

/* The version an open's commit compares with (SPEC 5): the one it sees,
 * unless it is an editor's save of what it read earlier. */
static int64_t open_base(struct topofs *t, const struct tpath *tp,
			 bool writable, bool trunc, pid_t pid,
			 const struct topo_meta *meta)
{
	int64_t base = meta->version;
	/* an editor writing the file it moved to its backup: compare with
	 * what it read, not with what is there now */
	if (writable && handle_take_moved(&t->handles, tp->p, &base))
		return base;
	handle_seen(&t->handles, tp->p, meta->version);
	/* a whole rewrite: of what pid read, if it did */
	if (writable && trunc)
		handle_last_read(&t->handles, tp->p, pid, &base);
	else if (!writeback_queued(t->wb, tp->p)) /* else no store version */
		handle_read_by(&t->handles, tp->p, pid, meta->version);
	return base;
}

/* fi opens h, a file not yet in the store (its create, or another open of
 * one): written, it is created at its first close even when left empty. */
static void open_new(struct topofs *t, struct handle *h, bool writable,
		     struct fuse_file_info *fi)
{
	h->pid = topofs_request()->pid;
	h->writable = writable;
	h->append = fi->flags & O_APPEND;
	h->view = view_type(t, h->path, h->is_data);
	h->dirty = writable;
	if (writable && (fi->flags & O_TRUNC))
		h->len = 0;
	fi->noflush = !writable;
	fi->direct_io = 1; /* see ops_open_snapshot */
	h->owner = t;
	fi->fh = (uintptr_t)h;
}

/* Another open of a file created through the mount and not yet in the
 * store: a copy of its bytes so far, as any open is a snapshot. Written
 * to, it is one more create of the name (the later close finds the key:
 * EIO, as any conflict). -ENOENT if there is no such file. */
static int open_new_file(struct topofs *t, const struct tpath *tp,
			 struct fuse_file_info *fi)
{
	unsigned char *buf;
	size_t len;
	if (!handle_new_copy(&t->handles, tp->p, &buf, &len))
		return -ENOENT;
	if (!buf)
		return -ENOMEM;
	struct topo_meta none = {0};
	struct handle *h = handle_new(&t->handles, tp->p, false, buf, len,
				      TOPO_EXPECT_ABSENT, &none);
	if (!h)
		return -ENOMEM;
	open_new(t, h, (fi->flags & O_ACCMODE) != O_RDONLY, fi);
	return 0;
}

/* Open the stored value of tp: a handle with a copy of it. */
static int open_store(struct topofs *t, const struct tpath *tp,
		      struct fuse_file_info *fi)
{
	unsigned char *buf;
	struct topo_meta meta;
	bool writable = (fi->flags & O_ACCMODE) != O_RDONLY;
	if (writable) /* a queued create's real version */
		writeback_wait_for(t->wb, tp->p);
	int rc = cache_value(t->cache, tp->p, &buf, &meta);
	if (rc == -ENOENT && !tp->is_data)
		return open_new_file(t, tp, fi);
	if (rc)
		return rc;
	if (meta.denied) {
		free(buf);
		return -EACCES;
	}
	if (meta.ephemeral && (writable || t->opts->noephemeral)) {
		free(buf);
		return t->opts->noephemeral ? -ENOENT : -EACCES;
	}
	size_t len = meta.size;
	const struct proto_message *view = NULL;
	if (view_type(t, tp->p, tp->is_data)) {
		unsigned char *shown;
		int rc2 = view_out(t, tp->p, tp->is_data, buf, len, &shown,
				   &len, &view);
		free(buf);
		if (rc2)
			return rc2;
		buf = shown;
	}
	pid_t pid = topofs_request()->pid;
	int64_t base =
	    open_base(t, tp, writable, fi->flags & O_TRUNC, pid, &meta);
	struct handle *h =
	    handle_new(&t->handles, tp->p, tp->is_data, buf, len, base, &meta);
	if (!h)
		return -ENOMEM;
	h->pid = pid;
	h->writable = writable;
	h->append = fi->flags & O_APPEND;
	h->view = view;
	if (writable && (fi->flags & O_TRUNC) && h->len) {
		h->len = 0; /* atomic O_TRUNC: only the buffer is cut */
		h->dirty = true;
	}
	fi->noflush = !writable; /* nothing to commit: spare the FLUSH */
	/* see ops_open_snapshot; a past revision has one snapshot only */
	fi->direct_io = !t->opts->pin_revision;
	if (fi->direct_io && topofs_unsettled(t, tp->p))
		topofs_request_drop_attrs(); /* see lowlevel.c, Open files
						and the kernel's attributes */
	h->owner = t;
	fi->fh = (uintptr_t)h;
	return 0;
}

int op_open(const char *path, struct fuse_file_info *fi)
{
	struct topofs *t = ops_fs();
	struct tpath tp;
	int rc = ops_resolve(t, path, &tp);
	if (rc)
		return rc;
	return tp.scratch ? open_scratch(t, &tp, fi, false)
			  : open_store(t, &tp, fi);
}

int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct topofs *t = ops_fs();
	struct tpath tp;
	struct cache_stat cs;
	(void)mode;
	int rc = ops_resolve(t, path, &tp);
	if (rc)
		return rc == -ENOENT ? -EINVAL : rc;
	if (tp.scratch)
		return open_scratch(t, &tp, fi, true);
	rc = tp.is_data ? cache_stat_brief(t->cache, tp.p, &cs)
			: ops_check_parent(t, tp.p);
	if (rc)
		return rc;
	rc = cache_stat_brief(t->cache, tp.p, &cs);
	bool exists = !rc && (tp.is_data ? cs.data_shown : true);
	if (exists && (fi->flags & O_EXCL))
		return -EEXIST;
	if (exists && cs.is_dir && !tp.is_data)
		return -EISDIR;
	if (exists)
		return open_store(t, &tp, fi); /* the kernel's view was stale */
	/* A ZooKeeper directory's hidden empty data: write it in place. */
	bool hidden = !rc && tp.is_data && cs.has_data;
	struct topo_meta meta = hidden ? cs.meta : (struct topo_meta){0};
	struct handle *h =
	    handle_new(&t->handles, tp.p, tp.is_data, NULL, 0,
		       hidden ? cs.meta.version : TOPO_EXPECT_ABSENT, &meta);
	if (!h)
		return -ENOMEM;
	open_new(t, h, true, fi);
	return 0;
}

int op_read(const char *path, char *buf, size_t size, off_t off,
	    struct fuse_file_info *fi)
{
	(void)path;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	return (int)handle_read(h, buf, size, off);
}

int op_write(const char *path, const char *buf, size_t size, off_t off,
	     struct fuse_file_info *fi)
{
	(void)path;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	int rc = handle_write(h, buf, size, off, max_value(ops_fs(), h),
			      topofs_request()->pid);
	if (rc == -EFBIG)
		topo_err("%s: value over the store's limit of %zu bytes",
			 h->path, max_value(ops_fs(), h));
	return rc;
}

/* truncate(2) on a path that no one has open: edit and commit at once. */
static int truncate_path(struct topofs *t, const struct tpath *tp, off_t size)
{
	struct fuse_file_info fi = {.flags = O_WRONLY};
	int rc = tp->scratch ? open_scratch(t, tp, &fi, false)
			     : open_store(t, tp, &fi);
	if (rc)
		return rc;
	struct handle *h = (struct handle *)(uintptr_t)fi.fh;
	rc = handle_truncate(h, size, max_value(t, h));
	if (!rc)
		rc = handle_commit(t, h);
	handle_free(&t->handles, h);
	return rc;
}

int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct topofs *t = ops_fs();
	if (fi && fi->fh) {
		struct handle *h = (struct handle *)(uintptr_t)fi->fh;
		return handle_truncate(h, size, max_value(t, h));
	}
	struct tpath tp;
	int rc = ops_resolve(t, path, &tp);
	return rc ? rc : truncate_path(t, &tp, size);
}

int op_flush(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	/* Every close commits (SPEC 5): the value is in the store when the
	 * close() that ends the last open for writing returns, and a failed
	 * commit fails that close(). A shell's `> file` closes a duplicate
	 * descriptor before the command writes: the store then holds the
	 * empty value for a moment, as a local file would be empty. Not the
	 * close of a descriptor a child inherited and never used: see
	 * handle_close_commits. */
	if (!h->writable || !handle_close_commits(h, topofs_request()->pid))
		return 0;
	return handle_commit(ops_fs(), h);
}

int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	int rc = h->writable ? handle_commit(ops_fs(), h) : 0;
	int wrc = writeback_sync(ops_fs()->wb);
	return rc ? rc : wrc;
}

/* fsync of a directory (`sync DIR`): with -o writeback, the queued creates
 * are applied and their failures reported. */
int op_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	(void)fi;
	return writeback_sync(ops_fs()->wb);
}

int op_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	/* Closes committed (op_flush), but the last one may have been a
	 * child's that did not (the process that wrote closed first): its
	 * edits are committed now. A failure is logged; no close waits. */
	if (handle_owes_commit(h))
		handle_commit(ops_fs(), h);
	handle_free(&ops_fs()->handles, h);
	return 0;
}

void ops_bind_node(struct fuse_file_info *fi, uint64_t node)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->node = node;
	pthread_mutex_unlock(&h->lock);
}

struct topofs *ops_file_owner(const struct fuse_file_info *fi)
{
	return ((struct handle *)(uintptr_t)fi->fh)->owner;
}

int ops_getattr_node(struct topofs *t, uint64_t node, struct stat *st)
{
	struct handle h;
	char path[PATH_MAX];
	if (!handle_node(&t->handles, node, &h, path, sizeof(path)))
		return -ESTALE;
	ops_stat_file(t, st, path, h.is_data, &h.meta, h.len);
	if (h.scratch)
		st->st_mode = S_IFREG | 0644;
	if (h.unlinked)
		st->st_nlink = 0;
	return 0;
}
