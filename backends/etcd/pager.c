/*
 * pager.c - the pages of an etcd listing (see pager.h).
 *
 * Why not one fixed range
 *   A listing reads its subtree [start, end) in pages of a few hundred
 *   keys (a page is parsed whole, so it bounds memory). The obvious way
 *   asks [start, end) with a limit and goes on after the last key. But to
 *   answer a range request etcd (3.4 and 3.5) walks its index over the
 *   whole range to count the keys in it, whatever the limit: each page
 *   costs the server the keys still left, and the listing O(n^2 / page).
 *   Measured with etcd 3.4 (on a busy machine): a page of 500 at the
 *   start of 200,000 keys took 528 ms, one of 2,000 keys 89 ms; at 1M
 *   keys, 2,000 pages that each walk 500,000 keys on average.
 *
 * Windows
 *   So each request asks a window [start, stop) expected to hold about one
 *   page, guessed from the keys seen so far: keys are compared as byte
 *   strings, and a window is `depth` bytes of the start kept as they are,
 *   then the next 8 bytes read as a big-endian number plus `width`. After
 *   a page that came back full (more keys in its window), the next window
 *   starts just after its last key and is the narrower of two guesses:
 *   the page's span again (from its first key to its last; depth: where
 *   those two first differ), or the share of what is left of the window
 *   that should hold a page, the keys left being the answer's count. If at
 *   most REST_PAGES pages are left, they are read to the window's stop as
 *   it is. A window that held less than half a page is doubled for the
 *   next one (16 times if it held none; a width past 64 bits moves one
 *   byte up). The first request asks the whole range, so a listing of one
 *   page is one request as before.
 *
 *   Wrong guesses cost requests, never keys: every window starts exactly
 *   where the last one stopped (or just after the last key a full page
 *   gave), so the windows tile [start, end), and a window that was too
 *   wide still gives its first page, from which the next guess is better.
 *   Byte arithmetic is a poor model of names (decimal digits fill 10 of a
 *   byte's 256 values), so a window is often a few pages wide: the unit
 *   test measures about 5 keys walked per key on a Vitess tree, the same
 *   at 20,000 and 200,000 keys, where a fixed end walks n / 1000 per key.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pager.h"
#include "watch.h" /* etcd_prefix_end */

/* A full window with at most this many pages' worth of keys left is read to
 * its stop as it is (see Windows). */
#define REST_PAGES 4

/* The 8 bytes of k from offset d as a big-endian number, bytes past its end
 * taken as 0. */
static uint64_t pos_at(const unsigned char *k, size_t len, size_t d)
{
	uint64_t v = 0;
	for (size_t i = d; i < d + 8; i++)
		v = (v << 8) | (i < len ? k[i] : 0);
	return v;
}

