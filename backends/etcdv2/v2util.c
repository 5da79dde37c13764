/* v2util.c - URLs and form bodies for etcd's v2 keys API; see etcdv2.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcdv2.h"

/* Whether byte c goes into a URL as it is. */
static bool plain(unsigned char c, bool slash)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~' || (slash && c == '/');
}

/* Append the percent-encoding of p[0..n) at out (room for 3n bytes);
 * returns the end. */
static char *encode(char *out, const unsigned char *p, size_t n, bool slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		if (plain(p[i], slash)) {
			*out++ = (char)p[i];
			continue;
		}
		*out++ = '%';
		*out++ = hex[p[i] >> 4];
		*out++ = hex[p[i] & 15];
	}
	return out;
}

int etcdv2_key_api(const char *root, const char *path, const char *query,
		   char **out)
{
	static const char prefix[] = "/v2/keys";
	size_t rlen = strlen(root), plen = strlen(path);
	size_t qlen = query ? strlen(query) + 1 : 0;
	char *buf = malloc(sizeof(prefix) + 3 * (rlen + plen + 1) + qlen + 1);
	char *e;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, prefix, sizeof(prefix) - 1);
	e = encode(buf + sizeof(prefix) - 1, (const unsigned char *)root, rlen,
		   true);
	if (*path || !rlen)
		*e++ = '/';
	e = encode(e, (const unsigned char *)path, plen, true);
	if (query)
		e += sprintf(e, "?%s", query);
	*e = '\0';
	*out = buf;
	return 0;
}

int etcdv2_form_value(const void *v, size_t len, char **out, size_t *outlen)
{
	static const char name[] = "value=";
	char *buf = malloc(sizeof(name) + 3 * len);
	char *e;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, name, sizeof(name) - 1);
	e = encode(buf + sizeof(name) - 1, v, len, false);
	*e = '\0';
	*out = buf;
	*outlen = (size_t)(e - buf);
	return 0;
}

bool etcdv2_hidden(const char *path)
{
	for (const char *p = path; *p; p++)
		if (*p == '_' && (p == path || p[-1] == '/'))
			return true;
	return false;
}
