/* v2json.c - see v2json.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "v2json.h"
#include "topofs/log.h"

#define NAME(what) ((what) ? (what) : "probe")

/* Log one malformed answer and return -EIO. */
static int bad_answer(const char *what, const char *why)
{
	topo_err("etcd v2: %s: malformed answer: %s", NAME(what), why);
	return -EIO;
}

/* Map an etcd v2 error; see v2json.h. */
int etcdv2_errno(long code, const char *message, const char *cause,
		 const char *what)
{
	const char *m = message ? message : "error";
	const char *c = cause ? cause : "";
	int lvl = what ? LOG_ERR : LOG_DEBUG;

	switch (code) {
	case V2_KEY_NOT_FOUND:
		return -ENOENT;
	case V2_TEST_FAILED:
		return -ESTALE;
	case V2_NOT_FILE:
		return -EISDIR;
	case V2_NOT_DIR:
		return -ENOTDIR;
	case V2_NODE_EXIST:
		return -EEXIST;
	case V2_DIR_NOT_EMPTY:
		return -ENOTEMPTY;
	case V2_ROOT_RONLY:
		topo_log(lvl, "etcd v2: %s: %s", NAME(what), m);
		return -EROFS;
	case V2_UNAUTHORIZED:
		topo_log(lvl, "etcd v2: %s: not authorised: %s", NAME(what), m);
		return -EACCES;
	case V2_EVENT_INDEX_CLEARED:
		topo_debug("etcd v2: %s: %s (%s)", NAME(what), m, c);
		return -EAGAIN;
	}
	/* A value over --max-request-bytes fails in raft (code 300). */
	if (strstr(c, "too large") || strstr(m, "too large")) {
		topo_log(lvl, "etcd v2: %s: %s: %s", NAME(what), m, c);
		return -EFBIG;
	}
	topo_log(lvl, "etcd v2: %s: %s%s%s (code %ld)", NAME(what), m,
		 *c ? ": " : "", c, code);
	return -EIO;
}

/* Load an answer that must be a JSON object (values may hold "\u0000").
 * 0 or -EIO. */
static int load_object(const char *json, size_t len, const char *what,
		       json_t **out)
{
	json_error_t jerr;
	json_t *doc =
	    json_loadb(json ? json : "", json ? len : 0,
		       JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);

	if (!doc) {
		topo_err("etcd v2: %s: malformed answer: %s", NAME(what),
			 jerr.text);
		return -EIO;
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		return bad_answer(what, "not an object");
	}
	*out = doc;
	return 0;
}

/* An optional integer member (absent: 0). 0 or -EIO. */
static int get_int(json_t *obj, const char *name, int64_t *v, const char *what)
{
	json_t *f = json_object_get(obj, name);

	*v = 0;
	if (!f)
		return 0;
	if (!json_is_integer(f) || json_integer_value(f) < 0)
		return bad_answer(what, name);
	*v = json_integer_value(f);
	return 0;
}

/* An optional string member: *s (NULL when absent) and its length. */
static int get_str(json_t *obj, const char *name, const char **s, size_t *len,
		   const char *what)
{
	json_t *f = json_object_get(obj, name);

	*s = NULL;
	*len = 0;
	if (!f)
		return 0;
	if (!json_is_string(f))
		return bad_answer(what, name);
	*s = json_string_value(f);
	*len = json_string_length(f);
	return 0;
}

/* Check an HTTP answer; see v2json.h. */
int etcdv2_parse_error(long status, const char *json, size_t len,
		       const char *what, int64_t *index)
{
	json_t *doc, *code;
	const char *msg, *cause;
	size_t n;
	int64_t idx;
	int err;

	if (index)
		*index = -1;
	if (status == 200 || status == 201)
		return 0;
	doc = json_loadb(json ? json : "", json ? len : 0, 0, NULL);
	code = json_is_object(doc) ? json_object_get(doc, "errorCode") : NULL;
	if (!json_is_integer(code)) {
		json_decref(doc);
		topo_log(what ? LOG_ERR : LOG_DEBUG,
			 "etcd v2: %s: HTTP status %ld: %.*s", NAME(what),
			 status, (int)(len < 100 ? len : 100),
			 json ? json : "");
		return -EIO;
	}
	if (get_str(doc, "message", &msg, &n, what) ||
	    get_str(doc, "cause", &cause, &n, what) ||
	    get_int(doc, "index", &idx, what)) {
		json_decref(doc);
		return -EIO;
	}
	if (index && json_object_get(doc, "index"))
		*index = idx;
	err = etcdv2_errno((long)json_integer_value(code), msg, cause, what);
	json_decref(doc);
	return err;
}

/* The path of key relative to root: "" for the root itself, NULL when the
 * key is not at or below it. */
static const char *relative(const char *key, const char *root)
{
	size_t n = strlen(root);

	if (strcmp(key, root) == 0 || (n == 0 && strcmp(key, "/") == 0))
		return "";
	/* "//x" is no key below the root: etcd cleans its paths */
	if (strncmp(key, root, n) == 0 && key[n] == '/' && key[n + 1] &&
	    key[n + 1] != '/')
		return key + n + 1;
	return NULL;
}

/* A node's key (absent: the store's root, "/"); 0, 1 (holds a NUL: skip
 * it) or -EIO. */
static int node_key(json_t *node, const char *what, const char **key)
{
	size_t len;
	int err = get_str(node, "key", key, &len, what);

	if (err)
		return err;
	if (!*key) {
		*key = "/";
		return 0;
	}
	if (strlen(*key) != len) {
		topo_warn("etcd v2: %s: skipped a key holding a NUL byte",
			  NAME(what));
		return 1;
	}
	return 0;
}

