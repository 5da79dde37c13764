/* Unit tests of fs/cache.c over a fake in-memory backend: tree shape from
 * bulk listings, freshness, our own writes, in-memory directories. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../fs/cache.h"
#include "../../fs/path.h"
#include "check.h"

#define MAXKEYS 64

static struct fake {
	char *path[MAXKEYS];
	char *value[MAXKEYS];
	int64_t version[MAXKEYS];
	size_t n;
	int lists; /* list() calls */
	int64_t rev;
} fk;

static void fake_put(const char *path, const char *value)
{
	for (size_t i = 0; i < fk.n; i++) {
		if (!strcmp(fk.path[i], path)) {
			free(fk.value[i]);
			fk.value[i] = strdup(value);
			fk.version[i] = ++fk.rev;
			return;
		}
	}
	fk.path[fk.n] = strdup(path);
	fk.value[fk.n] = strdup(value);
	fk.version[fk.n++] = ++fk.rev;
}

static void fake_del(const char *path)
{
	for (size_t i = 0; i < fk.n; i++) {
		if (!strcmp(fk.path[i], path)) {
			free(fk.path[i]);
			free(fk.value[i]);
			fk.n--;
			fk.path[i] = fk.path[fk.n];
			fk.value[i] = fk.value[fk.n];
			fk.version[i] = fk.version[fk.n];
			return;
		}
	}
}

static void fake_clear(void)
{
	while (fk.n)
		fake_del(fk.path[0]);
	fk.lists = 0;
}

static int fake_list(struct topo_store *s, const char *path,
		     struct topo_listing *out)
{
	(void)s;
	fk.lists++;
	for (size_t i = 0; i < fk.n; i++) {
		if (!path_within(fk.path[i], path))
			continue;
		struct topo_meta m = {.version = fk.version[i],
				      .size = strlen(fk.value[i]),
				      .has_data = true};
		unsigned char *v =
		    m.size ? (unsigned char *)strdup(fk.value[i]) : NULL;
		topo_listing_add(out, fk.path[i], strlen(fk.path[i]), &m, v);
	}
	topo_listing_sort(out);
	return 0;
}

static const struct topo_backend fake_backend = {
    .name = "fake",
    .list = fake_list,
};

static int children_calls;
static void (*children_hook)(void); /* runs inside the names-only read */

/* The direct children of path, as a names-only read (ZooKeeper's). */
static int fake_children(struct topo_store *s, const char *path, char **names,
			 size_t *count)
{
	(void)s;
	children_calls++;
	if (children_hook)
		children_hook();
	size_t total = 0, plen = strlen(path);
	char *buf = malloc(4096), *p = buf;
	*count = 0;
	for (size_t i = 0; buf && i < fk.n; i++) {
		const char *k = fk.path[i];
		if (!path_within(k, path) || !strcmp(k, path))
			continue;
		const char *rest = k + (plen ? plen + 1 : 0);
		size_t len = strcspn(rest, "/");
		bool dup = false; /* d/x/1 and d/x/2 name x once */
		for (const char *q = buf; q < p && !dup; q += strlen(q) + 1)
			dup = strlen(q) == len && !strncmp(q, rest, len);
		if (dup || total + len + 1 > 4096)
			continue;
		memcpy(p, rest, len);
		p[len] = '\0';
		p += len + 1;
		total += len + 1;
		(*count)++;
	}
	*names = buf;
	return buf ? 0 : -ENOMEM;
}

/* A store whose notices say TOPO_CHANGE_CHILDREN (ZooKeeper-like). */
static const struct topo_backend fake_zk_backend = {
    .name = "fakezk",
    .list = fake_list,
    .children = fake_children,
};

struct names {
	char buf[512];
};

static int add_name(void *arg, const char *name, const struct cache_stat *st)
{
	struct names *n = arg;
	strcat(n->buf, name);
	strcat(n->buf, st->is_dir ? "/ " : " ");
	return 0;
}

static const char *ls(struct cache *c, const char *dir, int *rc)
{
	static struct names n;
	n.buf[0] = '\0';
	*rc = cache_list_dir(c, dir, add_name, &n);
	return n.buf;
}

static void test_shape(void)
{
	fake_clear();
	fake_put("keyspaces/ks/Keyspace", "K");
	fake_put("keyspaces/ks/shards/-80/Shard", "S1");
	fake_put("keyspaces/ks/shards/80-/Shard", "S2");
	fake_put("RoutingRules", "");
	fake_put("a", "own");
	fake_put("a/b", "child");
	fake_put("bad//key", "x");
	fake_put("bad/./key", "x");
	fake_put("ok-sibling", "y");
	struct cache *c = cache_new(&fake_backend, NULL, 60000);
	int rc;
	/* "bad" holds only invalid keys: it does not exist */
	CHECK_STR(ls(c, "", &rc), "RoutingRules a/ keyspaces/ ok-sibling ");
	CHECK_INT(rc, 0);
	CHECK_INT(fk.lists, 1);
	/* a key that is also a prefix: a directory holding .topofs-data */
	CHECK_STR(ls(c, "a", &rc), "b .topofs-data ");
	/* invalid segments hidden; their directory holds nothing visible */
	ls(c, "bad", &rc);
	CHECK_INT(rc, -ENOENT);
	CHECK_STR(ls(c, "keyspaces/ks/shards", &rc), "-80/ 80-/ ");
	CHECK_INT(fk.lists, 1); /* one bulk listing served all of it */

	struct cache_stat st;
	CHECK_INT(cache_stat(c, "keyspaces/ks/Keyspace", &st), 0);
	CHECK(!st.is_dir);
	CHECK_INT(st.meta.size, 1);
	CHECK_INT(cache_stat(c, "RoutingRules", &st), 0);
	CHECK_INT(st.meta.size, 0);
	CHECK_INT(cache_stat(c, "a", &st), 0);
	CHECK(st.is_dir && st.has_data);
	CHECK_INT(cache_stat(c, "nope", &st), -ENOENT);
	CHECK_INT(cache_stat(c, "keyspaces/nope/deeper", &st), -ENOENT);
	CHECK_INT(cache_stat(c, "keyspaces", &st), 0);
	CHECK_INT(st.subdirs, 1);
	CHECK_STR(ls(c, "RoutingRules", &rc), "");
	CHECK_INT(rc, -ENOTDIR);
	CHECK_INT(fk.lists, 1);

	unsigned char *v;
	struct topo_meta m;
	CHECK_INT(cache_value(c, "a", &v, &m), 0);
	CHECK_MEM(v, m.size, "own", 3);
	free(v);
	CHECK_INT(cache_value(c, "keyspaces", &v, &m), -ENOENT);
	cache_free(c);
}

