/*
 * backend.h - the contract between the filesystem (fs/) and the stores
 * (backends/).
 *
 * A backend is one constant table of operations, `struct topo_backend`,
 * registered by name in backends/registry.c. The filesystem never knows which
 * store it talks to: it only calls these operations.
 *
 * Paths
 *   Every operation takes a path relative to the mounted root, without a
 *   leading or trailing slash: "" is the root itself, "keyspaces/ks/Keyspace"
 *   is the key ROOT/keyspaces/ks/Keyspace. The backend maps them to its own
 *   keys or znodes. Paths given to a backend are always valid file paths
 *   (fs/path.c checks them); paths a backend returns may contain any bytes
 *   except NUL and the filesystem filters them.
 *
 * Versions
 *   Every node carries a version used for compare-and-set: etcd's mod_revision,
 *   ZooKeeper's data version. A write names the version it expects:
 *     TOPO_EXPECT_ANY     overwrite whatever is there (or create);
 *     TOPO_EXPECT_ABSENT  create only if the node does not exist;
 *     v >= 0              the node must exist with exactly this version.
 *   ZooKeeper's data version of a new znode is 0, so 0 is a real version and
 *   "absent" has its own value.
 *
 * Return values
 *   Every operation returns 0 on success or a negative errno:
 *     -ENOENT     no such node
 *     -EEXIST     TOPO_EXPECT_ABSENT and the node exists
 *     -ESTALE     the node's version is not the expected one (a conflict:
 *                 another client changed it); the filesystem reports EIO
 *     -ENOTEMPTY  the node has children
 *     -EACCES     not authorised
 *     -EFBIG      the value is over the store's limit
 *     -ENOSPC     the store's quota is full (etcd's NOSPACE alarm)
 *     -E2BIG      a transaction has more operations than the store takes
 *     -EIO        unreachable, timed out, or an answer that makes no sense
 *                 (each backend logs the cause, naming the key)
 *     -ENOMEM     out of memory
 *   Each backend maps its store's errors to these in one function.
 *
 * Ownership
 *   Inputs are borrowed for the duration of the call. Outputs (struct
 *   topo_listing, struct topo_entry) are filled by the backend and released
 *   by the caller with topo_listing_free() / topo_entry_free().
 *
 * Threads
 *   A store handle is used by many threads at once (FUSE is multi-threaded);
 *   every operation must be safe to call concurrently.
 */
#ifndef TOPOFS_BACKEND_H
#define TOPOFS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOPO_EXPECT_ANY ((int64_t)-1)
#define TOPO_EXPECT_ABSENT ((int64_t)-2)
#define TOPO_VERSION_UNKNOWN ((int64_t)-3) /* a version no backend gives */

/* What the store keeps about one node; one struct serves every backend. */
struct topo_meta {
	int64_t version;   /* etcd mod_revision, ZooKeeper data version */
	int64_t create_id; /* etcd create_revision, ZooKeeper czxid */
	int64_t modify_id; /* etcd mod_revision, ZooKeeper mzxid */
	int64_t
	    change_count; /* etcd version (writes since create), ZK version */
	int64_t child_count;  /* ZooKeeper cversion; 0 for etcd */
	int64_t num_children; /* ZooKeeper numChildren; 0 for etcd */
	int64_t ctime_ns; /* ZooKeeper ctime; 0 where the store keeps none */
	int64_t mtime_ns; /* ZooKeeper mtime; 0 where the store keeps none */
	int64_t lease;	  /* etcd lease id, ZooKeeper ephemeral owner, or 0 */
	uint64_t size;	  /* length of the value in bytes */
	bool ephemeral;	  /* leased key / ephemeral znode: shown read-only */
	bool has_data;	  /* the node itself holds a value (etcd: always) */
	bool real_dir;	  /* the store knows this node as a directory (ZK) */
	bool denied;	  /* the store refused to read it (ZooKeeper ACL): its
			     name is all that is known; using it is EACCES */
};

/* One backend-specific extended attribute (SPEC 3), e.g.
 * {"user.etcd.lease", 7587867387}. */
struct topo_xattr {
	const char *name; /* static */
	int64_t value;
};
#define TOPO_XATTR_MAX 16

/* One node with its value, as returned by get and by bulk listing. */
struct topo_entry {
	char *path; /* relative to the root, NUL-terminated, owned */
	struct topo_meta meta;
	unsigned char *value; /* meta.size bytes, owned; NULL when meta.size==0
				 or when the listing was asked without values */
};

/* Where a listing's entries go while the backend is still reading it (set
 * by the caller of list(), optional). A listing of a million keys need not
 * be in memory whole on its way into the cache: topo_listing_add() hands
 * the entries gathered so far to the sink every TOPO_LISTING_BATCH
 * entries, and the caller hands it the rest after list() returns
 * (topo_listing_flush). Entries then come in no particular order. */
