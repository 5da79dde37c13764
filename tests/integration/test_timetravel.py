#!/usr/bin/python3
"""Point-in-time mounts of etcd (issue 10): -o revision=N shows the store
exactly as of revision N, -o snapshot pins the revision current at mount
time; both are read-only, and the root's user.topo.revision names the
revision. Every view is checked against etcd's own answer at that revision
(the v3 gateway and etcdctl `get --rev`)."""

import errno
import json
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import read_file, write_file  # noqa: E402

BACKENDS = ("etcd",)

ETCDCTL = shutil.which("etcdctl") or "etcdctl"


def range_at(store, prefix, rev):
    """{full key: value} under prefix at revision rev, via the gateway."""
    out = {}
    start = prefix.encode("utf-8")
    end = h.prefix_end(prefix)
    while True:
        r = store.call("/v3/kv/range", {
            "key": h.b64e(start), "range_end": h.b64e(end),
            "revision": str(rev), "limit": 500})
        kvs = r.get("kvs") or []
        for kv in kvs:
            out[h.b64d(kv["key"]).decode("utf-8", "surrogateescape")] = \
                h.b64d(kv.get("value"))
        if not r.get("more") or not kvs:
            return out
        start = h.b64d(kvs[-1]["key"]) + b"\x00"


def mod_revision_at(store, key, rev):
    r = store.call("/v3/kv/range", {"key": h.b64e(key), "revision": str(rev)})
    kvs = r.get("kvs") or []
    return int(kvs[0]["mod_revision"]) if kvs else None


def etcdctl(server, *args):
    env = dict(os.environ, ETCDCTL_API="3")
    return subprocess.run([ETCDCTL, "--endpoints=" + server.address] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, timeout=30)


def etcdctl_get_rev(server, prefix, rev):
    """{full key: value} under prefix at rev, as etcdctl `get --rev` sees it."""
    r = etcdctl(server, "get", "--prefix", "--rev=%d" % rev, "-w", "json", prefix)
    if r.returncode != 0:
        raise AssertionError("etcdctl get --rev: %s" % r.stderr.decode())
    doc = json.loads(r.stdout)
    return {h.b64d(kv["key"]).decode("utf-8", "surrogateescape"): h.b64d(kv.get("value"))
            for kv in doc.get("kvs") or []}


def tree(top):
    """{relpath: bytes} of every file under top (a mount or a directory)."""
    files, _ = h.walk_files(top)
    return {rel: read_file(os.path.join(top, rel)) for rel in files}


