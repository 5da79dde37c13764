/* Unit tests of the table of paths the kernel may hold old attributes of
 * (fs/unsettled.c): a path is unsettled while an invalidation of it is
 * queued and for linger_ms after the last one was queued or written;
 * another path is not (unless it shares a slot); a change of every path
 * unsettles all of them. */
#include <stdio.h>

#include "../../fs/unsettled.h"
#include "check.h"

static struct unsettled u; /* 6 KiB: not on the stack */

/* Two paths that do not share a slot with "a/k" nor with each other. */
static void other_paths(char *x, char *y)
{
	int n = 0;
	struct unsettled probe;
	unsettled_init(&probe);
	unsettled_queued(&probe, "a/k", false);
	uint64_t now = unsettled_now_ms();
	for (int i = 0; n < 2; i++) {
		char p[32];
		snprintf(p, sizeof(p), "other/%d", i);
		if (unsettled_is(&probe, p, now, 0))
			continue;
		unsettled_queued(&probe, p, false);
		snprintf(n++ ? y : x, 32, "%s", p);
	}
}

static void test_pending_then_linger(void)
{
	char x[32], y[32];
	other_paths(x, y);
	unsettled_init(&u);
	uint64_t now = unsettled_now_ms();
	CHECK(!unsettled_is(&u, "a/k", now, 1000));
	unsettled_queued(&u, "a/k", false); /* at once */
	unsettled_queued(&u, "a/k", false); /* and again, later */
	CHECK(unsettled_is(&u, "a/k", now, 0));
	CHECK(!unsettled_is(&u, x, now, 1000));
	unsettled_written(&u, "a/k", false);
	CHECK(unsettled_is(&u, "a/k", now + 60000, 0)); /* one still queued */
	unsettled_written(&u, "a/k", false);
	uint64_t done = unsettled_now_ms();
	CHECK(unsettled_is(&u, "a/k", done, 1000));
	CHECK(unsettled_is(&u, "a/k", done + 999, 1000));
	CHECK(!unsettled_is(&u, "a/k", done + 1001, 1000));
	CHECK(!unsettled_is(&u, "a/k", done, 0));
	CHECK(!unsettled_is(&u, y, done, 1000));
}

static void test_every_path(void)
{
	char x[32], y[32];
	other_paths(x, y);
	unsettled_init(&u);
	unsettled_queued(&u, "", true);
	uint64_t now = unsettled_now_ms();
	CHECK(unsettled_is(&u, x, now + 60000, 0));
	CHECK(unsettled_is(&u, "a/k", now + 60000, 0));
	unsettled_written(&u, "", true);
	now = unsettled_now_ms();
	CHECK(unsettled_is(&u, y, now, 500));
	CHECK(!unsettled_is(&u, y, now + 501, 500));
}

int main(void)
{
	test_pending_then_linger();
	test_every_path();
	return check_report();
}
