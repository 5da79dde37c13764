/* base64.c - see topofs/base64.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "topofs/base64.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Encode; see base64.h. */
int topo_b64_encode(const void *in, size_t n, char **out)
{
	const unsigned char *p = in;
	size_t groups = n / 3 + (n % 3 != 0);
	char *s, *o;

	if (groups > (SIZE_MAX - 1) / 4)
		return -ENOMEM;
	s = malloc(groups * 4 + 1);
	if (!s)
		return -ENOMEM;
	o = s;
	for (size_t i = 0; i < n; i += 3) {
		size_t left = n - i;
		uint32_t v = (uint32_t)p[i] << 16;

		if (left > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (left > 2)
			v |= p[i + 2];
		*o++ = b64_alphabet[(v >> 18) & 63];
		*o++ = b64_alphabet[(v >> 12) & 63];
		*o++ = left > 1 ? b64_alphabet[(v >> 6) & 63] : '=';
		*o++ = left > 2 ? b64_alphabet[v & 63] : '=';
	}
	*o = '\0';
	*out = s;
	return 0;
}

/* The 6-bit value of one alphabet character, or -1. */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decode one 4-character group at in into out; *got is 1..3 bytes. 0 or
 * -EINVAL. `last` says whether padding is allowed here. */
static int b64_group(const char *in, bool last, unsigned char *out, size_t *got)
{
	int v[4];
	size_t pad = 0;

	if (last && in[3] == '=')
		pad = in[2] == '=' ? 2 : 1;
	for (size_t i = 0; i < 4 - pad; i++) {
		v[i] = b64_value((unsigned char)in[i]);
		if (v[i] < 0)
			return -EINVAL;
	}
	for (size_t i = 4 - pad; i < 4; i++)
		v[i] = 0;
	/* Unused low bits of the last character must be zero (canonical). */
	if ((pad == 2 && (v[1] & 15)) || (pad == 1 && (v[2] & 3)))
		return -EINVAL;
	out[0] = (unsigned char)(v[0] << 2 | v[1] >> 4);
	out[1] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
	out[2] = (unsigned char)((v[2] & 3) << 6 | v[3]);
	*got = 3 - pad;
	return 0;
}

/* Decode; see base64.h. */
int topo_b64_decode(const char *in, size_t n, unsigned char **out,
		    size_t *outlen)
{
	unsigned char *buf;
	size_t len = 0;

	if (n % 4)
		return -EINVAL;
	buf = malloc(n / 4 * 3 + 1);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < n; i += 4) {
		size_t got;

		if (b64_group(in + i, i + 4 == n, buf + len, &got) < 0) {
			free(buf);
			return -EINVAL;
		}
		len += got;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}
