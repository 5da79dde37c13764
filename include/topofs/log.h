/*
 * log.h - one line per event: stderr in the foreground, syslog when
 * daemonised. Safe from any thread.
 */
#ifndef TOPOFS_LOG_H
#define TOPOFS_LOG_H

#include <stdbool.h>
#include <syslog.h>

/* Send later messages to syslog (true) or stderr (false). */
void topo_log_to_syslog(bool on);

/* Show LOG_DEBUG messages (-d). */
void topo_log_set_debug(bool on);

/* Log one line at a syslog level (LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG).
 */
void topo_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define topo_err(...) topo_log(LOG_ERR, __VA_ARGS__)
#define topo_warn(...) topo_log(LOG_WARNING, __VA_ARGS__)
#define topo_info(...) topo_log(LOG_INFO, __VA_ARGS__)
#define topo_debug(...) topo_log(LOG_DEBUG, __VA_ARGS__)

#endif
