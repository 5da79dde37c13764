/* handle.c - see handle.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handle.h"
#include "topofs.h"
#include "topofs/log.h"
#include "view_json.h"

void handle_list_init(struct handle_list *l)
{
	pthread_mutex_init(&l->lock, NULL);
	l->head = NULL;
	memset(l->seen, 0, sizeof(l->seen));
	memset(l->read_by, 0, sizeof(l->read_by));
}

void handle_list_destroy(struct handle_list *l)
{
	while (l->head) /* files still open at unmount: edits are dropped */
		handle_free(l, l->head);
	for (size_t i = 0; i < SEEN_MAX; i++) {
		free(l->seen[i].path);
		free(l->read_by[i].path);
	}
	pthread_mutex_destroy(&l->lock);
}

/* The entry of (path, pid) in e, or NULL. Lock held. */
static struct seen_version *find_seen(struct seen_version *e, const char *path,
				      pid_t pid)
{
	for (size_t i = 0; i < SEEN_MAX && e[i].path; i++)
		if (e[i].pid == pid && strcmp(e[i].path, path) == 0)
			return &e[i];
	return NULL;
}

/* Make (path, pid) the newest entry of e, reusing its old entry or the
 * oldest one. */
static void remember(struct handle_list *l, struct seen_version *e,
		     const char *path, pid_t pid, int64_t version)
{
	char *copy = strdup(path);
	if (!copy)
		return;
	pthread_mutex_lock(&l->lock);
	struct seen_version *old = find_seen(e, path, pid);
	size_t i = old ? (size_t)(old - e) : SEEN_MAX - 1;
	free(e[i].path); /* the same path, or the oldest entry */
	memmove(&e[1], &e[0], i * sizeof(e[0]));
	e[0] =
	    (struct seen_version){.path = copy, .pid = pid, .version = version};
	pthread_mutex_unlock(&l->lock);
}

/* The version of (path, pid) in e, if remembered. */
static bool recall(struct handle_list *l, struct seen_version *e,
		   const char *path, pid_t pid, int64_t *version)
{
	pthread_mutex_lock(&l->lock);
	struct seen_version *found = find_seen(e, path, pid);
	if (found)
		*version = found->version;
	pthread_mutex_unlock(&l->lock);
	return found != NULL;
}

void handle_seen(struct handle_list *l, const char *path, int64_t version)
{
	remember(l, l->seen, path, 0, version);
}

void handle_read_by(struct handle_list *l, const char *path, pid_t pid,
		    int64_t version)
{
	remember(l, l->read_by, path, pid, version);
}

bool handle_last_read(struct handle_list *l, const char *path, pid_t pid,
		      int64_t *version)
{
	return recall(l, l->read_by, path, pid, version);
}

void handle_seen_moved(struct handle_list *l, const char *path, int64_t version)
{
	int64_t seen;
	if (handle_seen_version(l, path, &seen))
		version = seen;
	handle_seen(l, path, version); /* now the newest entry */
	pthread_mutex_lock(&l->lock);
	if (l->seen[0].path && strcmp(l->seen[0].path, path) == 0)
		l->seen[0].moved = true;
	pthread_mutex_unlock(&l->lock);
}

bool handle_take_moved(struct handle_list *l, const char *path,
		       int64_t *version)
{
	pthread_mutex_lock(&l->lock);
	struct seen_version *e = find_seen(l->seen, path, 0);
	/* Only a moved entry gives the version: any other is some other
	 * open's newest, not what this open's bytes come from (a lost update,
	 * once). */
	bool found = e && e->moved;
	if (found) {
		*version = e->version;
		e->moved = false;
	}
	pthread_mutex_unlock(&l->lock);
	return found;
}

bool handle_seen_version(struct handle_list *l, const char *path,
			 int64_t *version)
{
	return recall(l, l->seen, path, 0, version);
}

