/* zkutil.c - see zkutil.h. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zkutil.h"

int zk_root_norm(const char *root, char **out)
{
	if (!root || root[0] != '/')
		return -EINVAL;
	size_t n = strlen(root);
	while (n > 0 && root[n - 1] == '/')
		n--;
	*out = strndup(root, n);
	return *out ? 0 : -ENOMEM;
}

char *zk_abs_path(const char *root, const char *rel)
{
	char *p = NULL;
	if (!rel[0])
		return strdup(root[0] ? root : "/");
	if (asprintf(&p, "%s/%s", root, rel) < 0)
		return NULL;
	return p;
}

const char *zk_rel_path(const char *root, const char *abs)
{
	size_t n = strlen(root);
	return abs[n] ? abs + n + 1 : abs + n; /* abs[n] is '/' or the end */
}

char *zk_join(const char *parent, const char *name)
{
	char *p = NULL;
	const char *sep = strcmp(parent, "/") == 0 ? "" : "/";
	if (asprintf(&p, "%s%s%s", parent, sep, name) < 0)
		return NULL;
	return p;
}

int zk_auth_parse(const char *text, char **scheme, char **cert)
{
	while (isspace((unsigned char)*text))
		text++;
	size_t n = strlen(text);
	while (n > 0 && isspace((unsigned char)text[n - 1]))
		n--;
	const char *colon = memchr(text, ':', n);
	if (!colon || colon == text || colon + 1 == text + n)
		return -EINVAL;
	*scheme = strndup(text, (size_t)(colon - text));
	*cert = strndup(colon + 1, (size_t)(text + n - colon - 1));
	if (*scheme && *cert)
		return 0;
	free(*scheme);
	free(*cert);
	*scheme = *cert = NULL;
	return -ENOMEM;
}

int zk_auth_read(const char *file, char **scheme, char **cert, char *errbuf,
		 size_t errlen)
{
	char buf[4096];
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(errbuf, errlen,
			 "cannot read ZooKeeper auth file %s: %s", file,
			 strerror(e));
		return -e;
	}
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int e = errno;
	close(fd);
	if (n < 0) {
		snprintf(errbuf, errlen,
			 "cannot read ZooKeeper auth file %s: %s", file,
			 strerror(e));
		return -e;
	}
	buf[n] = '\0';
	int rc = zk_auth_parse(buf, scheme, cert);
	if (rc == -EINVAL)
		snprintf(
		    errbuf, errlen,
		    "ZooKeeper auth file %s must hold one line scheme:auth",
		    file);
	else if (rc)
		snprintf(errbuf, errlen, "out of memory");
	return rc;
}

int zk_session_ms(unsigned timeout_ms)
{
	/* The server grants between 2 and 20 ticks (4 s .. 40 s by default). */
	if (timeout_ms < 4000)
		return 4000;
	if (timeout_ms > 40000)
		return 40000;
	return (int)timeout_ms;
}

bool zk_fits(const char *path, size_t len)
{
	return len <= ZK_PACKET_MAX - ZK_OP_OVERHEAD - strlen(path);
}

size_t zk_ancestors(const char *root, const char *abs, size_t *lens, size_t max)
{
	size_t n = 0;
	size_t start = strlen(root) + 1; /* first byte of the first segment */
	if (strlen(abs) <= start)
		return 0;
	for (const char *p = abs + start; (p = strchr(p, '/')); p++) {
		if (n < max)
			lens[n] = (size_t)(p - abs);
		n++;
	}
	return n;
}

size_t zk_parent_len(const char *abs)
{
	const char *slash = strrchr(abs, '/');
	if (!slash || !abs[1])
		return 0;
	return slash == abs ? 1 : (size_t)(slash - abs);
}

bool zk_below_root(const char *root, const char *abs, const char **rel)
{
	size_t n = strlen(root);
	if (!abs || abs[0] != '/' || strncmp(abs, root, n) != 0)
		return false;
	if (n == 0) /* the root is "/" */
		*rel = abs + 1;
	else if (abs[n] == '\0')
		*rel = abs + n;
	else if (abs[n] == '/')
		*rel = abs + n + 1;
	else
		return false;
	return true;
}

