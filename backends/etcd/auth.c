/* auth.c - see auth.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "auth.h"
#include "http.h"
#include "json.h"
#include "topofs/log.h"

#define AUTH_HEADER "Authorization: "

struct etcd_auth {
	char *user;
	char *password;	       /* wiped by etcd_auth_free */
	pthread_mutex_t lock;  /* guards header */
	char *header;	       /* "Authorization: TOKEN", NULL before login */
	atomic_uint gen;       /* +1 at every new token */
	pthread_mutex_t renew; /* one authentication at a time */
};

/* Set while this thread authenticates: the authenticate request itself
 * goes without the old token (etcd refuses it with an invalid one). */
static _Thread_local bool authenticating;

/* Wipe and free a secret string. */
static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* Parse a password file; see auth.h. */
int etcd_password_parse(const char *buf, size_t n, char **out)
{
	const char *nl = memchr(buf, '\n', n);
	size_t len = nl ? (size_t)(nl - buf) : n;

	*out = NULL;
	if (memchr(buf, '\0', n))
		return -EINVAL;
	for (size_t i = len; i < n; i++)
		if (buf[i] != '\n' && buf[i] != '\r' && buf[i] != ' ' &&
		    buf[i] != '\t')
			return -EINVAL; /* a second line: not what we think */
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len == 0)
		return -EINVAL;
	*out = strndup(buf, len);
	return *out ? 0 : -ENOMEM;
}

/* Read the whole of fd (at most max - 1 bytes) into buf. The length, or
 * -EFBIG (longer) or a negative errno. */
