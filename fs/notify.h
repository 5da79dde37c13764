/*
 * notify.h - work queued by change notices, done on a thread of ours.
 *
 * Change notices arrive on a backend's thread, which must never wait for
 * the kernel or the store. So notices only queue paths here, and one
 * thread per queue hands each to the queue's function once it is due:
 * the kernel's invalidations (lowlevel_notify.c; due at once, and again a
 * little later), or a re-check of a directory in the store (due after a delay).
 * Invalidations never come from a request handler's thread either: the
 * kernel may hold, while it waits for the reply, the very inode lock an
 * invalidation takes.
 */
#ifndef TOPOFS_NOTIFY_H
#define TOPOFS_NOTIFY_H

#include <stdbool.h>

/* The work for one path and kind of work (the pusher's number); runs on
 * the queue's thread. */
typedef void (*notifier_fn)(void *arg, const char *path, int kind);

struct notifier;

/* Start a queue whose items are due delay_ms after they are pushed.
 * NULL on failure (then nothing queued is ever done). */
struct notifier *notifier_start(notifier_fn fn, void *arg, unsigned delay_ms);

/* Queue `path` with `kind`: true, or false if dropped (ENOMEM, a stopped
 * queue, NULL n). */
bool notifier_push(struct notifier *n, const char *path, int kind);

/* Stop the thread, first doing what is queued (without waiting for the
 * delays) if `drain`, else dropping it; pushes from now on are dropped.
 * NULL is ok. */
void notifier_stop(struct notifier *n, bool drain);

/* Free a stopped queue. NULL is ok. */
void notifier_free(struct notifier *n);

#endif
