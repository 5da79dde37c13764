/*
 * writeback.c - see writeback.h.
 *
 * Concurrency
 *   FUSE threads append to a FIFO under `mu`; one thread of ours takes up to
 *   a batch of creates from its head, applies them without the lock, and
 *   counts them done. Sequence numbers order everything: `queued` counts
 *   creates ever queued, `done` those applied (or failed); a waiter notes
 *   `queued` and sleeps on `progress` until `done` reaches it. The queue is
 *   bounded (WB_MAX_OPS creates, WB_MAX_BYTES of values): a full queue makes
 *   writeback_create wait, so memory stays bounded whatever the restore.
 *
 *   With a batch not full and nobody waiting, the thread lingers for
 *   more creates while they keep coming (each within WB_LINGER_GAP_US of
 *   the one before), up to WB_LINGER_MAX_US in all; a waiter or a full
 *   batch ends that. A restore whose creates trickle in (tar -x makes one
 *   file at a time) then goes in batches of dozens to hundreds: with a
 *   fixed 2 ms it went in batches of 5 or 6, and each transaction costs
 *   etcd far more than its keys (a 10k restore on a busy machine: 1,671
 *   transactions and 13.7 s then, 94 and 7.8 s now). A create alone
 *   still goes within WB_LINGER_GAP_US.
 *
 *   A batch is one multi() of creates (expect absent) in queue order, so a
 *   directory is made before what is created in it. If the store refuses
 *   the batch, every create of it is tried alone, and only those the store
 *   refuses fail. A store that does not answer gets the batch again a few
 *   times; a create tried alone that finds the key already there with our
 *   value counts as done (a lost answer of an earlier try that landed).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "topofs/log.h"
#include "writeback.h"

#define WB_BATCH 256		 /* creates per multi(), at most */
#define WB_MAX_OPS 8192		 /* queued creates, at most */
#define WB_MAX_BYTES (64u << 20) /* queued value bytes, at most */
#define WB_RETRIES 3		 /* tries of a batch the store missed */
#define WB_RETRY_PAUSE_US (500 * 1000)
#define WB_LINGER_GAP_US 10000 /* a batch waits this long for one more */
#define WB_LINGER_MAX_US 50000 /* and this long in all, at most */

struct wb_op {
	struct wb_op *next;
	char *path;
	unsigned char *value;
	size_t len;
	bool is_dir;
};

struct writeback {
	const struct topo_backend *be;
	struct topo_store *st;
	struct cache *cache;
	writeback_applied_fn applied;
	void *arg;
	pthread_t thread;

	pthread_mutex_t mu;	   /* guards everything below */
	pthread_cond_t work;	   /* the queue has creates, or stopping */
	pthread_cond_t progress;   /* `done` moved */
	struct wb_op *head, *tail; /* queued, not taken yet */
	struct wb_op *inflight;	   /* the batch being applied */
	size_t nops, nbytes;	   /* in the queue and in the batch in flight */
	uint64_t queued, done;	   /* creates ever queued / applied or failed */
	unsigned waiters;	   /* in writeback_wait: do not linger */
	size_t failed;		   /* creates failed, ever */
	bool failed_unreported;	   /* ... since writeback_sync last said so */
	bool stopping;
};

static void op_free(struct wb_op *op)
{
	free(op->path);
	free(op->value);
	free(op);
}

/* A create the store refused: tell, and let the cache forget it. */
static void failed(struct writeback *w, const struct wb_op *op, int rc)
{
	topo_err("%s: not created (-o writeback): %s", op->path, strerror(-rc));
	cache_set_pending(w->cache, op->path, false);
	cache_invalidate(w->cache, op->path);
	pthread_mutex_lock(&w->mu);
	w->failed++;
	w->failed_unreported = true;
	pthread_mutex_unlock(&w->mu);
}

/* A create the store made: the cache asks for its real metadata at the
 * next access, and the kernel forgets what it was told before. */
static void succeeded(struct writeback *w, const struct wb_op *op)
{
	cache_mark_stale(w->cache, op->path);
	if (w->applied)
		w->applied(w->arg, op->path);
}