/* Byte-string order, as etcd compares keys. */
static int bytes_cmp(const unsigned char *a, size_t alen,
		     const unsigned char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static size_t common_prefix(const unsigned char *a, size_t alen,
			    const unsigned char *b, size_t blen)
{
	size_t i = 0;
	while (i < alen && i < blen && a[i] == b[i])
		i++;
	return i;
}

/* The range end "\0" means "every key from the start on". */
static bool is_unbounded(const unsigned char *end, size_t endlen)
{
	return endlen == 1 && end[0] == 0;
}

/* Set p->stop for the window from p->start (see Windows). Always above the
 * start; NULL when the window reaches the listing's end. 0 or -ENOMEM. */
static int set_stop(struct etcd_pager *p)
{
	const size_t d = p->depth;
	const uint64_t pos = pos_at(p->start, p->startlen, d);
	const size_t kept = d < p->startlen ? d : p->startlen;
	unsigned char *s = NULL;
	size_t len = 0;

	free(p->stop);
	p->stop = NULL;
	if (p->width == 0)
		return 0;
	if (pos > UINT64_MAX - p->width) { /* past the block at this depth */
		char *e;
		if (etcd_prefix_end((const char *)p->start, kept, &e, &len))
			return -ENOMEM;
		s = (unsigned char *)e;
		if (is_unbounded(s, len)) { /* none: to the listing's end */
			free(s);
			s = NULL;
		}
	} else {
		s = calloc(d + 8, 1);
		if (!s)
			return -ENOMEM;
		memcpy(s, p->start, kept);
		for (int i = 0; i < 8; i++)
			s[d + 7 - i] =
			    (unsigned char)((pos + p->width) >> (8 * i));
		len = d + 8;
	}
	if (s && !is_unbounded(p->end, p->endlen) &&
	    bytes_cmp(s, len, p->end, p->endlen) >= 0) {
		free(s); /* the rest fits in this window */
		s = NULL;
	}
	p->stop = s;
	p->stoplen = s ? len : 0;
	return 0;
}

/* Make k[0..len) + `extra` NULs the next start. 0 or -ENOMEM. */
static int set_start(struct etcd_pager *p, const unsigned char *k, size_t len,
		     size_t extra)
{
	unsigned char *s = calloc(len + extra ? len + extra : 1, 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, k, len);
	free(p->start);
	p->start = s;
	p->startlen = len + extra;
	return 0;
}

int etcd_pager_init(struct etcd_pager *p, const void *start, size_t startlen,
		    const unsigned char *end, size_t endlen)
{
	memset(p, 0, sizeof(*p));
	p->end = end;
	p->endlen = endlen;
	return set_start(p, start, startlen, 0);
}

void etcd_pager_stop(const struct etcd_pager *p, const unsigned char **stop,
		     size_t *stoplen)
{
	*stop = p->stop ? p->stop : p->end;
	*stoplen = p->stop ? p->stoplen : p->endlen;
}

/* After a full page from first to last: the window of that span. */
static void window_of_span(struct etcd_pager *p, const unsigned char *first,
			   size_t firstlen, const unsigned char *last,
			   size_t lastlen)
{
	size_t d = common_prefix(first, firstlen, last, lastlen);
	uint64_t a = pos_at(first, firstlen, d), b = pos_at(last, lastlen, d);
	p->depth = d;
	p->width = b > a ? b - a : 0; /* 0 (keys with NULs): to the end */
}

/* After a full page whose window still holds `rest` keys after the last one
 * given: the window (*depth, *width) that takes the share of what is left
 * of the current one that should hold a page, if the keys are spread
 * evenly there. False when that cannot be told (a window to an unbounded
 * end, or a share finer than 64 bits resolve). */
static bool window_of_rest(const struct etcd_pager *p,
			   const unsigned char *last, size_t lastlen,
			   uint64_t rest, size_t limit, size_t *depth,
			   uint64_t *width)
{
	const unsigned char *stop;
	size_t stoplen;
	etcd_pager_stop(p, &stop, &stoplen);
	if (is_unbounded(stop, stoplen))
		return false;
	size_t d = common_prefix(last, lastlen, stop, stoplen);
	uint64_t a = pos_at(last, lastlen, d), b = pos_at(stop, stoplen, d);
	uint64_t pages = rest / limit;
	if (b <= a || pages == 0 || (b - a) / pages == 0)
		return false;
	*depth = d;
	*width = (b - a) / pages;
	return true;
}

/* Of the windows (depth, width) and the pager's own, keep the one that
 * stops first: the guess that walks fewer keys. 0 or -ENOMEM. */
static int keep_narrower(struct etcd_pager *p, size_t depth, uint64_t width)
{
	struct etcd_pager other = *p;
	other.stop = NULL;
	other.depth = depth;
	other.width = width;
	if (set_stop(&other))
		return -ENOMEM;
	bool narrower =
	    other.stop && (!p->stop || bytes_cmp(other.stop, other.stoplen,
						 p->stop, p->stoplen) < 0);
	if (!narrower) {
		free(other.stop);
		return 0;
	}
	free(p->stop);
	p->stop = other.stop;
	p->stoplen = other.stoplen;
	p->depth = depth;
	p->width = width;
	return 0;
}

/* After a window that held nkeys, all given: a wider one if it held less
 * than half a page (twice as wide; sixteen times if it held none). A width
 * past 64 bits is the same span one byte further up: depth - 1. */
static void widen(struct etcd_pager *p, size_t nkeys, size_t limit)
{
	unsigned doublings = nkeys == 0 ? 4 : nkeys < limit / 2 ? 1 : 0;
	for (; p->width && doublings > 0; doublings--) {
		if (p->width <= UINT64_MAX / 2)
			p->width *= 2;
		else if (p->depth > 0) {
			p->depth--;
			p->width = (p->width >> 8) * 2;
		} else
			p->width = 0; /* to the listing's end */
	}
}

int etcd_pager_next(struct etcd_pager *p, bool more, const unsigned char *first,
		    size_t firstlen, const unsigned char *last, size_t lastlen,
		    size_t nkeys, uint64_t count, size_t limit)
{
	if ((more && (!last || !first)) || (limit && nkeys > limit))
		return -EIO;
	int err;
	if (more) {
		/* from just after the last key: last + "\0" */
		err = set_start(p, last, lastlen, 1);
		if (err)
			return err;
		/* Few keys left before this window's stop: ask them all there
		 * (a walk of at most REST_PAGES pages per page). */
		if (count > nkeys && count - nkeys <= REST_PAGES * limit)
			return 0;
		/* Two guesses (see Windows): the span of this page again, or
		 * the share of the rest of this window; the narrower one. */
		size_t depth = 0;
		uint64_t width = 0;
		bool rest = count > nkeys && limit &&
			    window_of_rest(p, last, lastlen, count - nkeys,
					   limit, &depth, &width);
		window_of_span(p, first, firstlen, last, lastlen);
		err = set_stop(p);
		return err || !rest ? err : keep_narrower(p, depth, width);
	} else if (!p->stop) {
		p->done = true; /* that window ran to the listing's end */
		return 0;
	} else {
		free(p->start);
		p->start = p->stop;
		p->startlen = p->stoplen;
		p->stop = NULL;
		widen(p, nkeys, limit);
		err = 0;
	}
	return err ? err : set_stop(p);
}

void etcd_pager_free(struct etcd_pager *p)
{
	free(p->start);
	free(p->stop);
	memset(p, 0, sizeof(*p));
}
