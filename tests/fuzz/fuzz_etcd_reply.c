/*
 * fuzz_etcd_reply.c - etcd_parse_reply_error and etcd_errno
 * (backends/etcd/json.c): the HTTP answer check every request goes through.
 *
 * The input is the body, in an exact-size buffer (json.h takes a length: no
 * NUL after it); each body is checked with a few HTTP statuses and with
 * `what` set and NULL (the quiet probe). Properties: 200 is 0 whatever the
 * body; any other status is a negative errno from the documented set;
 * etcd_reply_retryable never calls a 200 "try again".
 */
#include <errno.h>
#include <stdbool.h>

#include "../../backends/etcd/json.h"
#include "fuzz_common.h"

static const long statuses[] = {200, 400, 404, 500, 503, 0, -1};

static bool known(int err)
{
	return err == -EIO || err == -EFBIG || err == -E2BIG ||
	       err == -EACCES || err == -EAGAIN || err == -ENOMEM ||
	       err == -ENOSPC; /* "database space exceeded" */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int nul = -1;
	char *json;

	/* TOPOFS_FUZZ_NUL_TERMINATED=1: a NUL after the body, as http.c
	 * gives it (to fuzz past a crash that needs its absence). */
	if (nul < 0)
		nul = getenv("TOPOFS_FUZZ_NUL_TERMINATED") != NULL;
	json = nul ? fuzz_cstr(data, size) : fuzz_exact(data, size);
	char *msg = fuzz_cstr(data, size);

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		int a =
		    etcd_parse_reply_error(statuses[i], json, size, "fuzz/key");
		int b = etcd_parse_reply_error(statuses[i], json, size, NULL);

		FUZZ_CHECK(a == b);
		if (statuses[i] == 200)
			FUZZ_CHECK(a == 0);
		else
			FUZZ_CHECK(known(a));
		/* never "try again" on a 200; any answer is classified */
		if (statuses[i] == 200)
			FUZZ_CHECK(
			    !etcd_reply_retryable(statuses[i], json, size));
		else
			(void)etcd_reply_retryable(statuses[i], json, size);
	}
	/* The whole input as an error message, with a few codes. */
	FUZZ_CHECK(known(etcd_errno(3, msg, "fuzz/key")));
	FUZZ_CHECK(etcd_errno(7, msg, NULL) < 0);
	FUZZ_CHECK(known(etcd_errno(size ? data[0] : -1, msg, "fuzz/key")));
	free(msg);
	free(json);
	return 0;
}
