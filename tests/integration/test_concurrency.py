#!/usr/bin/python3
"""Concurrency (issue 6): several processes on one mount.

- test_rmw_same_file: 4 writer processes each do N read-modify-writes of
  one counter file (open, read, +1, rewrite, close; an EIO from close - a
  conflict - means re-read and retry).  No lost update: the final value in
  the store == the number of successful closes == 4 * N.
- test_rmw_own_files: 4 writers, each on its own file: no EIO at all, each
  file ends at its writer's final value, and the store saw exactly one write
  per close (etcd: key version; ZooKeeper: data version).
- test_stress: for STRESS_SECONDS (default 20, env TOPOFS_STRESS_SECONDS)
  two writers (own files + a shared counter), a renamer (files between
  directories, a directory back and forth), a creator/deleter and two
  readers (walk + cat everything, checking every value is one some writer
  wrote) across a small tree.  Afterwards: topofs is still mounted and
  serving (exits 0 on unmount, no sanitizer report - the harness checks),
  no reader saw a corrupt value, and the store holds exactly what the
  successful operations did.

Workers are separate processes (this file with --worker KIND ARGS), so the
FUSE requests really are concurrent."""

import errno
import json
import os
import random
import shutil
import subprocess
import sys
import time

N_RMW = 25          # increments per writer, same file
N_OWN = 30          # increments per writer, own file
STRESS_SECONDS = float(os.environ.get("TOPOFS_STRESS_SECONDS", "20"))


# --------------------------------------------------------------------------
# workers (run in child processes; no harness import)

def _errname(e):
    return errno.errorcode.get(getattr(e, "errno", None), type(e).__name__)


def rmw_once(path):
    """One read-modify-write of a decimal counter: (new value, None) or
    (None, OSError).  The close is where the store write happens."""
    fd = os.open(path, os.O_RDWR)
    try:
        cur = b""
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            cur += chunk
        val = int(cur) + 1
        data = str(val).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return val


def w_rmw(path, n, max_tries, start_at):
    """n successful increments (retrying after EIO).  Reports ok, eio,
    values written, other errors."""
    while time.time() < start_at:
        time.sleep(0.005)
    out = {"ok": 0, "eio": 0, "values": [], "errors": []}
    tries = 0
    while out["ok"] < n and tries < max_tries:
        tries += 1
        try:
            v = rmw_once(path)
        except OSError as e:
            if e.errno == errno.EIO:
                out["eio"] += 1
                continue
            out["errors"].append("%s: %s" % (_errname(e), e))
            if len(out["errors"]) > 20:
                break
            continue
        except ValueError as e:      # a counter that is not a number
            out["errors"].append("read a corrupt counter: %s" % e)
            if len(out["errors"]) > 20:
                break
            continue
        out["ok"] += 1
        out["values"].append(v)
    return out


def st_writer(mnt, k, files, counter, deadline):
    """Stress writer k: rewrite own files (value 'w<k>-<j>-<seq>'), and
    increment the shared counter every 5th step."""
    last, errors, inc_ok, inc_eio, seq = {}, [], 0, 0, 0
    rnd = random.Random(k)
    while time.time() < deadline:
        seq += 1
        if seq % 5 == 0:
            try:
                rmw_once(os.path.join(mnt, counter))
                inc_ok += 1
            except OSError as e:
                if e.errno == errno.EIO:
                    inc_eio += 1
                else:
                    errors.append("counter: %s" % _errname(e))
            except ValueError as e:
                errors.append("read a corrupt counter: %s" % e)
            continue
        rel = rnd.choice(files)
        j = rel.rsplit("_", 1)[1]
        val = ("w%d-%s-%d\n" % (k, j, seq)).encode() + b"x" * rnd.randrange(200)
        try:
            with open(os.path.join(mnt, rel), "wb") as f:
                f.write(val)
            last[rel] = val.decode()
        except OSError as e:
            errors.append("%s: %s" % (rel, _errname(e)))
    return {"last": last, "errors": errors, "inc_ok": inc_ok, "inc_eio": inc_eio,
            "steps": seq}


def st_renamer(mnt, files, dirs, rdir_names, deadline):
    """Move own files between directories; rename one directory between
    two names.  Tracks where everything is after each success."""
    where = dict(files)          # name -> dir
    rdir = rdir_names[0]
    rnd = random.Random(7)
    errors, moves, dmoves, step = [], 0, 0, 0
    while time.time() < deadline:
        step += 1
        if step % 4 == 0:
            new = rdir_names[1] if rdir == rdir_names[0] else rdir_names[0]
            try:
                os.rename(os.path.join(mnt, rdir), os.path.join(mnt, new))
                rdir = new
                dmoves += 1
            except OSError as e:
                errors.append("dir %s -> %s: %s" % (rdir, new, _errname(e)))
            continue
        name = rnd.choice(sorted(where))
        dst = rnd.choice([d for d in dirs if d != where[name]])
        try:
            os.rename(os.path.join(mnt, where[name], name),
                      os.path.join(mnt, dst, name))
            where[name] = dst
            moves += 1
        except OSError as e:
            errors.append("%s/%s -> %s: %s" % (where[name], name, dst, _errname(e)))
    return {"where": where, "rdir": rdir, "errors": errors, "moves": moves,
            "dmoves": dmoves}


