#!/usr/bin/python3
"""Open-file semantics under stress (SPEC 5: every open is its own buffer,
written at close/fsync with compare-and-set against the version it is based
on), checked against a model and with the independent client.

- test_fsx_model: an fsx-style random sequence on ONE file through the
  mount, against a Python bytes model: pwrite (also past EOF: a zero gap),
  ftruncate up and down, pread compared exactly, fsync, and close + reopen
  every few operations (O_RDWR, O_RDWR|O_TRUNC, O_WRONLY|O_APPEND).  After
  EVERY step: fstat(fd).st_size, stat(path).st_size and lseek(fd, 0,
  SEEK_END) equal the model's length, and the store still holds the last
  committed value (nothing is written before close/fsync).  After each
  close/fsync the store holds exactly the model, and after a close
  stat(path).st_size (and now and then a fresh read by path) agree.  Seeded (printed on
  failure; TOPOFS_FSX_SEED overrides), TOPOFS_FSX_OPS operations (default
  4000).  A failure names the seed, the step and the last operations.
- test_two_mounts_counter: two daemons on the same root, eight worker
  processes (four per mount) incrementing one counter: half read-modify-
  write through one O_RDWR descriptor, half read (O_RDONLY, close) then
  rewrite (O_WRONLY|O_TRUNC), all retrying after EIO at close.  At the end
  the store holds exactly the number of successful increments, every
  successful close wrote the next value (1..N once each), one store write
  per success, and both mounts show the final value.
"""

import collections
import errno
import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

FSX_OPS = int(os.environ.get("TOPOFS_FSX_OPS", "4000"))
FSX_MAXLEN = 48 * 1024          # the file never grows beyond this
COUNTER_TARGET = 25             # successful increments per worker ...
COUNTER_SECONDS = 10.0          # ... or this time budget, whichever first


def _errname(e):
    return errno.errorcode.get(getattr(e, "errno", None), type(e).__name__)


# --------------------------------------------------------------------------
# test B's worker: /usr/bin/python3 -c COUNTER_WORKER '[path, mode, target,
# deadline, start_at]'; prints its result as JSON.  No harness import.

COUNTER_WORKER = r'''
import errno, json, os, sys, time

path, mode, target, deadline, start_at = json.loads(sys.argv[1])


def read_all(fd):
    out = b""
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return out
        out += chunk


def close_quietly(fd):
    try:
        os.close(fd)
    except OSError:
        pass


def write_all(fd, data):
    n = os.write(fd, data)
    if n != len(data):
        raise RuntimeError("short write: %d of %d" % (n, len(data)))


def once():
    """One increment; returns the value written.  An OSError raised by the
    committing close() has .at_close = True."""
    if mode == "rdwr":
        fd = os.open(path, os.O_RDWR)
        try:
            val = int(read_all(fd)) + 1
            data = str(val).encode()
            os.lseek(fd, 0, os.SEEK_SET)
            write_all(fd, data)
            os.ftruncate(fd, len(data))
        except BaseException:
            close_quietly(fd)
            raise
    else:
        fd = os.open(path, os.O_RDONLY)
        try:
            cur = read_all(fd)
        finally:
            os.close(fd)
        val = int(cur) + 1
        data = str(val).encode()
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        try:
            write_all(fd, data)
        except BaseException:
            close_quietly(fd)
            raise
    try:
        os.close(fd)            # the store write (compare-and-set)
    except OSError as e:
        e.at_close = True
        raise
    return val


res = {"mode": mode, "ok": 0, "eio": 0, "eio_other": 0, "tries": 0,
       "values": [], "errors": []}
while time.time() < start_at:
    time.sleep(0.005)
while res["ok"] < target and time.time() < deadline:
    res["tries"] += 1
    try:
        v = once()
    except OSError as e:
        if e.errno == errno.EIO:
            if getattr(e, "at_close", False):
                res["eio"] += 1          # a conflict: re-read and retry
            else:
                res["eio_other"] += 1
            continue
        res["errors"].append("%s: %s" % (errno.errorcode.get(e.errno, e.errno), e))
    except ValueError as e:
        res["errors"].append("read a counter that is not a number: %s" % e)
    except RuntimeError as e:
        res["errors"].append(str(e))
    else:
        res["ok"] += 1
        res["values"].append(v)
        continue
    if len(res["errors"]) >= 20:
        break
    time.sleep(0.01)
sys.stdout.write(json.dumps(res))
'''


