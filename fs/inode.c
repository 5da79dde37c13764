/*
 * inode.c - the nodes the kernel knows (see inode.h).
 *
 * Shape
 *   Every node the kernel holds is in `by_ino` (node ID -> node). A node
 *   that still has a name is also in `by_name` ((parent node ID, name) ->
 *   node) and points to its parent; a path is built by walking up to the
 *   root. A rename relinks one node, so a moved directory's children
 *   follow it without being touched.
 *
 *   An unlinked node (unlink, rmdir, renamed over, or its name now of
 *   another type) has no parent and no name, but stays in `by_ino` for as
 *   long as the kernel holds it: its open files work through their handles
 *   (what libfuse's high-level API calls hard_remove), and a path asked of
 *   it or of anything below it is -ESTALE.
 *
 *   A node lives while the kernel holds a lookup of it (`nlookup`) or any
 *   node names it as parent (`nkids`): the kernel forgets children before
 *   their parents, but FORGETs are served by several threads and may come
 *   in any order. The root is never freed.
 *
 * Concurrency
 *   One mutex, `lock`, guards both hashes and every node: each function
 *   takes it once and never calls out while holding it, so it nests inside
 *   nothing and nothing nests inside it. What callers get back (a path, an
 *   inode_ref) is a copy, true when the lock was released: a rename may
 *   move the name at once after. lowlevel.c keeps renames from moving a
 *   path an operation is using (its `names` lock); the kernel serialises
 *   the rest (a LOOKUP, CREATE or UNLINK of one name holds its directory's
 *   lock).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "inode.h"

struct node {
	uint64_t ino;
	uint64_t nlookup;	/* lookups the kernel holds */
	size_t nkids;		/* nodes whose parent this is */
	struct node *parent;	/* NULL: the root, or unlinked */
	char *name;		/* NULL: the root, or unlinked; `first` or
				   owned (after a rename) */
	mode_t type;		/* S_IFMT bits the kernel was last told */
	struct node *next_ino;	/* chain in by_ino */
	struct node *next_name; /* chain in by_name, while named */
	char first[];		/* the name it was made with (one allocation
				   with the node: see docs/performance.md) */
};

struct inode_table {
	pthread_mutex_t lock; /* guards everything below and every node */
	struct node **by_ino;
	struct node **by_name;
	size_t nbuckets; /* of each hash; a power of 2 */
	size_t count;	 /* nodes in by_ino */
	uint64_t next_ino;
	struct node *root;

	_Atomic uint64_t changes; /* see inode_changes (no lock needed) */
};

/* ---- hashing ---- */

static size_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x;
}

static size_t ino_slot(const struct inode_table *it, uint64_t ino)
{
	return mix(ino) & (it->nbuckets - 1);
}

static size_t name_slot(const struct inode_table *it, uint64_t parent,
			const char *name)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ parent; /* FNV-1a */
	for (const unsigned char *s = (const unsigned char *)name; *s; s++)
		h = (h ^ *s) * 0x100000001b3ULL;
	return mix(h) & (it->nbuckets - 1);
}

static struct node *get(const struct inode_table *it, uint64_t ino)
{
	struct node *n = it->by_ino[ino_slot(it, ino)];
	while (n && n->ino != ino)
		n = n->next_ino;
	return n;
}

static struct node *child(const struct inode_table *it,
			  const struct node *parent, const char *name)
{
	struct node *n = it->by_name[name_slot(it, parent->ino, name)];
	while (n && (n->parent != parent || strcmp(n->name, name) != 0))
		n = n->next_name;
	return n;
}

static void remove_from(struct node **head, struct node *n, bool by_name)
{
	struct node **pp = head;
	while (*pp != n)
		pp = by_name ? &(*pp)->next_name : &(*pp)->next_ino;
	*pp = by_name ? n->next_name : n->next_ino;
}

