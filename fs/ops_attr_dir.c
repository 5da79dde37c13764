/*
 * ops_attr_dir.c - the FUSE operations on attributes and directories:
 * getattr (the struct stat of every kind of node: stored, scratch, being
 * created), and directory listings, mkdir and rmdir. See ops.c.
 */
#include <errno.h>
#include <fuse.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dirsnap.h"
#include "ops_internal.h"
#include "topofs.h"

/* ---- attributes ---- */

static void stat_common(struct topofs *t, struct stat *st, uint64_t ino)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = t->uid;
	st->st_gid = t->gid;
	st->st_blksize = 4096;
}

static void set_time(struct stat *st, int64_t mtime_ns, int64_t version)
{
	/* etcd keeps no time: twice its mod_revision, as seconds, is a time
	 * that is stable across mounts and changes exactly when the value
	 * does, by at least 2 s (vim on Linux ignores smaller changes). */
	struct timespec ts = {.tv_sec = version > 0 ? 2 * version : 0};
	if (mtime_ns > 0) {
		/* ZooKeeper's mtime has milliseconds; the data version in the
		 * sub-millisecond digits makes two writes within one
		 * millisecond still change st_mtime (the page cache and rsync
		 * rely on it). */
		ts.tv_sec = mtime_ns / 1000000000;
		ts.tv_nsec = mtime_ns % 1000000000 / 1000000 * 1000000 +
			     (version > 0 ? version % 1000000 : 0);
	}
	st->st_mtim = st->st_ctim = st->st_atim = ts;
}

void ops_stat_file(struct topofs *t, struct stat *st, const char *path,
		   bool is_data, const struct topo_meta *meta, size_t size)
{
	stat_common(t, st, path_ino_at(t->top, path, is_data));
	mode_t perm = meta->ephemeral ? 0444 : 0644;
	if (ops_read_only(t))
		perm &= ~0222;
	st->st_mode = S_IFREG | perm;
	st->st_nlink = 1;
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	set_time(st, meta->mtime_ns, meta->version);
}

static void stat_dir(struct topofs *t, struct stat *st, const char *path,
		     const struct cache_stat *cs)
{
	stat_common(t, st, path_ino_at(t->top, path, false));
	st->st_mode = S_IFDIR | (ops_read_only(t) ? 0555 : 0755);
	if (cs->meta.denied) /* always a directory (see walk_denied) */
		st->st_mode = S_IFDIR; /* the store lets us see the name only */
	st->st_nlink = 2 + cs->subdirs;
	st->st_size = 4096;
	st->st_blocks = 8;
	set_time(st, cs->has_data ? cs->meta.mtime_ns : 0, cs->newest);
}

/* The size a reader sees: the stored size, or under -o view=json the
 * length of a record's JSON. */
static size_t shown_size(struct topofs *t, const char *path, bool is_data,
			 const struct topo_meta *meta)
{
	if (!view_type(t, path, is_data))
		return meta->size;
	unsigned char *raw, *shown = NULL;
	struct topo_meta m;
	const struct proto_message *type;
	size_t n = meta->size;
	if (cache_derived_size(t->cache, path, meta->modify_id, &n))
		return n; /* decoding on every stat made `ls -l` slow */
	if (cache_value(t->cache, path, &raw, &m) == 0) {
		if (view_out(t, path, is_data, raw, m.size, &shown, &n,
			     &type) != 0)
			n = m.size;
		else
			cache_set_derived_size(t->cache, path, m.modify_id, n);
		free(raw);
		free(shown);
	}
	return n;
}

/* -o noephemeral on a store without real directories: a directory that
 * holds only leased keys is not shown (etcd's `locks/` holding one Vitess
 * lock), so a backup made of the mount restores no directory the source
 * did not have. */
static bool hidden_dir(struct topofs *t, const char *p)
{
	return t->opts->noephemeral && !(t->be->caps & TOPO_CAP_REAL_DIRS) &&
	       !cache_dir_persistent(t->cache, p);
}