static void test_freshness(void)
{
	fake_clear();
	fake_put("d/x", "1");
	struct cache *c = cache_new(&fake_backend, NULL, 50);
	int rc;
	CHECK_STR(ls(c, "d", &rc), "x ");
	fake_put("d/y", "2");
	fake_del("d/x");
	CHECK_STR(ls(c, "d", &rc), "x "); /* still fresh */
	usleep(80 * 1000);
	CHECK_STR(ls(c, "d", &rc), "y "); /* re-listed */
	fake_del("d/y");
	usleep(80 * 1000);
	struct cache_stat st;
	CHECK_INT(cache_stat(c, "d", &st), -ENOENT); /* etcd: no empty dirs */
	cache_invalidate(c, "");
	cache_free(c);
}

static void test_own_writes(void)
{
	fake_clear();
	fake_put("d/x", "1");
	struct cache *c = cache_new(&fake_backend, NULL, 60000);
	int rc;
	CHECK_STR(ls(c, "", &rc), "d/ ");
	struct topo_meta m = {.version = 99, .has_data = true};
	int lists = fk.lists;
	cache_note_put(c, "d/e/new", "abc", 3, &m); /* not in the fake store */
	CHECK_STR(ls(c, "d", &rc), "e/ x ");
	unsigned char *v;
	CHECK_INT(cache_value(c, "d/e/new", &v, &m), 0);
	CHECK_MEM(v, m.size, "abc", 3);
	CHECK_INT(m.version, 99);
	CHECK_INT(fk.lists, lists); /* our own write needs no re-listing */
	free(v);

	/* mkdir lives in memory, survives a re-listing */
	CHECK_INT(cache_mkdir(c, "d/m", false), 0);
	CHECK_INT(cache_mkdir(c, "d/m", false), -EEXIST);
	CHECK_INT(cache_mkdir(c, "nope/m", false), -ENOENT);
	CHECK_INT(cache_mkdir(c, "d/x/m", false), -ENOTDIR);
	cache_invalidate(c, "");
	CHECK_STR(ls(c, "d", &rc), "m/ x "); /* d/e/new was never stored */
	CHECK_INT(cache_rmdir(c, "d/m"), 0);
	CHECK_INT(cache_rmdir(c, "d"), -ENOTEMPTY);

	/* deleting the last file keeps its directory when asked */
	fake_del("d/x");
	cache_note_delete(c, "d/x", true);
	CHECK_STR(ls(c, "d", &rc), "");
	CHECK_INT(rc, 0);
	CHECK_INT(cache_rmdir(c, "d"), 0);
	struct cache_stat st;
	CHECK_INT(cache_stat(c, "d", &st), -ENOENT);
	cache_free(c);
}

static void test_subtree(void)
{
	fake_clear();
	fake_put("s", "top");
	fake_put("s/a", "A");
	fake_put("s/b/c", "C");
	fake_put("sx", "not below");
	struct cache *c = cache_new(&fake_backend, NULL, 60000);
	struct topo_listing l = {0};
	bool local;
	CHECK_INT(cache_subtree(c, "s", &l, &local), 0);
	CHECK_INT(l.count, 3);
	if (l.count == 3) {
		CHECK_STR(l.entries[0].path, "s");
		CHECK_STR(l.entries[1].path, "s/a");
		CHECK_STR(l.entries[2].path, "s/b/c");
		CHECK_MEM(l.entries[2].value, l.entries[2].meta.size, "C", 1);
	}
	CHECK(!local);
	topo_listing_free(&l);
	cache_free(c);
}

/* A child notice (a one-shot watch fired) costs no re-listing: the listing
 * is trusted for the ttl, then one names-only read confirms it; a
 * difference re-lists. */
static void test_child_notices(void)
{
	fake_clear();
	children_calls = 0;
	fake_put("d/x", "1");
	fake_put("d/big/1", "1");
	struct cache *c = cache_new(&fake_zk_backend, NULL, 50);
	cache_watch_started(c);
	int rc;
	CHECK_STR(ls(c, "d", &rc), "big/ x ");
	CHECK_INT(fk.lists, 1);
	/* our own create: its notice comes while the write is in flight
	 * (ZooKeeper answers after it), then the write is recorded */
	cache_write_begin(c);
	fake_put("d/mine", "m");
	cache_changed(c, TOPO_CHANGE_CHILDREN, "d", -1);
	cache_write_end(c);
	struct topo_meta m = {.version = fk.rev,
			      .modify_id = fk.rev,
			      .size = 1,
			      .has_data = true};
	cache_note_put(c, "d/mine", "m", 1, &m);
	CHECK_STR(ls(c, "d", &rc), "big/ mine x "); /* within the ttl */
	CHECK_INT(fk.lists, 1);
	CHECK_INT(children_calls, 0);
	usleep(80 * 1000);
	CHECK_STR(ls(c, "d", &rc), "big/ mine x "); /* confirmed by names */
	CHECK_INT(fk.lists, 1);
	CHECK_INT(children_calls, 1);
	usleep(80 * 1000);
	CHECK_STR(ls(c, "d", &rc), "big/ mine x "); /* watched again */
	CHECK_INT(children_calls, 1);
	/* someone else's create: the names differ, so it is re-listed */
	cache_changed(c, TOPO_CHANGE_CHILDREN, "d", -1);
	fake_put("d/theirs", "t");
	CHECK_INT(cache_recheck(c, "d"), 1);
	CHECK_INT(children_calls, 2);
	CHECK_INT(fk.lists, 2);
	CHECK_STR(ls(c, "d", &rc), "big/ mine theirs x ");
	/* a recheck with nothing to check does nothing */
	CHECK_INT(cache_recheck(c, "d"), 0);
	CHECK_INT(children_calls, 2);
	/* a deletion elsewhere, found by the recheck before the ttl */
	cache_changed(c, TOPO_CHANGE_CHILDREN, "d", -1);
	fake_del("d/x");
	CHECK_INT(cache_recheck(c, "d"), 1);
	CHECK_STR(ls(c, "d", &rc), "big/ mine theirs ");
	CHECK_INT(fk.lists, 3);
	/* another client's create while none of our writes is in flight:
	 * the next access checks at once, within the ttl */
	usleep(30 * 1000); /* past OWN_WRITE_GRACE_MS */
	CHECK_STR(ls(c, "d", &rc), "big/ mine theirs ");
	int calls = children_calls;
	fake_put("d/now", "n");
	cache_changed(c, TOPO_CHANGE_CHILDREN, "d", -1);
	CHECK_STR(ls(c, "d", &rc), "big/ mine now theirs ");
	CHECK_INT(children_calls, calls + 1);
	CHECK_INT(fk.lists, 4);
	cache_free(c);
}

