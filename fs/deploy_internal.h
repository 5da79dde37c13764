/*
 * deploy_internal.h - what deploy.c (parts, following the CellInfo
 * records) and deploy_top.c (routing, the top directory's operations)
 * share. See deploy.c's top comment for the states, locks and lifetimes.
 */
#ifndef TOPOFS_DEPLOY_INTERNAL_H
#define TOPOFS_DEPLOY_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "deploy.h"
#include "notify.h"
#include "options.h"
#include "topofs.h"

#define DEPLOY_GLOBAL "global" /* the global root's top directory */

enum part_state { PART_CONNECTING, PART_DOWN, PART_UP };

struct deploy_part {
	struct deploy *d;
	char *name;		 /* its top directory's name */
	struct topofs *t;	 /* &fs for a cell; main.c's for global */
	struct topofs fs;	 /* a cell's filesystem (fs.st once UP) */
	struct topofs_opts opts; /* a cell's: the global's options, with its
				    CellInfo's servers and root (its own
				    strings) and its own pinned revision */
	bool inited;		 /* fs's scratch and handle lists made */
	pthread_t connector;	 /* connects it while not UP */
	bool connector_started;

	/* guarded by d->lock */
	enum part_state state;
	long holds;   /* requests in flight, open files and directories */
	bool stop;    /* the connector must end */
	bool retired; /* no longer listed: freed once not held */
	struct deploy_part *next;
};

struct deploy {
	struct topofs *global; /* main.c's: global/ */
	struct lowlevel *ll;
	const char *filter;	 /* -o cells=A,B (main.c's string), or NULL */
	bool snapshot;		 /* pin each cell's store when connected */
	struct timespec started; /* the top directories' times */
	struct notifier *top_now,
	    *top_later;	   /* the kernel told of top-level
			      names (lowlevel_invalidate_top) */
	char **complaints; /* what was logged about a cell (complain_once);
			      guarded by reconcile_lock */
	size_t ncomplaints;

	pthread_mutex_t reconcile_lock; /* one deploy_reconcile at a time */
	pthread_mutex_t lock;		/* guards what follows */
	pthread_cond_t changed;	   /* a part's state changed, or it must stop */
	pthread_cond_t wake;	   /* the reconciler: stop, or a part to free */
	struct deploy_part *parts; /* listed: global first, then the cells
				      in byte order */
	struct deploy_part *retired; /* freed once no one holds them */
	bool stopping;
	pthread_t reconciler;
	bool reconciler_started;
};

/* The listed part named `name`, or NULL. Under d->lock. */
struct deploy_part *deploy_find(struct deploy *d, const char *name);

/* Whether cell `name` may be shown: not "global" (Vitess reserves it),
 * and named by -o cells=A,B if given. */
bool deploy_wants(const struct deploy *d, const char *name);

/* Parse a topodata.CellInfo record (v, len bytes): its server_address
 * and root (trailing slashes dropped) in *servers and *root, malloc'd,
 * which the caller frees even on failure. 0, or -EINVAL with the reason in
 * *why: not a CellInfo, no server address, no absolute root. */
int deploy_parse_cellinfo(const unsigned char *v, size_t len, char **servers,
			  char **root, const char **why);

/* Read the CellInfo records now and follow them (deploy.c's top comment). */
void deploy_reconcile(struct deploy *d);

/* Stop and free part p (a cell's): its connector ended, its store
 * stopped. Returns how many queued creates failed. NULL is ok. */
size_t part_free(struct deploy_part *p);

/* The top directory's own operations (deploy_top.c): the mount's top
 * directory, and names in it that are no part. */
extern const struct fuse_operations deploy_top_ops;

/* The operations of a cell that is not connected: its top directory shows
 * as an empty directory, everything below it fails with EIO. */
extern const struct fuse_operations deploy_down_ops;

#endif
