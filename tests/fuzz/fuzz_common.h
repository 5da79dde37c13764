/*
 * fuzz_common.h - helpers shared by the libFuzzer targets in tests/fuzz/.
 *
 * Every target is one LLVMFuzzerTestOneInput; a broken property calls
 * FUZZ_CHECK, which prints the condition and aborts, so libFuzzer saves the
 * input as a crash like any sanitizer report.
 */
#ifndef TOPOFS_FUZZ_COMMON_H
#define TOPOFS_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: property failed: %s\n",        \
				__FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

/* A heap copy of data[0..size) with nothing after it, so that ASan catches
 * any read past the length a function was given. */
static inline char *fuzz_exact(const uint8_t *data, size_t size)
{
	char *p = malloc(size ? size : 1);

	if (!p)
		abort();
	if (size)
		memcpy(p, data, size);
	return p; /* size 0: a valid pointer to no bytes */
}

/* A heap copy of data[0..size) followed by a NUL, as http.c hands answers
 * over (its write callback keeps the body NUL-terminated). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *p = malloc(size + 1);

	if (!p)
		abort();
	memcpy(p, data, size);
	p[size] = '\0';
	return p;
}

/* Read every byte of p[0..n) so ASan checks the whole range is valid. */
static inline unsigned fuzz_touch(const void *p, size_t n)
{
	const volatile unsigned char *c = p;
	unsigned sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += c[i];
	return sum;
}

#endif
