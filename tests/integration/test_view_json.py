#!/usr/bin/python3
"""-o view=json (SPEC 8): Vitess records read and edited as JSON, encoded
back into the same wire bytes, unknown fields carried through, bad JSON
refused with nothing written; other files stay raw. Values are checked
byte for byte through the independent client."""

import errno
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import read_file  # noqa: E402

# topodata.Keyspace: durability_policy (8) "semi_sync", sidecar_db_name (10)
# "_vt", and field 99 (varint 7), which this decoder does not know
KEYSPACE = b"\x42\x09semi_sync\x52\x03_vt\x98\x06\x07"
KEYSPACE_JSON = (b'{\n  "durability_policy": "semi_sync",\n'
                 b'  "sidecar_db_name": "_vt",\n'
                 b'  "__unknown_fields": "mAYH"\n}\n')
# topodata.Shard: primary_alias (1) {cell "zone1", uid 100},
# is_primary_serving (7) true
SHARD = b"\x0a\x09\x0a\x05zone1\x10\x64\x38\x01"


class ViewJsonTest(h.TopofsTestCase):

    def setUp(self):
        super().setUp()
        self.load({"keyspaces/ks/Keyspace": KEYSPACE,
                   "keyspaces/ks/shards/-80/Shard": SHARD,
                   "keyspaces/ks/locks/1": b'{"Action": "x"}',
                   "metadata/note": b"\x00plain\xff"})
        self.mount(["-o", "view=json"])

    def test_records_read_as_json_with_exact_size(self):
        ks = self.p("keyspaces/ks/Keyspace")
        self.assertEqual(read_file(ks), KEYSPACE_JSON)
        self.assertEqual(os.stat(ks).st_size, len(KEYSPACE_JSON))
        shard = json.loads(read_file(self.p("keyspaces/ks/shards/-80/Shard")))
        self.assertEqual(shard, {"primary_alias": {"cell": "zone1", "uid": 100},
                                 "is_primary_serving": True})
        sz = os.stat(self.p("keyspaces/ks/shards/-80/Shard")).st_size
        self.assertEqual(sz, len(read_file(self.p("keyspaces/ks/shards/-80/Shard"))))

    def test_other_files_stay_raw(self):
        self.assertEqual(read_file(self.p("metadata/note")), b"\x00plain\xff")
        self.assertEqual(read_file(self.p("keyspaces/ks/locks/1")), b'{"Action": "x"}')

    def test_edit_encodes_and_keeps_unknown_fields(self):
        ks = self.p("keyspaces/ks/Keyspace")
        text = read_file(ks).replace(b"semi_sync", b"none")
        with open(ks, "wb") as f:
            f.write(text)
        self.assertEqual(self.store.get(self.key("keyspaces/ks/Keyspace")),
                         b"\x42\x04none\x52\x03_vt\x98\x06\x07")
        self.assertEqual(read_file(ks), text)

    def test_sed_edit(self):
        ks = self.p("keyspaces/ks/Keyspace")
        r = subprocess.run(["sed", "-i", "s/_vt/_vt2/", ks], stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.store.get(self.key("keyspaces/ks/Keyspace")),
                         b"\x42\x09semi_sync\x52\x04_vt2\x98\x06\x07")

    def _refused(self, text):
        before = self.snapshot()
        ks = self.p("keyspaces/ks/Keyspace")
        fd = os.open(ks, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, text)
        finally:
            with self.assertRaises(OSError) as cm:
                os.close(fd)
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        self.assertUnchanged(before)
        self.assertEqual(read_file(ks), KEYSPACE_JSON)

    def test_invalid_json_refused(self):
        self._refused(b'{"durability_policy": ')

    def test_unknown_field_refused(self):
        self._refused(b'{"durabilty_policy": "none"}\n')

    def test_wrong_type_refused(self):
        self._refused(b'{"sidecar_db_name": 7}\n')

    def test_new_record_file(self):
        p = self.p("keyspaces/ks/shards/80-/Shard")
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(b'{"is_primary_serving": true}\n')
        self.assertEqual(self.store.get(self.key("keyspaces/ks/shards/80-/Shard")),
                         b"\x38\x01")


# Every record type (vitess-topo-facts.md), at a path Vitess uses for it,
# with the message protoc encodes its golden text (tests/unit/golden) as.
HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "proto")
GOLDEN_DIR = os.path.join(HERE, "..", "unit", "golden")
RECORDS = [
    ("CellInfo", "cells/zone1/CellInfo", "topodata.CellInfo"),
    ("CellsAlias", "cells_aliases/all/CellsAlias", "topodata.CellsAlias"),
    ("Keyspace", "keyspaces/ks2/Keyspace", "topodata.Keyspace"),
    ("VSchema", "keyspaces/ks2/VSchema", "vschema.Keyspace"),
    ("Shard", "keyspaces/ks2/shards/-80/Shard", "topodata.Shard"),
    ("RoutingRules", "RoutingRules", "vschema.RoutingRules"),
    ("ShardRoutingRules", "ShardRoutingRules", "vschema.ShardRoutingRules"),
    ("MirrorRules", "MirrorRules", "vschema.MirrorRules"),
    ("KeyspaceRoutingRules", "routing_rules/keyspace/Rules",
     "vschema.KeyspaceRoutingRules"),
    ("ExternalVitessCluster", "ExternalClusters/vitess/ext1",
     "topodata.ExternalVitessCluster"),
    ("Tablet", "tablets/zone1-0000000100/Tablet", "topodata.Tablet"),
    ("SrvKeyspace", "keyspaces/ks2/SrvKeyspace", "topodata.SrvKeyspace"),
    ("ShardReplication", "keyspaces/ks2/shards/-80/ShardReplication",
     "topodata.ShardReplication"),
    ("SrvVSchema", "SrvVSchema", "vschema.SrvVSchema"),
]


def protoc(mode, message, data):
    """protoc --encode/--decode (Debian's protobuf-compiler): the
    independent encoder and decoder."""
    r = subprocess.run(["protoc", "--proto_path=" + PROTO_DIR, "--%s=%s" % (mode, message),
                        "vitess_topodata.proto", "vitess_vschema.proto"],
                       input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise AssertionError("protoc --%s=%s: %s" % (mode, message, r.stderr.decode()))
    return r.stdout


class EveryRecordTest(h.TopofsTestCase):
    """Each record type: bytes from protoc read as the golden JSON (size
    exact), and a save of that JSON (reformatted, so that it is written)
    stores a record protoc decodes exactly as the original."""

    def test_every_record_type_reads_and_round_trips(self):
        wire = {}
        for name, rel, msg in RECORDS:
            with open(os.path.join(GOLDEN_DIR, name + ".txtpb"), "rb") as f:
                wire[rel] = protoc("encode", msg, f.read())
        self.load(wire)
        self.mount(["-o", "view=json"])
        for name, rel, msg in RECORDS:
            with self.subTest(record=name):
                with open(os.path.join(GOLDEN_DIR, name + ".json"), "rb") as f:
                    golden = f.read()
                self.assertEqual(read_file(self.p(rel)), golden)
                self.assertEqual(os.stat(self.p(rel)).st_size, len(golden))
                compact = json.dumps(json.loads(golden), separators=(",", ":"))
                with open(self.p(rel), "wb") as f:
                    f.write(compact.encode() + b"\n")
                stored = self.store.get(self.key(rel))
                self.assertEqual(protoc("decode", msg, stored),
                                 protoc("decode", msg, wire[rel]))
                self.assertEqual(read_file(self.p(rel)), golden)


if __name__ == "__main__":
    h.main()