class TimeTravelTest(h.TopofsTestCase):

    def history(self):
        """Load a small tree, note its revision, then change it: returns
        (revision before the changes, {key: value} at that revision)."""
        self.load({"a": b"alpha\n", "d/b": b"bravo\n", "d/c": b"charlie\n",
                   "bin": bytes(range(256)), "d/e/f": b""})
        rev = self.store.revision()
        at_rev = self.snapshot()
        self.store.put(self.key("a"), b"alpha changed\n")
        self.store.delete(self.key("d/b"))
        self.store.put(self.key("d/new"), b"new\n")
        self.store.put(self.key("x/y"), b"other dir\n")
        self.store.delete(self.key("d/e/f"))
        return rev, at_rev

    def refused(self, extra, root=None):
        """Run topofs with extra options: (exit status, stderr lines), and
        nothing may be mounted."""
        mnt = h.make_tempdir("topofs-mnt-")
        self.addCleanup(h.remove_tempdir, mnt)
        args = ["-f"] + self.server.topofs_args(root or self.root) + list(extra) + [mnt]
        r = h.run_topofs(args, timeout=30)
        self.assertFalse(h.is_mounted(mnt), "mounted although refused")
        return r.returncode, r.stderr.decode("utf-8", "replace").strip().splitlines()

    def assertRefused(self, extra, *words):
        rc, lines = self.refused(extra)
        self.assertNotEqual(rc, 0, "topofs %s exited 0" % " ".join(extra))
        self.assertEqual(len(lines), 1, "not one line on stderr: %r" % lines)
        for w in words:
            self.assertIn(w, lines[0])
        return lines[0]

    # -- -o revision=N

    def test_revision_shows_the_store_at_n(self):
        rev, at_rev = self.history()
        # the independent views of revision rev agree with each other
        self.assertEqual(range_at(self.store, self.prefix, rev), at_rev)
        self.assertEqual(etcdctl_get_rev(self.server, self.prefix, rev), at_rev)
        self.mount(["-o", "revision=%d" % rev])
        files, dirs = h.expected_view(at_rev, self.root, "etcd")
        self.assertEqual(tree(self.p()), files)
        got_dirs = h.walk_files(self.p())[1]
        self.assertEqual(got_dirs, dirs)
        self.assertFalse(os.path.exists(self.p("x")))
        self.assertFalse(os.path.exists(self.p("d/new")))
        # per-file metadata is the one of that revision
        self.assertEqual(os.getxattr(self.p("a"), "user.topo.version"),
                         str(mod_revision_at(self.store, self.key("a"), rev)).encode())
        self.assertEqual(os.stat(self.p("a")).st_size, len(b"alpha\n"))

    def test_revision_view_never_changes(self):
        rev, at_rev = self.history()
        self.mount(["-o", "revision=%d" % rev])
        want = h.expected_view(at_rev, self.root, "etcd")[0]
        self.assertEqual(tree(self.p()), want)
        self.store.put(self.key("a"), b"again\n")
        self.store.put(self.key("d/later"), b"later\n")
        self.store.delete(self.key("d/c"))
        time.sleep(1.5)   # longer than any cache or name lifetime
        self.assertEqual(tree(self.p()), want)

    def test_pinned_mount_is_served_from_the_kernel_cache(self):
        """A past revision never changes: once read, a file's pages, its
        name, its attributes and an absent name stay in the kernel, so
        reading and stat-ing again cost no FUSE request. A live mount reads
        every open through (direct I/O), which shows the count can fail."""
        rev, _ = self.history()
        pinned = self.mount(["-d", "-o", "revision=%d" % rev])
        live = self.mount(["-d"])

        def reread(m, name, want):
            path = os.path.join(m.mnt, name)
            for _ in range(5):
                self.assertEqual(read_file(path), want)
                os.stat(path)
                self.assertFalse(os.path.exists(os.path.join(m.mnt, "d/nope")))
        for m, name, want in ((pinned, "d/c", b"charlie\n"),
                              (live, "a", b"alpha changed\n")):
            reread(m, name, want)  # the first reads fill the caches
            ops = h.fuse_requests(m, lambda: reread(m, name, want))
            sys.stderr.write("\n  [pinned cache] %s: FUSE %r\n"
                             % ("pinned" if m is pinned else "live", dict(ops)))
            if m is pinned:
                for op in ("READ", "LOOKUP", "GETATTR"):
                    self.assertEqual(ops[op], 0, "%s: %r" % (op, dict(ops)))
            else:
                self.assertGreaterEqual(ops["READ"], 5, dict(ops))

    def test_writes_fail_with_erofs_and_change_nothing(self):
        rev, _ = self.history()
        self.mount(["-o", "revision=%d" % rev])
        before, before_rev = self.snapshot(), self.store.revision()
        self.assertEqual(stat.S_IMODE(os.stat(self.p("a")).st_mode) & 0o222, 0)
        self.assertEqual(stat.S_IMODE(os.stat(self.p("d")).st_mode) & 0o222, 0)
        self.assertErrno(errno.EROFS, os.open, self.p("a"), os.O_WRONLY)
        self.assertErrno(errno.EROFS, os.open, self.p("a"), os.O_RDWR | os.O_APPEND)
        self.assertErrno(errno.EROFS, os.open, self.p("n"), os.O_WRONLY | os.O_CREAT, 0o644)
        self.assertErrno(errno.EROFS, os.truncate, self.p("a"), 0)
        self.assertErrno(errno.EROFS, os.unlink, self.p("a"))
        self.assertErrno(errno.EROFS, os.mkdir, self.p("nd"))
        self.assertErrno(errno.EROFS, os.rmdir, self.p("d/e"))
        self.assertErrno(errno.EROFS, os.rename, self.p("a"), self.p("z"))
        self.assertErrno(errno.EROFS, os.rename, self.p("d"), self.p("dd"))
        self.assertErrno(errno.EROFS, os.setxattr, self.p("a"), "user.x", b"1")
        r = subprocess.run(["sed", "-i", "s/alpha/ALPHA/", self.p("a")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertNotEqual(r.returncode, 0)
        self.assertTrue(os.statvfs(self.p()).f_flag & os.ST_RDONLY)
        self.assertEqual(read_file(self.p("a")), b"alpha\n")
        self.assertUnchanged(before)
        self.assertEqual(self.store.revision(), before_rev, "the store was written")

    def test_compacted_revision_is_refused(self):
        rev, _ = self.history()
        now = self.store.revision()
        r = etcdctl(self.server, "compact", str(now))
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        line = self.assertRefused(["-o", "revision=%d" % rev], "compacted",
                                  str(rev))
        self.assertIn("topofs:", line)
        # the compaction revision itself is still there
        self.mount(["-o", "revision=%d" % now])
        self.assertEqual(tree(self.p()),
                         h.expected_view(self.snapshot(), self.root, "etcd")[0])

    def test_future_revision_is_refused(self):
        self.load({"a": b"alpha\n"})
        future = self.store.revision() + 1000
        self.assertRefused(["-o", "revision=%d" % future], "future revision",
                           str(future))

    def test_bad_revision_values_are_refused(self):
        self.load({"a": b"alpha\n"})
        for bad in ("0", "-3", "abc", "12x", ""):
            self.assertRefused(["-o", "revision=" + bad], "revision")
        self.assertRefused(["-o", "revision=1,snapshot"], "snapshot")

    def test_pinned_mounts_need_etcd_v3(self):
        """zk2 keeps no history: -o revision and -o snapshot are refused
        before anything is tried (no ZooKeeper needed to tell)."""
        for extra in (["-o", "snapshot"], ["-o", "revision=5"]):
            mnt = h.make_tempdir("topofs-mnt-")
            self.addCleanup(h.remove_tempdir, mnt)
            r = h.run_topofs(["-f", "--topo_implementation=zk2",
                              "--topo_global_server_address=127.0.0.1:1", "--topo_global_root=/x"]
                             + extra + [mnt])
            lines = r.stderr.decode().strip().splitlines()
            self.assertNotEqual(r.returncode, 0)
            self.assertEqual(len(lines), 1, lines)
            self.assertIn("zk2", lines[0])
            self.assertIn("history", lines[0])
            self.assertFalse(h.is_mounted(mnt))

    # -- -o snapshot

    def test_snapshot_keeps_its_view_while_the_store_changes(self):
        self.load()
        before = self.store.revision()
        self.mount(["-o", "snapshot"])
        pinned = int(os.getxattr(self.p(), "user.topo.revision"))
        self.assertGreaterEqual(pinned, before)
        at_pin = range_at(self.store, self.prefix, pinned)
        want = h.expected_view(at_pin, self.root, "etcd")[0]
        keys = sorted(at_pin)
        stop = threading.Event()
        writes = [0]
        writer = self.server.client()

        def churn():
            rnd = random.Random(7)
            while not stop.is_set():
                k = rnd.choice(keys)
                if rnd.random() < 0.2:
                    writer.put(self.prefix + "churn/%d" % writes[0], b"x")
                elif k.endswith("/Tablet") or k.endswith("/Shard"):
                    writer.put(k, b"changed %d" % writes[0])
                else:
                    continue
                writes[0] += 1

        t = threading.Thread(target=churn, daemon=True)
        t.start()
        try:
            time.sleep(0.3)
            out = tempfile.mkdtemp(prefix="topofs-tar-")
            self.addCleanup(shutil.rmtree, out, True)
            tarball = os.path.join(out, "snap.tar")
            r = subprocess.run(["tar", "-C", self.p(), "-cf", tarball, "."],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            time.sleep(1.2)   # notices would have arrived by now
            again = tree(self.p())
        finally:
            stop.set()
            t.join(10)
        self.assertGreater(writes[0], 0, "the writer never wrote")
        self.assertGreater(self.store.revision(), pinned)
        ex = os.path.join(out, "x")
        os.mkdir(ex)
        subprocess.run(["tar", "-C", ex, "-xf", tarball], check=True)
        self.assertEqual(tree(ex), want, "the tar is not the store at the pinned revision")
        self.assertEqual(again, want, "the snapshot's view moved")
        self.assertEqual(int(os.getxattr(self.p(), "user.topo.revision")), pinned)

    def test_snapshot_is_read_only(self):
        self.load({"a": b"alpha\n"})
        self.mount(["-o", "snapshot"])
        before = self.snapshot()
        self.assertErrno(errno.EROFS, os.open, self.p("a"), os.O_WRONLY)
        self.assertErrno(errno.EROFS, os.mkdir, self.p("nd"))
        self.assertTrue(os.statvfs(self.p()).f_flag & os.ST_RDONLY)
        self.assertUnchanged(before)

    # -- user.topo.revision

    def test_root_revision_xattr(self):
        rev, _ = self.history()
        self.mount(["-o", "revision=%d" % rev])
        self.assertIn("user.topo.revision", os.listxattr(self.p()))
        self.assertEqual(os.getxattr(self.p(), "user.topo.revision"), str(rev).encode())
        # only the root has it
        self.assertNotIn("user.topo.revision", os.listxattr(self.p("a")))
        self.assertErrno(errno.ENODATA, os.getxattr, self.p("d"), "user.topo.revision")

    def test_root_revision_xattr_live_mount_is_current(self):
        self.load({"a": b"alpha\n"})
        self.mount()
        self.assertIn("user.topo.revision", os.listxattr(self.p()))
        self.assertEqual(int(os.getxattr(self.p(), "user.topo.revision")),
                         self.store.revision())
        write_file(self.p("a"), b"beta\n")
        self.assertEqual(int(os.getxattr(self.p(), "user.topo.revision")),
                         self.store.revision())
        self.store.put(self.key("other"), b"1")
        self.assertEqual(int(os.getxattr(self.p(), "user.topo.revision")),
                         self.store.revision())


if __name__ == "__main__":
    h.main()
