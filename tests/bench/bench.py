#!/usr/bin/python3
"""bench.py - topofs benchmarks against references measured in the same run.

Run through tests/bench/run (which puts the temp dirs on tmpfs).  See
tests/bench/README.md for what is measured and how to read the results.

For every size (--sizes, default 10k,100k) it generates a Vitess-shaped
topology under ONE root R (R/global/... and the cell tree R/zone1/...), and:

  references   tar of the tree on tmpfs; tar through squashfuse_ll (cold:
               fresh mount; warm: second tar); etcdctl get --prefix -w json;
               a sequential kazoo dump (get + get_children per znode);
               sequential etcd puts (one HTTP put per key, keep-alive) and
               sequential kazoo creates (one per znode)
  topofs       cold tar of a fresh mount and warm (second) tar, etcd and
               ZooKeeper, and etcd with -o snapshot (a pinned revision,
               which the kernel caches without limit); restore (tar -x into an empty root, -o create_root,
               until the daemon has exited after fusermount3 -u); peak RSS
               (VmHWM) of the daemon against the topology's size

Every timing is the median of --runs runs (default 3).  Every archive is
checked (entry count as `tar -t | wc -l`, file count and byte total; the
first topofs archive of each kind also file by file against the generated
values), every restore is checked key by key in the store, every dump by
count and bytes: a broken mount fails loudly instead of looking fast.
"""

import argparse
import atexit
import datetime
import hashlib
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.dont_write_bytecode = True   # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import (EtcdServer, ZkServer, Mount, MountError, gen_topology,  # noqa: E402
                     make_tempdir, remove_tempdir, is_mounted, force_unmount,
                     stop_pid, FUSERMOUNT)

MiB = 1024 * 1024