/* Stat what the cache knows of tp (including files being written). */
static int stat_store(struct topofs *t, const struct tpath *tp, struct stat *st)
{
	struct cache_stat cs;
	size_t pending;
	int rc = cache_stat(t->cache, tp->p, &cs);
	bool absent = rc == -ENOENT || (tp->is_data && !rc && !cs.data_shown);
	if (absent && handle_pending(&t->handles, tp->p, true, &pending)) {
		/* not in the store yet: made now, as far as anyone can tell */
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		struct topo_meta none = {
		    .mtime_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec};
		ops_stat_file(t, st, tp->p, tp->is_data, &none, pending);
		return 0;
	}
	if (rc)
		return rc;
	if (tp->is_data && (!cs.is_dir || !cs.data_shown))
		return -ENOENT;
	if (cs.has_data && cs.meta.ephemeral && t->opts->noephemeral)
		return -ENOENT;
	if (cs.is_dir && !tp->is_data) {
		if (hidden_dir(t, tp->p))
			return -ENOENT;
		stat_dir(t, st, tp->p, &cs);
		return 0;
	}
	/* a file open for writing shows the open file's size, as on a local
	 * filesystem: fstat reaches us by path (SPEC 5) */
	pid_t pid = topofs_request()->pid;
	size_t size;
	if (handle_open_size(&t->handles, tp->p, tp->is_data, pid, &size)) {
		ops_stat_file(t, st, tp->p, tp->is_data, &cs.meta, size);
		return 0;
	}
	size = shown_size(t, tp->p, tp->is_data, &cs.meta);
	/* and the opener's own open file, when it holds another version:
	 * its fstat gives the size its reads end at (see lowlevel.c, Open
	 * files and the kernel's attributes) */
	struct topo_meta own;
	size_t own_len;
	switch (handle_view_of(&t->handles, tp->p, tp->is_data, pid,
			       cs.meta.version, size, &own, &own_len)) {
	case VIEW_OWN:
		topofs_request_own_view();
		ops_stat_file(t, st, tp->p, tp->is_data, &own, own_len);
		return 0;
	case VIEW_OTHERS:
		topofs_request_own_view();
		break;
	case VIEW_STORE:
		break;
	}
	ops_stat_file(t, st, tp->p, tp->is_data, &cs.meta, size);
	return 0;
}

int ops_stat_scratch(struct topofs *t, const struct tpath *tp, struct stat *st)
{
	struct scratch_info si;
	int rc = scratch_stat(&t->scratch, tp->p, &si);
	if (rc)
		return rc;
	stat_common(t, st, path_ino_at(t->top, tp->p, false));
	if (si.is_dir) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2 + si.subdirs;
		si.len = 4096;
	} else {
		handle_pending(&t->handles, tp->p, false, &si.len);
		st->st_mode = S_IFREG | 0644;
		st->st_nlink = 1;
	}
	st->st_size = (off_t)si.len;
	st->st_blocks = (blkcnt_t)((si.len + 511) / 512);
	st->st_mtim = st->st_ctim = st->st_atim = si.mtime;
	return 0;
}

/* 0 if scratch path p is a directory; -ENOENT, -ENOTDIR. */
int ops_scratch_dir_ok(struct topofs *t, const char *p)
{
	struct scratch_info si;
	int rc = scratch_stat(&t->scratch, p, &si);
	return rc ? rc : si.is_dir ? 0 : -ENOTDIR;
}

int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct topofs *t = ops_fs();
	struct tpath tp;
	if (fi && fi->fh) { /* path may be NULL here: use the open file */
		struct handle *h = (struct handle *)(uintptr_t)fi->fh;
		pthread_mutex_lock(&h->lock);
		ops_stat_file(t, st, h->path, h->is_data, &h->meta, h->len);
		if (h->unlinked)
			st->st_nlink = 0;
		pthread_mutex_unlock(&h->lock);
		if (h->scratch)
			st->st_mode = S_IFREG | 0644;
		return 0;
	}
	int rc = ops_resolve(t, path, &tp);
	if (rc)
		return rc;
	return tp.scratch ? ops_stat_scratch(t, &tp, st)
			  : stat_store(t, &tp, st);
}

/* ---- directories ---- */

