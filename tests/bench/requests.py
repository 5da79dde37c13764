#!/usr/bin/python3
"""requests.py - FUSE requests per tar entry, by opcode: the part of the
benchmark that machine noise cannot move.

    tests/bench/requests.py [--size 10k] [--out tests/bench/results/requests.md]

On the benchmark's generated topology it counts, from each daemon's -d log,
the FUSE requests of a cold tar (fresh mount) and of a warm (second) tar
through: squashfuse_ll serving the same tree from a squashfs image, topofs
on etcd, the same read-only (-o ro: the kernel then keeps atimes, so a stat
after a read costs nothing), and topofs on etcd with -o snapshot (a pinned
revision, which the kernel may cache without limit). On this machine a FUSE request costs tens
of microseconds whatever the daemon does, so the counts say most of why one
tar takes longer than another. Every archive is checked like bench.py's.
Mounts and servers are stopped (by PID) and temp dirs removed on any exit.
"""

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402
from bench import (EtcdServer, SquashMount, TimedMount, Topology,  # noqa: E402
                   check_archive, make_tempdir, parse_size, remove_tempdir)

OPCODE = re.compile(rb"opcode: (\w+)")


def count_tar(m, out, topo):
    """FUSE requests by opcode during one tar of m (a -d mount)."""
    pos = os.path.getsize(m.logpath)
    subprocess.run(["tar", "-cf", out, "."], cwd=m.mnt, check=True)
    check_archive(out, topo)
    os.unlink(out)
    with open(m.logpath, "rb") as f:
        f.seek(pos)
        ops = collections.Counter(
            op.decode() for op in OPCODE.findall(f.read()))
    ops.pop("INIT", None)
    return ops


def measure(name, factory, stop, work, topo, rows):
    m = factory()
    try:
        m.start()
        for phase in ("cold", "warm"):
            ops = count_tar(m, os.path.join(work, "r.tar"), topo)
            rows.append((name, phase, ops))
            bench.log("  %s %s: %d requests" % (name, phase, sum(ops.values())))
    finally:
        stop(m)


def table(rows, entries):
    shown = {op for _, _, ops in rows for op in ops
             if ops[op] / entries >= 0.005}   # not a stray FLUSH or two
    opcodes = sorted(shown, key=lambda op: -max(ops[op] for _, _, ops in rows))
    lines = ["| daemon | tar | requests per entry | " + " | ".join(opcodes) + " |",
             "| --- | --- | --- |" + " --- |" * len(opcodes)]
    for name, phase, ops in rows:
        lines.append("| %s | %s | **%.2f** | %s |" % (
            name, phase, sum(ops.values()) / entries,
            " | ".join("%.2f" % (ops[op] / entries) for op in opcodes)))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="10k")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "requests.md"))
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "..", "build", "topofs"))
    a = ap.parse_args()
    n = parse_size(a.size)
    root = "/bench/r%s" % a.size
    topo = Topology(n, root)
    work = make_tempdir("topofs-requests-")
    srv = None
    rows = []
    try:
        tree = os.path.join(work, "tree")
        topo.write_dir(tree)
        image = os.path.join(work, "tree.sqfs")
        subprocess.run(["mksquashfs", tree, image, "-noappend", "-quiet",
                        "-no-progress"], check=True, stdout=subprocess.DEVNULL)
        shutil.rmtree(tree)
        measure("squashfuse_ll",
                lambda: SquashMount(image, os.path.join(work, "squashfuse.log")),
                lambda m: m.stop(), work, topo, rows)
        srv = EtcdServer().start()
        bench.gen_topology.etcd_load(srv.endpoint, topo.kvs)
        for name, extra in (("topofs etcd", []),
                            ("topofs etcd -o ro", ["-o", "ro"]),
                            ("topofs etcd -o snapshot", ["-o", "snapshot"])):
            args = srv.topofs_args(topo.root) + ["-d"] + extra
            measure(name, lambda: TimedMount(args, bin=a.bin),
                    lambda m: m.unmount(), work, topo, rows)
    finally:
        if srv:
            srv.stop()
        remove_tempdir(work)
    text = ("# FUSE requests per tar entry\n\n"
            "Produced by `tests/bench/requests.py --size %s` on the benchmark's "
            "%s topology (%d keys; `tar -t` lists %d entries): every FUSE "
            "request the daemon got during a `tar -cf FILE .` of a fresh "
            "mount (cold) and of the same mount again (warm), by opcode, "
            "divided by the entries (opcodes under 0.005 per entry everywhere left out). Counted from each daemon's `-d` log: "
            "machine load barely changes them.\n\n%s\n"
            % (a.size, a.size, topo.nkeys, topo.tar_entries,
               table(rows, topo.tar_entries)))
    with open(a.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