def log(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


class BenchError(Exception):
    pass


class Overtime(BenchError):
    """A timed command ran past --cmd-timeout and was stopped: its time is a
    lower bound."""

    def __init__(self, msg, seconds):
        BenchError.__init__(self, msg)
        self.seconds = seconds


# --------------------------------------------------------------------------
# processes we start besides the harness's (squashfuse_ll, profilers)

_procs = []


def _cleanup_procs():
    for p, mnt in list(_procs):
        try:
            if mnt:
                force_unmount(mnt)
            stop_pid(p, 5)
        except Exception:
            pass


atexit.register(_cleanup_procs)   # runs before the harness's safety net


def _sigint(signum, frame):
    raise KeyboardInterrupt


signal.signal(signal.SIGINT, _sigint)


# --------------------------------------------------------------------------
# small helpers

def proc_status_kb(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_cpu(pid):
    """user+system CPU seconds of a process (all its threads)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        fields = s[s.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


STALL = 120.0   # --stall: seconds without progress before a command is a hang
CMD_TIMEOUT = 300.0   # --cmd-timeout: longest a timed command may run


class Watchdog:
    """While a timed command runs: if progress() (any value) stays the same
    for STALL seconds, call on_stall() (kill the daemon by its pid) so the
    command fails instead of hanging the benchmark."""

    def __init__(self, progress, on_stall, what):
        import threading
        self.progress, self.on_stall, self.what = progress, on_stall, what
        self.stalled = False
        self.overtime = False
        self.t0 = time.time()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        last, since = None, time.time()
        while not self.stop.wait(1.0):
            try:
                cur = self.progress()
            except Exception:
                cur = None
            if CMD_TIMEOUT and time.time() - self.t0 > CMD_TIMEOUT:
                self.overtime = True
                log("  OVERTIME: %s still running after %.0fs (--cmd-timeout); "
                    "killing the daemon" % (self.what, CMD_TIMEOUT))
                try:
                    self.on_stall()
                except Exception:
                    pass
                return
            if cur != last:
                last, since = cur, time.time()
            elif time.time() - since > STALL:
                self.stalled = True
                log("  STALL: %s made no progress for %.0fs; killing the daemon"
                    % (self.what, STALL))
                try:
                    self.on_stall()
                except Exception:
                    pass
                return

    def done(self):
        self.stop.set()
        self.thread.join()


def run_timed(cmd, stdout=subprocess.DEVNULL, cwd=None, watch=(), progress=None,
              on_stall=None):
    """Run cmd; return (seconds, {name: cpu seconds used by pid meanwhile}).
    Raises BenchError on a non-zero exit or a stall (see Watchdog)."""
    before = {n: proc_cpu(p) for n, p in watch}
    ru0 = os.times()
    dog = Watchdog(progress, on_stall, " ".join(cmd)) if progress and on_stall else None
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, cwd=cwd,
                           stdin=subprocess.DEVNULL)
    finally:
        dt = time.perf_counter() - t0
        if dog:
            dog.done()
    ru1 = os.times()
    cpu = {n: proc_cpu(p) - before[n] for n, p in watch}
    cpu["client"] = (ru1.children_user - ru0.children_user
                     + ru1.children_system - ru0.children_system)
    if dog and dog.overtime:
        raise Overtime("%s did not finish within %.0fs (--cmd-timeout); stopped"
                       % (" ".join(cmd), CMD_TIMEOUT), dt)
    if dog and dog.stalled:
        raise BenchError("%s HUNG: no progress for %.0fs (the daemon was killed)"
                         % (" ".join(cmd), STALL))
    if r.returncode != 0:
        err = r.stderr.decode(errors="replace")
        if len(err) > 1200:
            err = err[:800] + " [...] " + err[-400:]
        raise BenchError("%s exited %d: %s" % (" ".join(cmd), r.returncode, err))
    return dt, cpu


def tar_progress(args, cwd):
    """A progress probe for tar: the archive file's size (tar -c) or how far
    tar has read it (tar -x, via /proc/PID/fdinfo)."""
    if "-cf" in args:
        out = args[args.index("-cf") + 1]
        out = os.path.join(cwd or ".", out)
        return lambda: os.path.getsize(out) if os.path.exists(out) else -1
    archive = os.path.realpath(args[args.index("-xf") + 1])

    def pos():
        out = subprocess.run(["pgrep", "-x", "-P", str(os.getpid()), "tar"],
                             stdout=subprocess.PIPE).stdout.split()
        total = 0
        for pid in out:
            fddir = "/proc/%s/fd" % pid.decode()
            for fd in os.listdir(fddir):
                try:
                    if os.readlink(os.path.join(fddir, fd)) == archive:
                        with open("/proc/%s/fdinfo/%s" % (pid.decode(), fd)) as f:
                            total += int(f.readline().split()[1])
                except (OSError, ValueError, IndexError):
                    pass
        return total
    return pos


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def parse_size(s):
    s = s.strip().lower()
    mult = 1
    if s.endswith("k"):
        mult, s = 1000, s[:-1]
    elif s.endswith("m"):
        mult, s = 1000000, s[:-1]
    return int(float(s) * mult)


def fmt_s(x):
    if x is None:
        return "-"
    if x >= 100:
        return "%.0f s" % x
    if x >= 10:
        return "%.1f s" % x
    if x >= 1:
        return "%.2f s" % x
    return "%.3f s" % x


def fmt_r(x):
    if x is None:
        return "-"
    if x >= 100:
        return "%.0f×" % x
    if x >= 10:
        return "%.1f×" % x
    return "%.2f×" % x


# --------------------------------------------------------------------------
# the topology

class Topology:
    """A Vitess-shaped tree of about n keys under ONE root: R/global/...
    (Keyspace, VSchema, Shard, CellInfo, RoutingRules) and R/zone1/...
    (Tablet, ShardReplication, SrvKeyspace, SrvVSchema).  80 keyspaces x 32
    shards x 2 tablets per shard, in one cell, make 10,483 keys; the
    keyspace count scales with n."""

    SHARDS = 32
    TABLETS = 2

    def __init__(self, n, root):
        self.n_wanted = n
        self.root = root
        self.keyspaces = max(1, round(80 * n / 10000))
        g, ct = gen_topology.generate(
            cells=("zone1",), keyspaces=self.keyspaces, shards=self.SHARDS,
            tablets=self.TABLETS, with_cells=True, root=root + "/global",
            server="127.0.0.1:2379", special=False)
        self.kvs = gen_topology.flatten(root + "/global", g, ct)
        self.files = harness.expected_files(self.kvs, root)   # rel -> bytes
        dirs = set()
        for rel in self.files:
            parts = rel.split("/")
            for i in range(1, len(parts)):
                dirs.add("/".join(parts[:i]))
        self.dirs = dirs
        self.nkeys = len(self.kvs)
        self.value_bytes = sum(len(v) for v in self.kvs.values())
        self.data_bytes = sum(len(k.encode()) + len(v) for k, v in self.kvs.items())
        self.tar_entries = 1 + len(self.dirs) + len(self.files)   # "./" too
        self.znodes = 1 + len(self.dirs) + len(self.files)        # the root too
        self.tablets = sum(1 for k in self.kvs if k.endswith("/Tablet"))
        self.shards = sum(1 for k in self.kvs if k.endswith("/Shard"))

    def rekey(self, newroot):
        """{full key: value} of the same tree under another root."""
        n = len(self.root)
        return {newroot + k[n:]: v for k, v in self.kvs.items()}

    def znode_list(self, root):
        """[(path, data)] of every znode of the tree under root, parents
        first (the root itself first)."""
        out = [(root, b"")]
        for d in sorted(self.dirs, key=lambda p: (p.count("/"), p)):
            out.append((root + "/" + d, b""))
        for rel in sorted(self.files):
            out.append((root + "/" + rel, self.files[rel]))
        return out

    def write_dir(self, path):
        made = set()
        for rel, v in sorted(self.files.items()):
            target = os.path.join(path, rel)
            d = os.path.dirname(target)
            if d not in made:
                os.makedirs(d, exist_ok=True)
                made.add(d)
            with open(target, "wb") as f:
                f.write(v)


# --------------------------------------------------------------------------
# checking what was read or written

def check_archive(path, topo, full=False):
    """Raise BenchError unless the archive at path holds the tree: `tar -t`
    entry count, regular-file count and byte total (and, with full, every
    file's bytes)."""
    r = subprocess.run(["tar", "-tvf", path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise BenchError("tar -tvf %s: %s" % (path, r.stderr.decode()[-500:]))
    lines = r.stdout.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    nfiles = nbytes = 0
    for line in lines:
        if line[:1] == b"-":
            nfiles += 1
            nbytes += int(line.split()[2])
    problems = []
    if len(lines) != topo.tar_entries:
        problems.append("%d entries (tar -t | wc -l), expected %d"
                        % (len(lines), topo.tar_entries))
    if nfiles != len(topo.files):
        problems.append("%d files, expected %d" % (nfiles, len(topo.files)))
    if nbytes != topo.value_bytes:
        problems.append("%d bytes of values, expected %d" % (nbytes, topo.value_bytes))
    if not problems and full:
        seen = 0
        with tarfile.open(path, "r|") as tf:
            for m in tf:
                if not m.isreg():
                    continue
                rel = os.path.normpath(m.name)
                data = tf.extractfile(m).read()
                exp = topo.files.get(rel)
                if exp is None:
                    problems.append("unexpected file %s" % rel)
                elif exp != data:
                    problems.append("wrong bytes in %s" % rel)
                seen += 1
                if len(problems) > 5:
                    break
        if not problems and seen != len(topo.files):
            problems.append("%d files read, expected %d" % (seen, len(topo.files)))
    if problems:
        raise BenchError("archive %s does not hold the tree: %s"
                         % (os.path.basename(path), "; ".join(problems[:6])))


def etcdctl(endpoint, *args):
    env = dict(os.environ, ETCDCTL_API="3")
    return ["etcdctl", "--endpoints=" + endpoint] + list(args), env


def etcd_snapshot(endpoint, prefix, outpath):
    """{key: value} under prefix, via etcdctl -w json into outpath."""
    import base64
    cmd, env = etcdctl(endpoint, "get", "--prefix", prefix, "-w", "json")
    with open(outpath, "wb") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.PIPE, env=env)
    if r.returncode != 0:
        raise BenchError("etcdctl get: %s" % r.stderr.decode()[-500:])
    with open(outpath, "rb") as f:
        doc = json.load(f)
    os.unlink(outpath)
    out = {}
    for kv in doc.get("kvs") or []:
        out[base64.b64decode(kv["key"]).decode("utf-8", "surrogateescape")] = \
            base64.b64decode(kv.get("value", ""))
    return out, int(doc.get("count", 0))


def compare_kvs(got, want, what):
    if got == want:
        return
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    wrong = [k for k in want if k in got and got[k] != want[k]]
    raise BenchError("%s: %d keys, expected %d; %d missing (%s), %d extra (%s), "
                     "%d wrong values (%s)"
                     % (what, len(got), len(want), len(missing), missing[:3],
                        len(extra), extra[:3], len(wrong), wrong[:3]))


# ZooKeeper bulk helpers (pipelined; used for loading and checking only,
# never for a timed reference)

def zk_create_all(zk, znodes, chunk=1000):
    """Create [(path, data)] in multi transactions of `chunk` creates
    (parents before children: sorted paths)."""
    items = sorted(znodes)
    for i in range(0, len(items), chunk):
        tx = zk.transaction()
        for p, d in items[i:i + chunk]:
            tx.create(p, d)
        for r in tx.commit():
            if isinstance(r, Exception):
                raise BenchError("loading ZooKeeper: %r" % (r,))


def zk_snapshot(zk, root, chunk=2000):
    """{path: data} of root and every znode below it, pipelined."""
    from kazoo.exceptions import NoNodeError
    out = {}
    level = [root]
    while level:
        nxt = []
        for i in range(0, len(level), chunk):
            part = level[i:i + chunk]
            futs = [(p, zk.get_async(p), zk.get_children_async(p)) for p in part]
            for p, fd, fc in futs:
                try:
                    out[p] = fd.get()[0] or b""
                    nxt.extend(p + "/" + c for c in fc.get())
                except NoNodeError:
                    pass
        level = nxt
    return out


def zk_delete_tree(zk, root, snap=None, chunk=1000):
    """Delete root and everything below (children first), in multi
    transactions."""
    if snap is None:
        snap = zk_snapshot(zk, root)
    paths = sorted(snap, reverse=True)
    for i in range(0, len(paths), chunk):
        tx = zk.transaction()
        for p in paths[i:i + chunk]:
            tx.delete(p)
        tx.commit()


def zk_client(address):
    """A connected kazoo client.  ZooKeeper answers `ruok` before it takes
    sessions, so the first connects may drop (kazoo retries; its warnings
    are silenced).  zk.drops counts connection state changes after that:
    the timed kazoo references fail if it moves while they run."""
    import logging
    from kazoo.client import KazooClient
    logging.getLogger("kazoo.client").setLevel(logging.ERROR)
    zk = KazooClient(hosts=address, timeout=30)
    zk.start(timeout=30)
    drops = []
    zk.add_listener(lambda state: drops.append(state))
    zk.drops = drops
    return zk


# --------------------------------------------------------------------------
# mounts

class TimedMount(Mount):
    """harness.Mount that times its start finely (polls every 2 ms)."""

    def tar(self, args, **kw):
        """run_timed(["tar"] + args); on failure, the daemon's log joins the
        error."""
        kw.setdefault("progress", tar_progress(args, kw.get("cwd")))
        kw.setdefault("on_stall", lambda: self.proc.kill())
        try:
            return run_timed(["tar"] + args, **kw)
        except BenchError as e:
            msg = "%s\n--- topofs log (tail):\n%s" % (e, self.log()[-1500:])
            if isinstance(e, Overtime):
                raise Overtime(msg, e.seconds)
            raise BenchError(msg)

    def start(self, timeout=60):
        log_ = open(self.logpath, "wb")
        self.cmd = [self.bin, "-f"] + self.args + [self.mnt]
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, stdout=log_, stderr=log_,
                                     stdin=subprocess.DEVNULL)
        log_.close()
        harness._live_mounts.append(self)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if is_mounted(self.mnt):
                self.mount_time = time.perf_counter() - t0
                return self
            if self.proc.poll() is not None:
                out = self.log()
                self.cleanup()
                raise MountError("topofs exited with %s before mounting: %s\n%s"
                                 % (self.proc.returncode, " ".join(self.cmd), out))
            time.sleep(0.002)
        out = self.log()
        self.force_stop()
        raise MountError("topofs did not mount within %ss\n%s" % (timeout, out))

    def vmhwm(self):
        return proc_status_kb(self.proc.pid, "VmHWM")


class SquashMount:
    """squashfuse_ll serving image; with logpath, in debug mode (-d), its
    libfuse request log written there."""

    def __init__(self, image, logpath=None):
        self.image = image
        self.logpath = logpath
        self.mnt = make_tempdir("topofs-bench-sqfs-")
        self.proc = None

    def start(self, timeout=30):
        log = open(self.logpath, "wb") if self.logpath else None
        try:
            self.proc = subprocess.Popen(
                ["squashfuse_ll", "-d" if log else "-f", self.image, self.mnt],
                stdin=subprocess.DEVNULL, stdout=log or subprocess.DEVNULL,
                stderr=log or subprocess.PIPE)
        finally:
            if log:
                log.close()
        _procs.append((self.proc, self.mnt))
        deadline = time.time() + timeout
        while time.time() < deadline:
            if is_mounted(self.mnt):
                return self
            if self.proc.poll() is not None:
                raise BenchError("squashfuse_ll exited: %s" % self.output()[-500:])
            time.sleep(0.002)
        raise BenchError("squashfuse_ll did not mount")

    def output(self):
        if not self.logpath:
            return self.proc.stderr.read().decode(errors="replace")
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if is_mounted(self.mnt):
            subprocess.run([FUSERMOUNT, "-u", self.mnt], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        try:
            if self.proc:
                self.proc.wait(10)
        except subprocess.TimeoutExpired:
            force_unmount(self.mnt)
            stop_pid(self.proc, 5)
        _procs[:] = [x for x in _procs if x[0] is not self.proc]
        remove_tempdir(self.mnt)


# --------------------------------------------------------------------------
# the benchmark

class Bench:
    def __init__(self, args):
        self.args = args
        self.runs = args.runs
        self.work = make_tempdir("topofs-bench-")
        self.results = {}    # size label -> dict
        self.failures = []
        self.profile = {}
        # our own copy of the binary: others may rebuild build/ meanwhile
        self.bin = os.path.join(self.work, "topofs")
        shutil.copy2(args.bin, self.bin)
        self.bin_info = describe_binary(args.bin)

    def path(self, name):
        return os.path.join(self.work, name)

    def more_runs(self, res, key, i):
        """After run i (0-based) of measurement `key`: run again?  A run that
        took longer than --max-repeat seconds is not repeated (the report
        shows how many runs each median is of)."""
        if i + 1 >= self.runs:
            return False
        last = res["m"].get(key, [None])[-1]
        last = res.get("actual", {}).get(key, last)   # unscaled (--seq-limit)
        if last is not None and last > self.args.max_repeat:
            note = ("%s: %d run(s), one run took %s > --max-repeat %gs"
                    % (key, i + 1, fmt_s(last), self.args.max_repeat))
            res.setdefault("notes", []).append(note)
            log("  " + note)
            return False
        return True

    # -- measurement bookkeeping
    def record(self, res, name, value, unit="s"):
        res.setdefault("m", {}).setdefault(name, []).append(value)

    def lower_bound(self, res, name, e):
        """Record an Overtime's time as a lower bound ("> N s")."""
        self.record(res, name, e.seconds)
        res.setdefault("lower", []).append(name)

    def guard(self, res, what, fn, *a):
        """Run one group of measurements; a failure is recorded, not fatal."""
        try:
            fn(*a)
        except KeyboardInterrupt:
            raise
        except Exception as e:
            msg = "%s: %s" % (what, e)
            log("FAILED " + msg)
            if not isinstance(e, (BenchError, MountError)):
                traceback.print_exc()
            res.setdefault("failed", []).append(msg)
            self.failures.append("%s %s" % (res["label"], msg))

    # -- tar through a mount, cold and warm
    def tar_cold_warm(self, res, name, mount_factory, watch_extra=(), check_full=True):
        for i in range(self.runs):
            if i and not self.more_runs(res, name + ".cold", i - 1):
                break
            m = mount_factory()
            m.start()
            try:
                if hasattr(m, "mount_time"):
                    self.record(res, name + ".mount", m.mount_time)
                watch = [("daemon", m.proc.pid)] + list(watch_extra)
                outs = []
                for phase in ("cold", "warm"):
                    out = self.path("%s-%s-%d.tar" % (name, phase, i))
                    tar = getattr(m, "tar", lambda a, **kw: run_timed(["tar"] + a, **kw))
                    try:
                        dt, cpu = tar(["-cf", out, "."], cwd=m.mnt, watch=watch)
                    except Overtime as e:
                        self.lower_bound(res, "%s.%s" % (name, phase), e)
                        if os.path.exists(out):
                            os.unlink(out)
                        raise
                    self.record(res, "%s.%s" % (name, phase), dt)
                    for k, v in cpu.items():
                        self.record(res, "%s.%s.cpu.%s" % (name, phase, k), v)
                    outs.append(out)
                if hasattr(m, "vmhwm"):
                    self.record(res, name + ".vmhwm_kb", m.vmhwm())
                    self.record(res, name + ".vmrss_kb",
                                proc_status_kb(m.proc.pid, "VmRSS"))
            finally:
                if isinstance(m, SquashMount):
                    m.stop()
                else:
                    m.unmount()
            for j, out in enumerate(outs):
                check_archive(out, res["topo"], full=(check_full and i == 0))
                os.unlink(out)
            log("  %s run %d: cold %s, warm %s" % (
                name, i + 1, fmt_s(res["m"][name + ".cold"][-1]),
                fmt_s(res["m"][name + ".warm"][-1])))

    # -- references that need no store
    def local_refs(self, res):
        topo = res["topo"]
        tree = self.path("tree-" + res["label"])
        self.tree = tree
        t0 = time.perf_counter()
        topo.write_dir(tree)
        log("  wrote the tree to tmpfs (%.1fs)" % (time.perf_counter() - t0))
        self.ref_tar = self.path("ref-%s.tar" % res["label"])
        run_timed(["tar", "-cf", self.ref_tar, "."], cwd=tree)
        check_archive(self.ref_tar, topo, full=True)
        for i in range(self.runs):
            out = self.path("tmpfs-%d.tar" % i)
            dt, cpu = run_timed(["tar", "-cf", out, "."], cwd=tree)
            self.record(res, "tmpfs.tar", dt)
            check_archive(out, topo)
            os.unlink(out)
        log("  tmpfs tar: %s" % fmt_s(median(res["m"]["tmpfs.tar"])))
        self.image = self.path("tree-%s.sqfs" % res["label"])
        subprocess.run(["mksquashfs", tree, self.image, "-noappend", "-quiet",
                        "-no-progress"], check=True, stdout=subprocess.DEVNULL)
        self.tar_cold_warm(res, "squashfuse", lambda: SquashMount(self.image),
                           check_full=False)

    # -- etcd
    def etcd_phase(self, res):
        topo = res["topo"]
        srv = EtcdServer().start()
        try:
            t0 = time.perf_counter()
            gen_topology.etcd_load(srv.endpoint, topo.kvs)
            log("  etcd: loaded %d keys (%.1fs, transactions of 100)"
                % (topo.nkeys, time.perf_counter() - t0))
            got, _ = etcd_snapshot(srv.endpoint, topo.root + "/", self.path("snap.json"))
            compare_kvs(got, topo.kvs, "etcd after loading")
            epid = srv.proc.pid
            self.guard(res, "etcd tar", self.tar_cold_warm, res, "etcd",
                       lambda: TimedMount(srv.topofs_args(topo.root), bin=self.bin),
                       [("store", epid)])
            # a pinned revision, which the kernel may cache without limit
            self.guard(res, "etcd snapshot tar", self.tar_cold_warm, res, "etcdsnap",
                       lambda: TimedMount(srv.topofs_args(topo.root) + ["-o", "snapshot"],
                                          bin=self.bin),
                       [("store", epid)])
            self.guard(res, "etcdctl get", self.etcdctl_get, res, srv)
            self.guard(res, "etcd restore", self.etcd_restore, res, srv)
            self.guard(res, "etcd restore -o writeback", self.etcd_restore, res,
                       srv, True)
            self.guard(res, "etcd sequential puts", self.etcd_seq_puts, res, srv)
            if self.args.profile and res.get("profile"):
                self.guard(res, "etcd profile", self.profile_daemon, res, "etcd",
                           srv.topofs_args(topo.root))
        finally:
            srv.stop()

    def etcdctl_get(self, res, srv):
        topo = res["topo"]
        cmd, env = etcdctl(srv.endpoint, "get", "--prefix", topo.root + "/", "-w", "json")
        for i in range(self.runs):
            out = self.path("etcdctl.json")
            with open(out, "wb") as f:
                t0 = time.perf_counter()
                r = subprocess.run(cmd, stdout=f, stderr=subprocess.PIPE, env=env)
                dt = time.perf_counter() - t0
            if r.returncode != 0:
                raise BenchError("etcdctl: %s" % r.stderr.decode()[-500:])
            with open(out, "rb") as f:
                doc = json.load(f)
            os.unlink(out)
            n = len(doc.get("kvs") or [])
            if n != topo.nkeys:
                raise BenchError("etcdctl returned %d keys, expected %d" % (n, topo.nkeys))
            self.record(res, "etcdctl.get", dt)
        log("  etcdctl get --prefix: %s" % fmt_s(median(res["m"]["etcdctl.get"])))

    def etcd_restore(self, res, srv, writeback=False):
        topo = res["topo"]
        backend = "etcd"
        name = "etcd.restore_wb" if writeback else "etcd.restore"
        opts = "create_root,writeback" if writeback else "create_root"
        for i in range(self.runs):
            if i and not self.more_runs(res, name, i - 1):
                break
            root2 = "%s-restore-%d" % (topo.root, i)
            m = TimedMount(srv.topofs_args(root2) + ["-o", opts], bin=self.bin)
            m.start()
            try:
                t0 = time.perf_counter()
                try:
                    dt_tar, cpu = m.tar(["-xf", self.ref_tar, "-C", m.mnt],
                                        watch=[("daemon", m.proc.pid),
                                               ("store", srv.proc.pid)])
                except Overtime as e:
                    self.lower_bound(res, name, e)
                    raise
                hwm = m.vmhwm()
                rc = m.unmount(timeout=600)
                dt = time.perf_counter() - t0
            finally:
                if m.proc is not None and m.proc.poll() is None:
                    m.unmount()
            if rc != 0:
                raise BenchError("topofs exited %s after the restore" % rc)
            got, _ = etcd_snapshot(srv.endpoint, root2 + "/", self.path("snap.json"))
            compare_kvs(got, topo.rekey(root2), "etcd restore through topofs")
            self.record(res, name, dt)
            self.record(res, name + ".tar", dt_tar)
            self.record(res, name + ".vmhwm_kb", hwm)
            for k, v in cpu.items():
                self.record(res, name + ".cpu." + k, v)
            srv.client().delete_prefix(root2 + "/")
            log("  %s run %d: %s (tar -x %s)" % (name, i + 1, fmt_s(dt), fmt_s(dt_tar)))

    def seq_slice(self, res, key, items):
        """The first --seq-limit operations of a sequential reference, and the
        factor that scales their time to all of them (a sequential client's
        time is the sum of its round trips)."""
        limit = self.args.seq_limit
        if limit and len(items) > limit:
            note = ("%s: timed over the first %d of %d operations, scaled ×%.2f "
                    "(--seq-limit)" % (key, limit, len(items), len(items) / limit))
            if note not in res.setdefault("notes", []):
                res["notes"].append(note)
                log("  " + note)
            return items[:limit], len(items) / limit
        return items, 1.0

    def etcd_seq_puts(self, res, srv):
        """The sequential reference: one put per key over one keep-alive HTTP
        connection to the v3 JSON gateway, waiting for each answer."""
        import base64
        topo = res["topo"]
        for i in range(self.runs):
            if i and not self.more_runs(res, "etcd.seqput", i - 1):
                break
            root2 = "%s-seqput-%d" % (topo.root, i)
            items, scale = self.seq_slice(res, "etcd.seqput",
                                          sorted(topo.rekey(root2).items()))
            bodies = [json.dumps({"key": base64.b64encode(k.encode()).decode(),
                                  "value": base64.b64encode(v).decode()}).encode()
                      for k, v in items]
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
            conn.connect()
            hdrs = {"Content-Type": "application/json"}
            t0 = time.perf_counter()
            for body in bodies:
                conn.request("POST", "/v3/kv/put", body, hdrs)
                r = conn.getresponse()
                data = r.read()
                if r.status != 200:
                    raise BenchError("put: HTTP %d %s" % (r.status, data[:200]))
            dt = (time.perf_counter() - t0) * scale
            conn.close()
            got, _ = etcd_snapshot(srv.endpoint, root2 + "/", self.path("snap.json"))
            compare_kvs(got, dict(items), "etcd sequential puts")
            res.setdefault("actual", {})["etcd.seqput"] = dt / scale
            self.record(res, "etcd.seqput", dt)
            srv.client().delete_prefix(root2 + "/")
            log("  etcd sequential puts run %d: %s" % (i + 1, fmt_s(dt)))

    # -- ZooKeeper
    def zk_phase(self, res):
        topo = res["topo"]
        srv = ZkServer().start()
        zk = None
        try:
            zk = zk_client(srv.address)
            zk.ensure_path(os.path.dirname(topo.root))
            t0 = time.perf_counter()
            zk_create_all(zk, topo.znode_list(topo.root))
            log("  zk: loaded %d znodes (%.1fs, multi transactions of 1000)"
                % (topo.znodes, time.perf_counter() - t0))
            # (checked by the archives of the topofs mounts, file by file)
            zpid = srv.proc.pid
            self.guard(res, "zk tar", self.tar_cold_warm, res, "zk",
                       lambda: TimedMount(srv.topofs_args(topo.root), bin=self.bin),
                       [("store", zpid)])
            self.guard(res, "kazoo dump", self.kazoo_dump, res, srv, zk)
            self.guard(res, "zk restore", self.zk_restore, res, srv, zk)
            self.guard(res, "zk restore -o writeback", self.zk_restore, res, srv,
                       zk, True)
            self.guard(res, "kazoo sequential creates", self.zk_seq_creates, res, srv, zk)
            if self.args.profile and res.get("profile"):
                self.guard(res, "zk profile", self.profile_daemon, res, "zk",
                           srv.topofs_args(topo.root))
        finally:
            if zk is not None:
                try:
                    zk.stop()
                    zk.close()
                except Exception:
                    pass
            srv.stop()

    def kazoo_dump(self, res, srv, zk):
        """The sequential reference: get + get_children for every znode, one
        call after the other, depth first (kazoo, already connected)."""
        topo = res["topo"]
        want = dict(topo.znode_list(topo.root))
        _, scale = self.seq_slice(res, "kazoo.dump", range(topo.znodes))
        limit = int(round(topo.znodes / scale))
        for i in range(self.runs):
            if i and not self.more_runs(res, "kazoo.dump", i - 1):
                break
            seen = []
            drops = len(zk.drops)
            t0 = time.perf_counter()
            stack = [topo.root]
            while stack and len(seen) < limit:
                p = stack.pop()
                data, _st = zk.get(p)
                children = zk.get_children(p)
                seen.append((p, data))
                stack.extend(p + "/" + c for c in children)
            dt = (time.perf_counter() - t0) * scale
            if len(zk.drops) != drops:
                raise BenchError("kazoo's connection changed state during the dump: %s"
                                 % zk.drops[drops:])
            got = dict(seen)
            if len(got) != limit or any(want.get(p) != (d or b"") for p, d in seen):
                raise BenchError("kazoo dump saw %d znodes (expected %d) or wrong data"
                                 % (len(got), limit))
            res.setdefault("actual", {})["kazoo.dump"] = dt / scale
            self.record(res, "kazoo.dump", dt)
        log("  kazoo sequential dump: %s" % fmt_s(median(res["m"]["kazoo.dump"])))

    def zk_restore(self, res, srv, zk, writeback=False):
        topo = res["topo"]
        backend = "zk"
        name = "zk.restore_wb" if writeback else "zk.restore"
        opts = "create_root,writeback" if writeback else "create_root"
        for i in range(self.runs):
            if i and not self.more_runs(res, name, i - 1):
                break
            root2 = "%s-restore-%d" % (topo.root, i)
            m = TimedMount(srv.topofs_args(root2) + ["-o", opts], bin=self.bin)
            m.start()
            try:
                t0 = time.perf_counter()
                try:
                    dt_tar, cpu = m.tar(["-xf", self.ref_tar, "-C", m.mnt],
                                        watch=[("daemon", m.proc.pid),
                                               ("store", srv.proc.pid)])
                except Overtime as e:
                    self.lower_bound(res, name, e)
                    raise
                hwm = m.vmhwm()
                rc = m.unmount(timeout=600)
                dt = time.perf_counter() - t0
            finally:
                if m.proc is not None and m.proc.poll() is None:
                    m.unmount()
            if rc != 0:
                raise BenchError("topofs exited %s after the restore" % rc)
            snap = zk_snapshot(zk, root2)
            compare_kvs(snap, dict(topo.znode_list(root2)), "zk restore through topofs")
            self.record(res, name, dt)
            self.record(res, name + ".tar", dt_tar)
            self.record(res, name + ".vmhwm_kb", hwm)
            for k, v in cpu.items():
                self.record(res, name + ".cpu." + k, v)
            zk_delete_tree(zk, root2, snap)
            log("  %s run %d: %s (tar -x %s)" % (name, i + 1, fmt_s(dt), fmt_s(dt_tar)))

    def zk_seq_creates(self, res, srv, zk):
        """The sequential reference: one kazoo create per znode (directories
        too, parents first), waiting for each answer."""
        topo = res["topo"]
        for i in range(self.runs):
            if i and not self.more_runs(res, "zk.seqcreate", i - 1):
                break
            root2 = "%s-seqcreate-%d" % (topo.root, i)
            znodes, scale = self.seq_slice(res, "zk.seqcreate",
                                           sorted(topo.znode_list(root2)))
            drops = len(zk.drops)
            t0 = time.perf_counter()
            for p, d in znodes:
                zk.create(p, d)
            dt = (time.perf_counter() - t0) * scale
            if len(zk.drops) != drops:
                raise BenchError("kazoo's connection changed state during the creates")
            snap = zk_snapshot(zk, root2)
            compare_kvs(snap, dict(znodes), "kazoo sequential creates")
            res.setdefault("actual", {})["zk.seqcreate"] = dt / scale
            self.record(res, "zk.seqcreate", dt)
            zk_delete_tree(zk, root2, snap)
            log("  kazoo sequential creates run %d: %s" % (i + 1, fmt_s(dt)))

    # -- where the time goes (not part of the timings)
    def profile_daemon(self, res, backend, args):
        """A fresh mount: cold tar, then a warm tar under `strace -c -f` of
        the daemon, then a cold tar of a second fresh mount under `perf
        record` (software cpu-clock) of the daemon."""
        out = self.path("profile.tar")
        prof = self.profile.setdefault(res["label"], {}).setdefault(backend, {})
        m = TimedMount(args, bin=self.bin)
        m.start()
        try:
            m.tar(["-cf", out, "."], cwd=m.mnt)
            if shutil.which("strace"):
                sfile = self.path("strace.txt")
                st = subprocess.Popen(["strace", "-c", "-f", "-o", sfile, "-p",
                                       str(m.proc.pid)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
                _procs.append((st, None))
                time.sleep(1.0)    # let strace attach to every thread
                dt, _ = m.tar(["-cf", out, "."], cwd=m.mnt)
                st.send_signal(signal.SIGINT)
                try:
                    st.wait(30)
                except subprocess.TimeoutExpired:
                    stop_pid(st)
                with open(sfile) as f:
                    prof["strace_warm"] = f.read()
                prof["strace_warm_tar_s"] = dt
        finally:
            m.unmount()
        if shutil.which("perf"):
            m = TimedMount(args, bin=self.bin)
            m.start()
            try:
                pdata = self.path("perf.data")
                pf = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock",
                                       "-F", "2000", "-g", "-o", pdata, "-p",
                                       str(m.proc.pid)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
                _procs.append((pf, None))
                time.sleep(1.0)
                dt, _ = m.tar(["-cf", out, "."], cwd=m.mnt)
                pf.send_signal(signal.SIGINT)
                try:
                    pf.wait(30)
                except subprocess.TimeoutExpired:
                    stop_pid(pf)
                def report(sort, limit):
                    r = subprocess.run(["perf", "report", "-i", pdata, "--no-children",
                                        "--stdio", "-g", "none", "--percent-limit",
                                        limit, "--sort", sort],
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                    return "\n".join(
                        l.rstrip() for l in r.stdout.decode(errors="replace").splitlines()
                        if l.strip() and not l.startswith("#"))[:6000]
                prof["perf_dso"] = report("dso", "0.5")
                prof["perf_cold"] = report("dso,symbol", "1")
                prof["perf_cold_tar_s"] = dt
            finally:
                m.unmount()
        if os.path.exists(out):
            os.unlink(out)

    # -- one size
    def run_size(self, label, n, profile):
        root = "/bench/s%s" % label
        topo = Topology(n, root)
        res = {"label": label, "topo": topo, "profile": profile, "m": {}}
        self.results[label] = res
        log("size %s: %d keys (%d shards, %d tablets), %d dirs, %.2f MB keys+values"
            % (label, topo.nkeys, topo.shards, topo.tablets, len(topo.dirs),
               topo.data_bytes / 1e6))
        t0 = time.perf_counter()
        self.guard(res, "local references", self.local_refs, res)
        if not hasattr(self, "ref_tar") or not os.path.exists(self.ref_tar):
            return
        self.guard(res, "etcd", self.etcd_phase, res)
        self.guard(res, "zk", self.zk_phase, res)
        res["elapsed"] = time.perf_counter() - t0
        shutil.rmtree(self.tree, ignore_errors=True)
        for f in (self.ref_tar, self.image):
            if os.path.exists(f):
                os.unlink(f)
        del self.ref_tar
        log("size %s done in %.0fs" % (label, res["elapsed"]))


def describe_binary(path):
    info = {"path": path}
    try:
        info["sha256"] = hashlib.sha256(open(path, "rb").read()).hexdigest()[:12]
        info["mtime"] = datetime.datetime.fromtimestamp(
            os.stat(path).st_mtime).strftime("%Y-%m-%d %H:%M:%S")
    except OSError:
        pass
    try:
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
                             ).stdout.decode().strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain",
                                "--untracked-files=no", "--", "fs", "backends",
                                "include"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL).stdout.decode().strip()
        info["git"] = rev + (" + uncommitted changes in fs/ backends/ include/"
                             if dirty else "")
    except OSError:
        pass
    return info


def main():
    ap = argparse.ArgumentParser(description="topofs benchmarks (see README.md)")
    ap.add_argument("--sizes", default="10k,100k",
                    help="topology sizes in keys, comma-separated (default 10k,100k)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"),
                    help="results directory (default tests/bench/results)")
    ap.add_argument("--runs", type=int, default=3,
                    help="runs per timing; the median is reported (default 3)")
    ap.add_argument("--bin", default=harness.topofs_bin(),
                    help="the topofs binary (default %(default)s)")
    ap.add_argument("--max-repeat", type=float, default=60,
                    help="a run longer than this many seconds is not repeated "
                         "(default %(default)s)")
    ap.add_argument("--seq-limit", type=int, default=25000,
                    help="time the sequential client references over at most this "
                         "many operations and scale linearly; 0: no limit "
                         "(default %(default)s)")
    ap.add_argument("--stall", type=float, default=120,
                    help="a tar through topofs that makes no progress for this many "
                         "seconds is a hang: the daemon is killed and the measurement "
                         "fails (default %(default)s)")
    ap.add_argument("--cmd-timeout", type=float, default=900,
                    help="a timed tar through topofs still running after this many "
                         "seconds is stopped and reported as a lower bound (\"> N s\"); "
                         "0: no limit (default %(default)s)")
    ap.add_argument("--no-profile", dest="profile", action="store_false",
                    help="skip strace/perf of the daemon (done on the smallest size)")
    a = ap.parse_args()
    if os.geteuid() != 0 and not os.access("/dev/fuse", os.R_OK | os.W_OK):
        sys.exit("bench: needs /dev/fuse (run as root)")
    for tool in ("etcd", "etcdctl", "java", "squashfuse_ll", "mksquashfs", "gnuplot",
                 "tar"):
        if not shutil.which(tool):
            sys.exit("bench: %s not found (apt-get install etcd-server etcd-client "
                     "zookeeper python3-kazoo squashfuse squashfs-tools gnuplot-nox)"
                     % tool)
    if not os.path.exists(a.bin):
        sys.exit("bench: no topofs binary at %s (build it first)" % a.bin)
    global STALL, CMD_TIMEOUT
    STALL = a.stall
    CMD_TIMEOUT = a.cmd_timeout
    sizes = [(s.strip(), parse_size(s)) for s in a.sizes.split(",") if s.strip()]
    sizes.sort(key=lambda x: x[1])
    a.cmdline = "tests/bench/run " + " ".join(sys.argv[1:])
    started = time.time()
    load0 = open("/proc/loadavg").read().split()[:3]
    b = Bench(a)
    log("topofs %s (%s), temp dir %s" % (a.bin, b.bin_info.get("git", "?"), b.work))
    interrupted = False
    try:
        for i, (label, n) in enumerate(sizes):
            b.run_size(label, n, profile=(i == 0))
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted; cleaning up")
    finally:
        load1 = open("/proc/loadavg").read().split()[:3]
        meta = {"cmdline": a.cmdline, "started": started, "elapsed": time.time() - started,
                "load_start": load0, "load_end": load1, "binary": b.bin_info,
                "interrupted": interrupted, "runs": a.runs,
                "max_repeat": a.max_repeat, "seq_limit": a.seq_limit,
                "cmd_timeout": a.cmd_timeout}
        if b.results:
            import report
            os.makedirs(a.out, exist_ok=True)
            report.write(a.out, b.results, b.profile, b.failures, meta)
            log("results in %s" % a.out)
        remove_tempdir(b.work)
    if interrupted:
        sys.exit(130)
    if b.failures:
        log("%d measurement group(s) FAILED:\n  %s" % (len(b.failures),
                                                      "\n  ".join(b.failures)))
        sys.exit(1)


if __name__ == "__main__":
    main()
