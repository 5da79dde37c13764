/*
 * handle.h - open files.
 *
 * An open file holds the whole value in a buffer and the version it is
 * based on (seen at open). Writes, truncation and O_APPEND edit the buffer;
 * each close (FUSE flush) and fsync commits it to the store if the content
 * changed, with compare-and-set on that version (SPEC 5). A scratch file's
 * commit goes to the in-memory scratch files instead.
 *
 * Every open handle is also on a list, so that operations by path see the
 * open files as a local filesystem would:
 *   - getattr by path reports the size of a file being written (fstat comes
 *     by path, without the handle: handle_open_size);
 *   - readdir, stat, unlink and rename see a file created but not yet
 *     committed (handle_list_new_in, handle_pending);
 *   - rename moves the open files of a name to the new name and onto the
 *     version the store gave the moved value (handles_move, handles_rebase):
 *     their close writes the new name;
 *   - unlink marks the open files of a name unlinked (handles_unlink): they
 *     keep their buffer and commit nothing.
 *
 * Locks: handle_list.lock, then a handle's lock, never the other way.
 * A handle's path changes only with both held, so either one is enough to
 * read it.
 */
#ifndef TOPOFS_HANDLE_H
#define TOPOFS_HANDLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto.h"
#include "topofs/backend.h"

struct topofs;

struct handle {
	char *path;    /* store path (a directory's own node for .topofs-data);
			  see Locks */
	bool is_data;  /* opened as DIR/.topofs-data */
	bool writable; /* opened for writing */
	bool append;   /* O_APPEND: every write goes to the end */
	bool scratch;  /* an editor scratch file: commit stays in memory */
	const struct proto_message *view; /* the buffer is this record as
					     JSON (-o view=json), or NULL */
	struct topofs *owner;		  /* the filesystem it is open in */

	pthread_mutex_t lock; /* guards the fields below */
	unsigned char *buf;   /* the content being edited */
	size_t len, cap;
	unsigned char *orig; /* the content at open or at the last commit */
	size_t orig_len;
	int64_t base;	       /* version seen, or TOPO_EXPECT_ABSENT */
	struct topo_meta meta; /* metadata of that version */
	bool dirty;	       /* edited since open or the last commit */
	bool unlinked;	       /* its name was removed (or renamed over)
				  through the mount: commits write nothing */
	uint64_t node;	       /* the kernel's node ID, 0 if not told */
	bool too_big;	/* a write went past the store's limit: the buffer is
			 * partial and is never committed */
	bool queued;	/* its create is queued (-o writeback): `base` is not
			 * a store version until the queue is applied */
	pid_t pid;	/* the process that opened it */
	pid_t writer;	/* the process that last wrote through it */
	bool failed;	/* the last commit failed (reported by its close) */
	bool view_done; /* a READ came, or a commit through the mount wrote
			   its name since its open: its opener's stat no
			   longer shows it (handle_view_of) */

	struct handle *next; /* on the open list, guarded by handle_list.lock */
};

#define SEEN_MAX                                                               \
	64 /* versions remembered for handle_seen_version and                  \
	      handle_last_read */

struct seen_version {
	char *path;
	pid_t pid; /* in read_by: the process that read it */
	int64_t version;
	bool moved; /* in seen: renamed to a scratch name since (a save) */
};

struct handle_list {
	pthread_mutex_t lock; /* guards everything below and every handle's
				 next */
	struct handle *head;
	struct seen_version seen[SEEN_MAX];    /* the version each recently
						  opened file had, newest
						  first */
	struct seen_version read_by[SEEN_MAX]; /* the version each process
						  last read of a file, newest
						  first */
};

void handle_list_init(struct handle_list *l);
void handle_list_destroy(struct handle_list *l);

/* A new handle for `path` holding `content` (taken over; may be NULL with
 * len 0), listed on l. NULL on ENOMEM (content is then freed). */
struct handle *handle_new(struct handle_list *l, const char *path, bool is_data,
			  unsigned char *content, size_t len, int64_t base,
			  const struct topo_meta *meta);

/* Take h off the list and free it (uncommitted edits are dropped). */
void handle_free(struct handle_list *l, struct handle *h);

/* Copy up to size bytes at off into out; returns the count. */
size_t handle_read(struct handle *h, char *out, size_t size, off_t off);

/* Process `writer` writes at off (at the end for O_APPEND), growing the
 * buffer and zero-filling any gap. Returns size, -EFBIG past max, -ENOMEM. */
int handle_write(struct handle *h, const char *in, size_t size, off_t off,
		 size_t max, pid_t writer);

/* Set the length. 0, -EFBIG past max, -ENOMEM. */
int handle_truncate(struct handle *h, off_t size, size_t max);

/* Write the buffer to the store if it changed (see above), unless the file
 * was unlinked. The "same bytes, nothing to write" shortcut holds only when
 * the buffer's original bytes are those of the version compared with (a
 * whole rewrite compares with the version the process read: handle_last_read).
 * 0, -EIO on a conflict (logged), or the backend's error. */
int handle_commit(struct topofs *t, struct handle *h);

/* Whether the close of h by process `pid` commits: that of a process that
 * opened it or wrote through it (a thread of one), not that of a child
 * closing a descriptor it inherited and never used (a multi-threaded
 * program's fork + exec while another thread writes a file: the buffer is
 * half written then). A scratch file's and an unknown closer's do. */
bool handle_close_commits(struct handle *h, pid_t pid);

