/*
 * inode.h - the nodes the kernel knows: node IDs, their names, lookup counts.
 *
 * The kernel names every file it holds by a node ID that we chose when it
 * looked the name up (LOOKUP, READDIRPLUS, CREATE, MKDIR), and keeps it
 * until it FORGETs as many lookups as it was given. The operations in ops.c
 * work on paths: this table turns a node ID back into its path, follows
 * renames (a directory's children follow it, since they name their parent,
 * not its path) and unlinks, and turns a store path into the node IDs the
 * kernel must be told about when the store changes (lowlevel_notify.c).
 *
 * Node IDs come from a 64-bit counter and are never reused, so the
 * generation number the kernel pairs with a node ID is always 0. A name
 * whose type changes (a file that became a directory, or back) gets a new
 * node: the kernel treats a known node ID coming back with another type as
 * a broken inode (EIO for whoever holds it).
 *
 * Paths here are FUSE paths ("/", "/a/b"); inode_find also takes store
 * paths ("", "a/b"). Functions return 0 or a negative errno. One mutex
 * inside guards the whole table: every function may be called from any
 * thread.
 */
#ifndef TOPOFS_INODE_H
#define TOPOFS_INODE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The root's node ID (FUSE_ROOT_ID). */
#define INODE_ROOT 1

struct inode_table;

/* What inode_find and inode_list report of one node. */
struct inode_ref {
	uint64_t ino;
	uint64_t parent;	 /* 0 for the root */
	mode_t type;		 /* S_IFMT bits the kernel was last told */
	char name[NAME_MAX + 1]; /* "" for the root */
};

/* A table holding only the root (a directory). NULL on ENOMEM. */
struct inode_table *inode_table_new(void);
void inode_table_free(struct inode_table *it);

/* Count one lookup of `name` in directory `parent` that the kernel is told
 * has type `type` (S_IFMT bits): the node of that name, or a new one if it
 * has none or one of another type (which is then unlinked: its holders keep
 * it, the name no longer finds it). -ESTALE if parent is unknown or
 * unlinked, -ENOMEM. */
int inode_lookup(struct inode_table *it, uint64_t parent, const char *name,
		 mode_t type, uint64_t *ino);

/* The kernel dropped nlookup lookups of ino (FORGET). A node is freed once
 * the kernel holds no lookup of it and no node names it as parent. */
void inode_forget(struct inode_table *it, uint64_t ino, uint64_t nlookup);

/* The FUSE path of ino. -ESTALE if ino or one of its parents is unknown or
 * unlinked, -ENAMETOOLONG if it does not fit in size bytes (with its NUL;
 * TOPO_FUSE_PATH_MAX bytes hold every path the mount serves). */
int inode_path(struct inode_table *it, uint64_t ino, char *buf, size_t size);

/* The FUSE path of `name` in directory `parent` (the name need not exist).
 * Errors as inode_path. */
int inode_child_path(struct inode_table *it, uint64_t parent, const char *name,
		     char *buf, size_t size);

/* `name` in `parent` is gone (unlink, rmdir): its node, if any, is unlinked.
 * It keeps working for whoever holds it open. */
void inode_unlink(struct inode_table *it, uint64_t parent, const char *name);

/* Move the node named `name` in `parent` to `newname` in `newparent`,
 * unlinking a node the new name had. No node under the old name: nothing
 * to move (0). -ESTALE if newparent is unknown, -ENOMEM: the node is then
 * unlinked (the kernel looks the new name up again). */
int inode_rename(struct inode_table *it, uint64_t parent, const char *name,
		 uint64_t newparent, const char *newname);

/* Whether the kernel was last told that ino has type `type`. True for
 * unknown nodes (there is nothing to contradict). */
bool inode_type_is(struct inode_table *it, uint64_t ino, mode_t type);

/* The node the kernel knows under store path or FUSE path p ("" and "/"
 * are the root). -ENOENT if it knows none. */
int inode_find(struct inode_table *it, const char *p, struct inode_ref *ref);

/* Every node the kernel holds, in no order, in *refs (the caller frees
 * it; unlinked nodes have parent 0 and name ""): their number, or -ENOMEM.
 */
ssize_t inode_list(struct inode_table *it, struct inode_ref **refs);

/* A counter of the changes the kernel was told about (inode_note_change):
 * a reply built while it moved may carry what the change replaced. */
uint64_t inode_changes(struct inode_table *it);
void inode_note_change(struct inode_table *it);

/* For tests and logs: the nodes held (the root included), and ino's lookup
 * count (0 if unknown). */
size_t inode_count(struct inode_table *it);
uint64_t inode_nlookup(struct inode_table *it, uint64_t ino);

#endif
