/* log.c - see include/topofs/log.h. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "topofs/log.h"

static atomic_bool use_syslog;
static atomic_bool show_debug;

void topo_log_to_syslog(bool on)
{
	if (on)
		openlog("topofs", LOG_PID, LOG_DAEMON);
	atomic_store(&use_syslog, on);
}

void topo_log_set_debug(bool on)
{
	atomic_store(&show_debug, on);
}

void topo_log(int level, const char *fmt, ...)
{
	if (level == LOG_DEBUG && !atomic_load(&show_debug))
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (atomic_load(&use_syslog))
		syslog(level, "%s", line);
	else
		fprintf(stderr, "topofs: %s\n",
			line); /* one write: no interleaving */
}
