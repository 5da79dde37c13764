/*
 * lowlevel.c - the kernel's requests (libfuse's low-level API), served by
 * the path-based operations of ops.c. The kernel is told of changes in the
 * store by lowlevel_notify.c; this comment covers both.
 *
 * libfuse's high-level API used to serve topofs_ops. It cannot make the
 * kernel forget a name (only an inode), nor pass on that a directory's
 * listing may be cached, so the kernel had to ask again for every name
 * each second. This is the little of that API topofs needs: node IDs and
 * lookup counts (inode.c), a path for each operation, and invalidations
 * that reach the kernel's names, attributes and listings when the store
 * changes, so that the kernel may keep them as long as op_init says.
 *
 * What the kernel is told
 *   A node's attributes are what getattr gives, st_ino included (stable
 *   per path: path_ino); its node ID is ours (inode.c). READDIRPLUS
 *   entries are lookups. An open file or directory is the handle ops.c
 *   made (fi->fh), told as is: direct I/O, noflush, and the listing cache
 *   flags of op_opendir. An unlinked or renamed-over file that is still
 *   open keeps working through its handle; by path it is -ESTALE.
 *
 *   Paths are built in TOPO_FUSE_PATH_MAX buffers (path.h): a path of up to
 *   PATH_MAX - 1 bytes below the mount root works as on a local
 *   filesystem, a longer one is ENAMETOOLONG (LOOKUP, MKDIR, CREATE...).
 *
 * Zero-message opens
 *   A pinned mount (-o snapshot, -o revision=N) never changes. There the
 *   first OPEN and OPENDIR are answered ENOSYS, which tells the kernel to
 *   open files and directories without asking from then on, keeping their
 *   pages and listings (no OPEN, RELEASE, OPENDIR, RELEASEDIR, FLUSH per
 *   entry: a warm tar asks nothing). Such a file or directory has no
 *   handle (fh 0): a READ or READDIR on it is served by path, through a
 *   handle made for that request. A live mount cannot do this: its reads
 *   must bypass the page cache (see ops_open_snapshot).
 *
 * Concurrency
 *   Requests come on libfuse's threads. Each sets the thread's
 *   topofs_request (ops.c's fuse_get_context()).
 *
 *   `names` (a writer-preferring rwlock) keeps paths still: every request
 *   that builds a path holds it shared until its operation is done, and
 *   RENAME holds it exclusively. The kernel serialises the operations on
 *   one name (they hold its directory's lock), but not the rename of a
 *   directory against operations below it: without the lock an operation
 *   could build "/a/x" just before "a" moved to "b", then find nothing.
 *   (The high-level API locked the nodes of the paths in use for the same
 *   reason.) Requests on open handles (read, write, flush, release, fsync)
 *   need no path and do not take it. No holder of `names` waits for
 *   anything that waits for it: operations wait only for the store, the
 *   cache and each other's mutexes, never for the kernel.
 *
 *   The node table's mutex (inode.c) is taken inside `names` or alone, and
 *   nothing is taken inside it.
 *
 *   Invalidations are written to the kernel only by the notifier threads
 *   (notify.c), never by a request handler: the kernel may hold, while it
 *   waits for a reply, the very directory lock an invalidation takes. They
 *   hold no lock of ours while they write. The one exception is an OPEN's
 *   invalidation of its own node's attributes only (offset -1: no page,
 *   no directory lock; the kernel takes a spinlock and counts a new
 *   attribute version), below.
 *
 * Open files and the kernel's attributes
 *   An open file reads the value it took at open, but the kernel keeps
 *   one set of attributes per node, and fstat reaches us, if at all, by
 *   path, without the handle. tar and cp fstat the descriptor after open
 *   and read as many bytes as it says. Two rules keep that size the one
 *   the descriptor reads (SPEC 3), whatever another client does:
 *   - an OPEN of a path whose change the notifier threads may not have
 *     told the kernel yet, or told it less than a race lifetime ago
 *     (unsettled.h), drops the node's attributes before its reply, so the
 *     next fstat asks;
 *   - while an open file not read yet holds another version than the
 *     store's, a GETATTR (or LOOKUP) by path is answered for no time, so
 *     the kernel asks again for the next caller: the process that opened
 *     it gets its open file's attributes (its newest open), any other one
 *     the store's (ops_attr_dir.c, stat_store). Once read, or once a
 *     commit through the mount wrote its name, a file no longer counts: a
 *     later fstat (tar's second) and stat of the path show the store's
 *     newer value, which tar takes for a change.
 *
 * A reply racing an invalidation
 *   A LOOKUP answered from the cache just before a change, whose reply
 *   reaches the kernel's caches just after the invalidation of that
 *   change, would keep the old name or attributes for the full hour. So a
 *   reply built while a change came (inode_changes moved: counted when the
 *   cache shows the change, lowlevel_note_change, not when the notifier's
 *   thread gets to it) carries only the short cache lifetime, and every
 *   invalidation is done again RENOTIFY_MS later (topofs.h), after such a
 *   reply has landed.
 *
 *   A directory's listing has no lifetime: the kernel keeps what a READDIR
 *   brought until it is invalidated. Building one may take long (a
 *   READDIRPLUS stats every entry, which may wait for the store), longer
 *   than RENOTIFY_MS after the change it raced. So a listing reply that
 *   raced a change, or that the cache only trusts for cache_ttl (a
 *   ZooKeeper directory whose child watch fired), is invalidated again
 *   RENOTIFY_MS after it was sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "deploy.h"
#include "inode.h"
#include "lowlevel.h"
#include "lowlevel_internal.h"
#include "topofs.h"

#define UNKNOWN_INO 0xffffffffu /* a dirent's "no inode number" */

