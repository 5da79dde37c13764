/* Unit tests of fs/writeback.c over a fake store: creates applied in
 * order, in batches, a refused batch retried create by create, failures
 * reported once by writeback_sync and counted by writeback_stop, a lost
 * answer of a create that landed taken as done. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../fs/cache.h"
#include "../../fs/writeback.h"
#include "check.h"

#define MAXK 2048

static struct {
	char *key[MAXK];
	char *val[MAXK];
	size_t n;
	char log[8192];	    /* "m3 " per multi of 3, "p:path " per put */
	const char *refuse; /* put/multi of this path fails -EACCES */
	int eio_multis;	    /* the next multis fail -EIO after landing */
} st;

static int find(const char *k)
{
	for (size_t i = 0; i < st.n; i++)
		if (!strcmp(st.key[i], k))
			return (int)i;
	return -1;
}

static void logf_(const char *s)
{
	strncat(st.log, s, sizeof(st.log) - strlen(st.log) - 1);
}

static int fake_list(struct topo_store *s, const char *path,
		     struct topo_listing *out)
{
	(void)s;
	(void)path;
	memset(out, 0, sizeof(*out));
	return 0; /* the cache is only the writeback's side channel here */
}

static int fake_get(struct topo_store *s, const char *path,
		    struct topo_entry *e)
{
	(void)s;
	int i = find(path);
	if (i < 0)
		return -ENOENT;
	memset(e, 0, sizeof(*e));
	e->path = strdup(path);
	e->meta.size = strlen(st.val[i]);
	e->meta.has_data = true;
	e->value = (unsigned char *)strdup(st.val[i]);
	return 0;
}

static int create(const char *path, const void *v, size_t len)
{
	if (st.refuse && !strcmp(path, st.refuse))
		return -EACCES;
	if (find(path) >= 0)
		return -EEXIST;
	st.key[st.n] = strdup(path);
	st.val[st.n] = strndup(v ? v : "", len);
	st.n++;
	return 0;
}

static int fake_put(struct topo_store *s, const char *path, const void *v,
		    size_t len, int64_t expect, struct topo_meta *m)
{
	(void)s;
	(void)m;
	char buf[128];
	snprintf(buf, sizeof(buf), "p:%s ", path);
	logf_(buf);
	return expect == TOPO_EXPECT_ABSENT ? create(path, v, len) : -EINVAL;
}

static int fake_multi(struct topo_store *s, const struct topo_op *ops, size_t n)
{
	(void)s;
	char buf[32];
	snprintf(buf, sizeof(buf), "m%zu ", n);
	logf_(buf);
	for (size_t i = 0; i < n; i++) /* all or nothing */
		if ((st.refuse && !strcmp(ops[i].path, st.refuse)) ||
		    find(ops[i].path) >= 0)
			return find(ops[i].path) >= 0 ? -EEXIST : -EACCES;
	for (size_t i = 0; i < n; i++)
		create(ops[i].path, ops[i].value, ops[i].len);
	if (st.eio_multis > 0) {
		st.eio_multis--;
		return -EIO; /* it landed, but the answer was lost */
	}
	return 0;
}

static const struct topo_backend fake = {
    .name = "fake",
    .max_ops = 4,
    .max_value = 1000,
    .list = fake_list,
    .get = fake_get,
    .put = fake_put,
    .multi = fake_multi,
};

static char applied[8192];

static void on_applied(void *arg, const char *path)
{
	(void)arg;
	strncat(applied, path, sizeof(applied) - strlen(applied) - 2);
	strcat(applied, " ");
}

static void reset(void)
{
	for (size_t i = 0; i < st.n; i++) {
		free(st.key[i]);
		free(st.val[i]);
	}
	memset(&st, 0, sizeof(st));
	applied[0] = '\0';
}

/* Ten creates: applied in order, in multis of at most max_ops. */
static void test_batches_in_order(void)
{
	reset();
	struct cache *c = cache_new(&fake, NULL, 60000);
	struct writeback *w = writeback_start(&fake, NULL, c, on_applied, NULL);
	char p[16], v[16];
	for (int i = 0; i < 10; i++) {
		snprintf(p, sizeof(p), "k%d", i);
		snprintf(v, sizeof(v), "v%d", i);
		CHECK_INT(writeback_create(w, p, v, strlen(v), false), 0);
	}
	CHECK_INT(writeback_sync(w), 0);
	CHECK_INT(st.n, 10);
	for (int i = 0; i < 10; i++) {
		snprintf(p, sizeof(p), "k%d", i);
		snprintf(v, sizeof(v), "v%d", i);
		CHECK_INT(find(p), i); /* in queue order */
		CHECK_STR(st.val[i], v);
	}
	CHECK(strstr(st.log, "p:") == NULL); /* no create went alone */
	CHECK_STR(applied, "k0 k1 k2 k3 k4 k5 k6 k7 k8 k9 ");
	CHECK_INT(writeback_stop(w), 0);
	cache_free(c);
}