def st_creator(mnt, d, deadline):
    """Create d/c<n> ('c-<n>'), delete d/c<n-2>: tracks what exists."""
    exists, errors, n = set(), [], 0
    while time.time() < deadline:
        n += 1
        name = "c%d" % n
        try:
            fd = os.open(os.path.join(mnt, d, name),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, ("c-%d\n" % n).encode())
            finally:
                os.close(fd)
            exists.add(name)
        except OSError as e:
            errors.append("create %s: %s" % (name, _errname(e)))
        old = "c%d" % (n - 2)
        if old in exists:
            try:
                os.unlink(os.path.join(mnt, d, old))
                exists.discard(old)
            except OSError as e:
                errors.append("unlink %s: %s" % (old, _errname(e)))
    return {"exists": sorted(exists), "errors": errors, "n": n}


def valid_value(rel, data):
    """Whether data is a value some stress worker could have written at
    rel (None: a name no worker makes)."""
    base = rel.rsplit("/", 1)[-1]
    s = data.decode("utf-8", "replace")
    if base.startswith("w") and "_" in base:          # w<k>_<j>
        k, j = base[1:].split("_", 1)
        return s.startswith("w%s-%s-" % (k, j)) and s.rstrip("x").endswith("\n")
    if base.startswith("r") and base[1:].isdigit():
        return s == "r-%s\n" % base[1:]
    if base.startswith("c") and base[1:].isdigit():
        return s == "c-%s\n" % base[1:]
    if base == "counter":
        return s.isdigit()
    if base.startswith("y") and base[1:].isdigit():    # files in the renamed dir
        return s == "y-%s\n" % base[1:]
    if base == "keep":
        return s == "keep\n"
    return None


def st_reader(mnt, deadline):
    """Walk and read everything; every value must be a valid one.  ENOENT
    (a rename or delete between readdir and open) is expected."""
    corrupt, errors, reads, walks = [], [], 0, 0
    while time.time() < deadline:
        walks += 1
        for dp, dn, fn in os.walk(mnt, onerror=lambda e: errors.append(
                "walk: %s" % _errname(e)) if e.errno != errno.ENOENT else None):
            for f in fn:
                p = os.path.join(dp, f)
                rel = os.path.relpath(p, mnt)
                try:
                    os.lstat(p)
                    with open(p, "rb") as fh:
                        data = fh.read()
                    reads += 1
                except OSError as e:
                    if e.errno != errno.ENOENT:
                        errors.append("%s: %s" % (rel, _errname(e)))
                    continue
                ok = valid_value(rel, data)
                if ok is None:
                    corrupt.append("unknown file %s" % rel)
                elif not ok:
                    corrupt.append("%s = %r" % (rel, data[:80]))
    return {"corrupt": corrupt[:50], "errors": errors[:50], "reads": reads,
            "walks": walks}


WORKERS = {"rmw": w_rmw, "writer": st_writer, "renamer": st_renamer,
           "creator": st_creator, "reader": st_reader}

if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "--worker":
    _res = WORKERS[sys.argv[2]](*json.loads(sys.argv[3]))
    sys.stdout.write(json.dumps(_res))
    sys.exit(0)


