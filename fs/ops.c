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
 */
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/statvfs.h>
#include <time.h>

#include "lowlevel.h"
#include "topofs.h"
#include "topofs/log.h"
#include "view_json.h"

#define SCRATCH_MAX (64u << 20) /* scratch files are small editor files */

static struct topofs *fs(void)
{
	return topofs_request()->t;
}

/* A FUSE path resolved to the store. */
struct tpath {
	char p[PATH_MAX];
	bool is_data; /* DIR/.topofs-data: the directory node's own value */
	bool scratch; /* an editor scratch name: memory only */
};

/* Resolve a FUSE path. -ENOENT for a name that cannot exist in the store.
 * A scratch name, and everything below a scratch directory, is memory only
 * (scratch.h); a scratch directory has no .topofs-data (it holds no value).
 */
static int resolve(struct topofs *t, const char *fuse_path, struct tpath *tp)
{
	int rc = path_from_fuse(fuse_path, tp->p, sizeof(tp->p), &tp->is_data);
	if (rc)
		return rc == -EINVAL ? -ENOENT : rc; /* or -ENAMETOOLONG */
	tp->scratch = *tp->p && scratch_in_path(&t->scratch_names, tp->p);
	return tp->scratch && tp->is_data ? -ENOENT : 0;
}

static bool read_only(const struct topofs *t)
{
	return t->opts->read_only;
}

/* A node whose value this mount never changes (EACCES): an ephemeral one
 * (a Vitess lock or election) or one the store will not show us. */
static bool untouchable(const struct topo_meta *m)
{
	return m->ephemeral || m->denied;
}

/* The errno for a failed store write, the way SPEC 7 says: a conflict is
 * EIO with a log line naming the key; other failures are logged too. */
