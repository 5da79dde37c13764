/* notify.c - see notify.h. A mutex-guarded FIFO and one thread. Every item
 * waits the same delay, so the FIFO is also in order of due time. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "notify.h"

struct note {
	struct note *next;
	uint64_t due_ms;
	int kind;
	char path[];
};

struct notifier {
	notifier_fn fn;
	void *arg;
	unsigned delay_ms;
	pthread_t thread;

	pthread_mutex_t lock; /* guards the fields below */
	pthread_cond_t wake;  /* on CLOCK_MONOTONIC */
	struct note *head, *tail;
	bool stopping;
	bool drain; /* at stop: do what is queued (else drop it) */
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait for the head to be due (or for stop). Called with lock held. */
static void wait_due(struct notifier *n)
{
	while (n->head && !n->stopping) {
		uint64_t due = n->head->due_ms;
		if (now_ms() >= due)
			return;
		struct timespec ts = {.tv_sec = (time_t)(due / 1000),
				      .tv_nsec = (long)(due % 1000) * 1000000};
		pthread_cond_timedwait(&n->wake, &n->lock, &ts);
	}
}

static void *notifier_main(void *arg)
{
	struct notifier *n = arg;
	pthread_mutex_lock(&n->lock);
	for (;;) {
		while (!n->head && !n->stopping)
			pthread_cond_wait(&n->wake, &n->lock);
		wait_due(n);
		struct note *note = n->head;
		if (!note || (n->stopping && !n->drain))
			break; /* stopping: drained, or what is left dropped */
		n->head = note->next;
		if (!n->head)
			n->tail = NULL;
		pthread_mutex_unlock(&n->lock);
		n->fn(n->arg, note->path, note->kind);
		free(note);
		pthread_mutex_lock(&n->lock);
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

struct notifier *notifier_start(notifier_fn fn, void *arg, unsigned delay_ms)
{
	struct notifier *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->fn = fn;
	n->arg = arg;
	n->delay_ms = delay_ms;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&n->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&n->lock, NULL);
	if (pthread_create(&n->thread, NULL, notifier_main, n) != 0) {
		pthread_cond_destroy(&n->wake);
		pthread_mutex_destroy(&n->lock);
		free(n);
		return NULL;
	}
	return n;
}

bool notifier_push(struct notifier *n, const char *path, int kind)
{
	if (!n)
		return false;
	size_t len = strlen(path) + 1;
	struct note *note = malloc(sizeof(*note) + len);
	if (!note)
		return false;
	note->next = NULL;
	note->due_ms = now_ms() + n->delay_ms;
	note->kind = kind;
	memcpy(note->path, path, len);
	pthread_mutex_lock(&n->lock);
	if (n->stopping) {
		pthread_mutex_unlock(&n->lock);
		free(note);
		return false;
	}
	if (n->tail)
		n->tail->next = note;
	else
		n->head = note;
	n->tail = note;
	pthread_cond_signal(&n->wake);
	pthread_mutex_unlock(&n->lock);
	return true;
}

void notifier_stop(struct notifier *n, bool drain)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	bool join = !n->stopping;
	n->stopping = true;
	n->drain = drain;
	pthread_cond_signal(&n->wake);
	pthread_mutex_unlock(&n->lock);
	if (join)
		pthread_join(n->thread, NULL);
}

void notifier_free(struct notifier *n)
{
	if (!n)
		return;
	notifier_stop(n, false);
	while (n->head) {
		struct note *note = n->head;
		n->head = note->next;
		free(note);
	}
	pthread_cond_destroy(&n->wake);
	pthread_mutex_destroy(&n->lock);
	free(n);
}