static _Thread_local struct topofs_request current;

const struct topofs_request *topofs_request(void)
{
	return &current;
}

void topofs_request_drop_attrs(void)
{
	current.drop_attrs = true;
}

void topofs_request_own_view(void)
{
	current.own_view = true;
}

/* ---- serving a request ---- */

/* Start serving req: its context for ops.c. */
static struct lowlevel *begin(fuse_req_t req)
{
	struct lowlevel *ll = fuse_req_userdata(req);
	current =
	    (struct topofs_request){.t = ll->t, .pid = fuse_req_ctx(req)->pid};
	return ll;
}

/* Start serving a request that uses paths (see Concurrency). */
static struct lowlevel *enter(fuse_req_t req)
{
	struct lowlevel *ll = begin(req);
	pthread_rwlock_rdlock(&ll->names);
	return ll;
}

static void leave(struct lowlevel *ll)
{
	pthread_rwlock_unlock(&ll->names);
}

/* Route FUSE path `path` of the mount (see deploy.h): *r, and the
 * request's filesystem. A plain mount has one, by the same path. */
static void route(struct lowlevel *ll, const char *path, enum route_use use,
		  struct route *r)
{
	if (ll->deploy)
		deploy_route(ll->deploy, path, use, r);
	else
		*r = (struct route){.t = ll->t,
				    .ops = &topofs_ops,
				    .path = path,
				    .store = true};
	current.t = r->t;
}

/* The request routed to r is done. */
static void unroute(struct route *r)
{
	deploy_release(r->part);
	r->part = NULL;
}

/* A request on open file fi (fi->fh set) goes to the filesystem it was
 * opened in. */
static void use_file(const struct fuse_file_info *fi)
{
	current.t = ops_file_owner(fi);
}

static void reply_err(fuse_req_t req, int rc)
{
	fuse_reply_err(req, -rc);
}

/* Attributes as the kernel gets them: -o umask= replaces the modes. */
static void fix_attr(const struct lowlevel *ll, struct stat *st)
{
	const struct topofs_opts *o = ll->t->opts;
	if (o->umask)
		st->st_mode = (st->st_mode & S_IFMT) | (0777 & ~o->umask_value);
}

/* A node the kernel holds turned out gone (an operation on it found no
 * such path): make the kernel look its name up again, which drops it.
 * Our view and the kernel's part when a change reached one first (a
 * create -o writeback could not apply, a notice still queued). */
static void check_gone(const struct route *r, int rc)
{
	if (rc == -ENOENT && r->path && r->store)
		topofs_invalidate(r->t, r->path, INVAL_GONE);
}

/* How long the kernel may keep attributes read since inode_changes() was
 * `seen`: briefly if a change came meanwhile (see A reply racing an
 * invalidation). */
static double attr_lifetime(const struct lowlevel *ll, uint64_t seen)
{
	if (current.own_view)
		return 0; /* one process's open file: not for others */
	bool raced = inode_changes(ll->inodes) != seen;
	return raced ? ll->race_timeout : ll->attr_timeout;
}

/* Count a lookup of `name` in `parent`, which has attributes st, into e.
 * `seen`: inode_changes() before st was read. */
static int take_entry(struct lowlevel *ll, fuse_ino_t parent, const char *name,
		      const struct stat *st, uint64_t seen,
		      struct fuse_entry_param *e)
{
	uint64_t ino;
	memset(e, 0, sizeof(*e));
	int rc =
	    inode_lookup(ll->inodes, parent, name, st->st_mode & S_IFMT, &ino);
	if (rc)
		return rc;
	/* the deployment's top-level names follow the CellInfo records, not
	 * a store's watch: kept briefly (see deploy.c) */
	bool brief = inode_changes(ll->inodes) != seen ||
		     (ll->deploy && parent == INODE_ROOT);
	e->ino = ino;
	e->attr = *st;
	fix_attr(ll, &e->attr);
	e->entry_timeout = brief ? ll->race_timeout : ll->entry_timeout;
	e->attr_timeout = brief ? ll->race_timeout : ll->attr_timeout;
	if (current.own_view)
		e->attr_timeout = 0; /* one process's open file */
	return 0;
}

