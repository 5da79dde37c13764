/*
 * zkutil.h - the pure parts of the ZooKeeper backend: znode paths, the auth
 * file, the session timeout, request sizes, ACL lists. No I/O on the network,
 * no ZooKeeper client calls, so tests/unit/test_zk_util.c can check them.
 */
#ifndef TOPOFS_ZKUTIL_H
#define TOPOFS_ZKUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zookeeper/zookeeper.jute.h> /* struct ACL_vector: a type only */

/* jute.maxbuffer's default: the largest request a server reads (0xfffff
 * bytes, not counting the 4-byte length in front). A bigger one makes the
 * server drop the connection instead of answering. */
#define ZK_PACKET_MAX 1048575
/* Bytes a single create/set request adds to path and value: header 8, two
 * length prefixes 8, world:anyone ACL 27, flags 4 = 47; rounded up. */
#define ZK_OP_OVERHEAD 64
/* The value limit we advertise: 1 MiB less 1 KiB, leaving room for the
 * request framing and a path of up to ~950 bytes. */
#define ZK_MAX_VALUE (1048576 - 1024)

/* Normalise a mount root ("/vitess/global/" -> "/vitess/global", "/" -> "")
 * into a new string; -EINVAL if it is not absolute, -ENOMEM. */
int zk_root_norm(const char *root, char **out);

/* The znode path of a path relative to the normalised root ("" is the root
 * itself; the root "" is "/"). NULL when out of memory. */
char *zk_abs_path(const char *root, const char *rel);

/* The path relative to the root of an absolute znode path below it. */
const char *zk_rel_path(const char *root, const char *abs);

/* A child's znode path: parent "/" + "a" is "/a", "/x" + "a" is "/x/a". */
char *zk_join(const char *parent, const char *name);

/* Split "scheme:auth" (surrounding whitespace and the final newline
 * removed) into two new strings; -EINVAL if malformed, -ENOMEM. */
int zk_auth_parse(const char *text, char **scheme, char **cert);

/* Read and parse an auth file; a negative errno and a reason in errbuf. */
int zk_auth_read(const char *file, char **scheme, char **cert, char *errbuf,
		 size_t errlen);

/* The session timeout we ask for, in ms, from the operation timeout. */
int zk_session_ms(unsigned timeout_ms);

/* Whether a create/set of `len` bytes at `path` fits one request. */
bool zk_fits(const char *path, size_t len);

/* The ancestors of `abs` strictly below `root`, top first, as prefix lengths
 * of abs: root "/r", abs "/r/a/b/c" gives 4 ("/r/a") and 6 ("/r/a/b").
 * Fills at most `max` lengths and returns how many there are. */
size_t zk_ancestors(const char *root, const char *abs, size_t *lens,
		    size_t max);

/* The length of the parent of an absolute znode path: "/a/b" gives 2
 * ("/a"), "/a" gives 1 ("/"), "/" gives 0 (no parent). */
size_t zk_parent_len(const char *abs);

/* Whether the znode path `abs` (as a watch event names it) is the root or
 * below it; *rel is then its path relative to the root. "/rx" is not below
 * the root "/r". */
bool zk_below_root(const char *root, const char *abs, const char **rel);

/* Whether a znode created at zxid `czxid` is the one a writer read, known
 * by its creation zxid `want` (0: any znode at that path). A znode deleted
 * and created again has a new czxid but restarts its data version at 0. */
bool zk_same_node(int64_t want, int64_t czxid);

/* What a set of version `want` (-1: any) on the znode created at
 * `want_czxid` (0: any), cut off by a connection loss, did, by a re-read:
 * the znode now at data version `version`, created at `czxid`, holding the
 * set's value or not (`same`). */
enum zk_set_fate {
	ZK_SET_LANDED,	  /* ours is there: it was applied */
	ZK_SET_UNTOUCHED, /* the node is as the set expected: send it again */
	ZK_SET_CONFLICT,  /* another client changed or re-created it */
};
enum zk_set_fate zk_set_fate(int want, int64_t want_czxid, int version,
			     int64_t czxid, bool same);

/* A deep copy of an ACL list into *dst (freed with zk_acl_free); -ENOMEM. */
int zk_acl_copy(struct ACL_vector *dst, const struct ACL_vector *src);

/* The bytes an ACL list takes in a request (NULL: none). */
size_t zk_acl_bytes(const struct ACL_vector *v);

/* Free a list made by zk_acl_copy and empty it. */
void zk_acl_free(struct ACL_vector *v);

/* The ACLs of znodes, by path, learnt during one operation: new znodes take
 * the ACL of their parent (SPEC 2), asked once per parent per operation. */
struct zk_acls {
	size_t n, cap;
	char **paths;
	struct ACL_vector *acls;
};

/* The ACL known for the first `len` bytes of `path`, or NULL. */
const struct ACL_vector *zk_acls_find(const struct zk_acls *c, const char *path,
				      size_t len);

/* Remember (a copy of) the ACL of path[0..len); replaces a known one. */
int zk_acls_add(struct zk_acls *c, const char *path, size_t len,
		const struct ACL_vector *acl);

/* Forget everything. */
void zk_acls_free(struct zk_acls *c);

#endif
