/*
 * fuzz_base64.c - topo_b64_decode / topo_b64_encode (common/base64.c).
 *
 * Properties, on arbitrary bytes:
 *  - decode never crashes and returns 0 or -EINVAL (never reads past n: the
 *    input is an exact-size buffer); on 0 the output is *outlen bytes plus
 *    a NUL, at most n / 4 * 3;
 *  - decoding is strict (canonical), so encode(decode(x)) == x whenever
 *    decode accepts x;
 *  - decode(encode(x)) == x for every x.
 */
#include <errno.h>
#include <string.h>

#include "topofs/base64.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fuzz_exact(data, size);
	unsigned char *out = NULL, *back = NULL;
	size_t outlen = 0, backlen = 0;
	char *enc = NULL;
	int err;

	/* Arbitrary input. */
	err = topo_b64_decode(in, size, &out, &outlen);
	FUZZ_CHECK(err == 0 || err == -EINVAL);
	if (err == 0) {
		FUZZ_CHECK(size % 4 == 0);
		FUZZ_CHECK(outlen <= size / 4 * 3);
		FUZZ_CHECK(outlen + 2 >= size / 4 * 3); /* at most "==" */
		FUZZ_CHECK(out[outlen] == '\0');
		FUZZ_CHECK(topo_b64_encode(out, outlen, &enc) == 0);
		FUZZ_CHECK(strlen(enc) == size);
		FUZZ_CHECK(memcmp(enc, in, size) == 0);
		free(enc);
		enc = NULL;
		free(out);
	} else {
		FUZZ_CHECK(out == NULL); /* untouched on error */
	}

	/* Round trip of the raw bytes. */
	FUZZ_CHECK(topo_b64_encode(data, size, &enc) == 0);
	FUZZ_CHECK(strlen(enc) == (size + 2) / 3 * 4);
	err = topo_b64_decode(enc, strlen(enc), &back, &backlen);
	FUZZ_CHECK(err == 0);
	FUZZ_CHECK(backlen == size);
	FUZZ_CHECK(size == 0 || memcmp(back, data, size) == 0);
	FUZZ_CHECK(back[backlen] == '\0');
	free(back);
	free(enc);
	free(in);
	return 0;
}