/* Reply with the entry of `name` in `parent`, which has attributes st. */
static void reply_entry_stat(struct lowlevel *ll, fuse_req_t req,
			     fuse_ino_t parent, const char *name,
			     const struct stat *st, uint64_t seen)
{
	struct fuse_entry_param e;
	int rc = take_entry(ll, parent, name, st, seen, &e);
	if (rc)
		reply_err(req, rc);
	else if (fuse_reply_entry(req, &e) != 0)
		inode_forget(ll->inodes, e.ino, 1); /* the kernel did not
						       get it */
}

/* Reply with the entry of `name` in `parent`, at r->path (made by an
 * operation just now). */
static void reply_entry(struct lowlevel *ll, fuse_req_t req, fuse_ino_t parent,
			const char *name, const struct route *r, uint64_t seen)
{
	struct stat st;
	int rc = r->ops->getattr(r->path, &st, NULL);
	if (rc)
		reply_err(req, rc);
	else
		reply_entry_stat(ll, req, parent, name, &st, seen);
}

/* ---- names ---- */

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct lowlevel *ll = enter(req);
	uint64_t seen = inode_changes(ll->inodes);
	char path[TOPO_FUSE_PATH_MAX];
	struct stat st;
	struct route r = {0};
	int rc = inode_child_path(ll->inodes, parent, name, path, sizeof(path));
	if (!rc) {
		route(ll, path, ROUTE_USE, &r);
		rc = r.ops->getattr(r.path, &st, NULL);
		unroute(&r);
	}
	if (rc == -ENOENT && ll->negative_timeout > 0) {
		/* the absent name, kept (a pinned mount) */
		struct fuse_entry_param e = {.entry_timeout =
						 ll->negative_timeout};
		fuse_reply_entry(req, &e);
	} else if (rc) {
		reply_err(req, rc);
	} else {
		reply_entry_stat(ll, req, parent, name, &st, seen);
	}
	leave(ll);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct lowlevel *ll = fuse_req_userdata(req);
	inode_forget(ll->inodes, ino, nlookup);
	fuse_reply_none(req);
}

static void ll_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	struct lowlevel *ll = fuse_req_userdata(req);
	for (size_t i = 0; i < count; i++)
		inode_forget(ll->inodes, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct lowlevel *ll = enter(req);
	uint64_t seen = inode_changes(ll->inodes);
	char path[TOPO_FUSE_PATH_MAX];
	struct route r = {0};
	int rc = inode_child_path(ll->inodes, parent, name, path, sizeof(path));
	if (!rc) {
		route(ll, path, ROUTE_NAME, &r);
		rc = r.ops->mkdir(r.path, mode);
	}
	if (rc)
		reply_err(req, rc);
	else
		reply_entry(ll, req, parent, name, &r, seen);
	unroute(&r);
	leave(ll);
}

/* unlink or rmdir (`dir`): the operation on the path, then the name is
 * gone. */
static void remove_name(fuse_req_t req, fuse_ino_t parent, const char *name,
			bool dir)
{
	struct lowlevel *ll = enter(req);
	char path[TOPO_FUSE_PATH_MAX];
	struct route r = {0};
	int rc = inode_child_path(ll->inodes, parent, name, path, sizeof(path));
	if (!rc) {
		route(ll, path, ROUTE_NAME, &r);
		rc = dir ? r.ops->rmdir(r.path) : r.ops->unlink(r.path);
		unroute(&r);
	}
	if (!rc)
		inode_unlink(ll->inodes, parent, name);
	leave(ll);
	reply_err(req, rc);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, false);
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, true);
}

/* Rename within one filesystem; between two top directories of a
 * deployment, EXDEV (mv copies). */
static int rename_routed(struct lowlevel *ll, const char *from, const char *to,
			 unsigned int flags)
{
	struct route rf, rt;
	route(ll, to, ROUTE_NAME, &rt);
	route(ll, from, ROUTE_NAME, &rf);
	int rc;
	if (rf.t == rt.t && rf.ops == rt.ops)
		rc = rf.ops->rename(rf.path, rt.path, flags);
	else if (!rf.store)
		rc = rf.ops->rename(rf.path, rt.path, flags);
	else
		rc = -EXDEV;
	unroute(&rf);
	unroute(&rt);
	return rc;
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct lowlevel *ll = begin(req);
	char from[TOPO_FUSE_PATH_MAX], to[TOPO_FUSE_PATH_MAX];
	pthread_rwlock_wrlock(&ll->names); /* no path in use may move */
	int rc = inode_child_path(ll->inodes, parent, name, from, sizeof(from));
	if (!rc)
		rc = inode_child_path(ll->inodes, newparent, newname, to,
				      sizeof(to));
	if (!rc)
		rc = rename_routed(ll, from, to, flags);
	if (!rc) /* (no memory: the node lost its path; looked up again) */
		inode_rename(ll->inodes, parent, name, newparent, newname);
	pthread_rwlock_unlock(&ll->names);
	reply_err(req, rc);
}

