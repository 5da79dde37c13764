/*
 * serve.c - one store served: its connection, cache, change notices and
 * -o writeback queue, for the mount's one store (main.c) or for each store
 * of a deployment view (deploy.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lowlevel.h"
#include "topofs.h"
#include "topofs/log.h"

struct topo_conf topofs_conf(const struct topofs_opts *o)
{
	return (struct topo_conf){
	    .servers = o->servers,
	    .root = o->root,
	    .timeout_ms = o->timeout_ms,
	    .tls_cert = o->tls_cert,
	    .tls_key = o->tls_key,
	    .tls_ca = o->tls_ca,
	    .zk_auth_file = o->zk_auth_file,
	    .etcd_user = o->etcd_user,
	    .etcd_password_file = o->etcd_password_file,
	    .missing_root_ok = o->create_root,
	    .revision = o->pin_revision,
	    .snapshot = o->snapshot,
	};
}

int topofs_connect(const struct topo_backend *be, const struct topofs_opts *o,
		   struct topo_store **st, char *err, size_t errlen)
{
	struct topo_conf conf = topofs_conf(o);
	*err = '\0';
	int rc = be->open(&conf, st, err, errlen);
	if (rc && !*err)
		snprintf(err, errlen, "%s", strerror(-rc));
	return rc;
}

/* Start the store's change notices, if it has them. */
static void start_watch(struct topofs *t)
{
	if (t->opts->pin_revision) {
		/* A past revision never changes: trust every listing. */
		cache_watch_started(t->cache);
		t->watched = true;
		return;
	}
	if (!t->be->watch)
		return;
	t->notifier = notifier_start(topofs_tell_kernel, t, 0);
	t->renotifier = notifier_start(topofs_tell_kernel, t, RENOTIFY_MS);
	t->rechecker = notifier_start(topofs_recheck, t, t->opts->cache_ttl_ms);
	int rc = t->be->watch(t->st, topofs_on_change, t);
	if (rc) {
		topo_warn("%s%sno change notices from the store (%s): other "
			  "clients' changes show within -o cache_ttl",
			  t->top, *t->top ? ": " : "", strerror(-rc));
		return;
	}
	cache_watch_started(t->cache);
	t->watched = true;
}

int topofs_serve_store(struct topofs *t)
{
	t->cache = cache_new(t->be, t->st, t->opts->cache_ttl_ms);
	if (!t->cache)
		return -ENOMEM;
	unsettled_init(&t->unsettled);
	start_watch(t);
	if (t->opts->writeback &&
	    !(t->wb =
		  writeback_start(t->be, t->st, t->cache, topofs_written, t)))
		return -ENOMEM;
	return 0;
}

size_t topofs_stop_store(struct topofs *t)
{
	size_t failed = 0;
	if (t->wb) /* apply what is queued before the store closes */
		failed = writeback_stop(t->wb);
	t->wb = NULL;
	notifier_stop(t->rechecker, false); /* its work reads the store */
	if (t->st)
		t->be->close(t->st); /* stops the watch: no notice after this */
	t->st = NULL;
	notifier_stop(t->notifier, false); /* nothing left to tell */
	notifier_stop(t->renotifier, false);
	notifier_free(t->rechecker);
	notifier_free(t->notifier);
	notifier_free(t->renotifier);
	t->rechecker = t->notifier = t->renotifier = NULL;
	cache_free(t->cache);
	t->cache = NULL;
	t->watched = false;
	return failed;
}
