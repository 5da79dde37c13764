/*
 * fuzz_path.c - the pure path functions of fs/path.h on arbitrary strings.
 *
 * The input is split at its first NUL: the part before is a FUSE path (and a
 * scratch pattern list), the part after (if any) a second scratch list.
 * Properties:
 *  - path_from_fuse returns 0, -EINVAL or -ENAMETOOLONG, for a roomy and a
 *    tight output buffer alike; on 0 the store path is path_store_ok, has
 *    no "//" and no leading or trailing '/', fits the buffer, and a tight
 *    buffer gives the same answer as a roomy one whenever it fits;
 *  - parent/basename/join of a store path put it back together, and it is
 *    path_within its parent;
 *  - path_ino is never 0, and 1 only for the root directory;
 *  - scratch_patterns_parse returns 0 (non-empty patterns without '/' or
 *    ',') or -EINVAL/-ENOMEM with nothing owned; scratch_match only looks at
 *    the last segment.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "../../fs/path.h"
#include "fuzz_common.h"

static void check_store_path(const char *p, bool is_data)
{
	char parent[PATH_MAX + 1], joined[PATH_MAX + 1];
	size_t plen = path_parent_len(p);
	const char *base = path_basename(p);

	FUZZ_CHECK(path_store_ok(p));
	FUZZ_CHECK(strstr(p, "//") == NULL);
	FUZZ_CHECK(p[0] != '/');
	FUZZ_CHECK(*p == '\0' || p[strlen(p) - 1] != '/');
	FUZZ_CHECK(plen <= strlen(p));
	memcpy(parent, p, plen);
	parent[plen] = '\0';
	FUZZ_CHECK(path_store_ok(parent));
	FUZZ_CHECK(path_within(p, parent));
	FUZZ_CHECK(path_within(p, p));
	FUZZ_CHECK(path_within(p, ""));
	if (*p) {
		FUZZ_CHECK(path_segment_ok(base, strlen(base)));
		FUZZ_CHECK(path_join(joined, sizeof(joined), parent, base) ==
			   0);
		FUZZ_CHECK(strcmp(joined, p) == 0);
	} else {
		FUZZ_CHECK(*base == '\0');
	}
	uint64_t ino = path_ino(p, is_data);
	FUZZ_CHECK(ino != 0);
	FUZZ_CHECK((ino == 1) == (*p == '\0' && !is_data));
}

static void check_scratch(const char *list, const char *name)
{
	struct scratch_patterns sp;
	int err = scratch_patterns_parse(&sp, list);

	FUZZ_CHECK(err == 0 || err == -EINVAL || err == -ENOMEM);
	if (err) {
		FUZZ_CHECK(sp.pats == NULL && sp.count == 0);
		return;
	}
	for (size_t i = 0; i < sp.count; i++) {
		FUZZ_CHECK(sp.pats[i][0] != '\0');
		FUZZ_CHECK(strchr(sp.pats[i], '/') == NULL);
		FUZZ_CHECK(strchr(sp.pats[i], ',') == NULL);
	}
	/* Only the last segment counts: a directory in front changes
	 * nothing. */
	if (!strchr(name, '/') && strlen(name) < 1000) {
		char deep[1100];
		bool m = scratch_match(&sp, name);

		snprintf(deep, sizeof(deep), "dir/sub/%s", name);
		FUZZ_CHECK(scratch_match(&sp, deep) == m);
	}
	scratch_match(&sp, "");
	scratch_match(&sp, ".a.swp");
	scratch_patterns_free(&sp);
	FUZZ_CHECK(sp.pats == NULL && sp.count == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	size_t first = strlen(s);
	const char *second = first < size ? s + first + 1 : s;
	char roomy[PATH_MAX + 1], tight[64];
	bool d1 = false, d2 = false;
	int e1, e2;

	e1 = path_from_fuse(s, roomy, sizeof(roomy), &d1);
	FUZZ_CHECK(e1 == 0 || e1 == -EINVAL || e1 == -ENAMETOOLONG);
	if (e1 == 0) {
		FUZZ_CHECK(strlen(roomy) < sizeof(roomy));
		check_store_path(roomy, d1);
	}
	e2 = path_from_fuse(s, tight, sizeof(tight), &d2);
	FUZZ_CHECK(e2 == 0 || e2 == -EINVAL || e2 == -ENAMETOOLONG);
	if (e2 == 0) {
		FUZZ_CHECK(e1 == 0 && d1 == d2);
		FUZZ_CHECK(strcmp(roomy, tight) == 0);
	} else if (e1 == 0) {
		FUZZ_CHECK(e2 == -ENAMETOOLONG && strlen(roomy) >= sizeof(tight));
	}

	/* Store-path checks on the raw string too: must not crash. */
	path_store_ok(s);
	path_ino(s, false);
	path_ino(s, true);
	path_parent_len(s);
	path_basename(s);

	check_scratch(s, second);
	if (second != s)
		check_scratch(second, s);
	free(s);
	return 0;
}