/* ---- attributes ---- */

/* Reply to a GETATTR or SETATTR of node ino (routed to r): st, read
 * since inode_changes() was `seen`, or the error rc. */
static void reply_attr(struct lowlevel *ll, fuse_req_t req, int rc,
		       fuse_ino_t ino, const struct route *r, struct stat *st,
		       uint64_t seen)
{
	if (!rc && !inode_type_is(ll->inodes, ino, st->st_mode & S_IFMT))
		rc = -ENOENT; /* that node is gone: the name now has another
				 type (the kernel would take it for broken) */
	check_gone(r, rc);
	if (rc) {
		reply_err(req, rc);
		return;
	}
	fix_attr(ll, st);
	fuse_reply_attr(req, st, attr_lifetime(ll, seen));
}

/* A GETATTR or SETATTR with open file fi is served by the filesystem it
 * was opened in: r (routed by path, or not) is set to it. Its path stays
 * only if it is of that filesystem (else the operations use the handle).
 * Returns 0. */
static int by_open_file(struct route *r, struct fuse_file_info *fi)
{
	struct topofs *owner = ops_file_owner(fi);
	if (!r->store || r->t != owner) {
		unroute(r);
		*r = (struct route){
		    .t = owner, .ops = &topofs_ops, .store = true};
	}
	current.t = owner;
	return 0;
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct lowlevel *ll = enter(req);
	char buf[TOPO_FUSE_PATH_MAX];
	struct stat st;
	uint64_t seen = inode_changes(ll->inodes);
	struct route r = {0};
	int rc = inode_path(ll->inodes, ino, buf, sizeof(buf));
	if (!rc)
		route(ll, buf, ROUTE_USE, &r);
	if (fi && fi->fh) /* by the open file's handle, path or not */
		rc = by_open_file(&r, fi);
	if (r.ops) /* by path, or by the open file */
		rc = r.ops->getattr(r.path, &st, fi);
	else if (ll->deploy) /* fstat of a file whose name is gone */
		rc = deploy_getattr_node(ll->deploy, ino, &st);
	else
		rc = ops_getattr_node(ll->t, ino, &st);
	reply_attr(ll, req, rc, ino, &r, &st, seen);
	unroute(&r);
	leave(ll);
}