/* A node's metadata and value (a copy, NULL if empty or a directory). */
static int node_meta(json_t *node, const char *what, struct topo_meta *m,
		     unsigned char **value)
{
	json_t *dir = json_object_get(node, "dir"), *ttl;
	const char *v;
	size_t len;
	int err;

	memset(m, 0, sizeof(*m));
	*value = NULL;
	if (dir && !json_is_boolean(dir))
		return bad_answer(what, "dir");
	if ((err = get_int(node, "modifiedIndex", &m->version, what)) ||
	    (err = get_int(node, "createdIndex", &m->create_id, what)) ||
	    (err = get_int(node, "ttl", &m->lease, what)) ||
	    (err = get_str(node, "value", &v, &len, what)))
		return err;
	ttl = json_object_get(node, "ttl");
	m->modify_id = m->version;
	m->has_data = true;
	m->ephemeral = ttl != NULL;
	m->real_dir = json_is_true(dir);
	if (m->real_dir)
		return v ? bad_answer(what, "a directory with a value") : 0;
	m->size = len;
	if (len) {
		*value = malloc(len);
		if (!*value)
			return -ENOMEM;
		memcpy(*value, v, len);
	}
	return 0;
}

/* Append node and, for a directory, its "nodes" (recursively). */
static int add_node(json_t *node, const char *root, const char *what,
		    struct topo_listing *out)
{
	struct topo_meta m;
	unsigned char *value;
	const char *key, *rel;
	json_t *kids, *kid;
	size_t i;
	int err;

	if (!json_is_object(node))
		return bad_answer(what, "a node that is not an object");
	err = node_key(node, what, &key);
	if (err)
		return err < 0 ? err : 0;
	rel = relative(key, root);
	if (!rel)
		return bad_answer(what, "a key outside the root");
	if ((err = node_meta(node, what, &m, &value)))
		return err;
	if ((err = topo_listing_add(out, rel, strlen(rel), &m, value))) {
		free(value);
		return err;
	}
	kids = json_object_get(node, "nodes");
	if (!kids)
		return 0;
	if (!json_is_array(kids) || !m.real_dir)
		return bad_answer(what, "nodes");
	json_array_foreach(kids, i, kid)
	{
		if ((err = add_node(kid, root, what, out)))
			return err;
	}
	return 0;
}

/* The "node" member of an answer. */
static int get_node(json_t *doc, const char *what, json_t **node)
{
	*node = json_object_get(doc, "node");
	return json_is_object(*node) ? 0 : bad_answer(what, "no node");
}

/* Parse a GET answer; see v2json.h. */
int etcdv2_parse_nodes(const char *json, size_t len, const char *root,
		       const char *what, struct topo_listing *out)
{
	json_t *doc, *node;
	int err = load_object(json, len, what, &doc);

	if (err)
		return err;
	err = get_node(doc, what, &node);
	if (!err)
		err = add_node(node, root, what, out);
	json_decref(doc);
	return err;
}

/* Parse a write answer; see v2json.h. */
int etcdv2_parse_write(const char *json, size_t len, const char *what,
		       struct topo_meta *meta)
{
	json_t *doc, *node;
	unsigned char *value = NULL;
	int err = load_object(json, len, what, &doc);

	if (err)
		return err;
	err = get_node(doc, what, &node);
	if (!err)
		err = node_meta(node, what, meta, &value);
	if (!err && meta->version <= 0)
		err = bad_answer(what, "no modifiedIndex");
	free(value);
	json_decref(doc);
	return err;
}

/* Whether an action removes the node. */
static bool removes(const char *action)
{
	return !strcmp(action, "delete") || !strcmp(action, "expire") ||
	       !strcmp(action, "compareAndDelete");
}

/* Parse a wait=true answer; see v2json.h. */
int etcdv2_parse_event(const char *json, size_t len, const char *root,
		       struct etcdv2_event *ev)
{
	json_t *doc, *node, *dir;
	const char *action, *key, *rel;
	size_t n;
	int nul, err = load_object(json, len, "watch", &doc);

	memset(ev, 0, sizeof(*ev));
	if (err)
		return err;
	if ((err = get_str(doc, "action", &action, &n, "watch")) ||
	    (err = get_node(doc, "watch", &node)))
		goto out;
	if (!action) {
		err = bad_answer("watch", "no action");
		goto out;
	}
	dir = json_object_get(node, "dir");
	if ((nul = node_key(node, "watch", &key)) < 0) {
		err = nul;
		goto out;
	}
	if ((err = get_int(node, "modifiedIndex", &ev->index, "watch")))
		goto out;
	if (ev->index <= 0 || (dir && !json_is_boolean(dir))) {
		err = bad_answer("watch", "modifiedIndex or dir");
		goto out;
	}
	ev->deleted = removes(action);
	ev->dir = json_is_true(dir);
	rel = nul ? NULL : relative(key, root);
	if (rel && !(ev->path = strdup(rel)))
		err = -ENOMEM;
out:
	json_decref(doc);
	return err;
}

/* The length of the UTF-8 sequence at p[0..n) (1..4), or 0 if invalid:
 * overlong forms, surrogates and code points over U+10FFFF are. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned c = p[0], need, min, cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 1, min = 0x80, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		need = 2, min = 0x800, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 3, min = 0x10000, cp = c & 0x07;
	else
		return 0;
	if (n < need + 1)
		return 0;
	for (unsigned i = 1; i <= need; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need + 1;
}

/* Valid UTF-8 without NUL; see v2json.h. */
bool etcdv2_value_ok(const void *v, size_t len)
{
	const unsigned char *p = v;

	while (len > 0) {
		size_t n = p[0] ? utf8_len(p, len) : 0;

		if (n == 0)
			return false;
		p += n;
		len -= n;
	}
	return true;
}
