/*
 * test_view_json.c - the JSON view: record types by path, golden files made
 * by independent encoders (tests/unit/golden/make-golden.sh: protoc and
 * python3-protobuf), unknown-field preservation, refusals, number text.
 *
 *   test_view_json [golden-dir]   (default: golden/ beside this source)
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../fs/proto.h"
#include "../../fs/view_json.h"
#include "check.h"

static char golden_dir[4096];

/* Read a whole file into a new buffer (*len bytes, NUL after). */
static unsigned char *slurp(const char *name, size_t *len)
{
	char path[4200];
	unsigned char *p;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/%s", golden_dir, name);
	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "cannot open %s\n", path);
		return NULL;
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc((size_t)n + 1);
	if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	fclose(f);
	if (p) {
		p[n] = 0;
		*len = (size_t)n;
	}
	return p;
}

/* One record type: golden name, a store path that holds it, its table. */
static const struct {
	const char *golden;
	const char *path;
	const struct proto_message *m;
} records[] = {
    {"CellInfo", "cells/zone1/CellInfo", &proto_topodata_CellInfo},
    {"CellsAlias", "cells_aliases/all/CellsAlias", &proto_topodata_CellsAlias},
    {"Keyspace", "keyspaces/commerce/Keyspace", &proto_topodata_Keyspace},
    {"VSchema", "keyspaces/commerce/VSchema", &proto_vschema_Keyspace},
    {"Shard", "keyspaces/commerce/shards/-80/Shard", &proto_topodata_Shard},
    {"RoutingRules", "RoutingRules", &proto_vschema_RoutingRules},
    {"ShardRoutingRules", "ShardRoutingRules",
     &proto_vschema_ShardRoutingRules},
    {"KeyspaceRoutingRules", "routing_rules/keyspace/Rules",
     &proto_vschema_KeyspaceRoutingRules},
    {"MirrorRules", "MirrorRules", &proto_vschema_MirrorRules},
    {"ExternalVitessCluster", "ExternalClusters/vitess/other",
     &proto_topodata_ExternalVitessCluster},
    {"Tablet", "tablets/zone1-0000000100/Tablet", &proto_topodata_Tablet},
    {"SrvKeyspace", "keyspaces/commerce/SrvKeyspace",
     &proto_topodata_SrvKeyspace},
    {"ShardReplication", "keyspaces/commerce/shards/-80/ShardReplication",
     &proto_topodata_ShardReplication},
    {"SrvVSchema", "SrvVSchema", &proto_vschema_SrvVSchema},
};

#define NREC (sizeof(records) / sizeof(records[0]))

/* Record detection: every path of the table, with roots, and non-records. */
static void test_record_type(void)
{
	static const char *none[] = {
	    "",
	    "keyspaces",
	    "keyspaces/commerce",
	    "metadata/Keyspace",
	    "metadata/x",
	    "keyspaces/ks/locks/Keyspace",
	    "keyspaces/ks/locks/7587003913372591105",
	    "elections/x/locks/1234",
	    "Rules",
	    "routing_rules/Rules",
	    "routing_rules/keyspace",
	    "ExternalClusters/vitess",
	    "ExternalClusters/other/x",
	    "cells/zone1/CellInfo.bak",
	    "Tablet/x",
	    "xRoutingRules",
	};
	char path[256];

	for (size_t i = 0; i < NREC; i++) {
		CHECK(proto_record_type(records[i].path) == records[i].m);
		snprintf(path, sizeof(path), "vitess/global/%s",
			 records[i].path);
		CHECK(proto_record_type(path) == records[i].m);
	}
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		if (proto_record_type(none[i]) != NULL)
			CHECK(!"not a record" && none[i]);
	CHECK(proto_record_type("zone1/tablets/zone1-0000000101/Tablet") ==
	      &proto_topodata_Tablet);
	CHECK(proto_record_type("x/Keyspace") == &proto_topodata_Keyspace);
}