/* Nodes per bucket before the hashes double. Two keeps chains short (1.5
 * nodes looked at per hit on average) at a quarter of the buckets' memory
 * of one: at 2.1M nodes (1M Vitess keys) 16 MiB of buckets instead of 64,
 * and a doubling briefly holds both arrays (issue 25). */
#define MAX_LOAD 2

/* Double both hashes once they hold more than MAX_LOAD nodes per bucket. A
 * failed allocation leaves them as they are: longer chains, still correct. */
static void grow(struct inode_table *it)
{
	if (it->count <= MAX_LOAD * it->nbuckets)
		return;
	size_t old = it->nbuckets;
	struct node **ino = calloc(2 * old, sizeof(*ino));
	struct node **name = calloc(2 * old, sizeof(*name));
	if (!ino || !name) {
		free(ino);
		free(name);
		return;
	}
	struct node **old_ino = it->by_ino;
	struct node **old_name = it->by_name;
	it->by_ino = ino;
	it->by_name = name;
	it->nbuckets = 2 * old;
	for (size_t i = 0; i < old; i++) {
		for (struct node *n = old_ino[i], *next; n; n = next) {
			next = n->next_ino;
			size_t s = ino_slot(it, n->ino);
			n->next_ino = ino[s];
			ino[s] = n;
		}
		for (struct node *n = old_name[i], *next; n; n = next) {
			next = n->next_name;
			size_t s = name_slot(it, n->parent->ino, n->name);
			n->next_name = name[s];
			name[s] = n;
		}
	}
	free(old_ino);
	free(old_name);
}

/* ---- names ---- */

/* Give n the name `name` (n->first, or taken over) in parent. */
static void link_name(struct inode_table *it, struct node *n,
		      struct node *parent, char *name)
{
	n->parent = parent;
	n->name = name;
	parent->nkids++;
	size_t s = name_slot(it, parent->ino, name);
	n->next_name = it->by_name[s];
	it->by_name[s] = n;
}

/* Take n's name away; returns its former parent (the caller frees it with
 * release() once it no longer needs it). */
static struct node *unlink_name(struct inode_table *it, struct node *n)
{
	struct node *parent = n->parent;
	remove_from(&it->by_name[name_slot(it, parent->ino, n->name)], n, true);
	if (n->name != n->first)
		free(n->name);
	n->name = NULL;
	n->parent = NULL;
	parent->nkids--;
	return parent;
}

/* Free n, and then its parents, while nothing holds them. */
static void release(struct inode_table *it, struct node *n)
{
	while (n && n != it->root && n->nlookup == 0 && n->nkids == 0) {
		struct node *parent = n->name ? unlink_name(it, n) : NULL;
		remove_from(&it->by_ino[ino_slot(it, n->ino)], n, false);
		it->count--;
		free(n);
		n = parent;
	}
}

/* A new node with room for `name` (NULL: none) in `first`. */
static struct node *node_new(struct inode_table *it, mode_t type,
			     const char *name)
{
	size_t len = name ? strlen(name) + 1 : 0;
	struct node *n = calloc(1, sizeof(*n) + len);
	if (!n)
		return NULL;
	if (name)
		memcpy(n->first, name, len);
	n->ino = it->next_ino++;
	n->type = type;
	size_t s = ino_slot(it, n->ino);
	n->next_ino = it->by_ino[s];
	it->by_ino[s] = n;
	it->count++;
	return n;
}

/* ---- paths ---- */

