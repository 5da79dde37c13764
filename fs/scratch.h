/*
 * scratch.h - editor scratch files (swap, backup, lock files): they live in
 * the mount's memory only and never reach the store (SPEC 5).
 */
#ifndef TOPOFS_SCRATCH_H
#define TOPOFS_SCRATCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct sfile {
	char *path; /* store path, owned */
	unsigned char *data;
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

/* Create an empty file; -EEXIST if present and excl, else truncate it. */
int scratch_create(struct scratch_files *s, const char *path, bool excl);

/* Its length and mtime; -ENOENT. */
int scratch_stat(struct scratch_files *s, const char *path, size_t *len,
		 struct timespec *mtime);

/* A copy of its data (*buf malloc'd, NULL when empty); -ENOENT. */
int scratch_read(struct scratch_files *s, const char *path, unsigned char **buf,
		 size_t *len);

/* Replace its data (create it when absent). */
int scratch_write(struct scratch_files *s, const char *path, const void *buf,
		  size_t len);

int scratch_remove(struct scratch_files *s, const char *path);
int scratch_rename(struct scratch_files *s, const char *from, const char *to);

/* Call fn(arg, name) for every scratch file directly in dir. */
void scratch_list(struct scratch_files *s, const char *dir,
		  void (*fn)(void *arg, const char *name), void *arg);

#endif