/* Fields sorted by number; map entries {1 string key, 2 value}. */
static void check_table(const struct proto_message *m, int depth)
{
	CHECK(depth < 10);
	if (depth >= 10)
		return;
	for (size_t i = 0; i < m->nfields; i++) {
		const struct proto_field *f = &m->fields[i];

		if (i)
			CHECK(f->number > m->fields[i - 1].number);
		CHECK((f->type == PROTO_ENUM) == (f->enum_type != NULL));
		CHECK((f->type == PROTO_MESSAGE) == (f->message != NULL));
		if (f->flags & PROTO_MAP) {
			CHECK(f->flags & PROTO_REPEATED);
			CHECK(f->message->nfields == 2);
			CHECK(f->message->fields[0].number == 1);
			CHECK(f->message->fields[0].type == PROTO_STRING);
			CHECK(f->message->fields[1].number == 2);
		}
		if (f->message)
			check_table(f->message, depth + 1);
	}
}

static void test_tables(void)
{
	for (size_t i = 0; i < NREC; i++)
		check_table(records[i].m, 0);
}

/* Golden: decode(bin) == json and encode(json) == bin, byte for byte. */
static void test_golden(void)
{
	for (size_t i = 0; i < NREC; i++) {
		char name[64], err[256] = "", *json = NULL;
		unsigned char *bin, *wire = NULL, *want;
		size_t binlen = 0, wantlen = 0, jl = 0, wl = 0;

		snprintf(name, sizeof(name), "%s.bin", records[i].golden);
		bin = slurp(name, &binlen);
		snprintf(name, sizeof(name), "%s.json", records[i].golden);
		want = slurp(name, &wantlen);
		CHECK(bin && want);
		if (!bin || !want)
			continue;
		CHECK_INT(view_json_decode(records[i].m, bin, binlen, &json,
					   &jl, err, sizeof(err)),
			  0);
		CHECK_STR(err, "");
		if (json && strcmp(json, (char *)want) != 0)
			fprintf(stderr, "%s: got\n%s", records[i].golden, json);
		CHECK_STR(json, (char *)want);
		CHECK_INT(jl, wantlen);
		CHECK_INT(view_json_encode(records[i].m, (char *)want, wantlen,
					   &wire, &wl, err, sizeof(err)),
			  0);
		CHECK_STR(err, "");
		CHECK_MEM(wire, wl, bin, binlen);
		free(json);
		free(wire);
		free(bin);
		free(want);
	}
}

/* Decode w[0..n) as m; returns the JSON (caller frees) or NULL. */
static char *dec(const struct proto_message *m, const void *w, size_t n)
{
	char err[256] = "", *json = NULL;
	size_t jl;

	if (view_json_decode(m, w, n, &json, &jl, err, sizeof(err)) != 0) {
		fprintf(stderr, "decode failed: %s\n", err);
		return NULL;
	}
	CHECK_INT(strlen(json), jl);
	return json;
}

/* Encode JSON text as m: 0 with the bytes in *w, *n; or the error. */
static int enc(const struct proto_message *m, const char *json,
	       unsigned char **w, size_t *n, char *err, size_t errlen)
{
	*w = NULL;
	*n = 0;
	return view_json_encode(m, json, strlen(json), w, n, err, errlen);
}

/* Replace the first `from` in s by `to` (same length). */
static void replace(char *s, const char *from, const char *to)
{
	char *p = s ? strstr(s, from) : NULL;

	CHECK(p != NULL);
	if (p)
		memcpy(p, to, strlen(to));
}

/* True if needle[0..nn) occurs in hay[0..hn). */
static int contains(const unsigned char *hay, size_t hn, const void *needle,
		    size_t nn)
{
	for (size_t i = 0; hay && i + nn <= hn; i++)
		if (memcmp(hay + i, needle, nn) == 0)
			return 1;
	return 0;
}

/* Field 99 (varint 42), field 98 (bytes "abc") and a group 50 {1: 5}. */
static const unsigned char unknown99[] = {0x98, 0x06, 0x2a, 0x92, 0x06,
					  0x03, 'a',  'b',  'c',  0x93,
					  0x03, 0x08, 0x05, 0x94, 0x03};

