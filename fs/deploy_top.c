/*
 * deploy_top.c - requests in a deployment view: routing a path to its
 * part, holding parts, and the operations of the mount's top directory and
 * of cells that are not connected. See deploy.c for parts and locks.
 *
 * The operations here take the mount's own paths ("/", "/zone1",
 * "/zone1/x"), not a part's, and return 0 or a negative errno as in
 * libfuse. The top directory lists global/ and the cells; its names are
 * the deployment's: they are not made, removed or renamed by hand (a cell
 * comes with its CellInfo record).
 */
#include <errno.h>
#include <fuse.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploy.h"
#include "deploy_internal.h"
#include "topofs.h"
#include "topofs/log.h"

/* ---- parts ---- */

static void top_stat(struct deploy *d, const char *name, nlink_t nlink,
		     struct stat *st);

struct deploy_part *deploy_find(struct deploy *d, const char *name)
{
	for (struct deploy_part *p = d->parts; p; p = p->next)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

bool deploy_is_part(struct deploy *d, const char *name)
{
	pthread_mutex_lock(&d->lock);
	bool found = deploy_find(d, name) != NULL;
	pthread_mutex_unlock(&d->lock);
	return found;
}

void deploy_hold(struct deploy_part *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->d->lock);
	p->holds++;
	pthread_mutex_unlock(&p->d->lock);
}

void deploy_release(struct deploy_part *p)
{
	if (!p)
		return;
	struct deploy *d = p->d;
	pthread_mutex_lock(&d->lock);
	if (--p->holds == 0 && p->retired)
		pthread_cond_broadcast(&d->wake); /* the reconciler frees it */
	pthread_mutex_unlock(&d->lock);
}

/* The part named `name`, held, once its first connection attempt ended;
 * NULL if none. */
static struct deploy_part *hold_part(struct deploy *d, const char *name)
{
	pthread_mutex_lock(&d->lock);
	struct deploy_part *p = deploy_find(d, name);
	if (!p && deploy_wants(d, name)) {
		pthread_mutex_unlock(&d->lock);
		deploy_reconcile(d);
		pthread_mutex_lock(&d->lock);
		p = deploy_find(d, name);
	}
	if (p) {
		p->holds++;
		while (p->state == PART_CONNECTING && !p->stop)
			pthread_cond_wait(&d->changed, &d->lock);
	}
	pthread_mutex_unlock(&d->lock);
	return p;
}

/* A connected cell's top directory is its root, but still listed and
 * shown when its store fails (ls -l of the mount must not fail on the
 * cell of a datacenter that is down): its attributes and metadata then as
 * a cell that is down shows them. Everything else is its root's. */
static int cell_top_getattr(const char *path, struct stat *st,
			    struct fuse_file_info *fi)
{
	int rc = topofs_ops.getattr(path, st, fi);
	if (rc && rc != -ENOENT) {
		struct topofs *t = topofs_request()->t;
		top_stat(t->part->d, t->top, 2, st);
		rc = 0;
	}
	return rc;
}

static int cell_top_getxattr(const char *path, const char *name, char *value,
			     size_t size)
{
	int rc = topofs_ops.getxattr(path, name, value, size);
	return rc == -EIO || rc == -ETIMEDOUT ? -ENODATA : rc;
}

static int cell_top_listxattr(const char *path, char *list, size_t size)
{
	int rc = topofs_ops.listxattr(path, list, size);
	return rc == -EIO || rc == -ETIMEDOUT ? 0 : rc;
}

static struct fuse_operations cell_top;
static pthread_once_t cell_top_once = PTHREAD_ONCE_INIT;

static void cell_top_init(void)
{
	cell_top = topofs_ops;
	cell_top.getattr = cell_top_getattr;
	cell_top.getxattr = cell_top_getxattr;
	cell_top.listxattr = cell_top_listxattr;
}

static const struct fuse_operations *cell_top_ops(void)
{
	pthread_once(&cell_top_once, cell_top_init);
	return &cell_top;
}

