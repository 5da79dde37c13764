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
 *   A node's name is in the node's allocation, `first`, sized for it but
 *   never smaller than a pointer. A rename writes the new name over the
 *   old if it fits; if not, the node cannot move (its children, the hashes
 *   and the callers point at it), so `first` gets a pointer to an
 *   allocated copy instead (NAME_OWNED). Renames are rare: most nodes are
 *   one allocation.
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
	struct node *parent;	/* NULL: the root, or unlinked */
	struct node *next_ino;	/* chain in by_ino */
	struct node *next_name; /* chain in by_name, while named */
	uint32_t nkids;		/* nodes whose parent this is (32 bits: each
				   is a node in memory, 4G would be 256 GiB) */
	uint16_t type;		/* S_IFMT bits the kernel was last told
				   (S_IFMT is 0170000: 16 bits hold it) */
	uint16_t flags;		/* NAME_OWNED */
	char first[];		/* its name, while it has one (see node_name) */
};

/* `first` holds a pointer to the name, not the name (see node_name). */
#define NAME_OWNED 1

/* 48 bytes before the name on 64-bit hosts, 16 fewer than with a name
 * pointer, a size_t count and a mode_t: since glibc's chunks step by 16
 * bytes, 16 bytes less from malloc per node whatever the name's length,
 * 34 MB at 1M Vitess keys (2.1M nodes; issue 25, docs/performance.md). */
_Static_assert(sizeof(void *) != 8 || (offsetof(struct node, first) == 48 &&
				       sizeof(struct node) == 48),
	       "struct node grew");

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

/* ---- a node's name ---- */

/* The bytes `first` is given for a name of len bytes (its NUL included):
 * at least a pointer's, for a rename's owned name. */
static size_t name_room(size_t len)
{
	return len > sizeof(char *) ? len : sizeof(char *);
}

/* The owned name whose pointer `first` holds (copied out with memcpy:
 * `first` is declared as chars). */
static char *owned_name(const struct node *n)
{
	char *name;
	memcpy(&name, n->first, sizeof(name));
	return name;
}

/* n's name; NULL for the root and unlinked nodes. */
static const char *node_name(const struct node *n)
{
	if (!n->parent)
		return NULL;
	return n->flags & NAME_OWNED ? owned_name(n) : n->first;
}

/* Whether a name of len bytes (its NUL included) fits in named n's
 * `first`: its name's bytes if the name is there (a shorter name written
 * over a longer one undercounts, which is safe), else a pointer's. */
static bool name_fits(const struct node *n, size_t len)
{
	size_t have = n->flags & NAME_OWNED ? 0 : strlen(n->first) + 1;
	return len <= name_room(have);
}

/* Give n the name `name`, in `first`, or `copy` (allocated, taken over)
 * if not NULL. n has no name (unlink_name). */
static void set_name(struct node *n, const char *name, char *copy)
{
	if (copy) {
		memcpy(n->first, &copy, sizeof(copy));
		n->flags |= NAME_OWNED;
	} else {
		memcpy(n->first, name, strlen(name) + 1);
	}
}

/* Free n's owned name, if any; `first` then holds "". */
static void drop_name(struct node *n)
{
	if (n->flags & NAME_OWNED)
		free(owned_name(n));
	n->flags &= ~NAME_OWNED;
	n->first[0] = '\0';
}

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
	while (n && (n->parent != parent || strcmp(node_name(n), name) != 0))
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

/* Nodes per bucket before the hashes double. Between doublings a hash
 * holds MAX_LOAD / 2 to MAX_LOAD nodes per bucket: at four, finding a
 * node looks at about 1 + load / 2 of them (2 to 3), missing one (a
 * name's first LOOKUP) at a whole chain (2 to 4). Four takes half the
 * buckets of two: at 2.1M nodes (1M Vitess keys) 2^20 in each hash, 16
 * MiB for both instead of 32, and the doubling that gets there (at
 * 2,097,153 nodes) holds 8 + 16 MiB at once instead of 16 + 32 (issue
 * 25). */
#define MAX_LOAD 4

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
			size_t s = name_slot(it, n->parent->ino, node_name(n));
			n->next_name = name[s];
			name[s] = n;
		}
	}
	free(old_ino);
	free(old_name);
}

/* ---- names ---- */

/* Put n, whose name is set, in parent. */
static void link_name(struct inode_table *it, struct node *n,
		      struct node *parent)
{
	n->parent = parent;
	parent->nkids++;
	size_t s = name_slot(it, parent->ino, node_name(n));
	n->next_name = it->by_name[s];
	it->by_name[s] = n;
}

/* Take n's name away; returns its former parent (the caller frees it with
 * release() once it no longer needs it). */
static struct node *unlink_name(struct inode_table *it, struct node *n)
{
	struct node *parent = n->parent;
	remove_from(&it->by_name[name_slot(it, parent->ino, node_name(n))], n,
		    true);
	drop_name(n);
	n->parent = NULL;
	parent->nkids--;
	return parent;
}

/* Free n, and then its parents, while nothing holds them. */
static void release(struct inode_table *it, struct node *n)
{
	while (n && n != it->root && n->nlookup == 0 && n->nkids == 0) {
		struct node *parent = n->parent ? unlink_name(it, n) : NULL;
		remove_from(&it->by_ino[ino_slot(it, n->ino)], n, false);
		it->count--;
		free(n);
		n = parent;
	}
}

/* A new node, not linked, with `name` (NULL: none) in `first`. */
static struct node *node_new(struct inode_table *it, mode_t type,
			     const char *name)
{
	size_t len = name ? strlen(name) + 1 : 0;
	struct node *n =
	    calloc(1, offsetof(struct node, first) + name_room(len));
	if (!n)
		return NULL;
	if (name)
		set_name(n, name, NULL);
	n->ino = it->next_ino++;
	n->type = (uint16_t)type;
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
		if (!m->parent)
			return -ESTALE; /* unlinked */
		len += 1 + strlen(node_name(m));
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
		const char *name = node_name(m);
		size_t l = strlen(name);
		end -= l;
		memcpy(buf + end, name, l);
		buf[--end] = '/';
	}
	return 0;
}

static void fill_ref(const struct node *n, struct inode_ref *ref)
{
	ref->ino = n->ino;
	ref->type = n->type;
	ref->parent = n->parent ? n->parent->ino : 0;
	ref->name[0] = '\0';
	if (n->parent)
		strncat(ref->name, node_name(n), NAME_MAX);
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
			drop_name(n);
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
	/* unknown, or unlinked (no parent, not the root): no path below */
	if (p && !p->parent && p != it->root)
		p = NULL;
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
		link_name(it, c, p);
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
	/* asked before unlink_name empties c's `first` */
	bool fits = c && name_fits(c, strlen(newname) + 1);
	char *copy = NULL;
	if (!np)
		rc = -ESTALE;
	else if (c && c != target && !fits && !(copy = strdup(newname)))
		rc = -ENOMEM;
	if (!c || c == target)
		goto out;
	if (target)
		unlink_name(it, target); /* renamed over */
	unlink_name(it, c);
	if (rc == 0) {
		set_name(c, newname, copy);
		link_name(it, c, np);
	}
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
		fill_ref(n, ref);
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
			fill_ref(n, &r[count++]);
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
