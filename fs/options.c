/* options.c - see options.h. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "path.h"
#include "topofs/backend.h"

enum {
	KEY_HELP,
	KEY_VERSION,
	KEY_RO,
	KEY_DEBUG,
	KEY_IGNORE,
	KEY_PASSWORD,
	KEY_ALLOW_OTHER,
	KEY_DEFAULT_PERMISSIONS,
	KEY_CHECK,
};

#define STR(templ, field)                                                      \
	{                                                                      \
		templ, offsetof(struct topofs_opts, field), 0                  \
	}
#define FLAG(templ, field)                                                     \
	{                                                                      \
		templ, offsetof(struct topofs_opts, field), 1                  \
	}

/* A Vitess flag in both spellings, as --flag=V and -o flag=V (--flag V is
 * joined into --flag=V by join_flag_values first). */
#define VITESS(under, dash, field)                                             \
	STR("--" under "=%s", field), STR("--" dash "=%s", field),             \
	    STR(under "=%s", field), STR(dash "=%s", field)

static const struct fuse_opt opt_spec[] = {
    VITESS("topo_implementation", "topo-implementation", implementation),
    VITESS("topo_global_server_address", "topo-global-server-address", servers),
    VITESS("topo_global_root", "topo-global-root", root),
    VITESS("topo_etcd_tls_cert", "topo-etcd-tls-cert", tls_cert),
    VITESS("topo_etcd_tls_key", "topo-etcd-tls-key", tls_key),
    VITESS("topo_etcd_tls_ca", "topo-etcd-tls-ca", tls_ca),
    VITESS("topo_zk_auth_file", "topo-zk-auth-file", zk_auth_file),
    STR("timeout=%s", timeout),
    STR("--timeout=%s", timeout),
    STR("cache_ttl=%s", cache_ttl),
    STR("view=%s", view),
    STR("--view=%s", view),
    STR("scratch=%s", scratch),
    STR("etcd_user=%s", etcd_user),
    STR("--etcd_user=%s", etcd_user),
    STR("etcd_password_file=%s", etcd_password_file),
    STR("--etcd_password_file=%s", etcd_password_file),
    /* A password on the command line shows in ps and shell history. */
    FUSE_OPT_KEY("etcd_password=", KEY_PASSWORD),
    FUSE_OPT_KEY("--etcd_password=", KEY_PASSWORD),
    FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
    FUSE_OPT_KEY("default_permissions", KEY_DEFAULT_PERMISSIONS),
    STR("uid=%s", uid),
    STR("gid=%s", gid),
    STR("umask=%s", umask),
    STR("revision=%s", revision),
    STR("etcd_api=%s", etcd_api),
    FLAG("snapshot", snapshot),
    FLAG("cells", cells),
    FLAG("--cells", cells),
    STR("cells=%s", cells_list),
    STR("--cells=%s", cells_list),
    FLAG("noephemeral", noephemeral),
    FLAG("create_root", create_root),
    FLAG("writeback", writeback),
    FLAG("-f", foreground),
    FLAG("-s", single_thread),
    FLAG("ro", read_only),
    FUSE_OPT_KEY("ro", KEY_RO),
    FUSE_OPT_KEY("rw", KEY_RO),
    FLAG("-d", debug),
    FLAG("debug", debug),
    FUSE_OPT_KEY("-d", KEY_DEBUG),
    FUSE_OPT_KEY("debug", KEY_DEBUG),
    FUSE_OPT_KEY("--check", KEY_CHECK),
    FUSE_OPT_KEY("--check=", KEY_CHECK),
    FLAG("--json", check_json),
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    /* mount(8)'s and systemd's own fstab options (and x-*, in opt_proc) */
    FUSE_OPT_KEY("defaults", KEY_IGNORE),
    FUSE_OPT_KEY("auto", KEY_IGNORE),
    FUSE_OPT_KEY("noauto", KEY_IGNORE),
    FUSE_OPT_KEY("_netdev", KEY_IGNORE),
    FUSE_OPT_KEY("nofail", KEY_IGNORE),
    FUSE_OPT_KEY("user", KEY_IGNORE),
    FUSE_OPT_KEY("nouser", KEY_IGNORE),
    FUSE_OPT_KEY("users", KEY_IGNORE),
    FUSE_OPT_KEY("owner", KEY_IGNORE),
    FUSE_OPT_KEY("group", KEY_IGNORE),
    FUSE_OPT_KEY("comment=", KEY_IGNORE),
    /* atime flags mount(8) passes on that libfuse 3.14 refuses (topofs
     * mounts noatime anyway) */
    FUSE_OPT_KEY("diratime", KEY_IGNORE),
    FUSE_OPT_KEY("nodiratime", KEY_IGNORE),
    FUSE_OPT_KEY("relatime", KEY_IGNORE),
    FUSE_OPT_KEY("norelatime", KEY_IGNORE),
    FUSE_OPT_KEY("strictatime", KEY_IGNORE),
    FUSE_OPT_KEY("nostrictatime", KEY_IGNORE),
    FUSE_OPT_KEY("lazytime", KEY_IGNORE),
    FUSE_OPT_KEY("nolazytime", KEY_IGNORE),
    /* libfuse's high-level API took these (topofs used to run on it). The
     * kernel's cache lifetimes were always topofs's choice (op_init), and
     * topofs serves files as use_ino, readdir_ino and hard_remove asked:
     * accepted and ignored, so that command and fstab lines still mount.
     * (uid=, gid= and umask= above still do what they did.) */
    FUSE_OPT_KEY("hard_remove", KEY_IGNORE),
    FUSE_OPT_KEY("use_ino", KEY_IGNORE),
    FUSE_OPT_KEY("readdir_ino", KEY_IGNORE),
    FUSE_OPT_KEY("direct_io", KEY_IGNORE),
    FUSE_OPT_KEY("kernel_cache", KEY_IGNORE),
    FUSE_OPT_KEY("auto_cache", KEY_IGNORE),
    FUSE_OPT_KEY("noauto_cache", KEY_IGNORE),
    FUSE_OPT_KEY("no_rofd_flush", KEY_IGNORE),
    FUSE_OPT_KEY("entry_timeout=", KEY_IGNORE),
    FUSE_OPT_KEY("attr_timeout=", KEY_IGNORE),
    FUSE_OPT_KEY("ac_attr_timeout=", KEY_IGNORE),
    FUSE_OPT_KEY("negative_timeout=", KEY_IGNORE),
    FUSE_OPT_KEY("noforget", KEY_IGNORE),
    FUSE_OPT_KEY("remember=", KEY_IGNORE),
    FUSE_OPT_KEY("intr", KEY_IGNORE),
    FUSE_OPT_KEY("intr_signal=", KEY_IGNORE),
    FUSE_OPT_END,
};