static int store_error(struct topofs *t, const char *path, int rc,
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

static void stat_file(struct topofs *t, struct stat *st, const char *path,
		      bool is_data, const struct topo_meta *meta, size_t size)
{
	stat_common(t, st, path_ino(path, is_data));
	mode_t perm = meta->ephemeral ? 0444 : 0644;
	if (read_only(t))
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
	stat_common(t, st, path_ino(path, false));
	st->st_mode = S_IFDIR | (read_only(t) ? 0555 : 0755);
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
		stat_file(t, st, tp->p, tp->is_data, &none, pending);
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
	size_t size;
	if (!handle_open_size(&t->handles, tp->p, tp->is_data,
			      topofs_request()->pid, &size))
		size = shown_size(t, tp->p, tp->is_data, &cs.meta);
	stat_file(t, st, tp->p, tp->is_data, &cs.meta, size);
	return 0;
}

static int stat_scratch(struct topofs *t, const struct tpath *tp,
			struct stat *st)
{
	struct scratch_info si;
	int rc = scratch_stat(&t->scratch, tp->p, &si);
	if (rc)
		return rc;
	stat_common(t, st, path_ino(tp->p, false));
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
static int scratch_dir_ok(struct topofs *t, const char *p)
{
	struct scratch_info si;
	int rc = scratch_stat(&t->scratch, p, &si);
	return rc ? rc : si.is_dir ? 0 : -ENOTDIR;
}

static int op_getattr(const char *path, struct stat *st,
		      struct fuse_file_info *fi)
{
	struct topofs *t = fs();
	struct tpath tp;
	if (fi && fi->fh) { /* path may be NULL here: use the open file */
		struct handle *h = (struct handle *)(uintptr_t)fi->fh;
		pthread_mutex_lock(&h->lock);
		stat_file(t, st, h->path, h->is_data, &h->meta, h->len);
		if (h->unlinked)
			st->st_nlink = 0;
		pthread_mutex_unlock(&h->lock);
		if (h->scratch)
			st->st_mode = S_IFREG | 0644;
		return 0;
	}
	int rc = resolve(t, path, &tp);
	if (rc)
		return rc;
	return tp.scratch ? stat_scratch(t, &tp, st) : stat_store(t, &tp, st);
}

/* ---- directories ---- */

struct dirent_copy {
	char *name;
	struct cache_stat cs;
	bool from_memory; /* scratch or not yet committed: stat it by path */
};

struct dir_collect {
	struct dirent_copy *ents;
	size_t count, cap;
	int err;
};

static int collect_add(struct dir_collect *dc, const char *name,
		       const struct cache_stat *cs, bool from_memory)
{
	if (dc->count == dc->cap) {
		size_t cap = dc->cap ? dc->cap * 2 : 64;
		struct dirent_copy *e = realloc(dc->ents, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		dc->ents = e;
		dc->cap = cap;
	}
	struct dirent_copy *e = &dc->ents[dc->count];
	if (!(e->name = strdup(name)))
		return -ENOMEM;
	if (cs)
		e->cs = *cs;
	e->from_memory = from_memory;
	dc->count++;
	return 0;
}

static int collect_store(void *arg, const char *name,
			 const struct cache_stat *cs)
{
	return collect_add(arg, name, cs, false);
}

static void collect_memory(void *arg, const char *name)
{
	struct dir_collect *dc = arg;
	if (!dc->err)
		dc->err = collect_add(dc, name, NULL, true);
}

static void collect_free(struct dir_collect *dc)
{
	for (size_t i = 0; i < dc->count; i++)
		free(dc->ents[i].name);
	free(dc->ents);
}

/* The struct stat of directory entry e of dir, for readdirplus. */
static int entry_stat(struct topofs *t, const char *dir,
		      const struct dirent_copy *e, struct stat *st)
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
		return tp.scratch ? stat_scratch(t, &tp, st)
				  : stat_store(t, &tp, st);
	}
	if (e->cs.has_data && e->cs.meta.ephemeral && t->opts->noephemeral)
		return -ENOENT;
	if (e->cs.is_dir && !is_data && hidden_dir(t, tp.p))
		return -ENOENT;
	if (e->cs.is_dir && !is_data)
		stat_dir(t, st, tp.p, &e->cs);
	else
		stat_file(t, st, tp.p, is_data, &e->cs.meta,
			  shown_size(t, tp.p, is_data, &e->cs.meta));
	return 0;
}

/* An open directory holds its entries as of the readdir at offset 0, so
 * that a listing read in several requests is one snapshot and each request
 * costs only its own entries. Offsets: 1 after ".", 2 after "..", then
 * 3 + i after entry i. For READDIRPLUS every entry comes with its
 * attributes (FUSE_FILL_DIR_PLUS), so the kernel needs no LOOKUP and
 * GETATTR per name. */
static int op_opendir(const char *path, struct fuse_file_info *fi)
{
	struct topofs *t = fs();
	struct tpath tp;
	struct cache_stat cs;
	bool found = resolve(t, path, &tp) == 0 && !tp.scratch;
	if (found && cache_stat_brief(t->cache, tp.p, &cs) == 0 &&
	    cs.meta.denied)
		return -EACCES;
	struct dir_collect *dc = calloc(1, sizeof(*dc));
	if (!dc)
		return -ENOMEM;
	fi->fh = (uintptr_t)dc;
	/* With the store's watch, a directory's listing reaches the kernel
	 * as an invalidation when it changes: the kernel may cache it. But
	 * not while the cache itself trusts it for cache_ttl only. */
	fi->cache_readdir =
	    t->watched && (!found || cache_listing_watched(t->cache, tp.p));
	fi->keep_cache = fi->cache_readdir;
	return 0;
}

static int op_releasedir(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	struct dir_collect *dc = (struct dir_collect *)(uintptr_t)fi->fh;
	if (dc) {
		collect_free(dc);
		free(dc);
	}
	return 0;
}

/* A stored node with a scratch name (another client wrote it) cannot be
 * looked up: resolve takes its path for a scratch one. Not listed either,
 * so that a scratch entry of that name is listed once. */
static int collect_stored_name(void *arg, const char *name,
			       const struct cache_stat *cs)
{
	if (scratch_match(&fs()->scratch_names, name))
		return 0;
	return collect_store(arg, name, cs);
}

/* Take a new snapshot of the entries of directory tp into dc. */
static int collect_dir(struct topofs *t, const struct tpath *tp,
		       struct dir_collect *dc)
{
	collect_free(dc);
	memset(dc, 0, sizeof(*dc));
	/* a scratch directory holds scratch entries only */
	int rc = tp->scratch
		     ? scratch_dir_ok(t, tp->p)
		     : cache_list_dir(t->cache, tp->p, collect_stored_name, dc);
	if (rc)
		return rc;
	scratch_list(&t->scratch, tp->p, collect_memory, dc);
	handle_list_new_in(&t->handles, tp->p, collect_memory, dc);
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

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
		      off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	struct topofs *t = fs();
	struct tpath tp;
	struct dir_collect *dc = (struct dir_collect *)(uintptr_t)fi->fh;
	int rc = resolve(t, path, &tp);
	if (rc)
		return rc;
	if (tp.is_data)
		return -ENOTDIR;
	if (!dc)
		return -EBADF;
	/* a new listing at offset 0 (rewinddir too), or for a seekdir on a
	 * handle that has none yet */
	if ((off == 0 || !dc->ents) && (rc = collect_dir(t, &tp, dc)))
		return rc;
	if (off < 1 && filler(buf, ".", NULL, 1, 0))
		return 0;
	if (off < 2 && filler(buf, "..", NULL, 2, 0))
		return 0;
	bool plus = flags & FUSE_READDIR_PLUS;
	for (size_t i = off > 2 ? (size_t)off - 2 : 0; i < dc->count; i++) {
		struct stat st;
		if (plus ? stat_now(path, dc->ents[i].name, &st)
			 : entry_stat(t, tp.p, &dc->ents[i], &st))
			continue; /* hidden (noephemeral) or gone meanwhile */
		if (filler(buf, dc->ents[i].name, &st, (off_t)i + 3,
			   plus ? FUSE_FILL_DIR_PLUS : 0))
			break;
	}
	return 0;
}

/* The parent of store path p must be a directory: 0, -ENOENT, -ENOTDIR. */
static int check_parent(struct topofs *t, const char *p)
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
		return check_parent(t, p);
	return scratch_dir_ok(t, parent);
}