/* A derived size is kept for exactly the value it was computed from. */
static void test_derived_size(void)
{
	fake_clear();
	struct cache *c = cache_new(&fake_backend, NULL, 60000);
	struct topo_meta m = {
	    .version = 7, .modify_id = 7, .size = 2, .has_data = true};
	cache_note_put(c, "Keyspace", "ab", 2, &m);
	size_t n = 0;
	CHECK(!cache_derived_size(c, "Keyspace", 7, &n));
	cache_set_derived_size(c, "Keyspace", 6, 40); /* not its value */
	CHECK(!cache_derived_size(c, "Keyspace", 6, &n));
	cache_set_derived_size(c, "Keyspace", 7, 41);
	CHECK(cache_derived_size(c, "Keyspace", 7, &n));
	CHECK_INT(n, 41);
	m.version = m.modify_id = 9;
	cache_note_put(c, "Keyspace", "abc", 3, &m);
	CHECK(!cache_derived_size(c, "Keyspace", 9, &n));
	CHECK(!cache_derived_size(c, "nope", 7, &n));
	cache_free(c);
}

/* ZooKeeper-like listing: a node with children is a directory node. */
static int fake_real_list(struct topo_store *s, const char *path,
			  struct topo_listing *out)
{
	int rc = fake_list(s, path, out);
	for (size_t i = 0; !rc && i < out->count; i++)
		for (size_t j = 0; j < out->count; j++)
			if (path_within(out->entries[j].path,
					out->entries[i].path) &&
			    strcmp(out->entries[j].path, out->entries[i].path))
				out->entries[i].meta.real_dir = true;
	return rc;
}

/* One node, a directory node when it has children. */
static int fake_real_get(struct topo_store *s, const char *path,
			 struct topo_entry *e)
{
	struct topo_listing l = {0};
	int lists = fk.lists; /* a get is not a listing */
	int rc = fake_real_list(s, path, &l);
	fk.lists = lists;
	memset(e, 0, sizeof(*e));
	for (size_t i = 0; !rc && i < l.count; i++) {
		if (strcmp(l.entries[i].path, path) == 0) {
			*e = l.entries[i];
			l.entries[i].path = NULL;
			l.entries[i].value = NULL;
			topo_listing_free(&l);
			return 0;
		}
	}
	topo_listing_free(&l);
	return rc ? rc : -ENOENT;
}

static const struct topo_backend fake_real_backend = {
    .name = "fakereal",
    .caps = TOPO_CAP_REAL_DIRS,
    .list = fake_real_list,
    .get = fake_real_get,
    .children = fake_children,
};

static int gets; /* get() calls of fake_etcd_backend */

static int fake_counted_get(struct topo_store *s, const char *path,
			    struct topo_entry *e)
{
	gets++;
	return fake_real_get(s, path, e);
}

/* etcd-like: notices name the version (mod_revision) of the change. */
static const struct topo_backend fake_etcd_backend = {
    .name = "fakeetcd",
    .list = fake_list,
    .get = fake_counted_get,
};

/* The watch often tells of our own write before the store's answer to it
 * arrives. A notice of that version (or an older one) is answered by the
 * write: no get(). A newer one (another client's write after ours) is
 * read again. */
static void test_notice_before_own_write(void)
{
	fake_clear();
	fake_put("ks/Keyspace", "old");
	struct cache *c = cache_new(&fake_etcd_backend, NULL, 60000);
	cache_watch_started(c);
	int rc;
	CHECK_STR(ls(c, "ks", &rc), "Keyspace ");
	gets = 0;

	fake_put("ks/Keyspace", "ours"); /* our put lands at fk.rev */
	int64_t ours = fk.rev;
	cache_changed(c, TOPO_CHANGE_NODE, "ks/Keyspace", ours); /* notice */
	struct topo_meta m = {.version = ours, .has_data = true};
	cache_note_put(c, "ks/Keyspace", "ours", 4, &m); /* the answer */
	unsigned char *v;
	CHECK_INT(cache_value(c, "ks/Keyspace", &v, &m), 0);
	CHECK_MEM(v, m.size, "ours", 4);
	CHECK_INT(m.version, ours);
	CHECK_INT(gets, 0);
	free(v);

	/* ours, then another client's: its notice came first */
	fake_put("ks/Keyspace", "ours2");
	ours = fk.rev;
	fake_put("ks/Keyspace", "theirs");
	cache_changed(c, TOPO_CHANGE_NODE, "ks/Keyspace", ours);
	cache_changed(c, TOPO_CHANGE_NODE, "ks/Keyspace", fk.rev);
	m = (struct topo_meta){.version = ours, .has_data = true};
	cache_note_put(c, "ks/Keyspace", "ours2", 5, &m);
	CHECK_INT(cache_value(c, "ks/Keyspace", &v, &m), 0);
	CHECK_MEM(v, m.size, "theirs", 6);
	CHECK_INT(m.version, fk.rev);
	CHECK_INT(gets, 1);
	free(v);

	/* a notice without a version is never taken for ours */
	fake_put("ks/Keyspace", "x");
	cache_changed(c, TOPO_CHANGE_NODE, "ks/Keyspace", -1);
	m = (struct topo_meta){.version = fk.rev, .has_data = true};
	cache_note_put(c, "ks/Keyspace", "x", 1, &m);
	CHECK_INT(cache_value(c, "ks/Keyspace", &v, &m), 0);
	CHECK_INT(gets, 2);
	free(v);
	cache_free(c);
}