struct dir_collect {
	struct topofs *owner;		 /* the filesystem it is open in */
	struct dir_collect *prev, *next; /* on owner->dirs */
	struct dirsnap snap;		 /* the entries, packed (dirsnap.h) */
	int err;
};

static int collect_store(void *arg, const char *name,
			 const struct cache_stat *cs)
{
	struct dir_collect *dc = arg;
	return dirsnap_add(&dc->snap, name, cs, false);
}

static void collect_memory(void *arg, const char *name)
{
	struct dir_collect *dc = arg;
	if (!dc->err)
		dc->err = dirsnap_add(&dc->snap, name, NULL, true);
}

static void collect_free(struct dir_collect *dc)
{
	dirsnap_clear(&dc->snap);
}

/* The struct stat of directory entry e of dir, for readdirplus. */
static int entry_stat(struct topofs *t, const char *dir,
		      const struct dirsnap_entry *e, struct stat *st)
{
	struct tpath tp = {0};
	bool is_data = strcmp(e->name, TOPO_DATA_NAME) == 0;
	if (is_data)
		snprintf(tp.p, sizeof(tp.p), "%s", dir);
	else if (path_join(tp.p, sizeof(tp.p), dir, e->name))
		return -ENAMETOOLONG;
	tp.is_data = is_data;
	if (e->from_memory) {
		tp.scratch = scratch_in_path(&t->scratch_names, tp.p);
		return tp.scratch ? ops_stat_scratch(t, &tp, st)
				  : stat_store(t, &tp, st);
	}
	if (e->cs.has_data && e->cs.meta.ephemeral && t->opts->noephemeral)
		return -ENOENT;
	if (e->cs.is_dir && !is_data && hidden_dir(t, tp.p))
		return -ENOENT;
	if (e->cs.is_dir && !is_data)
		stat_dir(t, st, tp.p, &e->cs);
	else
		ops_stat_file(t, st, tp.p, is_data, &e->cs.meta,
			      shown_size(t, tp.p, is_data, &e->cs.meta));
	return 0;
}

/* An open directory holds its entries as of the readdir at offset 0, so
 * that a listing read in several requests is one snapshot and each request
 * costs only its own entries. Offsets: 1 after ".", 2 after "..", then
 * 3 + i after entry i. For READDIRPLUS every entry comes with its
 * attributes (FUSE_FILL_DIR_PLUS), so the kernel needs no LOOKUP and
 * GETATTR per name. */
int op_opendir(const char *path, struct fuse_file_info *fi)
{
	struct topofs *t = ops_fs();
	struct tpath tp;
	struct cache_stat cs;
	bool found = ops_resolve(t, path, &tp) == 0 && !tp.scratch;
	if (found && cache_stat_brief(t->cache, tp.p, &cs) == 0 &&
	    cs.meta.denied)
		return -EACCES;
	struct dir_collect *dc = calloc(1, sizeof(*dc));
	if (!dc)
		return -ENOMEM;
	dc->owner = t;
	pthread_mutex_lock(&t->dirs.lock);
	dc->next = t->dirs.head;
	if (dc->next)
		dc->next->prev = dc;
	t->dirs.head = dc;
	pthread_mutex_unlock(&t->dirs.lock);
	fi->fh = (uintptr_t)dc;
	/* With the store's watch, a directory's listing reaches the kernel
	 * as an invalidation when it changes: the kernel may cache it. But
	 * not while the cache itself trusts it for cache_ttl only. */
	fi->cache_readdir =
	    t->watched && (!found || cache_listing_watched(t->cache, tp.p));
	fi->keep_cache = fi->cache_readdir;
	return 0;
}

struct topofs *ops_dir_owner(const struct fuse_file_info *fi)
{
	return ((struct dir_collect *)(uintptr_t)fi->fh)->owner;
}

/* Take dc off its filesystem's open directories and free it. */
static void dir_close(struct dir_collect *dc)
{
	struct open_dirs *dirs = &dc->owner->dirs;
	pthread_mutex_lock(&dirs->lock);
	if (dc->prev)
		dc->prev->next = dc->next;
	else
		dirs->head = dc->next;
	if (dc->next)
		dc->next->prev = dc->prev;
	pthread_mutex_unlock(&dirs->lock);
	collect_free(dc);
	free(dc);
}

