/*
 * cache.c - the tree as last seen from the store (see cache.h): its nodes
 * and the lookups in them, the queries answered from it, and its life.
 *
 * The cache's other concerns have a file each (cache_internal.h lists them
 * and what they share): listings and their freshness in cache_listing.c,
 * change notices and stale nodes in cache_notice.c, our own writes in
 * cache_write.c.
 *
 * Concurrency
 *   FUSE calls us from many threads. One mutex, `mu`, guards the whole tree;
 *   it is never held across a store request. Re-listing a directory takes
 *   `refresh_mu` for the duration of the store request, so that when many
 *   threads find the same directory stale at once, one fetches and the
 *   others find it fresh when they get the lock.
 *
 *   A listing fetched while the filesystem wrote to the store, or while a
 *   watch reported a change, may predate that change: how it is applied
 *   then, so that the cache never goes back to a value older than a change
 *   it was told about, is in cache_listing.c (Concurrency).
 *
 * Freshness
 *   With a watch (cache_watch_started), a listed directory stays fresh
 *   until a change notice marks it stale: no time limit. Without one, a
 *   listing is trusted for ttl_ms. Once a ZooKeeper child watch has fired,
 *   the directory's listing is trusted for ttl_ms only, until one
 *   names-only read confirms it (at once after another client's change):
 *   see cache_notice.c (Freshness).
 *
 * Shape
 *   Nodes hold their children in an array sorted by name (binary search;
 *   listings arrive sorted, so building is mostly appending); a single
 *   child is kept in the node itself, no array (cache_kids). A node is a
 *   directory if it has children, is the root, was made by mkdir (`local`)
 *   or is one in the store (`real_dir`, ZooKeeper).
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "cache_internal.h"
#include "meta_pack.h"
#include "path.h"

uint64_t cache_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- nodes ---- */

/* Bytes for a node with a name of len bytes: up to the end of its name,
 * not sizeof + name (sizeof counts the padding after the bit-fields, where
 * the name starts): 7 bytes less, which is 16 less from malloc for most
 * of a Vitess tree's names (two million nodes at 1M keys: 32 MiB). Never
 * less than sizeof, so that the struct itself is always all there. */
static size_t node_size(size_t len)
{
	size_t size = offsetof(struct cnode, name) + len + 1;
	return size < sizeof(struct cnode) ? sizeof(struct cnode) : size;
}

struct cnode *cache_node_new(const char *name, size_t len)
{
	struct cnode *n = calloc(1, node_size(len));
	if (!n)
		return NULL;
	memcpy(n->name, name, len);
	n->name[len] = '\0';
	return n;
}

void cache_node_free(struct cnode *n)
{
	if (!n)
		return;
	struct cnode **k = cache_kids(n);
	for (size_t i = 0; i < n->nkids; i++)
		cache_node_free(k[i]);
	if (n->capkids > 1)
		free(n->kids.many);
	free(n->data);
	free(n->ext);
	free(n);
}

struct cnode *cache_node_rename(struct cnode *n, const char *name)
{
	size_t len = strlen(name);
	struct cnode *r = realloc(n, node_size(len));
	if (!r)
		return NULL;
	memcpy(r->name, name, len + 1);
	return r;
}

struct cnode_ext *cache_node_ext(struct cnode *n)
{
	if (!n->ext)
		n->ext = calloc(1, sizeof(*n->ext));
	return n->ext;
}

int64_t cache_node_noticed(const struct cnode *n)
{
	if (n->ext)
		return n->ext->noticed;
	return n->stale ? INT64_MAX : 0;
}

void cache_node_trim(struct cnode *n)
{
	if (n->capkids > n->nkids && n->nkids > 1) {
		struct cnode **k = realloc(n->kids.many, n->nkids * sizeof(*k));
		if (k) {
			n->kids.many = k;
			n->capkids = n->nkids;
		}
	} else if (n->capkids > n->nkids) {
		/* none or one left: kept in the node, no array */
		struct cnode *one = n->nkids ? cache_kids(n)[0] : NULL;
		if (n->capkids > 1)
			free(n->kids.many);
		n->kids.one = one;
		n->capkids = n->nkids;
	}
	struct cnode **k = cache_kids(n);
	for (size_t i = 0; i < n->nkids; i++)
		cache_node_trim(k[i]);
}

bool cache_node_is_dir(const struct cache *c, const struct cnode *n)
{
	return n == c->root || n->nkids > 0 || n->local_dir || n->real_dir;
}