/* A child notice on a node that is not a directory (its last child went,
 * or a file gained one) re-reads that node, not its parent's listing: a
 * restore over existing files made that quadratic. */
static void test_child_notice_on_a_file(void)
{
	fake_clear();
	fake_put("tablets/t1", "");
	fake_put("tablets/t1/Tablet", "x");
	fake_put("tablets/t2", "");
	fake_put("tablets/t2/Tablet", "y");
	struct cache *c = cache_new(&fake_real_backend, NULL, 60000);
	cache_watch_started(c);
	int rc;
	CHECK_STR(ls(c, "tablets", &rc), "t1/ t2/ ");
	CHECK_INT(fk.lists, 1);
	fake_del("tablets/t1/Tablet"); /* its last child goes... */
	cache_changed(c, TOPO_CHANGE_DELETED, "tablets/t1/Tablet", -1);
	cache_changed(c, TOPO_CHANGE_CHILDREN, "tablets/t1", -1);
	struct cache_stat st;
	CHECK_INT(cache_stat(c, "tablets/t1", &st), 0);
	CHECK(!st.is_dir);	/* ...so it is a file again, */
	CHECK_INT(fk.lists, 1); /* learnt with one get, not a listing */
	fake_put("tablets/t1/Tablet", "z"); /* and it gains one back */
	cache_changed(c, TOPO_CHANGE_CHILDREN, "tablets/t1", -1);
	CHECK_INT(cache_stat(c, "tablets/t1", &st), 0);
	CHECK(st.is_dir);
	CHECK_STR(ls(c, "tablets/t1", &rc), "Tablet ");
	CHECK_INT(fk.lists, 2); /* its own listing only */
	cache_free(c);
}

/* A directory whose last known child is deleted right after its child
 * watch fired stays a directory until its names are checked: the store
 * may hold children the cache has not seen. Confirmed empty, it is a file
 * again (Vitess's rule). */
static void test_last_child_after_child_notice(void)
{
	fake_clear();
	children_calls = 0;
	fake_put("d", "");
	fake_put("d/x", "1");
	struct cache *c = cache_new(&fake_real_backend, NULL, 50);
	cache_watch_started(c);
	int rc;
	CHECK_STR(ls(c, "d", &rc), "x ");
	fake_put("d/y", "2"); /* another client: its notice says CHILDREN */
	cache_changed(c, TOPO_CHANGE_CHILDREN, "d", -1);
	fake_del("d/x");
	cache_changed(c, TOPO_CHANGE_DELETED, "d/x", -1);
	struct cache_stat st;
	CHECK_INT(cache_stat(c, "d", &st), 0);
	CHECK(st.is_dir);
	usleep(80 * 1000);
	CHECK_STR(ls(c, "d", &rc), "y ");
	CHECK_INT(rc, 0);
	/* its last child goes, and the names confirm there is none: a
	 * change of type, which the kernel must hear of (1) */
	fake_del("d/y");
	cache_changed(c, TOPO_CHANGE_CHILDREN, "d", -1);
	cache_changed(c, TOPO_CHANGE_DELETED, "d/y", -1);
	CHECK_INT(cache_recheck(c, "d"), 1);
	CHECK_INT(cache_stat(c, "d", &st), 0);
	CHECK(!st.is_dir);
	cache_free(c);
}

/* ZooKeeper-like, where "p" may not be read (an ACL): a listing names it
 * (denied, as a directory) and nothing below it; listing p itself is
 * refused, as zk_list of a node we may not read is. */
static int fake_denied_list(struct topo_store *s, const char *path,
			    struct topo_listing *out)
{
	if (path_within(path, "p"))
		return -EACCES;
	struct topo_listing all = {0};
	int rc = fake_real_list(s, path, &all);
	for (size_t i = 0; !rc && i < all.count; i++) {
		struct topo_entry *e = &all.entries[i];
		if (path_within(e->path, "p"))
			continue;
		rc = topo_listing_add(out, e->path, strlen(e->path), &e->meta,
				      e->value);
		e->value = NULL; /* now out's */
	}
	struct topo_meta denied = {
	    .has_data = true, .real_dir = true, .denied = true};
	if (!rc && !*path)
		rc = topo_listing_add(out, "p", 1, &denied, NULL);
	topo_listing_free(&all);
	topo_listing_sort(out);
	return rc;
}

static const struct topo_backend fake_denied_backend = {
    .name = "fakedenied",
    .caps = TOPO_CAP_REAL_DIRS,
    .list = fake_denied_list,
    .children = fake_children,
};

/* A node the store will not show: its name lists (as a directory), and
 * everything about its contents is EACCES, not ENOENT. */
static void test_denied_node(void)
{
	fake_clear();
	fake_put("a", "1");
	fake_put("p/s", "secret");
	struct cache *c = cache_new(&fake_denied_backend, NULL, 60000);
	struct cache_stat cs;
	unsigned char *buf = NULL;
	struct topo_meta m;
	int rc;
	CHECK_STR(ls(c, "", &rc), "a p/ ");
	CHECK_INT(rc, 0);
	CHECK_INT(cache_stat(c, "p", &cs), 0);
	CHECK(cs.is_dir && cs.has_data && cs.meta.denied);
	CHECK_STR(ls(c, "p", &rc), "");
	CHECK_INT(rc, -EACCES);
	CHECK_INT(cache_stat(c, "p/s", &cs), -EACCES);
	CHECK_INT(cache_stat_brief(c, "p/x/y", &cs), -EACCES);
	CHECK_INT(cache_value(c, "p/s", &buf, &m), -EACCES);
	CHECK_INT(cache_value(c, "a", &buf, &m), 0);
	CHECK_MEM(buf, m.size, "1", 1);
	free(buf);
	CHECK_INT(fk.lists, 1);
	cache_free(c);
}