/* An unknown field added to a Tablet survives a JSON edit. */
static void test_unknown_tablet(void)
{
	unsigned char *bin, *x, *w = NULL;
	size_t binlen = 0, wl = 0;
	char err[256] = "", *json, *again;

	bin = slurp("Tablet.bin", &binlen);
	if (!bin)
		return;
	x = malloc(binlen + sizeof(unknown99));
	memcpy(x, bin, binlen);
	memcpy(x + binlen, unknown99, sizeof(unknown99));

	json = dec(&proto_topodata_Tablet, x, binlen + sizeof(unknown99));
	CHECK(json && strstr(json, ",\n  \"__unknown_fields\": "
				   "\"mAYqkgYDYWJjkwMIBZQD\"\n}\n"));
	/* unchanged: the same bytes back */
	CHECK_INT(enc(&proto_topodata_Tablet, json, &w, &wl, err, sizeof(err)),
		  0);
	CHECK_MEM(w, wl, x, binlen + sizeof(unknown99));
	free(w);

	/* edit a known field: applied, the unknown bytes kept, last */
	replace(json, "\"mysql_port\": -3306", "\"mysql_port\": 13306");
	replace(json, "tablet-100.example.com", "tablet-200.example.com");
	CHECK_INT(enc(&proto_topodata_Tablet, json, &w, &wl, err, sizeof(err)),
		  0);
	CHECK(wl > sizeof(unknown99) &&
	      memcmp(w + wl - sizeof(unknown99), unknown99,
		     sizeof(unknown99)) == 0);
	CHECK(contains(w, wl, "tablet-200.example.com", 22));
	CHECK(!contains(w, wl, "tablet-100.example.com", 22));
	CHECK(contains(w, wl, "\x68\xfa\x67", 3)); /* mysql_port 13306 */
	again = dec(&proto_topodata_Tablet, w, wl);
	CHECK_STR(again, json);
	free(again);
	free(w);
	free(json);
	free(x);
	free(bin);
}

/* Nested unknown fields, odd wire types and map entries are carried. */
static void test_unknown_nested(void)
{
	/* Shard{primary_alias{cell "z", uid 1, 7: "x"}, 99: 42} */
	static const unsigned char shard[] = {0x0a, 0x08, 0x0a, 0x01, 'z',
					      0x10, 0x01, 0x3a, 0x01, 'x',
					      0x98, 0x06, 0x2a};
	/* Tablet{hostname as a varint 7; port_map{key "a", value 1, 3: 2};
	 * port_map{key "b", value 2}} */
	static const unsigned char tablet[] = {
	    0x10, 0x07, 0x22, 0x07, 0x0a, 0x01, 'a', 0x10, 0x01,
	    0x18, 0x02, 0x22, 0x05, 0x0a, 0x01, 'b', 0x10, 0x02};
	static const char shard_json[] = "{\n"
					 "  \"primary_alias\": {\n"
					 "    \"cell\": \"z\",\n"
					 "    \"uid\": 1,\n"
					 "    \"__unknown_fields\": \"OgF4\"\n"
					 "  },\n"
					 "  \"__unknown_fields\": \"mAYq\"\n"
					 "}\n";
	static const char tablet_json[] =
	    "{\n"
	    "  \"port_map\": {\n"
	    "    \"b\": 2\n"
	    "  },\n"
	    "  \"__unknown_fields\": \"EAciBwoBYRABGAI=\"\n"
	    "}\n";
	unsigned char *w = NULL;
	size_t wl = 0;
	char err[256], *json;

	json = dec(&proto_topodata_Shard, shard, sizeof(shard));
	CHECK_STR(json, shard_json);
	free(json);
	CHECK_INT(
	    enc(&proto_topodata_Shard, shard_json, &w, &wl, err, sizeof(err)),
	    0);
	CHECK_MEM(w, wl, shard, sizeof(shard));
	free(w);

	json = dec(&proto_topodata_Tablet, tablet, sizeof(tablet));
	CHECK_STR(json, tablet_json);
	CHECK_INT(enc(&proto_topodata_Tablet, json, &w, &wl, err, sizeof(err)),
		  0);
	/* canonical order: known fields first, then the unknown bytes */
	static const unsigned char want[] = {
	    0x22, 0x05, 0x0a, 0x01, 'b', 0x10, 0x02, 0x10, 0x07,
	    0x22, 0x07, 0x0a, 0x01, 'a', 0x10, 0x01, 0x18, 0x02};
	CHECK_MEM(w, wl, want, sizeof(want));
	free(json);
	json = w ? dec(&proto_topodata_Tablet, w, wl) : NULL;
	CHECK_STR(json, tablet_json);
	free(json);
	free(w);
}

