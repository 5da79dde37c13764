/*
 * proto.h - descriptions of the Vitess topology records (protocol buffer
 * messages), as constant tables written from the wire facts in
 * vitess-topo-facts.md, and which record type a store path holds.
 *
 * The tables drive the one generic JSON converter in view_json.h. A map
 * field is described the way protobuf itself does: a repeated message field
 * flagged PROTO_MAP whose entry message has key = 1 and value = 2.
 */
#ifndef TOPOFS_PROTO_H
#define TOPOFS_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* The scalar and composite field types of proto3 that Vitess uses. */
enum proto_type {
	PROTO_INT32,
	PROTO_INT64,
	PROTO_UINT32,
	PROTO_UINT64,
	PROTO_BOOL,
	PROTO_DOUBLE,
	PROTO_FLOAT,
	PROTO_STRING,
	PROTO_BYTES,
	PROTO_ENUM,
	PROTO_MESSAGE,
};

/* Field flags. */
#define PROTO_REPEATED 0x1u /* repeated field (also set for maps) */
#define PROTO_MAP 0x2u	    /* map<k,v>: repeated entry message {1 k, 2 v} */
#define PROTO_OPTIONAL 0x4u /* proto3 `optional`: presence is tracked */

struct proto_enum_value {
	int32_t number;
	const char *name;
};

struct proto_enum {
	const char *name; /* full name, e.g. "topodata.TabletType" */
	const struct proto_enum_value *values;
	size_t nvalues;
};

struct proto_message;

struct proto_field {
	uint32_t number;
	const char *name; /* the proto field name, as JSON prints it */
	enum proto_type type;
	unsigned flags;			     /* PROTO_REPEATED, ... */
	const struct proto_enum *enum_type;  /* PROTO_ENUM */
	const struct proto_message *message; /* PROTO_MESSAGE (map: entry) */
};

struct proto_message {
	const char *name; /* full name, e.g. "topodata.Tablet" */
	const struct proto_field *fields; /* sorted by number */
	size_t nfields;
};

/* The records (see vitess-topo-facts.md). */
extern const struct proto_message proto_topodata_CellInfo;
extern const struct proto_message proto_topodata_CellsAlias;
extern const struct proto_message proto_topodata_Keyspace;
extern const struct proto_message proto_topodata_Shard;
extern const struct proto_message proto_topodata_Tablet;
extern const struct proto_message proto_topodata_SrvKeyspace;
extern const struct proto_message proto_topodata_ShardReplication;
extern const struct proto_message proto_topodata_ExternalVitessCluster;
extern const struct proto_message proto_vschema_Keyspace;
extern const struct proto_message proto_vschema_RoutingRules;
extern const struct proto_message proto_vschema_ShardRoutingRules;
extern const struct proto_message proto_vschema_KeyspaceRoutingRules;
extern const struct proto_message proto_vschema_MirrorRules;
extern const struct proto_message proto_vschema_SrvVSchema;

/* The record type stored at store path p (relative to a topology root, no
 * leading slash), chosen by base name as Vitess's TopoCat does: "Tablet",
 * "Shard", "VSchema", ..., "Rules" under routing_rules/keyspace/, and any
 * file directly under ExternalClusters/vitess/. NULL if p is not a record
 * (including anything under a locks/ or metadata/ directory). */
const struct proto_message *proto_record_type(const char *p);

/* The field of m with number n, or NULL. */
const struct proto_field *proto_field_by_number(const struct proto_message *m,
						uint32_t n);

/* The name of enum value n of e, or NULL if e has none. */
const char *proto_enum_name(const struct proto_enum *e, int32_t n);

/* Set *n to the number of enum value `name` of e: 0, or -ENOENT. */
int proto_enum_number(const struct proto_enum *e, const char *name, int32_t *n);

#endif
