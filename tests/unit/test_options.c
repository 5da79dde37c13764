/* Unit tests of fs/options.c: Vitess flags in both spellings, SOURCE, -o,
 * defaults, and refusals with their messages. */
#include <errno.h>
#include <string.h>

#include "../../fs/options.h"
#include "check.h"
#include "options_util.h"

static void test_defaults(void)
{
	struct topofs_opts o;
	struct fuse_args fa;
	char err[256];
	const char *argv[] = {"topofs", "/mnt", NULL};
	CHECK_INT(parse(&o, &fa, err, argv), 0);
	CHECK_STR(o.implementation, "etcd2");
	CHECK_STR(o.servers, "localhost:2379");
	CHECK_STR(o.root, "/vitess/global");
	CHECK_STR(o.mountpoint, "/mnt");
	CHECK_INT(o.timeout_ms, 10000);
	CHECK_INT(o.read_only, 0);
	CHECK_INT(fa.argc, 1); /* only argv[0] left for libfuse */
	done(&o, &fa);
}

static void test_spellings(void)
{
	const char *forms[][7] = {
	    {"topofs", "--topo_global_root=/r",
	     "--topo_global_server_address=h:1", "/m", NULL},
	    {"topofs", "--topo-global-root=/r",
	     "--topo-global-server-address=h:1", "/m", NULL},
	    {"topofs", "--topo_global_root", "/r",
	     "--topo-global-server-address", "h:1", "/m"},
	    {"topofs", "-o",
	     "topo_global_root=/r,topo_global_server_address=h:1", "/m", NULL},
	    {"topofs", "etcd2://h:1/r", "/m", NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		struct topofs_opts o;
		struct fuse_args fa;
		char err[256];
		CHECK_INT(parse(&o, &fa, err, forms[i]), 0);
		CHECK_STR(o.root, "/r");
		CHECK_STR(o.servers, "h:1");
		CHECK_STR(o.implementation, "etcd2");
		CHECK_STR(o.mountpoint, "/m");
		done(&o, &fa);
	}
}

static void test_source_and_options(void)
{
	struct topofs_opts o;
	struct fuse_args fa;
	char err[256];
	const char *argv[] = {"topofs",
			      "zk2://z1:2181,z2:2181/vitess/global/",
			      "/m",
			      "-o",
			      "ro,timeout=3,noephemeral,allow_other",
			      "-f",
			      "-s",
			      NULL};
	CHECK_INT(parse(&o, &fa, err, argv), 0);
	CHECK_STR(o.implementation, "zk2");
	CHECK_STR(o.servers, "z1:2181,z2:2181");
	CHECK_STR(o.root, "/vitess/global"); /* trailing slash dropped */
	CHECK_STR(o.source, "zk2://z1:2181,z2:2181/vitess/global/");
	CHECK_INT(o.timeout_ms, 3000);
	CHECK_INT(o.read_only, 1);
	CHECK_INT(o.noephemeral, 1);
	CHECK_INT(o.foreground, 1);
	CHECK_INT(o.single_thread, 1);
	/* ro and allow_other go on to libfuse; ours do not; allow_other
	 * brings default_permissions */
	CHECK_INT(fa.argc, 4);
	CHECK_STR(fa.argv[1], "-o");
	CHECK_STR(fa.argv[2], "ro,allow_other");
	CHECK_STR(fa.argv[3], "-odefault_permissions");
	CHECK_INT(o.allow_other, 1);
	done(&o, &fa);
}

/* etcd users, rw after ro, default_permissions given already. */
static void test_security_options(void)
{
	struct topofs_opts o;
	struct fuse_args fa;
	char err[256];
	const char *user[] = {"topofs", "-o",
			      "etcd_user=alice,etcd_password_file=/run/pw",
			      "/m", NULL};
	CHECK_INT(parse(&o, &fa, err, user), 0);
	CHECK_STR(o.etcd_user, "alice");
	CHECK_STR(o.etcd_password_file, "/run/pw");
	CHECK_INT(fa.argc, 1);
	done(&o, &fa);

	const char *dashes[] = {"topofs", "--etcd_user",
				"bob",	  "--etcd_password_file=/pw",
				"/m",	  NULL};
	CHECK_INT(parse(&o, &fa, err, dashes), 0);
	CHECK_STR(o.etcd_user, "bob");
	CHECK_STR(o.etcd_password_file, "/pw");
	done(&o, &fa);

	const char *rw[] = {"topofs", "-o", "ro", "-o", "rw", "/m", NULL};
	CHECK_INT(parse(&o, &fa, err, rw), 0);
	CHECK_INT(o.read_only, 0);
	done(&o, &fa);

	const char *dp[] = {"topofs", "-o", "default_permissions,allow_other",
			    "/m", NULL};
	CHECK_INT(parse(&o, &fa, err, dp), 0);
	CHECK_INT(fa.argc, 3); /* not added twice */
	done(&o, &fa);

	const char *none[] = {"topofs", "/m", NULL};
	CHECK_INT(parse(&o, &fa, err, none), 0);
	CHECK_INT(o.allow_other, 0);
	CHECK_INT(fa.argc, 1);
	done(&o, &fa);
}

static void test_help_version(void)
{
	struct topofs_opts o;
	struct fuse_args fa;
	char err[256];
	const char *h[] = {"topofs", "--help", NULL};
	CHECK_INT(parse(&o, &fa, err, h), 0);
	CHECK_INT(o.show_help, 1);
	done(&o, &fa);
	const char *v[] = {"topofs", "-V", NULL};
	CHECK_INT(parse(&o, &fa, err, v), 0);
	CHECK_INT(o.show_version, 1);
	done(&o, &fa);
}

static void test_refusals(void)
{
	refused((const char *[]){"topofs", "--bogus", "/m", NULL},
		"unknown option '--bogus' (see --help)");
	refused((const char *[]){"topofs", NULL},
		"no mountpoint given (see --help)");
	refused((const char *[]){"topofs", "a", "b", "c", NULL},
		"unexpected argument 'c' (see --help)");
	refused((const char *[]){"topofs", "--topo_implementation=consul", "/m",
				 NULL},
		"unknown --topo_implementation 'consul' (known: etcd2, zk2)");
	refused((const char *[]){"topofs", "-o", "timeout=0", "/m", NULL},
		"bad timeout '0': whole seconds from 1 to 3600");
	refused((const char *[]){"topofs", "-o", "timeout=5s", "/m", NULL},
		"bad timeout '5s': whole seconds from 1 to 3600");
	refused(
	    (const char *[]){"topofs", "--topo_global_root=vitess", "/m", NULL},
	    "bad --topo_global_root 'vitess': must be an absolute path "
	    "without empty, '.' or '..' parts");
	refused(
	    (const char *[]){"topofs", "--topo_global_root=/a//b", "/m", NULL},
	    "bad --topo_global_root '/a//b': must be an absolute path "
	    "without empty, '.' or '..' parts");
	refused((const char *[]){"topofs", "-o", "view=xml", "/m", NULL},
		"unknown view 'xml' (supported: raw, json)");
	refused((const char *[]){"topofs", "-o", "scratch=a/b", "/m", NULL},
		"bad scratch 'a/b': comma-separated name patterns without "
		"'/'");
	refused((const char *[]){"topofs", "etcd2:/x", "/m", NULL},
		"bad SOURCE 'etcd2:/x': expected etcd2://HOST:PORT/ROOT or "
		"zk2://HOST:PORT/ROOT");
	refused((const char *[]){"topofs", "etcd2:///r", "/m", NULL},
		"bad SOURCE 'etcd2:///r': no server address");
	refused((const char *[]){"topofs",
				 "--topo_global_server_address=", "/m", NULL},
		"bad --topo_global_server_address ''");
	/* The password never shows, not even in the refusal. */
	refused((const char *[]){"topofs", "-o",
				 "etcd_user=a,etcd_password=s3cret", "/m",
				 NULL},
		"no password on the command line (ps shows it): put it in a "
		"file, -o etcd_password_file=FILE");
	refused(
	    (const char *[]){"topofs", "--etcd_password=s3cret", "/m", NULL},
	    "no password on the command line (ps shows it): put it in a "
	    "file, -o etcd_password_file=FILE");
	refused((const char *[]){"topofs", "-o", "etcd_user=a", "/m", NULL},
		"-o etcd_user and -o etcd_password_file go together");
	refused((const char *[]){"topofs", "-o", "etcd_password_file=/p", "/m",
				 NULL},
		"-o etcd_user and -o etcd_password_file go together");
	refused((const char *[]){"topofs", "--topo_implementation=zk2", "-o",
				 "etcd_user=a,etcd_password_file=/p", "/m",
				 NULL},
		"-o etcd_user is for etcd2 (ZooKeeper: --topo_zk_auth_file)");
}

/* What mount(8), mount.fuse3 and fstab hand over: mount(8)'s and systemd's
 * own options are dropped, kernel mount flags go on to libfuse. */
static void test_mount_options(void)
{
	struct topofs_opts o;
	struct fuse_args fa;
	char err[256];
	const char *argv[] = {
	    "topofs",
	    "etcd2://h:1/r",
	    "/m",
	    "-o",
	    "rw,defaults,_netdev,nofail,noauto,user,x-systemd.automount,"
	    "comment=x,relatime,nodiratime,noatime,timeout=5,dev,suid",
	    NULL};
	CHECK_INT(parse(&o, &fa, err, argv), 0);
	CHECK_STR(err, "");
	CHECK_INT(o.timeout_ms, 5000);
	CHECK_INT(fa.argc, 3);
	CHECK_STR(fa.argv[2], "rw,noatime,dev,suid");
	done(&o, &fa);
}

/* -o uid=, gid= and umask= are topofs's (libfuse's high-level API took
 * them before); the high-level API's other options are accepted and left
 * out of what goes to libfuse's low-level session, which would refuse
 * them. */
static void test_owner_and_high_level_options(void)
{
	struct topofs_opts o;
	struct fuse_args fa;
	char err[256];
	const char *argv[] = {
	    "topofs",
	    "etcd2://h:1/r",
	    "/m",
	    "-o",
	    "uid=4321,gid=8765,umask=027,ro,use_ino,readdir_ino,hard_remove,"
	    "kernel_cache,auto_cache,entry_timeout=5,attr_timeout=5.5,"
	    "negative_timeout=0,noforget,remember=3,intr,direct_io",
	    NULL};
	CHECK_INT(parse(&o, &fa, err, argv), 0);
	CHECK_STR(err, "");
	CHECK_STR(o.uid, "4321");
	CHECK_INT(o.uid_value, 4321);
	CHECK_INT(o.gid_value, 8765);
	CHECK_INT(o.umask_value, 027);
	CHECK_INT(o.read_only, 1);
	CHECK_INT(fa.argc, 3);
	CHECK_STR(fa.argv[2], "ro");
	done(&o, &fa);

	const char *none[] = {"topofs", "/m", NULL};
	CHECK_INT(parse(&o, &fa, err, none), 0);
	CHECK(o.uid == NULL && o.gid == NULL && o.umask == NULL);
	done(&o, &fa);

	const char *bad_uid[] = {"topofs", "/m", "-o", "uid=-1", NULL};
	refused(bad_uid, "bad uid '-1': a user ID");
	const char *bad_gid[] = {"topofs", "/m", "-o", "gid=x", NULL};
	refused(bad_gid, "bad gid 'x': a group ID");
	const char *bad_umask[] = {"topofs", "/m", "-o", "umask=0800", NULL};
	refused(bad_umask, "bad umask '0800': octal, at most 0777");
}

static void test_cells(void)
{
	struct topofs_opts o;
	struct fuse_args fa;
	char err[256];
	const char *plain[] = {"topofs", "/m", NULL};
	CHECK_INT(parse(&o, &fa, err, plain), 0);
	CHECK_INT(o.cells, 0);
	CHECK(o.cells_list == NULL);
	done(&o, &fa);
	const char *all[] = {"topofs", "-o", "cells", "/m", NULL};
	CHECK_INT(parse(&o, &fa, err, all), 0);
	CHECK_INT(o.cells, 1);
	CHECK(o.cells_list == NULL);
	done(&o, &fa);
	const char *flag[] = {"topofs", "--cells=zone1,zone2", "/m", NULL};
	CHECK_INT(parse(&o, &fa, err, flag), 0);
	CHECK_INT(o.cells, 1);
	CHECK_STR(o.cells_list, "zone1,zone2");
	done(&o, &fa);
	/* in -o, the names after cells= up to the next option are cells */
	const char *list[] = {"topofs", "-o",
			      "ro,cells=zone1,zone2,noephemeral", "/m", NULL};
	CHECK_INT(parse(&o, &fa, err, list), 0);
	CHECK_STR(o.cells_list, "zone1,zone2");
	CHECK_INT(o.read_only, 1);
	CHECK_INT(o.noephemeral, 1);
	done(&o, &fa);
	const char *joined[] = {"topofs", "-ocells=a,b,c,timeout=3", "/m",
				NULL};
	CHECK_INT(parse(&o, &fa, err, joined), 0);
	CHECK_STR(o.cells_list, "a,b,c");
	CHECK_INT(o.timeout_ms, 3000);
	done(&o, &fa);
	const char *last[] = {"topofs",		"-o", "cells=a,b", "-o",
			      "x-y,allow_root", "/m", NULL};
	CHECK_INT(parse(&o, &fa, err, last), 0);
	CHECK_STR(o.cells_list, "a,b");
	CHECK_STR(fa.argv[fa.argc - 1], "allow_root");
	done(&o, &fa);
	/* escaped commas work as they do in any -o value */
	const char *escaped[] = {"topofs", "-o", "cells=zone1\\,zone2", "/m",
				 NULL};
	CHECK_INT(parse(&o, &fa, err, escaped), 0);
	CHECK_STR(o.cells_list, "zone1,zone2");
	done(&o, &fa);

	const char *empty[] = {"topofs", "-o", "cells=", "/m", NULL};
	refused(empty, "bad cells '': comma-separated cell names");
	const char *slash[] = {"topofs", "-o", "cells=a/b", "/m", NULL};
	refused(slash, "bad cells 'a/b': comma-separated cell names");
	const char *dots[] = {"topofs", "-o", "cells=..", "/m", NULL};
	refused(dots, "bad cells '..': comma-separated cell names");
	const char *trail[] = {"topofs", "-o", "cells=a\\,", "/m", NULL};
	refused(trail, "bad cells 'a,': comma-separated cell names");
	const char *rev[] = {"topofs", "-o", "cells,revision=5", "/m", NULL};
	refused(rev, "-o revision=N names one store's revision; with -o cells "
		     "use -o snapshot (each store pinned at mount)");
}

int main(void)
{
	test_cells();
	test_defaults();
	test_spellings();
	test_source_and_options();
	test_help_version();
	test_mount_options();
	test_owner_and_high_level_options();
	test_security_options();
	test_refusals();
	return check_report();
}
