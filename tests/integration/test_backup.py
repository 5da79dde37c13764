#!/usr/bin/python3
"""topofs-backup and topofs-restore (issue 24), run for real: the programs
from the build directory (configured beside topofs there, as installed in
/usr/bin) or, failing that, packaging/, against a real server of this
backend, with $TOPOFS_BIN as their topofs (so the ASan run uses
topofs-asan). Every archive is checked with zstd and tar themselves, every
restore with the other store's independent client.

- two runs, then --keep=1 prunes the first (and only this root's files);
  -o etcd_api=v2 and ZooKeeper archives say they are no point in time; a
  key rewritten all through a backup is archived whole (etcd: as of the
  pinned revision) or the backup fails cleanly;
  --keep-daily / --keep-weekly keep the newest per day / ISO week;
- a backup stopped mid-way (SIGTERM to it, SIGKILL to its zstd, SIGKILL to
  it) leaves nothing that looks like an archive and no mount;
- the store down or a missing root: non-zero exit, nothing in DIR; a full
  disk: non-zero exit, nothing left in DIR;
- --verify lists exactly a changed, a missing and an extra key;
- restore byte-exact into an empty root of the OTHER store (etcd archive
  into ZooKeeper, ZooKeeper archive into etcd), checked with that store's
  client; a non-empty root is refused (unless --force).

The systemd units are checked by test_packaging.py (systemd-analyze verify,
on the unpacked .deb)."""

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import read_file  # noqa: E402

OTHER = {"etcd": "zk", "zk": "etcd"}


def program(name):
    """topofs-backup / topofs-restore beside $TOPOFS_BIN (the build tree),
    else the one in packaging/."""
    beside = os.path.join(os.path.dirname(os.path.abspath(h.topofs_bin())), name)
    if os.path.exists(beside):
        return beside
    return os.path.join(h.REPO, "packaging", name)


def rootname(root):
    return root.strip("/").replace("/", "-")


