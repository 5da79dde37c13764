#!/usr/bin/python3
"""Edge cases around the write contract: two writers on one file, files that
vanish or change under an open reader, paths through a file, long names,
links and special files, truncate/pwrite beyond the limit."""

import errno
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import read_file, write_file  # noqa: E402


class EdgeTest(h.TopofsTestCase):

    def setUp(self):
        super().setUp()
        self.load({"a": b"alpha", "d/b": b"bravo"})
        self.mount()

    def test_two_writers_second_close_conflicts(self):
        # both opened at the same version: the first close commits, the
        # second is a compare-and-set against a stale version -> EIO
        f1 = os.open(self.p("a"), os.O_WRONLY | os.O_TRUNC)
        f2 = os.open(self.p("a"), os.O_WRONLY | os.O_TRUNC)
        os.write(f1, b"first")
        os.write(f2, b"second")
        os.close(f1)
        self.assertEqual(self.store.get(self.key("a")), b"first")
        with self.assertRaises(OSError) as cm:
            os.close(f2)
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertEqual(self.store.get(self.key("a")), b"first")
        self.assertEqual(read_file(self.p("a")), b"first")

    def test_read_your_writes_across_fds(self):
        r = os.open(self.p("a"), os.O_RDONLY)
        try:
            write_file(self.p("a"), b"updated")
            fresh = read_file(self.p("a"))
            self.assertEqual(fresh, b"updated")
            self.assertEqual(os.stat(self.p("a")).st_size, 7)
        finally:
            os.close(r)

    def test_external_delete_visible(self):
        self.assertEqual(read_file(self.p("d/b")), b"bravo")
        self.store.delete(self.key("d/b"))
        time.sleep(1.2)
        self.assertFalse(os.path.exists(self.p("d/b")))
        if self.is_zk:
            # d (empty data) has no children left: by Vitess's rule a file
            self.assertEqual(self.store.get(self.key("d")), b"")
            self.assertTrue(os.path.isfile(self.p("d")), "a leaf znode is not a file")
            self.assertEqual(os.stat(self.p("d")).st_size, 0)
            self.assertErrno(errno.ENOTDIR, open, self.p("d/b"), "rb")
        else:
            self.assertErrno(errno.ENOENT, open, self.p("d/b"), "rb")

    def test_path_through_a_file(self):
        before = self.snapshot()
        self.assertErrno(errno.ENOTDIR, os.open, self.p("a/x"),
                         os.O_WRONLY | os.O_CREAT, 0o644)
        self.assertErrno(errno.ENOTDIR, os.mkdir, self.p("a/x"))
        self.assertErrno(errno.ENOTDIR, os.stat, self.p("a/x"))
        self.assertUnchanged(before)

    def test_long_names(self):
        name = "n" * 255
        write_file(self.p("d/" + name), b"long")
        self.assertEqual(self.store.get(self.key("d/" + name)), b"long")
        before = self.snapshot()
        self.assertErrno(errno.ENAMETOOLONG, open, self.p("d/" + "n" * 256), "wb")
        self.assertUnchanged(before)

    def test_newline_in_name(self):
        if self.is_zk:
            # ZooKeeper refuses control characters in paths: EINVAL, and
            # nothing is written
            self.assertFalse(h.zk_name_ok("line\nbreak"))
            before = self.snapshot()
            self.assertErrno(errno.EINVAL, write_file, self.p("d/line\nbreak"), b"nl")
            self.assertNotIn("line\nbreak", os.listdir(self.p("d")))
            self.assertUnchanged(before)
            return
        write_file(self.p("d/line\nbreak"), b"nl")
        self.assertEqual(self.store.get(self.key("d/line\nbreak")), b"nl")
        self.assertIn("line\nbreak", os.listdir(self.p("d")))

    def test_links_and_special_files_refused(self):
        before = self.snapshot()
        for func, args in ((os.link, (self.p("a"), self.p("hard"))),
                           (os.symlink, ("a", self.p("sym"))),
                           (os.mkfifo, (self.p("fifo"),))):
            with self.assertRaises(OSError, msg=func.__name__) as cm:
                func(*args)
            self.assertIn(cm.exception.errno,
                          (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS,
                           errno.EACCES, errno.EINVAL), func.__name__)
        self.assertUnchanged(before)

    def test_truncate_and_pwrite_beyond_limit(self):
        before = self.snapshot()
        rev = self.store.revision()
        with self.assertRaises(OSError) as cm:
            os.truncate(self.p("a"), 3 * 1024 * 1024)
        self.assertEqual(cm.exception.errno, errno.EFBIG)
        fd = os.open(self.p("d/b"), os.O_WRONLY)
        errs = []
        try:
            os.pwrite(fd, b"x", 3 * 1024 * 1024)
        except OSError as e:
            errs.append(e.errno)
        try:
            os.close(fd)
        except OSError as e:
            errs.append(e.errno)
        self.assertIn(errno.EFBIG, errs)
        self.assertEqual(self.store.revision(), rev)
        self.assertUnchanged(before)

    def test_unlink_open_file_then_close(self):
        # a file unlinked while open for writing must not come back at close
        # unless written; a write after the unlink recreating it is allowed
        # but must not leave other keys behind
        fd = os.open(self.p("a"), os.O_RDONLY)
        os.unlink(self.p("a"))
        self.assertIsNone(self.store.get(self.key("a")))
        os.close(fd)
        time.sleep(0.2)
        self.assertIsNone(self.store.get(self.key("a")), "a read-only close recreated the key")
        # (ZooKeeper: the parent znode d is a key too)
        self.assertEqual(sorted(self.keyset()), sorted({self.key("d/b")} | self.mkdir_keys("d")))


if __name__ == "__main__":
    h.main()