struct topo_listing_sink {
	/* Takes a copy of what it keeps of entries[0..count) (they are freed
	 * after). 0, or a negative errno that ends the listing with it. */
	int (*take)(void *ctx, const struct topo_entry *entries, size_t count);
	/* Forgets every entry taken so far: the listing starts over (etcd:
	 * the revision it was read at was compacted meanwhile). */
	void (*restart)(void *ctx);
	void *ctx;
};

#define TOPO_LISTING_BATCH 512 /* entries held before a sink takes them */

/* The result of a bulk listing: every node of a subtree. A listing is
 * given to list() empty ({0}, or with only `sink` set). */
struct topo_listing {
	struct topo_entry *entries; /* owned array, sorted by path bytewise
				       (unless a sink takes them) */
	size_t count;
	size_t capacity;
	int64_t revision; /* the store's revision the listing reflects (etcd
			     header revision, ZooKeeper: 0) */
	const struct topo_listing_sink *sink; /* borrowed, may be NULL */
};

/* One step of an atomic multi-operation (used for rename). */
enum topo_op_kind {
	TOPO_OP_PUT,	/* write value; `expect` as for put */
	TOPO_OP_DELETE, /* delete the node; `expect` as for del */
	/* Write nothing; the whole multi fails with -ESTALE if any node at
	 * or below `path` was created or changed after store revision
	 * `expect` (>= 0: the revision of the listing the other ops were
	 * built from), so a multi that moves a subtree also moves what was
	 * created in it meanwhile, or nothing. Checked by backends with
	 * TOPO_CAP_GUARD; the others ignore it. */
	TOPO_OP_GUARD,
};

struct topo_op {
	enum topo_op_kind kind;
	const char *path;
	const void *value; /* TOPO_OP_PUT only */
	size_t len;
	int64_t expect;
	int64_t *version_out; /* TOPO_OP_PUT, may be NULL: where multi() puts
				 the node's new version when it succeeds; left
				 as is when the backend cannot tell */
};

/* What a change notice says changed (see topo_backend.watch). */
enum topo_change {
	TOPO_CHANGE_NODE,     /* the node at path was created, changed or
				 deleted: its parent's listing is stale */
	TOPO_CHANGE_CHILDREN, /* the children of path changed: its own
				 listing is stale */
	TOPO_CHANGE_ALL,      /* notices may have been lost (etcd compaction,
				 ZooKeeper session expiry): all is stale */
	TOPO_CHANGE_DELETED,  /* the node at path was deleted (version: the
				 etcd revision of the delete, or -1) */
};

/* Receives change notices on a backend thread. It must not block on the
 * store (it may take the cache's locks and tell the kernel). */
typedef void (*topo_change_fn)(void *arg, enum topo_change what,
			       const char *path, int64_t version);

/* Capability bits. */
#define TOPO_CAP_REAL_DIRS (1u << 0) /* store has directories (mkdir op) */
#define TOPO_CAP_REVISIONS (1u << 1) /* listings carry a global revision */
/* reads at a past revision: conf.revision, conf.snapshot (etcd v3) */
#define TOPO_CAP_PIN (1u << 2)
/* directories are a node type of their own (etcd v2): one stays a directory
 * when its last child goes (ZooKeeper's become files: Vitess's rule) */
#define TOPO_CAP_DIR_NODES (1u << 3)
/* multi() checks TOPO_OP_GUARD against the revision of a list() */
#define TOPO_CAP_GUARD (1u << 4)

/* Connection settings, filled from the command line (fs/options.c). */
struct topo_conf {
	const char *servers; /* comma-separated host:port list */
	const char *root;    /* absolute root, e.g. "/vitess/global" */
	unsigned timeout_ms; /* bound on every operation */
	const char *tls_cert, *tls_key, *tls_ca; /* etcd TLS, may be NULL */
	const char *zk_auth_file; /* "scheme:auth", may be NULL */
	/* etcd user and the file holding its password, may be NULL */
	const char *etcd_user, *etcd_password_file;
	/* -o create_root: a root with nothing in it is fine (etcd: a new
	 * topology; stores with real directories mkdir it instead). */
	bool missing_root_ok;
	/* -o revision=N (> 0): every read at the store's revision N, every
	 * write -EROFS, no watch (nothing changes). -o snapshot: the same at
	 * the revision current when open() runs. TOPO_CAP_PIN only. A
	 * revision the store no longer has (compacted) or does not have yet
	 * fails open() with -EINVAL and the reason in errbuf. */
	int64_t revision;
	bool snapshot;
};

/* ---- topofs --check (fs/check.c) ---- */

/* How one check came out: the three words of a report line. */
enum topo_check_level {
	TOPO_CHECK_OK,
	TOPO_CHECK_WARN, /* works, but needs attention (a certificate expiring
			    within 30 days, a member down of several) */
	TOPO_CHECK_FAIL,
};