/* A directory rename moves the cached subtree: the parent the two names
 * share stays known (no re-listing of the root, which a busy store's
 * notices could keep discarding), in-memory directories move along, and
 * only the new name is re-listed. */
static void test_move_dir(void)
{
	fake_clear();
	fake_put("rd/xb/y0", "0");
	fake_put("rd/xb/y1", "1");
	fake_put("a/only/z", "Z");
	fake_put("b/k", "K");
	struct cache *c = cache_new(&fake_backend, NULL, 60000);
	cache_watch_started(c);
	int rc;
	struct cache_stat st;
	CHECK_STR(ls(c, "", &rc), "a/ b/ rd/ ");
	CHECK_STR(ls(c, "rd/xb", &rc), "y0 y1 ");

	/* rd/xb -> rd/xa, as rename_dir does it */
	cache_move_subtree(c, "rd/xb", "rd/xa");
	fake_del("rd/xb/y0");
	fake_del("rd/xb/y1");
	fake_put("rd/xa/y0", "0");
	fake_put("rd/xa/y1", "1");
	cache_invalidate(c, "rd/xa");
	int lists = fk.lists;
	CHECK_INT(cache_stat(c, "rd", &st), 0);
	CHECK(st.is_dir);
	CHECK_INT(cache_stat(c, "b/k", &st), 0);
	CHECK_STR(ls(c, "rd", &rc), "xa/ ");
	CHECK_INT(fk.lists, lists); /* neither the root nor rd re-listed */
	CHECK_STR(ls(c, "rd/xa", &rc), "y0 y1 ");
	CHECK_INT(fk.lists, lists + 1); /* rd/xa alone */
	CHECK_INT(cache_stat(c, "rd/xb", &st), -ENOENT);

	/* and back, with a directory made here inside */
	CHECK_INT(cache_mkdir(c, "rd/xa/e", false), 0);
	cache_move_subtree(c, "rd/xa", "rd/xb");
	fake_del("rd/xa/y0");
	fake_del("rd/xa/y1");
	fake_put("rd/xb/y0", "0");
	fake_put("rd/xb/y1", "1");
	cache_invalidate(c, "rd/xb");
	CHECK_STR(ls(c, "rd", &rc), "xb/ ");
	CHECK_STR(ls(c, "rd/xb", &rc), "e/ y0 y1 ");

	/* to another parent: the one left empty goes (etcd) */
	cache_move_subtree(c, "a/only", "b/only");
	fake_del("a/only/z");
	fake_put("b/only/z", "Z");
	cache_invalidate(c, "b/only");
	CHECK_STR(ls(c, "", &rc), "b/ rd/ ");
	CHECK_STR(ls(c, "b", &rc), "k only/ ");
	CHECK_STR(ls(c, "b/only", &rc), "z ");
	cache_free(c);
}

/* Another client's directory rename, as etcd's watch tells it: the new
 * keys first, then the deletes of the old ones. The new keys are recorded
 * (one get() each), so the deletes do not prune the parent both names
 * share, and nothing is re-listed. */
static void test_rename_notices(void)
{
	fake_clear();
	fake_put("rd/xb/y0", "0");
	fake_put("rd/xb/y1", "1");
	fake_put("b/k", "K");
	struct cache *c = cache_new(&fake_etcd_backend, NULL, 60000);
	cache_watch_started(c);
	int rc;
	struct cache_stat st;
	CHECK_STR(ls(c, "", &rc), "b/ rd/ ");
	CHECK_STR(ls(c, "rd/xb", &rc), "y0 y1 ");
	fake_put("rd/xa/y0", "0");
	fake_put("rd/xa/y1", "1");
	fake_del("rd/xb/y0");
	fake_del("rd/xb/y1");
	int lists = fk.lists;
	gets = 0;
	cache_changed(c, TOPO_CHANGE_NODE, "rd/xa/y0", fk.rev);
	cache_changed(c, TOPO_CHANGE_NODE, "rd/xa/y1", fk.rev);
	cache_changed(c, TOPO_CHANGE_DELETED, "rd/xb/y0", fk.rev);
	cache_changed(c, TOPO_CHANGE_DELETED, "rd/xb/y1", fk.rev);
	CHECK_INT(cache_stat(c, "rd", &st), 0);
	CHECK_STR(ls(c, "rd", &rc), "xa/ ");
	CHECK_STR(ls(c, "rd/xa", &rc), "y0 y1 ");
	CHECK_INT(gets, 2);
	unsigned char *v;
	struct topo_meta m;
	CHECK_INT(cache_value(c, "rd/xa/y1", &v, &m), 0);
	CHECK_MEM(v, m.size, "1", 1);
	free(v);
	CHECK_INT(fk.lists, lists);

	/* a key below a directory the cache has not listed: its listing
	 * decides (the root's listing holds the whole tree here) */
	cache_invalidate(c, "rd");
	fake_put("rd/n/z", "Z");
	cache_changed(c, TOPO_CHANGE_NODE, "rd/n/z", fk.rev);
	CHECK_STR(ls(c, "rd", &rc), "n/ xa/ ");
	CHECK_INT(fk.lists, lists + 1);
	cache_free(c);
}

/* What happens while the next get() or listing is in flight: it answers from
 * the store as it was when asked, then runs `meanwhile` (other threads' work in
 * the real thing: the cache's lock is not held during a get). */
static void (*meanwhile)(struct cache *c);
static struct cache *meanwhile_cache;

/* Run `meanwhile` once, if set. */
static void run_meanwhile(void)
{
	void (*fn)(struct cache *) = meanwhile;
	meanwhile = NULL;
	if (fn)
		fn(meanwhile_cache);
}

static int fake_racing_get(struct topo_store *s, const char *path,
			   struct topo_entry *e)
{
	int rc = fake_counted_get(s, path, e);
	run_meanwhile();
	return rc;
}

static int fake_racing_list(struct topo_store *s, const char *path,
			    struct topo_listing *out)
{
	int rc = fake_list(s, path, out);
	run_meanwhile();
	return rc;
}