/* The parts of a SETATTR, in the high-level API's order. */
static int set_attrs(const struct fuse_operations *ops, const char *path,
		     const struct stat *attr, int valid,
		     struct fuse_file_info *fi)
{
	int rc = 0;
	if (valid & FUSE_SET_ATTR_MODE)
		rc = ops->chmod(path, attr->st_mode, fi);
	if (!rc && (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		rc = ops->chown(
		    path, valid & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1,
		    valid & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1, fi);
	if (!rc && (valid & FUSE_SET_ATTR_SIZE))
		rc = ops->truncate(path, attr->st_size, fi);
	if (!rc && (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
		struct timespec tv[2] = {{.tv_nsec = UTIME_OMIT},
					 {.tv_nsec = UTIME_OMIT}};
		if (valid & FUSE_SET_ATTR_ATIME_NOW)
			tv[0].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_ATIME)
			tv[0] = attr->st_atim;
		if (valid & FUSE_SET_ATTR_MTIME_NOW)
			tv[1].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_MTIME)
			tv[1] = attr->st_mtim;
		rc = ops->utimens(path, tv, fi);
	}
	return rc;
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int valid, struct fuse_file_info *fi)
{
	struct lowlevel *ll = enter(req);
	uint64_t seen = inode_changes(ll->inodes);
	char buf[TOPO_FUSE_PATH_MAX];
	struct stat st;
	struct route r = {0};
	int rc = inode_path(ll->inodes, ino, buf, sizeof(buf));
	if (!rc)
		route(ll, buf, ROUTE_USE, &r);
	if (fi && fi->fh)
		rc = by_open_file(&r, fi);
	if (r.ops) {
		rc = set_attrs(r.ops, r.path, attr, valid, fi);
		if (!rc)
			rc = r.ops->getattr(r.path, &st, fi);
	}
	reply_attr(ll, req, rc, ino, &r, &st, seen);
	unroute(&r);
	leave(ll);
}

/* ---- files ---- */

/* Open node ino, at path[TOPO_FUSE_PATH_MAX], routed to *r, as a
 * directory or not, into fi: 0 or the error to reply. On success r's part
 * stays held for the open file (released at RELEASE). With `no_open` the
 * kernel is told to open without asking from now on (see Zero-message
 * opens). Called within enter(). */
static int open_node(struct lowlevel *ll, fuse_ino_t ino, bool no_open,
		     bool dir, char *path, struct route *r,
		     struct fuse_file_info *fi)
{
	if (no_open)
		return -ENOSYS;
	int rc = inode_path(ll->inodes, ino, path, TOPO_FUSE_PATH_MAX);
	if (rc)
		return rc;
	route(ll, path, ROUTE_USE, r);
	rc = dir ? r->ops->opendir(r->path, fi) : r->ops->open(r->path, fi);
	check_gone(r, rc);
	if (rc || !fi->fh)
		unroute(r); /* else held by the open file */
	return rc;
}

/* The open file or directory fi of filesystem t is closed: its hold of
 * t's part ends. */
static void closed(struct topofs *t)
{
	deploy_release(t->part);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct lowlevel *ll = enter(req);
	char path[TOPO_FUSE_PATH_MAX];
	struct route r = {0};
	int rc = open_node(ll, ino, ll->no_open, false, path, &r, fi);
	if (!rc)
		ops_bind_node(fi, ino);
	if (!rc && ll->keep_pages)
		fi->keep_cache = 1;
	if (!rc && current.drop_attrs && !atomic_load(&ll->stopped))
		/* before the reply: the opener's fstat must not get the
		 * attributes of a value older or newer than the one it
		 * reads (see Open files and the kernel's attributes) */
		fuse_lowlevel_notify_inval_inode(ll->se, ino, -1, 0);
	if (rc) {
		reply_err(req, rc);
	} else if (fuse_reply_open(req, fi) != 0) {
		r.ops->release(r.path, fi); /* the open was interrupted */
		unroute(&r);
	}
	leave(ll);
}

/* Create `name` in `parent` and open it into fi; its entry in *e. On
 * success *r's part stays held for the open file. */
static int create_file(struct lowlevel *ll, fuse_ino_t parent, const char *name,
		       mode_t mode, struct fuse_file_info *fi,
		       struct fuse_entry_param *e, struct route *r)
{
	uint64_t seen = inode_changes(ll->inodes);
	char path[TOPO_FUSE_PATH_MAX];
	struct stat st;
	int rc = inode_child_path(ll->inodes, parent, name, path, sizeof(path));
	if (rc)
		return rc;
	route(ll, path, ROUTE_NAME, r);
	rc = r->ops->create(r->path, mode, fi);
	if (rc) {
		unroute(r);
		return rc;
	}
	rc = r->ops->getattr(r->path, &st, fi); /* the new file's handle */
	if (!rc && !S_ISREG(st.st_mode))
		rc = -EIO;
	if (!rc)
		rc = take_entry(ll, parent, name, &st, seen, e);
	if (rc) {
		r->ops->release(r->path, fi);
		unroute(r);
		return rc;
	}
	/* A new file's attributes change at its first close (the store's
	 * times, its size): the kernel must not keep these. */
	e->attr_timeout = 0;
	ops_bind_node(fi, e->ino);
	if (ll->keep_pages)
		fi->keep_cache = 1;
	return 0;
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct lowlevel *ll = enter(req);
	struct fuse_entry_param e;
	struct route r = {0};
	int rc = create_file(ll, parent, name, mode, fi, &e, &r);
	if (rc) {
		reply_err(req, rc);
	} else if (fuse_reply_create(req, &e, fi) != 0) {
		r.ops->release(NULL, fi); /* the open was interrupted */
		unroute(&r);
		inode_forget(ll->inodes, e.ino, 1);
	}
	leave(ll);
}

/* mknod of a regular file (mknod(2), or an open with O_CREAT where the
 * kernel does not use CREATE) is a create and a close, as in the
 * high-level API; other types do not exist here. */
static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	(void)rdev;
	if (!S_ISREG(mode)) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	struct lowlevel *ll = enter(req);
	struct fuse_entry_param e;
	struct fuse_file_info fi = {.flags = O_CREAT | O_EXCL | O_WRONLY};
	struct route r = {0};
	int rc = create_file(ll, parent, name, mode, &fi, &e, &r);
	if (!rc) {
		rc = r.ops->flush(NULL, &fi); /* the close: created now */
		r.ops->release(NULL, &fi);
		unroute(&r);
		if (rc)
			inode_forget(ll->inodes, e.ino, 1); /* not told */
	}
	if (!rc) {
		if (fuse_reply_entry(req, &e) != 0)
			inode_forget(ll->inodes, e.ino, 1);
	} else {
		reply_err(req, rc);
	}
	leave(ll);
}

/* Read from node ino, which the kernel opened without asking (see
 * Zero-message opens), through a handle of its own. */
