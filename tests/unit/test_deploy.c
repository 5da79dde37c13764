/* Unit tests of the deployment view's pure parts (fs/deploy.c): CellInfo
 * records as Vitess writes them, and which cells -o cells=A,B shows. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../fs/deploy_internal.h"
#include "check.h"

/* A CellInfo on the wire: field 1 server_address, field 2 root. */
static size_t cellinfo(unsigned char *out, const char *servers,
		       const char *root)
{
	size_t n = 0;
	const char *f[] = {servers, root};
	for (int i = 0; i < 2; i++) {
		if (!f[i])
			continue;
		out[n++] = (unsigned char)((i + 1) << 3 | 2);
		out[n++] = (unsigned char)strlen(f[i]);
		memcpy(out + n, f[i], strlen(f[i]));
		n += strlen(f[i]);
	}
	return n;
}

/* v parses to exactly (servers, root), or is refused with reason `why`. */
static void parses(const unsigned char *v, size_t len, const char *servers,
		   const char *root, const char *why)
{
	char *s = NULL, *r = NULL;
	const char *got_why = NULL;
	int rc = deploy_parse_cellinfo(v, len, &s, &r, &got_why);
	CHECK_INT(rc, why ? -EINVAL : 0);
	if (why) {
		CHECK(got_why && strstr(got_why, why));
	} else {
		CHECK_STR(s, servers);
		CHECK_STR(r, root);
	}
	free(s);
	free(r);
}

static void test_cellinfo(void)
{
	unsigned char v[256];
	size_t n = cellinfo(v, "z1:2181,z2:2181", "/vitess/zone1");
	parses(v, n, "z1:2181,z2:2181", "/vitess/zone1", NULL);
	n = cellinfo(v, "h:2379", "/vitess/zone1//");
	parses(v, n, "h:2379", "/vitess/zone1", NULL);
	n = cellinfo(v, "h:2379", "/");
	parses(v, n, "h:2379", "/", NULL);

	/* a field this code does not know (a newer Vitess) is skipped */
	n = cellinfo(v, "h:1", "/r");
	memcpy(v + n, "\x18\x07", 2); /* field 3, varint 7 */
	parses(v, n + 2, "h:1", "/r", NULL);
	/* the last occurrence of a field wins, as in protobuf */
	n = cellinfo(v, "h:1", "/r");
	n += cellinfo(v + n, "h:2", NULL);
	parses(v, n, "h:2", "/r", NULL);

	n = cellinfo(v, NULL, "/r");
	parses(v, n, NULL, NULL, "no server_address");
	n = cellinfo(v, "", "/r");
	parses(v, n, NULL, NULL, "no server_address");
	n = cellinfo(v, "h:1", NULL);
	parses(v, n, NULL, NULL, "no usable root");
	n = cellinfo(v, "h:1", "vitess/zone1");
	parses(v, n, NULL, NULL, "no usable root");
	n = cellinfo(v, "h:1", "/vitess/../x");
	parses(v, n, NULL, NULL, "no usable root");
	parses((const unsigned char *)"\x0a\x09h:1", 5, NULL, NULL,
	       "not a topodata.CellInfo"); /* truncated */
	parses((const unsigned char *)"\x08\x01", 2, NULL, NULL,
	       "not a topodata.CellInfo"); /* server_address as a varint */
	parses((const unsigned char *)"\x0a\x03h\0x\x12\x02/r", 9, NULL, NULL,
	       "not a topodata.CellInfo"); /* a NUL in a string */
	parses((const unsigned char *)"", 0, NULL, NULL, "no server_address");
}

static void test_wants(void)
{
	struct deploy all = {.filter = NULL};
	CHECK(deploy_wants(&all, "zone1"));
	CHECK(!deploy_wants(&all, "global")); /* Vitess reserves it */
	struct deploy some = {.filter = "zone1,zone22"};
	CHECK(deploy_wants(&some, "zone1"));
	CHECK(deploy_wants(&some, "zone22"));
	CHECK(!deploy_wants(&some, "zone2"));
	CHECK(!deploy_wants(&some, "zone"));
	CHECK(!deploy_wants(&some, "zone11"));
	struct deploy glob = {.filter = "global,zone1"};
	CHECK(!deploy_wants(&glob, "global"));
}

int main(void)
{
	test_cellinfo();
	test_wants();
	return check_report();
}
