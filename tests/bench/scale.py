#!/usr/bin/python3
"""scale.py - topofs's peak memory and per-key time at large sizes (issue 25).

Run through `tests/bench/run --scale` (which puts the temp dirs on tmpfs):

  tests/bench/run --scale --sizes 100k,1m --stores etcd,zk [--restore]
                  [--runs N] [--max-repeat S]
                  [--bin build/topofs] [--massif DIR] [--out FILE]

For each size and store it generates the benchmark's Vitess-shaped tree
(bench.Topology: 10k = 80 keyspaces; the keyspace count scales), loads it
(etcd: transactions of 100 puts; ZooKeeper: multi of 1000 creates), mounts
it with `topofs -f`, and runs a cold `tar -cf` and a warm one, then
reads the daemon's VmHWM; with --restore also an `-o writeback`
`tar -x` into an empty root (VmHWM before the unmount, time until the
daemon has exited). That is one run; --runs N (default 1) makes up to N,
each on a fresh mount (and a restore into a root of its own), and takes
each time's median and the largest peak: a run with a phase longer than
--max-repeat seconds (default 300) is not repeated, so 1M gets one run
and the small sizes, whose single runs vary most, get medians. Every
archive's entry count is checked (`tar -t | wc -l`).

A tar that fails shows the tail of the daemon's log; one still running after
--cmd-timeout seconds (default 7200) or making no progress for --stall
seconds (default 1800: a cold tar waits for the listing of the whole tree,
several minutes at 300k keys on ZooKeeper) is stopped.

With --massif DIR the cold/warm mount runs under `valgrind --tool=massif`
(its times are then meaningless) and the profile is left in DIR;
--heaptrack DIR likewise with heaptrack (`heaptrack_print` reads it), and
with --restore the restore's mount too, in a file of its own
(add --no-tar to profile only the restore).
Neither run's rows go into scale.json.

--restore --no-tar runs only the restore (the tree is not loaded into the
store): the row in scale.json keeps the older figures of the tars, marked
with the commit and date they are from.

It prints one table and, with --out, writes it (markdown) to FILE, with the
issue-25 target: peak RSS <= 3 x (key + value bytes) + 32 MiB.

Every row is also kept in RESULTS/scale.json (--results, default
tests/bench/results; a later run replaces the rows of the same size and
store, so that 1M can be run apart from the smaller sizes), from which
scale.md (all rows, and the growth of per-key times from the smallest
size to the largest against the target of 1.2x), scale.dat and
scale.png (gnuplot: time per key and peak RSS against the target, 10k to
1M) are written again.
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import bench  # noqa: E402
from bench import (Topology, TimedMount, run_timed, proc_status_kb, log,  # noqa: E402
                   parse_size, zk_client, zk_create_all, describe_binary,
                   median, MiB)
from harness import EtcdServer, ZkServer, make_tempdir, remove_tempdir, gen_topology  # noqa: E402


def tar_entries(path):
    r = subprocess.run(["tar", "-tf", path], stdout=subprocess.PIPE, check=True)
    return r.stdout.count(b"\n")


def massif_wrapper(work, real, outfile):
    """A script that runs the daemon under valgrind's massif (heap profile
    in outfile), for TimedMount's `bin`."""
    path = os.path.join(work, "topofs-massif")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec valgrind --tool=massif --massif-out-file=%s "
                "--threshold=0.5 %s \"$@\"\n" % (outfile, real))
    os.chmod(path, 0o755)
    return path


def heaptrack_wrapper(work, real, outfile):
    """A script that runs the daemon under heaptrack (much faster than
    massif: a 1M-key tar in hours, not days); its data in outfile.zst."""
    path = os.path.join(work, "topofs-heaptrack")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec heaptrack -o %s %s \"$@\"\n" % (outfile, real))
    os.chmod(path, 0o755)
    return path


