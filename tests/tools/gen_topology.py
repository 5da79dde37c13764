#!/usr/bin/python3
"""gen_topology.py - a deterministic sample Vitess topology for topofs.

Builds a Vitess-shaped tree (cells, keyspaces, shards, tablets, VSchema,
RoutingRules, ...) whose values are real protobuf wire encodings produced by a
tiny hand-written encoder, plus a few special values under metadata/ that
exercise edge cases (empty, every byte value, 1,000,000 bytes, names with
spaces and UTF-8, a key that is both a value and a prefix).

Output targets (any combination):
  --etcd http://127.0.0.1:2379 --root /vitess/global   etcd v3 JSON gateway
  --zk 127.0.0.1:2181 --root /vitess/global             ZooKeeper (kazoo)
  --dir PATH                                            plain files
  --list                                                relpath TAB sha256 TAB len

The global tree goes under --root.  With --with-cells, each cell's tree goes
to the root's sibling "<dirname(root)>/<cell>" (e.g. /vitess/zone1), which is
also what the CellInfo records point at.  In --list output, global keys are
printed relative to --root; cell keys are printed as absolute store paths.
For --dir, PATH stands for --root and the cell trees go beside it
(dirname(PATH)/<cell>).

Standard library only (plus kazoo for --zk).  Use /usr/bin/python3.
"""

import argparse
import base64
import hashlib
import json
import os
import random
import sys
import time
import urllib.request

# --------------------------------------------------------------------------
# protobuf wire encoding

VARINT, I64, LEN, I32 = 0, 1, 2, 5


def varint(n):
    if n < 0:
        n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tag(field, wt):
    return varint((field << 3) | wt)


def f_varint(field, n):
    return tag(field, VARINT) + varint(n)


