/*
 * lowlevel_internal.h - the state that lowlevel.c (the kernel's requests)
 * and lowlevel_notify.c (the kernel told of changes) share.
 */
#ifndef TOPOFS_LOWLEVEL_INTERNAL_H
#define TOPOFS_LOWLEVEL_INTERNAL_H

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "inode.h"

struct topofs;
struct deploy;

/* The kernel's side of a mount (lowlevel.h). The sections named below are
 * those of lowlevel.c's top comment. */
struct lowlevel {
	struct topofs *t;      /* the mount's (in a deployment: global/) */
	struct deploy *deploy; /* -o cells (deploy.h), else NULL */
	struct fuse_session *se;
	struct inode_table *inodes;
	pthread_rwlock_t names; /* see Concurrency */

	/* the kernel's cache policy (op_init), set by INIT */
	double entry_timeout, attr_timeout, negative_timeout;
	double race_timeout; /* for replies that raced an invalidation */
	bool keep_pages;     /* file pages kept across opens */
	bool no_open;	     /* OPEN answered ENOSYS: see Zero-message opens */
	bool no_opendir;     /* OPENDIR too */

	atomic_bool stopped; /* lowlevel_stop: no more invalidations */
};

#endif