/* A map key JSON cannot hold (a NUL byte) is carried as unknown bytes. */
static void test_unknown_nul_key(void)
{
	static const unsigned char in[] = {0x22, 0x06, 0x0a, 0x02,
					   'a',	 0x00, 0x10, 0x01};
	static const char want[] = "{\n"
				   "  \"__unknown_fields\": \"IgYKAmEAEAE=\"\n"
				   "}\n";
	unsigned char *w = NULL;
	size_t wl = 0;
	char err[256], *json;

	json = dec(&proto_topodata_Tablet, in, sizeof(in));
	CHECK_STR(json, want);
	CHECK_INT(enc(&proto_topodata_Tablet, want, &w, &wl, err, sizeof(err)),
		  0);
	CHECK_MEM(w, wl, in, sizeof(in));
	free(w);
	free(json);
}

/* Non-canonical wire: out of order, repeated scalars (last wins), a
 * message given twice (merged), duplicate map keys (last wins). */
static void test_noncanonical(void)
{
	static const unsigned char in[] = {
	    0x40, 0x02,				      /* type REPLICA */
	    0x0a, 0x03, 0x0a, 0x01, 'a',	      /* alias{cell a} */
	    0x40, 0x03,				      /* type RDONLY */
	    0x0a, 0x02, 0x10, 0x05,		      /* alias{uid 5} */
	    0x22, 0x05, 0x0a, 0x01, 'k', 0x10, 0x01,  /* port_map k=1 */
	    0x22, 0x05, 0x0a, 0x01, 'k', 0x10, 0x02}; /* port_map k=2 */
	static const char want[] = "{\n"
				   "  \"alias\": {\n"
				   "    \"cell\": \"a\",\n"
				   "    \"uid\": 5\n"
				   "  },\n"
				   "  \"port_map\": {\n"
				   "    \"k\": 2\n"
				   "  },\n"
				   "  \"type\": \"RDONLY\"\n"
				   "}\n";
	static const unsigned char canon[] = {
	    0x0a, 0x05, 0x0a, 0x01, 'a',  0x10, 0x05, 0x22,
	    0x05, 0x0a, 0x01, 'k',  0x10, 0x02, 0x40, 0x03};
	unsigned char *w = NULL;
	size_t wl = 0;
	char err[256], *json;

	json = dec(&proto_topodata_Tablet, in, sizeof(in));
	CHECK_STR(json, want);
	CHECK_INT(enc(&proto_topodata_Tablet, want, &w, &wl, err, sizeof(err)),
		  0);
	CHECK_MEM(w, wl, canon, sizeof(canon));
	free(w);
	free(json);
}

