/*
 * fuzz_etcd_v2.c - the etcd v2 keys API answers (backends/etcdv2/v2json.c):
 * error objects, recursive listings, write answers and watch events, and
 * the UTF-8 check of values.
 *
 * The input is one answer, in an exact-size buffer (the parsers take a
 * length). Properties: the documented errnos only; a listing's paths are
 * relative (never a leading '/'), its values exactly meta.size bytes; a
 * directory holds no value; an event's index is positive; 200 and 201
 * are never errors.
 */
#include <errno.h>
#include <stdbool.h>

#include "../../backends/etcdv2/v2json.h"
#include "fuzz_common.h"

static const long statuses[] = {200, 201, 400, 401, 403, 404, 412, 500, 0};

static bool known(int err)
{
	return err == -ENOENT || err == -ESTALE || err == -EISDIR ||
	       err == -ENOTDIR || err == -EEXIST || err == -EROFS ||
	       err == -ENOTEMPTY || err == -EACCES || err == -EAGAIN ||
	       err == -EFBIG || err == -EIO || err == -ENOMEM;
}

static void check_listing(const char *json, size_t size, const char *root)
{
	struct topo_listing l = {0};
	int err = etcdv2_parse_nodes(json, size, root, "fuzz", &l);

	FUZZ_CHECK(err == 0 || err == -EIO || err == -ENOMEM);
	for (size_t i = 0; !err && i < l.count; i++) {
		const struct topo_entry *e = &l.entries[i];

		FUZZ_CHECK(e->path && e->path[0] != '/');
		FUZZ_CHECK(e->meta.has_data);
		FUZZ_CHECK(!e->meta.real_dir || e->meta.size == 0);
		FUZZ_CHECK((e->value != NULL) == (e->meta.size > 0));
		fuzz_touch(e->value, e->meta.size);
	}
	topo_listing_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *json = fuzz_exact(data, size);
	struct etcdv2_event ev;
	struct topo_meta m;
	int64_t index;
	int err;

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		err =
		    etcdv2_parse_error(statuses[i], json, size, "fuzz", &index);
		if (statuses[i] == 200 || statuses[i] == 201)
			FUZZ_CHECK(err == 0);
		else
			FUZZ_CHECK(known(err));
		FUZZ_CHECK(index >= -1);
	}
	check_listing(json, size, "/r");
	check_listing(json, size, "");
	err = etcdv2_parse_write(json, size, "fuzz", &m);
	FUZZ_CHECK(err == 0 || err == -EIO || err == -ENOMEM);
	FUZZ_CHECK(err || m.version > 0);
	err = etcdv2_parse_event(json, size, "/r", &ev);
	FUZZ_CHECK(err == 0 || err == -EIO || err == -ENOMEM);
	FUZZ_CHECK(err || ev.index > 0);
	FUZZ_CHECK(!ev.path || ev.path[0] != '/');
	free(ev.path);
	(void)etcdv2_value_ok(json, size);
	free(json);
	return 0;
}
