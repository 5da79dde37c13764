/* pin.c - see pin.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "json.h"
#include "pin.h"
#include "topofs/base64.h"

/* POST body to api and check the answer for an etcd error. 0 and *reply, or
 * a negative errno (logged naming `what`). */
static int post(struct etcd_http *h, const char *api, const char *body,
		const char *what, struct etcd_reply *reply)
{
	return etcd_auth_call(h, api, body, strlen(body), etcd_http_deadline(h),
			      NULL, what, reply);
}

/* Current revision; see pin.h. */
int etcd_current_revision(struct etcd_http *h, const char *what, int64_t *rev)
{
	struct etcd_reply reply;
	int err = post(h, "/v3/maintenance/status", "{}", what, &reply);

	if (err)
		return err;
	err = etcd_parse_revision(reply.body, reply.len, what ? what : "status",
				  rev);
	etcd_reply_free(&reply);
	return err;
}

/* Ask for one (absent) key at revision `want`: etcd refuses a compacted or
 * future revision for every request, so the answer tells whether reads at
 * `want` work. 0, -EINVAL (reason in errbuf) or another negative errno. */
static int check_revision(struct etcd_http *h, const char *servers,
			  const char *root, int64_t want, int64_t current,
			  char *errbuf, size_t errlen)
{
	struct etcd_reply reply;
	char why[256], *key = NULL, *b64 = NULL, *body = NULL;
	int err = -ENOMEM;

	if (asprintf(&key, "%s/", root) < 0)
		return -ENOMEM;
	if (topo_b64_encode(key, strlen(key), &b64) ||
	    asprintf(&body,
		     "{\"key\":\"%s\",\"revision\":\"%" PRId64
		     "\",\"count_only\":true}",
		     b64, want) < 0)
		body = NULL;
	free(key);
	free(b64);
	if (!body)
		return -ENOMEM;
	err = etcd_auth_post(h, "/v3/kv/range", body, strlen(body),
			     etcd_http_deadline(h), NULL, NULL, &reply, why,
			     sizeof(why));
	free(body);
	if (err) {
		snprintf(errbuf, errlen, "cannot reach etcd at %s", why);
		return err;
	}
	if (reply.status != 200 && reply.body &&
	    strstr(reply.body, "required revision has been compacted")) {
		snprintf(errbuf, errlen,
			 "revision %" PRId64 " has been compacted: etcd at %s "
			 "no longer has it (current revision %" PRId64 ")",
			 want, servers, current);
		err = -EINVAL;
	} else if (reply.status != 200 && reply.body &&
		   strstr(reply.body, "required revision is a future")) {
		snprintf(errbuf, errlen,
			 "revision %" PRId64 " is a future revision: etcd at "
			 "%s is at revision %" PRId64,
			 want, servers, current);
		err = -EINVAL;
	} else {
		err = etcd_parse_reply_error(reply.status, reply.body,
					     reply.len, NULL);
		if (err)
			snprintf(errbuf, errlen,
				 "etcd at %s cannot read revision %" PRId64
				 " (-d shows why)",
				 servers, want);
	}
	etcd_reply_free(&reply);
	return err;
}

/* Pin; see pin.h. */
int etcd_pin(struct etcd_http *h, const char *servers, const char *root,
	     int64_t want, bool snapshot, int64_t *pinned, char *errbuf,
	     size_t errlen)
{
	int64_t current;
	int err;

	*pinned = 0;
	if (!snapshot && want <= 0)
		return 0;
	err = etcd_current_revision(h, NULL, &current);
	if (err) {
		snprintf(errbuf, errlen,
			 "etcd at %s gave no current revision (-d shows why)",
			 servers);
		return err;
	}
	if (snapshot) {
		*pinned = current;
		return 0;
	}
	if (want > current) {
		snprintf(errbuf, errlen,
			 "revision %" PRId64 " is a future revision: etcd at "
			 "%s is at revision %" PRId64,
			 want, servers, current);
		return -EINVAL;
	}
	err = check_revision(h, servers, root, want, current, errbuf, errlen);
	if (!err)
		*pinned = want;
	return err;
}