/* Write the path of n, followed by "/extra" if extra, into buf. */
static int build_path(const struct inode_table *it, const struct node *n,
		      const char *extra, char *buf, size_t size)
{
	size_t len = extra ? 1 + strlen(extra) : 0;
	for (const struct node *m = n; m != it->root; m = m->parent) {
		if (!m->name)
			return -ESTALE; /* unlinked */
		len += 1 + strlen(m->name);
	}
	if ((len ? len : 1) + 1 > size) /* the root is "/"; and a NUL */
		return -ENAMETOOLONG;
	strcpy(buf, "/");
	size_t end = len;
	buf[end ? end : 1] = '\0';
	if (extra) {
		size_t l = strlen(extra);
		end -= l;
		memcpy(buf + end, extra, l);
		buf[--end] = '/';
	}
	for (const struct node *m = n; m != it->root; m = m->parent) {
		size_t l = strlen(m->name);
		end -= l;
		memcpy(buf + end, m->name, l);
		buf[--end] = '/';
	}
	return 0;
}

static void fill_ref(const struct inode_table *it, const struct node *n,
		     struct inode_ref *ref)
{
	ref->ino = n->ino;
	ref->type = n->type;
	ref->parent = n->parent ? n->parent->ino : 0;
	ref->name[0] = '\0';
	if (n != it->root && n->name)
		strncat(ref->name, n->name, NAME_MAX);
}

/* ---- the interface ---- */

struct inode_table *inode_table_new(void)
{
	struct inode_table *it = calloc(1, sizeof(*it));
	if (!it)
		return NULL;
	it->nbuckets = 64;
	it->by_ino = calloc(it->nbuckets, sizeof(*it->by_ino));
	it->by_name = calloc(it->nbuckets, sizeof(*it->by_name));
	it->next_ino = INODE_ROOT;
	if (it->by_ino && it->by_name)
		it->root = node_new(it, S_IFDIR, NULL);
	if (!it->root) {
		free(it->by_ino);
		free(it->by_name);
		free(it);
		return NULL;
	}
	pthread_mutex_init(&it->lock, NULL);
	atomic_init(&it->changes, 0);
	return it;
}

void inode_table_free(struct inode_table *it)
{
	if (!it)
		return;
	for (size_t i = 0; i < it->nbuckets; i++) {
		for (struct node *n = it->by_ino[i], *next; n; n = next) {
			next = n->next_ino;
			if (n->name != n->first)
				free(n->name);
			free(n);
		}
	}
	free(it->by_ino);
	free(it->by_name);
	pthread_mutex_destroy(&it->lock);
	free(it);
}

int inode_lookup(struct inode_table *it, uint64_t parent, const char *name,
		 mode_t type, uint64_t *ino)
{
	int rc = 0;
	pthread_mutex_lock(&it->lock);
	struct node *p = get(it, parent);
	struct node *c = p ? child(it, p, name) : NULL;
	struct node *replaced = NULL;
	if (!p) {
		rc = -ESTALE;
		goto out;
	}
	if (c && c->type != type) {
		/* The kernel takes a known node ID of another type for a
		 * broken inode: the name gets a new node. */
		unlink_name(it, c);
		replaced = c;
		c = NULL;
	}
	if (!c) {
		c = node_new(it, type, name);
		if (!c) {
			rc = -ENOMEM;
			goto out;
		}
		link_name(it, c, p, c->first);
		grow(it);
	}
	c->nlookup++;
	*ino = c->ino;
out:
	release(it, replaced);
	release(it, p); /* only if an error left it empty and forgotten */
	pthread_mutex_unlock(&it->lock);
	return rc;
}

void inode_forget(struct inode_table *it, uint64_t ino, uint64_t nlookup)
{
	pthread_mutex_lock(&it->lock);
	struct node *n = get(it, ino);
	if (n && n != it->root) {
		n->nlookup -= nlookup < n->nlookup ? nlookup : n->nlookup;
		release(it, n);
	}
	pthread_mutex_unlock(&it->lock);
}

int inode_path(struct inode_table *it, uint64_t ino, char *buf, size_t size)
{
	pthread_mutex_lock(&it->lock);
	struct node *n = get(it, ino);
	int rc = n ? build_path(it, n, NULL, buf, size) : -ESTALE;
	pthread_mutex_unlock(&it->lock);
	return rc;
}