/* What a release (the last close of h's descriptors) still owes the
 * store: edits no commit took and no failed commit reported. */
bool handle_owes_commit(struct handle *h);

/* If a writable handle for path is open and edited (not unlinked), its
 * length in *len and true; with new_only, only handles of files not yet in
 * the store. */
bool handle_pending(struct handle_list *l, const char *path, bool new_only,
		    size_t *len);

/* The size of the file open for writing at (path, is_data) with edits not
 * yet committed, as a stat by path shows it: that of an open of process
 * pid if it has one, else of the most recently opened. False if none. */
bool handle_open_size(struct handle_list *l, const char *path, bool is_data,
		      pid_t pid, size_t *len);

/* Which attributes a stat by path of (path, is_data) from process pid
 * should show, when the store holds `version` of shown length `len`.
 * Only open files not read yet count: a process's fstat after its open
 * must give the size its reads will end at (tar, cp read that many bytes),
 * while its stat of the path later shows the store's newer value. Nor do
 * those whose name a commit through the mount wrote since (a process's
 * own write shows at once, as on a local filesystem). */
enum handle_view {
	VIEW_STORE,  /* the store's: no open file holds another version */
	VIEW_OTHERS, /* the store's, but another process's open file holds
			another version: not to be kept for everyone */
	VIEW_OWN,    /* pid's own open file (its newest) holds another
			version: *meta and *len are that file's */
};

/* The view of (path, is_data) for process pid (open files read already
 * or written over through the mount, not yet in the store, unlinked, and
 * scratch files do not count). */
enum handle_view handle_view_of(struct handle_list *l, const char *path,
				bool is_data, pid_t pid, int64_t version,
				size_t len, struct topo_meta *meta,
				size_t *own_len);

/* The name (path, is_data) was removed through the mount: its open files
 * keep their buffers and commit nothing. Returns how many of them were
 * files not yet in the store (created and still open). */
size_t handles_unlink(struct handle_list *l, const char *path, bool is_data);

/* A rename through the mount moved `from` to `to`: open files of `from`
 * (with `subtree`, also everything below it, .topofs-data included) now
 * have the new name, and commit there. */
int handles_move(struct handle_list *l, const char *from, const char *to,
		 bool subtree);

/* The value at `path` that had version `old` is now version `now` (a
 * rename moved it unchanged): open files based on `old` compare with
 * `now`. */
void handles_rebase(struct handle_list *l, const char *path, int64_t old,
		    int64_t now);

/* Move the open files of `from`, a file created through the mount and not
 * yet in the store, to `to`, where their commit compares with `base`
 * (TOPO_EXPECT_ABSENT: `to` must not exist). Returns how many moved, or
 * -ENOMEM. */
int handles_move_new(struct handle_list *l, const char *from, const char *to,
		     int64_t base);

/* What an fstat of node `node` shows when its name is gone: an open file
 * of it (a copy of its fields; path[size] gets its last path). */
bool handle_node(struct handle_list *l, uint64_t node, struct handle *copy,
		 char *path, size_t size);

/* A copy of the bytes so far of the file created through the mount at
 * `path` and not yet in the store (its newest open), for another open of
 * it. False if there is none; *buf NULL on ENOMEM. */
bool handle_new_copy(struct handle_list *l, const char *path,
		     unsigned char **buf, size_t *len);

/* Process pid removed `path`: what it read of it is gone (its next whole
 * rewrite is of a file it never read). */
void handle_read_unlinked(struct handle_list *l, const char *path, pid_t pid);

/* Process pid renamed `from` (version `old`) to `to`, which now has version
 * `now`: if it had read either, it now knows `to` at `now`. */
void handle_read_renamed(struct handle_list *l, const char *from,
			 const char *to, pid_t pid, int64_t old, int64_t now);

/* Remember that `path` was opened (or written) at `version`. */
void handle_seen(struct handle_list *l, const char *path, int64_t version);

/* The version `path` had when it was last opened or written through the
 * mount, if remembered. An editor that saves by renaming a temporary file
 * over the original (sed -i, emacs) must not overwrite a change made since
 * it read the original: that version is what the rename compares with. */
bool handle_seen_version(struct handle_list *l, const char *path,
			 int64_t *version);

/* An editor moved `path` to a scratch name (its backup) to write a new file
 * in its place: remember the version it had read (or `version`). */
void handle_seen_moved(struct handle_list *l, const char *path,
		       int64_t version);

/* If `path` was moved away that way, the version the editor had read, and
 * forget the move: the new file's commit compares with it, so a change made
 * by another client since the editor read the file is not overwritten. */
bool handle_take_moved(struct handle_list *l, const char *path,
		       int64_t *version);

/* Process pid opened `path` at `version` to read it (any open without
 * O_TRUNC): remember it for handle_last_read. */
void handle_read_by(struct handle_list *l, const char *path, pid_t pid,
		    int64_t version);

/* The version of `path` that process pid last read (or since wrote) through
 * the mount, if remembered. A process that read a file and then rewrites it
 * whole (O_TRUNC) is saving an edit of what it read, as nano does: its
 * commit compares with that version, so a change another client made in
 * between is not overwritten, even one too quick for the editor's own
 * mtime check (nano compares whole seconds). */
bool handle_last_read(struct handle_list *l, const char *path, pid_t pid,
		      int64_t *version);

/* Call fn(arg, name) for each not-yet-committed new file directly in dir. */
void handle_list_new_in(struct handle_list *l, const char *dir,
			void (*fn)(void *arg, const char *name), void *arg);

#endif