/* mkdir of a scratch path: the directory lives in memory (SPEC 2), as do
 * the files and directories made in it; the store never sees them. */
static int mkdir_scratch(struct topofs *t, const struct tpath *tp)
{
	int rc = check_scratch_parent(t, tp->p);
	return rc ? rc : scratch_mkdir(&t->scratch, tp->p);
}

static int op_mkdir(const char *path, mode_t mode)
{
	struct topofs *t = fs();
	struct tpath tp;
	struct cache_stat cs;
	size_t pending;
	(void)mode;
	int rc = resolve(t, path, &tp);
	if (rc)
		return rc == -ENOENT ? -EINVAL : rc;
	if (tp.is_data)
		return -EINVAL; /* a directory cannot be named .topofs-data */
	if (tp.scratch)
		return mkdir_scratch(t, &tp);
	if ((rc = check_parent(t, tp.p)))
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
			return store_error(t, tp.p, rc, "created");
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

static int op_rmdir(const char *path)
{
	struct topofs *t = fs();
	struct tpath tp;
	struct cache_stat cs;
	writeback_wait(t->wb); /* the store sees writes in order */
	int rc = resolve(t, path, &tp);
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
			return store_error(t, tp.p, rc, "removed");
		rc = cache_rmdir(t->cache, tp.p);
		return rc == -ENOENT ? 0 : rc; /* a notice may have said so */
	}
	return cache_rmdir(t->cache, tp.p);
}

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
	h->pid = topofs_request()->pid;
	h->writable = (fi->flags & O_ACCMODE) != O_RDONLY;
	h->append = fi->flags & O_APPEND;
	h->view = view_type(t, tp->p, false);
	h->dirty = h->writable; /* a new file is written even when empty */
	if (h->writable && (fi->flags & O_TRUNC))
		h->len = 0;
	fi->noflush = !h->writable;
	fi->direct_io = 1; /* see ops_open_snapshot */
	fi->fh = (uintptr_t)h;
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
	fi->fh = (uintptr_t)h;
	return 0;
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
	struct topofs *t = fs();
	struct tpath tp;
	int rc = resolve(t, path, &tp);
	if (rc)
		return rc;
	return tp.scratch ? open_scratch(t, &tp, fi, false)
			  : open_store(t, &tp, fi);
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct topofs *t = fs();
	struct tpath tp;
	struct cache_stat cs;
	(void)mode;
	int rc = resolve(t, path, &tp);
	if (rc)
		return rc == -ENOENT ? -EINVAL : rc;
	if (tp.scratch)
		return open_scratch(t, &tp, fi, true);
	rc = tp.is_data ? cache_stat_brief(t->cache, tp.p, &cs)
			: check_parent(t, tp.p);
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
	h->pid = topofs_request()->pid;
	h->writable = true;
	h->append = fi->flags & O_APPEND;
	h->view = view_type(t, tp.p, tp.is_data);
	h->dirty = true;   /* a new file is written even when left empty */
	fi->direct_io = 1; /* see ops_open_snapshot */
	fi->fh = (uintptr_t)h;
	return 0;
}

static int op_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	(void)path;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	return (int)handle_read(h, buf, size, off);
}

static int op_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)path;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	pthread_mutex_lock(&h->lock);
	h->writer = topofs_request()->pid; /* see handle_close_commits */
	pthread_mutex_unlock(&h->lock);
	int rc = handle_write(h, buf, size, off, max_value(fs(), h));
	if (rc == -EFBIG)
		topo_err("%s: value over the store's limit of %zu bytes",
			 h->path, max_value(fs(), h));
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

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct topofs *t = fs();
	if (fi && fi->fh) {
		struct handle *h = (struct handle *)(uintptr_t)fi->fh;
		return handle_truncate(h, size, max_value(t, h));
	}
	struct tpath tp;
	int rc = resolve(t, path, &tp);
	return rc ? rc : truncate_path(t, &tp, size);
}

static int op_flush(const char *path, struct fuse_file_info *fi)
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
	return handle_commit(fs(), h);
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	int rc = h->writable ? handle_commit(fs(), h) : 0;
	int wrc = writeback_sync(fs()->wb);
	return rc ? rc : wrc;
}

/* fsync of a directory (`sync DIR`): with -o writeback, the queued creates
 * are applied and their failures reported. */