static int read_unopened(struct lowlevel *ll, fuse_ino_t ino, char *buf,
			 size_t size, off_t off)
{
	char path[TOPO_FUSE_PATH_MAX];
	struct fuse_file_info fi = {.flags = O_RDONLY};
	struct route r = {0};
	pthread_rwlock_rdlock(&ll->names);
	int rc = inode_path(ll->inodes, ino, path, sizeof(path));
	if (!rc) {
		route(ll, path, ROUTE_USE, &r);
		rc = r.ops->open(r.path, &fi);
	}
	if (!rc) {
		rc = r.ops->read(r.path, buf, size, off, &fi);
		r.ops->release(r.path, &fi);
	}
	unroute(&r);
	pthread_rwlock_unlock(&ll->names);
	return rc;
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct lowlevel *ll = begin(req);
	char *buf = malloc(size ? size : 1);
	if (fi->fh)
		use_file(fi);
	int n = !buf	 ? -ENOMEM
		: fi->fh ? topofs_ops.read(NULL, buf, size, off, fi)
			 : read_unopened(ll, ino, buf, size, off);
	if (n < 0)
		reply_err(req, n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	begin(req);
	/* a file opened without asking is on a read-only mount */
	if (fi->fh)
		use_file(fi);
	int n = fi->fh ? topofs_ops.write(NULL, buf, size, off, fi) : -EBADF;
	if (n < 0)
		reply_err(req, n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	begin(req);
	if (!fi->fh) { /* opened without asking: nothing to commit, and ENOSYS
			  spares the FLUSH at every close from now on */
		reply_err(req, -ENOSYS);
		return;
	}
	use_file(fi);
	reply_err(req, topofs_ops.flush(NULL, fi));
}

static void ll_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)ino;
	begin(req);
	int rc = 0;
	if (fi->fh) { /* else opened without asking: nothing to release */
		use_file(fi);
		struct topofs *t = current.t;
		rc = fi->flush ? topofs_ops.flush(NULL, fi) : 0;
		topofs_ops.release(NULL, fi);
		closed(t);
	}
	reply_err(req, rc);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	(void)ino;
	begin(req);
	/* opened without asking: a pinned mount, nothing to sync */
	if (fi->fh)
		use_file(fi);
	reply_err(req, fi->fh ? topofs_ops.fsync(NULL, datasync, fi) : 0);
}

/* ---- directories ---- */

static void ll_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct lowlevel *ll = enter(req);
	char path[TOPO_FUSE_PATH_MAX];
	struct route r = {0};
	int rc = open_node(ll, ino, ll->no_opendir, true, path, &r, fi);
	if (rc) {
		reply_err(req, rc);
	} else if (fuse_reply_open(req, fi) != 0) {
		r.ops->releasedir(r.path, fi); /* interrupted */
		unroute(&r);
	}
	leave(ll);
}

/* One READDIR or READDIRPLUS reply being filled (a fuse_fill_dir_t's
 * buffer). */
struct dir_fill {
	struct lowlevel *ll;
	fuse_req_t req;
	fuse_ino_t dir;
	bool plus;
	uint64_t seen; /* inode_changes() at the start */
	char *buf;
	size_t size, len;
	uint64_t *taken; /* the lookups this reply counts (READDIRPLUS) */
	size_t ntaken, cap;
	int err;
};