/* One result of a backend's check(); every string is borrowed for the
 * call of the callback only. */
struct topo_check_item {
	enum topo_check_level level;
	const char *server; /* the address it is about, as given in
			       conf->servers; NULL: the store as a whole */
	const char *what;   /* what was checked, a few words ("reachable",
			       "store", "tls server certificate", ...) */
	const char *value;  /* the measured value or the reason, one line */
	double ms;	    /* the time it measured, or -1 */
	bool foreign;	    /* `server` answers, but not as this store: the
			       caller asks the other backends' identify() */
};

/* Receives the results of check(), in order, on the caller's thread. */
typedef void (*topo_check_fn)(void *arg, const struct topo_check_item *item);

/* For backends' check(): pass one result to fn, its value formatted from
 * fmt (cut at 767 bytes). (backends/registry.c) */
void topo_check_report(topo_check_fn fn, void *arg, enum topo_check_level level,
		       const char *server, const char *what, double ms,
		       bool foreign, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

struct topo_store; /* one connected store; opaque, owned by its backend */

struct topo_backend {
	const char *name; /* "etcd2", "zk2": the --topo_implementation value */
	unsigned caps;
	size_t max_value; /* largest value the store accepts, in bytes */
	size_t max_ops;	  /* most operations in one multi() */

	/* Connect and check that the store answers and that the root is usable:
	 * -ENOTDIR if it is a file, -ENOENT if it does not exist (unless
	 * conf->missing_root_ok). Returns 0 and *out, or a negative errno with
	 * a one-line reason in errbuf (errlen bytes). */
	int (*open)(const struct topo_conf *conf, struct topo_store **out,
		    char *errbuf, size_t errlen);

	/* Disconnect and free everything the store owns. NULL is allowed. */
	void (*close)(struct topo_store *s);

	/* Every node at `path` and below it (the node itself included when it
	 * exists), with metadata and values. Not capped: a backend pages as
	 * needed. An empty listing is not an error. */
	int (*list)(struct topo_store *s, const char *path,
		    struct topo_listing *out);

	/* One node with its value; -ENOENT if absent. */
	int (*get)(struct topo_store *s, const char *path,
		   struct topo_entry *out);

	/* Write a value with compare-and-set on `expect`. On success, *meta (if
	 * not NULL) is the node's new metadata. -EEXIST, -ESTALE, -ENOENT (an
	 * expected version but no node), -EFBIG. */
	int (*put)(struct topo_store *s, const char *path, const void *value,
		   size_t len, int64_t expect, struct topo_meta *meta);

	/* put() with a version `expect` >= 0 that must also find the very
	 * node the caller read, known by its create_id (0: any node): -ESTALE
	 * if the node at path was deleted and created again since. For stores
	 * whose versions restart with a new node (ZooKeeper's data version
	 * starts at 0 again and may reach `expect` again); NULL where a
	 * version belongs to one node only (etcd's mod_revision): put() then
	 * tells the nodes apart by itself. */
	int (*put_same)(struct topo_store *s, const char *path,
			const void *value, size_t len, int64_t expect,
			int64_t create_id, struct topo_meta *meta);

	/* Delete one node with compare-and-set on `expect` (TOPO_EXPECT_ANY or
	 * a version). -ENOENT, -ESTALE, -ENOTEMPTY (ZooKeeper node with
	 * children). Never deletes anything else. */
	int (*del)(struct topo_store *s, const char *path, int64_t expect);

	/* Apply all of ops[0..n) atomically or none of them. -E2BIG if n is
	 * over max_ops; the first failing step's errno otherwise. */
	int (*multi)(struct topo_store *s, const struct topo_op *ops, size_t n);

	/* Create an empty directory node (TOPO_CAP_REAL_DIRS only, else NULL).
	 * -EEXIST if present. */
	int (*mkdir)(struct topo_store *s, const char *path);

	/* mkdir() that also fills *meta (not NULL) with the new node's
	 * metadata from the store's answer, its times included (ZooKeeper:
	 * the create's Stat), so that the directory shows them at once. NULL
	 * where mkdir() is all there is. */
	int (*mkdir_meta)(struct topo_store *s, const char *path,
			  struct topo_meta *meta);

	/* Space: total and used bytes of the store's quota. NULL if unknown. */
	int (*space)(struct topo_store *s, uint64_t *total, uint64_t *used);

	/* Start delivering change notices for the whole root to fn(arg, ...),
	 * from a thread of the backend's, until close(). `path` is relative
	 * to the root (as everywhere); `version` is the node's new version
	 * for TOPO_CHANGE_NODE when the store tells it (etcd mod_revision; an
	 * etcd delete gives the revision of the delete), else -1. Notices
	 * come in the store's order. A backend that loses its stream
	 * reconnects by itself and, if notices may have been lost meanwhile,
	 * sends TOPO_CHANGE_ALL. etcd watches every key from the moment
	 * watch() returns; ZooKeeper watches what list() and get() have read
	 * since (one-shot watches, set again by the next read). NULL if the
	 * store has no watches: the cache then trusts a listing for
	 * -o cache_ttl only. Returns 0 or a negative errno. */
	int (*watch)(struct topo_store *s, topo_change_fn fn, void *arg);

	/* The names of the direct children of `path`, in any order: *count
	 * NUL-terminated names back to back in one malloc'd buffer *names
	 * (NULL when there are none; the caller frees it). Once watch() is
	 * called, it also sets the child watch of `path` again. For stores
	 * whose notices include TOPO_CHANGE_CHILDREN (ZooKeeper), else NULL.
	 * 0, -ENOENT or the store's errno. */
	int (*children)(struct topo_store *s, const char *path, char **names,
			size_t *count);

	/* The store's own metadata of a node as extended attributes
	 * ("user.etcd.*", "user.zk.*"): fills out[0..TOPO_XATTR_MAX) and
	 * returns the count. Pure: no store request. */
	size_t (*xattrs)(const struct topo_meta *m, struct topo_xattr *out);

	/* The store revision the mount shows: the pinned one (*pinned = true)
	 * or, on a live mount, the store's current revision (one request).
	 * 0 or a negative errno. NULL if the store has no global revision. */
	int (*revision)(struct topo_store *s, int64_t *rev, bool *pinned);

	/* topofs --check: check each address of conf->servers on its own,
	 * over a connection of its own, every step bounded by
	 * conf->timeout_ms: reachable, answers as this store (else an item
	 * with `foreign`), the TLS handshake and the days left on the
	 * server's and the client's certificates (WARN under 30), the
	 * credentials accepted, the round-trip time, and what the servers
	 * say of their cluster (etcd: one cluster_id, a leader; ZooKeeper:
	 * each server's mode, one leader). Results go to fn(arg, item), one
	 * per line of the report, in order. Never writes, never looks at the
	 * root (the caller does that with open()), never creates anything.
	 * Each address that answers as this store gets an item with `what`
	 * "store" that is not a FAIL (the caller checks the root only when
	 * some address did).
	 * Returns 0 when the checks ran (a FAIL is a result, not an error),
	 * or -EINVAL / -ENOMEM when they could not run at all, with the
	 * reason in errbuf. NULL: the store has no checks of its own. */
	int (*check)(const struct topo_conf *conf, topo_check_fn fn, void *arg,
		     char *errbuf, size_t errlen);

	/* Whether the server at `address` ("host:port") answers as this
	 * store, asked within timeout_ms without credentials and without
	 * changing anything (for an address that another backend's check()
	 * found foreign). 0 with a few words in desc ("etcd 3.4.23"),
	 * -EPROTO: it answers, but not as this store, -EIO: no answer.
	 * NULL: the backend cannot tell. */
	int (*identify)(const char *address, unsigned timeout_ms, char *desc,
			size_t desclen);
};

/* The registered backends, by name; NULL if unknown. (backends/registry.c) */
const struct topo_backend *topo_backend_find(const char *name);

/* The backend for --topo_implementation=name and -o etcd_api=api (NULL:
 * the default, "v3"; "v2" selects etcd's v2 keys API for etcd2); NULL if
 * there is none. */
const struct topo_backend *topo_backend_select(const char *name,
					       const char *etcd_api);

/* The i-th registered backend (i from 0), NULL past the last: for
 * asking each of them who answers at an address (identify). */
const struct topo_backend *topo_backend_nth(size_t i);

/* A comma-separated list of the registered names, for --help. */
const char *topo_backend_names(void);

/* Helpers every backend uses to build results (backends/registry.c). */

/* Append an entry (path copied; value, meta.size bytes or NULL, owned by
 * the listing from then on). With a sink, first hands it a full batch.
 * 0, -ENOMEM or the sink's error (then value is still the caller's). */
int topo_listing_add(struct topo_listing *l, const char *path, size_t pathlen,
		     const struct topo_meta *meta, unsigned char *value);
/* Hand the entries held to the sink and free them; 0 without a sink. 0 or
 * the sink's error (the entries are freed either way). */
int topo_listing_flush(struct topo_listing *l);
/* Empty the listing to read it again from the start: entries freed,
 * revision 0; the sink stays and forgets what it took. */
void topo_listing_restart(struct topo_listing *l);
void topo_listing_sort(struct topo_listing *l);
/* Free the entries and clear the listing (the sink with it). */
void topo_listing_free(struct topo_listing *l);
void topo_entry_free(struct topo_entry *e);

#endif
