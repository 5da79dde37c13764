/*
 * handle.h - open files.
 *
 * An open file holds the whole value in a buffer and the version seen at
 * open. Writes, truncation and O_APPEND edit the buffer; commit writes it to
 * the store once, with compare-and-set on that version, and only if the
 * content changed (SPEC 5). A scratch file's commit goes to the in-memory
 * scratch files instead.
 *
 * Every open handle is also on a list, so that getattr by path can report the
 * size of a file being written and readdir can show a file created but not
 * yet committed.
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
	char *path;   /* store path (a directory's own node for .topofs-data) */
	bool is_data; /* opened as DIR/.topofs-data */
	bool writable; /* opened for writing */
	bool append;   /* O_APPEND: every write goes to the end */
	bool scratch;  /* an editor scratch file: commit stays in memory */
	const struct proto_message *view; /* the buffer is this record as
					     JSON (-o view=json), or NULL */

	pthread_mutex_t lock; /* guards the fields below */
	unsigned char *buf;   /* the content being edited */
	size_t len, cap;
	unsigned char *orig; /* the content at open or at the last commit */
	size_t orig_len;
	int64_t base;	       /* version seen, or TOPO_EXPECT_ABSENT */
	struct topo_meta meta; /* metadata of that version */
	bool dirty;	       /* edited since open or the last commit */
	bool written;	       /* write() or ftruncate() since open: not just
				  O_TRUNC or O_CREAT */
	bool too_big; /* a write went past the store's limit: the buffer is
		       * partial and is never committed */
	bool queued;  /* its create is queued (-o writeback): `base` is not
		       * a store version until the queue is applied */
	pid_t pid;    /* the process that opened it */

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

/* Write at off (at the end for O_APPEND), growing the buffer and zero-filling
 * any gap. Returns size, -EFBIG past max, -ENOMEM. */
int handle_write(struct handle *h, const char *in, size_t size, off_t off,
		 size_t max);

/* Set the length. 0, -EFBIG past max, -ENOMEM. */
int handle_truncate(struct handle *h, off_t size, size_t max);

/* Whether a flush (close of one descriptor) should commit now. A shell's
 * `> file` opens with O_TRUNC, then closes a duplicate descriptor before
 * writing: committing then would store an empty value for a moment. So a
 * handle of an existing file only truncated, with nothing written yet,
 * commits at release (the last close) instead. A new file is created at
 * its first flush (touch). */
bool handle_flush_commits(struct handle *h);

/* Write the buffer to the store if it changed (see above). 0, -EIO on a
 * conflict (logged), or the backend's error. */
int handle_commit(struct topofs *t, struct handle *h);

/* If a writable handle for path is open and edited, its length in *len and
 * true; with new_only, only handles of files not yet in the store. */
bool handle_pending(struct handle_list *l, const char *path, bool new_only,
		    size_t *len);

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
