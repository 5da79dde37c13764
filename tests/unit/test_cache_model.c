/* Unit tests of the cache's packed structures (fs/cache.c: nodes with their
 * names inline, child arrays and a single child in the node, values and
 * packed metadata) and a randomized test of the whole cache against a
 * simple model: a fake etcd-like store (keys only, directories implicit)
 * changed by our own writes, by other clients (with their change notices)
 * and by directory renames, the cache checked after every step against the
 * store. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../fs/cache.h"
#include "../../fs/cache_internal.h"
#include "../../fs/path.h"
#include "check.h"
#include "meta_util.h"

/* ---- packed metadata ---- */

static void check_meta_roundtrip(const struct topo_meta *m)
{
	struct cnode *n = cache_node_new("x", 1);
	unsigned char value[300];
	for (size_t i = 0; i < sizeof(value); i++)
		value[i] = (unsigned char)(i * 7);
	CHECK_INT(cache_node_set_value(n, value, m), 0);
	struct topo_meta got;
	const unsigned char *v = cache_node_value(n, &got);
	CHECK(n->has_data);
	CHECK(same_meta(&got, m));
	if (m->size)
		CHECK_MEM(v, got.size, value, m->size);
	else
		CHECK(v == NULL);
	cache_node_clear_value(n);
	cache_node_meta(n, &got);
	CHECK(!n->has_data && got.version == 0 && got.size == 0);
	cache_node_free(n);
}

static int64_t rnd64(void)
{
	uint64_t v = rnd_u64();
	switch (rand() % 4) {
	case 0:
		return (int64_t)(v % 1000);
	case 1:
		return -(int64_t)(v % 1000);
	default:
		return (int64_t)v;
	}
}

static void test_meta_packing(void)
{
	struct topo_meta m = {0};
	check_meta_roundtrip(&m);
	m = (struct topo_meta){.version = INT64_MAX,
			       .create_id = INT64_MIN,
			       .modify_id = INT64_MIN,
			       .change_count = INT64_MAX,
			       .child_count = -1,
			       .num_children = 1,
			       .ctime_ns = INT64_MAX,
			       .mtime_ns = INT64_MIN,
			       .lease = -1,
			       .size = 300,
			       .ephemeral = true,
			       .has_data = true,
			       .real_dir = true,
			       .denied = true};
	check_meta_roundtrip(&m);
	srand(25);
	for (int i = 0; i < 2000; i++) {
		m = (struct topo_meta){.version = rnd64(),
				       .create_id = rnd64(),
				       .modify_id = rnd64(),
				       .change_count = rnd64(),
				       .child_count = rnd64(),
				       .num_children = rnd64(),
				       .ctime_ns = rnd64(),
				       .mtime_ns = rnd64(),
				       .lease = rnd64(),
				       .size = (uint64_t)(rand() % 301),
				       .ephemeral = rand() & 1,
				       .has_data = rand() & 1,
				       .real_dir = rand() & 1,
				       .denied = rand() & 1};
		check_meta_roundtrip(&m);
	}
}

/* ---- nodes and child arrays ---- */