def tar_phases(a, topo, srv, work, one):
    """One cold and one warm tar of a fresh mount of topo: their times,
    CPU, VmHWM and VmRSS into `one`."""
    binary = a.bin
    if a.massif or a.heaptrack:   # profiled: the profile left in the DIR
        tool, wrap = (("massif", massif_wrapper) if a.massif
                      else ("heaptrack", heaptrack_wrapper))
        out_dir = a.massif or a.heaptrack
        os.makedirs(out_dir, exist_ok=True)
        binary = wrap(work, a.bin, os.path.join(
            out_dir, "%s.%s.%s" % (tool, srv.kind, topo.label)))
    m = TimedMount(srv.topofs_args(topo.root), bin=binary)
    m.start(timeout=600)
    try:
        for phase in ("cold", "warm"):
            tarf = os.path.join(work, "%s.tar" % phase)
            dt, cpu = m.tar(["-cf", tarf, "."], cwd=m.mnt,
                            watch=[("daemon", m.proc.pid),
                                   ("server", srv.proc.pid)])
            n = tar_entries(tarf)
            os.unlink(tarf)
            if n != topo.tar_entries:
                raise SystemExit("%s %s %s tar: %d entries, expected %d"
                                 % (topo.label, srv.kind, phase, n, topo.tar_entries))
            one[phase] = dt
            one[phase + "_cpu"] = cpu
            one[phase + "_hwm"] = proc_status_kb(m.proc.pid, "VmHWM")
            one[phase + "_rss"] = proc_status_kb(m.proc.pid, "VmRSS")
            log("%s %s %s tar: %.1fs (CPU s: daemon %.1f, server %.1f, "
                "tar %.1f), VmHWM %.1f MiB, VmRSS %.1f MiB" % (
                    topo.label, srv.kind, phase, dt, cpu["daemon"],
                    cpu["server"], cpu["client"], one[phase + "_hwm"] / 1024,
                    one[phase + "_rss"] / 1024))
    finally:
        m.unmount(timeout=600)


def restore_phase(a, topo, srv, zk, work, one, run):
    """One `-o writeback` tar -x of topo into an empty root of its own (the
    run's number in its name): time, CPU and VmHWM into `one`."""
    if not os.path.exists(a.ref_tar):
        topo.write_dir(a.tree)
        run_timed(["tar", "-cf", a.ref_tar, "."], cwd=a.tree)
        shutil.rmtree(a.tree)
    root2 = topo.root + "-restore" + ("-%d" % run if run else "")
    if zk is not None:
        zk.ensure_path(os.path.dirname(root2))
    rbin = a.bin
    if a.heaptrack:   # the restore profiled apart
        rbin = heaptrack_wrapper(work, a.bin, os.path.join(
            a.heaptrack, "heaptrack.%s.%s.restore" % (srv.kind, topo.label)))
    m = TimedMount(srv.topofs_args(root2) + ["-o", "create_root,writeback"],
                   bin=rbin)
    m.start()
    try:
        t0 = time.perf_counter()
        # its log on failure; CPU while tar runs (what -o writeback still
        # has queued at its end, at most 8,192 keys, is written during the
        # unmount, not counted)
        _, one["restore_cpu"] = m.tar(
            ["-xf", a.ref_tar, "-C", m.mnt],
            watch=[("daemon", m.proc.pid), ("server", srv.proc.pid)])
        one["restore_hwm"] = proc_status_kb(m.proc.pid, "VmHWM")
        m.unmount(timeout=3600)
        one["restore"] = time.perf_counter() - t0
    finally:
        if m.proc is not None and m.proc.poll() is None:
            m.unmount()
    log("%s %s writeback restore: %.1fs, VmHWM %.1f MiB" % (
        topo.label, srv.kind, one["restore"], one["restore_hwm"] / 1024))


def merge_runs(row, runs):
    """Into row: per phase the median time and the median of each
    process's CPU, the largest VmHWM and VmRSS, and the number of runs."""
    row["runs"] = len(runs)
    for k, _ in PHASES:
        have = [r for r in runs if k in r]
        if not have:
            continue
        row[k] = median([r[k] for r in have])
        row[k + "_cpu"] = {n: median([r[k + "_cpu"][n] for r in have])
                           for n in have[0][k + "_cpu"]}
        for x in ("_hwm", "_rss"):
            if k + x in have[0]:
                row[k + x] = max(r[k + x] for r in have)