/* `meanwhile` runs during whichever store call comes first; listings have
 * no revision (ZooKeeper's). */
static const struct topo_backend fake_racing_backend = {
    .name = "fakeracing",
    .list = fake_racing_list,
    .get = fake_racing_get,
};

/* During the get of d/k (which finds nothing): another client creates d/k,
 * d is re-listed (new nodes), and d/k changes again. */
static void relist_then_notice(struct cache *c)
{
	int rc;
	fake_put("d/k", "K");
	cache_invalidate(c, "d");
	CHECK_STR(ls(c, "d", &rc), "a k ");
	fake_put("d/k", "K2");
	cache_changed(c, TOPO_CHANGE_NODE, "d/k", fk.rev);
}

/* A get() answer is taken only for the node it was asked for: not for a
 * node that a re-listing put in its place meanwhile, even one a later
 * notice made stale again (per-node notice counts matched there: the old
 * ENOENT deleted the new node, and the key was lost until the next
 * change). */
static void test_get_racing_a_relisting(void)
{
	fake_clear();
	fake_put("d/a", "A");
	fake_put("d/k", "old");
	struct cache *c = cache_new(&fake_racing_backend, NULL, 60000);
	cache_watch_started(c);
	int rc;
	CHECK_STR(ls(c, "d", &rc), "a k ");
	fake_del("d/k");
	cache_changed(c, TOPO_CHANGE_DELETED, "d/k", ++fk.rev);
	cache_changed(c, TOPO_CHANGE_NODE, "d/k", ++fk.rev); /* a put, undone */
	meanwhile = relist_then_notice;
	meanwhile_cache = c;
	gets = 0;
	struct cache_stat st;
	CHECK_INT(cache_stat(c, "d/k", &st), 0);
	CHECK_INT(gets, 2); /* the raced answer, then the right one */
	CHECK_STR(ls(c, "d", &rc), "a k ");
	unsigned char *v = NULL;
	struct topo_meta m = {0};
	CHECK_INT(cache_value(c, "d/k", &v, &m), 0);
	CHECK_MEM(v, m.size, "K2", 2);
	free(v);
	cache_free(c);
}

/* etcd tells of a put of "d/k" (a directory: it has "d/k/c"), then of the
 * delete of "d/k/c": "d/k" is a file now, though its value was not read
 * yet (it was pruned as an empty directory, and lost until its next
 * change). */
static void test_put_then_last_child_deleted(void)
{
	fake_clear();
	fake_put("d/a", "A");
	fake_put("d/k/c", "C");
	struct cache *c = cache_new(&fake_etcd_backend, NULL, 60000);
	cache_watch_started(c);
	int rc;
	CHECK_STR(ls(c, "d", &rc), "a k/ ");
	int lists = fk.lists;
	fake_put("d/k", "K");
	cache_changed(c, TOPO_CHANGE_NODE, "d/k", fk.rev);
	fake_del("d/k/c");
	cache_changed(c, TOPO_CHANGE_DELETED, "d/k/c", ++fk.rev);
	CHECK_STR(ls(c, "d", &rc), "a k ");
	unsigned char *v = NULL;
	struct topo_meta m = {0};
	CHECK_INT(cache_value(c, "d/k", &v, &m), 0);
	CHECK_MEM(v, m.size, "K", 1);
	free(v);
	CHECK_INT(fk.lists, lists); /* one get(), no listing */

	/* and when "d/k" was deleted too, the get finds nothing */
	fake_put("d/k/c", "C");
	cache_changed(c, TOPO_CHANGE_NODE, "d/k/c", fk.rev);
	CHECK_STR(ls(c, "d", &rc), "a k/ ");
	fake_put("d/k", "K2");
	cache_changed(c, TOPO_CHANGE_NODE, "d/k", fk.rev);
	fake_del("d/k");
	fake_del("d/k/c");
	cache_changed(c, TOPO_CHANGE_DELETED, "d/k/c", ++fk.rev);
	CHECK_STR(ls(c, "d", &rc), "a ");
	CHECK_INT(cache_value(c, "d/k", &v, &m), -ENOENT);
	cache_free(c);
}

/* A notice of a key below directories the cache did not have says which
 * listing gained a name: the first directory that is not new. */
static void test_notice_grows_listing(void)
{
	fake_clear();
	fake_put("a", "A");
	fake_put("s0/k0", "0");
	struct cache *c = cache_new(&fake_etcd_backend, NULL, 60000);
	cache_watch_started(c);
	int rc;
	CHECK_STR(ls(c, "", &rc), "a s0/ ");
	size_t grown = 7;
	fake_put("s1/k22", "v");
	CHECK(cache_notice(c, TOPO_CHANGE_NODE, "s1/k22", fk.rev, &grown));
	CHECK_INT(grown, 0); /* the root gained s1 */
	fake_put("s1/k7", "v");
	cache_notice(c, TOPO_CHANGE_NODE, "s1/k7", fk.rev, &grown);
	CHECK_INT(grown, 2); /* s1 gained k7: its parent, as for any key */
	fake_put("s0/n/m/k", "v");
	cache_notice(c, TOPO_CHANGE_NODE, "s0/n/m/k", fk.rev, &grown);
	CHECK_INT(grown, 2); /* s0 gained n */
	fake_put("a", "A2");
	cache_notice(c, TOPO_CHANGE_NODE, "a", fk.rev, &grown);
	CHECK_INT(grown, CACHE_NOT_GROWN); /* a value changed, no name */
	fake_del("s0/k0");
	cache_notice(c, TOPO_CHANGE_DELETED, "s0/k0", ++fk.rev, &grown);
	CHECK_INT(grown, CACHE_NOT_GROWN);
	CHECK_STR(ls(c, "", &rc), "a s0/ s1/ ");
	CHECK_STR(ls(c, "s0/n/m", &rc), "k ");
	cache_free(c);
}

/* During the get of d/k (which finds its value): another client deletes
 * d/k, which stays a directory (d/k/c). */
static void delete_meanwhile(struct cache *c)
{
	fake_del("d/k");
	cache_changed(c, TOPO_CHANGE_DELETED, "d/k", ++fk.rev);
}

