#!/usr/bin/python3
"""ZooKeeper races with another client, and the metadata of new znodes
(issue 21, items 1 and 4).

- A file open for writing whose znode another client deletes and creates
  again (same path, new value) must not be written at close: a new znode's
  data version starts again at 0 and may reach the version seen at open,
  so setData's version check alone cannot tell the znodes apart. The close
  fails with EIO, the other client's znode stays as it is, and the log
  names the key.
- A directory made with mkdir shows the znode's own mtime at once (from the
  create's answer), and a file created empty (touch, open+close) shows its
  znode's mtime once its close has returned, without any listing.

The independent client is kazoo (harness.ZkClient)."""

import errno
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

BACKENDS = ("zk",)     # read by CMakeLists.txt: registered as integ.zk.zk_races


def mtime_ms(st):
    """st_mtime in ms, as ZooKeeper keeps it (topofs puts the data version
    in the sub-millisecond digits)."""
    return st.st_mtime_ns // 1000000


class ZkRacesTest(h.ZkTestCase):

    def zstat(self, rel):
        return self.store.stat(self.key(rel))

    def recreate(self, rel, value, sets):
        """Another client deletes rel's znode and creates it again with
        `value`, then sets it `sets` times (its data version is then
        `sets`, counted from 0 again)."""
        key = self.key(rel)
        self.store.zk.delete(key)
        self.store.zk.create(key, value)
        for _ in range(sets):
            self.store.zk.set(key, value)

    def wait_shows(self, rel, value, timeout=5):
        """Wait until the mount shows rel with value. (A znode deleted and
        created again by another client may be missing from the mount
        for a moment, open files or not: not what these tests check.)"""
        deadline = time.time() + timeout
        while True:
            try:
                got = h.read_file(self.p(rel))
            except FileNotFoundError:
                got = None
            if got == value or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(got, value, rel)

    # ------------------------------------------------------------------
    def test_recreated_while_open_is_not_overwritten(self):
        """Item 1: delete + create by another client while open for
        writing: EIO at close, the other client's znode untouched, a log
        line naming the key. Also when the new znode has been set as
        often as the old one, so that its data version is the one seen at
        open."""
        self.load({"f%d" % i: b"old" for i in range(4)})
        self.mount()
        for i in range(4):
            rel = "f%d" % i
            with self.subTest(round=i):
                for _ in range(i):      # the version seen at open: i
                    self.store.zk.set(self.key(rel), b"old")
                self.assertEqual(h.read_file(self.p(rel)), b"old")
                seen = self.zstat(rel)
                self.assertEqual(seen.version, i)
                fd = os.open(self.p(rel), os.O_RDWR)
                try:
                    os.write(fd, b"mine")
                    theirs = b"theirs %d" % i
                    self.recreate(rel, theirs, sets=i)
                    now = self.zstat(rel)
                    self.assertNotEqual(now.czxid, seen.czxid)
                    self.assertEqual(now.version, seen.version)
                finally:
                    with self.assertRaises(OSError) as cm:
                        os.close(fd)
                self.assertEqual(cm.exception.errno, errno.EIO)
                self.assertEqual(self.store.get(self.key(rel)), theirs)
                after = self.zstat(rel)
                self.assertEqual((after.czxid, after.mzxid, after.version),
                                 (now.czxid, now.mzxid, now.version),
                                 "the re-created znode was written")
                self.assertIn(self.key(rel), self.m.log())
                # the mount shows the other client's znode, and writes it
                self.wait_shows(rel, theirs)
                h.write_file(self.p(rel), b"mine again")
                self.assertEqual(self.store.get(self.key(rel)),
                                 b"mine again")

    def test_recreated_before_fsync(self):
        """Item 1 through fsync: the same check, and the close after the
        failed fsync writes nothing either."""
        self.load({"g": b"old"})
        self.mount()
        self.store.zk.set(self.key("g"), b"old")
        self.assertEqual(h.read_file(self.p("g")), b"old")
        fd = os.open(self.p("g"), os.O_RDWR)
        try:
            os.write(fd, b"mine")
            self.recreate("g", b"theirs", sets=1)
            self.assertErrno(errno.EIO, os.fsync, fd)
        finally:
            try:
                os.close(fd)
            except OSError:
                pass
        self.assertEqual(self.store.get(self.key("g")), b"theirs")
        self.assertEqual(self.zstat("g").version, 1)

    def test_mkdir_shows_znode_mtime_at_once(self):
        """Item 4: a new directory's st_mtime is its znode's mtime at
        once, not 1970 (also one inside a new directory)."""
        self.load({"a": b"x"})
        self.mount()
        for rel in ("d", "d/e", "other"):
            os.mkdir(self.p(rel))
            st = os.stat(self.p(rel))
            self.assertLess(abs(st.st_mtime - time.time()), 5, rel)
            self.assertEqual(mtime_ms(st), self.zstat(rel).mtime, rel)

    def test_new_empty_file_shows_znode_mtime(self):
        """Item 4: a file created empty shows its znode's mtime as soon as
        its close has returned, without a listing of its directory (the
        kernel keeps no attributes of a file being created)."""
        self.load({"a": b"x"})
        self.mount()
        for rel in ("t1", "t2"):
            with self.subTest(rel=rel):
                if rel == "t1":
                    subprocess.run(["touch", self.p(rel)], check=True)
                else:
                    with open(self.p(rel), "wb"):
                        pass
                want = self.zstat(rel).mtime
                st = os.stat(self.p(rel))  # at once: nothing kept before
                self.assertLess(abs(st.st_mtime - time.time()), 5)
                self.assertEqual(mtime_ms(st), want)


if __name__ == "__main__":
    h.main()