bool zk_same_node(int64_t want, int64_t czxid)
{
	return want == 0 || want == czxid;
}

enum zk_set_fate zk_set_fate(int want, int64_t want_czxid, int version,
			     int64_t czxid, bool same)
{
	/* Another znode at the path: never ours to write, whatever it holds
	 * (our set may even have landed on it, in the instant between our
	 * check of the node and the set: it is still a conflict). */
	if (!zk_same_node(want_czxid, czxid))
		return ZK_SET_CONFLICT;
	if (same && (want < 0 || version == want + 1))
		return ZK_SET_LANDED;
	if (want < 0 || version == want)
		return ZK_SET_UNTOUCHED;
	return ZK_SET_CONFLICT;
}

size_t zk_acl_bytes(const struct ACL_vector *v)
{
	size_t n = 4; /* the count */
	for (int32_t i = 0; v && i < v->count; i++)
		n += 4 + 4 + strlen(v->data[i].id.scheme) + 4 +
		     strlen(v->data[i].id.id);
	return n;
}

void zk_acl_free(struct ACL_vector *v)
{
	for (int32_t i = 0; v->data && i < v->count; i++) {
		free(v->data[i].id.scheme);
		free(v->data[i].id.id);
	}
	free(v->data);
	v->data = NULL;
	v->count = 0;
}

int zk_acl_copy(struct ACL_vector *dst, const struct ACL_vector *src)
{
	dst->count = 0;
	dst->data = NULL;
	if (!src || src->count <= 0)
		return 0;
	dst->data = calloc((size_t)src->count, sizeof(*dst->data));
	if (!dst->data)
		return -ENOMEM;
	for (int32_t i = 0; i < src->count; i++) {
		const struct ACL *a = &src->data[i];
		struct ACL *b = &dst->data[i];
		b->perms = a->perms;
		b->id.scheme = strdup(a->id.scheme ? a->id.scheme : "");
		b->id.id = strdup(a->id.id ? a->id.id : "");
		dst->count = i + 1;
		if (!b->id.scheme || !b->id.id) {
			zk_acl_free(dst);
			return -ENOMEM;
		}
	}
	return 0;
}

/* The index of path[0..len) in c, or c->n. */
static size_t acls_index(const struct zk_acls *c, const char *path, size_t len)
{
	size_t i;
	for (i = 0; i < c->n; i++)
		if (strlen(c->paths[i]) == len &&
		    memcmp(c->paths[i], path, len) == 0)
			break;
	return i;
}

const struct ACL_vector *zk_acls_find(const struct zk_acls *c, const char *path,
				      size_t len)
{
	size_t i = acls_index(c, path, len);
	return i < c->n ? &c->acls[i] : NULL;
}

int zk_acls_add(struct zk_acls *c, const char *path, size_t len,
		const struct ACL_vector *acl)
{
	struct ACL_vector copy;
	if (zk_acl_copy(&copy, acl))
		return -ENOMEM;
	size_t i = acls_index(c, path, len);
	if (i < c->n) {
		zk_acl_free(&c->acls[i]);
		c->acls[i] = copy;
		return 0;
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 8;
		char **p = realloc(c->paths, cap * sizeof(*p));
		if (p)
			c->paths = p;
		struct ACL_vector *a =
		    p ? realloc(c->acls, cap * sizeof(*a)) : NULL;
		if (a)
			c->acls = a;
		if (!p || !a) {
			zk_acl_free(&copy);
			return -ENOMEM;
		}
		c->cap = cap;
	}
	c->paths[c->n] = strndup(path, len);
	if (!c->paths[c->n]) {
		zk_acl_free(&copy);
		return -ENOMEM;
	}
	c->acls[c->n++] = copy;
	return 0;
}

void zk_acls_free(struct zk_acls *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->paths[i]);
		zk_acl_free(&c->acls[i]);
	}
	free(c->paths);
	free(c->acls);
	memset(c, 0, sizeof(*c));
}
