/*
 * fuzz_etcd_watch.c - the watch stream parser (backends/etcd/watch.h,
 * json.h): etcd_stream_feed on arbitrary bytes as if received on a
 * /v3/watch stream, and etcd_parse_watch on the same bytes as one object.
 *
 * The input is the stream itself (the seeds are real streams). It is fed
 * once whole and once cut into pieces at input-derived points; both must
 * deliver the same notices in the same order, end with the same verdict,
 * the same last revision and the same `created`. Pieces are exact-size
 * buffers, so ASan catches a read past what was received. Other
 * properties: notices are TOPO_CHANGE_NODE or _DELETED with a readable path; the
 * verdict sticks once not OK; nothing leaks.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "../../backends/etcd/json.h"
#include "../../backends/etcd/watch.h"
#include "fuzz_common.h"

#define ROOT "/vitess/global"

/* The notices one run delivered, as one byte string. */
struct record {
	char *buf;
	size_t len, cap;
	size_t calls;
};

static void rec_add(struct record *r, const void *p, size_t n)
{
	if (r->len + n > r->cap) {
		size_t cap = r->cap ? r->cap : 256;

		while (cap < r->len + n)
			cap *= 2;
		r->buf = realloc(r->buf, cap);
		if (!r->buf)
			abort();
		r->cap = cap;
	}
	memcpy(r->buf + r->len, p, n);
	r->len += n;
}

static void on_change(void *arg, enum topo_change what, const char *path,
		      int64_t version)
{
	struct record *r = arg;

	FUZZ_CHECK(what == TOPO_CHANGE_NODE || what == TOPO_CHANGE_DELETED);
	FUZZ_CHECK(path != NULL);
	r->calls++;
	rec_add(r, &what, sizeof(what));
	rec_add(r, &version, sizeof(version));
	rec_add(r, path, strlen(path) + 1);
}

struct outcome {
	struct record rec;
	enum etcd_verdict verdict;
	int64_t last_revision;
	bool created;
};

/* Feed data[0..size) in pieces ending at the cut points (none: whole). */
static void run(const uint8_t *data, size_t size, const size_t *cuts,
		size_t ncuts, struct outcome *o)
{
	struct etcd_stream st;
	size_t at = 0;

	memset(o, 0, sizeof(*o));
	memset(&st, 0, sizeof(st));
	st.root = ROOT;
	st.fn = on_change;
	st.arg = &o->rec;
	st.last_revision = 5;
	etcd_stream_reset(&st);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : size;
		char *piece;
		enum etcd_verdict v, before = st.verdict;

		if (end < at)
			end = at;
		piece = fuzz_exact(data + at, end - at);
		v = etcd_stream_feed(&st, piece, end - at);
		free(piece);
		FUZZ_CHECK(v == st.verdict);
		FUZZ_CHECK(v == ETCD_STREAM_OK || v == ETCD_STREAM_COMPACTED ||
			   v == ETCD_STREAM_FAILED);
		if (before != ETCD_STREAM_OK)
			FUZZ_CHECK(v == before); /* sticks */
		at = end;
	}
	o->verdict = st.verdict;
	o->last_revision = st.last_revision;
	o->created = st.created;
	etcd_split_clear(&st.split);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole, cut;
	size_t cuts[16], ncuts = 0;
	uint32_t h = 2166136261u;

	/* Cut points from a hash of the input: the same input always cuts
	 * the same way, and small inputs get cut after every byte. */
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 16777619u;
	if (size <= 16) {
		for (size_t i = 1; i < size; i++)
			cuts[ncuts++] = i;
	} else {
		size_t at = 0;

		while (ncuts < 16) {
			h = h * 1103515245u + 12345u;
			at += 1 + (h >> 8) % (size / 8 + 1);
			if (at >= size)
				break;
			cuts[ncuts++] = at;
		}
	}

	run(data, size, NULL, 0, &whole);
	run(data, size, cuts, ncuts, &cut);
	FUZZ_CHECK(whole.verdict == cut.verdict);
	FUZZ_CHECK(whole.last_revision == cut.last_revision);
	FUZZ_CHECK(whole.created == cut.created);
	FUZZ_CHECK(whole.rec.calls == cut.rec.calls);
	FUZZ_CHECK(whole.rec.len == cut.rec.len);
	FUZZ_CHECK(whole.rec.len == 0 ||
		   memcmp(whole.rec.buf, cut.rec.buf, whole.rec.len) == 0);
	free(whole.rec.buf);
	free(cut.rec.buf);

	/* The same bytes as one object of the stream, for a few roots. */
	static const char *const roots[] = {ROOT, "", "/a"};
	char *json = fuzz_exact(data, size);

	for (size_t i = 0; i < 3; i++) {
		struct etcd_watch_resp r;
		int err = etcd_parse_watch(json, size, roots[i], &r);

		FUZZ_CHECK(err <= 0);
		if (r.reason)
			fuzz_touch(r.reason, strlen(r.reason) + 1);
		if (err) {
			/* An error keeps its message in reason, no events. */
			FUZZ_CHECK(r.count == 0 && r.events == NULL);
			etcd_watch_resp_clear(&r);
			continue;
		}
		for (size_t j = 0; j < r.count; j++) {
			FUZZ_CHECK(r.events[j].path != NULL);
			fuzz_touch(r.events[j].path,
				   strlen(r.events[j].path) + 1);
		}
		etcd_watch_resp_clear(&r);
	}
	free(json);
	return 0;
}
