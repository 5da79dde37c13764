#!/usr/bin/python3
"""cells.py - what the deployment view (-o cells) costs: a cell read through
the view against the same cell's root mounted on its own.

    tests/bench/cells.py [--size 10k] [--backend etcd|zk] [--runs 3]
                         [--bin build/topofs] [--out tests/bench/results/cells.md]

On the benchmark's generated topology (R/global with a CellInfo for zone1,
R/zone1 the cell's tree: Tablet, ShardReplication, SrvKeyspace, SrvVSchema)
it times, median of --runs runs, each on a fresh mount (cold) and then again
on the same mount (warm):

  find      `find DIR` (a listing of every directory)
  tar       `tar -cf FILE .` in DIR

where DIR is the root of `topofs R/zone1` (plain) or `zone1/` of
`topofs -o cells R/global` (view), listed once (`ls DIR`) before timing.  Every archive is checked (entry count,
file count, bytes) like bench.py's.  A first, untimed run counts the FUSE
requests of each (from a -d log): they do not depend on the machine's load.  Mounts and servers are stopped (by PID)
and temp dirs removed on any exit.  Run as root on an otherwise idle machine
(through tests/bench/run's tmpfs, or with TMPDIR=/dev/shm).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import bench  # noqa: E402
from bench import (EtcdServer, ZkServer, TimedMount, check_archive,  # noqa: E402
                   gen_topology, make_tempdir, parse_size, remove_tempdir)


class CellTopology(bench.Topology):
    """bench.Topology's tree, with zone1's CellInfo naming the real server,
    and the files of the cell alone (what zone1/ shows)."""

    def __init__(self, n, root, server):
        bench.Topology.__init__(self, n, root)
        g, ct = gen_topology.generate(
            cells=("zone1",), keyspaces=self.keyspaces, shards=self.SHARDS,
            tablets=self.TABLETS, with_cells=True, root=root + "/global",
            server=server, special=False)
        self.kvs = gen_topology.flatten(root + "/global", g, ct)
        cell = root + "/zone1"
        self.cell_root = cell
        cellkvs = {k: v for k, v in self.kvs.items() if k.startswith(cell + "/")}
        # check_archive() compares with the cell's tree alone
        self.files = bench.harness.expected_files(cellkvs, cell)
        self.dirs = {"/".join(r.split("/")[:i]) for r in self.files
                     for i in range(1, r.count("/") + 1)}
        self.cell_keys = len(cellkvs)
        self.value_bytes = sum(len(v) for v in cellkvs.values())
        self.tar_entries = 1 + len(self.dirs) + len(self.files)


def timed(cmd, cwd=None):
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


OPCODE = re.compile(rb"opcode: (\w+)")


def requests_of(m, func):
    """FUSE requests the daemon of m (a -d mount) got while func ran."""
    pos = os.path.getsize(m.logpath)
    func()
    time.sleep(0.2)
    with open(m.logpath, "rb") as f:
        f.seek(pos)
        return len(OPCODE.findall(f.read()))


def one_run(args, sub, topo, work, a, count=False):
    """{(find|tar, cold|warm): seconds}: find and tar each on a fresh
    mount (cold), then again on the same mount (warm).  count: the FUSE
    requests instead of seconds (a -d mount, not timed)."""
    out = {}
    for what in ("find", "tar"):
        m = TimedMount(args + (["-d"] if count else []), bin=a.bin)
        try:
            m.start()
            d = os.path.join(m.mnt, sub) if sub else m.mnt
            if sub:     # the view's cells are connected in the background
                deadline = time.time() + 10
                while not os.path.isdir(d) and time.time() < deadline:
                    time.sleep(0.01)
            # both: DIR's own listing read before timing (topofs at 413a376
            # gives a cell's directory other attributes once the cell is
            # connected, and tar then fails: "file changed as we read it")
            os.listdir(d)
            f = os.path.join(work, "c.tar")
            cmd = ["find", "."] if what == "find" else ["tar", "-cf", f, "."]
            for phase in ("cold", "warm"):
                if count:
                    out[(what, phase)] = requests_of(m, lambda: timed(cmd, cwd=d))
                else:
                    out[(what, phase)] = timed(cmd, cwd=d)
                if what == "tar":
                    check_archive(f, topo)
                    os.unlink(f)
        finally:
            m.unmount()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="10k")
    ap.add_argument("--backend", default="etcd", choices=("etcd", "zk"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "cells.md"))
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "..", "build", "topofs"))
    a = ap.parse_args()
    n = parse_size(a.size)
    root = "/bench/c%s" % a.size
    work = make_tempdir("topofs-cells-bench-")
    srv = None
    res = {"plain": [], "view": []}
    try:
        srv = (ZkServer() if a.backend == "zk" else EtcdServer()).start()
        topo = CellTopology(n, root, srv.address)
        bench.log("loading %d keys (%d in zone1) into %s"
                  % (len(topo.kvs), topo.cell_keys, a.backend))
        if a.backend == "zk":
            c = srv.client()
            c.put_many(topo.kvs)
            c.close()
        else:
            gen_topology.etcd_load(srv.endpoint, topo.kvs)
        reqs = {}
        for name, args, sub in (
                ("plain", srv.topofs_args(topo.cell_root), ""),
                ("view", srv.topofs_args(root + "/global") + ["-o", "cells"], "zone1")):
            reqs[name] = one_run(args, sub, topo, work, a, count=True)
            bench.log("%s: FUSE requests %s" % (name, ", ".join(
                "%s %s %d" % (k[0], k[1], v) for k, v in sorted(reqs[name].items()))))
        for i in range(a.runs):
            for name, args, sub in (
                    ("plain", srv.topofs_args(topo.cell_root), ""),
                    ("view", srv.topofs_args(root + "/global") + ["-o", "cells"],
                     "zone1")):
                r = one_run(args, sub, topo, work, a)
                res[name].append(r)
                bench.log("run %d %s: %s" % (i + 1, name, ", ".join(
                    "%s %s %.3fs" % (k[0], k[1], v) for k, v in sorted(r.items()))))
    finally:
        if srv:
            srv.stop()
        remove_tempdir(work)
    rows = ["| operation | plain mount of R/zone1 | zone1/ of `-o cells` | view / plain "
            "| FUSE requests, plain | FUSE requests, view |",
            "| --- | --- | --- | --- | --- | --- |"]
    for what in ("find", "tar"):
        for phase in ("cold", "warm"):
            p = statistics.median(r[(what, phase)] for r in res["plain"])
            v = statistics.median(r[(what, phase)] for r in res["view"])
            rows.append("| %s %s | %.3f s | %.3f s | %.2f | %d | %d |" % (
                what, phase, p, v, v / p, reqs["plain"][(what, phase)],
                reqs["view"][(what, phase)]))
    text = ("# The deployment view: a cell through `-o cells` vs its root mounted alone\n\n"
            "Produced by `tests/bench/cells.py --size %s --backend %s --runs %d` "
            "(%d keys in zone1, `tar -t` lists %d entries), %s, load average "
            "%.2f at the end. Medians of %d runs; cold = a fresh mount, warm = "
            "the same command again on it. Below 1.00 the view is faster. The FUSE "
            "requests (counted from a `-d` log in a separate, untimed run) do not "
            "depend on the machine's load; the times do.\n\n%s\n"
            % (a.size, a.backend, a.runs, topo.cell_keys, topo.tar_entries,
               time.strftime("%Y-%m-%d"), os.getloadavg()[0], a.runs,
               "\n".join(rows)))
    with open(a.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