static void test_children(void)
{
	struct cnode *top = cache_node_new("top", 3);
	CHECK_STR(top->name, "top");
	char names[200][8];
	int order[200];
	for (int i = 0; i < 200; i++) {
		snprintf(names[i], sizeof(names[i]), "k%03d", i);
		order[i] = i;
	}
	srand(7);
	for (int i = 199; i > 0; i--) {
		int j = rand() % (i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (int i = 0; i < 200; i++) {
		const char *nm = names[order[i]];
		struct cnode *k = cache_kid_get(top, nm, strlen(nm));
		CHECK(k && !strcmp(k->name, nm));
		CHECK(cache_kid_get(top, nm, strlen(nm)) == k); /* no dup */
	}
	CHECK_INT(top->nkids, 200);
	for (int i = 0; i < 200; i++)
		CHECK_STR(cache_kids(top)[i]->name, names[i]); /* sorted */
	/* a name given with a length, not NUL-terminated there */
	CHECK(cache_kid_find(top, "k050xyz", 4) == cache_kids(top)[50]);
	CHECK(cache_kid_find(top, "k05", 3) == NULL);
	/* remove every other one */
	for (int i = 0; i < 200; i += 2) {
		struct cnode *k = cache_kid_find(top, names[i], 4);
		cache_kid_remove(top, k);
		cache_node_free(k);
	}
	CHECK_INT(top->nkids, 100);
	cache_node_trim(top);
	CHECK_INT(top->capkids, 100);
	for (int i = 0; i < 100; i++)
		CHECK_STR(cache_kids(top)[i]->name, names[2 * i + 1]);
	/* renaming a detached node: a longer name, children kept */
	struct cnode *k = cache_kids(top)[0];
	cache_kid_remove(top, k);
	CHECK(cache_kid_get(k, "below", 5) != NULL);
	k = cache_node_rename(k, "a-much-longer-name-than-before");
	CHECK(k && !strcmp(k->name, "a-much-longer-name-than-before"));
	CHECK(k && k->nkids == 1 && !strcmp(cache_kids(k)[0]->name, "below"));
	CHECK(k && k->capkids == 1 && k->kids.one == cache_kids(k)[0]);
	bool found;
	size_t at = cache_kid_index(top, k->name, strlen(k->name), &found);
	CHECK(!found);
	CHECK_INT(cache_kid_insert_at(top, at, k), 0);
	CHECK(cache_kids(top)[0] == k);
	/* walking with create makes the missing nodes */
	struct cnode *deep = cache_walk(top, "x/y/z", true);
	CHECK(deep && !strcmp(deep->name, "z"));
	CHECK(cache_walk(top, "x/y/z", false) == deep);
	CHECK(cache_walk(top, "x/q", false) == NULL);
	cache_node_free(top);
}

/* ---- one child in the node (struct cnode, cache_kids) ---- */

/* n's children's names in order, each followed by a space, read through
 * the accessor. */
static const char *kid_names(const struct cnode *n)
{
	static char buf[512];
	buf[0] = '\0';
	for (size_t i = 0; i < n->nkids; i++) {
		strcat(buf, cache_kids_const(n)[i]->name);
		strcat(buf, " ");
	}
	return buf;
}

/* Take child name out of n and free it. */
static void drop_kid(struct cnode *n, const char *name)
{
	struct cnode *k = cache_kid_find(n, name, strlen(name));
	CHECK(k != NULL);
	cache_kid_remove(n, k);
	cache_node_free(k);
}

/* Every transition of a node's children between none, one (in the node,
 * `kids.one`: no allocation) and many (an array, `kids.many`), by insert,
 * remove and trim; under ASan, any array leaked, freed twice or read
 * past its end fails too. */
static void test_one_kid_node(void)
{
	struct cnode *d = cache_node_new("d", 1);
	CHECK(d->nkids == 0 && d->capkids == 0 && d->kids.many == NULL);
	CHECK_STR(kid_names(d), "");
	CHECK(cache_kid_find(d, "b", 1) == NULL);

	/* 0 -> 1: in the node */
	struct cnode *b = cache_kid_get(d, "b", 1);
	CHECK(b && !strcmp(b->name, "b"));
	CHECK(d->nkids == 1 && d->capkids == 1 && d->kids.one == b);
	CHECK(cache_kids(d) == &d->kids.one);
	CHECK(cache_kids_const(d) == &d->kids.one);
	CHECK_STR(kid_names(d), "b ");
	CHECK(cache_kid_find(d, "b", 1) == b);
	CHECK(cache_kid_get(d, "b", 1) == b);
	CHECK(cache_kid_find(d, "a", 1) == NULL);
	CHECK(cache_kid_find(d, "c", 1) == NULL);

	/* 1 -> 2, the new one first: an array, the inline kid moved in */
	struct cnode *a = cache_kid_get(d, "a", 1);
	CHECK(d->nkids == 2 && d->capkids == 2);
	CHECK(d->kids.many != NULL && d->kids.many[0] == a &&
	      d->kids.many[1] == b);
	CHECK(cache_kids(d) == d->kids.many);
	CHECK_STR(kid_names(d), "a b ");
	CHECK(cache_kid_find(d, "a", 1) == a && cache_kid_find(d, "b", 1) == b);

	/* 2 -> 1 by a delete: the array stays until a trim */
	drop_kid(d, "a");
	CHECK(d->nkids == 1 && d->capkids == 2 && d->kids.many[0] == b);
	CHECK_STR(kid_names(d), "b ");
	CHECK(cache_kid_find(d, "b", 1) == b);
	CHECK(cache_kid_find(d, "a", 1) == NULL);

	/* 1 -> 0 by a delete, then 0 -> 1 again in the same array */
	drop_kid(d, "b");
	CHECK(d->nkids == 0 && d->capkids == 2);
	CHECK_STR(kid_names(d), "");
	CHECK(cache_kid_find(d, "b", 1) == NULL);
	struct cnode *c = cache_kid_get(d, "c", 1);
	CHECK(d->nkids == 1 && d->capkids == 2 && d->kids.many[0] == c);

	/* trim with one: the array freed, the kid in the node */
	cache_node_trim(d);
	CHECK(d->nkids == 1 && d->capkids == 1 && d->kids.one == c);
	CHECK_STR(kid_names(d), "c ");
	CHECK(cache_kid_find(d, "c", 1) == c);

	/* 1 -> 0 in the node: the slot cleared; trim with none: capacity 0 */
	drop_kid(d, "c");
	CHECK(d->nkids == 0 && d->capkids == 1 && d->kids.one == NULL);
	CHECK_STR(kid_names(d), "");
	cache_node_trim(d);
	CHECK(d->nkids == 0 && d->capkids == 0 && d->kids.one == NULL);

	/* 0 -> 1 -> 2 -> 3, each new one after, then between */
	struct cnode *x = cache_kid_get(d, "x", 1);
	CHECK(d->capkids == 1 && d->kids.one == x);
	struct cnode *z = cache_kid_get(d, "z", 1);
	CHECK(d->capkids == 2 && d->kids.many[0] == x && d->kids.many[1] == z);
	struct cnode *y = cache_kid_get(d, "y", 1);
	CHECK(d->nkids == 3 && d->capkids == 4);
	CHECK_STR(kid_names(d), "x y z ");
	/* trim with many: the array to size, the order kept */
	cache_node_trim(d);
	CHECK(d->nkids == 3 && d->capkids == 3);
	CHECK(d->kids.many[0] == x && d->kids.many[1] == y &&
	      d->kids.many[2] == z);
	CHECK_STR(kid_names(d), "x y z ");

	/* trim reaches below: x holds p and q, then p only (an array of
	 * two); z holds one in the node; d gets down to x alone */
	struct cnode *pp = cache_kid_get(x, "p", 1);
	CHECK(cache_kid_get(x, "q", 1) != NULL);
	drop_kid(x, "q");
	CHECK(x->nkids == 1 && x->capkids == 2);
	struct cnode *t = cache_kid_get(z, "Tablet", 6);
	drop_kid(d, "y");
	CHECK_STR(kid_names(d), "x z ");
	CHECK(d->capkids == 3);
	cache_node_trim(d);
	CHECK(d->nkids == 2 && d->capkids == 2);
	CHECK(x->nkids == 1 && x->capkids == 1 && x->kids.one == pp);
	CHECK(z->nkids == 1 && z->capkids == 1 && z->kids.one == t);
	CHECK_STR(kid_names(x), "p ");
	CHECK_STR(kid_names(z), "Tablet ");
	CHECK(cache_walk(d, "z/Tablet", false) == t);
	CHECK(cache_walk(d, "x/p", false) == pp);

	/* a one-child subtree renamed (the node reallocated, its kid with
	 * it) and put back; then d down to it alone and trimmed */
	cache_kid_remove(d, z);
	CHECK(d->nkids == 1 && d->capkids == 2 && d->kids.many[0] == x);
	z = cache_node_rename(z, "zone1-0000000101-a-longer-name");
	CHECK(z && z->nkids == 1 && z->capkids == 1 && z->kids.one == t);
	CHECK_STR(kid_names(z), "Tablet ");
	bool found;
	size_t at = cache_kid_index(d, z->name, strlen(z->name), &found);
	CHECK(!found && at == 1);
	CHECK_INT(cache_kid_insert_at(d, at, z), 0);
	CHECK_STR(kid_names(d), "x zone1-0000000101-a-longer-name ");
	CHECK(cache_walk(d, "zone1-0000000101-a-longer-name/Tablet", false) ==
	      t);
	drop_kid(d, "x");
	cache_node_trim(d);
	CHECK(d->nkids == 1 && d->capkids == 1 && d->kids.one == z);
	CHECK_STR(kid_names(d), "zone1-0000000101-a-longer-name ");

	/* freed with a kid in the node, which holds one in the node */
	cache_node_free(d);
}

/* ---- the fake store ---- */

#define MAXKEYS 1024

static struct store {
	char *path[MAXKEYS];
	char *value[MAXKEYS];
	int64_t version[MAXKEYS];
	size_t n;
	int64_t rev;
} st;

static int find(const char *path)
{
	for (size_t i = 0; i < st.n; i++)
		if (!strcmp(st.path[i], path))
			return (int)i;
	return -1;
}

static int64_t store_put(const char *path, const char *value)
{
	int i = find(path);
	if (i < 0) {
		if (st.n == MAXKEYS)
			return 0;
		i = (int)st.n++;
		st.path[i] = strdup(path);
		st.value[i] = NULL;
	}
	free(st.value[i]);
	st.value[i] = strdup(value);
	st.version[i] = ++st.rev;
	return st.rev;
}

static void store_del(const char *path)
{
	int i = find(path);
	if (i < 0)
		return;
	free(st.path[i]);
	free(st.value[i]);
	st.n--;
	st.path[i] = st.path[st.n];
	st.value[i] = st.value[st.n];
	st.version[i] = st.version[st.n];
}

/* An empty store, its revision back at 0. */
static void store_clear(void)
{
	while (st.n)
		store_del(st.path[0]);
	st.rev = 0;
}

/* The metadata the store gives the value of `version` (all fields used,
 * so that the packing is checked too). */
static struct topo_meta meta_for(int64_t v, size_t size)
{
	return (struct topo_meta){.version = v,
				  .modify_id = v,
				  .create_id = v / 2,
				  .change_count = v % 7,
				  .ctime_ns = v * 999983,
				  .mtime_ns = v * 1000003,
				  .lease = v % 3 ? 0 : v,
				  .ephemeral = v % 3 == 0,
				  .size = size,
				  .has_data = true};
}

static void meta_of(int i, struct topo_meta *m)
{
	*m = meta_for(st.version[i], strlen(st.value[i]));
}

static int fake_list(struct topo_store *s, const char *path,
		     struct topo_listing *out)
{
	(void)s;
	for (size_t i = 0; i < st.n; i++) {
		if (!path_within(st.path[i], path))
			continue;
		struct topo_meta m;
		meta_of((int)i, &m);
		unsigned char *v =
		    m.size ? (unsigned char *)strdup(st.value[i]) : NULL;
		topo_listing_add(out, st.path[i], strlen(st.path[i]), &m, v);
	}
	out->revision = st.rev;
	topo_listing_sort(out);
	return 0;
}

static int fake_get(struct topo_store *s, const char *path,
		    struct topo_entry *out)
{
	(void)s;
	int i = find(path);
	if (i < 0)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	out->path = strdup(path);
	meta_of(i, &out->meta);
	out->value =
	    out->meta.size ? (unsigned char *)strdup(st.value[i]) : NULL;
	return 0;
}

static const struct topo_backend fake_backend = {
    .name = "fake",
    .list = fake_list,
    .get = fake_get,
};

/* A cache of be whose store's watch has started (every listing kept until
 * a notice). */
static struct cache *watched_cache(const struct topo_backend *be)
{
	struct cache *c = cache_new(be, NULL, 600000);
	cache_watch_started(c);
	return c;
}

/* ---- the model: what the cache must show of the store ---- */

/* Whether some key is strictly below dir. */
static bool has_below(const char *dir)
{
	for (size_t i = 0; i < st.n; i++)
		if (path_within(st.path[i], dir) && strcmp(st.path[i], dir))
			return true;
	return false;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The listing of dir as the model sees it: "name " or "name/ " per child
 * in name order, then ".topofs-data " if dir is a key too. */
static void model_ls(const char *dir, char *out, size_t outlen)
{
	char *names[MAXKEYS];
	size_t count = 0, plen = strlen(dir);
	for (size_t i = 0; i < st.n; i++) {
		const char *k = st.path[i];
		if (!path_within(k, dir) || !strcmp(k, dir))
			continue;
		const char *rest = k + (plen ? plen + 1 : 0);
		size_t len = strcspn(rest, "/");
		char *name = strndup(rest, len);
		bool dup = false;
		for (size_t j = 0; j < count && !dup; j++)
			dup = !strcmp(names[j], name);
		if (dup)
			free(name);
		else
			names[count++] = name;
	}
	qsort(names, count, sizeof(names[0]), cmp_str);
	out[0] = '\0';
	for (size_t j = 0; j < count; j++) {
		char p[256];
		path_join(p, sizeof(p), dir, names[j]);
		strncat(out, names[j], outlen - strlen(out) - 1);
		strncat(out, has_below(p) ? "/ " : " ",
			outlen - strlen(out) - 1);
		free(names[j]);
	}
	if (*dir && find(dir) >= 0)
		strncat(out, ".topofs-data ", outlen - strlen(out) - 1);
}

static int add_name(void *arg, const char *name, const struct cache_stat *s)
{
	char *buf = arg;
	strcat(buf, name);
	strcat(buf, s->is_dir ? "/ " : " ");
	return 0;
}

/* How many nodes of the cache's trees had one child in the node, one in
 * an array (one left of more), more, over a model run's steps. */
static struct shapes {
	size_t one_inline, one_in_array, many;
} shapes;

/* The children of every node below n: as many as the capacity at most,
 * none NULL, in strictly ascending order, the one in the node when
 * capkids <= 1; counted in shapes. The number of nodes wrong. */
static int check_shape(const struct cnode *n)
{
	int bad = n->nkids > n->capkids;
	struct cnode *const *k = cache_kids_const(n);
	if (n->nkids == 1 && n->capkids <= 1) {
		bad += n->kids.one != k[0];
		shapes.one_inline++;
	} else if (n->nkids == 1) {
		shapes.one_in_array++;
	} else if (n->nkids > 1) {
		shapes.many++;
	}
	for (size_t i = 0; i < n->nkids; i++) {
		bad += !k[i] || (i && strcmp(k[i - 1]->name, k[i]->name) >= 0);
		if (k[i])
			bad += check_shape(k[i]);
	}
	return bad;
}

/* Compare the cache with the store: every directory's listing, every
 * key's value and version, the shape of the tree. */
static void check_against_model(struct cache *c, int step)
{
	static char got[16384], want[16384];
	char dirs[MAXKEYS + 1][64];
	size_t ndirs = 0;
	strcpy(dirs[ndirs++], "");
	for (size_t i = 0; i < st.n; i++) {
		char p[64];
		snprintf(p, sizeof(p), "%s", st.path[i]);
		while (path_parent_len(p)) {
			p[path_parent_len(p)] = '\0';
			bool dup = false;
			for (size_t j = 0; j < ndirs && !dup; j++)
				dup = !strcmp(dirs[j], p);
			if (!dup && ndirs < MAXKEYS + 1)
				strcpy(dirs[ndirs++], p);
		}
	}
	for (size_t j = 0; j < ndirs; j++) {
		got[0] = '\0';
		int rc = cache_list_dir(c, dirs[j], add_name, got);
		model_ls(dirs[j], want, sizeof(want));
		CHECK_INT(rc, 0);
		if (strcmp(got, want))
			fprintf(stderr, "step %d: dir '%s'\n", step, dirs[j]);
		CHECK_STR(got, want);
	}
	for (size_t i = 0; i < st.n; i++) {
		unsigned char *v;
		struct topo_meta m;
		int rc = cache_value(c, st.path[i], &v, &m);
		CHECK_INT(rc, 0);
		if (rc)
			continue;
		if (m.size != strlen(st.value[i]) ||
		    (m.size && memcmp(v, st.value[i], m.size)) ||
		    m.version != st.version[i])
			fprintf(stderr, "step %d: key '%s'\n", step,
				st.path[i]);
		if (m.size)
			CHECK_MEM(v, m.size, st.value[i], strlen(st.value[i]));
		else
			CHECK_INT(strlen(st.value[i]), 0);
		CHECK_INT(m.version, st.version[i]);
		struct topo_meta want_meta;
		meta_of((int)i, &want_meta);
		CHECK(same_meta(&m, &want_meta));
		free(v);
	}
	int bad = check_shape(c->root);
	if (bad)
		fprintf(stderr, "step %d: tree's shape\n", step);
	CHECK_INT(bad, 0);
}

static const char *const SEGS[] = {"a", "b", "c", "dd"};

static void random_key(char *out, size_t len)
{
	int depth = 1 + rand() % 3;
	out[0] = '\0';
	for (int d = 0; d < depth; d++) {
		if (d)
			strncat(out, "/", len - strlen(out) - 1);
		strncat(out, SEGS[rand() % 4], len - strlen(out) - 1);
	}
}

/* A random existing directory other than the root, or false. */
static bool random_dir(char *out, size_t len)
{
	if (!st.n)
		return false;
	snprintf(out, len, "%s", st.path[rand() % st.n]);
	if (!path_parent_len(out))
		return false;
	out[path_parent_len(out)] = '\0';
	return true;
}

/* Rename directory `from` in the store to `to` (free), as topofs does:
 * the cache's subtree moved first, then the store, then the notices. */
static void move_dir(struct cache *c, const char *from, const char *to)
{
	cache_move_subtree(c, from, to);
	size_t flen = strlen(from);
	char *moved[MAXKEYS];
	size_t nmoved = 0;
	for (size_t i = 0; i < st.n; i++)
		if (path_within(st.path[i], from))
			moved[nmoved++] = strdup(st.path[i]);
	for (size_t j = 0; j < nmoved; j++) {
		char np[128];
		snprintf(np, sizeof(np), "%s%s", to, moved[j] + flen);
		int i = find(moved[j]);
		char *value = strdup(st.value[i]);
		store_del(moved[j]);
		int64_t v = store_put(np, value);
		free(value);
		cache_changed(c, TOPO_CHANGE_DELETED, moved[j], v);
		cache_changed(c, TOPO_CHANGE_NODE, np, v);
		free(moved[j]);
	}
}

/* Rename directory `from` to a new sibling or to the top (move_dir). */
static void rename_dir(struct cache *c, const char *from, int serial)
{
	char to[64];
	if (rand() % 2)
		snprintf(to, sizeof(to), "%.*s%sm%d",
			 (int)path_parent_len(from), from,
			 path_parent_len(from) ? "/" : "", serial);
	else
		snprintf(to, sizeof(to), "m%d", serial);
	if (find(to) >= 0 || has_below(to))
		return;
	move_dir(c, from, to);
}

/* ---- one child in the node, through listings, notices and renames ---- */

/* The listing of dir as cache_list_dir gives it (add_name's format). */
static const char *ls(struct cache *c, const char *dir, int *rc)
{
	static char buf[1024];
	buf[0] = '\0';
	*rc = cache_list_dir(c, dir, add_name, buf);
	return buf;
}

/* Whether the node at p holds exactly the children `names` (kid_names'
 * format) with capacity cap (0: any): 1 is one child in the node. */
static bool holds(struct cache *c, const char *p, const char *names,
		  uint32_t cap)
{
	struct cnode *n = cache_walk(c->root, p, false);
	if (!n) {
		fprintf(stderr, "'%s': no node\n", p);
		return false;
	}
	bool ok = !strcmp(kid_names(n), names) && n->nkids <= n->capkids;
	if (n->nkids == 1 && cap == 1)
		ok = ok && n->capkids == 1 && n->kids.one == cache_kids(n)[0];
	if (cap)
		ok = ok && n->capkids == cap;
	if (!ok)
		fprintf(stderr, "'%s': kids '%s' (%u of %u), want '%s' (%u)\n",
			p, kid_names(n), n->nkids, n->capkids, names, cap);
	return ok;
}

/* A Vitess-like tree whose directories hold one child each, then many,
 * then one again: listings (built and trimmed), notices, a mkdir carried
 * across a re-listing, renames of one-child subtrees. */
static void test_one_kid_listings(void)
{
	store_clear();
	store_put("ks/tablets/t1/Tablet", "T1");
	struct cache *c = watched_cache(&fake_backend);
	int rc;
	/* a listing that brings one child at every level */
	CHECK_STR(ls(c, "", &rc), "ks/ ");
	CHECK_INT(rc, 0);
	CHECK(holds(c, "", "ks ", 1));
	CHECK(holds(c, "ks", "tablets ", 1));
	CHECK(holds(c, "ks/tablets", "t1 ", 1));
	CHECK(holds(c, "ks/tablets/t1", "Tablet ", 1));
	CHECK(holds(c, "ks/tablets/t1/Tablet", "", 0));
	CHECK_STR(ls(c, "ks/tablets/t1", &rc), "Tablet ");
	check_against_model(c, 0);

	/* a listing that brings many */
	store_put("ks/tablets/t3/Tablet", "T3");
	store_put("ks/tablets/t2/Tablet", "T2");
	store_put("ks/tablets/t0/Tablet", "T0");
	cache_invalidate(c, "ks/tablets");
	CHECK_STR(ls(c, "ks/tablets", &rc), "t0/ t1/ t2/ t3/ ");
	CHECK(holds(c, "ks/tablets", "t0 t1 t2 t3 ", 4));
	CHECK(holds(c, "ks/tablets/t0", "Tablet ", 1));
	CHECK(holds(c, "ks/tablets/t3", "Tablet ", 1));
	store_put("ks/tablets/t4/Tablet", "T4");
	cache_invalidate(c, "ks");
	CHECK_STR(ls(c, "ks/tablets", &rc), "t0/ t1/ t2/ t3/ t4/ ");
	CHECK(holds(c, "ks", "tablets ", 1));
	CHECK(holds(c, "ks/tablets", "t0 t1 t2 t3 t4 ", 5)); /* trimmed */
	check_against_model(c, 0);

	/* and one again */
	for (int i = 0; i <= 4; i++) {
		char k[64];
		snprintf(k, sizeof(k), "ks/tablets/t%d/Tablet", i);
		if (i != 2)
			store_del(k);
	}
	cache_invalidate(c, "ks/tablets");
	CHECK_STR(ls(c, "ks/tablets", &rc), "t2/ ");
	CHECK(holds(c, "ks/tablets", "t2 ", 1));
	check_against_model(c, 0);

	/* 1 -> 2 -> 1 -> 2 by notices: another client's creates and delete */
	int64_t v = store_put("ks/tablets/t5/Tablet", "T5");
	cache_changed(c, TOPO_CHANGE_NODE, "ks/tablets/t5/Tablet", v);
	CHECK(holds(c, "ks/tablets", "t2 t5 ", 2));
	CHECK_STR(ls(c, "ks/tablets", &rc), "t2/ t5/ ");
	CHECK(holds(c, "ks/tablets/t5", "Tablet ", 1));
	store_del("ks/tablets/t2/Tablet");
	cache_changed(c, TOPO_CHANGE_DELETED, "ks/tablets/t2/Tablet", ++st.rev);
	CHECK_STR(ls(c, "ks/tablets", &rc), "t5/ ");
	CHECK(holds(c, "ks/tablets", "t5 ", 2)); /* the array stays */
	v = store_put("ks/tablets/t1/Tablet", "T1b");
	cache_changed(c, TOPO_CHANGE_NODE, "ks/tablets/t1/Tablet", v);
	CHECK_STR(ls(c, "ks/tablets", &rc), "t1/ t5/ ");
	CHECK(holds(c, "ks/tablets", "t1 t5 ", 2));
	check_against_model(c, 0);

	/* a directory made here below a one-child one: 1 -> 2, kept across
	 * a re-listing (carry_local_dirs) */
	CHECK_INT(cache_mkdir(c, "ks/tablets/t5/new", false), 0);
	CHECK(holds(c, "ks/tablets/t5", "Tablet new ", 2));
	cache_invalidate(c, "ks/tablets");
	CHECK_STR(ls(c, "ks/tablets/t5", &rc), "Tablet new/ ");
	CHECK(holds(c, "ks/tablets/t5", "Tablet new ", 2));
	CHECK(holds(c, "ks/tablets/t1", "Tablet ", 1));
	CHECK_INT(cache_rmdir(c, "ks/tablets/t5/new"), 0);
	CHECK_STR(ls(c, "ks/tablets/t5", &rc), "Tablet ");
	CHECK(holds(c, "ks/tablets/t5", "Tablet ", 2));

	/* a one-child subtree renamed to a longer name, then away from its
	 * parent (2 -> 1), then the whole one-child chain from the root */
	move_dir(c, "ks/tablets/t1", "ks/tablets/zone1-0000000101");
	CHECK_STR(ls(c, "ks/tablets", &rc), "t5/ zone1-0000000101/ ");
	CHECK(holds(c, "ks/tablets/zone1-0000000101", "Tablet ", 1));
	check_against_model(c, 0);
	move_dir(c, "ks/tablets/t5", "moved");
	CHECK_STR(ls(c, "", &rc), "ks/ moved/ ");
	CHECK(holds(c, "ks/tablets", "zone1-0000000101 ", 2));
	CHECK(holds(c, "moved", "Tablet ", 1));
	check_against_model(c, 0);
	move_dir(c, "moved", "ks/tablets/t5");
	move_dir(c, "ks", "keyspace-with-a-longer-name");
	CHECK_STR(ls(c, "", &rc), "keyspace-with-a-longer-name/ ");
	CHECK(holds(c, "", "keyspace-with-a-longer-name ", 2));
	CHECK(holds(c, "keyspace-with-a-longer-name", "tablets ", 1));
	CHECK(holds(c, "keyspace-with-a-longer-name/tablets",
		    "t5 zone1-0000000101 ", 2));
	check_against_model(c, 0);

	/* 1 -> 0 at every level: the tree empty */
	store_clear();
	cache_changed(c, TOPO_CHANGE_ALL, "", 0);
	CHECK_STR(ls(c, "", &rc), "");
	CHECK(holds(c, "", "", 0));
	cache_free(c);
}

/* ZooKeeper-like: directories are nodes of their own, real_dir when they
 * have children (the model's store, as fake_real_backend's). */
static int fake_real_list(struct topo_store *s, const char *path,
			  struct topo_listing *out)
{
	int rc = fake_list(s, path, out);
	for (size_t i = 0; !rc && i < out->count; i++)
		out->entries[i].meta.real_dir = has_below(out->entries[i].path);
	return rc;
}

static int fake_real_get(struct topo_store *s, const char *path,
			 struct topo_entry *out)
{
	int rc = fake_get(s, path, out);
	if (!rc)
		out->meta.real_dir = has_below(path);
	return rc;
}

static const struct topo_backend fake_real_backend = {
    .name = "fakereal",
    .caps = TOPO_CAP_REAL_DIRS,
    .list = fake_real_list,
    .get = fake_real_get,
};

/* A stale directory node whose get() says it has no children any more
 * drops its one child (drop_kids), and gains one back. */
static void test_one_kid_dropped(void)
{
	store_clear();
	store_put("tablets", "");
	store_put("tablets/t1", "");
	store_put("tablets/t1/Tablet", "x");
	struct cache *c = watched_cache(&fake_real_backend);
	int rc;
	CHECK_STR(ls(c, "tablets", &rc), "t1/ ");
	CHECK(holds(c, "tablets", "t1 ", 1));
	CHECK(holds(c, "tablets/t1", "Tablet ", 1));
	store_del("tablets/t1/Tablet");
	int64_t v = store_put("tablets/t1", "");
	cache_changed(c, TOPO_CHANGE_NODE, "tablets/t1", v);
	struct cache_stat cs;
	CHECK_INT(cache_stat(c, "tablets/t1", &cs), 0);
	CHECK(!cs.is_dir);
	CHECK(holds(c, "tablets/t1", "", 1));
	CHECK_STR(ls(c, "tablets", &rc), "t1 ");
	store_put("tablets/t1/Tablet", "y");
	cache_changed(c, TOPO_CHANGE_CHILDREN, "tablets/t1", -1);
	/* a file that gained a child: the kernel looks it up first */
	CHECK_INT(cache_stat(c, "tablets/t1", &cs), 0);
	CHECK(cs.is_dir);
	CHECK_STR(ls(c, "tablets/t1", &rc), "Tablet ");
	CHECK(holds(c, "tablets/t1", "Tablet ", 1));
	cache_free(c);
	store_clear();
}

/* A notice of a node -o writeback made that the store has not confirmed
 * keeps no version and so no ext (its batch marks it stale again without
 * one: 48 bytes per restored file); another node's notice keeps its
 * version, which a write of ours may answer. Both are read again. */
static void test_pending_notice_keeps_no_ext(void)
{
	store_clear();
	store_put("d/old", "o");
	struct cache *c = watched_cache(&fake_backend);
	int rc;
	CHECK_STR(ls(c, "d", &rc), "old ");
	struct topo_meta pend = {.has_data = true, .size = 1};
	cache_note_put(c, "d/new", "n", 1, &pend);
	cache_set_pending(c, "d/new", true);
	int64_t v = store_put("d/new", "n");
	cache_changed(c, TOPO_CHANGE_NODE, "d/new", v); /* our batch, landed */
	struct cnode *n = cache_walk(c->root, "d/new", false);
	CHECK(n && n->stale && n->pending && !n->ext);
	cache_mark_stale(c, "d/new"); /* the batch's answer */
	CHECK(n->stale && !n->pending && !n->ext);
	v = store_put("d/old", "p");
	cache_changed(c, TOPO_CHANGE_NODE, "d/old", v);
	struct cnode *o = cache_walk(c->root, "d/old", false);
	CHECK(o && o->stale && o->ext && o->ext->noticed == v);
	unsigned char *val;
	struct topo_meta m;
	CHECK_INT(cache_value(c, "d/new", &val, &m), 0);
	CHECK(m.size == 1 && val[0] == 'n' && m.version == v - 1);
	free(val);
	CHECK_INT(cache_value(c, "d/old", &val, &m), 0);
	CHECK(m.size == 1 && val[0] == 'p' && m.version == v);
	free(val);
	cache_free(c);
	store_clear();
}

static void run_model(unsigned seed, int steps)
{
	srand(seed);
	store_clear();
	for (int i = 0; i < 20; i++) {
		char k[64];
		random_key(k, sizeof(k));
		store_put(k, "initial");
	}
	struct cache *c = watched_cache(&fake_backend);
	check_against_model(c, 0);
	for (int step = 1; step <= steps; step++) {
		char k[64], val[32];
		random_key(k, sizeof(k));
		snprintf(val, sizeof(val), "v%d%s", step,
			 rand() % 5 ? "" : "-longer-value-to-grow-it");
		if (rand() % 7 == 0)
			val[0] = '\0'; /* empty values too */
		int op = rand() % 100;
		if (op < 30) {
			/* our own write */
			int64_t v = store_put(k, val);
			struct topo_meta m = meta_for(v, strlen(val));
			cache_write_begin(c);
			cache_note_put(c, k, val, strlen(val), &m);
			cache_write_end(c);
			/* and its notice, which changes nothing */
			CHECK(!cache_changed(c, TOPO_CHANGE_NODE, k, v));
		} else if (op < 45) {
			/* our own delete of an existing key */
			if (!st.n)
				continue;
			snprintf(k, sizeof(k), "%s", st.path[rand() % st.n]);
			store_del(k);
			cache_note_delete(c, k, false);
			cache_changed(c, TOPO_CHANGE_DELETED, k, ++st.rev);
		} else if (op < 70) {
			/* another client's write */
			int64_t v = store_put(k, val);
			cache_changed(c, TOPO_CHANGE_NODE, k, v);
		} else if (op < 82) {
			/* another client's delete */
			if (!st.n)
				continue;
			snprintf(k, sizeof(k), "%s", st.path[rand() % st.n]);
			store_del(k);
			cache_changed(c, TOPO_CHANGE_DELETED, k, ++st.rev);
		} else if (op < 92) {
			char d[64];
			if (random_dir(d, sizeof(d)))
				rename_dir(c, d, step);
		} else if (op < 97) {
			char d[64];
			if (random_dir(d, sizeof(d)))
				cache_invalidate(c, d);
		} else {
			cache_changed(c, TOPO_CHANGE_ALL, "", 0);
		}
		/* every child array to size, whatever its shape (a listing
		 * trims only what it built, where one child is never in an
		 * array); no rand(), so the runs are those of before */
		if (step % 8 == 0)
			cache_node_trim(c->root);
		check_against_model(c, step);
	}
	cache_free(c);
	store_clear();
}

int main(void)
{
	test_meta_packing();
	test_children();
	test_one_kid_node();
	test_one_kid_listings();
	test_one_kid_dropped();
	test_pending_notice_keeps_no_ext();
	shapes = (struct shapes){0};
	for (unsigned seed = 1; seed <= 8; seed++)
		run_model(seed, 400);
	/* the model's name space makes directories of one child common
	 * (some 10 a step), both in the node and left in an array */
	fprintf(stderr,
		"model: nodes seen with one child in the node %zu, in an "
		"array %zu, more %zu\n",
		shapes.one_inline, shapes.one_in_array, shapes.many);
	CHECK(shapes.one_inline > 3200 && shapes.one_in_array > 200);
	return check_report();
}