const char opts_usage[] =
    "Usage: topofs [OPTIONS] [SOURCE] MOUNTPOINT\n"
    "       topofs --check[=write] [--json] [OPTIONS] [SOURCE]\n"
    "\n"
    "Mount a Vitess topology root kept in etcd or ZooKeeper as a directory "
    "tree.\n"
    "SOURCE, instead of the server and root flags:\n"
    "  etcd2://H:P[,H:P...]/ROOT or zk2://H:P[,H:P...]/ROOT\n"
    "\n"
    "Vitess flags (also as --topo-..., --flag VALUE and -o topo_...=VALUE):\n"
    "  --topo_implementation=etcd2|zk2     store (default etcd2)\n"
    "  --topo_global_server_address=H:P[,H:P...]\n"
    "                                      servers (default localhost:2379)\n"
    "  --topo_global_root=PATH             root (default /vitess/global)\n"
    "  --topo_etcd_tls_cert=FILE           TLS to etcd: client certificate\n"
    "  --topo_etcd_tls_key=FILE            TLS to etcd: its private key\n"
    "  --topo_etcd_tls_ca=FILE             TLS to etcd: CA certificates\n"
    "  --topo_zk_auth_file=FILE            ZooKeeper auth, one line "
    "scheme:auth\n"
    "                                      (e.g. digest:user:password)\n"
    "  TLS to etcd: https, the server's certificate checked against the CA\n"
    "  file (host name included), the client certificate sent.\n"
    "\n"
    "topofs options (-o NAME=VALUE):\n"
    "  -o timeout=SECONDS    bound on every store operation (default 10);\n"
    "                        also --timeout=SECONDS\n"
    "  -o cache_ttl=MS       without the store's watch: how long the kernel\n"
    "                        keeps names and attributes, and a listing is\n"
    "                        trusted (default 1000)\n"
    "  -o view=raw|json      values as stored (default), or Vitess records\n"
    "                        (Keyspace, Shard, Tablet, ...) as JSON;\n"
    "                        also --view=raw|json\n"
    "  -o scratch=PATTERNS   editor scratch names kept in memory only\n"
    "                        (default .*.sw?,.*.swpx,*~,4913,.#*,#*#,sed??????"
    ")\n"
    "  -o noephemeral        hide leased keys / ephemeral znodes\n"
    "  -o create_root        accept a missing root (ZooKeeper: create it)\n"
    "  -o writeback          creates (restores) applied later in batches;\n"
    "                        failures reported by fsync and the exit status\n"
    "  -o etcd_user=NAME     log in to etcd as this user (etcd auth); needs\n"
    "  -o etcd_password_file=FILE\n"
    "                        the file holding its password, one line (the\n"
    "                        password itself is never taken on the command\n"
    "                        line, nor logged)\n"
    "  -o ro                 read-only mount\n"
    "  -o revision=N         etcd: read-only view of the store as of\n"
    "                        revision N (refused if compacted or future)\n"
    "  -o snapshot           etcd: read-only view pinned at the revision\n"
    "                        current at mount time (consistent backups)\n"
    "  -o cells[=A,B]        the whole deployment: global/ (this root) and\n"
    "                        one directory per cell of its CellInfo records\n"
    "                        (each on the cell's own servers and root);\n"
    "                        =A,B: only those cells (the names up to the\n"
    "                        next option; also --cells=A,B)\n"
    "  -o etcd_api=v3|v2     etcd2: the v3 API (default) or the v2 keys API\n"
    "                        (/v2/keys; etcd started with --enable-v2)\n"
    "  -o uid=N,gid=N        owner of every file (default: the mounting "
    "user)\n"
    "  -o allow_other        let other users in (needs user_allow_other in\n"
    "                        /etc/fuse.conf unless root); adds\n"
    "                        default_permissions: the kernel checks the\n"
    "                        modes shown (files 0644, directories 0755)\n"
    "\n"
    "Mount options (from mount(8) and fstab):\n"
    "  -o rw,dev,suid,exec,noatime,...\n"
    "                        kernel mount flags, as for any file system\n"
    "  -o _netdev,nofail,noauto,defaults,user,x-*,comment=...\n"
    "                        for mount(8) and systemd; ignored by topofs\n"
    "\n"
    "Checking (no mount point; the same flags or SOURCE as a mount):\n"
    "  --check               check every server, the root and each cell's\n"
    "                        servers; one line each: ok, warn or FAIL;\n"
    "                        exit 0 (all ok), 1 (warnings), 2 (failures)\n"
    "  --check=write         also create, read and delete a probe key\n"
    "                        under the root (never written otherwise)\n"
    "  --json                the report as one JSON document\n"
    "\n"
    "FUSE options:\n"
    "  -f                    stay in the foreground, log to stderr (without\n"
    "                        -f: a daemon once mounted, logging to syslog)\n"
    "  -d                    debug: log every FUSE request (implies -f)\n"
    "  -s                    single-threaded\n"
    "  -h, --help            this text\n"
    "  -V, --version         the version\n";

