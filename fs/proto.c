/*
 * proto.c - the Vitess record descriptions (see proto.h), written from the
 * wire facts in vitess-topo-facts.md: one table per message, fields sorted
 * by number, map fields as repeated entry messages {1 key, 2 value}.
 */
#include <errno.h>
#include <string.h>

#include "proto.h"

#define N_(a) (sizeof(a) / sizeof((a)[0]))

/* Field table rows: scalar, repeated scalar, enum, message, repeated
 * message, map (entry message), proto3 optional scalar. */
/* clang-format off */
#define F(n, name, t) {n, name, PROTO_##t, 0, NULL, NULL}
#define FR(n, name, t) {n, name, PROTO_##t, PROTO_REPEATED, NULL, NULL}
#define FE(n, name, e) {n, name, PROTO_ENUM, 0, &e, NULL}
#define FM(n, name, m) {n, name, PROTO_MESSAGE, 0, NULL, &m}
#define FRM(n, name, m) {n, name, PROTO_MESSAGE, PROTO_REPEATED, NULL, &m}
#define FMAP(n, name, e) \
	{n, name, PROTO_MESSAGE, PROTO_REPEATED | PROTO_MAP, NULL, &e}
#define FOPT(n, name, t) {n, name, PROTO_##t, PROTO_OPTIONAL, NULL, NULL}
/* clang-format on */

#define MESSAGE(var, full, fields)                                             \
	const struct proto_message var = {full, fields, N_(fields)}
#define ENUM(var, full, values)                                                \
	static const struct proto_enum var = {full, values, N_(values)}

