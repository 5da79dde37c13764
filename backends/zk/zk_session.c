/*
 * zk_session.c - the ZooKeeper backend's sessions: connecting, the
 * session watcher, renewing an expired session, and sending requests on
 * a connected session within an operation's deadline.
 *
 * Concurrency (continued from zk_request.c)
 *
 *   Sessions. `struct zsess` is one zhandle_t with the last state the
 *   watcher saw, under its own mutex and condition variable; operations
 *   wait there (with their deadline) until the state is CONNECTED. The
 *   store's mutex guards the pointer to the current session and the
 *   sessions' reference counts: each operation holds a reference for its
 *   duration. When a session expires the watcher marks it dead; the next
 *   operation makes a new one (re-adding the credentials) and the old handle
 *   is closed by whoever drops its last reference -- always an operation's
 *   thread, never the client's completion thread, where zookeeper_close
 *   must not be called. Requests in flight on an expired session fail with
 *   -EIO. Lock order: store->mu, then zsess->mu; batch mutexes and
 *   store->wmu are leaves.
 *
 *   In flight. Every request sent is on its session's in-flight list (under
 *   zsess->mu) from just before the send until its completion runs. Closing
 *   a session first waits, up to the session timeout, for that list to
 *   empty: after an operation timed out on a frozen server its requests are
 *   still in flight, and the client fails them with a connection loss
 *   within two thirds of the session timeout. (Closed with requests in
 *   flight, the 3.8 client queues their completions with ZCLOSING and
 *   never runs them: its own entries and our requests and batches leak.)
 *   What is still listed once zookeeper_close has joined the client's
 *   threads is completed with ZCLOSING by the closer itself.
 *
 * Timeouts
 *
 *   Every operation has one deadline, timeout_ms from its start, shared by
 *   the wait for a connection, the request, and any re-read after a
 *   connection loss; a listing's deadline moves on with each answer (it
 *   fails when the server is silent for timeout_ms). The session timeout asked
 * of the server is timeout_ms clamped to [4 s, 40 s] (the server's default
 * range of 2..20 ticks): the client notices a silent server after two thirds of
 * it and fails the requests in flight with ZCONNECTIONLOSS, inside our own
 * deadline.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zookeeper/zookeeper.h>

#include "topofs/log.h"
#include "zk_internal.h"

/* A session whose connections are lost within ZK_BRIEF_MS of being made,
 * ZK_BRIEF_MAX times in a row, is given up for a new one. */
#define ZK_BRIEF_MS 2000
#define ZK_BRIEF_MAX 3

/* ---- sessions ------------------------------------------------------------ */

/* The client's own log lines, shown only with -d. */
static void client_log(const char *msg)
{
	topo_debug("zk client: %s", msg);
}

static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;

/* Point the client's handle-less log stream at /dev/null, once. */
static void quiet_stream(void)
{
	FILE *f = fopen("/dev/null", "w");
	if (f)
		zoo_set_log_stream(f); /* kept open for the process's life */
}

/* Make the client quiet: warnings and errors, to our debug log only. */
static void client_quiet(void)
{
	pthread_once(&quiet_once, quiet_stream);
	zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
}

/* The session's watcher (completion thread), for session events and for
 * every node watch: track the state, wake waiters, send notices. */
void zk_on_event(zhandle_t *zh, int type, int state, const char *path,
		 void *ctx)
{
	struct zsess *ss = ctx;
	if (type != ZOO_SESSION_EVENT) {
		zk_on_node_event(ss, type, path);
		return;
	}
	pthread_mutex_lock(&ss->mu);
	int was = ss->state;
	bool again = ss->connected_once;
	ss->state = state;
	if (state == ZOO_CONNECTED_STATE && !ss->connected_once)
		topo_debug("zk: session 0x%llx established",
			   (unsigned long long)zoo_client_id(zh)->client_id);
	if (state == ZOO_CONNECTED_STATE) {
		ss->connected_once = true;
		ss->connected_at = zk_now_ms();
	}
	bool give_up = false;
	if (state == ZOO_CONNECTING_STATE && was == ZOO_CONNECTED_STATE) {
		/* A server drops a connection at once if the watches the
		 * client sets again on it (one SetWatches request) are over
		 * jute.maxbuffer; the session then never recovers. */
		bool brief = zk_now_ms() - ss->connected_at < ZK_BRIEF_MS;
		ss->short_conns = brief ? ss->short_conns + 1 : 0;
		give_up = ss->short_conns >= ZK_BRIEF_MAX && !ss->dead;
	}
	if (state == ZOO_EXPIRED_SESSION_STATE ||
	    state == ZOO_AUTH_FAILED_STATE || give_up)
		ss->dead = true;
	if (state == ZOO_AUTH_FAILED_STATE)
		ss->auth_failed = true;
	pthread_cond_broadcast(&ss->cv);
	pthread_mutex_unlock(&ss->mu);

	if (give_up) {
		topo_warn("zk: ZooKeeper at %s drops every new connection of "
			  "the session (too many watches for jute.maxbuffer?); "
			  "opening a new session",
			  ss->store->servers);
		zk_notify(ss->store, TOPO_CHANGE_ALL, "");
		return;
	}

	const char *servers = ss->store->servers;
	if (state == ZOO_CONNECTED_STATE && again && was != state)
		topo_info("zk: reconnected to ZooKeeper at %s", servers);
	else if (state == ZOO_CONNECTING_STATE && was == ZOO_CONNECTED_STATE)
		topo_warn(
		    "zk: lost connection to ZooKeeper at %s, reconnecting",
		    servers);
	else if (state == ZOO_AUTH_FAILED_STATE)
		topo_err("zk: ZooKeeper refused the credentials of %s",
			 ss->store->auth_file ? ss->store->auth_file
					      : "(none)");
	if (state == ZOO_EXPIRED_SESSION_STATE && was != state) {
		/* Every watch of this session is gone, and what changed
		 * while it was cut off was never told: all is stale. The
		 * next operation opens a new session; the listings made
		 * again on it set new watches. */
		topo_warn("zk: ZooKeeper session expired; opening a new one");
		zk_notify(ss->store, TOPO_CHANGE_ALL, "");
	}
}

