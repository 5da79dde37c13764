/* path.c - see path.h. Pure: no I/O, no global state. */
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "path.h"

const char *const scratch_default_list =
    ".*.sw?,.*.swpx,*~,4913,.#*,#*#,sed??????";

bool path_segment_ok(const char *seg, size_t len)
{
	if (len == 0 || len > NAME_MAX)
		return false;
	if ((len == 1 && seg[0] == '.') ||
	    (len == 2 && seg[0] == '.' && seg[1] == '.'))
		return false;
	if (memchr(seg, '/', len) || memchr(seg, '\0', len))
		return false;
	if (len == strlen(TOPO_DATA_NAME) &&
	    memcmp(seg, TOPO_DATA_NAME, len) == 0)
		return false;
	return true;
}

bool path_store_ok(const char *p)
{
	if (*p == '\0')
		return true;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (!path_segment_ok(p, len))
			return false;
		if (!slash)
			return true;
		p = slash + 1;
	}
}

/* Offset of the last segment of p[0..len). */
static size_t last_segment_at(const char *p, size_t len)
{
	size_t i = len;
	while (i > 0 && p[i - 1] != '/')
		i--;
	return i;
}

int path_from_fuse(const char *fuse_path, char *out, size_t outlen,
		   bool *is_data)
{
	while (*fuse_path == '/')
		fuse_path++;
	size_t len = strlen(fuse_path);
	while (len > 0 && fuse_path[len - 1] == '/')
		len--;
	size_t base = last_segment_at(fuse_path, len);
	*is_data = len - base == strlen(TOPO_DATA_NAME) &&
		   memcmp(fuse_path + base, TOPO_DATA_NAME, len - base) == 0;
	if (*is_data)
		len = base > 0 ? base - 1 : 0;
	if (len >= outlen)
		return -ENAMETOOLONG;
	memcpy(out, fuse_path, len);
	out[len] = '\0';
	for (const char *seg = out; *seg;) {
		size_t n = strcspn(seg, "/");
		if (n > NAME_MAX)
			return -ENAMETOOLONG;
		seg += n + (seg[n] == '/');
	}
	return path_store_ok(out) ? 0 : -EINVAL;
}

size_t path_parent_len(const char *p)
{
	size_t at = last_segment_at(p, strlen(p));
	return at > 0 ? at - 1 : 0;
}

const char *path_basename(const char *p)
{
	return p + last_segment_at(p, strlen(p));
}

int path_join(char *out, size_t outlen, const char *dir, const char *name)
{
	int n = *dir ? snprintf(out, outlen, "%s/%s", dir, name)
		     : snprintf(out, outlen, "%s", name);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

bool path_within(const char *p, const char *dir)
{
	size_t n = strlen(dir);
	if (n == 0)
		return true;
	return strncmp(p, dir, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

/* FNV-1a 64 of s, continuing from h. */
static uint64_t fnv(uint64_t h, const char *s)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		h = (h ^ *c) * 0x100000001b3ULL;
	return h;
}

uint64_t path_ino_at(const char *top, const char *store_path, bool is_data)
{
	if (*top == '\0' && *store_path == '\0' && !is_data)
		return 1;
	uint64_t h = fnv(0xcbf29ce484222325ULL, top);
	if (*top && *store_path)
		h = fnv(h, "/");
	h = fnv(h, store_path);
	if (is_data)
		h = (h ^ 0xff) * 0x100000001b3ULL; /* no name holds byte 0xff */
	return h < 2 ? h + 2 : h;
}

uint64_t path_ino(const char *store_path, bool is_data)
{
	return path_ino_at("", store_path, is_data);
}

int scratch_patterns_parse(struct scratch_patterns *sp, const char *list)
{
	memset(sp, 0, sizeof(*sp));
	if (*list == '\0')
		return 0;
	char *copy = strdup(list);
	if (!copy)
		return -ENOMEM;
	int rc = 0;
	char *save = NULL;
	size_t n = 1;
	for (const char *c = list; *c; c++)
		n += *c == ',';
	sp->pats = calloc(n, sizeof(char *));
	if (!sp->pats) {
		rc = -ENOMEM;
		goto out;
	}
	if (list[0] == ',' || list[strlen(list) - 1] == ',' ||
	    strstr(list, ",,") || strchr(list, '/')) {
		rc = -EINVAL;
		goto out;
	}
	for (char *tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		sp->pats[sp->count] = strdup(tok);
		if (!sp->pats[sp->count]) {
			rc = -ENOMEM;
			goto out;
		}
		sp->count++;
	}
out:
	free(copy);
	if (rc)
		scratch_patterns_free(sp);
	return rc;
}

void scratch_patterns_free(struct scratch_patterns *sp)
{
	for (size_t i = 0; i < sp->count; i++)
		free(sp->pats[i]);
	free(sp->pats);
	memset(sp, 0, sizeof(*sp));
}

bool scratch_match(const struct scratch_patterns *sp, const char *store_path)
{
	const char *base = path_basename(store_path);
	for (size_t i = 0; i < sp->count; i++)
		if (fnmatch(sp->pats[i], base, 0) == 0)
			return true;
	return false;
}

bool scratch_in_path(const struct scratch_patterns *sp, const char *p)
{
	char seg[NAME_MAX + 1];
	while (*p) {
		size_t n = strcspn(p, "/");
		if (n > NAME_MAX)
			return false; /* no such name: ENAMETOOLONG */
		memcpy(seg, p, n);
		seg[n] = '\0';
		if (scratch_match(sp, seg))
			return true;
		p += n + (p[n] == '/');
	}
	return false;
}