struct handle *handle_new(struct handle_list *l, const char *path, bool is_data,
			  unsigned char *content, size_t len, int64_t base,
			  const struct topo_meta *meta)
{
	struct handle *h = calloc(1, sizeof(*h));
	if (!h || !(h->path = strdup(path)))
		goto nomem;
	if (len) {
		h->orig = malloc(len);
		if (!h->orig)
			goto nomem;
		memcpy(h->orig, content, len);
	}
	h->is_data = is_data;
	h->buf = content;
	h->len = h->cap = h->orig_len = len;
	h->base = base;
	if (meta)
		h->meta = *meta;
	pthread_mutex_init(&h->lock, NULL);
	pthread_mutex_lock(&l->lock);
	h->next = l->head;
	l->head = h;
	pthread_mutex_unlock(&l->lock);
	return h;
nomem:
	if (h) {
		free(h->path);
		free(h->orig);
		free(h);
	}
	free(content);
	return NULL;
}

void handle_free(struct handle_list *l, struct handle *h)
{
	pthread_mutex_lock(&l->lock);
	for (struct handle **p = &l->head; *p; p = &(*p)->next) {
		if (*p == h) {
			*p = h->next;
			break;
		}
	}
	pthread_mutex_unlock(&l->lock);
	pthread_mutex_destroy(&h->lock);
	free(h->path);
	free(h->buf);
	free(h->orig);
	free(h);
}

size_t handle_read(struct handle *h, char *out, size_t size, off_t off)
{
	size_t n = 0;
	pthread_mutex_lock(&h->lock);
	h->view_done = true;
	if (off >= 0 && (size_t)off < h->len) {
		n = h->len - (size_t)off;
		if (n > size)
			n = size;
		memcpy(out, h->buf + off, n);
	}
	pthread_mutex_unlock(&h->lock);
	return n;
}

/* Make room for `len` bytes, zero-filling new space. Lock held. */
static int reserve(struct handle *h, size_t len)
{
	if (len <= h->cap) {
		if (len > h->len)
			memset(h->buf + h->len, 0, len - h->len);
		return 0;
	}
	size_t cap = h->cap ? h->cap : 4096;
	while (cap < len)
		cap *= 2;
	unsigned char *b = realloc(h->buf, cap);
	if (!b)
		return -ENOMEM;
	memset(b + h->len, 0, cap - h->len);
	h->buf = b;
	h->cap = cap;
	return 0;
}

