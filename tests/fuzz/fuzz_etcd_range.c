/*
 * fuzz_etcd_range.c - etcd_parse_range (backends/etcd/json.c) on arbitrary
 * bytes, as if they were a /v3/kv/range answer.
 *
 * The input is the answer itself (the seeds are real etcd answers), parsed
 * for a few (root, key) pairs as kv.c makes them, from an exact-size buffer
 * (json.h takes a length: no NUL after it). Properties: 0 or a negative
 * errno; on success every entry lies in key's subtree, its value is
 * meta.size readable bytes (NULL iff 0), paths hold no NUL; the page's last
 * key is readable; nothing leaks (the caller's frees are enough).
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "../../backends/etcd/json.h"
#include "fuzz_common.h"

static const struct {
	const char *root, *key;
} pairs[] = {
    {"/vitess/global", "/vitess/global"},	    /* list the root */
    {"/vitess/global", "/vitess/global/keyspaces"}, /* a subtree */
    {"", ""},					    /* root "/" */
    {"", "/a"},
};

/* Whether path (relative to root) names key or a key below it. */
static bool in_subtree(const char *root, const char *key, const char *path)
{
	char full[8192];
	size_t n = strlen(key);

	if (*path)
		snprintf(full, sizeof(full), "%s/%s", root, path);
	else
		snprintf(full, sizeof(full), "%s", root);
	if (strlen(full) >= sizeof(full) - 1)
		return true; /* too long to check here */
	return strncmp(full, key, n) == 0 && (full[n] == '\0' || full[n] == '/');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *json = fuzz_exact(data, size);

	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		struct topo_listing out = {0};
		struct etcd_page page = {0};
		int err = etcd_parse_range(json, size, pairs[i].root,
					   pairs[i].key, &out, &page);

		FUZZ_CHECK(err == 0 || err == -EIO || err == -ENOMEM);
		FUZZ_CHECK(out.count <= out.capacity);
		if (page.last_key) {
			fuzz_touch(page.last_key, page.last_len + 1);
			FUZZ_CHECK(page.last_key[page.last_len] == '\0');
		}
		for (size_t j = 0; !err && j < out.count; j++) {
			const struct topo_entry *e = &out.entries[j];

			FUZZ_CHECK(e->path != NULL);
			FUZZ_CHECK(in_subtree(pairs[i].root, pairs[i].key,
					      e->path));
			FUZZ_CHECK((e->value == NULL) == (e->meta.size == 0));
			fuzz_touch(e->value, e->meta.size);
			FUZZ_CHECK(e->meta.has_data);
			FUZZ_CHECK(e->meta.ephemeral == (e->meta.lease != 0));
		}
		if (!err && out.count > 0)
			FUZZ_CHECK(page.last_key != NULL);
		topo_listing_sort(&out);
		topo_listing_free(&out);
		etcd_page_clear(&page);
	}
	free(json);
	return 0;
}
