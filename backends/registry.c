/*
 * registry.c - the list of backends, chosen by name, and the result helpers
 * that every backend shares.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topofs/backend.h"

extern const struct topo_backend topo_backend_etcd;
extern const struct topo_backend topo_backend_zk;
/* etcd's v2 keys API: chosen by -o etcd_api=v2, not by name */
extern const struct topo_backend topo_backend_etcdv2;

static const struct topo_backend *const backends[] = {
    &topo_backend_etcd,
    &topo_backend_zk,
};

const struct topo_backend *topo_backend_find(const char *name)
{
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strcmp(backends[i]->name, name) == 0)
			return backends[i];
	return NULL;
}

const struct topo_backend *topo_backend_select(const char *name,
					       const char *etcd_api)
{
	if (!etcd_api || strcmp(etcd_api, "v3") == 0)
		return topo_backend_find(name);
	if (strcmp(etcd_api, "v2") == 0 && strcmp(name, "etcd2") == 0)
		return &topo_backend_etcdv2;
	return NULL;
}

const struct topo_backend *topo_backend_nth(size_t i)
{
	return i < sizeof(backends) / sizeof(backends[0]) ? backends[i] : NULL;
}

const char *topo_backend_names(void)
{
	return "etcd2, zk2";
}

int topo_listing_add(struct topo_listing *l, const char *path, size_t pathlen,
		     const struct topo_meta *meta, unsigned char *value)
{
	if (l->sink && l->count >= TOPO_LISTING_BATCH) {
		int rc = topo_listing_flush(l);
		if (rc)
			return rc;
	}
	if (l->count == l->capacity) {
		size_t cap = l->capacity ? l->capacity * 2 : 64;
		struct topo_entry *e = realloc(l->entries, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		l->entries = e;
		l->capacity = cap;
	}
	char *p = malloc(pathlen + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p, path, pathlen);
	p[pathlen] = '\0';
	struct topo_entry *e = &l->entries[l->count++];
	e->path = p;
	e->meta = *meta;
	e->value = value; /* ownership moves into the listing */
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct topo_entry *x = a, *y = b;
	return strcmp(x->path, y->path);
}

void topo_listing_sort(struct topo_listing *l)
{
	if (l->count > 1)
		qsort(l->entries, l->count, sizeof(l->entries[0]), entry_cmp);
}

void topo_entry_free(struct topo_entry *e)
{
	if (!e)
		return;
	free(e->path);
	free(e->value);
	e->path = NULL;
	e->value = NULL;
}

/* Free the entries held, keeping the array for more. */
static void drop_entries(struct topo_listing *l)
{
	for (size_t i = 0; i < l->count; i++)
		topo_entry_free(&l->entries[i]);
	l->count = 0;
}

int topo_listing_flush(struct topo_listing *l)
{
	int rc = 0;
	if (l->sink && l->count)
		rc = l->sink->take(l->sink->ctx, l->entries, l->count);
	if (l->sink)
		drop_entries(l);
	return rc;
}

void topo_listing_restart(struct topo_listing *l)
{
	drop_entries(l);
	l->revision = 0;
	if (l->sink)
		l->sink->restart(l->sink->ctx);
}

void topo_listing_free(struct topo_listing *l)
{
	if (!l)
		return;
	drop_entries(l);
	free(l->entries);
	memset(l, 0, sizeof(*l));
}

void topo_check_report(topo_check_fn fn, void *arg, enum topo_check_level level,
		       const char *server, const char *what, double ms,
		       bool foreign, const char *fmt, ...)
{
	char value[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	fn(arg, &(struct topo_check_item){.level = level,
					  .server = server,
					  .what = what,
					  .value = value,
					  .ms = ms,
					  .foreign = foreign});
}