/* Start a new session (connecting in the background) with one reference. */
int zk_sess_new(struct topo_store *s, struct zsess **out)
{
	struct zsess *ss = calloc(1, sizeof(*ss));
	if (!ss)
		return -ENOMEM;
	zk_sync_init(&ss->mu, &ss->cv);
	ss->store = s;
	ss->state = ZOO_CONNECTING_STATE;
	ss->refs = 1;
	client_quiet();
	errno = 0;
	ss->zh = zookeeper_init2(s->servers, zk_on_event, s->session_ms, NULL,
				 ss, ZOO_NO_LOG_CLIENTENV, client_log);
	if (!ss->zh) {
		int e = errno ? errno : EINVAL;
		pthread_cond_destroy(&ss->cv);
		pthread_mutex_destroy(&ss->mu);
		free(ss);
		return -e;
	}
	/* By default the client resolves the host names again each time it
	 * polls its socket: thousands of getaddrinfo calls per listing. Only
	 * resolve when (re)connecting. */
	zoo_set_servers_resolution_delay(ss->zh, -1);
	if (s->auth_scheme)
		zoo_add_auth(ss->zh, s->auth_scheme, s->auth_cert,
			     (int)strlen(s->auth_cert), NULL, NULL);
	*out = ss;
	return 0;
}

/* Wait, at most until `deadline`, for the session's requests in flight to
 * be answered (or failed by the client on a connection loss). */
static int inflight_wait(struct zsess *ss, int64_t deadline)
{
	pthread_mutex_lock(&ss->mu);
	while (ss->ninflight > 0 &&
	       zk_cond_wait_until(&ss->cv, &ss->mu, deadline) != ETIMEDOUT)
		;
	int n = ss->ninflight;
	pthread_mutex_unlock(&ss->mu);
	return n;
}

/* Close a session's handle and free it (never on the completion thread).
 * Requests still in flight (an operation that timed out left them) are
 * waited for up to the session timeout: a silent server makes the client
 * fail them with a connection loss within two thirds of it, and their
 * completions free them. Whatever the client never answered is freed
 * here once zookeeper_close has stopped its threads. */
static void sess_free(struct zsess *ss)
{
	const clientid_t *id = zoo_client_id(ss->zh);
	topo_debug("zk: closing session 0x%llx",
		   id ? (unsigned long long)id->client_id : 0ULL);
	int left = inflight_wait(ss, zk_now_ms() + ss->store->session_ms);
	if (left)
		topo_debug("zk: closing with %d requests unanswered", left);
	zookeeper_close(ss->zh);
	for (;;) { /* no completion can run any more */
		pthread_mutex_lock(&ss->mu);
		struct zreq *r = ss->inflight;
		pthread_mutex_unlock(&ss->mu);
		if (!r)
			break;
		r->rc = ZCLOSING;
		zk_req_done(r); /* frees r with its batch, now unreferenced */
	}
	pthread_cond_destroy(&ss->cv);
	pthread_mutex_destroy(&ss->mu);
	free(ss);
}

/* Drop one reference to a session; the last one closes it. */
void zk_sess_put(struct topo_store *s, struct zsess *ss)
{
	pthread_mutex_lock(&s->mu);
	bool last = --ss->refs == 0;
	pthread_mutex_unlock(&s->mu);
	if (last)
		sess_free(ss);
}

/* Wait until the session is connected: 0, -EACCES (refused), -EIO. */
int zk_sess_wait(struct zsess *ss, int64_t deadline)
{
	int rc = -EIO;
	pthread_mutex_lock(&ss->mu);
	while (!ss->dead && ss->state != ZOO_CONNECTED_STATE &&
	       zk_cond_wait_until(&ss->cv, &ss->mu, deadline) != ETIMEDOUT)
		;
	if (ss->state == ZOO_CONNECTED_STATE)
		rc = 0;
	else if (ss->auth_failed)
		rc = -EACCES;
	pthread_mutex_unlock(&ss->mu);
	return rc;
}

