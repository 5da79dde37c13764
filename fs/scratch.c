/* scratch.c - see scratch.h. A list: there are a handful of these files. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "path.h"
#include "scratch.h"

void scratch_init(struct scratch_files *s)
{
	pthread_mutex_init(&s->lock, NULL);
	s->head = NULL;
}

static void sfile_free(struct sfile *f)
{
	free(f->path);
	free(f->data);
	free(f);
}

void scratch_destroy(struct scratch_files *s)
{
	while (s->head) {
		struct sfile *f = s->head;
		s->head = f->next;
		sfile_free(f);
	}
	pthread_mutex_destroy(&s->lock);
}

/* The link pointing at `path`'s entry (or the list's end). Lock held. */
static struct sfile **find(struct scratch_files *s, const char *path)
{
	struct sfile **p = &s->head;
	while (*p && strcmp((*p)->path, path) != 0)
		p = &(*p)->next;
	return p;
}

static struct sfile *add(struct scratch_files *s, const char *path)
{
	struct sfile *f = calloc(1, sizeof(*f));
	if (!f || !(f->path = strdup(path))) {
		free(f);
		return NULL;
	}
	clock_gettime(CLOCK_REALTIME, &f->mtime);
	f->next = s->head;
	s->head = f;
	return f;
}

int scratch_create(struct scratch_files *s, const char *path, bool excl)
{
	int rc = 0;
	pthread_mutex_lock(&s->lock);
	struct sfile *f = *find(s, path);
	if (f && excl) {
		rc = -EEXIST;
	} else if (f) {
		free(f->data);
		f->data = NULL;
		f->len = 0;
		clock_gettime(CLOCK_REALTIME, &f->mtime);
	} else if (!add(s, path)) {
		rc = -ENOMEM;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int scratch_stat(struct scratch_files *s, const char *path, size_t *len,
		 struct timespec *mtime)
{
	pthread_mutex_lock(&s->lock);
	struct sfile *f = *find(s, path);
	if (f) {
		*len = f->len;
		*mtime = f->mtime;
	}
	pthread_mutex_unlock(&s->lock);
	return f ? 0 : -ENOENT;
}

int scratch_read(struct scratch_files *s, const char *path, unsigned char **buf,
		 size_t *len)
{
	int rc = 0;
	*buf = NULL;
	*len = 0;
	pthread_mutex_lock(&s->lock);
	struct sfile *f = *find(s, path);
	if (!f) {
		rc = -ENOENT;
	} else if (f->len) {
		*buf = malloc(f->len);
		if (*buf) {
			memcpy(*buf, f->data, f->len);
			*len = f->len;
		} else {
			rc = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int scratch_write(struct scratch_files *s, const char *path, const void *buf,
		  size_t len)
{
	unsigned char *copy = len ? malloc(len) : NULL;
	if (len && !copy)
		return -ENOMEM;
	if (len)
		memcpy(copy, buf, len);
	int rc = 0;
	pthread_mutex_lock(&s->lock);
	struct sfile *f = *find(s, path);
	if (!f)
		f = add(s, path);
	if (f) {
		free(f->data);
		f->data = copy;
		f->len = len;
		clock_gettime(CLOCK_REALTIME, &f->mtime);
		copy = NULL;
	} else {
		rc = -ENOMEM;
	}
	pthread_mutex_unlock(&s->lock);
	free(copy);
	return rc;
}

int scratch_remove(struct scratch_files *s, const char *path)
{
	pthread_mutex_lock(&s->lock);
	struct sfile **p = find(s, path), *f = *p;
	if (f)
		*p = f->next;
	pthread_mutex_unlock(&s->lock);
	if (f)
		sfile_free(f);
	return f ? 0 : -ENOENT;
}

int scratch_rename(struct scratch_files *s, const char *from, const char *to)
{
	char *newpath = strdup(to);
	if (!newpath)
		return -ENOMEM;
	int rc = 0;
	pthread_mutex_lock(&s->lock);
	struct sfile **p = find(s, from), *f = *p;
	if (!f) {
		rc = -ENOENT;
	} else {
		struct sfile **q = find(s, to), *old = *q;
		if (old && old != f) {
			*q = old->next;
			sfile_free(old);
		}
		free(f->path);
		f->path = newpath;
		newpath = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	free(newpath);
	return rc;
}

void scratch_list(struct scratch_files *s, const char *dir,
		  void (*fn)(void *arg, const char *name), void *arg)
{
	size_t dlen = strlen(dir);
	pthread_mutex_lock(&s->lock);
	for (struct sfile *f = s->head; f; f = f->next)
		if (path_parent_len(f->path) == dlen &&
		    strncmp(f->path, dir, dlen) == 0)
			fn(arg, path_basename(f->path));
	pthread_mutex_unlock(&s->lock);
}
