/*
 * topofs.h - the mounted filesystem's state, shared by the FUSE operations.
 */
#ifndef TOPOFS_TOPOFS_H
#define TOPOFS_TOPOFS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "cache.h"
#include "handle.h"
#include "notify.h"
#include "options.h"
#include "path.h"
#include "scratch.h"
#include "unsettled.h"
#include "view.h"
#include "writeback.h"
#include "topofs/backend.h"

/* The directories open in a filesystem (ops_attr_dir.c): freed at
 * unmount if the kernel never released them (a daemon stopped by a
 * signal). */
struct dir_collect;
struct open_dirs {
	pthread_mutex_t lock; /* guards head and each one's links */
	struct dir_collect *head;
};
#define OPEN_DIRS_INIT                                                         \
	{                                                                      \
		PTHREAD_MUTEX_INITIALIZER, NULL                                \
	}

struct topofs {
	const struct topo_backend *be;
	struct topo_store *st;
	struct cache *cache;
	const struct topofs_opts *opts;
	struct scratch_patterns scratch_names;
	struct scratch_files scratch;
	struct handle_list handles;
	struct open_dirs dirs;
	uid_t uid;
	gid_t gid;
	struct lowlevel *ll;	     /* the kernel's side (lowlevel.c) */
	struct notifier *notifier;   /* kernel invalidations, NULL if none */
	struct notifier *renotifier; /* the same again, a little later */
	struct writeback *wb;	     /* -o writeback, else NULL */
	struct notifier *rechecker;  /* directories whose child watch fired,
					re-checked after cache_ttl */
	struct unsettled unsettled;  /* paths whose invalidations are queued
					or recent (counted by
					topofs_invalidate, topofs_tell_kernel) */
	bool watched;	/* the store's watch keeps the cache fresh */
	bool json_view; /* -o view=json */

	/* In a deployment view (-o cells, deploy.h): the name of this store's
	 * top directory ("global" or the cell's) and the part that holds it;
	 * "" and NULL in a plain mount. */
	const char *top;
	struct deploy_part *part;
};

/* How long after a change its invalidations are done again: longer than a
 * reply racing the first ones takes to reach the kernel's caches (see
 * lowlevel.c), short enough not to matter to a reader. */
#define RENOTIFY_MS 500

/* ---- serve.c: one store served ---- */

/* The backend's settings for the store that o names (its strings are
 * o's). */
struct topo_conf topofs_conf(const struct topofs_opts *o);

/* Open the store that o names (servers, root, credentials, pinned
 * revision): 0 and *st, or -errno with the reason in err. */
int topofs_connect(const struct topo_backend *be, const struct topofs_opts *o,
		   struct topo_store **st, char *err, size_t errlen);

/* Serve t's open store (t->st): its cache, change notices (the kernel told
 * through t->ll) and -o writeback queue. 0 or -ENOMEM; on failure
 * topofs_stop_store undoes what was started. */
int topofs_serve_store(struct topofs *t);

/* Stop serving t's store and close it, in order: the writeback queue
 * applies what is queued, the re-checks end (they read the store), the
 * store closes (its watch ends), queued invalidations are dropped. Returns
 * how many queued creates failed (logged). */
size_t topofs_stop_store(struct topofs *t);

/* The FUSE operations (ops.c), by path. lowlevel.c serves the kernel's
 * requests with them; libfuse's high-level API is not used. */
extern const struct fuse_operations topofs_ops;

struct fuse_file_info;

/* lowlevel.c: the file open as fi (OPEN, CREATE) is the kernel's node
 * `node`, so that ops_getattr_node finds it once its name is gone. */
void ops_bind_node(struct fuse_file_info *fi, uint64_t node);

/* A GETATTR of node `node` that has no path any more (unlinked, renamed
 * over): the attributes of an open file of it in t (st_nlink 0 once its
 * name is gone), or -ESTALE if none is open. */
int ops_getattr_node(struct topofs *t, uint64_t node, struct stat *st);

/* Free the directories still open in t (the kernel never released them:
 * a daemon stopped by a signal). At unmount, after the last request. */
void ops_close_dirs(struct topofs *t);

/* The filesystem that made the open file (OPEN, CREATE) or directory
 * (OPENDIR) fi, whose fi->fh is not 0: requests on it go there. */
struct topofs *ops_file_owner(const struct fuse_file_info *fi);
struct topofs *ops_dir_owner(const struct fuse_file_info *fi);

/* The request the calling thread serves: lowlevel.c sets it before every
 * call into topofs_ops (fuse_get_context() of the high-level API). */
struct topofs_request {
	struct topofs *t;
	pid_t pid; /* the process that made the request */
	/* Set by an operation for lowlevel.c's reply (cleared before each):
	 * - drop_attrs (open): the kernel may hold attributes of the node
	 *   from before a change the open's value has (unsettled.h); they
	 *   are dropped before the reply.
	 * - own_view (getattr by path): the attributes are those of the
	 *   requesting process's open file, or the store's while another
	 *   process's open file holds another version: the kernel may not
	 *   keep them for others. */
	bool drop_attrs, own_view;
};
const struct topofs_request *topofs_request(void);

/* Set the calling thread's request's drop_attrs or own_view. */
void topofs_request_drop_attrs(void);
void topofs_request_own_view(void);

/* What changed in the store, for the kernel's invalidations. */
enum topofs_inval {
	INVAL_NODE,	/* a node's value or metadata, or a new node */
	INVAL_GONE,	/* a node may be gone, or now of another type */
	INVAL_CHILDREN, /* a directory's children */
	INVAL_WRITTEN,	/* our own queued create reached the store */
	INVAL_ALL,	/* anything: the watch lost track */
	INVAL_LISTING,	/* a directory's listing the kernel may have kept
			   from before a change (no new change itself) */
};

/* Queue the kernel's invalidations for store path p (lowlevel_invalidate
 * does them on the notifier's thread). Called once the cache shows the
 * change: replies being built now are counted as racing it at once. */
void topofs_invalidate(struct topofs *t, const char *p, enum topofs_inval kind);

/* Queue an invalidation for p for RENOTIFY_MS from now only: after a reply
 * that may carry what a change replaced has reached the kernel. */
void topofs_invalidate_later(struct topofs *t, const char *p,
			     enum topofs_inval kind);

/* The notifier_fn of t's invalidation queues (arg is the struct topofs):
 * lowlevel_invalidate, then the item counted done in t->unsettled. */
void topofs_tell_kernel(void *arg, const char *path, int kind);

/* Whether the kernel may hold attributes of store path p of t from before
 * its last change (unsettled.h). */
bool topofs_unsettled(struct topofs *t, const char *p);

/* The store's change notices (a topo_change_fn; arg is the struct topofs):
 * mark the cache stale and queue the kernel's invalidations. */
void topofs_on_change(void *arg, enum topo_change what, const char *path,
		      int64_t version);

/* A writeback_applied_fn (arg is the struct topofs): the store now holds
 * `path` as written: drop what the kernel was told of it before. */
void topofs_written(void *arg, const char *path);

/* A notifier_fn (arg is the struct topofs): re-check the children of
 * store path `path` (cache_recheck) and tell the kernel if they changed. */
void topofs_recheck(void *arg, const char *path, int kind);

#endif
