/*
 * watch.h - the etcd backend's change notices (topo_backend.watch): one
 * /v3/watch stream on the JSON gateway over the whole root, read by a
 * thread of its own.
 *
 * The watched range is the root's prefix, [ROOT/, prefix_end(ROOT/)):
 * nothing outside it is ever read (a user's role may allow no more). The
 * root key itself (a value stored at ROOT, which Vitess never writes) is
 * not watched: one watch rather than two keeps a single order and a single
 * revision to resume from. A stream that etcd refuses (created and
 * canceled at once: permission denied, an invalid token) is not a watch.
 * With an etcd user, every request carries its token (auth.h); a stream
 * refused for an invalid token authenticates again before reconnecting.
 *
 * Revisions: watch() reads the store's current revision R and does not
 * return before etcd confirmed a stream from R + 1. After a break the thread
 * reconnects (the next endpoint, backoff 100 ms doubling to 1 s) from the
 * revision after the last one delivered: nothing is lost, so no
 * TOPO_CHANGE_ALL. If etcd answers that this revision is compacted, it
 * reads the current revision afresh, delivers TOPO_CHANGE_ALL and goes on
 * from there.
 *
 * The stream and parsing parts are pure (no network), for the unit tests.
 */
#ifndef TOPOFS_ETCD_WATCH_H
#define TOPOFS_ETCD_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "topofs/backend.h"

/* Largest single object of a stream; more is malformed. */
#define ETCD_STREAM_MAX_OBJECT (256u << 20)

/* Cuts a byte stream of concatenated JSON objects into whole objects, by
 * brace depth outside strings. Zero-initialised before use. */
struct etcd_splitter {
	char *buf; /* the object so far, when split across feeds */
	size_t len, cap;
	size_t depth; /* of '{' and '['; 0 between objects */
	bool in_str, esc;
};

/* Receives one whole object; non-zero stops the splitting and is returned
 * by etcd_split_feed. */
typedef int (*etcd_object_fn)(void *arg, const char *json, size_t len);

/* Feed n bytes; fn gets every object they complete, in order. Whitespace
 * between objects is skipped. 0, fn's non-zero return, -EIO (anything but
 * an object at top level, or an object over the limit) or -ENOMEM. */
int etcd_split_feed(struct etcd_splitter *sp, const char *p, size_t n,
		    etcd_object_fn fn, void *arg);

/* Free the splitter's buffer and forget any partial object. */
void etcd_split_clear(struct etcd_splitter *sp);

/* What a stream said so far. */
enum etcd_verdict {
	ETCD_STREAM_OK,	       /* going */
	ETCD_STREAM_COMPACTED, /* its start revision is gone: start afresh */
	ETCD_STREAM_FAILED,    /* canceled, an error or malformed: reconnect */
};

/* One stream's state, fed with the bytes received. */
struct etcd_stream {
	const char *root; /* the root key, "" for "/"; borrowed */
	topo_change_fn fn;
	void *arg;
	int64_t last_revision; /* every change up to here was delivered */
	bool created;	       /* etcd confirmed the watch */
	enum etcd_verdict verdict;
	char reason[160]; /* why the verdict is not OK */
	struct etcd_splitter split;
};

/* Get ready for a new stream from st->last_revision + 1 (created, verdict,
 * reason and splitter cleared; root, fn, arg and last_revision kept). */
void etcd_stream_reset(struct etcd_stream *st);

/* Feed n received bytes: deliver the events of each complete response as
 * TOPO_CHANGE_NODE in order and note the progress. Returns the verdict,
 * which sticks once not OK (later bytes are ignored). */
enum etcd_verdict etcd_stream_feed(struct etcd_stream *st, const char *p,
				   size_t n);

/* Start afresh at the store's revision rev: deliver TOPO_CHANGE_ALL and go
 * on from rev + 1. */
void etcd_stream_restart(struct etcd_stream *st, int64_t rev);

/* The first key after every key that starts with k[0..n) (kv.c). Newly
 * allocated, *outlen bytes. 0 or -ENOMEM. */
int etcd_prefix_end(const char *k, size_t n, char **out, size_t *outlen);

struct etcd_watch;

/* Start the watch thread on h (borrowed: it must outlive the watch) for the
 * root key `root`, delivering to fn(arg, ...). Returns once the stream is
 * confirmed: 0 and *out, -EIO if it is not within timeout_ms (logged), or
 * -ENOMEM. */
int etcd_watch_start(struct etcd_http *h, const char *root, unsigned timeout_ms,
		     topo_change_fn fn, void *arg, struct etcd_watch **out);

/* Stop the thread, wait for it and free w: fn is not called after this
 * returns. NULL is allowed. */
void etcd_watch_stop(struct etcd_watch *w);

#endif