/* A get() answered before a delete notice is not taken after it (the value
 * came back, and stayed: the notice had no newer version to compare). */
static void test_get_racing_a_delete(void)
{
	fake_clear();
	fake_put("d/k/c", "C");
	fake_put("d/k", "V");
	struct cache *c = cache_new(&fake_racing_backend, NULL, 60000);
	cache_watch_started(c);
	int rc;
	CHECK_STR(ls(c, "d", &rc), "k/ ");
	fake_put("d/k", "V2");
	cache_changed(c, TOPO_CHANGE_NODE, "d/k", fk.rev);
	meanwhile = delete_meanwhile;
	meanwhile_cache = c;
	struct cache_stat st;
	CHECK_INT(cache_stat(c, "d/k", &st), 0);
	CHECK(st.is_dir);
	CHECK(!st.has_data);
	CHECK_INT(cache_stat(c, "d/k", &st), 0);
	CHECK(!st.has_data);
	cache_free(c);
}

/* During the listing of d: another client changes d/a. */
static void change_meanwhile(struct cache *c)
{
	fake_put("d/a", "A2");
	cache_changed(c, TOPO_CHANGE_NODE, "d/a", fk.rev);
}

/* During the listing of d: we write d/b. */
static void write_meanwhile(struct cache *c)
{
	fake_put("d/b", "B2");
	struct topo_meta m = {.version = fk.rev, .size = 2, .has_data = true};
	cache_note_put(c, "d/b", "B2", 2, &m);
}

/* A listing without a revision that a change notice raced is applied, and
 * the notice after it: what it names is read again. (It was listed again,
 * three times at most, then not taken at all: a tree another client kept
 * writing was never listed, and its files were ENOENT.) One that our own
 * write raced is listed again. */
static void test_listing_racing_a_notice(void)
{
	fake_clear();
	fake_put("d/a", "A");
	fake_put("d/b", "B");
	struct cache *c = cache_new(&fake_racing_backend, NULL, 60000);
	cache_watch_started(c);
	meanwhile = change_meanwhile;
	meanwhile_cache = c;
	gets = 0;
	int rc;
	CHECK_STR(ls(c, "d", &rc), "a b ");
	CHECK_INT(rc, 0);
	CHECK_INT(fk.lists, 1);
	unsigned char *v = NULL;
	struct topo_meta m = {0};
	CHECK_INT(cache_value(c, "d/a", &v, &m), 0);
	CHECK_MEM(v, m.size, "A2", 2);
	free(v);
	CHECK_INT(gets, 1);
	CHECK_INT(cache_value(c, "d/b", &v, &m), 0);
	CHECK_MEM(v, m.size, "B", 1);
	free(v);
	CHECK_INT(gets, 1); /* d/b as listed */

	cache_invalidate(c, "d");
	meanwhile = write_meanwhile;
	CHECK_STR(ls(c, "d", &rc), "a b ");
	CHECK_INT(fk.lists, 3); /* raced, then clean */
	CHECK_INT(cache_value(c, "d/b", &v, &m), 0);
	CHECK_MEM(v, m.size, "B2", 2);
	free(v);
	CHECK_INT(gets, 1);
	cache_free(c);
}

static struct cache *hooked; /* the cache change_during_check tells */

/* Another client sets d/x while the names-only read is in flight; its data
 * watch tells the cache. */
static void change_during_check(void)
{
	fake_put("d/x", "2");
	cache_changed(hooked, TOPO_CHANGE_NODE, "d/x", -1);
}

/* A child's data notice that comes while a names-only check of its
 * directory is in flight: the listing was not trusted then, so the notice
 * asked for a re-listing instead of marking the child. The names the check
 * reads are unchanged, and it must not call the listing fresh over that
 * request: ZooKeeper tells a change once, and the value would stay old
 * for good (found by integ.zk.kernel_cache's storm of changes). */
static void test_notice_during_kids_check(void)
{
	fake_clear();
	children_calls = 0;
	fake_put("d/x", "1");
	fake_put("d/y", "1");
	struct cache *c = cache_new(&fake_real_backend, NULL, 60000);
	cache_watch_started(c);
	int rc;
	CHECK_STR(ls(c, "d", &rc), "x y ");
	unsigned char *v;
	struct topo_meta m;
	CHECK_INT(cache_value(c, "d/x", &v, &m), 0);
	CHECK(m.size == 1 && v[0] == '1');
	free(v);
	usleep(30 * 1000); /* past OWN_WRITE_GRACE_MS: another client's */
	cache_changed(c, TOPO_CHANGE_CHILDREN, "d", -1);
	hooked = c;
	children_hook = change_during_check;
	CHECK_INT(cache_value(c, "d/x", &v, &m), 0);
	children_hook = NULL;
	CHECK_INT(children_calls, 1);
	CHECK(m.size == 1 && v[0] == '2');
	free(v);
	cache_free(c);
}

/* ZooKeeper: a node created with its children before its child watch was
 * set (kazoo's makepath) is told by a notice of the node alone. Its
 * children must be listed when asked for, not taken for none (its listing
 * counted as fresh, inherited from its parent's). */
static void test_noticed_node_with_children(void)
{
	fake_clear();
	fake_put("s0", "");
	fake_put("s0/a", "A");
	struct cache *c = cache_new(&fake_real_backend, NULL, 60000);
	cache_watch_started(c);
	int rc;
	CHECK_STR(ls(c, "s0", &rc), "a ");
	fake_put("s0/k3", "");
	fake_put("s0/k3/c", "C");
	cache_changed(c, TOPO_CHANGE_NODE, "s0/k3", -1);
	CHECK_STR(ls(c, "s0", &rc), "a k3/ ");
	CHECK_STR(ls(c, "s0/k3", &rc), "c ");
	cache_free(c);
}

/* ---- listings handed over in batches (struct topo_listing_sink) ---- */

struct counting_sink {
	size_t taken, takes, restarts;
	int fail; /* returned by take once non-zero */
};

static int count_take(void *ctx, const struct topo_entry *e, size_t n)
{
	struct counting_sink *cs = ctx;
	(void)e;
	if (cs->fail)
		return cs->fail;
	cs->taken += n;
	cs->takes++;
	return 0;
}

