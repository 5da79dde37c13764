/*
 * A randomized test of fs/inode.c against a model: lookups, forgets,
 * renames and unlinks at random in a small tree, with names from one byte
 * (a node's smallest `first`) to longer than a pointer (a rename's owned
 * copy), and every node checked after each step: its path, lookup count
 * and type, inode_find of its path, and now and then inode_list.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../fs/inode.h"
#include "check.h"

enum { STEPS = 5000, MAXN = STEPS + 8, SEEDS = 4 };

/* What the table should hold of a node ID (given in order from the
 * root's, so the model is indexed by them). */
struct mnode {
	bool alive;	 /* in the table */
	uint64_t parent; /* 0: the root, or unlinked */
	const char *name;
	mode_t type;
	uint64_t nlookup;
};

static struct mnode m[MAXN];
/* What the steps did, to show they did it: */
static size_t n_alive_sum;
static int n_new, n_estale, n_retyped, n_freed, n_moved, n_over, n_unlinked;
static uint64_t next_ino;
static struct inode_table *it;

/* 1, 2, 7 bytes fit the smallest `first` (8 bytes with the NUL); 8 and
 * more do not; the longest does not fit any node made with another. */
static const char *const names[] = {
    "a",
    "b",
    "x7",
    "seven77",
    "eight888",
    "nine99999",
    "a-name-of-twenty-three",
    "a-name-well-beyond-anything-else-here-0123456789",
};
enum { NNAMES = sizeof(names) / sizeof(names[0]) };

static const char *any_name(void)
{
	return names[rand() % NNAMES];
}

/* ---- the model ---- */

static uint64_t mchild(uint64_t p, const char *name)
{
	for (uint64_t i = INODE_ROOT + 1; i < next_ino; i++)
		if (m[i].alive && m[i].parent == p &&
		    strcmp(m[i].name, name) == 0)
			return i;
	return 0;
}

static int mkids(uint64_t n)
{
	int kids = 0;
	for (uint64_t i = INODE_ROOT + 1; i < next_ino; i++)
		kids += m[i].alive && m[i].parent == n;
	return kids;
}

/* Free n, then its parents, while nothing holds them (as release()). */
static void mrelease(uint64_t n)
{
	while (n && n < next_ino && n != INODE_ROOT && m[n].alive &&
	       m[n].nlookup == 0 && mkids(n) == 0) {
		uint64_t p = m[n].parent;
		m[n].alive = false;
		n_freed++;
		m[n].parent = 0;
		n = p;
	}
}

/* Whether a is b or one of b's parents. */
static bool is_above(uint64_t a, uint64_t b)
{
	for (; b; b = m[b].parent)
		if (a == b)
			return true;
	return false;
}

/* The FUSE path of ino, or -ESTALE. */
static int mpath(uint64_t ino, char *buf, size_t size)
{
	if (ino >= next_ino || !m[ino].alive)
		return -ESTALE;
	char tmp[4096] = "";
	for (uint64_t n = ino; n != INODE_ROOT; n = m[n].parent) {
		if (!m[n].parent)
			return -ESTALE;
		char part[4096];
		snprintf(part, sizeof(part), "/%s%s", m[n].name, tmp);
		snprintf(tmp, sizeof(tmp), "%s", part);
	}
	snprintf(buf, size, "%s", tmp[0] ? tmp : "/");
	return 0;
}

/* ---- the steps, on both ---- */

/* A directory to act in: mostly a live one (unlinked or not: a lookup
 * under an unlinked one is -ESTALE), sometimes any node ID, even a freed
 * or never given one (-ESTALE). */
static uint64_t any_dir(void)
{
	uint64_t ino = INODE_ROOT;
	for (int tries = 0; tries < 8; tries++) {
		ino = 1 + (uint64_t)rand() % (next_ino + 1);
		if (ino < next_ino && m[ino].alive && m[ino].type == S_IFDIR)
			return ino;
	}
	return rand() % 4 ? INODE_ROOT : ino;
}

static void step_lookup(void)
{
	uint64_t p = any_dir();
	const char *name = any_name();
	mode_t type = rand() % 2 ? S_IFDIR : S_IFREG;
	uint64_t ino = 0;
	int rc = inode_lookup(it, p, name, type, &ino);
	/* unknown, or unlinked: nothing is linked below it */
	if (p >= next_ino || !m[p].alive || (p != INODE_ROOT && !m[p].parent)) {
		CHECK_INT(rc, -ESTALE);
		n_estale++;
		return;
	}
	CHECK_INT(rc, 0);
	uint64_t c = mchild(p, name);
	if (c && m[c].type != type) {
		m[c].parent = 0; /* a new node for the new type */
		n_retyped++;
		mrelease(c);
		c = 0;
	}
	if (!c) {
		c = next_ino++;
		n_new++;
		m[c] = (struct mnode){
		    .alive = true, .parent = p, .name = name, .type = type};
	}
	m[c].nlookup++;
	CHECK_INT(ino, c);
}