int inode_child_path(struct inode_table *it, uint64_t parent, const char *name,
		     char *buf, size_t size)
{
	pthread_mutex_lock(&it->lock);
	struct node *n = get(it, parent);
	int rc = n ? build_path(it, n, name, buf, size) : -ESTALE;
	pthread_mutex_unlock(&it->lock);
	return rc;
}

void inode_unlink(struct inode_table *it, uint64_t parent, const char *name)
{
	pthread_mutex_lock(&it->lock);
	struct node *p = get(it, parent);
	struct node *c = p ? child(it, p, name) : NULL;
	if (c) {
		unlink_name(it, c);
		release(it, c);
		release(it, p);
	}
	pthread_mutex_unlock(&it->lock);
}

int inode_rename(struct inode_table *it, uint64_t parent, const char *name,
		 uint64_t newparent, const char *newname)
{
	int rc = 0;
	pthread_mutex_lock(&it->lock);
	struct node *p = get(it, parent);
	struct node *np = get(it, newparent);
	struct node *c = p ? child(it, p, name) : NULL;
	struct node *target = np ? child(it, np, newname) : NULL;
	char *copy = NULL;
	if (!np)
		rc = -ESTALE;
	else if (c && c != target && !(copy = strdup(newname)))
		rc = -ENOMEM;
	if (!c || c == target)
		goto out;
	if (target)
		unlink_name(it, target); /* renamed over */
	unlink_name(it, c);
	if (copy)
		link_name(it, c, np, copy);
	/* else (no memory, or no new parent): c has no path now; the kernel
	 * looks the new name up again */
	release(it, c);
	release(it, target);
	release(it, p);
out:
	pthread_mutex_unlock(&it->lock);
	return rc;
}

bool inode_type_is(struct inode_table *it, uint64_t ino, mode_t type)
{
	pthread_mutex_lock(&it->lock);
	struct node *n = get(it, ino);
	bool same = !n || n->type == type;
	pthread_mutex_unlock(&it->lock);
	return same;
}

int inode_find(struct inode_table *it, const char *p, struct inode_ref *ref)
{
	char seg[NAME_MAX + 1];
	pthread_mutex_lock(&it->lock);
	struct node *n = it->root;
	while (n && *p) {
		while (*p == '/')
			p++;
		size_t len = strcspn(p, "/");
		if (len == 0)
			break;
		if (len > NAME_MAX) {
			n = NULL;
			break;
		}
		memcpy(seg, p, len);
		seg[len] = '\0';
		n = child(it, n, seg);
		p += len;
	}
	if (n)
		fill_ref(it, n, ref);
	pthread_mutex_unlock(&it->lock);
	return n ? 0 : -ENOENT;
}

ssize_t inode_list(struct inode_table *it, struct inode_ref **refs)
{
	pthread_mutex_lock(&it->lock);
	struct inode_ref *r = malloc(it->count * sizeof(*r));
	ssize_t count = 0;
	for (size_t i = 0; r && i < it->nbuckets; i++)
		for (struct node *n = it->by_ino[i]; n; n = n->next_ino)
			fill_ref(it, n, &r[count++]);
	pthread_mutex_unlock(&it->lock);
	*refs = r;
	return r ? count : -ENOMEM;
}

uint64_t inode_changes(struct inode_table *it)
{
	return atomic_load(&it->changes);
}

void inode_note_change(struct inode_table *it)
{
	atomic_fetch_add(&it->changes, 1);
}

size_t inode_count(struct inode_table *it)
{
	pthread_mutex_lock(&it->lock);
	size_t n = it->count;
	pthread_mutex_unlock(&it->lock);
	return n;
}

uint64_t inode_nlookup(struct inode_table *it, uint64_t ino)
{
	pthread_mutex_lock(&it->lock);
	struct node *n = get(it, ino);
	uint64_t count = n ? n->nlookup : 0;
	pthread_mutex_unlock(&it->lock);
	return count;
}