/* fuse_opt fills fields at offsets into its data pointer and hands the same
 * pointer to opt_proc: the options must come first. */
struct parse_state {
	struct topofs_opts o;
	char *positional[2];
	int npositional;
	char *bad;     /* first unknown --option, owned */
	bool password; /* a password on the command line */
};

static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct parse_state *ps = data;
	(void)outargs;
	switch (key) {
	case KEY_HELP:
		ps->o.show_help = 1;
		return 0;
	case KEY_VERSION:
		ps->o.show_version = 1;
		return 0;
	case KEY_RO:
		if (strcmp(arg, "rw") == 0)
			ps->o.read_only = 0; /* the last of ro / rw counts */
		return 1;		     /* libfuse needs it too */
	case KEY_DEBUG:
		return 1; /* libfuse needs these too */
	case KEY_IGNORE:
		return 0;
	case KEY_PASSWORD:
		ps->password = true; /* arg is never copied nor shown */
		return 0;
	case KEY_CHECK: /* --check, --check=read, --check=write */
		ps->o.check = 1;
		ps->o.check_write |= strcmp(arg, "--check=write") == 0;
		if (strchr(arg, '=') && strcmp(arg, "--check=write") &&
		    strcmp(arg, "--check=read") && !ps->bad)
			ps->bad = strdup(arg);
		return 0;
	case KEY_ALLOW_OTHER:
		ps->o.allow_other = 1;
		return 1;
	case KEY_DEFAULT_PERMISSIONS:
		ps->o.default_permissions = 1;
		return 1;
	case FUSE_OPT_KEY_NONOPT:
		if (ps->npositional == 2) {
			if (!ps->bad)
				ps->bad = strdup(arg);
			return 0;
		}
		ps->positional[ps->npositional] = strdup(arg);
		if (!ps->positional[ps->npositional])
			return -1;
		ps->npositional++;
		return 0;
	default:
		if (strncmp(arg, "x-", 2) == 0)
			return 0; /* x-systemd.*, x-gvfs-*: not ours */
		if (arg[0] == '-' && arg[1] == '-' && !ps->bad)
			ps->bad = strdup(arg); /* not a libfuse option either */
		return 1;
	}
}