static ssize_t read_all(int fd, char *buf, size_t max)
{
	size_t n = 0;

	for (;;) {
		ssize_t r = read(fd, buf + n, max - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return (ssize_t)n;
		n += (size_t)r;
		if (n == max)
			return -EFBIG;
	}
}

/* Read the password file; see auth.h. */
int etcd_password_read(const char *path, char **out, char *errbuf,
		       size_t errlen)
{
	char buf[ETCD_PASSWORD_MAX + 1];
	struct stat st;
	ssize_t n = -EINVAL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	int err;

	if (fd < 0 || fstat(fd, &st) != 0) {
		err = -errno;
		goto fail;
	}
	if (S_ISREG(st.st_mode))
		n = read_all(fd, buf, sizeof(buf));
	if (n < 0) {
		err = (int)n;
		goto fail;
	}
	if (st.st_mode & 0077)
		topo_warn("etcd: password file %s can be read by other users "
			  "(chmod 600 it)",
			  path);
	err = etcd_password_parse(buf, (size_t)n, out);
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	if (err == -EINVAL)
		snprintf(errbuf, errlen,
			 "etcd password file %s must hold one non-empty line",
			 path);
	else if (err)
		snprintf(errbuf, errlen, "out of memory");
	return err;
fail:
	if (fd >= 0)
		close(fd);
	snprintf(errbuf, errlen, "cannot read etcd password file %s: %s", path,
		 err == -EINVAL	 ? "not a regular file"
		 : err == -EFBIG ? "over 4096 bytes"
				 : strerror(-err));
	return err;
}

/* Whether a token can go into a header as it is. */
static bool token_ok(const char *t)
{
	if (!*t)
		return false;
	for (; *t; t++)
		if (*t < 0x21 || *t > 0x7e)
			return false;
	return true;
}

/* Parse an authenticate answer; see auth.h. */
int etcd_parse_token(long status, const char *json, size_t len, char **token)
{
	json_t *root = json_loadb(json ? json : "", len, 0, NULL);
	json_t *msg = json_object_get(root, "message"), *tok;
	const char *m = json_is_string(msg) ? json_string_value(msg) : "";
	int err = -EIO;

	*token = NULL;
	if (status != 200) {
		if (strstr(m, "authentication failed"))
			err = -EACCES;
		else if (strstr(m, "authentication is not enabled"))
			err = -ENOTSUP;
		else
			err = etcd_parse_reply_error(status, json, len, NULL);
		json_decref(root);
		return err ? err : -EIO;
	}
	tok = json_object_get(root, "token");
	if (json_is_string(tok) && token_ok(json_string_value(tok))) {
		*token = strdup(json_string_value(tok));
		err = *token ? 0 : -ENOMEM;
	}
	json_decref(root);
	return err;
}

/* Whether the token went stale; see auth.h. */
bool etcd_auth_token_invalid(const char *text)
{
	return text && strstr(text, "invalid auth token");
}

/* A new user; see auth.h. */
int etcd_auth_new(const struct topo_conf *conf, struct etcd_auth **out,
		  char *errbuf, size_t errlen)
{
	struct etcd_auth *a;
	int err;

	*out = NULL;
	if (!conf->etcd_user)
		return 0;
	a = calloc(1, sizeof(*a));
	if (!a || !(a->user = strdup(conf->etcd_user))) {
		free(a);
		snprintf(errbuf, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&a->lock, NULL);
	pthread_mutex_init(&a->renew, NULL);
	err = etcd_password_read(conf->etcd_password_file, &a->password, errbuf,
				 errlen);
	if (err) {
		etcd_auth_free(a);
		return err;
	}
	*out = a;
	return 0;
}

/* Free; see auth.h. */
void etcd_auth_free(struct etcd_auth *a)
{
	if (!a)
		return;
	free_secret(a->password);
	free_secret(a->header);
	free(a->user);
	pthread_mutex_destroy(&a->lock);
	pthread_mutex_destroy(&a->renew);
	free(a);
}

/* The authenticate request's body, newly allocated (a secret); NULL if out
 * of memory. */
static char *login_body(const struct etcd_auth *a)
{
	json_t *req =
	    json_pack("{s:s,s:s}", "name", a->user, "password", a->password);
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;

	json_decref(req);
	return body;
}

/* Authenticate a's user on h: 0 and a new token in a, or a negative errno
 * (see etcd_parse_token; -EIO with the cause in why). */
static int authenticate(struct etcd_http *h, struct etcd_auth *a, char *why,
			size_t whylen)
{
	struct etcd_reply reply;
	char *body = login_body(a), *token = NULL, *header = NULL;
	int err;

	if (!body)
		return -ENOMEM;
	authenticating = true;
	err = etcd_http_post(h, "/v3/auth/authenticate", body, strlen(body),
			     etcd_http_deadline(h), NULL, NULL, &reply, why,
			     whylen);
	authenticating = false;
	free_secret(body);
	if (err)
		return err;
	err = etcd_parse_token(reply.status, reply.body, reply.len, &token);
	if (err == -EIO)
		snprintf(why, whylen, "HTTP status %ld", reply.status);
	if (reply.body)
		explicit_bzero(reply.body, reply.len);
	etcd_reply_free(&reply);
	if (!err && asprintf(&header, AUTH_HEADER "%s", token) < 0)
		err = -ENOMEM;
	free_secret(token);
	if (err)
		return err;
	pthread_mutex_lock(&a->lock);
	free_secret(a->header);
	a->header = header;
	atomic_fetch_add(&a->gen, 1);
	pthread_mutex_unlock(&a->lock);
	return 0;
}

/* Log in before mounting; see auth.h. */
int etcd_auth_login(struct etcd_http *h, const char *servers, char *errbuf,
		    size_t errlen)
{
	struct etcd_auth *a = etcd_http_auth(h);
	char why[256] = "";
	int err;

	if (!a)
		return 0;
	err = authenticate(h, a, why, sizeof(why));
	if (err == -ENOTSUP) {
		/* Nothing to protect the mount from: go on without. */
		topo_warn("etcd at %s: authentication is not enabled; going on "
			  "without user %s",
			  servers, a->user);
		return 0;
	}
	if (err == -EACCES)
		snprintf(errbuf, errlen,
			 "etcd at %s: authentication failed for user %s "
			 "(wrong user name or password)",
			 servers, a->user);
	else if (err == -ENOMEM)
		snprintf(errbuf, errlen, "out of memory");
	else if (err)
		snprintf(errbuf, errlen,
			 "etcd at %s: cannot authenticate user %s: %s", servers,
			 a->user, why);
	return err;
}

/* Attach; see auth.h. */
int etcd_auth_attach(struct etcd_auth *a, CURL *c, struct curl_slist *base)
{
	struct curl_slist *l = NULL, *t;
	int err = 0;

	if (!a || authenticating)
		return 0;
	for (; base && !err; base = base->next) {
		t = curl_slist_append(l, base->data);
		err = t ? 0 : -ENOMEM;
		l = t ? t : l;
	}
	pthread_mutex_lock(&a->lock);
	if (!err && a->header) {
		t = curl_slist_append(l, a->header);
		err = t ? 0 : -ENOMEM;
		l = t ? t : l;
	}
	pthread_mutex_unlock(&a->lock);
	if (err) {
		curl_slist_free_all(l);
		return err;
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, l);
	curl_easy_setopt(c, CURLOPT_PRIVATE, (void *)l);
	return 0;
}

/* Detach; see auth.h. */
void etcd_auth_detach(CURL *c, struct curl_slist *base)
{
	char *p = NULL;
	struct curl_slist *l;

	if (curl_easy_getinfo(c, CURLINFO_PRIVATE, &p) != CURLE_OK || !p)
		return;
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, base);
	curl_easy_setopt(c, CURLOPT_PRIVATE, NULL);
	l = (struct curl_slist *)(void *)p;
	for (struct curl_slist *e = l; e; e = e->next)
		explicit_bzero(e->data, strlen(e->data));
	curl_slist_free_all(l);
}

/* Authenticate again unless another thread did since generation `seen`.
 * 0 or a negative errno (logged). */
static int renew(struct etcd_http *h, struct etcd_auth *a, unsigned seen)
{
	char why[256] = "";
	int err = 0;

	pthread_mutex_lock(&a->renew);
	if (atomic_load(&a->gen) == seen) {
		err = authenticate(h, a, why, sizeof(why));
		if (err)
			topo_warn("etcd: cannot renew the token of user %s: %s",
				  a->user,
				  err == -EACCES ? "authentication failed"
				  : *why	 ? why
						 : strerror(-err));
		else
			topo_debug("etcd: new token for user %s", a->user);
	}
	pthread_mutex_unlock(&a->renew);
	return err;
}

/* POST with one renewal; see auth.h. */
int etcd_auth_post(struct etcd_http *h, const char *api, const char *body,
		   size_t len, long long deadline, bool *uncertain,
		   const char *what, struct etcd_reply *reply, char *why,
		   size_t whylen)
{
	struct etcd_auth *a = etcd_http_auth(h);
	unsigned gen = a ? atomic_load(&a->gen) : 0;
	int err = etcd_http_post(h, api, body, len, deadline, uncertain, what,
				 reply, why, whylen);

	if (err || !a || reply->status == 200 ||
	    !etcd_auth_token_invalid(reply->body))
		return err;
	/* etcd refused the token before doing anything: the request may be
	 * sent again, even a write. If no new token can be had, the caller
	 * gets the first answer (EACCES). */
	if (renew(h, a, gen) != 0)
		return 0;
	etcd_reply_free(reply);
	return etcd_http_post(h, api, body, len, deadline, uncertain, what,
			      reply, why, whylen);
}

/* POST and check the answer; see auth.h. */
int etcd_auth_call(struct etcd_http *h, const char *api, const char *body,
		   size_t len, long long deadline, bool *uncertain,
		   const char *what, struct etcd_reply *reply)
{
	char why[256];
	int err = etcd_auth_post(h, api, body, len, deadline, uncertain, what,
				 reply, why, sizeof(why));

	if (err)
		return err;
	err = etcd_parse_reply_error(reply->status, reply->body, reply->len,
				     what);
	if (err)
		etcd_reply_free(reply);
	return err;
}

/* For the watch; see auth.h. */
void etcd_auth_renew_if_stale(struct etcd_http *h, const char *why)
{
	struct etcd_auth *a = etcd_http_auth(h);

	if (a &&
	    (etcd_auth_token_invalid(why) || strstr(why, "HTTP status 401")))
		renew(h, a, atomic_load(&a->gen));
}
