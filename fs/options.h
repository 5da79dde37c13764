/*
 * options.h - the command line: Vitess's topo flags in both spellings, the
 * SOURCE URL form, topofs's own -o options, and what goes on to libfuse.
 */
#ifndef TOPOFS_OPTIONS_H
#define TOPOFS_OPTIONS_H

#include <fuse_opt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct topofs_opts {
	/* raw strings as given (owned by fuse_opt: free with opts_free) */
	char *implementation; /* --topo_implementation, default etcd2 */
	char *servers;	      /* --topo_global_server_address */
	char *root;	      /* --topo_global_root */
	char *timeout;	      /* -o timeout=SECONDS */
	char *cache_ttl;      /* -o cache_ttl=MILLISECONDS */
	char *view;	      /* -o view=raw|json */
	char *scratch;	      /* -o scratch=PATTERNS */
	char *tls_cert, *tls_key, *tls_ca, *zk_auth_file;
	char *etcd_user, *etcd_password_file; /* -o etcd_user=, ... */
	char *revision;		 /* -o revision=N, NULL if not given */
	char *etcd_api;		 /* -o etcd_api=v2|v3, NULL if not given (v3) */
	char *uid, *gid, *umask; /* -o uid=N, gid=N, umask=OCTAL: the owner
				    and modes shown; NULL if not given */
	char *cells_list;	 /* -o cells=A,B: the cells shown, NULL: all */
	char *source;		 /* first positional when two are given */
	char *mountpoint;
	int noephemeral, create_root, read_only, writeback;
	int allow_other, default_permissions; /* seen among the -o options */
	int snapshot;			      /* -o snapshot */
	int cells; /* -o cells[=A,B]: the deployment view (deploy.c) */
	int foreground, single_thread, debug;
	int show_help, show_version;
	/* --check[=write], --json: check the store, mount nothing (check.h) */
	int check, check_write, check_json;

	/* validated values, set by opts_parse */
	unsigned timeout_ms;
	unsigned cache_ttl_ms;
	int64_t pin_revision;			    /* -o revision=N; 0: none */
	unsigned uid_value, gid_value, umask_value; /* when given */
};

/* Parse argv into *o; what libfuse must see (mount options such as
 * allow_other, ro; -d) is left in *fuse_args, which the caller frees
 * with fuse_opt_free_args. Returns 0, or -EINVAL with a one-line reason in
 * err (no "topofs:" prefix). --help and --version set show_* and return 0
 * without checking the rest. */
int opts_parse(int argc, char **argv, struct topofs_opts *o,
	       struct fuse_args *fuse_args, char *err, size_t errlen);

/* Check -o etcd_api, -o revision and -o snapshot against the store (the
 * rest of *o already valid): 0, or -EINVAL with a one-line reason in err.
 * Sets pin_revision. (options_pin.c) */
int opts_check_store(struct topofs_opts *o, char *err, size_t errlen);

/* Free the strings in *o. */
void opts_free(struct topofs_opts *o);

/* The usage text for --help. */
extern const char opts_usage[];

#endif