static int replace(char **field, const char *s, size_t len)
{
	char *copy = strndup(s, len);
	if (!copy)
		return -ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

/* Split etcd2://hosts/root or zk2://hosts/root into the option fields. */
static int parse_source(struct topofs_opts *o, const char *src, char *err,
			size_t errlen)
{
	const char *sep = strstr(src, "://");
	if (!sep || sep == src) {
		snprintf(err, errlen,
			 "bad SOURCE '%s': expected etcd2://HOST:PORT/ROOT or "
			 "zk2://HOST:PORT/ROOT",
			 src);
		return -EINVAL;
	}
	const char *hosts = sep + 3;
	const char *slash = strchr(hosts, '/');
	size_t hlen = slash ? (size_t)(slash - hosts) : strlen(hosts);
	if (hlen == 0) {
		snprintf(err, errlen, "bad SOURCE '%s': no server address",
			 src);
		return -EINVAL;
	}
	if (replace(&o->implementation, src, (size_t)(sep - src)) ||
	    replace(&o->servers, hosts, hlen) ||
	    (slash && replace(&o->root, slash, strlen(slash))))
		return -ENOMEM;
	return 0;
}

/* Parse a whole number in [min, max]; -EINVAL otherwise. */
static int parse_uint(const char *s, unsigned long min, unsigned long max,
		      unsigned *out)
{
	char *end;
	errno = 0;
	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* -o uid=, gid= (whole numbers) and umask= (octal, at most 0777), when
 * given. */
static int parse_owner(struct topofs_opts *o, char *err, size_t errlen)
{
	const unsigned long id_max = 4294967294ul; /* (uid_t)-1 is none */
	char *end;
	if (o->uid && parse_uint(o->uid, 0, id_max, &o->uid_value)) {
		snprintf(err, errlen, "bad uid '%s': a user ID", o->uid);
		return -EINVAL;
	}
	if (o->gid && parse_uint(o->gid, 0, id_max, &o->gid_value)) {
		snprintf(err, errlen, "bad gid '%s': a group ID", o->gid);
		return -EINVAL;
	}
	if (!o->umask)
		return 0;
	errno = 0;
	unsigned long mask = strtoul(o->umask, &end, 8);
	if (!*o->umask || *o->umask == '-' || *o->umask == '+' || *end ||
	    errno || mask > 0777) {
		snprintf(err, errlen, "bad umask '%s': octal, at most 0777",
			 o->umask);
		return -EINVAL;
	}
	o->umask_value = (unsigned)mask;
	return 0;
}

/* Check and normalise the root: absolute, no empty, "." or ".." segment;
 * trailing slashes dropped. */
static int check_root(char *root, char *err, size_t errlen)
{
	size_t len = strlen(root);
	while (len > 1 && root[len - 1] == '/')
		root[--len] = '\0';
	bool ok = root[0] == '/' && (len == 1 || path_store_ok(root + 1));
	if (!ok)
		snprintf(
		    err, errlen,
		    "bad --topo_global_root '%s': must be an absolute path "
		    "without empty, '.' or '..' parts",
		    root);
	return ok ? 0 : -EINVAL;
}

/* -o cells=A,B: cell names, comma-separated, each a valid file name;
 * -o revision=N names one store's revision, and a deployment has several. */
static int check_cells(struct topofs_opts *o, char *err, size_t errlen)
{
	if (o->cells_list) {
		o->cells = 1;
		bool ok = *o->cells_list != '\0';
		for (const char *c = o->cells_list; ok && *c;) {
			size_t n = strcspn(c, ",");
			ok = n > 0 && n <= NAME_MAX && !memchr(c, '/', n) &&
			     !(n == 1 && c[0] == '.') &&
			     !(n == 2 && c[0] == '.' && c[1] == '.');
			c += n;
			if (*c == ',')
				ok = ok && *++c != '\0';
		}
		if (!ok) {
			snprintf(err, errlen,
				 "bad cells '%s': comma-separated cell names",
				 o->cells_list);
			return -EINVAL;
		}
	}
	if (o->cells && o->revision) {
		snprintf(err, errlen,
			 "-o revision=N names one store's revision; with -o "
			 "cells use -o snapshot (each store pinned at mount)");
		return -EINVAL;
	}
	return 0;
}

static int validate(struct topofs_opts *o, char *err, size_t errlen)
{
	if (!topo_backend_find(o->implementation)) {
		snprintf(err, errlen,
			 "unknown --topo_implementation '%s' (known: %s)",
			 o->implementation, topo_backend_names());
		return -EINVAL;
	}
	if (opts_check_store(o, err, errlen))
		return -EINVAL;
	if (!*o->servers || strchr(o->servers, ' ')) {
		snprintf(err, errlen, "bad --topo_global_server_address '%s'",
			 o->servers);
		return -EINVAL;
	}
	if (check_root(o->root, err, errlen))
		return -EINVAL;
	if (parse_uint(o->timeout, 1, 3600, &o->timeout_ms)) {
		snprintf(err, errlen,
			 "bad timeout '%s': whole seconds from 1 to 3600",
			 o->timeout);
		return -EINVAL;
	}
	o->timeout_ms *= 1000;
	if (parse_uint(o->cache_ttl, 1, 3600000, &o->cache_ttl_ms)) {
		snprintf(err, errlen,
			 "bad cache_ttl '%s': milliseconds from 1 to 3600000",
			 o->cache_ttl);
		return -EINVAL;
	}
	if (strcmp(o->view, "raw") != 0 && strcmp(o->view, "json") != 0) {
		snprintf(err, errlen,
			 "unknown view '%s' (supported: raw, json)", o->view);
		return -EINVAL;
	}
	struct scratch_patterns sp;
	if (scratch_patterns_parse(&sp, o->scratch)) {
		snprintf(err, errlen,
			 "bad scratch '%s': comma-separated name patterns "
			 "without '/'",
			 o->scratch);
		return -EINVAL;
	}
	scratch_patterns_free(&sp);
	if (!o->etcd_user != !o->etcd_password_file) {
		snprintf(err, errlen,
			 "-o etcd_user and -o etcd_password_file go together");
		return -EINVAL;
	}
	if (o->etcd_user && strcmp(o->implementation, "etcd2") != 0) {
		snprintf(err, errlen,
			 "-o etcd_user is for etcd2 (ZooKeeper: "
			 "--topo_zk_auth_file)");
		return -EINVAL;
	}
	if (parse_owner(o, err, errlen))
		return -EINVAL;
	if (check_cells(o, err, errlen))
		return -EINVAL;
	if (o->check_json && !o->check) {
		snprintf(err, errlen, "--json goes with --check");
		return -EINVAL;
	}
	if (!o->mountpoint && !o->check) {
		snprintf(err, errlen, "no mountpoint given (see --help)");
		return -EINVAL;
	}
	return 0;
}

static int set_defaults(struct topofs_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->implementation = strdup("etcd2");
	o->servers = strdup("localhost:2379");
	o->root = strdup("/vitess/global");
	o->timeout = strdup("10");
	o->cache_ttl = strdup("1000");
	o->view = strdup("raw");
	o->scratch = strdup(scratch_default_list);
	bool ok = o->implementation && o->servers && o->root && o->timeout &&
		  o->cache_ttl && o->view && o->scratch;
	return ok ? 0 : -ENOMEM;
}

/* Take MOUNTPOINT and SOURCE; SOURCE overrides the server and root flags. */
static int apply_positionals(struct topofs_opts *o, struct parse_state *ps,
			     char *err, size_t errlen)
{
	int rc = 0;
	if (o->check && ps->npositional == 2) {
		snprintf(err, errlen, "--check takes no mount point");
		return -EINVAL;
	}
	if (o->check && ps->npositional == 1) { /* topofs --check SOURCE */
		rc = parse_source(o, ps->positional[0], err, errlen);
		o->source = ps->positional[0];
		ps->positional[0] = NULL;
		return rc;
	}
	if (ps->npositional == 2) {
		rc = parse_source(o, ps->positional[0], err, errlen);
		o->source = ps->positional[0];
		ps->positional[0] = NULL;
	}
	if (ps->npositional >= 1) {
		o->mountpoint = ps->positional[ps->npositional - 1];
		ps->positional[ps->npositional - 1] = NULL;
	}
	return rc;
}

/* True if arg is "--NAME" for one of our "--NAME=%s" options. */
static bool takes_value(const char *arg)
{
	size_t len = strlen(arg);
	if (len < 3 || arg[0] != '-' || arg[1] != '-' || strchr(arg, '='))
		return false;
	for (const struct fuse_opt *t = opt_spec; t->templ; t++)
		if (strncmp(t->templ, arg, len) == 0 &&
		    strcmp(t->templ + len, "=%s") == 0)
			return true;
	return false;
}

/* Mount flags without a value that libfuse or the kernel take: they end a
 * list of cells as topofs's own options do. */
static const char *const mount_flags[] = {
    "auto_unmount", "allow_root", "dev",  "nodev",   "suid",	"nosuid",
    "exec",	    "noexec",	  "sync", "async",   "dirsync", "atime",
    "noatime",	    "blkdev",	  "rw",	  "nonempty"};

/* Whether item (one of an -o list's options) is an option and not a cell
 * name that followed "cells=". */
static bool is_option(const char *item)
{
	if (strchr(item, '=') || fuse_opt_match(opt_spec, item))
		return true;
	for (size_t i = 0; i < sizeof(mount_flags) / sizeof(*mount_flags); i++)
		if (strcmp(item, mount_flags[i]) == 0)
			return true;
	return false;
}

/* The -o list `list` with the commas of a "cells=A,B,C" escaped, so that
 * fuse_opt keeps the list in one option: the names after "cells=" up to
 * the next option are cells. Malloc'd, NULL on ENOMEM. */
static char *escape_cell_list(const char *list)
{
	char *out = malloc(2 * strlen(list) + 1), *o = out;
	bool in_cells = false;
	for (const char *c = list; out && *c;) {
		size_t n = 0; /* the item's length, up to an unescaped comma */
		while (c[n] && c[n] != ',')
			n += c[n] == '\\' && c[n + 1] ? 2 : 1;
		char *item = strndup(c, n);
		if (!item) {
			free(out);
			return NULL;
		}
		bool cell = in_cells && *item && !is_option(item);
		if (c != list)
			o = stpcpy(o, cell ? "\\," : ",");
		o = stpcpy(o, item);
		in_cells = cell || strncmp(item, "cells=", 6) == 0;
		free(item);
		c += n + (c[n] == ',');
	}
	if (out)
		*o = '\0';
	return out;
}

/* Add argv[i] to out, a -o list with its cell lists escaped. */
static int add_option_list(struct fuse_args *out, const char *prefix,
			   const char *list)
{
	char *escaped = escape_cell_list(list), *arg = NULL;
	int rc = -ENOMEM;
	if (escaped && asprintf(&arg, "%s%s", prefix, escaped) >= 0)
		rc = fuse_opt_add_arg(out, arg) ? -ENOMEM : 0;
	free(arg);
	free(escaped);
	return rc;
}

/* Vitess's flag library also takes "--flag value": rewrite such pairs as
 * "--flag=value" in a new argv (owned by *out, freed with fuse_opt_free_args).
 * A list of cells in -o (cells=A,B) is kept whole (escape_cell_list). */
static int join_flag_values(int argc, char **argv, struct fuse_args *out)
{
	*out = (struct fuse_args)FUSE_ARGS_INIT(0, NULL);
	for (int i = 0; i < argc; i++) {
		char *joined = NULL;
		int rc;
		if (i > 0 && strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
			rc = fuse_opt_add_arg(out, "-o") ||
			     add_option_list(out, "", argv[++i]);
			if (rc)
				return -ENOMEM;
			continue;
		}
		if (i > 0 && strncmp(argv[i], "-o", 2) == 0 && argv[i][2]) {
			if (add_option_list(out, "-o", argv[i] + 2))
				return -ENOMEM;
			continue;
		}
		if (i > 0 && i + 1 < argc && takes_value(argv[i]) &&
		    asprintf(&joined, "%s=%s", argv[i], argv[i + 1]) < 0)
			return -ENOMEM;
		rc = fuse_opt_add_arg(out, joined ? joined : argv[i]);
		if (joined)
			i++;
		free(joined);
		if (rc)
			return -ENOMEM;
	}
	return 0;
}

int opts_parse(int argc, char **argv, struct topofs_opts *o,
	       struct fuse_args *fuse_args, char *err, size_t errlen)
{
	struct parse_state ps = {0};
	int rc = set_defaults(&ps.o);
	if (!rc)
		rc = join_flag_values(argc, argv, fuse_args);
	if (rc)
		goto out;
	if (fuse_opt_parse(fuse_args, &ps, opt_spec, opt_proc) == -1) {
		snprintf(err, errlen, "cannot parse the options (see --help)");
		rc = -EINVAL;
		goto out;
	}
	if (ps.o.show_help || ps.o.show_version)
		goto out;
	if (ps.password) {
		snprintf(err, errlen,
			 "no password on the command line (ps shows it): put "
			 "it in a file, -o etcd_password_file=FILE");
		rc = -EINVAL;
		goto out;
	}
	if (ps.bad) {
		snprintf(err, errlen,
			 ps.npositional == 2 && ps.bad[0] != '-'
			     ? "unexpected argument '%s' (see --help)"
			     : "unknown option '%s' (see --help)",
			 ps.bad);
		rc = -EINVAL;
		goto out;
	}
	rc = apply_positionals(&ps.o, &ps, err, errlen);
	if (!rc)
		rc = validate(&ps.o, err, errlen);
	/* Other users in: let the kernel check the modes shown, so that they
	 * get no more than those modes give them. */
	if (!rc && ps.o.allow_other && !ps.o.default_permissions &&
	    fuse_opt_add_arg(fuse_args, "-odefault_permissions") != 0)
		rc = -ENOMEM;
out:
	*o = ps.o;
	free(ps.positional[0]);
	free(ps.positional[1]);
	free(ps.bad);
	return rc;
}

void opts_free(struct topofs_opts *o)
{
	char **fields[] = {&o->implementation,
			   &o->servers,
			   &o->root,
			   &o->timeout,
			   &o->cache_ttl,
			   &o->view,
			   &o->scratch,
			   &o->tls_cert,
			   &o->tls_key,
			   &o->tls_ca,
			   &o->zk_auth_file,
			   &o->source,
			   &o->mountpoint,
			   &o->etcd_user,
			   &o->etcd_password_file,
			   &o->revision,
			   &o->etcd_api,
			   &o->uid,
			   &o->gid,
			   &o->umask,
			   &o->cells_list};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		free(*fields[i]);
		*fields[i] = NULL;
	}
}
