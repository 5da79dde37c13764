/*
 * ops_internal.h - what the files of the FUSE operations (ops*.c) share:
 * the path they resolve, a few helpers, and the operations that topofs_ops
 * (ops.c) lists. Not for the rest of fs/: they reach the operations through
 * topofs_ops and topofs.h.
 *
 * Return values follow libfuse, as in ops.c: 0 or a negative errno.
 */
#ifndef TOPOFS_OPS_INTERNAL_H
#define TOPOFS_OPS_INTERNAL_H

#include <fuse.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "topofs.h"

/* A FUSE path resolved to the store. */
struct tpath {
	char p[PATH_MAX];
	bool is_data; /* DIR/.topofs-data: the directory node's own value */
	bool scratch; /* an editor scratch name: memory only */
};

/* ---- ops.c: shared by every operation ---- */

/* The mount the calling thread's request is for (topofs_request()->t). */
struct topofs *ops_fs(void);

/* Resolve FUSE path fuse_path into *tp: 0, -ENOENT, -ENAMETOOLONG. */
int ops_resolve(struct topofs *t, const char *fuse_path, struct tpath *tp);

/* Whether the mount is read-only (-o ro, or pinned to a revision). */
bool ops_read_only(const struct topofs *t);

/* The errno for store write rc at path (-ESTALE: -EIO), failures logged as
 * "not <what>". */
int ops_store_error(struct topofs *t, const char *path, int rc,
		    const char *what);

/* ---- ops_attr_dir.c: attributes and directories ---- */

/* Fill *st for the file at store path (its .topofs-data if is_data). */
void ops_stat_file(struct topofs *t, struct stat *st, const char *path,
		   bool is_data, const struct topo_meta *meta, size_t size);

/* Fill *st for scratch path tp (memory only): 0 or -ENOENT. */
int ops_stat_scratch(struct topofs *t, const struct tpath *tp, struct stat *st);

/* 0 if scratch path p is a directory; -ENOENT, -ENOTDIR. */
int ops_scratch_dir_ok(struct topofs *t, const char *p);

/* The parent of store path p must be a directory: 0, -ENOENT, -ENOTDIR. */
int ops_check_parent(struct topofs *t, const char *p);

/* The operations topofs_ops lists, each with libfuse's contract. */
int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi);
int op_opendir(const char *path, struct fuse_file_info *fi);
int op_releasedir(const char *path, struct fuse_file_info *fi);
int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
	       struct fuse_file_info *fi, enum fuse_readdir_flags flags);
int op_mkdir(const char *path, mode_t mode);
int op_rmdir(const char *path);

/* ---- ops_file.c: open files ---- */

int op_open(const char *path, struct fuse_file_info *fi);
int op_create(const char *path, mode_t mode, struct fuse_file_info *fi);
int op_read(const char *path, char *buf, size_t size, off_t off,
	    struct fuse_file_info *fi);
int op_write(const char *path, const char *buf, size_t size, off_t off,
	     struct fuse_file_info *fi);
int op_truncate(const char *path, off_t size, struct fuse_file_info *fi);
int op_flush(const char *path, struct fuse_file_info *fi);
int op_fsync(const char *path, int datasync, struct fuse_file_info *fi);
int op_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi);
int op_release(const char *path, struct fuse_file_info *fi);

/* ---- ops_name.c: names ---- */

int op_unlink(const char *path);
int op_rename(const char *from_path, const char *to_path, unsigned int flags);

/* ---- ops_meta.c: metadata: statfs, modes and times, extended attributes */

int op_statfs(const char *path, struct statvfs *sv);
int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi);
int op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi);
int op_utimens(const char *path, const struct timespec tv[2],
	       struct fuse_file_info *fi);
int op_getxattr(const char *path, const char *name, char *value, size_t size);
int op_listxattr(const char *path, char *list, size_t size);
int op_setxattr(const char *path, const char *name, const char *value,
		size_t size, int flags);
int op_removexattr(const char *path, const char *name);

#endif
