/* test_base64.c - common/base64.c: RFC 4648 vectors, binary data, round
 * trips and strict rejection of bad input. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "topofs/base64.h"
#include "check.h"

/* Encode s and compare with want. */
static void check_encode(const char *s, size_t n, const char *want)
{
	char *got = NULL;

	CHECK_INT(topo_b64_encode(s, n, &got), 0);
	CHECK_STR(got, want);
	free(got);
}

/* Decode s and compare with want[0..wantlen). */
static void check_decode(const char *s, const char *want, size_t wantlen)
{
	unsigned char *got = NULL;
	size_t len = 99;

	CHECK_INT(topo_b64_decode(s, strlen(s), &got, &len), 0);
	CHECK(got != NULL);
	if (got) {
		CHECK_MEM(got, len, want, wantlen);
		CHECK_INT(got[len], 0); /* NUL-terminated */
	}
	free(got);
}

/* Decoding s must fail with -EINVAL and leave out untouched. */
static void check_reject(const char *s, size_t n)
{
	unsigned char *got = (unsigned char *)"untouched";
	size_t len = 42;

	CHECK_INT(topo_b64_decode(s, n, &got, &len), -EINVAL);
	CHECK_STR((char *)got, "untouched");
	CHECK_INT(len, 42);
}

static void test_rfc4648(void)
{
	static const char *const plain[] = {"",	    "f",     "fo",    "foo",
					    "foob", "fooba", "foobar"};
	static const char *const coded[] = {
	    "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};

	for (size_t i = 0; i < 7; i++) {
		check_encode(plain[i], strlen(plain[i]), coded[i]);
		check_decode(coded[i], plain[i], strlen(plain[i]));
	}
}

static void test_binary(void)
{
	static const char bin[] = {0, 0, 0, '\xff', '\xfe', 0, 'a'};
	unsigned char all[256], *back = NULL;
	char *enc = NULL;
	size_t len = 0;

	check_encode(bin, sizeof(bin), "AAAA//4AYQ==");
	check_decode("AAAA//4AYQ==", bin, sizeof(bin));
	check_encode("\0", 1, "AA==");
	check_encode("\xfb\xff", 2, "+/8=");

	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	for (size_t n = 0; n <= sizeof(all); n++) {
		CHECK_INT(topo_b64_encode(all, n, &enc), 0);
		CHECK_INT(strlen(enc), (n + 2) / 3 * 4);
		CHECK_INT(topo_b64_decode(enc, strlen(enc), &back, &len), 0);
		CHECK_MEM(back, len, all, n);
		free(enc);
		free(back);
	}
}

static void test_reject(void)
{
	check_reject("Zg=", 3); /* length not a multiple of 4 */
	check_reject("Zg", 2);	/* padding required */
	check_reject("Z", 1);
	check_reject("Zm9v!A==", 8); /* outside the alphabet */
	check_reject("Zm9-", 4);     /* URL alphabet is not etcd's */
	check_reject("Zm9_", 4);
	check_reject("Zm 9", 4); /* no whitespace */
	check_reject("Zm9v\nZg==", 9);
	check_reject("Z===", 4); /* too much padding */
	check_reject("====", 4);
	check_reject("Zg==Zm9v", 8); /* padding in the middle */
	check_reject("Zm=v", 4);     /* '=' before a data character */
	check_reject("Zh==", 4);     /* non-zero unused bits */
	check_reject("Zm9=", 4);
	check_reject("Zm\0v", 4); /* NUL inside */
	/* The same bytes are fine when canonical. */
	check_decode("Zg==", "f", 1);
}

int main(void)
{
	test_rfc4648();
	test_binary();
	test_reject();
	return check_report();
}
