/*
 * pager.h - the pages of an etcd listing: which key range each range
 * request asks, so that the whole listing costs the server O(n) (see
 * pager.c for why a fixed range end does not).
 */
#ifndef TOPOFS_ETCD_PAGER_H
#define TOPOFS_ETCD_PAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct etcd_pager {
	unsigned char *start; /* owned: the next request's first key */
	size_t startlen;
	unsigned char *stop; /* owned: the next request's range end; NULL:
				the listing's end */
	size_t stoplen;
	const unsigned char *end; /* the listing's range end (the caller's) */
	size_t endlen;
	size_t depth;	/* the window: bytes of start kept as they are, */
	uint64_t width; /* then this much past the 8 bytes after them as a
			   big-endian number (0: to the listing's end) */
	bool done;	/* every key of [start, end) has been asked */
};

/* Start paging [start, end); the first request asks the whole range.
 * `end` must outlive the pager. 0 or -ENOMEM. */
int etcd_pager_init(struct etcd_pager *p, const void *start, size_t startlen,
		    const unsigned char *end, size_t endlen);

/* The range end of the next request: p->stop, or the listing's end. */
void etcd_pager_stop(const struct etcd_pager *p, const unsigned char **stop,
		     size_t *stoplen);

/* Take the answer to the request [p->start, stop) with `limit`: `nkeys`
 * keys from `first` to `last` (NULL when none), whether more keys in that
 * range were left out, and how many keys the range holds in all (`count`;
 * 0 when the answer did not say). Sets the next request, or done. 0,
 * -ENOMEM, or -EIO for an answer that cannot be (more keys left out, none
 * given, or more than limit). */
int etcd_pager_next(struct etcd_pager *p, bool more, const unsigned char *first,
		    size_t firstlen, const unsigned char *last, size_t lastlen,
		    size_t nkeys, uint64_t count, size_t limit);

/* Free what the pager owns. */
void etcd_pager_free(struct etcd_pager *p);

#endif
