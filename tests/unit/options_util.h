/*
 * options_util.h - running opts_parse in unit tests: parse an argv, free
 * what it gave, and check a refusal's exact message. Header-only (every
 * test is its own program).
 */
#ifndef TOPOFS_TEST_OPTIONS_UTIL_H
#define TOPOFS_TEST_OPTIONS_UTIL_H

#include <errno.h>

#include "../../fs/options.h"
#include "check.h"

/* Parse a NULL-terminated argv; returns opts_parse's result. */
static inline int parse(struct topofs_opts *o, struct fuse_args *fa, char *err,
			const char **argv)
{
	int argc = 0;
	while (argv[argc])
		argc++;
	err[0] = '\0';
	return opts_parse(argc, (char **)argv, o, fa, err, 256);
}

static inline void done(struct topofs_opts *o, struct fuse_args *fa)
{
	opts_free(o);
	fuse_opt_free_args(fa);
}

/* argv is refused with -EINVAL and exactly want_err. */
static inline void refused(const char **argv, const char *want_err)
{
	struct topofs_opts o;
	struct fuse_args fa;
	char err[256];
	CHECK_INT(parse(&o, &fa, err, argv), -EINVAL);
	CHECK_STR(err, want_err);
	done(&o, &fa);
}

#endif
