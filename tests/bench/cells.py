#!/usr/bin/python3
"""cells.py - what a cell costs through the deployment view (-o cells).

    tests/bench/cells.py [--runs 3] [--out tests/bench/results/cells.md]

Loads the big sample topology (tests/tools/gen_topology.py --scale: the
global root and two cells' trees) into etcd and into ZooKeeper, started on
free loopback ports, then for the cell zone1 measures, through a plain
mount of the cell's root and through zone1/ of a deployment view of the
global root (each freshly mounted for the cold runs):
  - the time of a cold and of a warm `tar -cf ARCHIVE .` (the archive on
    tmpfs; medians of --runs runs);
  - the FUSE requests of a cold and a warm tar (from the -d log);
and writes the figures and the ratios (view / plain) as a markdown table.
Run it as root on an otherwise idle machine. Mounts and servers are stopped
(by PID) and temp dirs removed on any exit.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from harness_mounts import Mount  # noqa: E402
from harness_servers import EtcdServer, ZkServer  # noqa: E402

OPCODE = re.compile(rb"opcode: (\w+)")
GEN = os.path.join(REPO, "tests", "tools", "gen_topology.py")


def load(store, kind):
    """The --scale sample topology, cells included, into the store."""
    addr = "127.0.0.1:%d" % store.port
    target = (["--etcd", "http://" + addr] if kind == "etcd"
              else ["--zk", addr])
    subprocess.run(["/usr/bin/python3", GEN, "--scale", "--no-special",
                    "--root", "/vitess/global", "--server-address", addr]
                   + target, check=True, stdout=subprocess.DEVNULL)


def count_keys(path):
    return sum(len(files) for _, _, files in os.walk(path))


def tar_once(path, logpath):
    """Seconds and FUSE requests of one tar of path into a file (GNU tar
    reads no file's content when the archive is /dev/null)."""
    pos = os.path.getsize(logpath)
    out = os.path.join(os.environ["CELLS_BENCH_WORK"], "cell.tar")
    t0 = time.monotonic()
    subprocess.run(["tar", "-cf", out, "."], cwd=path, check=True)
    took = time.monotonic() - t0
    os.unlink(out)
    with open(logpath, "rb") as f:
        f.seek(pos)
        n = sum(1 for op in OPCODE.findall(f.read()) if op != b"INIT")
    return took, n


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def measure(store, args, sub, runs):
    """Cold and warm tar of sub within a mount of args: medians."""
    cold, warm, reqs = [], [], None
    for _ in range(runs):
        m = Mount(args + ["-d"])
        m.start()
        try:
            path = os.path.join(m.mnt, sub)
            deadline = time.time() + 10
            while not os.path.isdir(path) and time.time() < deadline:
                time.sleep(0.05)
            c = tar_once(path, m.logpath)
            w = tar_once(path, m.logpath)
            cold.append(c[0])
            warm.append(w[0])
            reqs = (c[1], w[1])
            keys = count_keys(path)
        finally:
            m.unmount()
    return median(cold), median(warm), reqs, keys


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "cells.md"))
    a = ap.parse_args()
    head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short",
                           "HEAD"], capture_output=True, text=True).stdout
    # a copy: a rebuild during the run does not change what is measured
    work = tempfile.mkdtemp(prefix="topofs-cells-bench-",
                            dir="/dev/shm" if os.path.isdir("/dev/shm")
                            else None)
    os.environ["CELLS_BENCH_WORK"] = work
    src = os.environ.get("TOPOFS_BIN", os.path.join(REPO, "build", "topofs"))
    os.environ["TOPOFS_BIN"] = shutil.copy(src, os.path.join(work, "topofs"))
    try:
        rows = run_all(a)
    finally:
        shutil.rmtree(work)
    write(a, rows, head.strip())


def run_all(a):
    rows = []
    for kind, cls in (("etcd", EtcdServer), ("zk", ZkServer)):
        store = cls()
        store.start()
        try:
            load(store, kind)
            base = list(store.topofs_args("/vitess/global"))
            plain = [x.replace("/vitess/global", "/vitess/zone1")
                     for x in base]
            p = measure(store, plain, "", a.runs)
            v = measure(store, base + ["-o", "cells"], "zone1", a.runs)
            rows.append((kind, p, v))
            print("%s: plain %s, view %s" % (kind, p, v), flush=True)
        finally:
            store.stop()
    return rows


def write(a, rows, head):
    with open(a.out, "w") as f:
        f.write("# A cell through the deployment view\n\n")
        f.write("`tests/bench/cells.py --runs %d`, %s, commit %s; "
                "medians of %d runs.\n\n"
                % (a.runs, time.strftime("%Y-%m-%d"), head, a.runs))
        f.write("| store | cell files | tar | plain mount of the cell | "
                "zone1/ of `-o cells` | ratio |\n| --- | ---: | --- | ---: "
                "| ---: | ---: |\n")
        for kind, p, v in rows:
            for i, what in ((0, "cold, s"), (1, "warm, s")):
                f.write("| %s | %d | %s | %.3f | %.3f | %.2f |\n"
                        % (kind, p[3], what, p[i], v[i], v[i] / p[i]))
            for j, what in ((0, "cold, FUSE requests"),
                            (1, "warm, FUSE requests")):
                f.write("| %s | %d | %s | %d | %d | %.2f |\n"
                        % (kind, p[3], what, p[2][j], v[2][j],
                           v[2][j] / max(p[2][j], 1)))
    print("wrote", a.out)


if __name__ == "__main__":
    main()
