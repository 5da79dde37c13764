/*
 * ops_name.c - the FUSE operations on names: unlink, and rename of files,
 * of directories (one store transaction), of scratch files (an editor's
 * save) and of new files not yet in the store. See ops.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>

#include "ops_internal.h"
#include "topofs.h"
#include "topofs/log.h"
#include "view_json.h"

/* ---- names ---- */

/* A node whose value this mount never changes (EACCES): an ephemeral one
 * (a Vitess lock or election) or one the store will not show us. */
static bool untouchable(const struct topo_meta *m)
{
	return m->ephemeral || m->denied;
}

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

int op_unlink(const char *path)
{
	struct topofs *t = ops_fs();
	struct tpath tp;
	struct cache_stat cs;
	int rc = ops_resolve(t, path, &tp);
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
		return ops_store_error(t, tp.p, rc, "emptied");
	}
	cache_write_begin(t->cache);
	rc = t->be->del(t->st, tp.p, cs.meta.version);
	cache_write_end(t->cache);
	if (rc == 0 || rc == -ENOENT) {
		cache_note_delete(t->cache, tp.p, true);
		unlinked(t, &tp);
	}
	return ops_store_error(t, tp.p, rc, "deleted");
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
	else if ((rc = ops_check_parent(t, to->p)) == 0 || to->is_data) {
		struct topo_meta meta;
		cache_write_begin(t->cache);
		rc = t->be->put(t->st, to->p, buf, len, expect, &meta);
		cache_write_end(t->cache);
		if (!rc) {
			meta.size = len;
			cache_note_put(t->cache, to->p, buf, len, &meta);
			scratch_remove(&t->scratch, from->p);
		}
		rc = ops_store_error(t, to->p, rc == -EEXIST ? -ESTALE : rc,
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
	return ops_store_error(t, path, rc == -EEXIST ? -ESTALE : rc,
			       "renamed");
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
	if ((rc = ops_check_parent(t, to->p)))
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
	else if (!to->is_data && (rc = ops_check_parent(t, to->p)))
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

int op_rename(const char *from_path, const char *to_path, unsigned int flags)
{
	struct topofs *t = ops_fs();
	struct tpath from, to;
	struct cache_stat src, dst;
	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL; /* RENAME_EXCHANGE: not one store operation */
	bool noreplace = flags & RENAME_NOREPLACE;
	writeback_wait(t->wb); /* the store sees writes in order */
	int rc = ops_resolve(t, from_path, &from);
	if (!rc)
		rc = ops_resolve(t, to_path, &to);
	if (rc)
		return rc;
	if (!strcmp(from.p, to.p) && from.is_data == to.is_data)
		return 0;
	if (from.scratch && to.scratch)
		return scratch_rename(&t->scratch, from.p, to.p);
	if (from.scratch && ops_scratch_dir_ok(t, from.p) == 0)
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
	if ((rc = ops_check_parent(t, to.p)))
		return rc;
	return rename_dir(t, &from, &to);
}
