/*
 * check.h - the smallest unit-test harness: CHECK* record a failure with its
 * location and go on; main returns check_report(), non-zero if any failed.
 */
#ifndef TOPOFS_CHECK_H
#define TOPOFS_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                            \
	do {                                                                   \
		check_count++;                                                 \
		if (!(cond)) {                                                 \
			check_failures++;                                      \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, \
				__LINE__, #cond);                              \
		}                                                              \
	} while (0)

#define CHECK_INT(got, want)                                                   \
	do {                                                                   \
		long long g_ = (long long)(got), w_ = (long long)(want);       \
		check_count++;                                                 \
		if (g_ != w_) {                                                \
			check_failures++;                                      \
			fprintf(stderr, "%s:%d: %s == %lld, want %lld\n",      \
				__FILE__, __LINE__, #got, g_, w_);             \
		}                                                              \
	} while (0)

#define CHECK_STR(got, want)                                                   \
	do {                                                                   \
		const char *g_ = (got), *w_ = (want);                          \
		check_count++;                                                 \
		if (!g_ || !w_ || strcmp(g_, w_) != 0) {                       \
			check_failures++;                                      \
			fprintf(stderr, "%s:%d: %s == \"%s\", want \"%s\"\n",  \
				__FILE__, __LINE__, #got, g_ ? g_ : "(null)",  \
				w_ ? w_ : "(null)");                           \
		}                                                              \
	} while (0)

#define CHECK_MEM(got, gotlen, want, wantlen)                                  \
	do {                                                                   \
		size_t gl_ = (gotlen), wl_ = (wantlen);                        \
		check_count++;                                                 \
		if (gl_ != wl_ || memcmp((got), (want), gl_) != 0) {           \
			check_failures++;                                      \
			fprintf(stderr, "%s:%d: %s differs (len %zu, want %zu)\n", \
				__FILE__, __LINE__, #got, gl_, wl_);           \
		}                                                              \
	} while (0)

static inline int check_report(void)
{
	fprintf(stderr, "%d checks, %d failed\n", check_count, check_failures);
	return check_failures ? 1 : 0;
}

#endif