static void count_restart(void *ctx)
{
	((struct counting_sink *)ctx)->restarts++;
}

static int add_numbered(struct topo_listing *l, size_t i)
{
	char path[32];
	int len = snprintf(path, sizeof(path), "d/k%06zu", i);
	struct topo_meta m = {.size = 1, .has_data = true};
	unsigned char *v = malloc(1);
	if (!v)
		return -ENOMEM;
	*v = 'v';
	int rc = topo_listing_add(l, path, (size_t)len, &m, v);
	if (rc)
		free(v); /* a failed add leaves the value with its caller */
	return rc;
}

static void test_listing_batches(void)
{
	struct counting_sink cs = {0};
	const struct topo_listing_sink sink = {count_take, count_restart, &cs};
	struct topo_listing l = {.sink = &sink};
	for (size_t i = 0; i < 2 * TOPO_LISTING_BATCH + 10; i++)
		CHECK_INT(add_numbered(&l, i), 0);
	/* two full batches taken; the rest held until flushed */
	CHECK_INT(cs.taken, 2 * TOPO_LISTING_BATCH);
	CHECK_INT(cs.takes, 2);
	CHECK_INT(l.count, 10);
	CHECK_INT(topo_listing_flush(&l), 0);
	CHECK_INT(cs.taken, 2 * TOPO_LISTING_BATCH + 10);
	CHECK_INT(l.count, 0);
	CHECK_INT(topo_listing_flush(&l), 0); /* nothing held: no take */
	CHECK_INT(cs.takes, 3);
	l.revision = 7;
	topo_listing_restart(&l);
	CHECK_INT(cs.restarts, 1);
	CHECK_INT(l.revision, 0);
	CHECK(l.sink == &sink);
	/* the sink's error ends the add that would overflow the batch */
	for (size_t i = 0; i < TOPO_LISTING_BATCH; i++)
		CHECK_INT(add_numbered(&l, i), 0);
	cs.fail = -EIO;
	CHECK_INT(add_numbered(&l, 0), -EIO);
	CHECK_INT(l.count, 0); /* the batch freed anyway, the entry not added */
	CHECK_INT(add_numbered(&l, 1), 0);
	CHECK_INT(topo_listing_flush(&l), -EIO);
	CHECK_INT(l.count, 0);
	topo_listing_free(&l);
	CHECK(l.sink == NULL && l.entries == NULL);

	/* without a sink nothing is handed over */
	struct topo_listing whole = {0};
	for (size_t i = 0; i < 2 * TOPO_LISTING_BATCH; i++)
		CHECK_INT(add_numbered(&whole, i), 0);
	CHECK_INT(whole.count, 2 * TOPO_LISTING_BATCH);
	CHECK_INT(topo_listing_flush(&whole), 0);
	CHECK_INT(whole.count, 2 * TOPO_LISTING_BATCH);
	topo_listing_free(&whole);
}

#define BIG (5 * TOPO_LISTING_BATCH / 2)

/* A store of BIG keys d/k000000.. in descending order whose first listing
 * starts over half-way (etcd's compacted revision), after handing over
 * keys that are gone by the second reading. */
static int big_lists;

static int fake_big_list(struct topo_store *s, const char *path,
			 struct topo_listing *out)
{
	(void)s;
	(void)path;
	topo_listing_restart(out);
	if (big_lists++ == 0) {
		for (size_t i = 0; i < BIG; i++) {
			char gone[32];
			int len = snprintf(gone, sizeof(gone), "gone/%zu", i);
			struct topo_meta m = {.has_data = true};
			int rc =
			    topo_listing_add(out, gone, (size_t)len, &m, NULL);
			if (rc)
				return rc;
		}
		topo_listing_restart(out);
	}
	for (size_t i = BIG; i-- > 0;) {
		int rc = add_numbered(out, i);
		if (rc)
			return rc;
	}
	out->revision = 3;
	return 0;
}

static const struct topo_backend fake_big_backend = {
    .name = "fakebig",
    .list = fake_big_list,
};

struct in_order {
	size_t n;
	char last[64];
	bool sorted;
};

static int check_order(void *arg, const char *name, const struct cache_stat *st)
{
	struct in_order *o = arg;
	(void)st;
	if (o->n && strcmp(o->last, name) >= 0)
		o->sorted = false;
	snprintf(o->last, sizeof(o->last), "%s", name);
	o->n++;
	return 0;
}

static void test_listing_built_in_batches(void)
{
	big_lists = 0;
	struct cache *c = cache_new(&fake_big_backend, NULL, 60000);
	int rc;
	CHECK_STR(ls(c, "", &rc), "d/ "); /* nothing of the first reading */
	CHECK_INT(rc, 0);
	CHECK_INT(big_lists, 1);
	struct in_order o = {.sorted = true};
	CHECK_INT(cache_list_dir(c, "d", check_order, &o), 0);
	CHECK_INT(o.n, BIG);
	CHECK(o.sorted);
	CHECK_INT(big_lists, 1);
	char last[32];
	snprintf(last, sizeof(last), "k%06d", BIG - 1);
	CHECK_STR(o.last, last);
	unsigned char *v;
	struct topo_meta m;
	CHECK_INT(cache_value(c, "d/k000000", &v, &m), 0);
	CHECK_MEM(v, m.size, "v", 1);
	free(v);
	struct cache_stat st;
	CHECK_INT(cache_stat(c, "gone", &st), -ENOENT);
	cache_free(c);
}

int main(void)
{
	test_shape();
	test_freshness();
	test_own_writes();
	test_subtree();
	test_child_notices();
	test_derived_size();
	test_last_child_after_child_notice();
	test_child_notice_on_a_file();
	test_notice_before_own_write();
	test_denied_node();
	test_move_dir();
	test_rename_notices();
	test_get_racing_a_relisting();
	test_put_then_last_child_deleted();
	test_notice_grows_listing();
	test_get_racing_a_delete();
	test_listing_racing_a_notice();
	test_noticed_node_with_children();
	test_notice_during_kids_check();
	test_listing_batches();
	test_listing_built_in_batches();
	fake_clear();
	return check_report();
}
