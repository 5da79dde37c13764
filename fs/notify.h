/*
 * notify.h - telling the kernel what changed in the store.
 *
 * Change notices arrive on a backend's thread. Invalidating the kernel's
 * cache writes to /dev/fuse and may wait on the kernel; so notices only
 * queue FUSE paths here, and one thread of ours hands them to
 * fuse_invalidate_path(). No backend thread ever waits for the kernel.
 */
#ifndef TOPOFS_NOTIFY_H
#define TOPOFS_NOTIFY_H

struct fuse;
struct notifier;

/* Start the thread. NULL on failure (then nothing is invalidated). */
struct notifier *notifier_start(struct fuse *f);

/* Queue the invalidation of FUSE path `path` ("/a/b"); drops it on ENOMEM. */
void notifier_push(struct notifier *n, const char *path);

/* Finish what is queued, stop the thread and free everything. NULL is ok. */
void notifier_stop(struct notifier *n);

#endif
