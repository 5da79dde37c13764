/*
 * ops_meta.c - the FUSE operations on metadata: statfs; chmod, chown and
 * utimens, which succeed without effect (the stores keep no modes, owners
 * or times); and the store's metadata as read-only extended attributes.
 * See ops.c.
 */
#include <errno.h>
#include <fuse.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

#include "ops_internal.h"
#include "topofs.h"

/* ---- statfs; modes, owners and times ---- */

int op_statfs(const char *path, struct statvfs *sv)
{
	struct topofs *t = ops_fs();
	uint64_t total = 2ull << 30, used = 0; /* etcd's default quota */
	(void)path;
	if (t->be->space && t->be->space(t->st, &total, &used) != 0)
		used = 0;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = sv->f_frsize = 4096;
	sv->f_blocks = total / 4096;
	sv->f_bfree = sv->f_bavail =
	    (total - (used < total ? used : total)) / 4096;
	sv->f_files = 1u << 20;
	sv->f_ffree = sv->f_favail = 1u << 20;
	sv->f_namemax = NAME_MAX;
	if (ops_read_only(t))
		sv->f_flag |= ST_RDONLY;
	return 0;
}

/* The stores keep no modes, owners or times: succeed without effect, so
 * cp -a, tar -x and rsync -a run clean. */
static int exists(const char *path)
{
	struct stat st;
	return op_getattr(path, &st, NULL);
}

int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)mode;
	return fi ? 0 : exists(path);
}

int op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	(void)uid;
	(void)gid;
	return fi ? 0 : exists(path);
}

int op_utimens(const char *path, const struct timespec tv[2],
	       struct fuse_file_info *fi)
{
	(void)tv;
	return fi ? 0 : exists(path);
}

/* ---- extended attributes: the store's metadata, read-only (SPEC 3) ---- */

/* The attributes of a node with meta m: generic ones, then the backend's. */
static size_t node_xattrs(struct topofs *t, const struct topo_meta *m,
			  struct topo_xattr *out)
{
	out[0] = (struct topo_xattr){"user.topo.version", m->version};
	out[1] = (struct topo_xattr){"user.topo.ephemeral", m->ephemeral};
	size_t n = 2;
	if (t->be->xattrs)
		n += t->be->xattrs(m, out + n);
	return n;
}

/* The metadata behind a path's attributes. -ENOENT, or -ENODATA when the
 * node holds no value (a plain directory, a scratch file, a file being
 * created that the store does not hold yet: stat shows it, so it exists). */
static int xattr_meta(struct topofs *t, const char *path, struct topo_meta *m)
{
	struct tpath tp;
	struct cache_stat cs;
	size_t pending;
	int rc = ops_resolve(t, path, &tp);
	if (rc)
		return rc;
	if (tp.scratch) {
		struct stat st;
		rc = ops_stat_scratch(t, &tp, &st);
		return rc ? rc : -ENODATA;
	}
	rc = cache_stat_brief(t->cache, tp.p, &cs);
	bool absent = rc == -ENOENT || (!rc && !cs.has_data && tp.is_data);
	if (absent && handle_pending(&t->handles, tp.p, true, &pending))
		return -ENODATA;
	if (rc)
		return rc;
	if (!cs.has_data)
		return tp.is_data ? -ENOENT : -ENODATA;
	if (cs.meta.denied)
		return -EACCES;
	*m = cs.meta;
	return 0;
}

/* The mount-wide revision (-o revision/snapshot: the pinned one; else the
 * store's current one) is an attribute of the root only, on stores that
 * have one (etcd v3). */
#define XATTR_REVISION "user.topo.revision"

static bool has_revision_xattr(const struct topofs *t, const char *path)
{
	return t->be->revision && strcmp(path, "/") == 0;
}

/* An attribute's value: the number as decimal text. */
static int xattr_number(int64_t v, char *value, size_t size)
{
	char text[32];
	int len = snprintf(text, sizeof(text), "%" PRId64, v);
	if (size == 0)
		return len;
	if ((size_t)len > size)
		return -ERANGE;
	memcpy(value, text, (size_t)len);
	return len;
}

static int revision_xattr(struct topofs *t, char *value, size_t size)
{
	int64_t rev;
	bool pinned;
	int rc = t->be->revision(t->st, &rev, &pinned);
	if (rc)
		return rc == -ENOMEM ? rc : -EIO;
	return xattr_number(rev, value, size);
}

int op_getxattr(const char *path, const char *name, char *value, size_t size)
{
	struct topofs *t = ops_fs();
	struct topo_meta m;
	struct topo_xattr xa[2 + TOPO_XATTR_MAX];
	if (has_revision_xattr(t, path) && strcmp(name, XATTR_REVISION) == 0)
		return revision_xattr(t, value, size);
	int rc = xattr_meta(t, path, &m);
	if (rc)
		return rc;
	size_t n = node_xattrs(t, &m, xa);
	for (size_t i = 0; i < n; i++)
		if (strcmp(xa[i].name, name) == 0)
			return xattr_number(xa[i].value, value, size);
	return -ENODATA;
}

int op_listxattr(const char *path, char *list, size_t size)
{
	struct topofs *t = ops_fs();
	struct topo_meta m;
	struct topo_xattr xa[3 + TOPO_XATTR_MAX];
	int rc = xattr_meta(t, path, &m);
	if (rc && rc != -ENODATA)
		return rc;
	size_t n = rc ? 0 : node_xattrs(t, &m, xa), need = 0;
	if (has_revision_xattr(t, path))
		xa[n++] = (struct topo_xattr){XATTR_REVISION, 0};
	for (size_t i = 0; i < n; i++)
		need += strlen(xa[i].name) + 1;
	if (size == 0)
		return (int)need;
	if (need > size)
		return -ERANGE;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(xa[i].name) + 1;
		memcpy(list, xa[i].name, len);
		list += len;
	}
	return (int)need;
}

/* The attributes are the store's; nothing can set them. ENOTSUP lets cp -a
 * and rsync -X go on quietly. */
int op_setxattr(const char *path, const char *name, const char *value,
		size_t size, int flags)
{
	(void)path, (void)name, (void)value, (void)size, (void)flags;
	return -ENOTSUP;
}

int op_removexattr(const char *path, const char *name)
{
	(void)path, (void)name;
	return -ENOTSUP;
}
