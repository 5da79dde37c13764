/* zkutil.c - see zkutil.h. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zkutil.h"

int zk_root_norm(const char *root, char **out)
{
	if (!root || root[0] != '/')
		return -EINVAL;
	size_t n = strlen(root);
	while (n > 0 && root[n - 1] == '/')
		n--;
	*out = strndup(root, n);
	return *out ? 0 : -ENOMEM;
}

char *zk_abs_path(const char *root, const char *rel)
{
	char *p = NULL;
	if (!rel[0])
		return strdup(root[0] ? root : "/");
	if (asprintf(&p, "%s/%s", root, rel) < 0)
		return NULL;
	return p;
}

const char *zk_rel_path(const char *root, const char *abs)
{
	size_t n = strlen(root);
	return abs[n] ? abs + n + 1 : abs + n; /* abs[n] is '/' or the end */
}

char *zk_join(const char *parent, const char *name)
{
	char *p = NULL;
	const char *sep = strcmp(parent, "/") == 0 ? "" : "/";
	if (asprintf(&p, "%s%s%s", parent, sep, name) < 0)
		return NULL;
	return p;
}

int zk_auth_parse(const char *text, char **scheme, char **cert)
{
	while (isspace((unsigned char)*text))
		text++;
	size_t n = strlen(text);
	while (n > 0 && isspace((unsigned char)text[n - 1]))
		n--;
	const char *colon = memchr(text, ':', n);
	if (!colon || colon == text || colon + 1 == text + n)
		return -EINVAL;
	*scheme = strndup(text, (size_t)(colon - text));
	*cert = strndup(colon + 1, (size_t)(text + n - colon - 1));
	if (*scheme && *cert)
		return 0;
	free(*scheme);
	free(*cert);
	*scheme = *cert = NULL;
	return -ENOMEM;
}

int zk_auth_read(const char *file, char **scheme, char **cert, char *errbuf,
		 size_t errlen)
{
	char buf[4096];
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(errbuf, errlen, "cannot read ZooKeeper auth file %s: %s",
			 file, strerror(e));
		return -e;
	}
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int e = errno;
	close(fd);
	if (n < 0) {
		snprintf(errbuf, errlen, "cannot read ZooKeeper auth file %s: %s",
			 file, strerror(e));
		return -e;
	}
	buf[n] = '\0';
	int rc = zk_auth_parse(buf, scheme, cert);
	if (rc == -EINVAL)
		snprintf(errbuf, errlen,
			 "ZooKeeper auth file %s must hold one line scheme:auth",
			 file);
	else if (rc)
		snprintf(errbuf, errlen, "out of memory");
	return rc;
}

int zk_session_ms(unsigned timeout_ms)
{
	/* The server grants between 2 and 20 ticks (4 s .. 40 s by default). */
	if (timeout_ms < 4000)
		return 4000;
	if (timeout_ms > 40000)
		return 40000;
	return (int)timeout_ms;
}

bool zk_fits(const char *path, size_t len)
{
	return len <= ZK_PACKET_MAX - ZK_OP_OVERHEAD - strlen(path);
}

size_t zk_ancestors(const char *root, const char *abs, size_t *lens,
		    size_t max)
{
	size_t n = 0;
	size_t start = strlen(root) + 1; /* first byte of the first segment */
	if (strlen(abs) <= start)
		return 0;
	for (const char *p = abs + start; (p = strchr(p, '/')); p++) {
		if (n < max)
			lens[n] = (size_t)(p - abs);
		n++;
	}
	return n;
}