class OpenStressTest(h.TopofsTestCase):

    # ------------------------------------------------------------------
    # A. fsx

    def test_fsx_model(self):
        """fsx-style random pwrite/ftruncate/pread/fsync/reopen on one file,
        every step checked against a bytes model (sizes three ways, data,
        and the store after each close/fsync)."""
        seed_env = os.environ.get("TOPOFS_FSX_SEED")
        seed = int(seed_env, 0) if seed_env else random.randrange(1 << 32)
        nops = FSX_OPS
        rnd = random.Random(seed)
        initial = rnd.randbytes(rnd.randrange(0, 3000))
        self.load({"fsx": initial})
        self.mount()
        path, key = self.p("fsx"), self.key("fsx")
        sys.stderr.write("\n  [fsx] seed %d, %d operations (rerun: TOPOFS_FSX_SEED=%d "
                         "TOPOFS_FSX_OPS=%d)\n" % (seed, nops, seed, nops))

        st = {"fd": None, "mode": None, "model": initial, "committed": initial,
              "step": 0, "closes": 0, "fsyncs": 0, "counts": collections.Counter()}
        hist = collections.deque(maxlen=12)

        def close_fd():
            fd, st["fd"] = st["fd"], None
            if fd is not None:
                os.close(fd)

        def cleanup():
            try:
                close_fd()
            except OSError:
                pass
        self.addCleanup(cleanup)

        def bad(what):
            m = st["model"]
            self.fail("fsx mismatch: %s\n  seed %d (rerun: TOPOFS_FSX_SEED=%d "
                      "TOPOFS_FSX_OPS=%d), step %d of %d, open mode %s, model length %d, "
                      "%d closes so far\n  last operations (oldest first):\n    %s"
                      % (what, seed, seed, nops, st["step"], nops, st["mode"], len(m),
                         st["closes"], "\n    ".join(hist)))

        def diff(got, want):
            if got is None:
                return "None (no such key) vs model of %d bytes" % len(want)
            if len(got) != len(want):
                pre = "length %d, model %d" % (len(got), len(want))
            else:
                pre = "same length %d" % len(got)
            for i, (a, b) in enumerate(zip(got, want)):
                if a != b:
                    return "%s, first difference at offset %d: %r vs model %r" % (
                        pre, i, got[i:i + 16], want[i:i + 16])
            return "%s, one is a prefix of the other" % pre

        def check_store(when):
            got = self.store.get(key)
            if got != st["committed"]:
                bad("%s: the store is not the last committed value (%s)"
                    % (when, diff(got, st["committed"])))

        def check_sizes():
            fd, n = st["fd"], len(st["model"])
            got = os.fstat(fd).st_size
            if got != n:
                bad("fstat(fd).st_size %d, model %d" % (got, n))
            got = os.stat(path).st_size
            if got != n:
                bad("stat(path).st_size %d while open for writing, model %d" % (got, n))
            got = os.lseek(fd, 0, os.SEEK_END)
            if got != n:
                bad("lseek(fd, 0, SEEK_END) = %d, model %d" % (got, n))

        def do_open(mode):
            flags = {"rdwr": os.O_RDWR, "trunc": os.O_RDWR | os.O_TRUNC,
                     "append": os.O_WRONLY | os.O_APPEND}[mode]
            st["fd"] = os.open(path, flags)
            st["mode"] = mode
            if mode == "trunc":
                st["model"] = b""

        def do_close():
            close_fd()
            st["closes"] += 1
            st["committed"] = st["model"]
            check_store("after close")
            got = os.stat(path).st_size
            if got != len(st["model"]):
                bad("after close: stat(path).st_size %d, model %d"
                    % (got, len(st["model"])))

        def write_at(off, data):
            m = st["model"]
            if off > len(m):
                m += bytes(off - len(m))
            st["model"] = m[:off] + data + m[off + len(data):]

        def rand_len(limit):
            # mostly small, sometimes a few KiB, never beyond limit
            r = rnd.random()
            n = rnd.randint(1, 64) if r < 0.5 else (
                rnd.randint(1, 4096) if r < 0.9 else rnd.randint(1, 16384))
            return max(0, min(n, limit))

        def one_op():
            mode, m = st["mode"], st["model"]
            fd = st["fd"]
            r = rnd.random()
            if mode == "append":
                if r < 0.70:
                    n = rand_len(FSX_MAXLEN - len(m))
                    if n == 0:
                        return one_trunc(fd, m)
                    data = rnd.randbytes(n)
                    hist.append("%5d append write len=%d (at %d)" % (st["step"], n, len(m)))
                    got = os.write(fd, data)
                    if got != n:
                        bad("write returned %d, asked %d" % (got, n))
                    st["model"] = m + data
                    st["counts"]["append"] += 1
                elif r < 0.95:
                    one_trunc(fd, m)
                else:
                    one_fsync(fd)
                return
            if r < 0.40:
                if rnd.random() < 0.15:         # beyond EOF: a zero-filled gap
                    off = len(m) + rnd.randint(1, 8192)
                else:
                    off = rnd.randint(0, len(m))
                off = min(off, FSX_MAXLEN - 1)
                n = rand_len(FSX_MAXLEN - off)
                data = rnd.randbytes(n)
                hist.append("%5d pwrite off=%d len=%d (size %d)" % (st["step"], off, n, len(m)))
                got = os.pwrite(fd, data, off)
                if got != n:
                    bad("pwrite returned %d, asked %d" % (got, n))
                write_at(off, data)
                st["counts"]["pwrite"] += 1
            elif r < 0.55:
                one_trunc(fd, m)
            elif r < 0.97:
                off = rnd.randint(0, len(m) + 64)
                n = rnd.randint(1, 64) if rnd.random() < 0.5 else rnd.randint(1, 20000)
                hist.append("%5d pread off=%d len=%d (size %d)" % (st["step"], off, n, len(m)))
                got = os.pread(fd, n, off)
                want = m[off:off + n]
                if got != want:
                    bad("pread(off=%d, len=%d): %s" % (off, n, diff(got, want)))
                st["counts"]["pread"] += 1
            else:
                one_fsync(fd)

        def one_trunc(fd, m):
            if rnd.random() < 0.5 and m:
                n = rnd.randint(0, len(m) - 1)                      # down
            else:
                n = min(FSX_MAXLEN, len(m) + rnd.randint(0, 8192))  # up (or same)
            hist.append("%5d ftruncate %d (size %d)" % (st["step"], n, len(m)))
            os.ftruncate(fd, n)
            st["model"] = m[:n] if n <= len(m) else m + bytes(n - len(m))
            st["counts"]["ftruncate"] += 1

        def one_fsync(fd):
            hist.append("%5d fsync (size %d)" % (st["step"], len(st["model"])))
            os.fsync(fd)
            st["committed"] = st["model"]
            st["fsyncs"] += 1
            st["counts"]["fsync"] += 1
            check_store("after fsync")

        t0 = time.time()
        reopen_in = 0
        try:
            for step in range(1, nops + 1):
                st["step"] = step
                if st["fd"] is None or reopen_in <= 0:
                    if st["fd"] is not None:
                        hist.append("%5d close (size %d)" % (step, len(st["model"])))
                        do_close()
                        if rnd.random() < 0.25:     # a fresh reader sees the value
                            hist.append("%5d read whole file by path" % step)
                            got = h.read_file(path)
                            if got != st["model"]:
                                bad("read by path after close: %s" % diff(got, st["model"]))
                    mode = rnd.choices(("rdwr", "trunc", "append"), (50, 25, 25))[0]
                    hist.append("%5d open %s" % (step, mode))
                    do_open(mode)
                    st["counts"]["open " + mode] += 1
                    reopen_in = rnd.randint(1, 12)
                else:
                    one_op()
                    reopen_in -= 1
                check_sizes()
                check_store("while open (nothing is written before close/fsync)")
            hist.append("  end close (size %d)" % len(st["model"]))
            do_close()
        except OSError as e:
            bad("operation failed: %s (%s)" % (_errname(e), e))
        self.assertEqual(h.read_file(path), st["model"])
        sys.stderr.write("  [fsx] %d steps in %.1f s, %d closes, %d fsyncs, final size %d; %s\n"
                         % (nops, time.time() - t0, st["closes"], st["fsyncs"],
                            len(st["model"]), dict(sorted(st["counts"].items()))))

    # ------------------------------------------------------------------
    # B. two mounts, one counter

    def _end_worker(self, p):
        """Cleanup: SIGKILL a worker still running (by its pid); if it does
        not go (blocked in the mount), abort the mounts by their pids."""
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

    def test_two_mounts_counter(self):
        """Eight processes on two mounts of one root increment one counter
        (O_RDWR read-modify-write, or read then O_TRUNC rewrite), retrying
        after EIO: no lost update, no phantom success."""
        self.load({"counter": b"0"})
        before = self.node_meta("counter")
        m1 = self.mount()
        m2 = self.mount()
        start_at = time.time() + 1.0
        deadline = start_at + COUNTER_SECONDS
        specs = []
        for mi, m in enumerate((m1, m2)):
            for mode in ("rdwr", "rdwr", "rewrite", "rewrite"):
                specs.append(("mount%d" % (mi + 1), mode, m.path("counter")))
        procs = []
        for _, mode, path in specs:
            p = subprocess.Popen(
                ["/usr/bin/python3", "-c", COUNTER_WORKER,
                 json.dumps([path, mode, COUNTER_TARGET, deadline, start_at])],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL)
            self.addCleanup(self._end_worker, p)
            procs.append(p)

        results, problems = [], []
        for (mname, mode, _), p in zip(specs, procs):
            try:
                so, se = p.communicate(timeout=max(1, deadline + 20 - time.time()))
            except subprocess.TimeoutExpired:
                self.fail("worker %s/%s (pid %d) hung (topofs logs follow)"
                          % (mname, mode, p.pid))
            if p.returncode != 0:
                problems.append("worker %s/%s exited %s: %s" % (
                    mname, mode, p.returncode, se.decode("utf-8", "replace")[-2000:]))
                continue
            try:
                r = json.loads(so)
            except ValueError:
                problems.append("worker %s/%s: no result: %r" % (mname, mode, so[-300:]))
                continue
            r["who"] = "%s/%s pid %d" % (mname, mode, p.pid)
            results.append(r)
        if problems:
            self.fail("\n".join(problems))

        ok = sum(r["ok"] for r in results)
        final = self.store.get(self.key("counter"))
        meta = self.node_meta("counter")
        sys.stderr.write(
            "\n  [two mounts counter] %d successful increments, %d EIO at close, "
            "%d EIO elsewhere; per worker (ok/eio/tries): %s; store %r\n"
            % (ok, sum(r["eio"] for r in results), sum(r["eio_other"] for r in results),
               ", ".join("%s %d/%d/%d" % (r["who"].split(" pid")[0], r["ok"], r["eio"],
                                          r["tries"]) for r in results), final))
        for r in results:
            if r["errors"]:
                problems.append("%s: errors other than EIO: %s" % (r["who"], r["errors"][:5]))
        try:
            value = int(final)
        except (TypeError, ValueError):
            value = None
            problems.append("the counter in the store is not a number: %r" % (final,))
        if value is not None and value != ok:
            problems.append("%s: store value %d, successful increments %d"
                            % ("LOST UPDATE" if value < ok else "PHANTOM WRITE",
                               value, ok))
        vals = sorted(v for r in results for v in r["values"])
        if vals != list(range(1, ok + 1)):
            dup = sorted(v for v, c in collections.Counter(vals).items() if c > 1)
            problems.append("successful closes did not write 1..%d once each "
                            "(duplicates %s; values %s...)" % (ok, dup[:20], vals[:40]))
        if meta is not None and meta.version != before.version + ok:
            problems.append("store version %d -> %d after %d successful closes "
                            "(one store write per success expected)"
                            % (before.version, meta.version, ok))
        if ok == 0:
            problems.append("no increment succeeded at all")
        if problems:
            self.fail("\n".join(problems))
        # both mounts come to show the final value (mount 1 may see mount
        # 2's last write a moment later)
        for m in (m1, m2):
            t_end = time.time() + 5
            while True:
                got = h.read_file(m.path("counter"))
                if got == final or time.time() > t_end:
                    break
                time.sleep(0.1)
            self.assertEqual(got, final, "%s shows a stale counter" % m.mnt)


if __name__ == "__main__":
    h.main()