/* Whether a session is dead but worth replacing (expired, not refused). */
static bool sess_renewable(struct zsess *ss)
{
	pthread_mutex_lock(&ss->mu);
	bool r = ss->dead && !ss->auth_failed;
	pthread_mutex_unlock(&ss->mu);
	return r;
}

/* A reference to the current session, replacing an expired one. */
static int sess_current(struct topo_store *s, struct zsess **out)
{
	struct zsess *old = NULL;
	int rc = 0;
	pthread_mutex_lock(&s->mu);
	if (s->sess && sess_renewable(s->sess)) {
		struct zsess *fresh;
		rc = zk_sess_new(s, &fresh);
		if (rc == 0) {
			old = s->sess;
			s->sess = fresh;
			old->refs--; /* the store's reference */
			if (old->refs > 0)
				old = NULL; /* its last user will close it */
		}
	}
	if (s->sess)
		s->sess->refs++;
	*out = s->sess;
	pthread_mutex_unlock(&s->mu);
	if (old)
		sess_free(old);
	if (rc)
		topo_err("zk: cannot start a new ZooKeeper session: %s",
			 strerror(-rc));
	return *out ? 0 : -EIO;
}

/* A connected session by the deadline (renewing expired ones), referenced. */
int zk_sess_get(struct topo_store *s, int64_t deadline, struct zsess **out)
{
	for (;;) {
		struct zsess *ss;
		int rc = sess_current(s, &ss);
		if (rc)
			return rc;
		rc = zk_sess_wait(ss, deadline);
		if (rc == 0) {
			*out = ss;
			return 0;
		}
		bool retry = sess_renewable(ss) && zk_now_ms() < deadline;
		zk_sess_put(s, ss);
		if (!retry)
			return rc;
	}
}

/* ---- single requests ----------------------------------------------------- */

/* Whether a request only reads (and so may simply be sent again). */
static bool req_is_read(const struct zreq *r)
{
	return r->kind == ZR_GET || r->kind == ZR_CHILDREN ||
	       r->kind == ZR_EXISTS || r->kind == ZR_ACL;
}

/* Free a list of requests linked by `next`. */
static void req_free_list(struct zreq *r)
{
	while (r) {
		struct zreq *next = r->next;
		zk_req_free(r);
		r = next;
	}
}

/* Send reqs[0..n) in this order on one connected session (which applies
 * them in order) and wait for every answer: 0 with each reqs[i]->rc set,
 * or a negative errno, and then every reqs[i] is consumed. */
int zk_call_all(struct topo_store *s, struct zreq **reqs, size_t n,
		int64_t deadline, const char *what)
{
	struct zsess *ss;
	struct zbatch *b = NULL;
	int rc = zk_sess_get(s, deadline, &ss);
	if (rc == -EIO)
		topo_err("zk: %s %s: not connected to ZooKeeper at %s", what,
			 reqs[0]->path, s->servers);
	if (!rc && !(b = zk_batch_new())) {
		zk_sess_put(s, ss);
		rc = -ENOMEM;
	}
	if (rc) {
		for (size_t i = 0; i < n; i++)
			zk_req_free(reqs[i]);
		return rc;
	}
	char *path = strdup(reqs[0]->path); /* for the log, once r is gone */
	size_t sent = 0, got = 0;
	int zrc = ZOK;
	for (; sent < n && zrc == ZOK; sent++)
		zrc = zk_req_submit(ss, b, reqs[sent]);
	if (zrc != ZOK)
		sent--; /* that one is consumed */
	for (size_t i = sent + (zrc != ZOK); i < n; i++)
		zk_req_free(reqs[i]); /* never sent */
	struct zreq *answered = NULL, *r;
	while (got < sent && (r = zk_batch_next(b, deadline))) {
		r->next = answered;
		answered = r;
		got++;
	}
	zk_batch_unref(b);
	zk_sess_put(s, ss);
	if (zrc == ZOK && got == n) {
		free(path);
		return 0;
	}
	req_free_list(answered);
	if (zrc != ZOK)
		rc = zk_errno(zrc, what, path ? path : "?");
	else
		topo_err("zk: %s %s: no answer within %u ms", what,
			 path ? path : "?", s->timeout_ms);
	free(path);
	return zrc != ZOK ? rc : -EIO;
}

/* Send r once on a connected session and wait for the answer: 0 with
 * r->rc set, or a negative errno (r is then consumed). */
static int call_once(struct topo_store *s, struct zreq *r, int64_t deadline,
		     const char *what)
{
	return zk_call_all(s, &r, 1, deadline, what);
}

/* Like call_once, but reads are sent again after a connection loss. */
int zk_call(struct topo_store *s, struct zreq *r, int64_t deadline,
	    const char *what)
{
	for (;;) {
		int rc = call_once(s, r, deadline, what);
		if (rc || !req_is_read(r) || !zk_conn_lost(r->rc))
			return rc;
		if (zk_now_ms() + 20 >= deadline)
			return 0; /* the caller maps the connection loss */
		usleep(20000);	  /* let the session notice, then wait for it */
	}
}

/* The operation's deadline. */
int64_t zk_deadline_of(const struct topo_store *s)
{
	return zk_now_ms() + s->timeout_ms;
}