int op_releasedir(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	struct dir_collect *dc = (struct dir_collect *)(uintptr_t)fi->fh;
	if (dc)
		dir_close(dc);
	return 0;
}

void ops_close_dirs(struct topofs *t)
{
	while (t->dirs.head)
		dir_close(t->dirs.head);
}

/* A stored node with a scratch name (another client wrote it) cannot be
 * looked up: resolve takes its path for a scratch one. Not listed either,
 * so that a scratch entry of that name is listed once. */
static int collect_stored_name(void *arg, const char *name,
			       const struct cache_stat *cs)
{
	if (scratch_match(&ops_fs()->scratch_names, name))
		return 0;
	return collect_store(arg, name, cs);
}

/* Take a new snapshot of the entries of directory tp into dc. */
static int collect_dir(struct topofs *t, const struct tpath *tp,
		       struct dir_collect *dc)
{
	collect_free(dc);
	dc->err = 0;
	/* a scratch directory holds scratch entries only */
	int rc = tp->scratch
		     ? ops_scratch_dir_ok(t, tp->p)
		     : cache_list_dir(t->cache, tp->p, collect_stored_name, dc);
	if (rc)
		return rc;
	scratch_list(&t->scratch, tp->p, collect_memory, dc);
	handle_list_new_in(&t->handles, tp->p, collect_memory, dc);
	dirsnap_trim(&dc->snap); /* held while the directory is open */
	return dc->err;
}

/* Stat entry `name` of directory `dir` (FUSE paths) as getattr would now:
 * a READDIRPLUS entry is a lookup, and an entry deleted since the
 * snapshot is left out. */
static int stat_now(const char *dir, const char *name, struct stat *st)
{
	char p[TOPO_FUSE_PATH_MAX];
	int n =
	    snprintf(p, sizeof(p), "%s/%s", strcmp(dir, "/") ? dir : "", name);
	if (n < 0 || (size_t)n >= sizeof(p))
		return -ENAMETOOLONG;
	return op_getattr(p, st, NULL);
}

int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
	       struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct topofs *t = ops_fs();
	struct tpath tp;
	struct dir_collect *dc = (struct dir_collect *)(uintptr_t)fi->fh;
	int rc = ops_resolve(t, path, &tp);
	if (rc)
		return rc;
	if (tp.is_data)
		return -ENOTDIR;
	if (!dc)
		return -EBADF;
	/* a new listing at offset 0 (rewinddir too), or for a seekdir on a
	 * handle that has none yet (or an empty one) */
	if ((off == 0 || !dc->snap.count) && (rc = collect_dir(t, &tp, dc)))
		return rc;
	if (off < 1 && filler(buf, ".", NULL, 1, 0))
		return 0;
	if (off < 2 && filler(buf, "..", NULL, 2, 0))
		return 0;
	bool plus = flags & FUSE_READDIR_PLUS;
	struct dirsnap_entry e; /* decoded; e.name points into dc->snap */
	for (size_t i = off > 2 ? (size_t)off - 2 : 0;
	     !dirsnap_get(&dc->snap, i, &e); i++) {
		struct stat st;
		if (plus ? stat_now(path, e.name, &st)
			 : entry_stat(t, tp.p, &e, &st))
			continue; /* hidden (noephemeral) or gone meanwhile */
		if (filler(buf, e.name, &st, (off_t)i + 3,
			   plus ? FUSE_FILL_DIR_PLUS : 0))
			break;
	}
	return 0;
}

/* The parent of store path p must be a directory: 0, -ENOENT, -ENOTDIR. */
int ops_check_parent(struct topofs *t, const char *p)
{
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%.*s", (int)path_parent_len(p), p);
	struct cache_stat cs;
	int rc = cache_stat_brief(t->cache, parent, &cs);
	if (rc)
		return rc;
	return cs.is_dir ? 0 : -ENOTDIR;
}

/* The parent of p (a scratch path) must be a directory: a scratch one or
 * one of the store. 0, -ENOENT, -ENOTDIR. */
