/*
 * path.h - pure functions on paths: which store names can be file names,
 * how a FUSE path maps to a store path, editor scratch names, inode numbers.
 *
 * A "store path" is relative to the mounted root with no leading or trailing
 * slash ("" is the root). A FUSE path is absolute within the mount ("/a/b").
 */
#ifndef TOPOFS_PATH_H
#define TOPOFS_PATH_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for a FUSE path and its NUL. A path below the mount root may be as
 * long as one below a local filesystem's root: PATH_MAX - 1 bytes (a
 * process reaches it relative to a directory, with openat or chdir). The
 * FUSE path adds its leading '/': one byte more than PATH_MAX. The store
 * path (no leading '/') fits PATH_MAX. */
#define TOPO_FUSE_PATH_MAX (PATH_MAX + 1)

/* The file inside a directory that holds the directory node's own value. */
#define TOPO_DATA_NAME ".topofs-data"

/* True if seg[0..len) can be a file name here: not empty, not "." or "..",
 * no '/' or NUL, at most NAME_MAX bytes, and not TOPO_DATA_NAME. */
bool path_segment_ok(const char *seg, size_t len);

/* True if every segment of the store path `p` is path_segment_ok ("" too). */
bool path_store_ok(const char *p);

/* Map a FUSE path to a store path, written into out (outlen bytes).
 * "/a/b" -> "a/b"; "/a/.topofs-data" -> "a" with *is_data = true;
 * "/" -> "". Returns 0, -ENAMETOOLONG (also for a segment over NAME_MAX),
 * or -EINVAL for names that cannot be
 * in the store (an invalid segment, TOPO_DATA_NAME in the middle). */
int path_from_fuse(const char *fuse_path, char *out, size_t outlen,
		   bool *is_data);

/* Length of the parent part of store path p ("a/b" -> 1, "a" -> 0). */
size_t path_parent_len(const char *p);

/* The last segment of store path p ("a/b" -> "b", "" -> ""). */
const char *path_basename(const char *p);

/* Join store paths: out = dir + "/" + name (or name when dir is "").
 * Returns 0 or -ENAMETOOLONG. */
int path_join(char *out, size_t outlen, const char *dir, const char *name);

/* True if p equals dir or lies below it ("a/b" is below "a", "ab" is not). */
bool path_within(const char *p, const char *dir);

/* A stable inode number for a FUSE-visible path (never 0 or 1; 1 is the
 * root). `is_data` distinguishes ".topofs-data" from its directory. */
uint64_t path_ino(const char *store_path, bool is_data);

/* path_ino of store_path in the top directory `top` of a deployment view
 * ("": a plain mount, path_ino itself): the path top/store_path. */
uint64_t path_ino_at(const char *top, const char *store_path, bool is_data);

/* Editor scratch names (SPEC 5): a set of fnmatch(3) patterns. */
struct scratch_patterns {
	char **pats;
	size_t count;
};

/* The default list: vim's .*.sw? and .*.swpx (its test file), backups *~,
 * vim's 4913, emacs's .#* and #*#, and sed -i's sed?????? temp file. */
extern const char *const scratch_default_list;

/* Parse a comma-separated list into *sp (owned; free with
 * scratch_patterns_free). An empty list means "no scratch names".
 * Returns 0 or -EINVAL (an empty pattern or one containing '/'), -ENOMEM. */
int scratch_patterns_parse(struct scratch_patterns *sp, const char *list);
void scratch_patterns_free(struct scratch_patterns *sp);

/* True if the last segment of a store path matches one of the patterns. */
bool scratch_match(const struct scratch_patterns *sp, const char *store_path);

/* True if any segment of store path p matches: p is a scratch name or lies
 * below a scratch directory, which lives in memory with all it holds. */
bool scratch_in_path(const struct scratch_patterns *sp, const char *p);

#endif