def one_store(a, topo, store, work, rows):
    srv = (EtcdServer if store == "etcd" else ZkServer)().start()
    srv.kind = store
    zk = None
    try:
        t0 = time.perf_counter()
        if store == "zk":
            zk = zk_client(srv.address)
            zk.ensure_path(os.path.dirname(topo.root))
        if a.no_tar:
            pass   # only the restore: nothing to load
        elif store == "etcd":
            gen_topology.etcd_load(srv.endpoint, topo.kvs)
        else:
            zk_create_all(zk, topo.znode_list(topo.root))
        load = time.perf_counter() - t0
        log("%s %s: loaded %d keys in %.0fs" % (topo.label, store, topo.nkeys, load))
        row = {"size": topo.label, "store": store, "keys": topo.nkeys,
               "data": topo.data_bytes, "load": load}
        runs = []
        for run in range(a.runs):
            one = {}
            if not a.no_tar:
                tar_phases(a, topo, srv, work, one)
            if a.restore and not a.massif:
                restore_phase(a, topo, srv, zk, work, one, run)
            runs.append(one)
            took = max([one[k] for k, _ in PHASES if k in one] or [0])
            if a.massif or a.heaptrack or took > a.max_repeat:
                break   # one profile; a long run is not repeated
        merge_runs(row, runs)
        rows.append(row)
    finally:
        if zk is not None:
            try:
                zk.stop()
                zk.close()
            except Exception:
                pass
        srv.stop()


def table(rows, provenance=False):
    """The markdown table of rows; with provenance, each row's git, date
    and load average (rows of several runs)."""
    extra = " git, date, load |" if provenance else ""
    out = []
    out.append("| size | store | keys | key+value MiB | target MiB | cold tar s (µs/key) "
               "| warm tar s (µs/key) | restore -o writeback s (µs/key) "
               "| peak RSS cold / warm / restore MiB | RSS after warm tar MiB | met |"
               + extra)
    out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
               + (" --- |" if provenance else ""))
    for r in rows:
        data = r["data"] / MiB
        target = 3 * data + 32
        hwms = [r.get(k) for k in ("cold_hwm", "warm_hwm", "restore_hwm")]

        def t(k):
            if k not in r:
                return "-"
            return "%.1f (%.0f)" % (r[k], r[k] / r["keys"] * 1e6)
        peak = max([h for h in hwms if h] or [0]) / 1024
        rss = r.get("warm_rss")
        line = "| %s | %s | %d | %.1f | %.1f | %s | %s | %s | %s | %s | %s |" % (
            r["size"], r["store"], r["keys"], data, target, t("cold"), t("warm"),
            t("restore"), " / ".join("%.1f" % (h / 1024) if h else "-" for h in hwms),
            "%.1f" % (rss / 1024) if rss else "-",
            "yes" if peak <= target else "no")
        if provenance:
            line += " %s, %s, %s, %s%s |" % (
                r.get("git", "?"), r.get("date", "?"), r.get("load", "?"),
                "median of %d runs" % r["runs"] if r.get("runs", 1) > 1 else "1 run",
                "".join("; %s from %s" % (k, r[k + "_from"])
                        for k, _ in PHASES if r.get(k + "_from")))
        out.append(line)
    return "\n".join(out)


PHASES = (("cold", "cold tar"), ("warm", "warm tar"),
          ("restore", "restore -o writeback"))


def keep_rows(path, rows, stamp):
    """Merge this run's rows into the JSON file at `path`: a row of the same
    size and store replaces the older one. All rows, by store then keys."""
    old = []
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
    for r in rows:
        r.update(stamp)
        before = [o for o in old if (o["size"], o["store"]) == (r["size"], r["store"])]
        for k, _ in PHASES:   # a phase not run now keeps its older figures
            if k in r or not before or k not in before[0]:
                continue
            o = before[0]
            for x in ("", "_cpu", "_hwm", "_rss", "_from"):
                if k + x in o:
                    r[k + x] = o[k + x]
            r.setdefault(k + "_from", "%s, %s" % (o.get("git", "?"), o.get("date", "?")))
    new = {(r["size"], r["store"]) for r in rows}
    kept = [r for r in old if (r["size"], r["store"]) not in new] + rows
    kept.sort(key=lambda r: (r["store"], r["keys"]))
    with open(path, "w") as f:
        json.dump(kept, f, indent=1, sort_keys=True)
    return kept


def growth(rows):
    """Per store and phase: (first row, last row, per-key growth) from the
    smallest size to the largest that has the phase."""
    out = []
    for store in sorted({r["store"] for r in rows}):
        for k, name in PHASES:
            have = [r for r in rows if r["store"] == store and r.get(k)]
            if len(have) < 2:
                continue
            a, b = have[0], have[-1]
            g = (b[k] / b["keys"]) / (a[k] / a["keys"])
            out.append((store, name, a, b, g))
    return out


