/* check_report.c - the report of topofs --check; see check.h. Pure. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "view_wire.h"

const char *check_level_word(enum topo_check_level level)
{
	switch (level) {
	case TOPO_CHECK_OK:
		return "ok";
	case TOPO_CHECK_WARN:
		return "warn";
	default:
		return "FAIL";
	}
}

void check_line_format(const struct check_line *l, char *buf, size_t n)
{
	snprintf(buf, n, "%-4s  %s%s%s  (%s)", check_level_word(l->level),
		 l->server ? l->server : "", l->server ? " " : "", l->what,
		 l->value);
}

int check_report_add(struct check_report *r, enum topo_check_level level,
		     const char *server, const char *what, const char *value,
		     double ms)
{
	struct check_line *l;

	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 32;
		l = realloc(r->lines, cap * sizeof(*l));
		if (!l)
			return -ENOMEM;
		r->lines = l;
		r->cap = cap;
	}
	l = &r->lines[r->n];
	*l = (struct check_line){.level = level, .ms = ms};
	l->server = server ? strdup(server) : NULL;
	l->what = strdup(what);
	l->value = strdup(value ? value : "");
	if ((server && !l->server) || !l->what || !l->value) {
		free(l->server), free(l->what), free(l->value);
		return -ENOMEM;
	}
	r->n++;
	if (r->out) {
		char buf[1200];
		check_line_format(l, buf, sizeof(buf));
		fprintf(r->out, "%s\n", buf);
		fflush(r->out);
	}
	return 0;
}

enum topo_check_level check_report_worst(const struct check_report *r)
{
	enum topo_check_level w = TOPO_CHECK_OK;

	for (size_t i = 0; i < r->n; i++)
		if (r->lines[i].level > w)
			w = r->lines[i].level;
	return w;
}

int check_exit_status(enum topo_check_level worst)
{
	return worst == TOPO_CHECK_OK ? 0 : worst == TOPO_CHECK_WARN ? 1 : 2;
}

/* One line as a JSON object; NULL if out of memory. */
static json_t *line_json(const struct check_line *l)
{
	const char *word = check_level_word(l->level);
	json_t *o = json_pack("{s:s, s:s, s:s}", "level",
			      l->level == TOPO_CHECK_FAIL ? "fail" : word,
			      "what", l->what, "value", l->value);

	if (o && l->server &&
	    json_object_set_new(o, "server", json_string(l->server))) {
		json_decref(o);
		return NULL;
	}
	if (o && l->ms >= 0 && json_object_set_new(o, "ms", json_real(l->ms))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

char *check_report_json(const struct check_report *r, const char *impl,
			const char *servers, const char *root,
			const char *vitess_flags)
{
	enum topo_check_level w = check_report_worst(r);
	json_t *checks = json_array(), *doc;
	char *text = NULL;

	for (size_t i = 0; checks && i < r->n; i++)
		if (json_array_append_new(checks, line_json(&r->lines[i]))) {
			json_decref(checks);
			checks = NULL;
		}
	if (!checks)
		return NULL;
	doc = json_pack("{s:s, s:s, s:s, s:s, s:i, s:o, s:s}", "implementation",
			impl, "servers", servers, "root", root, "status",
			w == TOPO_CHECK_FAIL ? "fail" : check_level_word(w),
			"exit", check_exit_status(w), "checks", checks,
			"vitess_flags", vitess_flags ? vitess_flags : "");
	if (doc)
		text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	return text;
}

void check_report_free(struct check_report *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->lines[i].server);
		free(r->lines[i].what);
		free(r->lines[i].value);
	}
	free(r->lines);
	r->lines = NULL;
	r->n = r->cap = 0;
}

char *check_vitess_flags(const char *impl, const char *servers,
			 const char *root)
{
	char *s = NULL;

	if (asprintf(&s,
		     "--topo_implementation=%s "
		     "--topo_global_server_address=%s --topo_global_root=%s",
		     impl, servers, root) < 0)
		return NULL;
	return s;
}

int check_cellinfo_parse(const unsigned char *v, size_t n, char **addr,
			 char **root)
{
	const unsigned char *p = v;
	const unsigned char *a = NULL, *rt = NULL;
	size_t alen = 0, rlen = 0;
	struct wf f;
	int r;

	while ((r = vw_wire_next(&p, v + n, &f)) == 1) {
		if (f.num == 1 && f.wt == WT_LEN)
			a = f.data, alen = f.len;
		else if (f.num == 2 && f.wt == WT_LEN)
			rt = f.data, rlen = f.len;
	}
	if (r != 0 || !a || !rt || !alen || !rlen || memchr(a, 0, alen) ||
	    memchr(rt, 0, rlen))
		return -EINVAL;
	*addr = strndup((const char *)a, alen);
	*root = strndup((const char *)rt, rlen);
	if (!*addr || !*root) {
		free(*addr), free(*root);
		return -ENOMEM;
	}
	return 0;
}