static void step_forget(void)
{
	uint64_t ino = 0;
	for (int tries = 0; tries < 8 && !(ino < next_ino && m[ino].alive);
	     tries++)
		ino = 1 + (uint64_t)rand() % next_ino;
	if (ino >= next_ino || !m[ino].alive)
		return;
	/* all it holds, as the kernel mostly does, or any count, even more */
	uint64_t k = rand() % 2 ? m[ino].nlookup
				: (uint64_t)rand() % (m[ino].nlookup + 2);
	inode_forget(it, ino, k);
	if (ino == INODE_ROOT)
		return;
	m[ino].nlookup -= k < m[ino].nlookup ? k : m[ino].nlookup;
	mrelease(ino);
}

static void step_unlink(void)
{
	uint64_t p = any_dir();
	const char *name = any_name();
	inode_unlink(it, p, name);
	uint64_t c = p < next_ino && m[p].alive ? mchild(p, name) : 0;
	if (c) {
		m[c].parent = 0;
		n_unlinked++;
		mrelease(c);
		mrelease(p);
	}
}

static void step_rename(void)
{
	uint64_t p = any_dir(), np = any_dir();
	const char *name = any_name(), *newname = any_name();
	bool p_ok = p < next_ino && m[p].alive;
	bool np_ok = np < next_ino && m[np].alive;
	uint64_t c = p_ok ? mchild(p, name) : 0;
	uint64_t target = np_ok ? mchild(np, newname) : 0;
	/* what the kernel never asks: a node into itself or below, or over
	 * one of its parents */
	if (c && np_ok && is_above(c, np))
		return;
	if (target && c && target != c && is_above(target, c))
		return;
	int rc = inode_rename(it, p, name, np, newname);
	CHECK_INT(rc, np_ok ? 0 : -ESTALE);
	if (!c || c == target)
		return;
	if (target)
		m[target].parent = 0;
	m[c].parent = 0;
	n_over += target != 0;
	n_moved += np_ok;
	if (np_ok) {
		m[c].parent = np;
		m[c].name = newname;
	}
	mrelease(c);
	mrelease(target);
	mrelease(p);
}

/* ---- checks ---- */

static void check_node(uint64_t ino)
{
	char want[4096], got[4096];
	int mrc = mpath(ino, want, sizeof(want));
	CHECK_INT(inode_path(it, ino, got, sizeof(got)), mrc);
	if (mrc == 0)
		CHECK_STR(got, want);
	if (!m[ino].alive) {
		CHECK_INT(inode_nlookup(it, ino), 0);
		return;
	}
	CHECK_INT(inode_nlookup(it, ino), m[ino].nlookup);
	CHECK(inode_type_is(it, ino, m[ino].type));
	struct inode_ref r;
	if (mrc == 0) {
		CHECK_INT(inode_find(it, want, &r), 0);
		CHECK_INT(r.ino, ino);
		CHECK_INT(r.parent, m[ino].parent);
		CHECK_STR(r.name, ino == INODE_ROOT ? "" : m[ino].name);
		CHECK_INT(r.type, m[ino].type);
	}
}

static void check_list(size_t alive)
{
	struct inode_ref *refs;
	ssize_t n = inode_list(it, &refs);
	CHECK_INT(n, alive);
	for (ssize_t i = 0; i < n; i++) {
		uint64_t ino = refs[i].ino;
		CHECK(ino < next_ino && m[ino].alive);
		if (ino >= next_ino)
			continue;
		CHECK_INT(refs[i].parent, m[ino].parent);
		CHECK_STR(refs[i].name, m[ino].parent ? m[ino].name : "");
		CHECK_INT(refs[i].type, m[ino].type);
	}
	free(refs);
}

/* The live nodes at each step, the freed ones too now and then. */
static void check_all(int step)
{
	size_t alive = 0;
	for (uint64_t ino = INODE_ROOT; ino < next_ino; ino++) {
		if (m[ino].alive || step % 64 == 0)
			check_node(ino);
		alive += m[ino].alive;
	}
	CHECK_INT(inode_count(it), alive);
	n_alive_sum += alive;
	if (step % 64 == 0)
		check_list(alive);
}

static void run(unsigned seed)
{
	srand(seed);
	memset(m, 0, sizeof(m));
	m[INODE_ROOT] = (struct mnode){.alive = true, .type = S_IFDIR};
	next_ino = INODE_ROOT + 1;
	it = inode_table_new();
	CHECK(it != NULL);
	for (int step = 0; step < STEPS; step++) {
		int op = rand() % 20;
		if (op < 5)
			step_lookup();
		else if (op < 12)
			step_forget();
		else if (op < 17)
			step_rename();
		else
			step_unlink();
		int before = check_failures;
		check_all(step);
		if (check_failures != before) {
			fprintf(stderr,
				"seed %u, step %d: the table and the "
				"model part\n",
				seed, step);
			break;
		}
	}
	/* freed with whatever it holds: owned names too (ASan) */
	inode_table_free(it);
}

int main(void)
{
	for (unsigned seed = 1; seed <= SEEDS; seed++)
		run(seed);
	fprintf(
	    stderr,
	    "%d nodes made, %zu live on average, %d freed; %d lookups in "
	    "an unknown directory, %d retyped; %d renames (%d over a node), "
	    "%d unlinks\n",
	    n_new, n_alive_sum / (SEEDS * STEPS), n_freed, n_estale, n_retyped,
	    n_moved, n_over, n_unlinked);
	return check_report();
}