void deploy_route(struct deploy *d, const char *path, enum route_use use,
		  struct route *r)
{
	*r = (struct route){
	    .t = d->global, .ops = &deploy_top_ops, .path = path};
	if (path[0] != '/' || path[1] == '\0')
		return; /* the top directory */
	const char *name = path + 1;
	size_t len = strcspn(name, "/");
	const char *rest = name + len;
	char top[NAME_MAX + 1];
	if (len > NAME_MAX || (use == ROUTE_NAME && !*rest))
		return; /* a top-level name itself: the deployment's */
	memcpy(top, name, len);
	top[len] = '\0';
	struct deploy_part *p = hold_part(d, top);
	if (!p)
		return;
	r->part = p;
	pthread_mutex_lock(&d->lock);
	bool up = p->state == PART_UP;
	pthread_mutex_unlock(&d->lock);
	if (up) {
		r->t = p->t;
		r->ops = *rest ? &topofs_ops : cell_top_ops();
		r->path = *rest ? rest : "/";
		r->store = true;
	} else {
		r->ops = &deploy_down_ops; /* with the mount's path */
	}
}

/* Every connected part, retired ones too, held, in a malloc'd array of
 * *n; NULL on ENOMEM. */
static struct deploy_part **hold_connected(struct deploy *d, size_t *n)
{
	pthread_mutex_lock(&d->lock);
	size_t count = 0;
	struct deploy_part *lists[] = {d->parts, d->retired};
	for (size_t i = 0; i < 2; i++)
		for (struct deploy_part *p = lists[i]; p; p = p->next)
			count++;
	struct deploy_part **held = calloc(count, sizeof(*held));
	*n = 0;
	for (size_t i = 0; held && i < 2; i++)
		for (struct deploy_part *p = lists[i]; p; p = p->next)
			if (p->state == PART_UP) {
				p->holds++;
				held[(*n)++] = p;
			}
	pthread_mutex_unlock(&d->lock);
	return held;
}

int deploy_getattr_node(struct deploy *d, uint64_t node, struct stat *st)
{
	/* an unlinked open file may be in any part, a retired one too */
	size_t n;
	struct deploy_part **held = hold_connected(d, &n);
	int rc = held ? -ESTALE : -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (rc)
			rc = ops_getattr_node(held[i]->t, node, st);
		deploy_release(held[i]);
	}
	free(held);
	return rc;
}

/* ---- the top directory's operations ---- */

static struct deploy *deploy_of_request(void)
{
	return topofs_request()->t->part->d;
}

/* The top-level name of path ("/name", no further '/'), or NULL. */
static const char *top_name(const char *path)
{
	if (path[0] != '/' || !path[1] || strchr(path + 1, '/'))
		return NULL;
	return path + 1;
}

/* The attributes of a top directory (`name`; NULL: the top directory
 * itself) shown without its store: times of the mount's start. */
static void top_stat(struct deploy *d, const char *name, nlink_t nlink,
		     struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = name ? path_ino_at(name, "", false) : 1;
	st->st_mode = S_IFDIR | (d->global->opts->read_only ? 0555 : 0755);
	st->st_nlink = nlink;
	st->st_uid = d->global->uid;
	st->st_gid = d->global->gid;
	st->st_size = 4096;
	st->st_blocks = 8;
	st->st_blksize = 4096;
	st->st_mtim = st->st_ctim = st->st_atim = d->started;
}

static size_t count_parts(struct deploy *d)
{
	size_t n = 0;
	pthread_mutex_lock(&d->lock);
	for (struct deploy_part *p = d->parts; p; p = p->next)
		n++;
	pthread_mutex_unlock(&d->lock);
	return n;
}

static int top_getattr(const char *path, struct stat *st,
		       struct fuse_file_info *fi)
{
	(void)fi;
	struct deploy *d = deploy_of_request();
	if (strcmp(path, "/") != 0)
		return -ENOENT; /* no such cell */
	top_stat(d, NULL, 2 + count_parts(d), st);
	return 0;
}

static int top_opendir(const char *path, struct fuse_file_info *fi)
{
	fi->fh = 0; /* listed afresh at every READDIR (a few names) */
	return strcmp(path, "/") == 0 ? 0 : -ENOENT;
}

static int top_releasedir(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	return 0;
}

/* The names listed: global, then the cells. A malloc'd array of n
 * strdup'd names, or NULL on ENOMEM. */
static char **list_names(struct deploy *d, size_t *n)
{
	pthread_mutex_lock(&d->lock);
	size_t count = 0;
	for (struct deploy_part *p = d->parts; p; p = p->next)
		count++;
	char **names = calloc(count ? count : 1, sizeof(*names));
	size_t i = 0;
	for (struct deploy_part *p = d->parts; names && p; p = p->next)
		if ((names[i] = strdup(p->name)))
			i++;
	pthread_mutex_unlock(&d->lock);
	*n = i;
	return names;
}