static int op_fsyncdir(const char *path, int datasync,
		       struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	(void)fi;
	return writeback_sync(fs()->wb);
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	/* Closes committed (op_flush), but the last one may have been a
	 * child's that did not (the process that wrote closed first): its
	 * edits are committed now. A failure is logged; no close waits. */
	if (handle_owes_commit(h))
		handle_commit(fs(), h);
	handle_free(&fs()->handles, h);
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

int ops_getattr_node(uint64_t node, struct stat *st)
{
	struct topofs *t = fs();
	struct handle h;
	char path[PATH_MAX];
	if (!handle_node(&t->handles, node, &h, path, sizeof(path)))
		return -ESTALE;
	stat_file(t, st, path, h.is_data, &h.meta, h.len);
	if (h.scratch)
		st->st_mode = S_IFREG | 0644;
	if (h.unlinked)
		st->st_nlink = 0;
	return 0;
}

/* ---- names ---- */

/* unlink of a file created through the mount and still open, which the
 * store does not hold yet: its open files forget the name (nothing is ever
 * written). -ENOENT if there is none. */
static int unlink_new_file(struct topofs *t, const struct tpath *tp)
{
	size_t len;
	if (tp->is_data || !handle_pending(&t->handles, tp->p, true, &len))
		return -ENOENT;
	return handles_unlink(&t->handles, tp->p, false) ? 0 : -ENOENT;
}

/* The name tp is gone: its open files keep their buffers, commit nothing
 * (SPEC 5), and what the process read of it is forgotten. */
static void unlinked(struct topofs *t, const struct tpath *tp)
{
	handles_unlink(&t->handles, tp->p, tp->is_data);
	handle_read_unlinked(&t->handles, tp->p, topofs_request()->pid);
}

static int op_unlink(const char *path)
{
	struct topofs *t = fs();
	struct tpath tp;
	struct cache_stat cs;
	int rc = resolve(t, path, &tp);
	if (rc)
		return rc;
	if (tp.scratch) {
		if ((rc = scratch_remove(&t->scratch, tp.p)) == 0)
			unlinked(t, &tp);
		return rc;
	}
	writeback_wait_for(t->wb, tp.p); /* its create first */
	rc = cache_stat_brief(t->cache, tp.p, &cs);
	if (rc == -ENOENT || (!rc && !cs.data_shown))
		return unlink_new_file(t, &tp);
	if (rc)
		return rc;
	if (tp.is_data && !cs.is_dir)
		return -ENOENT;
	if (cs.is_dir && !tp.is_data)
		return -EISDIR;
	if (untouchable(&cs.meta))
		return -EACCES;
	bool real_dirs = t->be->caps & TOPO_CAP_REAL_DIRS;
	if (tp.is_data && real_dirs) {
		/* a ZooKeeper node always has data: removing it empties it */
		struct topo_meta meta;
		cache_write_begin(t->cache);
		rc = t->be->put(t->st, tp.p, "", 0, cs.meta.version, &meta);
		cache_write_end(t->cache);
		if (!rc) {
			cache_note_put(t->cache, tp.p, "", 0, &meta);
			unlinked(t, &tp);
		}
		return store_error(t, tp.p, rc, "emptied");
	}
	cache_write_begin(t->cache);
	rc = t->be->del(t->st, tp.p, cs.meta.version);
	cache_write_end(t->cache);
	if (rc == 0 || rc == -ENOENT) {
		cache_note_delete(t->cache, tp.p, true);
		unlinked(t, &tp);
	}
	return store_error(t, tp.p, rc, "deleted");
}

/* rename from a scratch file to a stored name: one compare-and-set write
 * of the target, the way emacs and sed -i save. */
static int rename_scratch_to_store(struct topofs *t, const struct tpath *from,
				   const struct tpath *to, bool noreplace)
{
	struct cache_stat cs;
	unsigned char *buf;
	size_t len;
	int rc = scratch_read(&t->scratch, from->p, &buf, &len);
	if (rc)
		return rc;
	const struct proto_message *type = view_type(t, to->p, to->is_data);
	if (type) { /* the editor wrote JSON */
		unsigned char *wire;
		char err[256];
		rc = view_json_encode(type, (const char *)buf, len, &wire, &len,
				      err, sizeof(err));
		free(buf);
		if (rc) {
			topo_err("%s: not written: %s", to->p, err);
			return rc;
		}
		buf = wire;
	}
	rc = cache_stat_brief(t->cache, to->p, &cs);
	bool exists = !rc && cs.has_data;
	int64_t expect = exists ? cs.meta.version : TOPO_EXPECT_ABSENT;
	/* compare with the version the editor read, if it read through us */
	if (exists)
		handle_seen_version(&t->handles, to->p, &expect);
	if (!rc && cs.is_dir && !to->is_data)
		rc = -EISDIR;
	else if (exists && noreplace)
		rc = -EEXIST;
	else if (exists && untouchable(&cs.meta))
		rc = -EACCES;
	else if (len > t->be->max_value)
		rc = -EFBIG;
	else if ((rc = check_parent(t, to->p)) == 0 || to->is_data) {
		struct topo_meta meta;
		cache_write_begin(t->cache);
		rc = t->be->put(t->st, to->p, buf, len, expect, &meta);
		cache_write_end(t->cache);
		if (!rc) {
			meta.size = len;
			cache_note_put(t->cache, to->p, buf, len, &meta);
			scratch_remove(&t->scratch, from->p);
		}
		rc = store_error(t, to->p, rc == -EEXIST ? -ESTALE : rc,
				 "written");
	}
	free(buf);
	return rc;
}

/* rename from a stored file to a scratch name (an editor's backup): the
 * scratch file gets a copy and the key stays, so that watchers never see the
 * record vanish during a save. */
static int rename_store_to_scratch(struct topofs *t, const struct tpath *from,
				   const struct tpath *to)
{
	unsigned char *buf;
	struct topo_meta meta;
	unsigned char *shown = NULL;
	size_t len = 0;
	const struct proto_message *type;
	int rc = cache_value(t->cache, from->p, &buf, &meta);
	if (!rc) /* the backup holds what the editor read */
		rc = view_out(t, from->p, from->is_data, buf, meta.size, &shown,
			      &len, &type);
	if (!rc)
		rc = scratch_write(&t->scratch, to->p, shown, len);
	free(shown);
	if (!rc)
		handle_seen_moved(&t->handles, from->p, meta.version);
	free(buf);
	return rc;
}

/* The errno for a failed rename transaction: too big for one is EXDEV (mv
 * then copies); a target that appeared meanwhile is a conflict. */
static int multi_error(struct topofs *t, const char *path, int rc)
{
	if (rc == -E2BIG || rc == -EFBIG)
		return -EXDEV;
	return store_error(t, path, rc == -EEXIST ? -ESTALE : rc, "renamed");
}

/* Build the operations that move every node of `sub` from `from` to `to`:
 * creates first (parents before children), deletes last (children first),
 * then with `guard` one guard on `from` at the listing's revision: a node
 * another client made below `from` after the listing fails them all,
 * rather than stay behind at the old path. */
static int move_ops(const struct topo_listing *sub, const char *from,
		    const char *to, bool guard, struct topo_op *ops,
		    char **paths)
{
	size_t n = sub->count, flen = strlen(from);
	for (size_t i = 0; i < n; i++) {
		const struct topo_entry *e = &sub->entries[i];
		if (asprintf(&paths[i], "%s%s", to, e->path + flen) < 0)
			return -ENOMEM;
		ops[i] = (struct topo_op){.kind = TOPO_OP_PUT,
					  .path = paths[i],
					  .value = e->value,
					  .len = e->meta.size,
					  .expect = TOPO_EXPECT_ABSENT};
		ops[2 * n - 1 - i] =
		    (struct topo_op){.kind = TOPO_OP_DELETE,
				     .path = e->path,
				     .expect = e->meta.version};
	}
	if (guard)
		ops[2 * n] = (struct topo_op){.kind = TOPO_OP_GUARD,
					      .path = from,
					      .expect = sub->revision};
	return 0;
}

/* A directory moved from `from` to `to`: its open files follow, each onto
 * the version the store gave its value at its new path (sub's node i is
 * now paths[i], at versions[i]). */
static void move_open_files(struct topofs *t, const char *from, const char *to,
			    const struct topo_listing *sub, char *const *paths,
			    const int64_t *versions)
{
	if (handles_move(&t->handles, from, to, true))
		topo_err("%s: open files below lost track of it (no memory)",
			 from);
	for (size_t i = 0; i < sub->count; i++)
		if (versions[i] != TOPO_VERSION_UNKNOWN)
			handles_rebase(&t->handles, paths[i],
				       sub->entries[i].meta.version,
				       versions[i]);
}

/* What a directory rename moves: every stored node at or below `from`,
 * read fresh. A store that checks guards is listed directly, for the
 * revision of the listing (*guard); the others through the cache. */
static int rename_listing(struct topofs *t, const char *from,
			  struct topo_listing *sub, bool *guard)
{
	bool local_dirs;
	if (!(t->be->caps & TOPO_CAP_GUARD)) {
		*guard = false;
		return cache_subtree(t->cache, from, sub, &local_dirs);
	}
	int rc = t->be->list(t->st, from, sub);
	*guard = !rc && sub->revision > 0;
	return rc;
}

/* One attempt of a directory rename: one listing, one multi. 0, or the
 * store's errno unmapped (see multi_error); when it fails the cache is as
 * before (the subtree moved back, both paths to be read again). */
static int rename_dir_once(struct topofs *t, const struct tpath *from,
			   const struct tpath *to)
{
	struct topo_listing sub = {0};
	bool guard;
	int rc = rename_listing(t, from->p, &sub, &guard);
	if (rc)
		return rc;
	size_t n = sub.count, nops = 2 * n + guard;
	struct topo_op *ops = calloc(nops + 1, sizeof(*ops));
	char **paths = calloc(n + 1, sizeof(*paths));
	int64_t *versions = calloc(n + 1, sizeof(*versions));
	if (!ops || !paths || !versions)
		rc = -ENOMEM;
	else if (nops > t->be->max_ops)
		rc = -E2BIG; /* too big for one transaction: mv copies */
	else
		rc = move_ops(&sub, from->p, to->p, guard, ops, paths);
	for (size_t i = 0; !rc && i < n; i++) {
		versions[i] = TOPO_VERSION_UNKNOWN;
		ops[i].version_out = &versions[i];
	}
	if (!rc) {
		/* Move the cached subtree (directories made here included)
		 * first: the store's notices of the deletes may reach the cache
		 * before this thread does. */
		cache_move_subtree(t->cache, from->p, to->p);
		cache_write_begin(t->cache);
		if (nops)
			rc = t->be->multi(t->st, ops, nops);
		cache_write_end(t->cache);
		if (rc) /* nothing moved: neither do directories made here */
			cache_move_subtree(t->cache, to->p, from->p);
		cache_invalidate(t->cache, to->p);
		if (rc)
			cache_invalidate(t->cache, from->p);
		else
			move_open_files(t, from->p, to->p, &sub, paths,
					versions);
	}
	for (size_t i = 0; paths && i < n; i++)
		free(paths[i]);
	free(paths);
	free(versions);
	free(ops);
	topo_listing_free(&sub);
	return rc;
}

static int rename_dir(struct topofs *t, const struct tpath *from,
		      const struct tpath *to)
{
	int rc = rename_dir_once(t, from, to);
	/* Another client changed the directory between our listing and the
	 * transaction (a guard or a version check failed): nothing moved.
	 * Once more with a fresh listing, as a local rename that came just
	 * after that change would have moved it; a second conflict is EIO. */
	if (rc == -ESTALE && (t->be->caps & TOPO_CAP_GUARD)) {
		topo_debug("%s: changed while being renamed; once more",
			   from->p);
		rc = rename_dir_once(t, from, to);
	}
	return multi_error(t, from->p, rc);
}

/* The stored file `from` (version `old`) is now `to` (version `now`, or
 * TOPO_VERSION_UNKNOWN): the open files of `to` are of a file that is
 * gone; those of `from` follow it and compare with `now` (SPEC 5). An
 * unknown version leaves their base as it was: their commit fails (EIO)
 * rather than guess. */
static void file_moved(struct topofs *t, const struct tpath *from,
		       const struct tpath *to, int64_t old, int64_t now)
{
	pid_t pid = topofs_request()->pid;
	handles_unlink(&t->handles, to->p, to->is_data);
	if (from->is_data || to->is_data)
		return; /* a directory's own value: its open files stay */
	if (handles_move(&t->handles, from->p, to->p, false))
		topo_err("%s: open files lost track of it (no memory)",
			 from->p);
	if (now == TOPO_VERSION_UNKNOWN) {
		handle_read_unlinked(&t->handles, from->p, pid);
		return;
	}
	handles_rebase(&t->handles, to->p, old, now);
	handle_read_renamed(&t->handles, from->p, to->p, pid, old, now);
}

/* rename of a file created through the mount and still open, not yet in
 * the store: done in memory. Its open files take the new name, and their
 * commit replaces what `to` holds (compared with the version the process
 * read of it, or the one there now), in one store write at close. */
static int rename_new_file(struct topofs *t, const struct tpath *from,
			   const struct tpath *to, bool noreplace)
{
	struct cache_stat dst;
	size_t len;
	if (from->is_data || !handle_pending(&t->handles, from->p, true, &len))
		return -ENOENT;
	if (to->scratch || to->is_data)
		return -EXDEV; /* not one store name to another: mv copies */
	int rc = cache_stat_brief(t->cache, to->p, &dst);
	if (rc && rc != -ENOENT)
		return rc;
	bool exists = !rc && dst.has_data;
	if (!rc && dst.is_dir)
		return -EISDIR;
	bool pending = handle_pending(&t->handles, to->p, true, &len);
	if ((exists || pending) && noreplace)
		return -EEXIST;
	if (exists && untouchable(&dst.meta))
		return -EACCES;
	if ((rc = check_parent(t, to->p)))
		return rc;
	int64_t base = TOPO_EXPECT_ABSENT;
	if (exists &&
	    !handle_last_read(&t->handles, to->p, topofs_request()->pid, &base))
		base = dst.meta.version;
	handles_unlink(&t->handles, to->p, false); /* replaced */
	rc = handles_move_new(&t->handles, from->p, to->p, base);
	return rc < 0 ? rc : rc > 0 ? 0 : -ENOENT;
}

static int rename_file(struct topofs *t, const struct tpath *from,
		       const struct tpath *to, const struct cache_stat *src,
		       bool noreplace)
{
	unsigned char *buf;
	struct topo_meta meta;
	struct cache_stat dst;
	int rc = cache_value(t->cache, from->p, &buf, &meta);
	if (rc)
		return rc;
	int drc = cache_stat_brief(t->cache, to->p, &dst);
	bool exists = !drc && dst.has_data;
	if (!drc && dst.is_dir && !to->is_data)
		rc = -EISDIR;
	else if (exists && noreplace)
		rc = -EEXIST;
	else if (exists && untouchable(&dst.meta))
		rc = -EACCES;
	else if (!to->is_data && (rc = check_parent(t, to->p)))
		;
	else {
		int64_t now = TOPO_VERSION_UNKNOWN;
		struct topo_op ops[2] = {
		    {.kind = TOPO_OP_PUT,
		     .path = to->p,
		     .value = buf,
		     .len = meta.size,
		     .expect = exists ? dst.meta.version : TOPO_EXPECT_ABSENT,
		     .version_out = &now},
		    {.kind = TOPO_OP_DELETE,
		     .path = from->p,
		     .expect = src->meta.version},
		};
		cache_write_begin(t->cache);
		rc = t->be->multi(t->st, ops, 2);
		cache_write_end(t->cache);
		if (!rc) {
			cache_note_delete(t->cache, from->p, true);
			cache_invalidate(t->cache, to->p);
			file_moved(t, from, to, src->meta.version, now);
		}
		rc = multi_error(t, from->p, rc);
	}
	free(buf);
	return rc;
}

static int op_rename(const char *from_path, const char *to_path,
		     unsigned int flags)
{
	struct topofs *t = fs();
	struct tpath from, to;
	struct cache_stat src, dst;
	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL; /* RENAME_EXCHANGE: not one store operation */
	bool noreplace = flags & RENAME_NOREPLACE;
	writeback_wait(t->wb); /* the store sees writes in order */
	int rc = resolve(t, from_path, &from);
	if (!rc)
		rc = resolve(t, to_path, &to);
	if (rc)
		return rc;
	if (!strcmp(from.p, to.p) && from.is_data == to.is_data)
		return 0;
	if (from.scratch && to.scratch)
		return scratch_rename(&t->scratch, from.p, to.p);
	if (from.scratch && scratch_dir_ok(t, from.p) == 0)
		return -EXDEV; /* a directory in memory to the store: mv copies
				*/
	if (from.scratch)
		return rename_scratch_to_store(t, &from, &to, noreplace);
	rc = cache_stat_brief(t->cache, from.p, &src);
	if (rc == -ENOENT)
		return rename_new_file(t, &from, &to, noreplace);
	if (rc)
		return rc;
	if (src.has_data && untouchable(&src.meta))
		return -EACCES;
	if (to.scratch)
		return src.is_dir && !from.is_data
			   ? -EXDEV
			   : rename_store_to_scratch(t, &from, &to);
	if (!src.is_dir || from.is_data)
		return rename_file(t, &from, &to, &src, noreplace);
	if (path_within(to.p, from.p) || to.is_data)
		return -EINVAL;
	if (cache_stat_brief(t->cache, to.p, &dst) == 0) {
		if (noreplace)
			return -EEXIST;
		if (!dst.is_dir)
			return -ENOTDIR;
		if ((rc = op_rmdir(to_path)))
			return rc;
	}
	if ((rc = check_parent(t, to.p)))
		return rc;
	return rename_dir(t, &from, &to);
}

/* ---- the rest ---- */

static int op_statfs(const char *path, struct statvfs *sv)
{
	struct topofs *t = fs();
	uint64_t total = 2ull << 30, used = 0; /* etcd's default quota */
	(void)path;
	if (t->be->space && t->be->space(t->st, &total, &used) != 0)
		used = 0;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = sv->f_frsize = 4096;
	sv->f_blocks = total / 4096;
	sv->f_bfree = sv->f_bavail =
	    (total - (used < total ? used : total)) / 4096;
	sv->f_files = 1u << 20;
	sv->f_ffree = sv->f_favail = 1u << 20;
	sv->f_namemax = NAME_MAX;
	if (read_only(t))
		sv->f_flag |= ST_RDONLY;
	return 0;
}

/* The stores keep no modes, owners or times: succeed without effect, so
 * cp -a, tar -x and rsync -a run clean. */
static int exists(const char *path)
{
	struct stat st;
	return op_getattr(path, &st, NULL);
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)mode;
	return fi ? 0 : exists(path);
}

