#!/bin/bash
# Regenerate the JSON-view golden files from the <Type>.txtpb inputs here,
# with encoders independent of topofs:
#   <Type>.bin   protoc --encode of the text input, with our own .proto files
#                (tests/proto); each input lists map keys in sorted order so
#                the bytes are canonical (checked against python's
#                deterministic serialization).
#   <Type>.json  python3-protobuf's json_format.MessageToDict (the reference
#                content, proto field names), printed with a two-space indent
#                and protobuf's ES6-style float text (as Go's protojson).
# Needs: protobuf-compiler, python3-protobuf (Debian). Run from anywhere.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROTO=$(cd "$HERE/../../proto" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

protoc -I "$PROTO" --python_out="$TMP" "$PROTO"/vitess_*.proto

# type name -> message
declare -A MSG=(
  [CellInfo]=topodata.CellInfo
  [CellsAlias]=topodata.CellsAlias
  [Keyspace]=topodata.Keyspace
  [VSchema]=vschema.Keyspace
  [Shard]=topodata.Shard
  [RoutingRules]=vschema.RoutingRules
  [ShardRoutingRules]=vschema.ShardRoutingRules
  [KeyspaceRoutingRules]=vschema.KeyspaceRoutingRules
  [MirrorRules]=vschema.MirrorRules
  [ExternalVitessCluster]=topodata.ExternalVitessCluster
  [Tablet]=topodata.Tablet
  [SrvKeyspace]=topodata.SrvKeyspace
  [ShardReplication]=topodata.ShardReplication
  [SrvVSchema]=vschema.SrvVSchema
)

for t in "${!MSG[@]}"; do
  protoc -I "$PROTO" --encode="${MSG[$t]}" "$PROTO"/vitess_*.proto \
    <"$HERE/$t.txtpb" >"$HERE/$t.bin"
  PYTHONPATH="$TMP" /usr/bin/python3 - "${MSG[$t]}" "$HERE/$t.bin" \
    >"$HERE/$t.json" <<'PY'
import json, math, sys
from decimal import Decimal
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor as FD
import vitess_topodata_pb2, vitess_vschema_pb2

pkg, name = sys.argv[1].split(".")
mod = vitess_topodata_pb2 if pkg == "topodata" else vitess_vschema_pb2
msg = getattr(mod, name)()
data = open(sys.argv[2], "rb").read()
msg.ParseFromString(data)
assert msg.SerializeToString(deterministic=True) == data, "not canonical"

def num(x):
    # ES6 number text of the shortest round-trip digits, as protojson.
    if math.isnan(x): return '"NaN"'
    if math.isinf(x): return '"Infinity"' if x > 0 else '"-Infinity"'
    if x == 0: return "-0" if math.copysign(1, x) < 0 else "0"
    d = Decimal(repr(x))
    if 1e-6 <= abs(x) < 1e21:
        s = format(d, "f")
        return s.rstrip("0").rstrip(".") if "." in s else s
    sign, digits, exp = d.normalize().as_tuple()
    m = "".join(map(str, digits))
    e = exp + len(m) - 1
    m = m[0] + ("." + m[1:] if len(m) > 1 else "")
    return ("-" if sign else "") + m + "e" + ("-" if e < 0 else "+") + str(abs(e))

def dump(v, lvl):
    pad = "  " * (lvl + 1)
    if isinstance(v, dict):
        if not v: return "{}"
        items = [pad + json.dumps(k, ensure_ascii=False) + ": " + dump(x, lvl + 1)
                 for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * lvl + "}"
    if isinstance(v, list):
        return "[\n" + ",\n".join(pad + dump(x, lvl + 1) for x in v) + "\n" + "  " * lvl + "]"
    if isinstance(v, bool): return "true" if v else "false"
    if isinstance(v, int): return str(v)
    if isinstance(v, float): return num(v)
    if isinstance(v, str) and v in ("NaN", "Infinity", "-Infinity"): return '"' + v + '"'
    return json.dumps(v, ensure_ascii=False)

def order(d, desc):
    # json_format's content, in field-number order with sorted map keys.
    out = {}
    for f in sorted(desc.fields, key=lambda f: f.number):
        if f.name not in d: continue
        v = d[f.name]
        if f.message_type and f.message_type.GetOptions().map_entry:
            vf = f.message_type.fields_by_name["value"]
            v = {k: (order(v[k], vf.message_type) if vf.message_type else v[k])
                 for k in sorted(v, key=lambda k: k.encode())}
        elif f.message_type and f.label == FD.LABEL_REPEATED:
            v = [order(x, f.message_type) for x in v]
        elif f.message_type:
            v = order(v, f.message_type)
        out[f.name] = v
    return out

ref = json_format.MessageToDict(msg, preserving_proto_field_name=True)
text = dump(order(ref, msg.DESCRIPTOR), 0) + "\n"
assert json.loads(text) == ref, "layout changed the content"
sys.stdout.write(text)
PY
  echo "golden: $t (${MSG[$t]}) $(stat -c %s "$HERE/$t.bin") bytes"
done