/* Offsets: 1 after ".", 2 after "..", then 3 + i after name i. The
 * entries carry no attributes (no FUSE_FILL_DIR_PLUS): the kernel looks
 * each name up, which shows a cell's own root. */
static int top_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
		       off_t off, struct fuse_file_info *fi,
		       enum fuse_readdir_flags flags)
{
	(void)fi;
	(void)flags;
	struct deploy *d = deploy_of_request();
	if (strcmp(path, "/") != 0)
		return -ENOENT;
	if (off == 0) /* a CellInfo written just now shows at once */
		deploy_reconcile(d);
	size_t n;
	char **names = list_names(d, &n);
	if (!names)
		return -ENOMEM;
	int full = 0;
	if (off < 1)
		full = filler(buf, ".", NULL, 1, 0);
	if (!full && off < 2)
		full = filler(buf, "..", NULL, 2, 0);
	for (size_t i = off >= 3 ? (size_t)off - 2 : 0; !full && i < n; i++) {
		struct stat st;
		top_stat(d, names[i], 2, &st);
		full = filler(buf, names[i], &st, (off_t)(3 + i), 0);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return 0;
}

static int top_mkdir(const char *path, mode_t mode)
{
	(void)mode;
	struct deploy *d = deploy_of_request();
	const char *name = top_name(path);
	if (!name)
		return path[1] ? -ENOENT : -EEXIST;
	if (deploy_is_part(d, name))
		return -EEXIST;
	if (deploy_wants(d, name))
		topo_err("mkdir %s: no cell '%s': write "
			 "global/cells/%s/CellInfo first (its servers and "
			 "root)",
			 path, name, name);
	else
		topo_err("mkdir %s: '%s' is not among -o cells=%s", path, name,
			 d->filter);
	return -EPERM;
}

static int top_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)mode;
	(void)fi;
	const char *name = top_name(path);
	if (!name)
		return -ENOENT;
	topo_err("create %s: the top directory holds global/ and the cells' "
		 "directories only",
		 path);
	return -EPERM;
}

/* rmdir, unlink and rename of a top-level name. */
static int top_remove(const char *path, bool dir)
{
	struct deploy *d = deploy_of_request();
	const char *name = top_name(path);
	if (!name)
		return path[1] ? -ENOENT : -EBUSY;
	if (!deploy_is_part(d, name))
		return -ENOENT;
	return dir ? -EBUSY : -EISDIR; /* as a mount point is */
}

static int top_rmdir(const char *path)
{
	return top_remove(path, true);
}

static int top_unlink(const char *path)
{
	return top_remove(path, false);
}

static int top_rename(const char *from, const char *to, unsigned int flags)
{
	(void)flags;
	const char *name = top_name(from);
	if (name && deploy_is_part(deploy_of_request(), name))
		return -EBUSY;
	if (top_name(to) && !top_name(from))
		return -EXDEV; /* into the top directory: from a part */
	return -ENOENT;
}

static int top_open(const char *path, struct fuse_file_info *fi)
{
	(void)fi;
	return strcmp(path, "/") == 0 ? -EISDIR : -ENOENT;
}

static int top_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	(void)size;
	return top_open(path, fi);
}

static int top_statfs(const char *path, struct statvfs *sv)
{
	(void)path;
	return topofs_ops.statfs("/", sv); /* the global store's */
}

/* Modes, owners and times of the top directory: as a plain mount's root
 * takes them (the stores keep none). */
static int top_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return strcmp(path, "/") ? -ENOENT : topofs_ops.chmod("/", mode, fi);
}

static int top_chown(const char *path, uid_t uid, gid_t gid,
		     struct fuse_file_info *fi)
{
	return strcmp(path, "/") ? -ENOENT
				 : topofs_ops.chown("/", uid, gid, fi);
}

static int top_utimens(const char *path, const struct timespec tv[2],
		       struct fuse_file_info *fi)
{
	return strcmp(path, "/") ? -ENOENT : topofs_ops.utimens("/", tv, fi);
}

/* The top directory has no store, so none of its metadata. */
static int top_getxattr(const char *path, const char *name, char *value,
			size_t size)
{
	(void)name;
	(void)value;
	(void)size;
	return strcmp(path, "/") ? -ENOENT : -ENODATA;
}

