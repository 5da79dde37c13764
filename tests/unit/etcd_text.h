/*
 * etcd_text.h - building etcd gateway answers in unit tests: base64 of a
 * string and printf into a new string. Header-only (every test is its own
 * program).
 */
#ifndef TOPOFS_TEST_ETCD_TEXT_H
#define TOPOFS_TEST_ETCD_TEXT_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topofs/base64.h"

/* The base64 of s, in one of 16 rotating static buffers (so that a few
 * can be arguments of one fmt call). */
static inline const char *b64(const char *s)
{
	static char bufs[16][256];
	static int next;
	char *enc, *out = bufs[next++ % 16];

	if (topo_b64_encode(s, strlen(s), &enc))
		abort();
	snprintf(out, 256, "%s", enc);
	free(enc);
	return out;
}

/* printf into a new string (the caller frees it). */
static inline char *fmt(const char *f, ...)
    __attribute__((format(printf, 1, 2)));
static inline char *fmt(const char *f, ...)
{
	va_list ap;
	char *s;

	va_start(ap, f);
	if (vasprintf(&s, f, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

#endif