static int op_chown(const char *path, uid_t uid, gid_t gid,
		    struct fuse_file_info *fi)
{
	(void)uid;
	(void)gid;
	return fi ? 0 : exists(path);
}

static int op_utimens(const char *path, const struct timespec tv[2],
		      struct fuse_file_info *fi)
{
	(void)tv;
	return fi ? 0 : exists(path);
}

/* ---- extended attributes: the store's metadata, read-only (SPEC 3) ---- */

/* The attributes of a node with meta m: generic ones, then the backend's. */
static size_t node_xattrs(struct topofs *t, const struct topo_meta *m,
			  struct topo_xattr *out)
{
	out[0] = (struct topo_xattr){"user.topo.version", m->version};
	out[1] = (struct topo_xattr){"user.topo.ephemeral", m->ephemeral};
	size_t n = 2;
	if (t->be->xattrs)
		n += t->be->xattrs(m, out + n);
	return n;
}

/* The metadata behind a path's attributes. -ENOENT, or -ENODATA when the
 * node holds no value (a plain directory, a scratch file, a file being
 * created that the store does not hold yet: stat shows it, so it exists). */
static int xattr_meta(struct topofs *t, const char *path, struct topo_meta *m)
{
	struct tpath tp;
	struct cache_stat cs;
	size_t pending;
	int rc = resolve(t, path, &tp);
	if (rc)
		return rc;
	if (tp.scratch) {
		struct stat st;
		rc = stat_scratch(t, &tp, &st);
		return rc ? rc : -ENODATA;
	}
	rc = cache_stat_brief(t->cache, tp.p, &cs);
	bool absent = rc == -ENOENT || (!rc && !cs.has_data && tp.is_data);
	if (absent && handle_pending(&t->handles, tp.p, true, &pending))
		return -ENODATA;
	if (rc)
		return rc;
	if (!cs.has_data)
		return tp.is_data ? -ENOENT : -ENODATA;
	if (cs.meta.denied)
		return -EACCES;
	*m = cs.meta;
	return 0;
}

