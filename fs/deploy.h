/*
 * deploy.h - the deployment view (-o cells, SPEC 9): the mount's top
 * directory holds global/ (the mounted root) and one directory per cell
 * that the global root's cells/<cell>/CellInfo records name, each the
 * cell's own root on the cell's own servers.
 *
 * Each top directory is a part: its own struct topofs (store connection,
 * cache, change notices, open files), served by topofs_ops with paths
 * relative to it. lowlevel.c routes every request: deploy_route turns a
 * path of the mount into the part, the operations and the path to use.
 * The mount's top directory itself, and names in it that are no part, are
 * served by this file's own operations.
 *
 * Functions return 0 or a negative errno.
 */
#ifndef TOPOFS_DEPLOY_H
#define TOPOFS_DEPLOY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct deploy;
struct deploy_part;
struct topofs;
struct fuse_operations;

/* What a request does with the path it routes (deploy_route). */
enum route_use {
	ROUTE_USE,  /* at or below a top directory: waits for a cell's first
		       connection attempt to end (its attributes then are its
		       root's, not a stand-in's) */
	ROUTE_NAME, /* creates, removes or renames the path's own name: a top
		       directory's name is the deployment's, not the cell's */
};

/* Where a path of the mount leads. */
struct route {
	struct topofs *t;		   /* the request's filesystem */
	const struct fuse_operations *ops; /* the operations to call */
	const char *path;		   /* the path to give them */
	struct deploy_part *part;	   /* held (deploy_release), or NULL */
	bool store; /* the ops serve t's store (topofs_ops, or those of a
		       cell's top directory), not the deployment's own */
};

/* Make main t's mount (its store served, t->ll set) a deployment view:
 * global/ is t; the cells are found and connected in the background.
 * `filter`: -o cells=A,B, or NULL for every cell. `snapshot`: each cell's
 * store is pinned at the revision it has when first connected. NULL on
 * ENOMEM (logged). */
struct deploy *deploy_start(struct topofs *t, const char *filter,
			    bool snapshot);

/* Stop: every cell's store stopped (its writeback queue applied) and
 * freed; t is left to its owner. Returns how many queued creates failed.
 * NULL is ok (0). */
size_t deploy_stop(struct deploy *d);

/* Route FUSE path `path` (a path of the mount) into *r, holding the part
 * it leads to until deploy_release(r->part). Never fails: a name in the
 * top directory that is no cell leads to the deployment's own operations,
 * which answer ENOENT or EPERM. */
void deploy_route(struct deploy *d, const char *path, enum route_use use,
		  struct route *r);

/* Hold part p (an open file or directory of it keeps it). NULL is ok. */
void deploy_hold(struct deploy_part *p);

/* Drop a hold of part p; a part gone from the deployment is freed once no
 * one holds it. NULL is ok. */
void deploy_release(struct deploy_part *p);

/* ops_getattr_node over every part: the attributes of an open file of
 * node `node`, or -ESTALE. */
int deploy_getattr_node(struct deploy *d, uint64_t node, struct stat *st);

/* Whether `name` in the top directory is a part now. */
bool deploy_is_part(struct deploy *d, const char *name);

#endif
