/* notify.c - see notify.h. A mutex-guarded FIFO and one thread. */
#include <errno.h>
#include <fuse.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "notify.h"

struct note {
	struct note *next;
	char path[]; /* FUSE path */
};

struct notifier {
	struct fuse *fuse;
	pthread_t thread;

	pthread_mutex_t lock; /* guards the fields below */
	pthread_cond_t wake;
	struct note *head, *tail;
	bool stopping;
};

static void *notifier_main(void *arg)
{
	struct notifier *n = arg;
	pthread_mutex_lock(&n->lock);
	for (;;) {
		while (!n->head && !n->stopping)
			pthread_cond_wait(&n->wake, &n->lock);
		struct note *note = n->head;
		if (!note)
			break; /* stopping, queue drained */
		n->head = note->next;
		if (!n->head)
			n->tail = NULL;
		pthread_mutex_unlock(&n->lock);
		/* -ENOENT: the kernel holds nothing for that path: fine */
		fuse_invalidate_path(n->fuse, note->path);
		free(note);
		pthread_mutex_lock(&n->lock);
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

struct notifier *notifier_start(struct fuse *f)
{
	struct notifier *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->fuse = f;
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->wake, NULL);
	if (pthread_create(&n->thread, NULL, notifier_main, n) != 0) {
		pthread_cond_destroy(&n->wake);
		pthread_mutex_destroy(&n->lock);
		free(n);
		return NULL;
	}
	return n;
}

void notifier_push(struct notifier *n, const char *path)
{
	if (!n)
		return;
	size_t len = strlen(path) + 1;
	struct note *note = malloc(sizeof(*note) + len);
	if (!note)
		return;
	note->next = NULL;
	memcpy(note->path, path, len);
	pthread_mutex_lock(&n->lock);
	if (n->tail)
		n->tail->next = note;
	else
		n->head = note;
	n->tail = note;
	pthread_cond_signal(&n->wake);
	pthread_mutex_unlock(&n->lock);
}

void notifier_stop(struct notifier *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	n->stopping = true;
	pthread_cond_signal(&n->wake);
	pthread_mutex_unlock(&n->lock);
	pthread_join(n->thread, NULL);
	pthread_cond_destroy(&n->wake);
	pthread_mutex_destroy(&n->lock);
	free(n);
}