/* Map entry messages: key = 1, value = 2. */
#define MAP_ENTRY(var, full, ...)                                              \
	static const struct proto_field var##_fields[] = {F(1, "key", STRING), \
							  __VA_ARGS__};        \
	static MESSAGE(var, full, var##_fields)

/* ---- topodata ---- */

static const struct proto_enum_value tablet_type_values[] = {
    {0, "UNKNOWN"}, {1, "PRIMARY"}, {2, "REPLICA"},
    {3, "RDONLY"},  {4, "SPARE"},   {5, "EXPERIMENTAL"},
    {6, "BACKUP"},  {7, "RESTORE"}, {8, "DRAINED"},
};
ENUM(tablet_type, "topodata.TabletType", tablet_type_values);

static const struct proto_enum_value keyspace_type_values[] = {
    {0, "NORMAL"},
    {1, "SNAPSHOT"},
};
ENUM(keyspace_type, "topodata.KeyspaceType", keyspace_type_values);

static const struct proto_field time_fields[] = {
    F(1, "seconds", INT64),
    F(2, "nanoseconds", INT32),
};
static MESSAGE(msg_time, "vttime.Time", time_fields);

static const struct proto_field key_range_fields[] = {
    F(1, "start", BYTES),
    F(2, "end", BYTES),
};
static MESSAGE(key_range, "topodata.KeyRange", key_range_fields);

static const struct proto_field tablet_alias_fields[] = {
    F(1, "cell", STRING),
    F(2, "uid", UINT32),
};
static MESSAGE(tablet_alias, "topodata.TabletAlias", tablet_alias_fields);

MAP_ENTRY(port_map_entry, "topodata.Tablet.PortMapEntry", F(2, "value", INT32));
MAP_ENTRY(tags_entry, "topodata.Tablet.TagsEntry", F(2, "value", STRING));

static const struct proto_field tablet_fields[] = {
    FM(1, "alias", tablet_alias),
    F(2, "hostname", STRING),
    FMAP(4, "port_map", port_map_entry),
    F(5, "keyspace", STRING),
    F(6, "shard", STRING),
    FM(7, "key_range", key_range),
    FE(8, "type", tablet_type),
    F(9, "db_name_override", STRING),
    FMAP(10, "tags", tags_entry),
    F(12, "mysql_hostname", STRING),
    F(13, "mysql_port", INT32),
    FM(14, "primary_term_start_time", msg_time),
    F(16, "default_conn_collation", UINT32),
    FM(17, "tablet_start_time", msg_time),
    FM(18, "tablet_shutdown_time", msg_time),
};
MESSAGE(proto_topodata_Tablet, "topodata.Tablet", tablet_fields);

static const struct proto_field vtorc_state_fields[] = {
    F(1, "disable_emergency_reparent", BOOL),
};
static MESSAGE(vtorc_state, "topodata.VtorcState", vtorc_state_fields);

static const struct proto_field source_shard_fields[] = {
    F(1, "uid", INT32),	     F(2, "keyspace", STRING),
    F(3, "shard", STRING),   FM(4, "key_range", key_range),
    FR(5, "tables", STRING),
};
static MESSAGE(source_shard, "topodata.Shard.SourceShard", source_shard_fields);

static const struct proto_field tablet_control_fields[] = {
    FE(1, "tablet_type", tablet_type),
    FR(2, "cells", STRING),
    FR(4, "denied_tables", STRING),
    F(5, "frozen", BOOL),
};
static MESSAGE(tablet_control, "topodata.Shard.TabletControl",
	       tablet_control_fields);

static const struct proto_field shard_fields[] = {
    FM(1, "primary_alias", tablet_alias),
    FM(2, "key_range", key_range),
    FRM(4, "source_shards", source_shard),
    FRM(6, "tablet_controls", tablet_control),
    F(7, "is_primary_serving", BOOL),
    FM(8, "primary_term_start_time", msg_time),
    FM(9, "vtorc_state", vtorc_state),
};
MESSAGE(proto_topodata_Shard, "topodata.Shard", shard_fields);

static const struct proto_field throttled_app_rule_fields[] = {
    F(1, "name", STRING),
    F(2, "ratio", DOUBLE),
    FM(3, "expires_at", msg_time),
    F(4, "exempt", BOOL),
};
static MESSAGE(throttled_app_rule, "topodata.ThrottledAppRule",
	       throttled_app_rule_fields);

static const struct proto_field metric_names_fields[] = {
    FR(1, "names", STRING),
};
static MESSAGE(metric_names, "topodata.ThrottlerConfig.MetricNames",
	       metric_names_fields);

MAP_ENTRY(throttled_apps_entry, "topodata.ThrottlerConfig.ThrottledAppsEntry",
	  FM(2, "value", throttled_app_rule));
MAP_ENTRY(app_checked_metrics_entry,
	  "topodata.ThrottlerConfig.AppCheckedMetricsEntry",
	  FM(2, "value", metric_names));
MAP_ENTRY(metric_thresholds_entry,
	  "topodata.ThrottlerConfig.MetricThresholdsEntry",
	  F(2, "value", DOUBLE));

static const struct proto_field throttler_config_fields[] = {
    F(1, "enabled", BOOL),
    F(2, "threshold", DOUBLE),
    F(3, "custom_query", STRING),
    F(4, "check_as_check_self", BOOL),
    FMAP(5, "throttled_apps", throttled_apps_entry),
    FMAP(6, "app_checked_metrics", app_checked_metrics_entry),
    FMAP(7, "metric_thresholds", metric_thresholds_entry),
};
static MESSAGE(throttler_config, "topodata.ThrottlerConfig",
	       throttler_config_fields);

static const struct proto_field keyspace_fields[] = {
    FE(5, "keyspace_type", keyspace_type),
    F(6, "base_keyspace", STRING),
    FM(7, "snapshot_time", msg_time),
    F(8, "durability_policy", STRING),
    FM(9, "throttler_config", throttler_config),
    F(10, "sidecar_db_name", STRING),
    FM(11, "vtorc_state", vtorc_state),
};
MESSAGE(proto_topodata_Keyspace, "topodata.Keyspace", keyspace_fields);

static const struct proto_field node_fields[] = {
    FM(1, "tablet_alias", tablet_alias),
};
static MESSAGE(node, "topodata.ShardReplication.Node", node_fields);

static const struct proto_field shard_replication_fields[] = {
    FRM(1, "nodes", node),
};
MESSAGE(proto_topodata_ShardReplication, "topodata.ShardReplication",
	shard_replication_fields);

static const struct proto_field shard_reference_fields[] = {
    F(1, "name", STRING),
    FM(2, "key_range", key_range),
};
static MESSAGE(shard_reference, "topodata.ShardReference",
	       shard_reference_fields);

static const struct proto_field shard_tablet_control_fields[] = {
    F(1, "name", STRING),
    FM(2, "key_range", key_range),
    F(3, "query_service_disabled", BOOL),
};
static MESSAGE(shard_tablet_control, "topodata.ShardTabletControl",
	       shard_tablet_control_fields);

static const struct proto_field keyspace_partition_fields[] = {
    FE(1, "served_type", tablet_type),
    FRM(2, "shard_references", shard_reference),
    FRM(3, "shard_tablet_controls", shard_tablet_control),
};
static MESSAGE(keyspace_partition, "topodata.SrvKeyspace.KeyspacePartition",
	       keyspace_partition_fields);

static const struct proto_field srv_keyspace_fields[] = {
    FRM(1, "partitions", keyspace_partition),
    FM(6, "throttler_config", throttler_config),
};
MESSAGE(proto_topodata_SrvKeyspace, "topodata.SrvKeyspace",
	srv_keyspace_fields);

static const struct proto_field cell_info_fields[] = {
    F(1, "server_address", STRING),
    F(2, "root", STRING),
};
MESSAGE(proto_topodata_CellInfo, "topodata.CellInfo", cell_info_fields);

static const struct proto_field cells_alias_fields[] = {
    FR(2, "cells", STRING),
};
MESSAGE(proto_topodata_CellsAlias, "topodata.CellsAlias", cells_alias_fields);

static const struct proto_field topo_config_fields[] = {
    F(1, "topo_type", STRING),
    F(2, "server", STRING),
    F(3, "root", STRING),
};
static MESSAGE(topo_config, "topodata.TopoConfig", topo_config_fields);

static const struct proto_field external_vitess_cluster_fields[] = {
    FM(1, "topo_config", topo_config),
};
MESSAGE(proto_topodata_ExternalVitessCluster, "topodata.ExternalVitessCluster",
	external_vitess_cluster_fields);

/* ---- query ---- */

/* query.Type: the SQL column types (number = type id | property flags). */
static const struct proto_enum_value query_type_values[] = {
    {0, "NULL_TYPE"},  {257, "INT8"},	     {770, "UINT8"},
    {259, "INT16"},    {772, "UINT16"},	     {261, "INT24"},
    {774, "UINT24"},   {263, "INT32"},	     {776, "UINT32"},
    {265, "INT64"},    {778, "UINT64"},	     {1035, "FLOAT32"},
    {1036, "FLOAT64"}, {2061, "TIMESTAMP"},  {2062, "DATE"},
    {2063, "TIME"},    {2064, "DATETIME"},   {785, "YEAR"},
    {18, "DECIMAL"},   {6163, "TEXT"},	     {10260, "BLOB"},
    {6165, "VARCHAR"}, {10262, "VARBINARY"}, {6167, "CHAR"},
    {10264, "BINARY"}, {2073, "BIT"},	     {2074, "ENUM"},
    {2075, "SET"},     {28, "TUPLE"},	     {2077, "GEOMETRY"},
    {2078, "JSON"},    {31, "EXPRESSION"},   {4128, "HEXNUM"},
    {4129, "HEXVAL"},  {4130, "BITNUM"},
};
ENUM(query_type, "query.Type", query_type_values);

/* ---- vschema ---- */

static const struct proto_field routing_rule_fields[] = {
    F(1, "from_table", STRING),
    FR(2, "to_tables", STRING),
};
static MESSAGE(routing_rule, "vschema.RoutingRule", routing_rule_fields);

static const struct proto_field routing_rules_fields[] = {
    FRM(1, "rules", routing_rule),
};
MESSAGE(proto_vschema_RoutingRules, "vschema.RoutingRules",
	routing_rules_fields);

MAP_ENTRY(params_entry, "vschema.Vindex.ParamsEntry", F(2, "value", STRING));

static const struct proto_field vindex_fields[] = {
    F(1, "type", STRING),
    FMAP(2, "params", params_entry),
    F(3, "owner", STRING),
};
static MESSAGE(vindex, "vschema.Vindex", vindex_fields);

static const struct proto_field column_vindex_fields[] = {
    F(1, "column", STRING),
    F(2, "name", STRING),
    FR(3, "columns", STRING),
};
static MESSAGE(column_vindex, "vschema.ColumnVindex", column_vindex_fields);

static const struct proto_field auto_increment_fields[] = {
    F(1, "column", STRING),
    F(2, "sequence", STRING),
};
static MESSAGE(auto_increment, "vschema.AutoIncrement", auto_increment_fields);

static const struct proto_field column_fields[] = {
    F(1, "name", STRING),	    FE(2, "type", query_type),
    F(3, "invisible", BOOL),	    F(4, "default", STRING),
    F(5, "collation_name", STRING), F(6, "size", INT32),
    F(7, "scale", INT32),	    FOPT(8, "nullable", BOOL),
    FR(9, "values", STRING),
};
static MESSAGE(column, "vschema.Column", column_fields);

static const struct proto_field table_fields[] = {
    F(1, "type", STRING),
    FRM(2, "column_vindexes", column_vindex),
    FM(3, "auto_increment", auto_increment),
    FRM(4, "columns", column),
    F(5, "pinned", STRING),
    F(6, "column_list_authoritative", BOOL),
    F(7, "source", STRING),
};
static MESSAGE(table, "vschema.Table", table_fields);

static const struct proto_enum_value foreign_key_mode_values[] = {
    {0, "unspecified"},
    {1, "disallow"},
    {2, "unmanaged"},
    {3, "managed"},
};
ENUM(foreign_key_mode, "vschema.Keyspace.ForeignKeyMode",
     foreign_key_mode_values);

static const struct proto_field multi_tenant_spec_fields[] = {
    F(1, "tenant_id_column_name", STRING),
    FE(2, "tenant_id_column_type", query_type),
};
static MESSAGE(multi_tenant_spec, "vschema.MultiTenantSpec",
	       multi_tenant_spec_fields);

MAP_ENTRY(vindexes_entry, "vschema.Keyspace.VindexesEntry",
	  FM(2, "value", vindex));
MAP_ENTRY(tables_entry, "vschema.Keyspace.TablesEntry", FM(2, "value", table));

static const struct proto_field vschema_keyspace_fields[] = {
    F(1, "sharded", BOOL),
    FMAP(2, "vindexes", vindexes_entry),
    FMAP(3, "tables", tables_entry),
    F(4, "require_explicit_routing", BOOL),
    FE(5, "foreign_key_mode", foreign_key_mode),
    FM(6, "multi_tenant_spec", multi_tenant_spec),
};
MESSAGE(proto_vschema_Keyspace, "vschema.Keyspace", vschema_keyspace_fields);

static const struct proto_field shard_routing_rule_fields[] = {
    F(1, "from_keyspace", STRING),
    F(2, "to_keyspace", STRING),
    F(3, "shard", STRING),
};
static MESSAGE(shard_routing_rule, "vschema.ShardRoutingRule",
	       shard_routing_rule_fields);

static const struct proto_field shard_routing_rules_fields[] = {
    FRM(1, "rules", shard_routing_rule),
};
MESSAGE(proto_vschema_ShardRoutingRules, "vschema.ShardRoutingRules",
	shard_routing_rules_fields);

static const struct proto_field keyspace_routing_rule_fields[] = {
    F(1, "from_keyspace", STRING),
    F(2, "to_keyspace", STRING),
};
static MESSAGE(keyspace_routing_rule, "vschema.KeyspaceRoutingRule",
	       keyspace_routing_rule_fields);

static const struct proto_field keyspace_routing_rules_fields[] = {
    FRM(1, "rules", keyspace_routing_rule),
};
MESSAGE(proto_vschema_KeyspaceRoutingRules, "vschema.KeyspaceRoutingRules",
	keyspace_routing_rules_fields);

static const struct proto_field mirror_rule_fields[] = {
    F(1, "from_table", STRING),
    F(2, "to_table", STRING),
    F(3, "percent", FLOAT),
};
static MESSAGE(mirror_rule, "vschema.MirrorRule", mirror_rule_fields);

static const struct proto_field mirror_rules_fields[] = {
    FRM(1, "rules", mirror_rule),
};
MESSAGE(proto_vschema_MirrorRules, "vschema.MirrorRules", mirror_rules_fields);

MAP_ENTRY(keyspaces_entry, "vschema.SrvVSchema.KeyspacesEntry",
	  FM(2, "value", proto_vschema_Keyspace));

static const struct proto_field srv_vschema_fields[] = {
    FMAP(1, "keyspaces", keyspaces_entry),
    FM(2, "routing_rules", proto_vschema_RoutingRules),
    FM(3, "shard_routing_rules", proto_vschema_ShardRoutingRules),
    FM(4, "keyspace_routing_rules", proto_vschema_KeyspaceRoutingRules),
    FM(5, "mirror_rules", proto_vschema_MirrorRules),
};
MESSAGE(proto_vschema_SrvVSchema, "vschema.SrvVSchema", srv_vschema_fields);

/* ---- lookups ---- */

/* Record types chosen by base name alone. */
static const struct {
	const char *base;
	const struct proto_message *m;
} by_base[] = {
    {"CellInfo", &proto_topodata_CellInfo},
    {"CellsAlias", &proto_topodata_CellsAlias},
    {"Keyspace", &proto_topodata_Keyspace},
    {"VSchema", &proto_vschema_Keyspace},
    {"Shard", &proto_topodata_Shard},
    {"RoutingRules", &proto_vschema_RoutingRules},
    {"ShardRoutingRules", &proto_vschema_ShardRoutingRules},
    {"MirrorRules", &proto_vschema_MirrorRules},
    {"Tablet", &proto_topodata_Tablet},
    {"SrvKeyspace", &proto_topodata_SrvKeyspace},
    {"ShardReplication", &proto_topodata_ShardReplication},
    {"SrvVSchema", &proto_vschema_SrvVSchema},
};

/* True if the parent directory part p[0..len) is `dir` or ends in "/dir". */
static int parent_is(const char *p, size_t len, const char *dir)
{
	size_t dl = strlen(dir);

	if (len < dl || memcmp(p + len - dl, dir, dl) != 0)
		return 0;
	return len == dl || p[len - dl - 1] == '/';
}

/* See proto.h. */
const struct proto_message *proto_record_type(const char *p)
{
	const char *slash = strrchr(p, '/');
	const char *base = slash ? slash + 1 : p;
	size_t plen = slash ? (size_t)(slash - p) : 0;

	if (parent_is(p, plen, "locks") || parent_is(p, plen, "metadata"))
		return NULL;
	if (*base && parent_is(p, plen, "ExternalClusters/vitess"))
		return &proto_topodata_ExternalVitessCluster;
	if (strcmp(base, "Rules") == 0 &&
	    parent_is(p, plen, "routing_rules/keyspace"))
		return &proto_vschema_KeyspaceRoutingRules;
	for (size_t i = 0; i < N_(by_base); i++)
		if (strcmp(base, by_base[i].base) == 0)
			return by_base[i].m;
	return NULL;
}

/* See proto.h. */
const struct proto_field *proto_field_by_number(const struct proto_message *m,
						uint32_t n)
{
	for (size_t i = 0; i < m->nfields; i++)
		if (m->fields[i].number == n)
			return &m->fields[i];
	return NULL;
}

/* See proto.h. */
const char *proto_enum_name(const struct proto_enum *e, int32_t n)
{
	for (size_t i = 0; i < e->nvalues; i++)
		if (e->values[i].number == n)
			return e->values[i].name;
	return NULL;
}

/* See proto.h. */
int proto_enum_number(const struct proto_enum *e, const char *name, int32_t *n)
{
	for (size_t i = 0; i < e->nvalues; i++) {
		if (strcmp(e->values[i].name, name) == 0) {
			*n = e->values[i].number;
			return 0;
		}
	}
	return -ENOENT;
}
