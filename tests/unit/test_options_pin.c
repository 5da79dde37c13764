/* Unit tests of fs/options_pin.c: -o revision=N, -o snapshot and
 * -o etcd_api, accepted values and refusals with their messages. */
#include <errno.h>
#include <string.h>

#include "../../fs/options.h"
#include "check.h"
#include "options_util.h"

static void test_accepted(void)
{
	struct topofs_opts o;
	struct fuse_args fa;
	char err[256];

	CHECK_INT(
	    parse(&o, &fa, err,
		  (const char *[]){"topofs", "-o", "revision=42", "/m", NULL}),
	    0);
	CHECK_INT(o.pin_revision, 42);
	CHECK_INT(o.snapshot, 0);
	CHECK_INT(fa.argc, 1); /* nothing of ours goes to libfuse */
	done(&o, &fa);

	CHECK_INT(
	    parse(&o, &fa, err,
		  (const char *[]){"topofs", "-o", "ro,snapshot", "/m", NULL}),
	    0);
	CHECK_INT(o.pin_revision, 0);
	CHECK_INT(o.snapshot, 1);
	done(&o, &fa);

	CHECK_INT(
	    parse(&o, &fa, err,
		  (const char *[]){"topofs", "-o",
				   "revision=9223372036854775807", "/m", NULL}),
	    0);
	CHECK_INT(o.pin_revision, 9223372036854775807LL);
	done(&o, &fa);

	CHECK_INT(parse(&o, &fa, err,
			(const char *[]){"topofs", "-o", "etcd_api=v3", "-o",
					 "snapshot", "/m", NULL}),
		  0);
	CHECK_STR(o.etcd_api, "v3");
	done(&o, &fa);

	CHECK_INT(parse(&o, &fa, err,
			(const char *[]){"topofs", "-o", "etcd_api=v2",
					 "etcd2://h:1/r", "/m", NULL}),
		  0);
	CHECK_STR(o.etcd_api, "v2");
	done(&o, &fa);

	CHECK_INT(parse(&o, &fa, err, (const char *[]){"topofs", "/m", NULL}),
		  0);
	CHECK(o.etcd_api == NULL);
	CHECK_INT(o.pin_revision, 0);
	done(&o, &fa);
}

static void test_refusals(void)
{
	refused((const char *[]){"topofs", "-o", "revision=0", "/m", NULL},
		"bad revision '0': a store revision, a whole number from 1");
	refused((const char *[]){"topofs", "-o", "revision=-1", "/m", NULL},
		"bad revision '-1': a store revision, a whole number from 1");
	refused((const char *[]){"topofs", "-o", "revision=1x", "/m", NULL},
		"bad revision '1x': a store revision, a whole number from 1");
	refused((const char *[]){"topofs", "-o", "revision=9223372036854775808",
				 "/m", NULL},
		"bad revision '9223372036854775808': a store revision, a "
		"whole number from 1");
	refused(
	    (const char *[]){"topofs", "-o", "revision=3,snapshot", "/m", NULL},
	    "-o revision and -o snapshot exclude each other (snapshot "
	    "pins the current revision)");
	refused((const char *[]){"topofs", "--topo_implementation=zk2", "-o",
				 "snapshot", "/m", NULL},
		"-o snapshot needs etcd's v3 API (etcd2): zk2 keeps no "
		"history of past revisions");
	refused((const char *[]){"topofs", "zk2://z:1/r", "-o", "revision=7",
				 "/m", NULL},
		"-o revision needs etcd's v3 API (etcd2): zk2 keeps no "
		"history of past revisions");
	refused((const char *[]){"topofs", "-o", "etcd_api=v2,snapshot", "/m",
				 NULL},
		"-o snapshot needs etcd's v3 API (etcd2): etcd2 over the v2 "
		"API keeps no history of past revisions");
	refused((const char *[]){"topofs", "-o", "etcd_api=v4", "/m", NULL},
		"unknown etcd_api 'v4' (supported: v3, v2)");
	refused((const char *[]){"topofs", "--topo_implementation=zk2", "-o",
				 "etcd_api=v3", "/m", NULL},
		"-o etcd_api is for etcd (etcd2), not zk2");
}

int main(void)
{
	test_accepted();
	test_refusals();
	return check_report();
}
