/*
 * zk_check.c - topofs --check for ZooKeeper (see zk_check.h, backend.h).
 *
 * Each address of the list on its own:
 *   `srvr`       a four-letter word over a plain TCP connection (sent, then
 *                the write side shut, so that a server that is not
 *                ZooKeeper ends the exchange at once): reachable, answers as
 *                ZooKeeper, its version and mode. Servers allow only the
 *                words of 4lw.commands.whitelist (3.5+: `srvr` by default);
 *                a refusal is said, not failed.
 *   a session    of its own, to that address alone: established within the
 *                timeout, the auth file's credentials accepted, and the
 *                round trip of one exists("/").
 * Then the ensemble: one leader among the servers whose mode is known.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zookeeper/zookeeper.h>

#include "topofs/log.h"
#include "zk_check.h"
#include "zk_internal.h"
#include "zkutil.h"

/* One run of the checks: where the results go. */
struct run {
	const struct topo_conf *conf;
	topo_check_fn fn;
	void *arg;
};

/* Report one result: value formatted from fmt. */
#define emit(r, ...) topo_check_report((r)->fn, (r)->arg, __VA_ARGS__)

/* ---- `srvr` ---- */

/* The rest of the line after `key` in text, into out (n bytes); false if
 * there is no such line. */
static bool line_value(const char *text, const char *key, char *out, size_t n)
{
	const char *p = strstr(text, key);
	size_t len;

	if (!p)
		return false;
	p += strlen(key);
	while (*p == ' ')
		p++;
	len = strcspn(p, "\r\n");
	snprintf(out, n, "%.*s", (int)len, p);
	return true;
}

/* Parse an answer to `srvr`; see zk_check.h. */
void zk_check_parse_srvr(const char *text, size_t len, struct zk_srvr *out)
{
	char *t = strndup(text, len);

	memset(out, 0, sizeof(*out));
	out->kind = ZK_SRVR_FOREIGN;
	if (!t)
		return;
	if (strstr(t, "not in the whitelist") ||
	    strstr(t, "not executed because"))
		out->kind = ZK_SRVR_NOT_ALLOWED;
	else if (strstr(t, "not currently serving requests"))
		out->kind = ZK_SRVR_NOT_SERVING;
	else if (strncmp(t, "Zookeeper version:", 18) == 0 &&
		 line_value(t, "Mode:", out->mode, sizeof(out->mode))) {
		line_value(t, "Zookeeper version:", out->version,
			   sizeof(out->version));
		out->version[strcspn(out->version, "-,")] = '\0';
		out->kind = ZK_SRVR_OK;
	}
	free(t);
}

/* Split "host:port" or "[v6]:port" into host and port. 0 or -EINVAL. */
static int split_address(const char *addr, char *host, size_t hn, char *port,
			 size_t pn)
{
	const char *colon = strrchr(addr, ':');
	const char *h = addr;
	size_t len;

	if (!colon || !colon[1])
		return -EINVAL;
	len = (size_t)(colon - addr);
	if (h[0] == '[' && len >= 2 && h[len - 1] == ']')
		h++, len -= 2;
	if (len == 0 || len >= hn)
		return -EINVAL;
	snprintf(host, hn, "%.*s", (int)len, h);
	snprintf(port, pn, "%s", colon + 1);
	return 0;
}

/* Wait until fd is ready for `events` or the deadline: 0 or -ETIMEDOUT. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = events};
	int64_t left = deadline - zk_now_ms();
	int n;

	if (left <= 0)
		return -ETIMEDOUT;
	do
		n = poll(&p, 1, (int)left);
	while (n < 0 && errno == EINTR);
	return n > 0 ? 0 : -ETIMEDOUT;
}

/* A TCP connection to addr by the deadline: a non-blocking socket, or a
 * negative errno (-ECONNREFUSED, -ETIMEDOUT, -EINVAL: a bad address). */
static int tcp_connect(const char *addr, int64_t deadline)
{
	char host[256], port[16];
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	int fd = -1, err = -EINVAL, soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (split_address(addr, host, sizeof(host), port, sizeof(port)) ||
	    getaddrinfo(host, port, &hints, &ai))
		return -EINVAL;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		goto out;
	err = errno == EINPROGRESS ? wait_fd(fd, POLLOUT, deadline) : -errno;
	if (!err && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 &&
	    soerr)
		err = -soerr;
out:
	freeaddrinfo(ai);
	if (err && fd >= 0)
		close(fd);
	return err ? err : fd;
}