/* One refused create: the others of its batch still land; the failure is
 * reported once by sync and counted at stop. */
static void test_refused_create(void)
{
	reset();
	st.refuse = "bad";
	struct cache *c = cache_new(&fake, NULL, 60000);
	struct writeback *w = writeback_start(&fake, NULL, c, on_applied, NULL);
	CHECK_INT(writeback_create(w, "a", "1", 1, false), 0);
	CHECK_INT(writeback_create(w, "bad", "2", 1, false), 0);
	CHECK_INT(writeback_create(w, "c", "3", 1, false), 0);
	CHECK_INT(writeback_sync(w), -EIO);
	CHECK_INT(writeback_sync(w), 0); /* reported once */
	CHECK(find("a") >= 0 && find("c") >= 0 && find("bad") < 0);
	/* however the thread batched them, "bad" was tried alone */
	CHECK(strstr(st.log, "p:bad ") != NULL);
	CHECK_STR(applied, "a c ");
	CHECK_INT(writeback_stop(w), 1);
	cache_free(c);
}

/* A multi whose answer was lost after it landed: the retry finds the keys
 * with our values, which counts as done. */
static void test_lost_answer(void)
{
	reset();
	st.eio_multis = 1;
	struct cache *c = cache_new(&fake, NULL, 60000);
	struct writeback *w = writeback_start(&fake, NULL, c, on_applied, NULL);
	CHECK_INT(writeback_create(w, "x", "1", 1, false), 0);
	CHECK_INT(writeback_create(w, "y", "22", 2, false), 0);
	CHECK_INT(writeback_sync(w), 0);
	/* the first multi (with x, maybe y) was sent again, then its creates
	 * alone found there */
	CHECK(strncmp(st.log, "m", 1) == 0 && strstr(st.log, "p:x ") != NULL);
	CHECK_STR(st.val[find("x")], "1");
	CHECK_STR(st.val[find("y")], "22");
	CHECK_STR(applied, "x y ");
	CHECK_INT(writeback_stop(w), 0);
	cache_free(c);
}

/* A key someone else created meanwhile with another value: refused. */
static void test_someone_else_was_first(void)
{
	reset();
	create("k", "theirs", 6);
	struct cache *c = cache_new(&fake, NULL, 60000);
	struct writeback *w = writeback_start(&fake, NULL, c, on_applied, NULL);
	CHECK_INT(writeback_create(w, "k", "ours", 4, false), 0);
	CHECK_INT(writeback_sync(w), -EIO);
	CHECK_STR(st.val[find("k")], "theirs");
	CHECK_INT(writeback_stop(w), 1);
	cache_free(c);
}

/* writeback_queued names what is queued or being applied, and nothing
 * once the queue is applied. */
static void test_queued(void)
{
	reset();
	struct cache *c = cache_new(&fake, NULL, 60000);
	struct writeback *w = writeback_start(&fake, NULL, c, NULL, NULL);
	CHECK(!writeback_queued(w, "q"));
	CHECK_INT(writeback_create(w, "q", "1", 1, false), 0);
	CHECK(writeback_queued(w, "q") || find("q") >= 0); /* or done */
	CHECK(!writeback_queued(w, "other"));
	writeback_wait(w);
	CHECK(!writeback_queued(w, "q"));
	CHECK(find("q") >= 0);
	CHECK(!writeback_queued(NULL, "q"));
	CHECK_INT(writeback_stop(w), 0);
	cache_free(c);
}

/* Stopping applies what is still queued: none lost. */
static void test_stop_applies_queue(void)
{
	reset();
	struct cache *c = cache_new(&fake, NULL, 60000);
	struct writeback *w = writeback_start(&fake, NULL, c, NULL, NULL);
	char p[16];
	for (int i = 0; i < MAXK - 8; i++) {
		snprintf(p, sizeof(p), "n%d", i);
		CHECK_INT(writeback_create(w, p, "v", 1, false), 0);
	}
	CHECK_INT(writeback_stop(w), 0);
	CHECK_INT(st.n, MAXK - 8);
	cache_free(c);
}

int main(void)
{
	test_batches_in_order();
	test_refused_create();
	test_lost_answer();
	test_someone_else_was_first();
	test_queued();
	test_stop_applies_queue();
	reset();
	return check_report();
}
