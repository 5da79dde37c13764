/* unsettled.c - see unsettled.h. */
#include <time.h>

#include "path.h"
#include "unsettled.h"

void unsettled_init(struct unsettled *u)
{
	for (size_t i = 0; i < UNSETTLED_SLOTS; i++) {
		atomic_init(&u->slot[i].pending, 0);
		atomic_init(&u->slot[i].last_ms, 0);
	}
	atomic_init(&u->all.pending, 0);
	atomic_init(&u->all.last_ms, 0);
}

uint64_t unsettled_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The slot of path: by its inode number's hash (path.h). */
static const struct unsettled_slot *slot_of(const struct unsettled *u,
					    const char *path)
{
	uint64_t h = path_ino_at("", path, false);
	return &u->slot[(h ^ (h >> 32)) % UNSETTLED_SLOTS];
}

static struct unsettled_slot *pick(struct unsettled *u, const char *path,
				   bool all)
{
	return all ? &u->all : (struct unsettled_slot *)slot_of(u, path);
}

/* Move s's time forward to now (never back: threads race here). */
static void stamp(struct unsettled_slot *s)
{
	uint64_t now = unsettled_now_ms();
	uint64_t old = atomic_load(&s->last_ms);
	while (old < now &&
	       !atomic_compare_exchange_weak(&s->last_ms, &old, now))
		;
}

void unsettled_queued(struct unsettled *u, const char *path, bool all)
{
	struct unsettled_slot *s = pick(u, path, all);
	atomic_fetch_add(&s->pending, 1);
	stamp(s);
}

void unsettled_written(struct unsettled *u, const char *path, bool all)
{
	struct unsettled_slot *s = pick(u, path, all);
	stamp(s); /* before pending drops: never settled and old at once */
	atomic_fetch_sub(&s->pending, 1);
}

static bool slot_unsettled(const struct unsettled_slot *s, uint64_t now_ms,
			   uint64_t linger_ms)
{
	if (atomic_load(&s->pending) != 0)
		return true;
	return now_ms < atomic_load(&s->last_ms) + linger_ms;
}

bool unsettled_is(const struct unsettled *u, const char *path, uint64_t now_ms,
		  uint64_t linger_ms)
{
	return slot_unsettled(&u->all, now_ms, linger_ms) ||
	       slot_unsettled(slot_of(u, path), now_ms, linger_ms);
}