/* The mount-wide revision (-o revision/snapshot: the pinned one; else the
 * store's current one) is an attribute of the root only, on stores that
 * have one (etcd v3). */
#define XATTR_REVISION "user.topo.revision"

static bool has_revision_xattr(const struct topofs *t, const char *path)
{
	return t->be->revision && strcmp(path, "/") == 0;
}

/* An attribute's value: the number as decimal text. */
static int xattr_number(int64_t v, char *value, size_t size)
{
	char text[32];
	int len = snprintf(text, sizeof(text), "%" PRId64, v);
	if (size == 0)
		return len;
	if ((size_t)len > size)
		return -ERANGE;
	memcpy(value, text, (size_t)len);
	return len;
}

static int revision_xattr(struct topofs *t, char *value, size_t size)
{
	int64_t rev;
	bool pinned;
	int rc = t->be->revision(t->st, &rev, &pinned);
	if (rc)
		return rc == -ENOMEM ? rc : -EIO;
	return xattr_number(rev, value, size);
}

static int op_getxattr(const char *path, const char *name, char *value,
		       size_t size)
{
	struct topofs *t = fs();
	struct topo_meta m;
	struct topo_xattr xa[2 + TOPO_XATTR_MAX];
	if (has_revision_xattr(t, path) && strcmp(name, XATTR_REVISION) == 0)
		return revision_xattr(t, value, size);
	int rc = xattr_meta(t, path, &m);
	if (rc)
		return rc;
	size_t n = node_xattrs(t, &m, xa);
	for (size_t i = 0; i < n; i++)
		if (strcmp(xa[i].name, name) == 0)
			return xattr_number(xa[i].value, value, size);
	return -ENODATA;
}