def f_bytes(field, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return tag(field, LEN) + varint(len(data)) + data


f_str = f_bytes
f_msg = f_bytes


def f_map(field, mapping, enc_value):
    """map<string, V>: repeated entry {1: key, 2: value}."""
    out = b""
    for k in sorted(mapping):
        out += f_msg(field, f_str(1, k) + enc_value(2, mapping[k]))
    return out


# --------------------------------------------------------------------------
# Vitess records

TABLET_TYPES = {"PRIMARY": 1, "REPLICA": 2, "RDONLY": 3}


def shard_names(n):
    """Vitess shard names splitting the keyspace-id range into n parts."""
    if n <= 1:
        return ["0"]
    digits = 2 if n <= 256 else 4
    space = 16 ** digits
    bounds = ["%0*x" % (digits, i * space // n) for i in range(1, n)]
    names = []
    prev = ""
    for b in bounds:
        names.append("%s-%s" % (prev, b))
        prev = b
    names.append("%s-" % prev)
    return names


def key_range(shard):
    if shard == "0" or "-" not in shard:
        return None
    start, end = shard.split("-", 1)
    return bytes.fromhex(start), bytes.fromhex(end)


def enc_key_range(kr):
    start, end = kr
    out = b""
    if start:
        out += f_bytes(1, start)
    if end:
        out += f_bytes(2, end)
    return out


def enc_alias(cell, uid):
    return f_str(1, cell) + f_varint(2, uid)


def enc_time(sec, nsec=0):
    out = f_varint(1, sec)
    if nsec:
        out += f_varint(2, nsec)
    return out


def enc_cellinfo(cell, server, root):
    return f_str(1, server) + f_str(2, root)


def enc_keyspace(rnd):
    # throttler_config present but empty (a NUL length byte), durability,
    # sidecar db name.
    return (f_msg(9, b"") + f_str(8, "semi_sync") + f_str(10, "_vt")
            + f_msg(11, f_varint(1, 0)))


def enc_vschema(ks, rnd, ntables=3):
    vindexes = f_map(2, {"hash": None}, lambda fld, _: f_msg(fld, f_str(1, "hash")))
    tables = {}
    for i in range(ntables):
        tname = "%s_t%d" % (ks, i)
        tables[tname] = f_msg(2, f_str(1, "id") + f_str(2, "hash"))
    tables_enc = f_map(3, tables, lambda fld, v: f_msg(fld, v))
    return f_varint(1, 1) + vindexes + tables_enc


def enc_shard(cell, uid, shard, term):
    out = f_msg(1, enc_alias(cell, uid))
    kr = key_range(shard)
    if kr is not None:
        out += f_msg(2, enc_key_range(kr))
    out += f_varint(7, 1)
    out += f_msg(8, enc_time(term, 0))
    return out


def enc_tablet(cell, uid, ks, shard, ttype, host, port, mysql_port, start):
    out = f_msg(1, enc_alias(cell, uid))
    out += f_str(2, host)
    out += f_map(4, {"vt": port, "grpc": port + 1}, f_varint)
    out += f_str(5, ks)
    out += f_str(6, shard)
    kr = key_range(shard)
    if kr is not None:
        out += f_msg(7, enc_key_range(kr))
    out += f_varint(8, TABLET_TYPES[ttype])
    # Go's map encoder always writes key and value, so an empty tag value is
    # encoded as a zero-length field: a NUL byte in the record.
    out += f_map(10, {"app": "", "pool": "default"}, f_str)
    out += f_str(12, host)
    out += f_varint(13, mysql_port)
    out += f_varint(16, 255)
    out += f_msg(17, enc_time(start, 0))
    return out


def enc_srvkeyspace(shards):
    out = b""
    for ttype in ("PRIMARY", "REPLICA", "RDONLY"):
        part = f_varint(1, TABLET_TYPES[ttype])
        for s in shards:
            ref = f_str(1, s)
            kr = key_range(s)
            if kr is not None:
                ref += f_msg(2, enc_key_range(kr))
            part += f_msg(2, ref)
        out += f_msg(1, part)
    out += f_msg(6, b"")
    return out


def enc_shard_replication(aliases):
    return b"".join(f_msg(1, f_msg(1, enc_alias(c, u))) for c, u in aliases)


def enc_routing_rules(keyspaces):
    out = b""
    for ks in keyspaces[:4]:
        rule = f_str(1, "%s_t0@replica" % ks) + f_str(2, "%s.%s_t0" % (ks, ks))
        out += f_msg(1, rule)
    return out


def enc_srvvschema(keyspaces, rnd):
    ksmap = {ks: enc_vschema(ks, rnd, 1) for ks in keyspaces}
    return (f_map(1, ksmap, lambda fld, v: f_msg(fld, v))
            + f_msg(2, enc_routing_rules(keyspaces)))


# --------------------------------------------------------------------------
# the topology

SPECIAL_NAMES = ["name with spaces", "\u00fcn\u00efc\u00f8d\u00e9-\u540d\u524d"]
LARGE_SIZE = 1000000


def generate(cells=("zone1", "zone2"), keyspaces=4, shards=2, tablets=3,
             seed=1, with_cells=False, root="/vitess/global",
             server="127.0.0.1:2379", special=True):
    """Return (global_tree, cell_trees).

    global_tree: dict relpath(str) -> value(bytes), relative to root.
    cell_trees: dict cell -> (cell_root, dict relpath -> bytes); empty unless
    with_cells.  Deterministic for a given set of arguments.
    """
    rnd = random.Random(seed)
    cells = list(cells)
    base = os.path.dirname(root.rstrip("/")) or "/"
    g = {}
    for cell in cells:
        g["cells/%s/CellInfo" % cell] = enc_cellinfo(
            cell, server, os.path.join(base, cell))
    ks_names = ["ks%02d" % i if keyspaces > 9 else "ks%d" % i
                for i in range(keyspaces)]
    if keyspaces >= 1:
        ks_names[0] = "commerce"
    if keyspaces >= 2:
        ks_names[1] = "customer"
    snames = shard_names(shards)
    cell_trees = {c: {} for c in cells}
    uid = 100
    epoch = 1700000000
    for ks in ks_names:
        g["keyspaces/%s/Keyspace" % ks] = enc_keyspace(rnd)
        g["keyspaces/%s/VSchema" % ks] = enc_vschema(ks, rnd)
        for sh in snames:
            aliases = []
            for t in range(tablets):
                cell = cells[t % len(cells)]
                aliases.append((cell, uid + t))
            primary = aliases[0] if aliases else (cells[0], uid)
            g["keyspaces/%s/shards/%s/Shard" % (ks, sh)] = enc_shard(
                primary[0], primary[1], sh, epoch + rnd.randrange(86400))
            for i, (cell, tuid) in enumerate(aliases):
                ttype = "PRIMARY" if i == 0 else ("RDONLY" if i == 2 else "REPLICA")
                host = "%s-%s-%d.vt.example" % (ks, sh.replace("-", "_") or "x", tuid)
                port = 15000 + (tuid % 1000) * 2
                cell_trees[cell]["tablets/%s-%010d/Tablet" % (cell, tuid)] = enc_tablet(
                    cell, tuid, ks, sh, ttype, host, port,
                    3306 + rnd.randrange(1000), epoch + rnd.randrange(86400))
            for cell in cells:
                here = [a for a in aliases if a[0] == cell]
                if here:
                    cell_trees[cell]["keyspaces/%s/shards/%s/ShardReplication"
                                     % (ks, sh)] = enc_shard_replication(here)
            uid += max(tablets, 1)
    for cell in cells:
        for ks in ks_names:
            cell_trees[cell]["keyspaces/%s/SrvKeyspace" % ks] = enc_srvkeyspace(snames)
        cell_trees[cell]["SrvVSchema"] = enc_srvvschema(ks_names, rnd)
    g["RoutingRules"] = enc_routing_rules(ks_names)
    if special:
        g["metadata/empty"] = b""
        g["metadata/binary"] = bytes(range(256))
        g["metadata/large"] = random.Random(seed + 1000).randbytes(LARGE_SIZE)
        for name in SPECIAL_NAMES:
            g["metadata/" + name] = ("value of %s\n" % name).encode("utf-8")
        g["metadata/dirdata"] = b"dir's own value\x00\n"
        g["metadata/dirdata/child"] = b"child value\n"
    if not with_cells:
        return g, {}
    return g, {c: (os.path.join(base, c), cell_trees[c]) for c in cells}


def flatten(root, global_tree, cell_trees):
    """dict full-key -> value for everything generated."""
    out = {}
    r = root.rstrip("/")
    for k, v in global_tree.items():
        out[r + "/" + k] = v
    for cell, (croot, tree) in cell_trees.items():
        for k, v in tree.items():
            out[croot.rstrip("/") + "/" + k] = v
    return out


# --------------------------------------------------------------------------
# loaders

def b64(b):
    if isinstance(b, str):
        b = b.encode("utf-8")
    return base64.b64encode(b).decode("ascii")


def etcd_load(endpoint, kvs, batch=100, max_bytes=1 << 20, timeout=30):
    """Put every (key, value) through POST /v3/kv/txn, up to `batch` puts per
    transaction (and about max_bytes of values)."""
    endpoint = endpoint.rstrip("/")
    if not endpoint.startswith("http"):
        endpoint = "http://" + endpoint
    items = sorted(kvs.items())

    def send(ops):
        body = json.dumps({"success": ops}).encode()
        req = urllib.request.Request(endpoint + "/v3/kv/txn", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            reply = json.loads(resp.read())
        if "error" in reply or "code" in reply:
            raise RuntimeError("etcd txn failed: %r" % (reply,))
    ops, size = [], 0
    for k, v in items:
        if ops and (len(ops) >= batch or size + len(v) > max_bytes):
            send(ops)
            ops, size = [], 0
        ops.append({"requestPut": {"key": b64(k), "value": b64(v)}})
        size += len(v) + len(k)
    if ops:
        send(ops)


def zk_load(hosts, kvs, timeout=30):
    """Create every znode with kazoo; parents get empty data (like zk2)."""
    from kazoo.client import KazooClient
    zk = KazooClient(hosts=hosts, timeout=timeout)
    zk.start(timeout=timeout)
    try:
        made = set()
        for k, v in sorted(kvs.items()):
            parts = k.strip("/").split("/")
            for i in range(1, len(parts)):
                p = "/" + "/".join(parts[:i])
                if p in made:
                    continue
                if not zk.exists(p):
                    try:
                        zk.create(p, b"")
                    except Exception as e:  # NodeExistsError races
                        if type(e).__name__ != "NodeExistsError":
                            raise
                made.add(p)
            if zk.exists(k):
                zk.set(k, v)
            else:
                zk.create(k, v)
            made.add(k)
    finally:
        zk.stop()
        zk.close()


def dir_write(path, tree):
    """Write relpath->bytes as files; a node that is both a value and a prefix
    keeps its value in <node>/.topofs-data."""
    prefixes = set()
    for k in tree:
        parts = k.split("/")
        for i in range(1, len(parts)):
            prefixes.add("/".join(parts[:i]))
    for k, v in sorted(tree.items()):
        target = os.path.join(path, k)
        if k in prefixes:
            target = os.path.join(target, ".topofs-data")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(v)


# --------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", default="zone1,zone2")
    ap.add_argument("--keyspaces", type=int, default=4)
    ap.add_argument("--shards", type=int, default=2, help="shards per keyspace")
    ap.add_argument("--tablets", type=int, default=3,
                    help="tablets per shard (spread over the cells)")
    ap.add_argument("--scale", action="store_true",
                    help="big sample: 80 keyspaces x 32 shards x 3 tablets, with cells")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--root", default="/vitess/global")
    ap.add_argument("--with-cells", action="store_true",
                    help="also write each cell's tree at dirname(root)/<cell>")
    ap.add_argument("--no-special", action="store_true",
                    help="leave out the metadata/ edge cases")
    ap.add_argument("--server-address", default=None,
                    help="server_address written into CellInfo")
    ap.add_argument("--etcd", help="etcd endpoint, e.g. http://127.0.0.1:2379")
    ap.add_argument("--zk", help="ZooKeeper hosts, e.g. 127.0.0.1:2181")
    ap.add_argument("--dir", help="write the tree as files under this directory")
    ap.add_argument("--list", action="store_true",
                    help="print relpath<TAB>sha256<TAB>len for every key")
    a = ap.parse_args(argv)
    if a.scale:
        a.keyspaces, a.shards, a.tablets, a.with_cells = 80, 32, 3, True
    root = "/" + a.root.strip("/")
    server = a.server_address
    if server is None:
        if a.etcd:
            server = a.etcd.split("://", 1)[-1].rstrip("/")
        elif a.zk:
            server = a.zk
        else:
            server = "127.0.0.1:2379"
    cells = [c for c in a.cells.split(",") if c]
    g, ct = generate(cells, a.keyspaces, a.shards, a.tablets, a.seed,
                     a.with_cells, root, server, not a.no_special)
    allkv = flatten(root, g, ct)
    t0 = time.time()
    if a.etcd:
        etcd_load(a.etcd, allkv)
    if a.zk:
        zk_load(a.zk, allkv)
    if a.dir:
        dir_write(a.dir, g)
        base = os.path.dirname(os.path.abspath(a.dir).rstrip("/"))
        for cell, (croot, tree) in ct.items():
            dir_write(os.path.join(base, cell), tree)
    if a.etcd or a.zk or a.dir:
        print("loaded %d keys in %.2fs" % (len(allkv), time.time() - t0),
              file=sys.stderr)
    if a.list:
        out = sys.stdout.buffer
        rows = [(k, v) for k, v in g.items()]
        for cell, (croot, tree) in ct.items():
            rows += [(croot.rstrip("/") + "/" + k, v) for k, v in tree.items()]
        for k, v in sorted(rows):
            out.write(("%s\t%s\t%d\n" % (k, hashlib.sha256(v).hexdigest(),
                                          len(v))).encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