int handle_write(struct handle *h, const char *in, size_t size, off_t off,
		 size_t max, pid_t writer)
{
	int rc;
	pthread_mutex_lock(&h->lock);
	h->writer = writer; /* see handle_close_commits */
	size_t at = h->append ? h->len : (size_t)off;
	if (off < 0 || at > max || size > max - at) {
		h->too_big = true;
		rc = -EFBIG;
	} else if ((rc = reserve(h, at + size)) == 0) {
		memcpy(h->buf + at, in, size);
		if (at + size > h->len)
			h->len = at + size;
		h->dirty = true;
		rc = (int)size;
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

int handle_truncate(struct handle *h, off_t size, size_t max)
{
	if (size < 0)
		return -EINVAL;
	pthread_mutex_lock(&h->lock);
	if ((uint64_t)size > max) {
		h->too_big = true;
		pthread_mutex_unlock(&h->lock);
		return -EFBIG;
	}
	int rc = reserve(h, (size_t)size);
	if (!rc) {
		h->len = (size_t)size;
		h->dirty = true;
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

/* Remember the committed content as the new baseline. Lock held. */
static int rebase(struct handle *h, const struct topo_meta *meta)
{
	unsigned char *o = NULL;
	if (h->len) {
		o = malloc(h->len);
		if (!o)
			return -ENOMEM;
		memcpy(o, h->buf, h->len);
	}
	free(h->orig);
	h->orig = o;
	h->orig_len = h->len;
	h->base = meta->version;
	h->meta = *meta;
	h->dirty = false;
	return 0;
}

/* -o writeback: queue the create of h's new file and show it at once (its
 * metadata is provisional until the queue is applied). */
static int queue_create(struct topofs *t, struct handle *h,
			const unsigned char *data, size_t len)
{
	struct topo_meta meta = {.size = len, .has_data = true};
	cache_note_put(t->cache, h->path, data, len, &meta);
	cache_set_pending(t->cache, h->path, true);
	int rc = writeback_create(t->wb, h->path, data, len, false);
	if (rc) {
		cache_set_pending(t->cache, h->path, false);
		cache_invalidate(t->cache, h->path);
		return rc;
	}
	h->queued = true;
	return rebase(h, &meta);
}

/* Before another store write of a key whose create is queued: that create
 * first (the store sees each key's writes in order), and a handle whose
 * create was queued learns the version the store gave it. 0, or the
 * cache's error. */
static int settle_queued(struct topofs *t, struct handle *h)
{
	if (h->queued)
		writeback_wait(t->wb); /* our own create first */
	else
		writeback_wait_for(t->wb, h->path);
	if (!h->queued)
		return 0;
	struct cache_stat cs;
	int rc = cache_stat_brief(t->cache, h->path, &cs);
	if (rc == 0) {
		h->base = cs.meta.version;
		h->queued = false;
	}
	return rc;
}

/* A commit of h failed in a way that leaves the key's value unknown: the
 * next access reads it again. A key the cache holds is read with one get(),
 * not by re-listing its directory with every sibling's value; a key it
 * lacks (a create that found one) needs the listing. h->lock held. */
static void read_again(struct topofs *t, struct handle *h)
{
	if (h->base == TOPO_EXPECT_ABSENT)
		cache_invalidate(t->cache, h->path);
	else
		cache_mark_stale(t->cache, h->path);
}

/* The store write of a commit: compare-and-set on the version compared
 * with and, where a store's versions start again with a new node
 * (ZooKeeper), on the node seen at open (its create_id): that node deleted
 * and created again by another client is a conflict, whatever version the
 * new one has reached. Lock held. */
static int commit_put(struct topofs *t, const struct handle *h,
		      const unsigned char *data, size_t len,
		      struct topo_meta *meta)
{
	int rc;
	cache_write_begin(t->cache);
	if (t->be->put_same && h->base >= 0 && h->meta.create_id > 0)
		rc = t->be->put_same(t->st, h->path, data, len, h->base,
				     h->meta.create_id, meta);
	else
		rc = t->be->put(t->st, h->path, data, len, h->base, meta);
	cache_write_end(t->cache);
	return rc;
}

static int commit_locked(struct topofs *t, struct handle *h)
{
	if (h->too_big)
		return -EFBIG; /* nothing is written (SPEC 5) */
	if (h->unlinked)
		h->dirty = false; /* the file is gone: its edits go with it */
	if (!h->dirty)
		return 0;
	if (h->scratch) {
		int rc = scratch_write(&t->scratch, h->path, h->buf, h->len);
		h->dirty = rc != 0;
		return rc;
	}
	/* same bytes as the version compared with: nothing to write. (Not
	 * when a whole rewrite compares with an older version the process
	 * read: the bytes at open may be another client's since.) */
	if (h->base >= 0 && h->base == h->meta.version &&
	    h->len == h->orig_len &&
	    (h->len == 0 || memcmp(h->buf, h->orig, h->len) == 0)) {
		h->dirty = false;
		return 0;
	}
	unsigned char *wire = NULL;
	size_t wirelen = 0;
	if (h->view) {
		char err[256];
		int erc =
		    view_json_encode(h->view, (const char *)h->buf, h->len,
				     &wire, &wirelen, err, sizeof(err));
		if (erc) {
			topo_err("%s: not written: %s", h->path, err);
			return erc;
		}
		if (wirelen > t->be->max_value) {
			free(wire);
			return -EFBIG;
		}
	}
	const unsigned char *data = h->view ? wire : h->buf;
	size_t len = h->view ? wirelen : h->len;
	struct topo_meta meta = {0};
	if (t->wb && h->base == TOPO_EXPECT_ABSENT) {
		int rc = queue_create(t, h, data, len);
		free(wire);
		return rc;
	}
	if (t->wb && (settle_queued(t, h) != 0)) {
		free(wire);
		return -EIO;
	}
	int rc = commit_put(t, h, data, len, &meta);
	if (rc == -ESTALE || rc == -EEXIST || (rc == -ENOENT && h->base >= 0)) {
		topo_err("%s: not written: changed by another client since it "
			 "was opened (%s)",
			 h->path,
			 rc == -EEXIST	 ? "created meanwhile"
			 : rc == -ENOENT ? "deleted meanwhile"
					 : "new version");
		read_again(t, h);
		free(wire);
		return -EIO;
	}
	if (rc) {
		topo_err("%s: not written: %s", h->path, strerror(-rc));
		if (rc != -EFBIG) /* it may have landed: read it again */
			read_again(t, h);
		free(wire);
		return rc;
	}
	meta.size = len;
	cache_note_put(t->cache, h->path, data, len, &meta);
	/* A close with no write leaves the kernel with the attributes the
	 * file had while being created (no store time): drop them, as after
	 * a queued create. (The kernel takes it a moment after the close.) */
	if (h->base == TOPO_EXPECT_ABSENT)
		topofs_written(t, h->path);
	free(wire);
	return rebase(h, &meta);
}

/* A process that read path wrote `version`: its next save edits that.
 * A process that never read path is not tracked (a blind write). */
static void written_by(struct handle_list *l, const char *path, pid_t pid,
		       int64_t version)
{
	pthread_mutex_lock(&l->lock);
	struct seen_version *e = find_seen(l->read_by, path, pid);
	if (e)
		e->version = version;
	pthread_mutex_unlock(&l->lock);
}

/* The thread group (process) of task `tid`, or 0 if unknown (gone). */
static pid_t process_of(pid_t tid)
{
	char path[64], line[128];
	pid_t tgid = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

bool handle_close_commits(struct handle *h, pid_t pid)
{
	pthread_mutex_lock(&h->lock);
	pid_t opener = h->pid, writer = h->writer;
	bool any = h->scratch || pid <= 0 || opener <= 0;
	pthread_mutex_unlock(&h->lock);
	if (any || pid == opener || pid == writer)
		return true;
	/* FUSE names threads: another thread of the opener or the writer */
	pid_t proc = process_of(pid);
	return proc && (proc == process_of(opener) ||
			(writer > 0 && proc == process_of(writer)));
}

bool handle_owes_commit(struct handle *h)
{
	pthread_mutex_lock(&h->lock);
	bool owes = h->writable && h->dirty && !h->failed && !h->unlinked;
	pthread_mutex_unlock(&h->lock);
	return owes;
}

static bool names(const struct handle *h, const char *path, bool is_data);

/* A commit through the mount wrote (path, is_data): no open file of it
 * is what its opener's stat shows any more (handle_view_of). */
static void views_done(struct handle_list *l, const char *path, bool is_data)
{
	pthread_mutex_lock(&l->lock);
	for (struct handle *h = l->head; h; h = h->next) {
		pthread_mutex_lock(&h->lock);
		if (names(h, path, is_data))
			h->view_done = true;
		pthread_mutex_unlock(&h->lock);
	}
	pthread_mutex_unlock(&l->lock);
}

int handle_commit(struct topofs *t, struct handle *h)
{
	pthread_mutex_lock(&h->lock);
	int64_t before = h->base;
	int rc = commit_locked(t, h);
	h->failed = rc != 0;
	int64_t after = h->base;
	/* a rename may change h->path once the lock is let go */
	char *path = !rc && after != before ? strdup(h->path) : NULL;
	pthread_mutex_unlock(&h->lock);
	/* after unlocking: the list lock is taken before a handle's lock */
	if (path) {
		handle_seen(&t->handles, path, after);
		written_by(&t->handles, path, h->pid, after);
		views_done(&t->handles, path, h->is_data);
	}
	free(path);
	return rc;
}

bool handle_pending(struct handle_list *l, const char *path, bool new_only,
		    size_t *len)
{
	bool found = false;
	pthread_mutex_lock(&l->lock);
	for (struct handle *h = l->head; h && !found; h = h->next) {
		if (!h->writable || h->scratch || strcmp(h->path, path) != 0)
			continue;
		pthread_mutex_lock(&h->lock);
		/* new_only: a file being created (or a ZooKeeper directory's
		 * hidden data being written), which the store lacks yet */
		bool pending = new_only ? h->base == TOPO_EXPECT_ABSENT ||
					      (h->is_data && h->dirty)
					: h->dirty;
		pending = pending && !h->unlinked;
		if (pending) {
			*len = h->len;
			found = true;
		}
		pthread_mutex_unlock(&h->lock);
	}
	pthread_mutex_unlock(&l->lock);
	return found;
}

/* Whether h is an open of a new file not yet in the store. h->lock held. */
static bool is_new_file(const struct handle *h)
{
	return h->writable && !h->scratch && !h->is_data && !h->unlinked &&
	       h->base == TOPO_EXPECT_ABSENT;
}

/* Whether a handle before `h` on the list is an open of the same new file
 * (it is listed once). List lock held. */
static bool new_file_listed(const struct handle_list *l, const struct handle *h)
{
	for (struct handle *o = l->head; o != h; o = o->next) {
		pthread_mutex_lock(&o->lock);
		bool same = is_new_file(o) && strcmp(o->path, h->path) == 0;
		pthread_mutex_unlock(&o->lock);
		if (same)
			return true;
	}
	return false;
}

void handle_list_new_in(struct handle_list *l, const char *dir,
			void (*fn)(void *arg, const char *name), void *arg)
{
	size_t dlen = strlen(dir);
	pthread_mutex_lock(&l->lock);
	for (struct handle *h = l->head; h; h = h->next) {
		pthread_mutex_lock(&h->lock);
		bool is_new = is_new_file(h) &&
			      path_parent_len(h->path) == dlen &&
			      strncmp(h->path, dir, dlen) == 0;
		pthread_mutex_unlock(&h->lock);
		if (is_new && !new_file_listed(l, h))
			fn(arg, path_basename(h->path));
	}
	pthread_mutex_unlock(&l->lock);
}

bool handle_new_copy(struct handle_list *l, const char *path,
		     unsigned char **buf, size_t *len)
{
	bool found = false;
	*buf = NULL;
	pthread_mutex_lock(&l->lock);
	for (struct handle *h = l->head; h && !found; h = h->next) {
		pthread_mutex_lock(&h->lock);
		if (is_new_file(h) && strcmp(h->path, path) == 0) {
			found = true;
			*len = h->len;
			if ((*buf = malloc(h->len ? h->len : 1)))
				memcpy(*buf, h->buf, h->len);
		}
		pthread_mutex_unlock(&h->lock);
	}
	pthread_mutex_unlock(&l->lock);
	return found;
}

/* Whether h is an open file of the name (path, is_data) that a stat or a
 * name operation sees. h->lock held. */
static bool names(const struct handle *h, const char *path, bool is_data)
{
	return !h->unlinked && h->is_data == is_data &&
	       strcmp(h->path, path) == 0;
}

bool handle_open_size(struct handle_list *l, const char *path, bool is_data,
		      pid_t pid, size_t *len)
{
	bool found = false, own = false;
	pthread_mutex_lock(&l->lock);
	for (struct handle *h = l->head; h && !own; h = h->next) {
		if (!h->writable || h->scratch)
			continue;
		pthread_mutex_lock(&h->lock);
		/* the list is newest first: keep the first, or pid's own */
		if (names(h, path, is_data) && h->dirty &&
		    (!found || h->pid == pid)) {
			*len = h->len;
			found = true;
			own = h->pid == pid;
		}
		pthread_mutex_unlock(&h->lock);
	}
	pthread_mutex_unlock(&l->lock);
	return found;
}

enum handle_view handle_view_of(struct handle_list *l, const char *path,
				bool is_data, pid_t pid, int64_t version,
				size_t len, struct topo_meta *meta,
				size_t *own_len)
{
	enum handle_view view = VIEW_STORE;
	bool own_seen = false; /* pid's newest: its older ones do not count
				  (a closed file's RELEASE comes later) */
	pthread_mutex_lock(&l->lock);
	for (struct handle *h = l->head; h && view != VIEW_OWN; h = h->next) {
		if (h->scratch || (h->pid == pid && own_seen))
			continue;
		pthread_mutex_lock(&h->lock);
		/* the list is newest first */
		if (names(h, path, is_data) && !h->queued && !h->view_done &&
		    h->base != TOPO_EXPECT_ABSENT) {
			bool other =
			    h->meta.version != version || h->len != len;
			if (h->pid == pid) {
				own_seen = true;
				if (other) {
					*meta = h->meta;
					*own_len = h->len;
					view = VIEW_OWN;
				}
			} else if (other) {
				view = VIEW_OTHERS;
			}
		}
		pthread_mutex_unlock(&h->lock);
	}
	pthread_mutex_unlock(&l->lock);
	return view;
}

size_t handles_unlink(struct handle_list *l, const char *path, bool is_data)
{
	size_t new_files = 0;
	pthread_mutex_lock(&l->lock);
	for (struct handle *h = l->head; h; h = h->next) {
		pthread_mutex_lock(&h->lock);
		if (names(h, path, is_data)) {
			h->unlinked = true;
			if (h->base == TOPO_EXPECT_ABSENT)
				new_files++;
		}
		pthread_mutex_unlock(&h->lock);
	}
	pthread_mutex_unlock(&l->lock);
	return new_files;
}

/* h's path with `from` (a prefix of it) replaced by `to`: 0 or -ENOMEM.
 * Both locks held. */
static int rename_path(struct handle *h, size_t from_len, const char *to)
{
	char *p;
	if (asprintf(&p, "%s%s", to, h->path + from_len) < 0)
		return -ENOMEM;
	free(h->path);
	h->path = p;
	return 0;
}

int handles_move(struct handle_list *l, const char *from, const char *to,
		 bool subtree)
{
	size_t flen = strlen(from);
	int rc = 0;
	pthread_mutex_lock(&l->lock);
	for (struct handle *h = l->head; h; h = h->next) {
		pthread_mutex_lock(&h->lock);
		bool exact =
		    strcmp(h->path, from) == 0 && (subtree || !h->is_data);
		bool below = subtree && strncmp(h->path, from, flen) == 0 &&
			     (!*from || h->path[flen] == '/');
		if (!h->unlinked && !h->scratch && (exact || below) &&
		    rename_path(h, flen, to))
			rc = -ENOMEM;
		pthread_mutex_unlock(&h->lock);
	}
	pthread_mutex_unlock(&l->lock);
	return rc;
}

void handles_rebase(struct handle_list *l, const char *path, int64_t old,
		    int64_t now)
{
	pthread_mutex_lock(&l->lock);
	for (struct handle *h = l->head; h; h = h->next) {
		pthread_mutex_lock(&h->lock);
		if (!h->scratch && !h->unlinked && strcmp(h->path, path) == 0 &&
		    h->base == old) {
			h->base = now;
			if (h->meta.version == old) /* the same bytes */
				h->meta.version = now;
			h->meta.create_id = 0; /* a new node: its id unknown */
		}
		pthread_mutex_unlock(&h->lock);
	}
	pthread_mutex_unlock(&l->lock);
}

int handles_move_new(struct handle_list *l, const char *from, const char *to,
		     int64_t base)
{
	int moved = 0;
	size_t flen = strlen(from);
	pthread_mutex_lock(&l->lock);
	for (struct handle *h = l->head; h && moved >= 0; h = h->next) {
		pthread_mutex_lock(&h->lock);
		if (!h->scratch && names(h, from, false) &&
		    h->base == TOPO_EXPECT_ABSENT) {
			if (rename_path(h, flen, to)) {
				moved = -ENOMEM;
			} else {
				h->base = base;
				/* the whole buffer replaces what `to` holds:
				 * never "same bytes" */
				h->meta.version = TOPO_VERSION_UNKNOWN;
				h->dirty = true;
				moved++;
			}
		}
		pthread_mutex_unlock(&h->lock);
	}
	pthread_mutex_unlock(&l->lock);
	return moved;
}

bool handle_node(struct handle_list *l, uint64_t node, struct handle *copy,
		 char *path, size_t size)
{
	bool found = false;
	pthread_mutex_lock(&l->lock);
	for (struct handle *h = l->head; h && !found; h = h->next) {
		pthread_mutex_lock(&h->lock);
		if (node && h->node == node) {
			*copy = *h; /* its pointers are not to be used */
			snprintf(path, size, "%s", h->path);
			found = true;
		}
		pthread_mutex_unlock(&h->lock);
	}
	pthread_mutex_unlock(&l->lock);
	return found;
}

void handle_read_unlinked(struct handle_list *l, const char *path, pid_t pid)
{
	written_by(l, path, pid, TOPO_EXPECT_ABSENT);
}

void handle_read_renamed(struct handle_list *l, const char *from,
			 const char *to, pid_t pid, int64_t old, int64_t now)
{
	int64_t v;
	bool knew = (handle_last_read(l, from, pid, &v) && v == old) ||
		    handle_last_read(l, to, pid, &v);
	if (knew)
		remember(l, l->read_by, to, pid, now);
	handle_read_unlinked(l, from, pid);
}