# --------------------------------------------------------------------------
# the tests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def spawn(kind, *args):
    return subprocess.Popen(["/usr/bin/python3", os.path.abspath(__file__),
                             "--worker", kind, json.dumps(args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)


class ConcurrencyTest(h.TopofsTestCase):

    def _end_worker(self, p):
        """Cleanup: SIGKILL a worker still running (by pid); if it stays
        (blocked in the mount), kill topofs by pid to abort the mount."""
        if p.poll() is None:
            p.kill()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            for m in self.mounts:
                m.force_stop()
            p.wait(10)
        for f in (p.stdout, p.stderr):
            if f:
                f.close()

    def hang_report(self, procs):
        """Where the hung workers and topofs's threads wait (/proc)."""
        out = []
        pids = [("worker " + p.args[3], p.pid) for p in procs if p.poll() is None]
        pids += [("topofs", m.proc.pid) for m in self.mounts
                 if m.proc is not None and m.proc.poll() is None]
        for what, pid in pids:
            try:
                tids = sorted(os.listdir("/proc/%d/task" % pid), key=int)
            except OSError:
                continue
            for tid in tids:
                base = "/proc/%d/task/%s/" % (pid, tid)
                try:
                    with open(base + "wchan") as f:
                        wchan = f.read().strip()
                    with open(base + "stat") as f:
                        state = f.read().rsplit(")", 1)[1].split()[0]
                    with open(base + "stack") as f:
                        stack = " <- ".join(l.split()[-1] for l in f.read().splitlines()[:6])
                except OSError:
                    wchan, state, stack = "?", "?", ""
                out.append("%s pid %d tid %s: state %s wchan %s  %s"
                           % (what, pid, tid, state, wchan, stack))
        gdb = shutil.which("gdb")
        for what, pid in pids:
            if what == "topofs" and gdb:
                try:
                    r = subprocess.run([gdb, "-p", str(pid), "-batch", "-nx",
                                        "-ex", "thread apply all bt 12"],
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, timeout=60)
                    out.append("--- gdb, topofs pid %d:\n%s" % (
                        pid, "\n".join(l for l in r.stdout.decode(
                            "utf-8", "replace").splitlines()
                            if l.startswith(("#", "Thread")))))
                except (OSError, subprocess.TimeoutExpired):
                    pass
        return "\n".join(out)

    def run_workers(self, procs, timeout):
        """Wait for every worker (killing them by pid at the end of the
        test, whatever happens); their JSON results."""
        for p in procs:
            self.addCleanup(self._end_worker, p)
        out = []
        deadline = time.time() + timeout
        for p in procs:
            try:
                so, se = p.communicate(timeout=max(1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                self.fail_with_log("a worker hung (pid %d, args %s); %d of %d still "
                                   "running:\n%s" % (
                                       p.pid, p.args[3:],
                                       len([q for q in procs if q.poll() is None]),
                                       len(procs), self.hang_report(procs)))
            if p.returncode != 0:
                self.fail_with_log("worker %s failed (%s):\n%s"
                                   % (p.args[3:], p.returncode,
                                      se.decode("utf-8", "replace")[-3000:]))
            out.append(json.loads(so))
        return out

    def test_rmw_same_file(self):
        self.load({"counter": b"0"})
        self.mount()
        start = time.time() + 0.5
        procs = [spawn("rmw", self.p("counter"), N_RMW, 60 * N_RMW, start)
                 for _ in range(4)]
        res = self.run_workers(procs, 90)
        errors = [e for r in res for e in r["errors"]]
        ok = sum(r["ok"] for r in res)
        eio = sum(r["eio"] for r in res)
        final = self.store.get(self.key("counter"))
        meta = self.node_meta("counter")
        sys.stderr.write("\n  [rmw same file] %d successful closes, %d EIO (conflicts), "
                         "%d other errors; store value %r\n" % (ok, eio, len(errors), final))
        problems = []
        if final != str(ok).encode():
            problems.append("LOST UPDATE: %d successful closes, store value %r" % (ok, final))
        # each successful close wrote a distinct value (no two writers
        # both succeeded from the same read)
        vals = sorted(v for r in res for v in r["values"])
        if vals != list(range(1, ok + 1)):
            problems.append("successful closes wrote %s, not 1..%d" % (vals[:40], ok))
        # one store write per successful close, none for the failed ones
        if meta.version != ok + (0 if self.is_zk else 1):
            problems.append("store version %d after %d successful closes"
                            % (meta.version, ok))
        if errors:
            problems.append("%d errors other than EIO (a writer reads the counter "
                            "through the mount), e.g. %s" % (len(errors), errors[:3]))
        if ok != 4 * N_RMW:
            problems.append("only %d of %d increments succeeded" % (ok, 4 * N_RMW))
        if problems:
            self.fail_with_log("\n".join(problems))
        self.assertEqual(h.read_file(self.p("counter")), final)

    def test_rmw_own_files(self):
        self.load({"w%d" % i: b"0" for i in range(4)})
        self.mount()
        before = {i: self.node_meta("w%d" % i) for i in range(4)}
        start = time.time() + 0.5
        procs = [spawn("rmw", self.p("w%d" % i), N_OWN, N_OWN, start)
                 for i in range(4)]
        res = self.run_workers(procs, 90)
        for i, r in enumerate(res):
            self.assertEqual(r["errors"], [], "writer %d: errors" % i)
            self.assertEqual(r["eio"], 0, "writer %d: EIO on its own file" % i)
            self.assertEqual(r["ok"], N_OWN)
            self.assertEqual(r["values"], list(range(1, N_OWN + 1)))
            meta = self.node_meta("w%d" % i)
            self.assertEqual(meta.value, str(N_OWN).encode(), "w%d" % i)
            self.assertEqual(meta.version, before[i].version + N_OWN,
                             "w%d: store writes != closes" % i)
            self.assertEqual(meta.create_id, before[i].create_id)

    def test_stress(self):
        dirs = ["d0", "d1", "d2", "d3"]
        wfiles = {k: ["%s/w%d_%d" % (dirs[j % 4], k, j) for j in range(6)]
                  for k in range(2)}
        rfiles = {"r%d" % j: dirs[(j + 1) % 4] for j in range(6)}
        kvs = {"counter": b"0", "tmp/keep": b"keep\n"}
        for k, fl in wfiles.items():
            for rel in fl:
                kvs[rel] = ("w%d-%s-0\n" % (k, rel.rsplit("_", 1)[1])).encode()
        for name, d in rfiles.items():
            kvs["%s/%s" % (d, name)] = ("r-%s\n" % name[1:]).encode()
        for j in range(3):
            kvs["rd/xa/y%d" % j] = ("y-%d\n" % j).encode()
        self.load(kvs)
        self.mount()
        mnt = self.p()
        deadline = time.time() + 0.5 + STRESS_SECONDS
        procs = [spawn("writer", mnt, 0, wfiles[0], "counter", deadline),
                 spawn("writer", mnt, 1, wfiles[1], "counter", deadline),
                 spawn("renamer", mnt, rfiles, dirs, ["rd/xa", "rd/xb"], deadline),
                 spawn("creator", mnt, "tmp", deadline),
                 spawn("reader", mnt, deadline),
                 spawn("reader", mnt, deadline)]
        res = self.run_workers(procs, STRESS_SECONDS + 30)
        w0, w1, ren, cre, r0, r1 = res
        sys.stderr.write(
            "\n  [stress %.0fs] writers %d+%d steps, counter +%d (%d EIO), "
            "renames %d files %d dirs, creator %d, reads %d+%d in %d+%d walks\n"
            % (STRESS_SECONDS, w0["steps"], w1["steps"], w0["inc_ok"] + w1["inc_ok"],
               w0["inc_eio"] + w1["inc_eio"], ren["moves"], ren["dmoves"], cre["n"],
               r0["reads"], r1["reads"], r0["walks"], r1["walks"]))
        problems = []
        self.assertTrue(h.is_mounted(mnt), "topofs is no longer mounted")
        self.assertIsNone(self.m.proc.poll(), "topofs died:\n" + self.m.log())
        for name, r in (("writer0", w0), ("writer1", w1), ("renamer", ren),
                        ("creator", cre), ("reader0", r0), ("reader1", r1)):
            if r["errors"]:
                problems.append("%s errors: %s" % (name, r["errors"][:10]))
        for name, r in (("reader0", r0), ("reader1", r1)):
            if r["corrupt"]:
                problems.append("%s saw corrupt/unknown values: %s"
                                % (name, r["corrupt"][:10]))
        # the store: exactly what the successful operations did
        want = {}
        for k, w in ((0, w0), (1, w1)):
            for rel in wfiles[k]:
                want[self.key(rel)] = (w["last"].get(rel) or kvs[rel].decode()).encode()
        want[self.key("counter")] = str(w0["inc_ok"] + w1["inc_ok"]).encode()
        for name, d in ren["where"].items():
            want[self.key("%s/%s" % (d, name))] = ("r-%s\n" % name[1:]).encode()
        for j in range(3):
            want[self.key("%s/y%d" % (ren["rdir"], j))] = ("y-%d\n" % j).encode()
        want[self.key("tmp/keep")] = b"keep\n"
        for name in cre["exists"]:
            want[self.key("tmp/" + name)] = ("c-%s\n" % name[1:]).encode()
        if self.is_zk:
            # parents are znodes too (empty data): compare files only
            got = self.expected_files()
            want = {k[len(self.prefix):]: v for k, v in want.items()}
        else:
            got = {k[len(self.prefix):]: v for k, v in self.snapshot().items()}
            want = {k[len(self.prefix):]: v for k, v in want.items()}
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        wrong = sorted(k for k in set(want) & set(got) if want[k] != got[k])
        if missing or extra or wrong:
            problems.append("store != successful operations: missing %s, extra %s, "
                            "wrong %s" % (missing[:10], extra[:10],
                                          [(k, got[k][:40], want[k][:40]) for k in wrong[:10]]))
        # and the mount agrees with the store
        files, _ = h.walk_files(mnt)
        if set(files) != set(got):
            problems.append("mount listing != store: only in mount %s, only in store %s"
                            % (sorted(set(files) - set(got))[:10],
                               sorted(set(got) - set(files))[:10]))
        if problems:
            self.fail_with_log("\n".join(problems))


if __name__ == "__main__":
    h.main()