static int check_scratch_parent(struct topofs *t, const char *p)
{
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%.*s", (int)path_parent_len(p), p);
	if (!*parent || !scratch_in_path(&t->scratch_names, parent))
		return ops_check_parent(t, p);
	return ops_scratch_dir_ok(t, parent);
}

/* mkdir of a scratch path: the directory lives in memory (SPEC 2), as do
 * the files and directories made in it; the store never sees them. */
static int mkdir_scratch(struct topofs *t, const struct tpath *tp)
{
	int rc = check_scratch_parent(t, tp->p);
	return rc ? rc : scratch_mkdir(&t->scratch, tp->p);
}

int op_mkdir(const char *path, mode_t mode)
{
	struct topofs *t = ops_fs();
	struct tpath tp;
	struct cache_stat cs;
	size_t pending;
	(void)mode;
	int rc = ops_resolve(t, path, &tp);
	if (rc)
		return rc == -ENOENT ? -EINVAL : rc;
	if (tp.is_data)
		return -EINVAL; /* a directory cannot be named .topofs-data */
	if (tp.scratch)
		return mkdir_scratch(t, &tp);
	if ((rc = ops_check_parent(t, tp.p)))
		return rc;
	if (cache_stat_brief(t->cache, tp.p, &cs) == 0 ||
	    handle_pending(&t->handles, tp.p, true, &pending))
		return -EEXIST;
	if ((t->be->caps & TOPO_CAP_REAL_DIRS) && t->wb) {
		if ((rc = cache_mkdir(t->cache, tp.p, true)))
			return rc;
		cache_set_pending(t->cache, tp.p, true);
		if ((rc = writeback_create(t->wb, tp.p, "", 0, true)))
			cache_invalidate(t->cache, tp.p);
		return rc;
	}
	if (t->be->caps & TOPO_CAP_REAL_DIRS) {
		struct topo_meta meta = {0}; /* the new node's times at once */
		bool told = t->be->mkdir_meta != NULL;
		cache_write_begin(t->cache);
		rc = told ? t->be->mkdir_meta(t->st, tp.p, &meta)
			  : t->be->mkdir(t->st, tp.p);
		cache_write_end(t->cache);
		if (rc)
			return ops_store_error(t, tp.p, rc, "created");
		return cache_mkdir_stored(t->cache, tp.p, told ? &meta : NULL);
	}
	return cache_mkdir(t->cache, tp.p, false);
}

/* True if directory dir holds scratch files or uncommitted new files. */
static void count_memory(void *arg, const char *name)
{
	(void)name;
	(*(size_t *)arg)++;
}

int op_rmdir(const char *path)
{
	struct topofs *t = ops_fs();
	struct tpath tp;
	struct cache_stat cs;
	writeback_wait(t->wb); /* the store sees writes in order */
	int rc = ops_resolve(t, path, &tp);
	if (rc)
		return rc;
	if (tp.is_data)
		return -ENOTDIR;
	if (!*tp.p)
		return -EBUSY;
	if (tp.scratch)
		return scratch_rmdir(&t->scratch, tp.p);
	if ((rc = cache_stat(t->cache, tp.p, &cs)))
		return rc;
	if (!cs.is_dir)
		return -ENOTDIR;
	size_t in_memory = 0;
	scratch_list(&t->scratch, tp.p, count_memory, &in_memory);
	handle_list_new_in(&t->handles, tp.p, count_memory, &in_memory);
	if (in_memory)
		return -ENOTEMPTY;
	if (cs.data_shown || cs.subdirs)
		return -ENOTEMPTY;
	if (cs.has_data && (t->be->caps & TOPO_CAP_REAL_DIRS)) {
		cache_write_begin(t->cache);
		rc = t->be->del(t->st, tp.p, cs.meta.version);
		cache_write_end(t->cache);
		if (rc == -ENOTEMPTY)
			cache_invalidate(t->cache, tp.p); /* new children */
		if (rc && rc != -ENOENT)
			return ops_store_error(t, tp.p, rc, "removed");
		rc = cache_rmdir(t->cache, tp.p);
		return rc == -ENOENT ? 0 : rc; /* a notice may have said so */
	}
	return cache_rmdir(t->cache, tp.p);
}
