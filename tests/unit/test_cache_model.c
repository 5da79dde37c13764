/* Unit tests of the cache's packed structures (fs/cache.c: nodes with their
 * names inline, child arrays, values and packed metadata) and a randomized
 * test of the whole cache against a simple model: a fake etcd-like store
 * (keys only, directories implicit) changed by our own writes, by other
 * clients (with their change notices) and by directory renames, the cache
 * checked after every step against the store. */
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

static void store_clear(void)
{
	while (st.n)
		store_del(st.path[0]);
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

/* Compare the cache with the store: every directory's listing, every
 * key's value and version. */
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

/* Rename directory `from` in the store to a new sibling or to the top, as
 * topofs does: the cache's subtree moved first, then the store, then the
 * notices. */
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

static void run_model(unsigned seed, int steps)
{
	srand(seed);
	store_clear();
	st.rev = 0;
	for (int i = 0; i < 20; i++) {
		char k[64];
		random_key(k, sizeof(k));
		store_put(k, "initial");
	}
	struct cache *c = cache_new(&fake_backend, NULL, 600000);
	cache_watch_started(c);
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
		check_against_model(c, step);
	}
	cache_free(c);
	store_clear();
}

int main(void)
{
	test_meta_packing();
	test_children();
	for (unsigned seed = 1; seed <= 8; seed++)
		run_model(seed, 400);
	return check_report();
}
