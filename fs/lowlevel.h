/*
 * lowlevel.h - the kernel's FUSE requests (libfuse's low-level API), served
 * by the path-based operations of ops.c; and the kernel told of changes in
 * the store.
 */
#ifndef TOPOFS_LOWLEVEL_H
#define TOPOFS_LOWLEVEL_H

#include <fuse_lowlevel.h>

struct topofs;
struct lowlevel;

/* The kernel's side of mount t (its node table). NULL on ENOMEM. */
struct lowlevel *lowlevel_new(struct topofs *t);

/* The FUSE session serving ll, with libfuse's options from args (-d, mount
 * options). NULL on failure (libfuse printed why). The caller destroys it
 * (fuse_session_destroy) before lowlevel_free. */
struct fuse_session *lowlevel_session(struct lowlevel *ll,
				      struct fuse_args *args);

/* The session's loop ended: invalidate nothing any more. The kernel may
 * hold directory locks for requests no one will answer now, which an
 * invalidation would wait for until the session is destroyed. */
void lowlevel_stop(struct lowlevel *ll);

/* Free ll, once its session is destroyed and nothing invalidates any
 * more. NULL is ok. */
void lowlevel_free(struct lowlevel *ll);

/* The store changed and the cache shows it: replies being built now may
 * carry what it replaced (see lowlevel.c, A reply racing an
 * invalidation). Any thread; NULL is ok. */
void lowlevel_note_change(struct lowlevel *ll);

/* A notifier_fn (arg is the struct topofs): tell the kernel what changed at
 * store path `path` of that filesystem, an enum topofs_inval. Never call
 * it from a request handler (see notify.h). */
void lowlevel_invalidate(void *arg, const char *path, int kind);

/* The mount is a deployment view (deploy.h): requests are routed by d.
 * Before the session's loop starts. */
struct deploy;
void lowlevel_set_deploy(struct lowlevel *ll, struct deploy *d);

/* A deployment's top-level `name` no longer leads where it led: its node
 * is unlinked (the name gets a new one), the kernel is told with
 * lowlevel_invalidate_top. Any thread. */
void lowlevel_forget_top(struct lowlevel *ll, const char *name);

/* A notifier_fn (arg is the struct lowlevel): the kernel forgets what it
 * holds of top-level `name` and the top directory's listing. */
void lowlevel_invalidate_top(void *arg, const char *name, int kind);

#endif