static int top_listxattr(const char *path, char *list, size_t size)
{
	(void)list;
	(void)size;
	return strcmp(path, "/") ? -ENOENT : 0;
}

static int top_setxattr(const char *path, const char *name, const char *value,
			size_t size, int flags)
{
	(void)name;
	(void)value;
	(void)size;
	(void)flags;
	return strcmp(path, "/") ? -ENOENT : -ENOTSUP;
}

static int top_removexattr(const char *path, const char *name)
{
	(void)name;
	return strcmp(path, "/") ? -ENOENT : -ENODATA;
}

const struct fuse_operations deploy_top_ops = {
    .getattr = top_getattr,
    .opendir = top_opendir,
    .readdir = top_readdir,
    .releasedir = top_releasedir,
    .mkdir = top_mkdir,
    .rmdir = top_rmdir,
    .open = top_open,
    .create = top_create,
    .truncate = top_truncate,
    .unlink = top_unlink,
    .rename = top_rename,
    .statfs = top_statfs,
    .chmod = top_chmod,
    .chown = top_chown,
    .utimens = top_utimens,
    .getxattr = top_getxattr,
    .listxattr = top_listxattr,
    .setxattr = top_setxattr,
    .removexattr = top_removexattr,
};

/* ---- a cell that is not connected ---- */

static int down_getattr(const char *path, struct stat *st,
			struct fuse_file_info *fi)
{
	(void)fi;
	const char *name = top_name(path);
	if (!name)
		return -EIO;
	top_stat(deploy_of_request(), name, 2, st);
	return 0;
}

static int down_path(const char *path)
{
	(void)path;
	return -EIO;
}

static int down_opendir(const char *path, struct fuse_file_info *fi)
{
	(void)fi;
	return down_path(path);
}

static int down_mkdir(const char *path, mode_t mode)
{
	(void)mode;
	return down_path(path);
}

static int down_open(const char *path, struct fuse_file_info *fi)
{
	(void)fi;
	return down_path(path);
}

static int down_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)mode;
	(void)fi;
	return down_path(path);
}

static int down_truncate(const char *path, off_t size,
			 struct fuse_file_info *fi)
{
	(void)size;
	(void)fi;
	return down_path(path);
}

static int down_rename(const char *from, const char *to, unsigned int flags)
{
	(void)to;
	(void)flags;
	return down_path(from);
}

static int down_statfs(const char *path, struct statvfs *sv)
{
	(void)sv;
	return down_path(path);
}

static int down_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)mode;
	(void)fi;
	return down_path(path);
}

static int down_chown(const char *path, uid_t uid, gid_t gid,
		      struct fuse_file_info *fi)
{
	(void)uid;
	(void)gid;
	(void)fi;
	return down_path(path);
}

static int down_utimens(const char *path, const struct timespec tv[2],
			struct fuse_file_info *fi)
{
	(void)tv;
	(void)fi;
	return down_path(path);
}

/* The top directory of a cell that is down has no metadata to show (ls -l
 * asks for ACLs and security labels of every name it lists). */
static int down_getxattr(const char *path, const char *name, char *value,
			 size_t size)
{
	(void)name;
	(void)value;
	(void)size;
	return top_name(path) ? -ENODATA : down_path(path);
}

static int down_listxattr(const char *path, char *list, size_t size)
{
	(void)list;
	(void)size;
	return top_name(path) ? 0 : down_path(path);
}

static int down_setxattr(const char *path, const char *name, const char *value,
			 size_t size, int flags)
{
	(void)name;
	(void)value;
	(void)size;
	(void)flags;
	return down_path(path);
}

static int down_removexattr(const char *path, const char *name)
{
	(void)name;
	return down_path(path);
}

const struct fuse_operations deploy_down_ops = {
    .getattr = down_getattr,
    .opendir = down_opendir,
    .releasedir = top_releasedir,
    .mkdir = down_mkdir,
    .rmdir = down_path,
    .open = down_open,
    .create = down_create,
    .truncate = down_truncate,
    .unlink = down_path,
    .rename = down_rename,
    .statfs = down_statfs,
    .chmod = down_chmod,
    .chown = down_chown,
    .utimens = down_utimens,
    .getxattr = down_getxattr,
    .listxattr = down_listxattr,
    .setxattr = down_setxattr,
    .removexattr = down_removexattr,
};