/* Whether a node's own value is a file: always for a file; for a directory
 * (as DIR/.topofs-data) unless it is the empty data that every ZooKeeper
 * directory node has. */
bool cache_data_shown(const struct cache *c, const struct cnode *n)
{
	if (!n->has_data)
		return false;
	if (!cache_node_is_dir(c, n) || !(c->be->caps & TOPO_CAP_REAL_DIRS))
		return true;
	struct topo_meta m;
	cache_node_meta(n, &m);
	return m.size > 0;
}

/* Whether n holds nothing: no children, no value, not a directory of its
 * own. A stale node is not empty: a notice said it changed and its value,
 * not read yet, may be there (etcd: the put of "k" seen, then the delete
 * of "k/c", its last child, must not prune "k"). */
bool cache_node_is_empty(const struct cnode *n)
{
	return !n->nkids && !n->has_data && !n->local_dir && !n->real_dir &&
	       !n->stale;
}

/* strcmp of NUL-terminated a against b[0..blen) (b holds no NUL). */
static int name_cmp(const char *a, const char *b, size_t blen)
{
	int cmp = strncmp(a, b, blen);
	if (cmp)
		return cmp;
	return a[blen] ? 1 : 0;
}

/* Index of child `name` in n, or where it would go (*found says which). */
size_t cache_kid_index(const struct cnode *n, const char *name, size_t len,
		       bool *found)
{
	struct cnode *const *k = cache_kids_const(n);
	size_t lo = 0, hi = n->nkids;
	*found = false;
	/* listings arrive sorted: try "after the last child" first */
	if (hi > 0 && name_cmp(k[hi - 1]->name, name, len) < 0)
		return hi;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int cmp = name_cmp(k[mid]->name, name, len);
		if (cmp == 0) {
			*found = true;
			return mid;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Put `kid` into n at position i. -ENOMEM leaves n unchanged. */
int cache_kid_insert_at(struct cnode *n, size_t i, struct cnode *kid)
{
	if (n->nkids == n->capkids) {
		/* most directories hold one child (Vitess: tablets/X/Tablet),
		 * which is kept in the node; a second one makes an array; a
		 * listing's are trimmed to size once built */
		size_t cap = n->capkids ? (size_t)n->capkids * 2 : 1;
		if (cap > UINT32_MAX)
			return -ENOMEM;
		if (cap > 1) {
			struct cnode **k;
			if (n->capkids > 1) {
				k = realloc(n->kids.many, cap * sizeof(*k));
			} else {
				k = malloc(cap * sizeof(*k));
				if (k) /* nkids == capkids == 1 */
					k[0] = n->kids.one;
			}
			if (!k)
				return -ENOMEM;
			n->kids.many = k;
		}
		n->capkids = (uint32_t)cap;
	}
	struct cnode **k = cache_kids(n);
	memmove(&k[i + 1], &k[i], (n->nkids - i) * sizeof(k[0]));
	k[i] = kid;
	n->nkids++;
	return 0;
}

struct cnode *cache_kid_find(const struct cnode *n, const char *name,
			     size_t len)
{
	bool found;
	size_t i = cache_kid_index(n, name, len, &found);
	return found ? cache_kids_const(n)[i] : NULL;
}

/* The child `name` of n, created if missing. NULL on ENOMEM. */
struct cnode *cache_kid_get(struct cnode *n, const char *name, size_t len)
{
	bool found;
	size_t i = cache_kid_index(n, name, len, &found);
	if (found)
		return cache_kids(n)[i];
	struct cnode *kid = cache_node_new(name, len);
	if (kid && cache_kid_insert_at(n, i, kid)) {
		cache_node_free(kid);
		kid = NULL;
	}
	return kid;
}

/* Remove child `kid` from n (does not free it). The capacity stays, in the
 * node or in the array (cache_node_trim gives it back). */
void cache_kid_remove(struct cnode *n, struct cnode *kid)
{
	struct cnode **k = cache_kids(n);
	for (size_t i = 0; i < n->nkids; i++) {
		if (k[i] == kid) {
			memmove(&k[i], &k[i + 1],
				(n->nkids - i - 1) * sizeof(k[0]));
			n->nkids--;
			k[n->nkids] = NULL; /* no stale pointer left behind */
			return;
		}
	}
}

/* Walk from `top` along store path p; NULL if some segment is missing.
 * With create, missing nodes are made (NULL then means ENOMEM); they are as
 * fresh as their parent, which has just been told about them. With `made`,
 * *made is set to where in p the first node made starts (unchanged if none
 * was). */
struct cnode *cache_walk_made(struct cnode *top, const char *p, bool create,
			      const char **made)
{
	struct cnode *n = top;
	while (n && *p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		struct cnode *next = cache_kid_find(n, p, len);
		if (!next && create) {
			next = cache_kid_get(n, p, len);
			if (next)
				next->fetched_ms = n->fetched_ms;
			if (made && !*made)
				*made = p;
		}
		n = next;
		p = slash ? slash + 1 : p + len;
	}
	return n;
}

struct cnode *cache_walk(struct cnode *top, const char *p, bool create)
{
	return cache_walk_made(top, p, create, NULL);
}

/* The parent node of store path p, or NULL. */
struct cnode *cache_walk_parent(struct cache *c, const char *p)
{
	size_t plen = path_parent_len(p);
	char *parent = strndup(p, plen);
	if (!parent)
		return NULL;
	struct cnode *n = cache_walk(c->root, parent, false);
	free(parent);
	return n;
}

/* ---- values ---- */

/* A node's value and metadata are one allocation, n->data: byte 0 is the
 * length L of the packed metadata (meta_pack.h: some 10 to 40 bytes
 * instead of struct topo_meta's 88), bytes 1..L the metadata, then
 * meta.size bytes of value. */

int cache_node_set_value(struct cnode *n, const unsigned char *value,
			 const struct topo_meta *meta)
{
	unsigned char packed[META_PACKED_MAX];
	size_t len = meta_pack(meta, packed);
	if (meta->size > SIZE_MAX - 1 - len)
		return -ENOMEM;
	unsigned char *d = malloc(1 + len + meta->size);
	if (!d)
		return -ENOMEM;
	d[0] = (unsigned char)len;
	memcpy(d + 1, packed, len);
	if (meta->size && value)
		memcpy(d + 1 + len, value, meta->size);
	else if (meta->size)
		memset(d + 1 + len, 0, meta->size);
	free(n->data);
	n->data = d;
	n->has_data = true;
	n->real_dir = meta->real_dir;
	return 0;
}

void cache_node_meta(const struct cnode *n, struct topo_meta *m)
{
	memset(m, 0, sizeof(*m));
	if (n->data)
		meta_unpack(n->data + 1, m);
}

const unsigned char *cache_node_value(const struct cnode *n,
				      struct topo_meta *m)
{
	cache_node_meta(n, m);
	return n->data && m->size ? n->data + 1 + n->data[0] : NULL;
}

void cache_node_clear_value(struct cnode *n)
{
	free(n->data);
	n->data = NULL;
	n->has_data = false;
}

void cache_mark_fetched(struct cache *c, struct cnode *n, uint64_t when)
{
	if (!cache_node_is_dir(c, n))
		return;
	n->fetched_ms = when;
	struct cnode **k = cache_kids(n);
	for (size_t i = 0; i < n->nkids; i++)
		cache_mark_fetched(c, k[i], when);
}

/* Remove now-empty implicit ancestors of `path` (etcd has no empty dirs). */
void cache_prune_empty(struct cache *c, const char *path)
{
	char buf[4096];
	if (strlen(path) >= sizeof(buf))
		return;
	strcpy(buf, path);
	while (*buf) {
		buf[path_parent_len(buf)] = '\0';
		struct cnode *n = cache_walk(c->root, buf, false);
		if (!n || n == c->root || !cache_node_is_empty(n))
			return;
		struct cnode *parent = cache_walk_parent(c, buf);
		if (!parent)
			return;
		if (!n->fetched_ms)
			parent->fetched_ms = 0; /* its pending re-listing */
		cache_kid_remove(parent, n);
		cache_node_free(n);
	}
}

/* A store with real directories: a node whose last child went is a file
 * again (Vitess's rule), unless it was made by mkdir here, or the store's
 * directories are nodes of their own (etcd v2), which stay directories, or
 * children may have come that the cache does not know yet (its child watch
 * fired: check_kids decides then). */
void cache_lost_child(const struct cache *c, struct cnode *parent)
{
	if (parent && !parent->nkids && !parent->local_dir &&
	    !parent->kids_unwatched && !(c->be->caps & TOPO_CAP_DIR_NODES))
		parent->real_dir = false;
}

/* ---- queries ---- */

/* counts: also subdirs and newest, which cost O(children). */
static void fill_stat(const struct cache *c, const struct cnode *n,
		      struct cache_stat *out, bool counts)
{
	memset(out, 0, sizeof(*out));
	out->is_dir = cache_node_is_dir(c, n);
	out->has_data = n->has_data;
	out->data_shown = cache_data_shown(c, n);
	out->local_dir = n->local_dir;
	out->real_dir = n->real_dir;
	cache_node_meta(n, &out->meta); /* zero without data */
	if (!out->is_dir || !counts)
		return;
	struct cnode *const *kids = cache_kids_const(n);
	for (size_t i = 0; i < n->nkids; i++) {
		const struct cnode *k = kids[i];
		if (cache_node_is_dir(c, k))
			out->subdirs++;
		if (k->has_data) {
			struct topo_meta km;
			cache_node_meta(k, &km);
			if (km.version > out->newest)
				out->newest = km.version;
		}
	}
	if (n->has_data && out->meta.version > out->newest)
		out->newest = out->meta.version;
}

static int stat_path(struct cache *c, const char *path, struct cache_stat *out,
		     bool counts)
{
	int rc = cache_lock_fresh(c, path, false);
	if (rc)
		return rc;
	struct cnode *n = cache_walk(c->root, path, false);
	if (n)
		fill_stat(c, n, out, counts);
	pthread_mutex_unlock(&c->mu);
	return n ? 0 : -ENOENT;
}

int cache_stat(struct cache *c, const char *path, struct cache_stat *out)
{
	return stat_path(c, path, out, true);
}

int cache_stat_brief(struct cache *c, const char *path, struct cache_stat *out)
{
	return stat_path(c, path, out, false);
}

int cache_value(struct cache *c, const char *path, unsigned char **buf,
		struct topo_meta *meta)
{
	int rc = cache_lock_fresh(c, path, false);
	if (rc)
		return rc;
	struct cnode *n = cache_walk(c->root, path, false);
	struct topo_meta m;
	const unsigned char *v = n ? cache_node_value(n, &m) : NULL;
	*buf = NULL;
	if (!n || !n->has_data) {
		rc = -ENOENT;
	} else if (m.size) {
		*buf = malloc(m.size);
		if (*buf)
			memcpy(*buf, v, m.size);
		else
			rc = -ENOMEM;
	}
	if (!rc)
		*meta = m;
	pthread_mutex_unlock(&c->mu);
	return rc;
}

int cache_list_dir(struct cache *c, const char *path, cache_dir_fn fn,
		   void *arg)
{
	int rc = cache_lock_fresh(c, path, true);
	if (rc)
		return rc;
	struct cnode *n = cache_walk(c->root, path, false);
	if (!n)
		rc = -ENOENT;
	else if (!cache_node_is_dir(c, n))
		rc = -ENOTDIR;
	for (size_t i = 0; !rc && i < n->nkids; i++) {
		const struct cnode *k = cache_kids_const(n)[i];
		struct cache_stat st;
		fill_stat(c, k, &st, true);
		rc = fn(arg, k->name, &st);
	}
	if (!rc && cache_data_shown(c, n)) {
		struct cache_stat st = {.has_data = true, .data_shown = true};
		cache_node_meta(n, &st.meta);
		rc = fn(arg, TOPO_DATA_NAME, &st);
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* Append every stored node of n (at store path p) to l. */
static int collect(const struct cnode *n, char *p, size_t plen, size_t cap,
		   struct topo_listing *l, bool *local_dirs)
{
	if (n->local_dir)
		*local_dirs = true;
	if (n->has_data) {
		struct topo_meta m;
		const unsigned char *value = cache_node_value(n, &m);
		unsigned char *v = NULL;
		if (m.size) {
			v = malloc(m.size);
			if (!v)
				return -ENOMEM;
			memcpy(v, value, m.size);
		}
		int rc = topo_listing_add(l, p, plen, &m, v);
		if (rc) {
			free(v);
			return rc;
		}
	}
	struct cnode *const *k = cache_kids_const(n);
	for (size_t i = 0; i < n->nkids; i++) {
		size_t nlen = strlen(k[i]->name);
		size_t len = plen ? plen + 1 + nlen : nlen;
		if (len >= cap)
			return -ENAMETOOLONG;
		if (plen)
			p[plen] = '/';
		memcpy(p + (plen ? plen + 1 : 0), k[i]->name, nlen + 1);
		int rc = collect(k[i], p, len, cap, l, local_dirs);
		p[plen] = '\0';
		if (rc)
			return rc;
	}
	return 0;
}

int cache_subtree(struct cache *c, const char *path, struct topo_listing *out,
		  bool *local_dirs)
{
	cache_invalidate(c, path); /* a rename must see the store as it is */
	int rc = cache_lock_fresh(c, path, true);
	if (rc)
		return rc;
	*local_dirs = false;
	char p[4096];
	struct cnode *n = cache_walk(c->root, path, false);
	if (!n) {
		rc = -ENOENT;
	} else {
		snprintf(p, sizeof(p), "%s", path);
		rc = collect(n, p, strlen(p), sizeof(p), out, local_dirs);
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

bool cache_knows_dir(struct cache *c, const char *path)
{
	pthread_mutex_lock(&c->mu);
	struct cnode *n = cache_walk(c->root, path, false);
	bool dir = n && !n->stale && cache_node_is_dir(c, n);
	pthread_mutex_unlock(&c->mu);
	return dir;
}

/* Whether n or a node below it is more than ephemeral: a value that is
 * not, a directory made through the mount or in the store, or a node not
 * known for sure (stale, pending). mu held. */
static bool holds_persistent(const struct cnode *n)
{
	struct topo_meta m;
	cache_node_meta(n, &m);
	if ((n->has_data && !m.ephemeral) || n->local_dir || n->real_dir ||
	    n->pending || n->stale)
		return true;
	struct cnode *const *k = cache_kids_const(n);
	for (size_t i = 0; i < n->nkids; i++)
		if (holds_persistent(k[i]))
			return true;
	return false;
}

bool cache_dir_persistent(struct cache *c, const char *path)
{
	pthread_mutex_lock(&c->mu);
	struct cnode *n = cache_walk(c->root, path, false);
	bool shown = !n || !*path || holds_persistent(n);
	pthread_mutex_unlock(&c->mu);
	return shown;
}

/* Collect the paths of every node under n (store path p), depth first. */
static int collect_paths(const struct cnode *n, char *p, size_t plen,
			 size_t cap, void (*fn)(void *, const char *),
			 void *arg)
{
	fn(arg, p);
	struct cnode *const *k = cache_kids_const(n);
	for (size_t i = 0; i < n->nkids; i++) {
		size_t nlen = strlen(k[i]->name);
		size_t len = plen ? plen + 1 + nlen : nlen;
		if (len >= cap)
			continue;
		if (plen)
			p[plen] = '/';
		memcpy(p + (plen ? plen + 1 : 0), k[i]->name, nlen + 1);
		collect_paths(k[i], p, len, cap, fn, arg);
		p[plen] = '\0';
	}
	return 0;
}

void cache_for_each_path(struct cache *c, void (*fn)(void *, const char *),
			 void *arg)
{
	char p[4096] = "";
	pthread_mutex_lock(&c->mu);
	collect_paths(c->root, p, 0, sizeof(p), fn, arg);
	pthread_mutex_unlock(&c->mu);
}

/* ---- sizes derived from values ---- */

bool cache_derived_size(struct cache *c, const char *path, int64_t modify_id,
			size_t *size)
{
	pthread_mutex_lock(&c->mu);
	struct cnode *n = cache_walk(c->root, path, false);
	bool known =
	    n && n->ext && modify_id > 0 && n->ext->derived_for == modify_id;
	if (known)
		*size = n->ext->derived_size;
	pthread_mutex_unlock(&c->mu);
	return known;
}

void cache_set_derived_size(struct cache *c, const char *path,
			    int64_t modify_id, size_t size)
{
	pthread_mutex_lock(&c->mu);
	struct cnode *n = cache_walk(c->root, path, false);
	struct topo_meta m;
	if (n)
		cache_node_meta(n, &m);
	if (n && n->has_data && m.modify_id == modify_id && cache_node_ext(n)) {
		n->ext->derived_for = modify_id;
		n->ext->derived_size = size;
	}
	pthread_mutex_unlock(&c->mu);
}

/* ---- life ---- */

struct cache *cache_new(const struct topo_backend *be, struct topo_store *st,
			unsigned ttl_ms)
{
	struct cache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->root = cache_node_new("", 0);
	if (!c->root) {
		free(c);
		return NULL;
	}
	c->be = be;
	c->st = st;
	c->ttl_ms = ttl_ms ? ttl_ms : 1;
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->refresh_mu, NULL);
	return c;
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	cache_node_free(c->root);
	for (size_t i = 0; i < c->nlogged; i++)
		free(c->logged[i]);
	free(c->logged);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->refresh_mu);
	free(c);
}
