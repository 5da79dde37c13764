/*
 * fuzz_etcd_txn.c - etcd_parse_txn, etcd_parse_status and
 * etcd_parse_revision (backends/etcd/json.c) on arbitrary bytes, as if they
 * were /v3/kv/txn and /v3/maintenance/status answers.
 *
 * The input is the answer itself, in an exact-size buffer. Properties: 0
 * or -EIO/-ENOMEM; never more steps than room was given; every step a
 * known kind; a status size is never negative as a signed number.
 */
#include <errno.h>
#include <stdbool.h>

#include "../../backends/etcd/json.h"
#include "fuzz_common.h"

#define MAX_STEPS 8

static void txn(const char *json, size_t size, size_t max)
{
	struct etcd_txn_step steps[MAX_STEPS + 1];
	int64_t rev = -7;
	bool ok = false;
	size_t count = 12345;
	int err;

	/* A sentinel past max: the parser must not write there. */
	memset(steps, 0xa5, sizeof(steps));
	err = etcd_parse_txn(json, size, "fuzz/key", &rev, &ok, steps, max,
			     &count);
	FUZZ_CHECK(err == 0 || err == -EIO || err == -ENOMEM);
	FUZZ_CHECK(count <= max);
	if (err)
		FUZZ_CHECK(count == 0);
	for (size_t i = 0; i < count; i++) {
		FUZZ_CHECK(steps[i].kind == ETCD_RESP_RANGE ||
			   steps[i].kind == ETCD_RESP_PUT ||
			   steps[i].kind == ETCD_RESP_DELETE);
		if (steps[i].kind != ETCD_RESP_RANGE)
			FUZZ_CHECK(!steps[i].found);
	}
	for (size_t i = max; i < MAX_STEPS + 1; i++)
		FUZZ_CHECK(((unsigned char *)&steps[i])[0] == 0xa5);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *json = fuzz_exact(data, size);
	uint64_t db = 0;
	int64_t rev;
	int err;

	txn(json, size, MAX_STEPS);
	txn(json, size, 1);
	txn(json, size, 0);

	err = etcd_parse_status(json, size, &db);
	FUZZ_CHECK(err == 0 || err == -EIO || err == -ENOMEM);
	if (!err)
		FUZZ_CHECK((int64_t)db >= 0);

	err = etcd_parse_revision(json, size, "fuzz/key", &rev);
	FUZZ_CHECK(err == 0 || err == -EIO || err == -ENOMEM);

	free(json);
	return 0;
}
