/* scratch.c - see scratch.h. A list: there are a handful of these files. */
#include <errno.h>
#include <stdio.h>
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
	} else if (f && f->is_dir) {
		rc = -EISDIR;
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

/* True if e lies directly in directory dir. */
static bool directly_in(const struct sfile *e, const char *dir)
{
	size_t dlen = strlen(dir);
	return path_parent_len(e->path) == dlen &&
	       strncmp(e->path, dir, dlen) == 0 && e->path[dlen] != '\0';
}

/* The directories directly in dir. Lock held. */
static size_t count_subdirs(const struct scratch_files *s, const char *dir)
{
	size_t n = 0;
	for (const struct sfile *e = s->head; e; e = e->next)
		n += e->is_dir && directly_in(e, dir);
	return n;
}

/* True if anything lies below path. Lock held. */
static bool has_children(const struct scratch_files *s, const char *path)
{
	for (const struct sfile *e = s->head; e; e = e->next)
		if (path_within(e->path, path) && strcmp(e->path, path) != 0)
			return true;
	return false;
}

int scratch_stat(struct scratch_files *s, const char *path,
		 struct scratch_info *info)
{
	pthread_mutex_lock(&s->lock);
	struct sfile *f = *find(s, path);
	if (f) {
		info->is_dir = f->is_dir;
		info->len = f->len;
		info->subdirs = f->is_dir ? count_subdirs(s, path) : 0;
		info->mtime = f->mtime;
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
	} else if (f->is_dir) {
		rc = -EISDIR;
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
	if (f && f->is_dir) {
		rc = -EISDIR;
	} else if (f) {
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

/* Remove the entry at path if it is a directory (`dir`) or a file. */
static int remove_entry(struct scratch_files *s, const char *path, bool dir)
{
	int rc = 0;
	pthread_mutex_lock(&s->lock);
	struct sfile **p = find(s, path), *f = *p;
	if (!f)
		rc = -ENOENT;
	else if (f->is_dir != dir)
		rc = dir ? -ENOTDIR : -EISDIR;
	else if (dir && has_children(s, path))
		rc = -ENOTEMPTY;
	else
		*p = f->next;
	pthread_mutex_unlock(&s->lock);
	if (!rc)
		sfile_free(f);
	return rc;
}

int scratch_remove(struct scratch_files *s, const char *path)
{
	return remove_entry(s, path, false);
}

int scratch_mkdir(struct scratch_files *s, const char *path)
{
	int rc = 0;
	pthread_mutex_lock(&s->lock);
	struct sfile *f = *find(s, path);
	if (f)
		rc = -EEXIST;
	else if ((f = add(s, path)))
		f->is_dir = true;
	else
		rc = -ENOMEM;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int scratch_rmdir(struct scratch_files *s, const char *path)
{
	return remove_entry(s, path, true);
}

/* Whether f may be renamed over old (NULL: nothing there), as rename(2)
 * says. Lock held. */
static int rename_check(const struct scratch_files *s, const struct sfile *f,
			const struct sfile *old)
{
	if (!old)
		return 0;
	if (f->is_dir && !old->is_dir)
		return -ENOTDIR;
	if (!f->is_dir && old->is_dir)
		return -EISDIR;
	return old->is_dir && has_children(s, old->path) ? -ENOTEMPTY : 0;
}

/* The new paths of from and of every entry below it, in list order (NULL
 * on -ENOMEM): the whole rename is allocated before anything moves. Lock
 * held. */
static int new_paths(const struct scratch_files *s, const char *from,
		     const char *to, char ***paths)
{
	size_t n = 0, i = 0, flen = strlen(from);
	for (const struct sfile *e = s->head; e; e = e->next)
		n += path_within(e->path, from);
	char **out = calloc(n, sizeof(*out));
	for (const struct sfile *e = s->head; out && e; e = e->next) {
		if (!path_within(e->path, from))
			continue;
		if (asprintf(&out[i], "%s%s", to, e->path + flen) < 0) {
			while (i > 0)
				free(out[--i]);
			free(out);
			out = NULL;
		} else {
			i++;
		}
	}
	*paths = out;
	return out ? 0 : -ENOMEM;
}

/* Give from (not an entry's own path) and every entry below it its new
 * path. Lock held. */
static void move_entries(struct scratch_files *s, const char *from,
			 char **paths)
{
	size_t i = 0;
	for (struct sfile *e = s->head; e; e = e->next)
		if (path_within(e->path, from)) {
			free(e->path);
			e->path = paths[i++];
		}
}

int scratch_rename(struct scratch_files *s, const char *from, const char *to)
{
	if (strcmp(from, to) != 0 && path_within(to, from))
		return -EINVAL; /* into itself */
	char **paths = NULL;
	pthread_mutex_lock(&s->lock);
	struct sfile *f = *find(s, from), **q = find(s, to), *old = *q;
	int rc = !f ? -ENOENT : old == f ? 0 : rename_check(s, f, old);
	if (!rc && old != f)
		rc = new_paths(s, from, to, &paths);
	if (!rc && old != f) {
		if (old) {
			*q = old->next;
			sfile_free(old);
		}
		move_entries(s, from, paths);
	}
	pthread_mutex_unlock(&s->lock);
	free(paths);
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