/* Whether the store holds op's node with op's value: a create of ours whose
 * answer was lost. */
static bool landed(struct writeback *w, const struct wb_op *op)
{
	struct topo_entry e = {0};
	bool same = w->be->get(w->st, op->path, &e) == 0 &&
		    e.meta.size == op->len &&
		    (op->len == 0 || memcmp(e.value, op->value, op->len) == 0);
	topo_entry_free(&e);
	return same;
}

/* Create one node alone. 0 or the store's error. */
static int apply_one(struct writeback *w, const struct wb_op *op)
{
	cache_write_begin(w->cache);
	int rc = op->is_dir && w->be->mkdir
		     ? w->be->mkdir(w->st, op->path)
		     : w->be->put(w->st, op->path, op->value, op->len,
				  TOPO_EXPECT_ABSENT, NULL);
	cache_write_end(w->cache);
	if (rc == -EEXIST && landed(w, op))
		rc = 0;
	return rc;
}

/* Apply batch[0..n) (linked by next): one multi(), else one by one. */
static void apply_batch(struct writeback *w, struct wb_op *batch, size_t n)
{
	struct topo_op *ops = calloc(n, sizeof(*ops));
	int rc = -ENOMEM;
	if (ops) {
		size_t i = 0;
		for (struct wb_op *op = batch; op; op = op->next, i++)
			ops[i] = (struct topo_op){.kind = TOPO_OP_PUT,
						  .path = op->path,
						  .value = op->value,
						  .len = op->len,
						  .expect = TOPO_EXPECT_ABSENT};
		cache_write_begin(w->cache);
		rc = w->be->multi(w->st, ops, n);
		for (int t = 1; rc == -EIO && t < WB_RETRIES; t++) {
			usleep(WB_RETRY_PAUSE_US); /* the store is away */
			rc = w->be->multi(w->st, ops, n);
		}
		cache_write_end(w->cache);
		free(ops);
	}
	for (struct wb_op *op = batch; op; op = op->next) {
		int orc = rc == 0 || rc == -EIO ? rc : apply_one(w, op);
		if (orc)
			failed(w, op, orc);
		else
			succeeded(w, op);
	}
}

/* Take the next batch off the queue: creates in order, up to WB_BATCH and
 * the store's limits. Called with mu held. */
static struct wb_op *take_batch(struct writeback *w, size_t *n)
{
	size_t max = w->be->max_ops < WB_BATCH ? w->be->max_ops : WB_BATCH;
	size_t bytes = 0, cap = w->be->max_value / 2; /* room for encoding */
	struct wb_op *batch = w->head, **end = &batch;
	*n = 0;
	while (*end && *n < max && (*n == 0 || bytes + (*end)->len <= cap)) {
		bytes += (*end)->len;
		end = &(*end)->next;
		(*n)++;
	}
	w->head = *end;
	if (!w->head)
		w->tail = NULL;
	*end = NULL;
	return batch;
}

/* t plus us microseconds. */
static struct timespec plus_us(struct timespec t, long us)
{
	t.tv_nsec += us * 1000L;
	t.tv_sec += t.tv_nsec / 1000000000L;
	t.tv_nsec %= 1000000000L;
	return t;
}