static int op_listxattr(const char *path, char *list, size_t size)
{
	struct topofs *t = fs();
	struct topo_meta m;
	struct topo_xattr xa[3 + TOPO_XATTR_MAX];
	int rc = xattr_meta(t, path, &m);
	if (rc && rc != -ENODATA)
		return rc;
	size_t n = rc ? 0 : node_xattrs(t, &m, xa), need = 0;
	if (has_revision_xattr(t, path))
		xa[n++] = (struct topo_xattr){XATTR_REVISION, 0};
	for (size_t i = 0; i < n; i++)
		need += strlen(xa[i].name) + 1;
	if (size == 0)
		return (int)need;
	if (need > size)
		return -ERANGE;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(xa[i].name) + 1;
		memcpy(list, xa[i].name, len);
		list += len;
	}
	return (int)need;
}

/* The attributes are the store's; nothing can set them. ENOTSUP lets cp -a
 * and rsync -X go on quietly. */
static int op_setxattr(const char *path, const char *name, const char *value,
		       size_t size, int flags)
{
	(void)path, (void)name, (void)value, (void)size, (void)flags;
	return -ENOTSUP;
}

static int op_removexattr(const char *path, const char *name)
{
	(void)path, (void)name;
	return -ENOTSUP;
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
	struct topofs *t = fs();
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

void topofs_invalidate(struct topofs *t, const char *p, enum topofs_inval kind)
{
	/* A reply being built from the cache as it was may carry what this
	 * change replaced: it must know now, not when the notifier's thread
	 * gets to it (that thread may wait long for the kernel's locks). */
	lowlevel_note_change(t->ll);
	/* Done at once, and again a little later: a LOOKUP or READDIRPLUS
	 * answered just before the change may reach the kernel's caches just
	 * after the first invalidation (lowlevel.c). */
	notifier_push(t->notifier, p, kind);
	notifier_push(t->renotifier, p, kind);
}

void topofs_invalidate_later(struct topofs *t, const char *p,
			     enum topofs_inval kind)
{
	notifier_push(t->renotifier, p, kind);
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
