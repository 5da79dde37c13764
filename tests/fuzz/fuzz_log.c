/*
 * fuzz_log.c - topo_log for the fuzz targets, in place of fs/log.c.
 *
 * It formats every line (LOG_DEBUG ones too, which fs/log.c skips without
 * -d), so the sanitizers check each argument a log line reads, then drops
 * it: a fuzzer logs on nearly every input and printing would slow it down
 * and bury its own output. TOPOFS_FUZZ_LOG=1 in the environment prints them.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "topofs/log.h"

void topo_log_to_syslog(bool on)
{
	(void)on;
}

void topo_log_set_debug(bool on)
{
	(void)on;
}

void topo_log(int level, const char *fmt, ...)
{
	static int show = -1;
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (show < 0)
		show = getenv("TOPOFS_FUZZ_LOG") != NULL;
	if (show)
		fprintf(stderr, "topofs[%d]: %s\n", level, line);
}
