/*
 * check.h - topofs --check: the Vitess checklist of a topology store as one
 * command (SPEC 10, docs/check.md). Mounts nothing; writes only with
 * --check=write.
 *
 * check.c runs the checks: each server on its own (the backend's check()),
 * the root (open(), never creating it), every cell of the global root's
 * cells/<cell>/CellInfo records (their servers and roots), the write probe,
 * and the three Vitess flags. check_report.c holds the report: its lines,
 * their text and JSON forms and the exit status (pure, for the unit tests).
 */
#ifndef TOPOFS_FS_CHECK_H
#define TOPOFS_FS_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "options.h"
#include "topofs/backend.h"

/* One line of the report. */
struct check_line {
	enum topo_check_level level;
	char *server; /* the address it is about, or NULL (owned) */
	char *what;   /* owned */
	char *value;  /* owned */
	double ms;    /* a measured time, or -1 */
	bool foreign; /* server answers as another store (backend.h) */
};

/* The report: its lines, printed as they come unless out is NULL. */
struct check_report {
	struct check_line *lines; /* owned */
	size_t n, cap;
	FILE *out; /* text lines go here at once; NULL: collect only (JSON) */
};

/* The word a level prints as: "ok", "warn", "FAIL". */
const char *check_level_word(enum topo_check_level level);

/* Add a line (the strings are copied) and print it to r->out. 0 or
 * -ENOMEM. */
int check_report_add(struct check_report *r, enum topo_check_level level,
		     const char *server, const char *what, const char *value,
		     double ms);

/* One line of text: "ok    SERVER WHAT  (VALUE)" into buf (n bytes). */
void check_line_format(const struct check_line *l, char *buf, size_t n);

/* The worst level of the report (OK when it is empty). */
enum topo_check_level check_report_worst(const struct check_report *r);

/* The exit status of a worst level: 0 ok, 1 warn, 2 FAIL. */
int check_exit_status(enum topo_check_level worst);

/* The report as one JSON document (newly allocated text, caller frees;
 * NULL if out of memory): {"implementation", "servers", "root",
 * "status": "ok"|"warn"|"fail", "exit", "checks": [{"level", "server",
 * "what", "value", "ms"}...], "vitess_flags"}. */
char *check_report_json(const struct check_report *r, const char *impl,
			const char *servers, const char *root,
			const char *vitess_flags);

/* Free the lines. */
void check_report_free(struct check_report *r);

/* The three Vitess flags to paste, newly allocated (NULL: no memory). */
char *check_vitess_flags(const char *impl, const char *servers,
			 const char *root);

/* A CellInfo record (field 1 server_address, field 2 root) from its wire
 * bytes: 0 with *addr and *root newly allocated, -EINVAL if it is not one
 * or lacks either, -ENOMEM. */
int check_cellinfo_parse(const unsigned char *v, size_t n, char **addr,
			 char **root);

/* topofs --check with the parsed options: prints the report (text or
 * JSON) on stdout and returns the exit status (0, 1, 2). */
int check_main(const struct topofs_opts *o);

#endif
