/*
 * kv_read.c - the etcd backend's reads (see kv.c): range requests a page
 * at a time, listings of a subtree at one revision, and single keys.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http.h"
#include "json.h"
#include "kv_internal.h"
#include "pager.h"
#include "watch.h"
#include "topofs/backend.h"
#include "topofs/log.h"

#define ETCD_PAGE 500  /* keys per range request in a listing */
#define LIST_RETRIES 3 /* fresh starts after a compaction */

/* One range request [start, end) at revision rev (0: current), limit
 * `limit` (0: none); the answer is parsed into out/page for the subtree of
 * key. 0 or a negative errno. */
int etcd_range_page(struct topo_store *s, const char *key, const char *start,
		    size_t startlen, const char *end, size_t endlen,
		    int64_t rev, int64_t limit, bool keys_only,
		    struct topo_listing *out, struct etcd_page *page)
{
	struct etcd_reply reply;
	json_t *req = json_object();
	int err = -ENOMEM;

	if (!req)
		return -ENOMEM;
	if (etcd_set_bytes(req, "key", start, startlen) ||
	    (end && etcd_set_bytes(req, "range_end", end, endlen)) ||
	    (rev && etcd_set_int64(req, "revision", rev)) ||
	    (limit && etcd_set_int64(req, "limit", limit)) ||
	    (keys_only && json_object_set_new(req, "keys_only", json_true())))
		goto out;
	err = etcd_call(s, "/v3/kv/range", req, 0, NULL, key, &reply);
	if (err)
		goto out;
	err = etcd_parse_range(reply.body, reply.len, s->root, key, out, page);
	etcd_reply_free(&reply);
out:
	json_decref(req);
	return err;
}

/* Add the root key itself to a listing of the root, read alone at revision
 * rev, unless the user may not read it (probe_root). 0 or a negative
 * errno. */
static int add_root_key(struct topo_store *s, int64_t rev,
			struct topo_listing *out)
{
	struct etcd_page page = {0};
	size_t before = out->count;
	int err = 0;

	if (!s->root_key_hidden)
		err = etcd_range_page(s, s->root, s->root, strlen(s->root),
				      NULL, 0, rev, 0, false, out, &page);
	etcd_page_clear(&page);
	if (!err && out->count > before)
		topo_listing_sort(out); /* "" goes first */
	return err;
}

/* Read the subtree of key page by page, every page at the first page's
 * revision, each in a window of the key space that the pager guesses holds
 * about one page (pager.c: a fixed range end would make the listing
 * quadratic). 0, -EAGAIN (that revision was compacted) or a negative
 * errno. */
static int list_pages(struct topo_store *s, const char *key,
		      struct topo_listing *out)
{
	struct etcd_page page = {0};
	struct etcd_pager pager = {0};
	char *sub = NULL, *end = NULL;
	size_t endlen;
	int64_t rev = s->pinned;
	int err = -ENOMEM;

	/* [key, prefix_end(key "/")): key itself, key/..., and siblings such
	 * as "key-foo" that the parser filters out. The key "" cannot exist. */
	if (asprintf(&sub, "%s/", key) < 0) {
		sub = NULL;
		goto out;
	}
	if (etcd_prefix_end(sub, strlen(sub), &end, &endlen))
		goto out;
	/* The root's listing stays inside its prefix, ROOT/: the root key
	 * itself is read alone, after (add_root_key). */
	const char *start = *key && strcmp(key, s->root) != 0 ? key : sub;
	if (etcd_pager_init(&pager, start, strlen(start),
			    (const unsigned char *)end, endlen))
		goto out;
	while (!pager.done) {
		const unsigned char *stop;
		size_t stoplen;
		etcd_pager_stop(&pager, &stop, &stoplen);
		err =
		    etcd_range_page(s, key, (const char *)pager.start,
				    pager.startlen, (const char *)stop, stoplen,
				    rev, ETCD_PAGE, false, out, &page);
		if (err)
			goto out;
		if (!rev)
			rev = out->revision = page.revision;
		err = etcd_pager_next(
		    &pager, page.more, page.first_key, page.first_len,
		    page.last_key, page.last_len, page.nkeys,
		    page.count > 0 ? (uint64_t)page.count : 0, ETCD_PAGE);
		if (err == -EIO)
			topo_err("etcd: %s: malformed answer: more keys but "
				 "none given, or more than asked",
				 key);
		if (err)
			goto out;
	}
	if (*key && strcmp(key, s->root) == 0)
		err = add_root_key(s, rev, out);
out:
	etcd_page_clear(&page);
	etcd_pager_free(&pager);
	free(end);
	free(sub);
	return err;
}

/* A read at the pinned revision found it compacted: -EIO, logged. */
static int pinned_gone(const struct topo_store *s, const char *key)
{
	topo_err("etcd: %s: revision %" PRId64 " has been compacted since "
		 "mounting: remount",
		 key, s->pinned);
	return -EIO;
}

/* list: see backend.h. */
int etcd_list(struct topo_store *s, const char *path, struct topo_listing *out)
{
	char *key;
	int err;

	topo_listing_restart(out);
	err = etcd_make_key(s, path, &key);
	if (err)
		return err;
	for (int i = 0; i < LIST_RETRIES; i++) {
		err = list_pages(s, key, out);
		if (err != -EAGAIN || s->pinned) /* a pinned one stays gone */
			break;
		topo_listing_restart(out);
	}
	if (err == -EAGAIN && s->pinned)
		err = pinned_gone(s, key);
	if (err == -EAGAIN) {
		topo_err("etcd: %s: listing revision compacted %d times", key,
			 LIST_RETRIES);
		err = -EIO;
	}
	if (err)
		topo_listing_free(out);
	free(key);
	return err;
}

/* Read one key into a one-entry listing. 0 or a negative errno; an absent
 * key leaves the listing empty. */
int etcd_read_key(struct topo_store *s, const char *key, bool keys_only,
		  struct topo_listing *l)
{
	struct etcd_page page = {0};
	int err = etcd_range_page(s, key, key, strlen(key), NULL, 0, s->pinned,
				  0, keys_only, l, &page);

	etcd_page_clear(&page);
	return err;
}

/* get: see backend.h. */
int etcd_get(struct topo_store *s, const char *path, struct topo_entry *out)
{
	struct topo_listing l = {0};
	char *key;
	int err;

	memset(out, 0, sizeof(*out));
	err = etcd_make_key(s, path, &key);
	if (err)
		return err;
	err = *key && !(!*path && s->root_key_hidden)
		  ? etcd_read_key(s, key, false, &l)
		  : 0;
	if (err == -EAGAIN)
		err = pinned_gone(s, key);
	if (!err && l.count == 0)
		err = -ENOENT;
	if (!err) {
		*out = l.entries[0];
		l.entries[0].path = NULL;
		l.entries[0].value = NULL;
	}
	topo_listing_free(&l);
	free(key);
	return err;
}