def write_summary(out_dir, rows):
    """scale.md, scale.dat, scale.gp and scale.png from every kept row."""
    md = ["# topofs at scale (issue 25)", "",
          "Written by `tests/bench/scale.py` from `scale.json`: every row "
          "with the commit, date and load average of its own run.", "",
          table(rows, provenance=True), ""]
    md += ["## Per-key time from the smallest size to the largest (target: "
           "at most 1.2x)", "",
           "| store | phase | from | to | µs/key | growth | met |",
           "| --- | --- | --- | --- | --- | ---: | --- |"]
    for store, name, a, b, g in growth(rows):
        md.append("| %s | %s | %s | %s | %.0f → %.0f | %.2f× | %s |" % (
            store, name, a["size"], b["size"], a[name_key(name)] / a["keys"] * 1e6,
            b[name_key(name)] / b["keys"] * 1e6, g, "yes" if g <= 1.2 else "no"))
    md += ["", "## Where a tar's time goes: CPU µs per key", "",
           "The CPU time the daemon, the store's server and tar itself used "
           "during each tar (from /proc and the tar's rusage), per key; what "
           "is left of the wall time is waiting (the kernel's FUSE "
           "round trips, the network, the other CPU). A restore's CPU is "
           "counted while `tar -x` runs, its wall time until the daemon "
           "has exited (what -o writeback still had queued is written at "
           "the unmount).", "",
           cpu_table(rows)]
    md += ["", "![time per key and peak RSS](scale.png)", ""]
    with open(os.path.join(out_dir, "scale.md"), "w") as f:
        f.write("\n".join(md))
    stores = sorted({r["store"] for r in rows})
    cols = ["keys"]
    series = []
    for st in stores:
        for k, name in PHASES:
            cols.append("%s_%s_us" % (st, k))
            series.append(("%s %s" % (st, name), len(cols)))
    for st in stores:
        cols.append("%s_peak_mib" % st)
    cols.append("target_mib")
    dat = ["# " + " ".join(cols)]
    for keys in sorted({r["keys"] for r in rows}):
        row = [str(keys)]
        by = {r["store"]: r for r in rows if r["keys"] == keys}
        for st in stores:
            for k, _ in PHASES:
                r = by.get(st)
                row.append("%.1f" % (r[k] / keys * 1e6) if r and r.get(k) else "NaN")
        target = None
        for st in stores:
            r = by.get(st)
            hw = [r.get(h) for h in ("cold_hwm", "warm_hwm", "restore_hwm")] if r else []
            hw = [h for h in hw if h]
            row.append("%.1f" % (max(hw) / 1024) if hw else "NaN")
            if r:
                target = 3 * r["data"] / MiB + 32
        row.append("%.1f" % target if target else "NaN")
        dat.append(" ".join(row))
    with open(os.path.join(out_dir, "scale.dat"), "w") as f:
        f.write("\n".join(dat) + "\n")
    g = ['set terminal pngcairo size 1400,600 font "sans,10"',
         'set output "scale.png"', "set datafile missing 'NaN'",
         "set multiplot layout 1,2 title 'topofs from 10k to 1M keys (tests/bench/scale.py)'",
         "set logscale x", "set grid", "set format x '%.0s%c'",
         "set xlabel 'keys in the topology'",
         "set key inside left top vertical font ',8'", "set xrange [6000:1700000]",
         "set title 'time per key (flat: linear growth)'",
         "set ylabel 'µs per key'", "set yrange [0:*]"]
    g.append("plot " + ", \\\n     ".join(
        "'scale.dat' using 1:%d with linespoints lw 2 title '%s'" % (c, t)
        for t, c in series))
    g += ["set title 'peak RSS of the daemon'", "set ylabel 'MiB'",
          "set logscale y", "set yrange [*:*]"]
    base = len(cols) - len(stores)
    g.append("plot " + ", \\\n     ".join(
        ["'scale.dat' using 1:%d with linespoints lw 2 title '%s peak RSS'"
         % (base + i, st) for i, st in enumerate(stores)] +
        ["'scale.dat' using 1:%d with lines dt 2 lw 2 lc rgb '#000000' "
         "title 'target 3 x data + 32 MiB'" % len(cols)]))
    g.append("unset multiplot")
    with open(os.path.join(out_dir, "scale.gp"), "w") as f:
        f.write("\n".join(g) + "\n")
    if shutil.which("gnuplot"):
        subprocess.run(["gnuplot", "scale.gp"], cwd=out_dir, check=True)