/* What a person writes by hand is accepted. */
static void test_lenient(void)
{
	static const char in[] =
	    "{\"primaryAlias\": {\"cell\": \"z\", \"uid\": 7.0},"
	    " \"key_range\": {\"start\": \"gA\", \"end\": \"_-8\"},"
	    " \"tablet_controls\": [{\"tablet_type\": 2}, "
	    "{\"tablet_type\": \"SPARE\", \"cells\": null}],"
	    " \"is_primary_serving\": null,"
	    " \"primary_term_start_time\": {\"seconds\": 12,"
	    " \"nanoseconds\": 0},"
	    " \"vtorc_state\": {\"__unknown_fields\": null}}";
	static const char want[] = "{\n"
				   "  \"primary_alias\": {\n"
				   "    \"cell\": \"z\",\n"
				   "    \"uid\": 7\n"
				   "  },\n"
				   "  \"key_range\": {\n"
				   "    \"start\": \"gA==\",\n"
				   "    \"end\": \"/+8=\"\n"
				   "  },\n"
				   "  \"tablet_controls\": [\n"
				   "    {\n"
				   "      \"tablet_type\": \"REPLICA\"\n"
				   "    },\n"
				   "    {\n"
				   "      \"tablet_type\": \"SPARE\"\n"
				   "    }\n"
				   "  ],\n"
				   "  \"primary_term_start_time\": {\n"
				   "    \"seconds\": \"12\"\n"
				   "  },\n"
				   "  \"vtorc_state\": {}\n"
				   "}\n";
	unsigned char *w = NULL;
	size_t wl = 1;
	char err[256] = "", *json;

	CHECK_INT(enc(&proto_topodata_Shard, in, &w, &wl, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	json = w ? dec(&proto_topodata_Shard, w, wl) : NULL;
	CHECK_STR(json, want);
	free(json);
	free(w);

	/* empty record: "{}" both ways, a non-NULL empty buffer */
	CHECK_INT(enc(&proto_topodata_Shard, " {} ", &w, &wl, err, sizeof(err)),
		  0);
	CHECK(w != NULL);
	CHECK_INT(wl, 0);
	free(w);
	json = dec(&proto_topodata_Shard, NULL, 0);
	CHECK_STR(json, "{}\n");
	free(json);
}

/* Each refusal, with its exact message. */
static void test_refusals(void)
{
	static const struct {
		const struct proto_message *m;
		const char *json;
		const char *err;
	} bad[] = {
	    {&proto_topodata_Shard, "{\"primary_alias\": {\"uid\": \"5\"}}",
	     "Shard.primary_alias.uid: expected a number, got string"},
	    {&proto_topodata_Keyspace, "{\"durabilty_policy\": \"x\"}",
	     "Keyspace: unknown field 'durabilty_policy'"},
	    {&proto_topodata_Keyspace, "{\n  \"a\": 1,\n  x\n}\n",
	     "invalid JSON at line 3: string or '}' expected near 'x'"},
	    {&proto_topodata_Keyspace,
	     "{\"base_keyspace\": \"a\",\n"
	     "\"base_keyspace\": \"b\"}",
	     "invalid JSON at line 2: duplicate object key near "
	     "'\"base_keyspace\"'"},
	    {&proto_topodata_Keyspace, "",
	     "invalid JSON at line 1: "
	     "'[' or '{' expected near end of "
	     "file"},
	    {&proto_topodata_Tablet, "[]",
	     "Tablet: expected an object, got array"},
	    {&proto_topodata_Tablet, "{\"mysql_port\": 2147483648}",
	     "Tablet.mysql_port: value 2147483648 out of range for int32"},
	    {&proto_topodata_Tablet, "{\"mysql_port\": -2147483649}",
	     "Tablet.mysql_port: value -2147483649 out of range for int32"},
	    {&proto_topodata_Tablet, "{\"mysql_port\": 1.5}",
	     "Tablet.mysql_port: value 1.5 is not an integer"},
	    {&proto_topodata_Tablet, "{\"alias\": {\"uid\": -1}}",
	     "Tablet.alias.uid: value -1 out of range for uint32"},
	    {&proto_topodata_Tablet, "{\"alias\": {\"uid\": 4294967296}}",
	     "Tablet.alias.uid: value 4294967296 out of range for uint32"},
	    {&proto_topodata_Tablet,
	     "{\"tablet_start_time\": {\"seconds\": \"9223372036854775808\"}}",
	     "Tablet.tablet_start_time.seconds: value 9223372036854775808 "
	     "out of range for int64"},
	    {&proto_topodata_Tablet,
	     "{\"tablet_start_time\": {\"seconds\": \"12x\"}}",
	     "Tablet.tablet_start_time.seconds: invalid integer '12x'"},
	    {&proto_topodata_Tablet,
	     "{\"tablet_start_time\": {\"seconds\": true}}",
	     "Tablet.tablet_start_time.seconds: expected a number or a "
	     "string of digits, got boolean"},
	    {&proto_topodata_Tablet, "{\"type\": \"PRIMRY\"}",
	     "Tablet.type: unknown enum value 'PRIMRY' for "
	     "topodata.TabletType"},
	    {&proto_topodata_Tablet, "{\"type\": 2147483648}",
	     "Tablet.type: value 2147483648 out of range for enum"},
	    {&proto_topodata_Tablet, "{\"type\": {}}",
	     "Tablet.type: expected an enum name or number, got object"},
	    {&proto_topodata_Tablet, "{\"alias\": 5}",
	     "Tablet.alias: expected an object, got number"},
	    {&proto_topodata_Tablet, "{\"hostname\": 5}",
	     "Tablet.hostname: expected a string, got number"},
	    {&proto_topodata_Tablet, "{\"port_map\": {\"vt\": \"x\"}}",
	     "Tablet.port_map[\"vt\"]: expected a number, got string"},
	    {&proto_topodata_Tablet, "{\"port_map\": {\"vt\": null}}",
	     "Tablet.port_map[\"vt\"]: expected a value, got null"},
	    {&proto_topodata_Tablet, "{\"port_map\": []}",
	     "Tablet.port_map: expected an object, got array"},
	    {&proto_topodata_Tablet, "{\"key_range\": {\"start\": \"gA=!\"}}",
	     "Tablet.key_range.start: invalid base64"},
	    {&proto_topodata_Tablet, "{\"key_range\": {\"end\": \"g\"}}",
	     "Tablet.key_range.end: invalid base64"},
	    {&proto_topodata_Tablet, "{\"key_range\": {\"end\": 1}}",
	     "Tablet.key_range.end: expected a base64 string, got number"},
	    {&proto_topodata_Tablet, "{\"__unknown_fields\": \"AA==\"}",
	     "Tablet.__unknown_fields: not a sequence of protobuf fields"},
	    {&proto_topodata_Tablet, "{\"__unknown_fields\": \"mA==\"}",
	     "Tablet.__unknown_fields: not a sequence of protobuf fields"},
	    {&proto_topodata_Tablet, "{\"__unknown_fields\": \"%%%%\"}",
	     "Tablet.__unknown_fields: invalid base64"},
	    {&proto_topodata_Shard, "{\"is_primary_serving\": 1}",
	     "Shard.is_primary_serving: expected true or false, got number"},
	    {&proto_topodata_Shard, "{\"source_shards\": [{}, {\"uidd\": 1}]}",
	     "Shard.source_shards[1]: unknown field 'uidd'"},
	    {&proto_topodata_Shard,
	     "{\"primary_alias\": {},"
	     " \"primaryAlias\": {}}",
	     "Shard: field 'primary_alias' given twice (as 'primaryAlias')"},
	    {&proto_topodata_CellsAlias, "{\"cells\": \"a\"}",
	     "CellsAlias.cells: expected an array, got string"},
	    {&proto_topodata_CellsAlias, "{\"cells\": [\"a\", null]}",
	     "CellsAlias.cells[1]: expected a value, got null"},
	    {&proto_topodata_CellsAlias, "{\"cells\": [\"a\", 2]}",
	     "CellsAlias.cells[1]: expected a string, got number"},
	    {&proto_vschema_MirrorRules, "{\"rules\": [{\"percent\": 1e39}]}",
	     "MirrorRules.rules[0].percent: value 1e+39 out of range for "
	     "float"},
	    {&proto_vschema_MirrorRules, "{\"rules\": [{\"percent\": \"x\"}]}",
	     "MirrorRules.rules[0].percent: invalid number 'x'"},
	    {&proto_vschema_MirrorRules,
	     "{\"rules\": [{\"percent\": \"inf\"}]}",
	     "MirrorRules.rules[0].percent: invalid number 'inf'"},
	    {&proto_vschema_SrvVSchema,
	     "{\"keyspaces\": {\"ks\": {\"tables\": {\"t\": {\"columns\": "
	     "[{\"type\": \"INT\"}]}}}}}",
	     "SrvVSchema.keyspaces[\"ks\"].tables[\"t\"].columns[0].type: "
	     "unknown enum value 'INT' for query.Type"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned char *w = (unsigned char *)"untouched";
		size_t wl = 99;
		char err[256] = "";

		CHECK_INT(view_json_encode(bad[i].m, bad[i].json,
					   strlen(bad[i].json), &w, &wl, err,
					   sizeof(err)),
			  -EINVAL);
		CHECK_STR(err, bad[i].err);
		CHECK(w && strcmp((char *)w, "untouched") == 0 && wl == 99);
	}
}

/* Wire that cannot be shown is refused with its reason. */
static void test_decode_refusals(void)
{
	static const struct {
		const void *w;
		size_t n;
		const char *err;
	} bad[] = {
	    {"\x0a\x05"
	     "ab",
	     4, "Tablet: malformed protobuf data"},
	    {"\x0a\x02\x10\x80", 4, "Tablet.alias: malformed protobuf data"},
	    {"\x00\x01", 2, "Tablet: malformed protobuf data"},
	    {"\x0c", 1, "Tablet: malformed protobuf data"},
	    {"\x12\x01\xff", 3, "Tablet.hostname: invalid UTF-8 in string"},
	    {"\x12\x03\xed\xa0\x80", 5,
	     "Tablet.hostname: invalid UTF-8 in string"},
	    {"\x22\x05\x0a\x01\xff\x10\x01", 7,
	     "Tablet.port_map[\"\xff\"]: invalid UTF-8 in map key"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *json = (char *)"untouched", err[256] = "";
		size_t jl = 99;

		CHECK_INT(view_json_decode(&proto_topodata_Tablet, bad[i].w,
					   bad[i].n, &json, &jl, err,
					   sizeof(err)),
			  -EINVAL);
		CHECK_STR(err, bad[i].err);
		CHECK(strcmp(json, "untouched") == 0 && jl == 99);
	}
}

/* Keyspace{throttler_config{threshold = d}} as wire bytes. */
static void keyspace_threshold(double d, unsigned char w[11])
{
	w[0] = 0x4a;
	w[1] = 9;
	w[2] = 0x11;
	memcpy(w + 3, &d, 8); /* little-endian hosts */
}

/* Doubles and floats: shortest round-trip text, ES6 style, both ways. */
static void test_numbers(void)
{
	static const struct {
		double d;
		const char *text;
	} dbl[] = {
	    {1e21, "1e+21"},
	    {1e20, "100000000000000000000"},
	    {1.2345678901234568e20, "123456789012345680000"},
	    {1e-7, "1e-7"},
	    {1.5e-10, "1.5e-10"},
	    {1e-6, "0.000001"},
	    {0.1, "0.1"},
	    {-0.0, "-0.0"},
	    {5e-324, "5e-324"},
	    {1.7976931348623157e308, "1.7976931348623157e+308"},
	    {-2.5, "-2.5"},
	    {123.456, "123.456"},
	    {1.0 / 0.0, "\"Infinity\""},
	    {-1.0 / 0.0, "\"-Infinity\""},
	};
	static const struct {
		float f;
		const char *text;
	} flt[] = {
	    {0.1f, "0.1"},
	    {3.4028235e38f, "3.4028235e+38"},
	    {16777216.0f, "16777216"},
	    {1e-7f, "1e-7"},
	    {33.333333f, "33.333332"},
	};
	unsigned char w[11], *out = NULL;
	char want[128], err[256], *json;
	size_t wl = 0;

	for (size_t i = 0; i < sizeof(dbl) / sizeof(dbl[0]); i++) {
		keyspace_threshold(dbl[i].d, w);
		json = dec(&proto_topodata_Keyspace, w, sizeof(w));
		snprintf(want, sizeof(want),
			 "{\n  \"throttler_config\": {\n    \"threshold\": "
			 "%s\n  }\n}\n",
			 dbl[i].text);
		CHECK_STR(json, want);
		CHECK_INT(enc(&proto_topodata_Keyspace, want, &out, &wl, err,
			      sizeof(err)),
			  0);
		CHECK_MEM(out, wl, w, sizeof(w));
		free(out);
		free(json);
	}
	for (size_t i = 0; i < sizeof(flt) / sizeof(flt[0]); i++) {
		unsigned char m[9] = {0x0a, 7, 0x1d};

		memcpy(m + 3, &flt[i].f, 4);
		m[1] = 5;
		json = dec(&proto_vschema_MirrorRules, m, 7);
		snprintf(want, sizeof(want),
			 "{\n  \"rules\": [\n    {\n      \"percent\": %s\n"
			 "    }\n  ]\n}\n",
			 flt[i].text);
		CHECK_STR(json, want);
		CHECK_INT(enc(&proto_vschema_MirrorRules, want, &out, &wl, err,
			      sizeof(err)),
			  0);
		CHECK_MEM(out, wl, m, 7);
		free(out);
		free(json);
	}
	/* NaN */
	keyspace_threshold(0.0 / 0.0, w);
	json = dec(&proto_topodata_Keyspace, w, sizeof(w));
	CHECK(json && strstr(json, "\"threshold\": \"NaN\""));
	free(json);
	CHECK_INT(enc(&proto_topodata_Keyspace,
		      "{\"throttler_config\": {\"threshold\": \"-12.5e-1\"}}",
		      &out, &wl, err, sizeof(err)),
		  0);
	keyspace_threshold(-1.25, w);
	CHECK_MEM(out, wl, w, sizeof(w));
	free(out);
}

/* A table of our own for what no Vitess record has: packed repeated
 * numbers, uint64, optional int32. */
static const struct proto_enum_value ev[] = {{0, "ZERO"}, {1, "ONE"}};
static const struct proto_enum te = {"test.E", ev, 2};
static const struct proto_field tf[] = {
    {1, "ints", PROTO_INT32, PROTO_REPEATED, NULL, NULL},
    {2, "dbls", PROTO_DOUBLE, PROTO_REPEATED, NULL, NULL},
    {3, "big", PROTO_UINT64, 0, NULL, NULL},
    {4, "opt", PROTO_INT32, PROTO_OPTIONAL, NULL, NULL},
    {5, "es", PROTO_ENUM, PROTO_REPEATED, &te, NULL},
};
static const struct proto_message tm = {"test.M", tf, 5};

static void test_packed(void)
{
	/* ints unpacked 1, packed [-1, 2]; dbls packed [0.5]; big 2^64-1;
	 * opt 0 (present); es unpacked ONE, 7 */
	static const unsigned char in[] = {
	    0x08, 0x01, 0x0a, 0x0b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0x01, 0x02, 0x12, 0x08, 0,    0,    0,	  0,	0,
	    0,	  0xe0, 0x3f, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0x01, 0x20, 0x00, 0x28, 0x01, 0x28, 0x07};
	static const char want[] =
	    "{\n"
	    "  \"ints\": [\n    1,\n    -1,\n    2\n  ],\n"
	    "  \"dbls\": [\n    0.5\n  ],\n"
	    "  \"big\": \"18446744073709551615\",\n"
	    "  \"opt\": 0,\n"
	    "  \"es\": [\n    \"ONE\",\n    7\n  ]\n"
	    "}\n";
	static const unsigned char canon[] = {
	    0x0a, 0x0c, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0x01, 0x02, 0x12, 0x08, 0,	0,    0,    0,	  0,	0,
	    0xe0, 0x3f, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0x01, 0x20, 0x00, 0x2a, 0x02, 0x01, 0x07};
	unsigned char *w = NULL;
	size_t wl = 0;
	char err[256] = "", *json;

	json = dec(&tm, in, sizeof(in));
	CHECK_STR(json, want);
	CHECK_INT(enc(&tm, want, &w, &wl, err, sizeof(err)), 0);
	CHECK_MEM(w, wl, canon, sizeof(canon));
	free(w);
	free(json);
	json = dec(&tm, canon, sizeof(canon));
	CHECK_STR(json, want);
	free(json);
	CHECK_INT(enc(&tm, "{\"big\": \"18446744073709551616\"}", &w, &wl, err,
		      sizeof(err)),
		  -EINVAL);
	CHECK_STR(err, "M.big: value 18446744073709551616 out of range for "
		       "uint64");
	CHECK_INT(enc(&tm, "{\"big\": 1e19}", &w, &wl, err, sizeof(err)), 0);
	CHECK_MEM(w, wl, "\x18\x80\x80\xa0\xcf\xc8\xe0\xc8\xe3\x8a\x01", 11);
	free(w);
	CHECK_INT(enc(&tm, "{\"big\": -1}", &w, &wl, err, sizeof(err)),
		  -EINVAL);
	CHECK_STR(err, "M.big: value -1 out of range for uint64");
	CHECK_INT(enc(&tm, "{\"ints\": [1, \"2\"]}", &w, &wl, err, sizeof(err)),
		  -EINVAL);
	CHECK_STR(err, "M.ints[1]: expected a number, got string");
	CHECK_INT(enc(&tm, "{\"opt\": null, \"ints\": []}", &w, &wl, err,
		      sizeof(err)),
		  0);
	CHECK_INT(wl, 0);
	free(w);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		snprintf(golden_dir, sizeof(golden_dir), "%s", argv[1]);
	} else {
		const char *slash = strrchr(__FILE__, '/');
		int n = slash ? (int)(slash - __FILE__) : 1;

		snprintf(golden_dir, sizeof(golden_dir), "%.*s/golden", n,
			 slash ? __FILE__ : ".");
	}
	test_record_type();
	test_tables();
	test_golden();
	test_unknown_tablet();
	test_unknown_nested();
	test_unknown_nul_key();
	test_noncanonical();
	test_lenient();
	test_refusals();
	test_decode_refusals();
	test_numbers();
	test_packed();
	return check_report();
}
