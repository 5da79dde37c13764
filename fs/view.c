/* view.c - see view.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "topofs.h"
#include "topofs/log.h"
#include "view.h"
#include "view_json.h"

const struct proto_message *view_type(const struct topofs *t, const char *path,
				      bool is_data)
{
	if (!t->json_view || is_data)
		return NULL;
	return proto_record_type(path);
}

static int copy_raw(const unsigned char *raw, size_t len, unsigned char **out,
		    size_t *outlen)
{
	*out = NULL;
	*outlen = len;
	if (!len)
		return 0;
	*out = malloc(len);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, raw, len);
	return 0;
}

int view_out(const struct topofs *t, const char *path, bool is_data,
	     const unsigned char *raw, size_t len, unsigned char **out,
	     size_t *outlen, const struct proto_message **type)
{
	*type = view_type(t, path, is_data);
	if (!*type)
		return copy_raw(raw, len, out, outlen);
	char err[256], *json;
	int rc =
	    view_json_decode(*type, raw, len, &json, outlen, err, sizeof(err));
	if (rc == -EINVAL) {
		topo_debug("%s: shown raw: not a valid record: %s", path, err);
		*type = NULL;
		return copy_raw(raw, len, out, outlen);
	}
	*out = (unsigned char *)json;
	return rc;
}
