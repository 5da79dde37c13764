/*
 * lowlevel_notify.c - the kernel told of changes in the store: the
 * invalidations of its names, attributes and listings that the notifier
 * threads (notify.c) ask for, and the count of changes that replies being
 * built may have raced. See lowlevel.c's top comment: Concurrency (only
 * the notifier threads write invalidations) and A reply racing an
 * invalidation.
 */
#include <errno.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "inode.h"
#include "lowlevel.h"
#include "lowlevel_internal.h"
#include "topofs.h"

/* ---- the kernel told of changes ---- */

/* Drop the kernel's attributes and pages (a directory's cached listing)
 * of node ino. -ENOENT, the kernel holding nothing of it, is fine. */
static void inval_inode(struct lowlevel *ll, uint64_t ino)
{
	if (!atomic_load(&ll->stopped))
		fuse_lowlevel_notify_inval_inode(ll->se, ino, 0, 0);
}

/* Make the kernel look `name` in `parent` up again before using it (and
 * drop parent's attributes and listing). Expiring, unlike invalidating,
 * keeps the names below a directory when the lookup finds it unchanged.
 * (Kernels before 6.2 invalidate instead: also right, only costlier.) */
static void expire_entry(struct lowlevel *ll, uint64_t parent, const char *name)
{
	if (!atomic_load(&ll->stopped))
		fuse_lowlevel_notify_expire_entry(
		    ll->se, parent, name, strlen(name), FUSE_LL_EXPIRE_ONLY);
}

/* Drop what the kernel holds of node r; with `entry`, of its name too. */
static void drop_node(struct lowlevel *ll, const struct inode_ref *r,
		      bool entry)
{
	if (entry && r->parent)
		expire_entry(ll, r->parent, r->name);
	inval_inode(ll, r->ino);
}

/* p/.topofs-data may have appeared, changed or gone with any change of p. */
static void drop_data_file(struct lowlevel *ll, const char *p)
{
	char data[PATH_MAX + sizeof(TOPO_DATA_NAME) + 1];
	struct inode_ref r;
	snprintf(data, sizeof(data), "%s/%s", p, TOPO_DATA_NAME);
	if (inode_find(ll->inodes, data, &r) == 0)
		drop_node(ll, &r, true);
}

/* The store path within t of d, a path of the mount below t's top
 * directory (see mount_path). */
static const char *store_path(const struct topofs *t, const char *d)
{
	size_t n = strlen(t->top);
	return n == 0 ? d : d[n] == '/' ? d + n + 1 : d + n;
}

/* The listing of directory d (a path of the mount, cut short here) of
 * filesystem t changed. Go up while d itself may have appeared, gone or
 * changed type: on etcd the first key under a prefix makes a directory and
 * the last one's delete ends it; on either store a file may gain children.
 * The kernel holds no dentry for a name it does not know (no negative
 * caching), but its parent's listing may show it. Up to t's root. */
static void drop_listing(struct lowlevel *ll, struct topofs *t, char *d)
{
	for (;;) {
		struct inode_ref r;
		bool known = inode_find(ll->inodes, d, &r) == 0;
		if (known)
			inval_inode(ll, r.ino);
		if (!*store_path(t, d))
			return; /* t's root */
		if (known && S_ISDIR(r.type) &&
		    cache_knows_dir(t->cache, store_path(t, d)))
			return; /* still the directory the kernel knows */
		if (known)
			expire_entry(ll, r.parent, r.name);
		d[path_parent_len(d)] = '\0';
	}
}

static void drop_all(struct lowlevel *ll)
{
	struct inode_ref *refs;
	ssize_t n = inode_list(ll->inodes, &refs);
	for (ssize_t i = 0; i < n; i++)
		drop_node(ll, &refs[i], true);
	free(refs);
}

/* Store path `path` of t as a path of the mount, in p[PATH_MAX]: t's top
 * directory (in a deployment view) then the path. -ENAMETOOLONG if it
 * cannot be a path the kernel knows. */
static int mount_path(const struct topofs *t, const char *path, char *p)
{
	while (*path == '/')
		path++;
	int n = snprintf(p, PATH_MAX, "%s%s%s", t->top,
			 *t->top && *path ? "/" : "", path);
	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

void lowlevel_invalidate(void *arg, const char *path, int kind)
{
	struct topofs *t = arg;
	struct lowlevel *ll = t->ll;
	char p[PATH_MAX];
	struct inode_ref self;
	if (atomic_load(&ll->stopped) || mount_path(t, path, p))
		return; /* nothing to tell, or no such path in the kernel */
	if (kind == INVAL_LISTING) {
		/* no change of its own: replies racing it are not stale */
		if (inode_find(ll->inodes, p, &self) == 0)
			inval_inode(ll, self.ino);
		return;
	}
	inode_note_change(ll->inodes); /* before anything is looked at */
	if (kind == INVAL_ALL) {
		drop_all(ll);
		return;
	}
	if (kind == INVAL_CHILDREN) {
		drop_listing(ll, t, p);
		return;
	}
	/* a node's value, or its existence and type */
	if (inode_find(ll->inodes, p, &self) == 0)
		drop_node(ll, &self, kind == INVAL_GONE);
	drop_data_file(ll, p);
	if (kind == INVAL_WRITTEN || !*store_path(t, p))
		return;
	p[path_parent_len(p)] = '\0';
	drop_listing(ll, t, p); /* its names, nlink and mtime */
}

void lowlevel_forget_top(struct lowlevel *ll, const char *name)
{
	inode_note_change(ll->inodes);
	inode_unlink(ll->inodes, INODE_ROOT, name);
}

void lowlevel_invalidate_top(void *arg, const char *name, int kind)
{
	struct lowlevel *ll = arg;
	(void)kind;
	if (atomic_load(&ll->stopped))
		return;
	inode_note_change(ll->inodes);
	expire_entry(ll, INODE_ROOT, name);
	inval_inode(ll, INODE_ROOT);
}

void lowlevel_note_change(struct lowlevel *ll)
{
	if (ll)
		inode_note_change(ll->inodes);
}
