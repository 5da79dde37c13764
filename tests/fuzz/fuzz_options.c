/*
 * fuzz_options.c - opts_parse (fs/options.h) on an arbitrary command line.
 *
 * The input split at its NUL bytes gives the arguments after argv[0]
 * ("topofs"), at most MAX_ARGS of them. After each parse opts_free and
 * fuse_opt_free_args release everything (LeakSanitizer checks). Properties:
 * 0 or -EINVAL (-ENOMEM aside) with a message in err on -EINVAL; on 0
 * without --help/--version, every value is validated: a known
 * implementation, servers without spaces, an absolute root without a
 * trailing slash, timeout 1..3600 s, cache_ttl 1..3600000 ms, view raw, a
 * mountpoint; and libfuse's argv still starts with argv[0].
 */
#include <errno.h>
#include <string.h>

#include "../../fs/options.h"
#include "../../fs/path.h"
#include "topofs/backend.h"
#include "fuzz_common.h"

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	char *argv[MAX_ARGS + 2];
	int argc = 0;
	struct topofs_opts o;
	struct fuse_args fa = FUSE_ARGS_INIT(0, NULL);
	char err[256];
	int rc;

	argv[argc++] = "topofs";
	for (size_t at = 0; at <= size && argc <= MAX_ARGS;) {
		argv[argc++] = s + at;
		at += strlen(s + at) + 1;
	}
	argv[argc] = NULL;

	err[0] = '\0';
	memset(&o, 0, sizeof(o));
	rc = opts_parse(argc, argv, &o, &fa, err, sizeof(err));
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	if (rc == -EINVAL)
		FUZZ_CHECK(err[0] != '\0');
	if (rc == 0 && !o.show_help && !o.show_version) {
		FUZZ_CHECK(o.implementation && topo_backend_find(o.implementation));
		FUZZ_CHECK(o.servers && *o.servers && !strchr(o.servers, ' '));
		FUZZ_CHECK(o.root && o.root[0] == '/');
		FUZZ_CHECK(strcmp(o.root, "/") == 0 ||
			   o.root[strlen(o.root) - 1] != '/');
		FUZZ_CHECK(strcmp(o.root, "/") == 0 || path_store_ok(o.root + 1));
		FUZZ_CHECK(o.timeout_ms >= 1000 && o.timeout_ms <= 3600000);
		FUZZ_CHECK(o.cache_ttl_ms >= 1 && o.cache_ttl_ms <= 3600000);
		FUZZ_CHECK(o.view && (strcmp(o.view, "raw") == 0 ||
				   strcmp(o.view, "json") == 0));
		FUZZ_CHECK(o.mountpoint != NULL || o.check); /* --check: none */
		FUZZ_CHECK(!o.cells_list || o.cells); /* a list implies cells */
		FUZZ_CHECK(fa.argc >= 1 && strcmp(fa.argv[0], "topofs") == 0);
	}
	if (rc == 0 || rc == -EINVAL)
		for (int i = 0; i < fa.argc; i++)
			fuzz_touch(fa.argv[i], strlen(fa.argv[i]) + 1);
	opts_free(&o);
	fuse_opt_free_args(&fa);
	free(s);
	return 0;
}