static bool is_dot(const char *name)
{
	return name[0] == '.' &&
	       (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

/* A READDIRPLUS entry: a lookup of name (not of "." and ".."), counted in
 * d->taken. */
static int plus_entry(struct dir_fill *d, const char *name,
		      const struct stat *st, bool with_attr,
		      struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->attr = *st; /* ino 0: the kernel takes only the name and type */
	if (!with_attr || is_dot(name))
		return 0;
	if (d->ntaken == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 64;
		uint64_t *t = realloc(d->taken, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		d->taken = t;
		d->cap = cap;
	}
	int rc = take_entry(d->ll, d->dir, name, st, d->seen, e);
	if (!rc)
		d->taken[d->ntaken++] = e->ino;
	return rc;
}

static int fill(void *arg, const char *name, const struct stat *st, off_t off,
		enum fuse_fill_dir_flags flags)
{
	struct dir_fill *d = arg;
	struct stat dot = {.st_ino = UNKNOWN_INO, .st_mode = S_IFDIR};
	char *p = d->buf + d->len;
	size_t room = d->size - d->len, need;
	if (!st)
		st = &dot; /* "." and ".." */
	if (!d->plus) {
		need = fuse_add_direntry(d->req, p, room, name, st, off);
		if (need > room)
			return 1; /* full */
	} else {
		struct fuse_entry_param e;
		need = fuse_add_direntry_plus(d->req, NULL, 0, name, NULL, 0);
		if (need > room)
			return 1; /* full: not looked up */
		d->err =
		    plus_entry(d, name, st, flags & FUSE_FILL_DIR_PLUS, &e);
		if (d->err)
			return 1;
		fuse_add_direntry_plus(d->req, p, room, name, &e, off);
	}
	d->len += need;
	return 0;
}

/* Whether the listing of directory r->path just read may be older than
 * what the kernel was told since inode_changes() was `seen`, or than the
 * store (see A reply racing an invalidation). The deployment's top
 * directory is listed afresh at every READDIR: never in doubt. */
static bool listing_in_doubt(struct lowlevel *ll, const struct route *r,
			     uint64_t seen)
{
	char p[PATH_MAX];
	bool is_data;
	if (!r->store)
		return false;
	if (inode_changes(ll->inodes) != seen)
		return true;
	return path_from_fuse(r->path, p, sizeof(p), &is_data) == 0 &&
	       !cache_listing_watched(r->t->cache, p);
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi, bool plus)
{
	struct lowlevel *ll = enter(req);
	struct dir_fill d = {.ll = ll,
			     .req = req,
			     .dir = ino,
			     .plus = plus,
			     .seen = inode_changes(ll->inodes),
			     .buf = malloc(size ? size : 1),
			     .size = size};
	char path[TOPO_FUSE_PATH_MAX];
	struct route r = {0};
	int rc =
	    d.buf ? inode_path(ll->inodes, ino, path, sizeof(path)) : -ENOMEM;
	if (!rc)
		route(ll, path, ROUTE_USE, &r);
	if (!rc && fi->fh && ops_dir_owner(fi) != r.t) {
		/* its cell moved since it was opened: list what it holds */
		unroute(&r);
		r = (struct route){.t = ops_dir_owner(fi),
				   .ops = &topofs_ops,
				   .path = "/",
				   .store = true};
		current.t = r.t;
	}
	/* opened without asking (see Zero-message opens), or the top
	 * directory: a handle of its own (a pinned listing: the same at
	 * every offset) */
	struct fuse_file_info own = {0};
	bool unopened = !fi->fh;
	if (!rc && unopened)
		rc = r.ops->opendir(r.path, &own);
	if (!rc)
		rc = r.ops->readdir(r.path, &d, fill, off, unopened ? &own : fi,
				    plus ? FUSE_READDIR_PLUS : 0);
	if (unopened && own.fh)
		r.ops->releasedir(r.path, &own);
	if (!rc)
		rc = d.err;
	bool doubt = !rc && listing_in_doubt(ll, &r, d.seen);
	if (rc)
		reply_err(req, rc);
	if (rc || fuse_reply_buf(req, d.buf, d.len) != 0)
		for (size_t i = 0; i < d.ntaken; i++) /* the kernel got none */
			inode_forget(ll->inodes, d.taken[i], 1);
	else if (doubt) /* once the kernel has kept it */
		topofs_invalidate_later(r.t, r.path, INVAL_LISTING);
	unroute(&r);
	free(d.taken);
	free(d.buf);
	leave(ll);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, false);
}

static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, true);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	begin(req);
	if (fi->fh) { /* else the deployment's top directory: nothing held */
		struct topofs *t = current.t = ops_dir_owner(fi);
		topofs_ops.releasedir(NULL, fi);
		closed(t);
	}
	fuse_reply_err(req, 0);
}

static void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	(void)ino;
	begin(req);
	if (fi->fh)
		current.t = ops_dir_owner(fi);
	reply_err(req, topofs_ops.fsyncdir(NULL, datasync, fi));
}

/* ---- the rest ---- */

static void ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct lowlevel *ll = enter(req);
	char path[TOPO_FUSE_PATH_MAX];
	struct statvfs sv;
	struct route r;
	if (inode_path(ll->inodes, ino, path, sizeof(path)) != 0)
		strcpy(path, "/");
	route(ll, path, ROUTE_USE, &r);
	int rc = r.ops->statfs(r.path, &sv);
	unroute(&r);
	if (rc)
		reply_err(req, rc);
	else
		fuse_reply_statfs(req, &sv);
	leave(ll);
}

/* Reply to a getxattr or listxattr: with size 0 the length wanted, else
 * the n bytes in value. */
static void reply_xattr(fuse_req_t req, int n, const char *value, size_t size)
{
	if (n < 0)
		reply_err(req, n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, value, (size_t)n);
}

enum xattr_op { XATTR_GET, XATTR_LIST, XATTR_SET, XATTR_REMOVE };

/* An extended-attribute operation on path, routed. */
static int xattr_routed(struct lowlevel *ll, const char *path, enum xattr_op op,
			const char *name, char *value, size_t size, int flags)
{
	struct route r;
	route(ll, path, ROUTE_USE, &r);
	int rc = op == XATTR_GET    ? r.ops->getxattr(r.path, name, value, size)
		 : op == XATTR_LIST ? r.ops->listxattr(r.path, value, size)
		 : op == XATTR_SET
		     ? r.ops->setxattr(r.path, name, value, size, flags)
		     : r.ops->removexattr(r.path, name);
	unroute(&r);
	return rc;
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct lowlevel *ll = enter(req);
	char path[TOPO_FUSE_PATH_MAX];
	char *value = size ? malloc(size) : NULL;
	int n = inode_path(ll->inodes, ino, path, sizeof(path));
	if (!n && size && !value)
		n = -ENOMEM;
	if (!n)
		n = xattr_routed(ll, path, XATTR_GET, name, value, size, 0);
	reply_xattr(req, n, value, size);
	free(value);
	leave(ll);
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct lowlevel *ll = enter(req);
	char path[TOPO_FUSE_PATH_MAX];
	char *list = size ? malloc(size) : NULL;
	int n = inode_path(ll->inodes, ino, path, sizeof(path));
	if (!n && size && !list)
		n = -ENOMEM;
	if (!n)
		n = xattr_routed(ll, path, XATTR_LIST, NULL, list, size, 0);
	reply_xattr(req, n, list, size);
	free(list);
	leave(ll);
}