/* Send `srvr` to addr and read the whole answer into buf (n bytes, NUL
 * terminated) by the deadline. 0 (possibly with no answer: buf ""), -EAGAIN
 * (connected, but nothing came back in time), or a negative errno from the
 * connection (-ECONNREFUSED, -ETIMEDOUT). *ms: from the connection to the
 * end of the answer. */
static int srvr(const char *addr, int64_t deadline, char *buf, size_t n,
		double *ms)
{
	size_t len = 0;
	int fd = tcp_connect(addr, deadline), err = 0;
	int64_t t0 = zk_now_ms();

	buf[0] = '\0';
	if (fd < 0)
		return fd;
	if (send(fd, "srvr", 4, MSG_NOSIGNAL) == 4)
		shutdown(fd, SHUT_WR);
	while (len + 1 < n) {
		ssize_t got;

		if (wait_fd(fd, POLLIN, deadline)) {
			err = len ? 0 : -EAGAIN;
			break;
		}
		got = recv(fd, buf + len, n - 1 - len, 0);
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	buf[len] = '\0';
	*ms = (double)(zk_now_ms() - t0);
	close(fd);
	return err;
}

/* Report what `srvr` found at addr; *mode gets the server's mode. true if
 * it answers as ZooKeeper. */
static bool check_srvr(const struct run *r, const char *addr, char *mode,
		       size_t modelen)
{
	char buf[4096];
	double ms = -1;
	struct zk_srvr s;
	int64_t deadline = zk_now_ms() + r->conf->timeout_ms;
	int err = srvr(addr, deadline, buf, sizeof(buf), &ms);

	mode[0] = '\0';
	if (err && err != -EAGAIN) {
		emit(r, TOPO_CHECK_FAIL, addr, "reachable", -1, false,
		     "cannot connect (-o timeout %u ms): %s",
		     r->conf->timeout_ms, strerror(-err));
		return false;
	}
	emit(r, TOPO_CHECK_OK, addr, "reachable", -1, false, "connected");
	if (err == -EAGAIN) {
		emit(r, TOPO_CHECK_FAIL, addr, "store", -1, false,
		     "connected, but no answer to srvr within %u ms",
		     r->conf->timeout_ms);
		return false;
	}
	zk_check_parse_srvr(buf, strlen(buf), &s);
	switch (s.kind) {
	case ZK_SRVR_OK:
		snprintf(mode, modelen, "%s", s.mode);
		emit(r, TOPO_CHECK_OK, addr, "store", ms, false,
		     "ZooKeeper %s, mode %s", s.version, s.mode);
		return true;
	case ZK_SRVR_NOT_ALLOWED:
		emit(r, TOPO_CHECK_OK, addr, "store", ms, false,
		     "ZooKeeper; mode unknown: srvr is not in the server's "
		     "4lw.commands.whitelist");
		return true;
	case ZK_SRVR_NOT_SERVING:
		emit(r, TOPO_CHECK_FAIL, addr, "store", ms, false,
		     "ZooKeeper, but not serving requests (no quorum?)");
		return false;
	default:
		emit(r, TOPO_CHECK_FAIL, addr, "store", -1, true,
		     "does not answer as ZooKeeper (%s)",
		     buf[0] ? "not a ZooKeeper answer to srvr"
			    : "it closed the connection without a word");
		return false;
	}
}

/* ---- a session to one server ---- */

/* A session's progress, told by the client's completion thread. */
struct probe {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int state;   /* last session state */
	int auth_rc; /* add_auth's result; 1 while pending */
	int rc;	     /* exists's result; 1 while pending */
};

static void probe_watcher(zhandle_t *zh, int type, int state, const char *path,
			  void *ctx)
{
	struct probe *p = ctx;

	(void)zh, (void)path;
	if (type != ZOO_SESSION_EVENT)
		return;
	pthread_mutex_lock(&p->mu);
	p->state = state;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static void auth_done(int rc, const void *data)
{
	struct probe *p = (struct probe *)data;

	pthread_mutex_lock(&p->mu);
	p->auth_rc = rc;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static void exists_done(int rc, const struct Stat *st, const void *data)
{
	struct probe *p = (struct probe *)data;

	(void)st;
	pthread_mutex_lock(&p->mu);
	p->rc = rc;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* Wait until *field is no longer 1 (pending), or the session is lost, or
 * the deadline. Returns the field's value (1: no answer in time). */
static int probe_wait(struct probe *p, const int *field, int64_t deadline)
{
	int v;

	pthread_mutex_lock(&p->mu);
	while (*field == 1 && p->state != ZOO_EXPIRED_SESSION_STATE &&
	       p->state != ZOO_AUTH_FAILED_STATE &&
	       zk_cond_wait_until(&p->cv, &p->mu, deadline) != ETIMEDOUT)
		;
	v = *field;
	if (v == 1 && p->state == ZOO_AUTH_FAILED_STATE)
		v = ZAUTHFAILED;
	pthread_mutex_unlock(&p->mu);
	return v;
}

/* The client's own log lines, shown only with -d. */
static void client_log(const char *msg)
{
	topo_debug("zk client: %s", msg);
}

/* The auth file's credentials on session zh: reported. */
static void check_auth(const struct run *r, zhandle_t *zh, struct probe *p,
		       const char *addr, int64_t deadline)
{
	char *scheme = NULL, *cert = NULL, err[256] = "";
	int rc;

	if (!r->conf->zk_auth_file)
		return;
	if (zk_auth_read(r->conf->zk_auth_file, &scheme, &cert, err,
			 sizeof(err))) {
		emit(r, TOPO_CHECK_FAIL, addr, "credentials", -1, false, "%s",
		     err);
		return;
	}
	rc = zoo_add_auth(zh, scheme, cert, (int)strlen(cert), auth_done, p);
	if (rc == ZOK)
		rc = probe_wait(p, &p->auth_rc, deadline);
	if (rc == ZOK)
		emit(r, TOPO_CHECK_OK, addr, "credentials", -1, false,
		     "scheme %s accepted", scheme);
	else
		emit(r, TOPO_CHECK_FAIL, addr, "credentials", -1, false,
		     "the server refused the credentials in %s (%s)",
		     r->conf->zk_auth_file,
		     rc == 1 ? "no answer in time" : zerror(rc));
	free(scheme);
	free(cert);
}

/* A session to addr alone: established, credentials, a round trip. */
static void check_session(const struct run *r, const char *addr)
{
	struct probe *p = calloc(1, sizeof(*p));
	int64_t t0 = zk_now_ms(), deadline = t0 + r->conf->timeout_ms;
	zhandle_t *zh = NULL;
	int rc;

	if (!p)
		return;
	zk_sync_init(&p->mu, &p->cv);
	p->auth_rc = p->rc = 1;
	p->state = ZOO_CONNECTING_STATE;
	zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
	zh = zookeeper_init2(addr, probe_watcher,
			     zk_session_ms(r->conf->timeout_ms), NULL, p,
			     ZOO_NO_LOG_CLIENTENV, client_log);
	if (!zh) {
		emit(r, TOPO_CHECK_FAIL, addr, "session", -1, false,
		     "cannot start a session: %s", strerror(errno));
		goto out;
	}
	pthread_mutex_lock(&p->mu);
	while (p->state != ZOO_CONNECTED_STATE &&
	       zk_cond_wait_until(&p->cv, &p->mu, deadline) != ETIMEDOUT)
		;
	rc = p->state;
	pthread_mutex_unlock(&p->mu);
	if (rc != ZOO_CONNECTED_STATE) {
		emit(r, TOPO_CHECK_FAIL, addr, "session", -1, false,
		     "no session within %u ms", r->conf->timeout_ms);
		goto out;
	}
	emit(r, TOPO_CHECK_OK, addr, "session", (double)(zk_now_ms() - t0),
	     false, "established in %lld ms", (long long)(zk_now_ms() - t0));
	check_auth(r, zh, p, addr, deadline);
	t0 = zk_now_ms();
	rc = zoo_aexists(zh, "/", 0, exists_done, p);
	if (rc == ZOK)
		rc = probe_wait(p, &p->rc, t0 + r->conf->timeout_ms);
	if (rc == ZOK)
		emit(r, TOPO_CHECK_OK, addr, "round trip",
		     (double)(zk_now_ms() - t0), false, "%lld ms, exists /",
		     (long long)(zk_now_ms() - t0));
	else
		emit(r, TOPO_CHECK_FAIL, addr, "round trip", -1, false,
		     "exists / failed: %s",
		     rc == 1 ? "no answer in time" : zerror(rc));
out:
	if (zh)
		zookeeper_close(zh); /* joins the client's threads */
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/* ---- the ensemble ---- */

/* One leader among the servers whose mode is known. */
static void ensemble_verdict(const struct run *r, char (*modes)[24],
			     const bool *up, size_t n)
{
	size_t leaders = 0, followers = 0, alone = 0, known = 0, alive = 0;

	for (size_t i = 0; i < n; i++) {
		alive += up[i];
		if (!up[i] || !modes[i][0])
			continue;
		known++;
		leaders += strcmp(modes[i], "leader") == 0;
		followers += strcmp(modes[i], "follower") == 0 ||
			     strcmp(modes[i], "observer") == 0;
		alone += strcmp(modes[i], "standalone") == 0;
	}
	if (!alive)
		emit(r, TOPO_CHECK_FAIL, NULL, "ensemble", -1, false,
		     "no server of %zu answers", n);
	else if (!known)
		emit(r, alive < n ? TOPO_CHECK_WARN : TOPO_CHECK_OK, NULL,
		     "ensemble", -1, false,
		     "%zu of %zu servers answer; modes unknown (srvr not "
		     "allowed)",
		     alive, n);
	else if (alone == known && known == 1 && n == 1)
		emit(r, TOPO_CHECK_OK, NULL, "ensemble", -1, false,
		     "one standalone server");
	else if (alone > 0)
		emit(r, TOPO_CHECK_WARN, NULL, "ensemble", -1, false,
		     "%zu standalone servers listed with others: not one "
		     "ensemble",
		     alone);
	else if (leaders != 1 && followers + leaders == known)
		emit(r, TOPO_CHECK_FAIL, NULL, "ensemble", -1, false,
		     "%zu leaders among %zu servers that answer", leaders,
		     alive);
	else
		emit(r, alive < n ? TOPO_CHECK_WARN : TOPO_CHECK_OK, NULL,
		     "ensemble", -1, false,
		     "%zu of %zu servers answer: 1 leader, %zu followers",
		     alive, n, followers);
}

/* check: see backend.h. */
int zk_check(const struct topo_conf *conf, topo_check_fn fn, void *arg,
	     char *errbuf, size_t errlen)
{
	struct run r = {.conf = conf, .fn = fn, .arg = arg};
	char *list = strdup(conf->servers ? conf->servers : ""), *save = NULL;
	size_t n = 1;
	char(*modes)[24];
	bool *up;

	for (const char *c = list ? list : ""; *c; c++)
		n += *c == ',';
	modes = calloc(n, sizeof(*modes));
	up = calloc(n, sizeof(*up));
	if (!list || !modes || !up) {
		free(list), free(modes), free(up);
		snprintf(errbuf, errlen, "out of memory");
		return -ENOMEM;
	}
	n = 0;
	for (char *a = strtok_r(list, ",", &save); a;
	     a = strtok_r(NULL, ",", &save), n++) {
		up[n] = check_srvr(&r, a, modes[n], sizeof(modes[n]));
		if (up[n])
			check_session(&r, a);
	}
	ensemble_verdict(&r, modes, up, n);
	free(list), free(modes), free(up);
	return 0;
}

/* identify: see backend.h. */
int zk_identify(const char *address, unsigned timeout_ms, char *desc,
		size_t desclen)
{
	char buf[4096];
	double ms;
	struct zk_srvr s;
	int err =
	    srvr(address, zk_now_ms() + timeout_ms, buf, sizeof(buf), &ms);

	if (err)
		return err == -EAGAIN ? -EPROTO : -EIO;
	zk_check_parse_srvr(buf, strlen(buf), &s);
	if (s.kind == ZK_SRVR_FOREIGN)
		return -EPROTO;
	snprintf(desc, desclen, "ZooKeeper%s%s", s.version[0] ? " " : "",
		 s.version);
	return 0;
}