def cpu_table(rows):
    """Per row and tar phase: wall and CPU µs per key of daemon, server and
    tar (rows measured before the CPU was kept show none). The restore's
    wall time runs to the daemon's exit, its CPU to tar's end."""
    out = ["| size | store | tar | wall µs/key | daemon | server | tar | git |",
           "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        for k in ("cold", "warm", "restore"):
            cpu = r.get(k + "_cpu")
            if not cpu:
                continue
            per = [cpu.get(n, float("nan")) / r["keys"] * 1e6
                   for n in ("daemon", "server", "client")]
            out.append("| %s | %s | %s | %.0f | %.0f | %.0f | %.0f | %s |" % (
                r["size"], r["store"], k, r[k] / r["keys"] * 1e6, per[0],
                per[1], per[2], r.get("git", "?")))
    return "\n".join(out)


def name_key(name):
    return {n: k for k, n in PHASES}[name]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--scale", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--sizes", default="100k")
    p.add_argument("--stores", default="etcd,zk")
    p.add_argument("--restore", action="store_true")
    p.add_argument("--no-tar", action="store_true",
                   help="only the restore (with --restore)")
    p.add_argument("--runs", type=int, default=1,
                   help="runs of each size and store; times are medians")
    p.add_argument("--max-repeat", type=float, default=300,
                   help="a run with a phase longer than this is not repeated")
    p.add_argument("--stall", type=float, default=1800,
                   help="a tar making no progress this long is a hang")
    p.add_argument("--massif")
    p.add_argument("--heaptrack", help="like --massif, with heaptrack")
    p.add_argument("--cmd-timeout", type=float, default=7200,
                   help="a timed tar still running after this is stopped")
    p.add_argument("--out")
    p.add_argument("--results", default=os.path.join(HERE, "results"),
                   help="where scale.json/.md/.dat/.png are kept")
    p.add_argument("--bin", default=os.path.join(os.path.dirname(os.path.dirname(HERE)),
                                                 "build", "topofs"))
    a = p.parse_args()
    bench.CMD_TIMEOUT = a.cmd_timeout   # (bench.py's --cmd-timeout, 300 s)
    bench.STALL = a.stall   # a cold tar waits for the whole tree's listing
    work = make_tempdir("topofs-scale-")
    binary = os.path.join(work, "topofs")
    shutil.copy2(a.bin, binary)
    info = describe_binary(a.bin)
    a.bin = binary
    rows = []
    started = datetime.datetime.now()
    try:
        for label in a.sizes.split(","):
            n = parse_size(label)
            t0 = time.perf_counter()
            topo = Topology(n, "/bench/s" + label)
            topo.label = label
            log("%s: generated %d keys, %.1f MiB of keys and values (%.0fs)" % (
                label, topo.nkeys, topo.data_bytes / MiB, time.perf_counter() - t0))
            a.tree = os.path.join(work, "tree-" + label)
            a.ref_tar = os.path.join(work, "ref-%s.tar" % label)
            for store in a.stores.split(","):
                one_store(a, topo, store, work, rows)
            if os.path.exists(a.ref_tar):
                os.unlink(a.ref_tar)
    finally:
        remove_tempdir(work)
    text = ("`tests/bench/run --scale --sizes %s --stores %s%s --runs %d` (%s, "
            "git %s%s, load average %s; times are medians of up to %d runs, "
            "one where a phase took over %g s)\n\n%s\n" % (
                a.sizes, a.stores, " --restore" if a.restore else "", a.runs,
                started.strftime("%Y-%m-%d %H:%M"), info.get("git", "?"), "",
                " ".join("%.2f" % x for x in os.getloadavg()), a.runs,
                a.max_repeat, table(rows)))
    print(text)
    if rows and a.results and not (a.massif or a.heaptrack):  # profiled: no figures
        os.makedirs(a.results, exist_ok=True)
        stamp = {"git": info.get("git", "?"), "date": started.strftime("%Y-%m-%d %H:%M"),
                 "load": " ".join("%.1f" % x for x in os.getloadavg())}
        kept = keep_rows(os.path.join(a.results, "scale.json"), rows, stamp)
        write_summary(a.results, kept)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