def extract(archive, dest):
    """{relpath: bytes} of the archive's files, extracted by zstd and tar."""
    os.makedirs(dest)
    r = subprocess.run("zstd -q -dc '%s' | tar -x -C '%s' -f -" % (archive, dest),
                       shell=True, stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr.decode()
    files, _ = h.walk_files(dest)
    return {rel: read_file(os.path.join(dest, rel)) for rel in files}


def pax_headers(archive):
    """The archive's global pax header, read by tar's own listing of it."""
    import tarfile
    p = subprocess.Popen(["zstd", "-q", "-dc", archive], stdout=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=p.stdout, mode="r|") as tf:
            next(iter(tf))
            return dict(tf.pax_headers)
    finally:
        p.kill()
        p.wait()
        p.stdout.close()


def children(pid):
    """{pid: comm} of the live children of pid."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        fields = st[st.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out[int(d)] = comm
    return out


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class BackupTest(h.TopofsTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for tool in ("zstd", "tar", "sha256sum"):
            if not shutil.which(tool):
                raise unittest.SkipTest("%s is missing" % tool)
        cls.other = h.module_server(OTHER[cls.backend])
        cls.other_store = cls.other.client()
        if hasattr(cls.other_store, "close"):
            cls.addClassCleanup(cls.other_store.close)

    def setUp(self):
        super().setUp()
        self.dir = h.make_tempdir("topofs-bk-dir-")
        self.addCleanup(h.remove_tempdir, self.dir)
        # the programs' private mount points go here: none may be left
        self.tmp = h.make_tempdir("topofs-bk-tmp-")
        self.addCleanup(h.remove_tempdir, self.tmp)
        self.addCleanup(self.assertNoMountLeft)

    def assertNoMountLeft(self, wait=10):
        deadline = time.time() + wait
        while True:
            left = [os.path.join(self.tmp, n) for n in os.listdir(self.tmp)
                    if h.is_mounted(os.path.join(self.tmp, n))]
            if not left or time.time() > deadline:
                break
            time.sleep(0.1)
        for m in left:
            h.force_unmount(m)
        self.assertEqual(left, [], "mounts left behind")

    def env(self):
        return dict(os.environ, TOPOFS=h.topofs_bin(), TMPDIR=self.tmp)

    def run_prog(self, name, *args, expect=0, timeout=120):
        r = subprocess.run([program(name)] + list(args), env=self.env(),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        out, err = r.stdout.decode(), r.stderr.decode()
        if expect is not None:
            self.assertEqual(r.returncode, expect, "%s %s: exit %d\n%s%s" % (
                name, " ".join(args), r.returncode, out, err))
        rep = h.sanitizer_report(err)
        self.assertIsNone(rep, "sanitizer report from topofs:\n%s" % rep)
        return r.returncode, out, err

    def backup(self, *args, root=None, expect=0):
        rc, out, err = self.run_prog(
            "topofs-backup", "-o", "timeout=5", *args,
            self.server.source(root or self.root), self.dir, expect=expect)
        return out.strip(), err

    def dir_files(self):
        return sorted(os.listdir(self.dir))

    def load_sample(self):
        self.load()
        return self.expected_files()

    # -- backups and retention
    def test_two_runs_keep_1_prunes_first(self):
        files = self.load_sample()
        lock = self.put_ephemeral("keyspaces/lock", b"held")
        pattern = r"^%s-(\d{8}T\d{6}Z)%s\.tar\.zst$" % (
            re.escape(rootname(self.root)), r"-r(\d+)" if self.is_etcd else "")
        # another root's archive and a file of the operator's: never pruned
        keep_too = ["t-other-20200101T000000Z-r5.tar.zst", "notes.txt",
                    rootname(self.root) + "-20200101T000000Z-r5.tar.zst.bak"]
        for n in keep_too:
            h.write_file(os.path.join(self.dir, n), b"x")
        rev = self.store.revision()
        first, err = self.backup("--keep=1")
        self.assertEqual(os.path.dirname(first), self.dir)
        m = re.match(pattern, os.path.basename(first))
        self.assertTrue(m, first)
        if self.is_etcd:      # the revision the snapshot mount pinned
            self.assertEqual(int(m.group(2)), rev, err)
        self.assertEqual(self.dir_files(), sorted(
            keep_too + [os.path.basename(first), os.path.basename(first) + ".sha256"]))
        r = subprocess.run(["sha256sum", "-c", os.path.basename(first) + ".sha256"],
                           cwd=self.dir, stdout=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, r.stdout)
        # byte for byte the store (by its own client), without the lock
        got = extract(first, os.path.join(self.tmp, "x1"))
        self.assertNotIn(lock, got)
        self.assertEqual(sorted(got), sorted(files))
        for rel, v in files.items():
            self.assertEqual(hashlib.sha256(got[rel]).hexdigest(),
                             hashlib.sha256(v).hexdigest(), rel)
        hdr = pax_headers(first)
        self.assertEqual(hdr.get("topofs.root"), self.root)
        if self.is_etcd:
            self.assertEqual((hdr.get("topofs.point_in_time"),
                              hdr.get("topofs.revision")), ("yes", str(rev)))
        else:
            self.assertEqual(hdr.get("topofs.point_in_time"), "no")
            self.assertNotIn("topofs.revision", hdr)

        self.store.put(self.key("keyspaces/commerce/Keyspace"), b"changed")
        second, err = self.backup("--keep=1")
        self.assertNotEqual(second, first)
        self.assertTrue(re.match(pattern, os.path.basename(second)), second)
        self.assertIn("pruned " + first, err)
        self.assertEqual(self.dir_files(), sorted(
            keep_too + [os.path.basename(second), os.path.basename(second) + ".sha256"]))
        got = extract(second, os.path.join(self.tmp, "x2"))
        self.assertEqual(got["keyspaces/commerce/Keyspace"], b"changed")

    def test_progress_on_a_terminal_only(self):
        """Keys and bytes on a terminal (stderr a pty), as one line redrawn
        with \\r; nothing of the kind in a pipe (the journal)."""
        import pty
        self.load({"a": b"1", "d/b": b"22"})
        master, slave = pty.openpty()
        p = subprocess.Popen([program("topofs-backup"), self.server.source(self.root),
                              self.dir], env=self.env(), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:       # EIO: the other end is closed
                break
            if not chunk:
                break
            shown += chunk
        os.close(master)
        out, _ = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, shown)
        self.assertRegex(shown, rb"\rtopofs-backup: \d+ keys, [0-9.]+ (B|KiB) read, "
                                rb"[0-9.]+ (B|KiB) written\x1b\[K")
        self.assertIn(b": 2 keys, 3 B, ", shown)       # the summary
        self.assertTrue(out.strip().endswith(b".tar.zst"), out)
        _, _, err = self.run_prog("topofs-backup", self.server.source(self.root),
                                  self.dir)
        self.assertNotIn("\r", err)
        self.assertEqual(len(err.splitlines()), 1, err)

    def test_keep_daily_weekly(self):
        """Archives of earlier days (made up, empty): --keep-daily=2
        --keep-weekly=2 keeps the new one, the newest of the day before,
        and the newest of the week before that."""
        self.load({"a": b"1"})
        rn = rootname(self.root)
        names = ["%s-%s-r%d.tar.zst" % (rn, ts, i) for i, ts in enumerate(
            ["20201231T230000Z",          # Thu, ISO week 53 of 2020
             "20210105T010000Z",          # Tue, week 1
             "20210106T010000Z",          # Wed, week 1
             "20210110T010000Z",          # Sun, week 1: its newest
             "20210111T090000Z",          # Mon, week 2, older that day
             "20210111T120000Z"])]        # Mon, week 2, newest that day
        for n in names:
            h.write_file(os.path.join(self.dir, n), b"")
            h.write_file(os.path.join(self.dir, n + ".sha256"), b"")
        new, _ = self.backup("--keep-daily=2", "--keep-weekly=2")
        # daily: today (the new one) and 2021-01-11 12:00; weekly: this
        # week (the new one) and 2021 week 2 (already kept)
        want = {os.path.basename(new), names[5]}
        self.assertEqual(self.dir_files(), sorted(
            [n for n in want] + [n + ".sha256" for n in want]))
        # --keep-weekly=3 on the same set: also the newest of week 1
        for n in names[:5]:
            h.write_file(os.path.join(self.dir, n), b"")
        new2, _ = self.backup("--keep-weekly=3")
        self.assertEqual(self.dir_files(), sorted(
            [os.path.basename(new2), names[5], names[3],
             os.path.basename(new2) + ".sha256", names[5] + ".sha256"]))

    @h.backends("etcd")
    def test_etcd_v2_not_a_point_in_time(self):
        """-o etcd_api=v2 (no revisions): no -rREV in the name, the pax
        header says point_in_time=no, and the archive is the v2 tree."""
        from test_etcdv2 import V2Client
        server = h.module_server("etcd", enable_v2=True)
        v2 = V2Client(server.endpoint)
        v2.put(self.root + "/a", "alpha")
        v2.put(self.root + "/d/b", "bravo")
        source = server.source(self.root)
        rc, out, err = self.run_prog("topofs-backup", "-o", "etcd_api=v2",
                                     source, self.dir)
        archive = out.strip()
        self.assertRegex(os.path.basename(archive), r"^%s-\d{8}T\d{6}Z\.tar\.zst$"
                         % re.escape(rootname(self.root)))
        self.assertIn("not a single point in time (etcd v2)", err)
        hdr = pax_headers(archive)
        self.assertEqual((hdr.get("topofs.store"), hdr.get("topofs.point_in_time")),
                         ("etcd2-v2", "no"))
        self.assertNotIn("topofs.revision", hdr)
        self.assertEqual(extract(archive, os.path.join(self.tmp, "x")),
                         {"a": b"alpha", "d/b": b"bravo"})
        self.run_prog("topofs-backup", "--verify", "-o", "etcd_api=v2",
                      archive, source)

    def test_writes_during_a_backup(self):
        """Another client rewrites a key (its size changing) all through a
        backup. etcd: the archive holds the value at the pinned revision.
        ZooKeeper (a live mount): tar may see a value change as it reads
        it; the backup then starts again (up to 3 runs) - it either ends
        with an archive whose value is one that was written, whole, or
        fails with nothing left; never a torn value."""
        import threading
        self.load_big(1000)
        key = self.key("big/00/000")
        values = [b"v%d-" % i + b"x" * (500 + 700 * (i % 3)) for i in range(3)]
        self.store.put(key, values[0])
        stop = threading.Event()

        def writer():
            i = 0
            while not stop.wait(0.002):
                i += 1
                self.store.put(key, values[i % 3])
        t = threading.Thread(target=writer, daemon=True)
        rev = self.store.revision() if self.is_etcd else None
        t.start()
        try:
            rc, out, err = self.run_prog(
                "topofs-backup", "-o", "timeout=30",
                self.server.source(self.root), self.dir, expect=None)
        finally:
            stop.set()
            t.join()
        if rc != 0:
            self.assertTrue(self.is_zk, err)
            self.assertEqual(rc, 1, err)
            self.assertIn("changed as we read it", err)
            self.assertEqual(self.dir_files(), [])
            return
        got = extract(out.strip(), os.path.join(self.tmp, "x"))
        self.assertIn(got["big/00/000"], values)
        if self.is_etcd:
            pinned = int(re.search(r"-r(\d+)\.tar\.zst$", out.strip()).group(1))
            self.assertGreaterEqual(pinned, rev)
            r = self.store.call("/v3/kv/range", {"key": h.b64e(key),
                                                 "revision": str(pinned)})
            self.assertEqual(got["big/00/000"], h.b64d(r["kvs"][0]["value"]))

    # -- failures
    def load_big(self, n=4000):
        """n keys of 2 KiB that zstd cannot shrink (4,000: 8 MiB): a backup
        whose archive grows for a while (one FUSE open and read per key)."""
        rnd = os.urandom(2048 * n)
        self.load({"big/%02d/%03d" % (i // 100, i % 100): rnd[i * 2048:(i + 1) * 2048]
                   for i in range(n)})

    def start_backup(self):
        p = subprocess.Popen([program("topofs-backup"), "-o", "timeout=30",
                              self.server.source(self.root), self.dir],
                             env=self.env(), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(h.stop_pid, p)
        # mid-way: the partial archive has grown
        deadline = time.time() + 60
        while time.time() < deadline:
            parts = [n for n in os.listdir(self.dir) if n.endswith(".partial")]
            if parts and os.path.getsize(os.path.join(self.dir, parts[0])) > 256 << 10:
                return p
            if p.poll() is not None:
                out, err = p.communicate()
                self.fail("the backup ended before it could be stopped: %s %s"
                          % (p.returncode, err.decode()))
            time.sleep(0.01)
        self.fail("no partial archive grew")

    def assertNothingLooksComplete(self, allow_partial=False):
        left = self.dir_files()
        if allow_partial:
            left = [n for n in left if not n.endswith(".partial")]
        self.assertEqual(left, [])

    def test_killed_midway(self):
        self.load_big()
        # SIGTERM to topofs-backup (systemctl stop): it stops tar and zstd,
        # removes the partial and unmounts
        p = self.start_backup()
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 128 + signal.SIGTERM, err.decode())
        self.assertEqual(out, b"")
        self.assertIn(b"SIGTERM", err)
        self.assertNothingLooksComplete()
        self.assertNoMountLeft()

        # zstd killed: a failed backup
        p = self.start_backup()
        zstd = [pid for pid, comm in children(p.pid).items() if comm == "zstd"]
        self.assertEqual(len(zstd), 1, children(p.pid))
        os.kill(zstd[0], signal.SIGKILL)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 1, err.decode())
        self.assertIn(b"zstd failed", err)
        self.assertNothingLooksComplete()
        self.assertNoMountLeft()

        # SIGKILL to topofs-backup: only a .partial stays; topofs, tar and
        # zstd get SIGKILL when their parent dies, and the sentinel (sh)
        # drops the dead mount and removes its directory
        p = self.start_backup()
        kids = children(p.pid)
        # tar may have read the whole tree already (zstd still writing):
        # a loaded machine polls the partial late (seen once on ZooKeeper)
        always = {os.path.basename(h.topofs_bin())[:15], "sh", "zstd"}
        self.assertTrue(always <= set(kids.values()) <= always | {"tar"},
                        kids)
        p.kill()
        p.communicate()
        self.assertNoMountLeft()
        self.assertNothingLooksComplete(allow_partial=True)
        deadline = time.time() + 10
        while any(alive(k) for k in kids) and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual([k for k in kids if alive(k)], [])
        self.assertEqual(os.listdir(self.tmp), [])
        # the next run removes the stale partial
        new, _ = self.backup()
        self.assertEqual(self.dir_files(), sorted(
            [os.path.basename(new), os.path.basename(new) + ".sha256"]))

    def test_store_down(self):
        # nothing listens there
        source = "%s://127.0.0.1:%d%s" % (self.server.impl, h.free_port(), self.root)
        rc, out, err = self.run_prog("topofs-backup", "-o", "timeout=2", source,
                                     self.dir, expect=1)
        self.assertEqual(out, "")
        self.assertIn("could not mount", err)
        self.assertEqual(self.dir_files(), [])
        # a root that does not exist (etcd: without keys)
        missing = os.path.join(self.dir, "new")
        rc, out, err = self.run_prog("topofs-backup", "-o", "timeout=2",
                                     self.server.source(self.root + "-none"),
                                     missing, expect=1)
        self.assertFalse(os.path.exists(missing))

    def test_disk_full(self):
        """DIR on a 1 MiB tmpfs, an archive of 8 MiB: zstd fails, nothing
        that looks like an archive (nor a partial) is left."""
        self.load_big()
        full = os.path.join(self.dir, "full")
        os.mkdir(full)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", full],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs: %s" % r.stdout.decode())
        self.addCleanup(subprocess.run, ["umount", full])
        rc, out, err = self.run_prog("topofs-backup", "-o", "timeout=30",
                                     self.server.source(self.root), full,
                                     expect=1)
        self.assertEqual(out, "")
        self.assertIn("No space left on device", err)
        self.assertEqual(os.listdir(full), [])

    # -- verify
    def test_verify(self):
        self.load_sample()
        archive, _ = self.backup()
        rc, out, err = self.run_prog("topofs-backup", "--verify", archive,
                                     self.server.source(self.root))
        self.assertEqual(out, "")
        self.assertIn("byte for byte", err)
        self.store.put(self.key("keyspaces/commerce/Keyspace"), b"changed")
        self.store.delete(self.key("RoutingRules"))
        self.store.put(self.key("keyspaces/commerce/extra"), b"new")
        self.put_ephemeral("keyspaces/lock", b"held")   # not a difference
        rc, out, err = self.run_prog("topofs-backup", "--verify", archive,
                                     self.server.source(self.root), expect=1)
        # one line per key, sorted by key
        self.assertEqual(out.splitlines(), [
            "missing %s/RoutingRules" % self.root,
            "differs %s/keyspaces/commerce/Keyspace" % self.root,
            "extra %s/keyspaces/commerce/extra" % self.root])
        # a damaged archive is refused before it is compared
        with open(archive, "r+b") as f:
            f.seek(100)
            b = f.read(1)
            f.seek(100)
            f.write(bytes([b[0] ^ 1]))
        rc, out, err = self.run_prog("topofs-backup", "--verify", archive,
                                     self.server.source(self.root), expect=2)
        self.assertIn("does not match", err)

    # -- restore
    def other_snapshot(self, root):
        return {k: v[0] for k, v in self.other_store.range(root + "/").items()}

    def test_restore_into_other_store(self):
        files = self.load_sample()
        archive, _ = self.backup()
        other_root = self.root + "-restored"
        self.addCleanup(self.other_store.delete_prefix, other_root)
        rc, out, err = self.run_prog("topofs-restore", "-o", "timeout=5", archive,
                                     self.other.source(other_root))
        self.assertIn("verified, %d keys equal byte for byte" % len(files), out)
        # the other store's own client: the same files, byte for byte
        got, dirs = h.expected_view(self.other_snapshot(other_root), other_root,
                                    self.other.backend)
        self.assertEqual(sorted(got), sorted(files))
        for rel, v in files.items():
            self.assertEqual(hashlib.sha256(got[rel]).hexdigest(),
                             hashlib.sha256(v).hexdigest(), rel)

    def test_restore_refuses_non_empty_root(self):
        self.load_sample()
        archive, _ = self.backup()
        before = self.snapshot()
        rc, out, err = self.run_prog("topofs-restore", archive,
                                     self.server.source(self.root), expect=1)
        self.assertIn("is not empty", err)
        self.assertIn("--force", err)
        self.assertUnchanged(before, "after a refused restore")
        # --force: a changed key gets the archive's value back
        self.store.put(self.key("keyspaces/commerce/Keyspace"), b"changed")
        rc, out, err = self.run_prog("topofs-restore", "--force", archive,
                                     self.server.source(self.root))
        self.assertIn("verified", out)
        self.assertUnchanged(before, "after restore --force")


if __name__ == "__main__":
    h.main()