static bool earlier(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	       (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* Let the queue fill while creates keep coming (see Concurrency). Called
 * and returns with mu held. */
static void linger(struct writeback *w)
{
	struct timespec now, last;
	clock_gettime(CLOCK_REALTIME, &last); /* the condition's clock */
	struct timespec end = plus_us(last, WB_LINGER_MAX_US);
	uint64_t seen = w->queued;
	while (w->head && !w->stopping && !w->waiters && w->nops < WB_BATCH) {
		struct timespec until = plus_us(last, WB_LINGER_GAP_US);
		if (earlier(&end, &until))
			until = end;
		pthread_cond_timedwait(&w->work, &w->mu, &until);
		clock_gettime(CLOCK_REALTIME, &now);
		if (!earlier(&now, &end))
			return;
		if (w->queued != seen) { /* one more came: wait for the next */
			seen = w->queued;
			last = now;
		} else if (!earlier(&now, &until)) {
			return; /* none came within the gap */
		}
	}
}

static void *writeback_main(void *arg)
{
	struct writeback *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->head && !w->stopping)
			pthread_cond_wait(&w->work, &w->mu);
		if (!w->head)
			break; /* stopping, and all applied */
		linger(w);
		size_t n;
		struct wb_op *batch = take_batch(w, &n);
		w->inflight = batch;
		pthread_mutex_unlock(&w->mu);
		apply_batch(w, batch, n);
		size_t bytes = 0;
		pthread_mutex_lock(&w->mu);
		w->inflight = NULL;
		pthread_mutex_unlock(&w->mu);
		while (batch) {
			struct wb_op *next = batch->next;
			bytes += batch->len;
			op_free(batch);
			batch = next;
		}
		pthread_mutex_lock(&w->mu);
		w->nops -= n;
		w->nbytes -= bytes;
		w->done += n;
		pthread_cond_broadcast(&w->progress);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

struct writeback *writeback_start(const struct topo_backend *be,
				  struct topo_store *st, struct cache *cache,
				  writeback_applied_fn applied, void *arg)
{
	struct writeback *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	*w = (struct writeback){
	    .be = be, .st = st, .cache = cache, .applied = applied, .arg = arg};
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->progress, NULL);
	if (pthread_create(&w->thread, NULL, writeback_main, w) != 0) {
		pthread_cond_destroy(&w->progress);
		pthread_cond_destroy(&w->work);
		pthread_mutex_destroy(&w->mu);
		free(w);
		return NULL;
	}
	return w;
}

int writeback_create(struct writeback *w, const char *path, const void *value,
		     size_t len, bool is_dir)
{
	struct wb_op *op = calloc(1, sizeof(*op));
	if (!op || !(op->path = strdup(path)) ||
	    (len && !(op->value = malloc(len)))) {
		if (op)
			op_free(op);
		return -ENOMEM;
	}
	if (len)
		memcpy(op->value, value, len);
	op->len = len;
	op->is_dir = is_dir;
	pthread_mutex_lock(&w->mu);
	while (w->nops &&
	       (w->nops >= WB_MAX_OPS || w->nbytes + len > WB_MAX_BYTES))
		pthread_cond_wait(&w->progress, &w->mu); /* full: wait */
	if (w->tail)
		w->tail->next = op;
	else
		w->head = op;
	w->tail = op;
	w->nops++;
	w->nbytes += len;
	w->queued++;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

void writeback_wait(struct writeback *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	uint64_t target = w->queued;
	w->waiters++;
	pthread_cond_signal(&w->work); /* no lingering now */
	while (w->done < target)
		pthread_cond_wait(&w->progress, &w->mu);
	w->waiters--;
	pthread_mutex_unlock(&w->mu);
}

/* Whether path is in the list ops. */
static bool listed(const struct wb_op *ops, const char *path)
{
	for (; ops; ops = ops->next)
		if (strcmp(ops->path, path) == 0)
			return true;
	return false;
}

void writeback_wait_for(struct writeback *w, const char *path)
{
	if (writeback_queued(w, path))
		writeback_wait(w);
}

bool writeback_queued(struct writeback *w, const char *path)
{
	if (!w)
		return false;
	pthread_mutex_lock(&w->mu);
	bool queued = listed(w->inflight, path) || listed(w->head, path);
	pthread_mutex_unlock(&w->mu);
	return queued;
}

int writeback_sync(struct writeback *w)
{
	if (!w)
		return 0;
	writeback_wait(w);
	pthread_mutex_lock(&w->mu);
	int rc = w->failed_unreported ? -EIO : 0;
	w->failed_unreported = false;
	pthread_mutex_unlock(&w->mu);
	return rc;
}

size_t writeback_stop(struct writeback *w)
{
	if (!w)
		return 0;
	pthread_mutex_lock(&w->mu);
	w->stopping = true;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	size_t n = w->failed;
	pthread_cond_destroy(&w->progress);
	pthread_cond_destroy(&w->work);
	pthread_mutex_destroy(&w->mu);
	free(w);
	return n;
}
