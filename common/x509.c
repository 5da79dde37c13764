/* x509.c - see include/topofs/x509.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "topofs/base64.h"
#include "topofs/x509.h"

#define PEM_MAX (1u << 20)

/* One DER element at *p: its tag and its contents c[0..len). *p moves past
 * it. 0, or -EINVAL if it does not fit in end. */
static int der_next(const unsigned char **p, const unsigned char *end,
		    unsigned *tag, const unsigned char **c, size_t *len)
{
	const unsigned char *q = *p;
	size_t n;

	if (end - q < 2)
		return -EINVAL;
	*tag = *q++;
	n = *q++;
	if (n & 0x80) {
		unsigned k = n & 0x7f;

		if (k == 0 || k > sizeof(size_t) || (size_t)(end - q) < k)
			return -EINVAL;
		for (n = 0; k > 0; k--)
			n = (n << 8) | *q++;
	}
	if (n > (size_t)(end - q))
		return -EINVAL;
	*c = q;
	*len = n;
	*p = q + n;
	return 0;
}

/* Read `digits` decimal digits at *s into *v. 0 or -EINVAL. */
static int digits(const unsigned char **s, int count, int *v)
{
	*v = 0;
	for (int i = 0; i < count; i++, (*s)++) {
		if (**s < '0' || **s > '9')
			return -EINVAL;
		*v = *v * 10 + (**s - '0');
	}
	return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

/* UTCTime (tag 0x17, YYMMDDHHMMSSZ) or GeneralizedTime (0x18,
 * YYYYMMDDHHMMSSZ) as seconds since the epoch. 0 or -EINVAL. */
static int der_time(unsigned tag, const unsigned char *c, size_t len,
		    int64_t *out)
{
	int y, mo, d, h, mi, s;
	const unsigned char *p = c;

	if (tag == 0x17 && len == 13) {
		if (digits(&p, 2, &y))
			return -EINVAL;
		y += y < 50 ? 2000 : 1900;
	} else if (tag == 0x18 && len == 15) {
		if (digits(&p, 4, &y))
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	if (digits(&p, 2, &mo) || digits(&p, 2, &d) || digits(&p, 2, &h) ||
	    digits(&p, 2, &mi) || digits(&p, 2, &s) || *p != 'Z' || mo < 1 ||
	    mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
		return -EINVAL;
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
	return 0;
}

/* notAfter of a DER certificate; see x509.h. */
int topo_x509_der_not_after(const unsigned char *der, size_t n, int64_t *out)
{
	const unsigned char *p = der, *end = der + n, *c, *tbs_end;
	unsigned tag;
	size_t len;

	/* Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, ... } */
	if (der_next(&p, end, &tag, &c, &len) || tag != 0x30)
		return -EINVAL;
	p = c, end = c + len;
	if (der_next(&p, end, &tag, &c, &len) || tag != 0x30)
		return -EINVAL;
	p = c, tbs_end = c + len;
	/* [0] version (optional), serialNumber, signature, issuer */
	if (der_next(&p, tbs_end, &tag, &c, &len))
		return -EINVAL;
	if (tag == 0xa0 && der_next(&p, tbs_end, &tag, &c, &len))
		return -EINVAL;
	if (tag != 0x02 || der_next(&p, tbs_end, &tag, &c, &len) ||
	    tag != 0x30 || der_next(&p, tbs_end, &tag, &c, &len) || tag != 0x30)
		return -EINVAL;
	/* validity ::= SEQUENCE { notBefore Time, notAfter Time } */
	if (der_next(&p, tbs_end, &tag, &c, &len) || tag != 0x30)
		return -EINVAL;
	p = c, end = c + len;
	if (der_next(&p, end, &tag, &c, &len) ||
	    der_next(&p, end, &tag, &c, &len))
		return -EINVAL;
	return der_time(tag, c, len, out);
}

/* The base64 between the BEGIN and END lines, whitespace dropped, in a new
 * string *out of *outlen characters. 0, -EINVAL or -ENOMEM. */
static int pem_body(const char *pem, size_t n, char **out, size_t *outlen)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	static const char endl[] = "-----END CERTIFICATE-----";
	const char *b = memmem(pem, n, begin, sizeof(begin) - 1), *e;
	size_t k = 0;

	if (!b)
		return -EINVAL;
	b += sizeof(begin) - 1;
	e = memmem(b, n - (size_t)(b - pem), endl, sizeof(endl) - 1);
	if (!e)
		return -EINVAL;
	*out = malloc((size_t)(e - b) + 1);
	if (!*out)
		return -ENOMEM;
	for (const char *s = b; s < e; s++)
		if (*s != '\n' && *s != '\r' && *s != ' ' && *s != '\t')
			(*out)[k++] = *s;
	(*out)[k] = '\0';
	*outlen = k;
	return 0;
}

/* notAfter of a PEM certificate; see x509.h. */
int topo_x509_pem_not_after(const char *pem, size_t n, int64_t *out)
{
	char *b64;
	unsigned char *der;
	size_t len, derlen;
	int err = pem_body(pem, n, &b64, &len);

	if (err)
		return err;
	err = topo_b64_decode(b64, len, &der, &derlen);
	free(b64);
	if (err)
		return err;
	err = topo_x509_der_not_after(der, derlen, out);
	free(der);
	return err;
}

/* notAfter of a PEM file; see x509.h. */
int topo_x509_file_not_after(const char *path, int64_t *out)
{
	char *buf = malloc(PEM_MAX);
	size_t n = 0;
	ssize_t r;
	int fd, err = 0;

	if (!buf)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		err = -errno;
		free(buf);
		return err;
	}
	while (n < PEM_MAX && (r = read(fd, buf + n, PEM_MAX - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			break;
		}
		n += (size_t)r;
	}
	close(fd);
	if (!err)
		err = topo_x509_pem_not_after(buf, n, out);
	free(buf);
	return err;
}

/* Whole days left; see x509.h. */
long topo_x509_days_left(int64_t not_after, int64_t now)
{
	int64_t d = not_after - now;

	/* floor division: one second past expiry is day -1 */
	return (long)(d >= 0 ? d / 86400 : -((-d + 86399) / 86400));
}