static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct lowlevel *ll = enter(req);
	char path[TOPO_FUSE_PATH_MAX];
	int rc = inode_path(ll->inodes, ino, path, sizeof(path));
	if (!rc)
		rc = xattr_routed(ll, path, XATTR_SET, name, (char *)value,
				  size, flags);
	reply_err(req, rc);
	leave(ll);
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct lowlevel *ll = enter(req);
	char path[TOPO_FUSE_PATH_MAX];
	int rc = inode_path(ll->inodes, ino, path, sizeof(path));
	if (!rc)
		rc = xattr_routed(ll, path, XATTR_REMOVE, name, NULL, 0, 0);
	reply_err(req, rc);
	leave(ll);
}

/* INIT: op_init says what the kernel may cache, and for how long. */
static void ll_init(void *userdata, struct fuse_conn_info *conn)
{
	struct lowlevel *ll = userdata;
	struct fuse_config cfg = {0};
	current.t = ll->t;
	current.pid = 0;
	topofs_ops.init(conn, &cfg);
	/* Every reply of a listing as READDIRPLUS, not only the first: the
	 * attributes come from the cache, and the kernel LOOKUPs each name a
	 * plain READDIR brought (about 4,800 in a cold tar of the 10k
	 * benchmark tree, 0.23 per entry). */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	double ttl = ll->t->opts->cache_ttl_ms / 1000.0;
	ll->entry_timeout = cfg.entry_timeout;
	ll->attr_timeout = cfg.attr_timeout;
	ll->negative_timeout = cfg.negative_timeout;
	ll->race_timeout = ttl < cfg.entry_timeout ? ttl : cfg.entry_timeout;
	ll->keep_pages = cfg.kernel_cache;
	/* only where nothing changes: see Zero-message opens */
	ll->no_open =
	    cfg.kernel_cache && (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT);
	ll->no_opendir =
	    cfg.kernel_cache && (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT);
}

static const struct fuse_lowlevel_ops lowlevel_ops = {
    .init = ll_init,
    .lookup = ll_lookup,
    .forget = ll_forget,
    .forget_multi = ll_forget_multi,
    .getattr = ll_getattr,
    .setattr = ll_setattr,
    .mknod = ll_mknod,
    .mkdir = ll_mkdir,
    .unlink = ll_unlink,
    .rmdir = ll_rmdir,
    .rename = ll_rename,
    .open = ll_open,
    .create = ll_create,
    .read = ll_read,
    .write = ll_write,
    .flush = ll_flush,
    .release = ll_release,
    .fsync = ll_fsync,
    .opendir = ll_opendir,
    .readdir = ll_readdir,
    .readdirplus = ll_readdirplus,
    .releasedir = ll_releasedir,
    .fsyncdir = ll_fsyncdir,
    .statfs = ll_statfs,
    .getxattr = ll_getxattr,
    .listxattr = ll_listxattr,
    .setxattr = ll_setxattr,
    .removexattr = ll_removexattr,
};

/* ---- life ---- */

struct lowlevel *lowlevel_new(struct topofs *t)
{
	struct lowlevel *ll = calloc(1, sizeof(*ll));
	if (!ll)
		return NULL;
	ll->t = t;
	atomic_init(&ll->stopped, false);
	ll->inodes = inode_table_new();
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(
	    &attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	int rc = pthread_rwlock_init(&ll->names, &attr);
	pthread_rwlockattr_destroy(&attr);
	if (!ll->inodes || rc) {
		if (!rc)
			pthread_rwlock_destroy(&ll->names);
		inode_table_free(ll->inodes);
		free(ll);
		return NULL;
	}
	return ll;
}

struct fuse_session *lowlevel_session(struct lowlevel *ll,
				      struct fuse_args *args)
{
	ll->se =
	    fuse_session_new(args, &lowlevel_ops, sizeof(lowlevel_ops), ll);
	return ll->se;
}

void lowlevel_set_deploy(struct lowlevel *ll, struct deploy *d)
{
	ll->deploy = d;
}

void lowlevel_stop(struct lowlevel *ll)
{
	atomic_store(&ll->stopped, true);
}

void lowlevel_free(struct lowlevel *ll)
{
	if (!ll)
		return;
	pthread_rwlock_destroy(&ll->names);
	inode_table_free(ll->inodes);
	free(ll);
}
