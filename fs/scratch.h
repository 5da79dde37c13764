/*
 * scratch.h - editor scratch files (swap, backup, lock files): they live in
 * the mount's memory only and never reach the store (SPEC 5).
 *
 * A directory with a scratch name lives here too (SPEC 2), and so does
 * everything below it, whatever its name: a file or directory made in a
 * scratch directory is a scratch entry (path.h: scratch_in_path). Paths are
 * store paths; the parent of an entry is a directory of the store or a
 * scratch directory (the caller checks).
 */
#ifndef TOPOFS_SCRATCH_H
#define TOPOFS_SCRATCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct sfile {
	char *path; /* store path, owned */
	bool is_dir;
	unsigned char *data; /* a file's */
	size_t len;
	struct timespec mtime;
	struct sfile *next;
};

struct scratch_files {
	pthread_mutex_t lock; /* guards head and every sfile */
	struct sfile *head;
};

void scratch_init(struct scratch_files *s);
void scratch_destroy(struct scratch_files *s);

/* Create an empty file; -EEXIST if present and excl, else truncate it;
 * -EISDIR for a directory. */
int scratch_create(struct scratch_files *s, const char *path, bool excl);

/* What scratch_stat tells of an entry. */
struct scratch_info {
	bool is_dir;
	size_t len;	/* a file's length */
	size_t subdirs; /* the directories directly in a directory */
	struct timespec mtime;
};

/* -ENOENT if there is no such entry. */
int scratch_stat(struct scratch_files *s, const char *path,
		 struct scratch_info *info);

/* A copy of its data (*buf malloc'd, NULL when empty); -ENOENT, -EISDIR. */
int scratch_read(struct scratch_files *s, const char *path, unsigned char **buf,
		 size_t *len);

/* Replace its data (create it when absent); -EISDIR. */
int scratch_write(struct scratch_files *s, const char *path, const void *buf,
		  size_t len);

/* Remove a file: -ENOENT, -EISDIR. */
int scratch_remove(struct scratch_files *s, const char *path);

/* Make an empty directory: -EEXIST (a file or directory), -ENOMEM. */
int scratch_mkdir(struct scratch_files *s, const char *path);

/* Remove an empty directory: -ENOENT, -ENOTDIR, -ENOTEMPTY. */
int scratch_rmdir(struct scratch_files *s, const char *path);

/* Rename a file, or a directory with all below it, as rename(2): replaces
 * a file by a file or an empty directory by a directory; -ENOENT, -EINVAL
 * (to below from), -EISDIR, -ENOTDIR, -ENOTEMPTY, -ENOMEM. */
int scratch_rename(struct scratch_files *s, const char *from, const char *to);

/* Call fn(arg, name) for every scratch file or directory directly in dir. */
void scratch_list(struct scratch_files *s, const char *dir,
		  void (*fn)(void *arg, const char *name), void *arg);

#endif
