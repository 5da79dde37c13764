#!/usr/bin/python3
"""Open files behave as on a local filesystem (SPEC 5).  Each open is its
own buffer, a snapshot of the value at open, committed at close()/fsync if
changed, compare-and-set against the version it is based on.  Every effect
is checked with the independent client:

1. fstat/stat/lseek(SEEK_END) of a file open for writing show that open
   file's size (pwrite past the end, O_TRUNC, an append loop, SEEK_END
   after an overwrite).
2. A file only truncated by O_TRUNC is empty in the store when close()
   returns (also `: > f; echo new > f` from a shell), and a failed commit
   fails that close() with EIO.
3. A process that read a file and rewrites it whole compares with the
   version it read, even when its new bytes equal the other client's.
4. A process's own unlink + create and rename over a file it read are not
   another client's change (no false conflict).
5. A file created through the mount and still open can be unlinked
   (mkstemp) and renamed (tempfile.NamedTemporaryFile + os.replace).
6. A descriptor follows its file through a rename (of the file or of its
   directory); an unlinked open file has st_nlink 0 and writes nothing.
7. mmap: MAP_PRIVATE works, MAP_SHARED is ENODEV (live mounts: direct I/O).
"""

import errno
import mmap
import os
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import read_file, write_file  # noqa: E402

CONFLICT = "changed by another client"


class OpenFilesTest(h.TopofsTestCase):

    def setUp(self):
        super().setUp()
        self.base = {"f": b"old", "d/x": b"xval", "d/y": b"yval"}
        self.load(self.base)
        self.mount()

    # helpers
    def close_errno(self, fd):
        """os.close(fd); its errno, or None if it succeeded."""
        try:
            os.close(fd)
        except OSError as e:
            return e.errno
        return None

    def assertCloses(self, fd, msg=""):
        err = self.close_errno(fd)
        self.assertIsNone(err, "%s: close failed with %s"
                          % (msg, errno.errorcode.get(err, err)))

    def assertNoConflictLogged(self):
        time.sleep(0.2)     # let the log line (if any) reach the file
        log = self.m.full_log()
        self.assertNotIn(CONFLICT, log, "false conflict logged:\n" + log[-3000:])

    def rewrite(self, rel, data):
        """open(rel, O_WRONLY|O_TRUNC), write data, close."""
        fd = os.open(self.p(rel), os.O_WRONLY | os.O_TRUNC)
        try:
            self.assertEqual(os.write(fd, data), len(data))
        except BaseException:
            self.close_errno(fd)
            raise
        self.assertCloses(fd, "rewrite of %s" % rel)

    def wait_seen(self, rel, version):
        """Until the mount shows a version of rel other than `version`
        (getxattr: not an open, so not a read of the file)."""
        deadline = time.time() + 5
        while os.getxattr(self.p(rel), "user.topo.version") == version:
            self.assertLess(time.time(), deadline, "change not seen in 5 s")
            time.sleep(0.05)

    # ---------------------------------------------------------------
    # 1. fstat/stat show the open file's size

    def test_1a_pwrite_past_end_fstat_stat_seek_end(self):
        """pwrite past the end of an open file: fstat, stat and
        lseek(SEEK_END) all say 250 before close."""
        first = bytes(range(100))
        write_file(self.p("f"), first)
        self.assertEqual(self.store.get(self.key("f")), first)
        fd = os.open(self.p("f"), os.O_RDWR)
        try:
            self.assertEqual(os.pwrite(fd, b"E" * 50, 200), 50)
            self.assertEqual(os.fstat(fd).st_size, 250)
            self.assertEqual(os.stat(self.p("f")).st_size, 250)
            self.assertEqual(os.lseek(fd, 0, os.SEEK_END), 250)
        finally:
            err = self.close_errno(fd)
        self.assertIsNone(err)
        self.assertEqual(self.store.get(self.key("f")),
                         first + b"\x00" * 100 + b"E" * 50)

    def test_1b_o_trunc_fstat_size(self):
        """O_TRUNC open: fstat/stat say 0, then 3 after a 3-byte write."""
        write_file(self.p("f"), b"longer value\n")
        fd = os.open(self.p("f"), os.O_WRONLY | os.O_TRUNC)
        try:
            self.assertEqual(os.fstat(fd).st_size, 0)
            self.assertEqual(os.write(fd, b"xyz"), 3)
            self.assertEqual(os.fstat(fd).st_size, 3)
            self.assertEqual(os.stat(self.p("f")).st_size, 3)
        finally:
            err = self.close_errno(fd)
        self.assertIsNone(err)
        self.assertEqual(self.store.get(self.key("f")), b"xyz")

    def test_1c_append_loop_fstat_seek_end(self):
        """A logger's loop (fstat, lseek SEEK_END, write) on an O_TRUNC file,
        existing and new: every line reaches the store."""
        want = b"".join(b"line%d\n" % i for i in range(4))
        for rel in ("f", "d/newlog"):
            fd = os.open(self.p(rel), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                for i in range(4):
                    os.fstat(fd)
                    self.assertEqual(os.lseek(fd, 0, os.SEEK_END),
                                     len(b"line0\n") * i, "%s: round %d" % (rel, i))
                    os.write(fd, b"line%d\n" % i)
            finally:
                err = self.close_errno(fd)
            self.assertIsNone(err, rel)
            self.assertEqual(self.store.get(self.key(rel)), want, rel)
        self.assertEqual(self.keyset(), {self.key(r) for r in self.base}
                         | {self.key("d/newlog")} | self.mkdir_keys("d"))

    def test_1d_seek_end_after_overwrite(self):
        """Overwrite a 2-byte file with 6 bytes: lseek(SEEK_END) is 6 and the
        tail goes after them - also when fstat or stat asked for the size
        first."""
        for probe in (None, "fstat", "stat"):
            write_file(self.p("f"), b"he")
            self.assertEqual(self.store.get(self.key("f")), b"he")
            fd = os.open(self.p("f"), os.O_RDWR)
            try:
                os.write(fd, b"abcdef")
                if probe == "fstat":
                    self.assertEqual(os.fstat(fd).st_size, 6)
                elif probe == "stat":
                    self.assertEqual(os.stat(self.p("f")).st_size, 6)
                self.assertEqual(os.lseek(fd, 0, os.SEEK_END), 6, probe)
                os.write(fd, b"+tail")
            finally:
                err = self.close_errno(fd)
            self.assertIsNone(err, probe)
            self.assertEqual(self.store.get(self.key("f")), b"abcdef+tail", probe)

    # ---------------------------------------------------------------
    # 2. O_TRUNC alone is in the store when close returns

    def test_2a_o_trunc_unwritten_in_store_at_close(self):
        """close(open(O_WRONLY|O_TRUNC)): the store holds b"" as soon as
        close returns, 20 rounds."""
        write_file(self.p("f"), b"test\n")
        for i in range(20):
            self.assertEqual(self.store.get(self.key("f")), b"test\n", "round %d" % i)
            os.close(os.open(self.p("f"), os.O_WRONLY | os.O_TRUNC))
            self.assertEqual(self.store.get(self.key("f")), b"", "round %d" % i)
            self.assertEqual(read_file(self.p("f")), b"", "round %d" % i)
            write_file(self.p("f"), b"test\n")
        self.assertEqual(self.store.get(self.key("f")), b"test\n")
        self.assertNoConflictLogged()

    def test_2b_shell_truncate_then_write(self):
        """`: > f; echo new > f` from a shell, 20 rounds: the store holds
        b"new\\n" after each, and no conflict is logged."""
        for i in range(20):
            r = subprocess.run(["sh", "-c", ": > f; echo new > f"], cwd=self.p(""),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.assertEqual((r.returncode, r.stderr), (0, b""), "round %d" % i)
            self.assertEqual(self.store.get(self.key("f")), b"new\n", "round %d" % i)
        self.assertEqual(self.keyset(), {self.key(r) for r in self.base}
                         | self.mkdir_keys("d"))
        self.assertNoConflictLogged()

    def test_2c_o_trunc_unwritten_failed_commit_fails_close(self):
        """Another client changes f while it is open O_TRUNC (unwritten):
        close fails with EIO and the other client's value stays."""
        fd = os.open(self.p("f"), os.O_WRONLY | os.O_TRUNC)
        try:
            self.store.put(self.key("f"), b"other")
        finally:
            err = self.close_errno(fd)
        self.assertEqual(err, errno.EIO, "close: %s" % errno.errorcode.get(err, err))
        self.assertEqual(self.store.get(self.key("f")), b"other")

    # ---------------------------------------------------------------
    # 3. compare with the version read, even when the bytes are equal

    def test_3_rewrite_equal_to_other_clients_value_fails(self):
        """Read b"5", another client writes b"6", the process rewrites f
        with O_TRUNC as b"6": EIO, the other client's write untouched (once
        after the mount saw the change, once right away)."""
        for rel, wait in (("f", True), ("d/x", False)):
            v_old = os.getxattr(self.p(rel), "user.topo.version")
            self.store.put(self.key(rel), b"5")
            self.wait_seen(rel, v_old)
            v0 = os.getxattr(self.p(rel), "user.topo.version")
            fd = os.open(self.p(rel), os.O_RDONLY)
            try:
                self.assertEqual(os.read(fd, 100), b"5", rel)
            finally:
                os.close(fd)
            self.store.put(self.key(rel), b"6")
            theirs = self.store.meta(self.key(rel))
            rev = self.store.revision()
            if wait:
                self.wait_seen(rel, v0)
            errs = []
            fd = os.open(self.p(rel), os.O_WRONLY | os.O_TRUNC)
            try:
                try:
                    os.write(fd, b"6")
                except OSError as e:
                    errs.append(("write", e.errno))
            finally:
                err = self.close_errno(fd)
                if err is not None:
                    errs.append(("close", err))
            self.assertIn(errno.EIO, [e for _, e in errs],
                          "%s: no EIO from write or close (errors: %s)" % (rel, errs))
            self.assertEqual(self.store.meta(self.key(rel)), theirs, rel)
            if not self.is_zk:
                # (ZooKeeper gives a refused conditional write a zxid too,
                # so there the node's own version and mzxid are the check)
                self.assertEqual(self.store.revision(), rev, "%s: store written" % rel)

    # ---------------------------------------------------------------
    # 4. a process's own changes are not another client's

    def test_4a_unlink_recreate_no_false_conflict(self):
        """Read f, unlink it, create it again (v2), rewrite it (v3): no
        conflict, all in this process."""
        before = self.keyset()
        # a version the re-created f will not have (ZooKeeper: data version
        # 1 - a new znode starts at 0 again)
        write_file(self.p("f"), b"v1")
        self.assertEqual(read_file(self.p("f")), b"v1")
        os.unlink(self.p("f"))
        self.assertIsNone(self.store.get(self.key("f")))
        fd = os.open(self.p("f"), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        try:
            os.write(fd, b"v2")
        finally:
            err = self.close_errno(fd)
        self.assertIsNone(err)
        self.assertEqual(self.store.get(self.key("f")), b"v2")
        self.rewrite("f", b"v3")
        self.assertEqual(self.store.get(self.key("f")), b"v3")
        self.assertEqual(self.keyset(), before)
        self.assertNoConflictLogged()

    def test_4b_rename_over_read_file_no_false_conflict(self):
        """Read f, write f.tmp, rename it over f, rewrite f (v3): no
        conflict, no f.tmp left."""
        before = self.keyset()
        self.assertEqual(read_file(self.p("f")), b"old")
        write_file(self.p("f.tmp"), b"v2")
        self.assertEqual(self.store.get(self.key("f.tmp")), b"v2")
        os.rename(self.p("f.tmp"), self.p("f"))
        self.assertEqual(self.store.get(self.key("f")), b"v2")
        self.rewrite("f", b"v3")
        self.assertEqual(self.store.get(self.key("f")), b"v3")
        self.assertIsNone(self.store.get(self.key("f.tmp")))
        self.assertEqual(self.keyset(), before)
        self.assertNoConflictLogged()

    # ---------------------------------------------------------------
    # 5. a created, still open file can be unlinked and renamed

    def test_5a_mkstemp_unlink_while_open(self):
        """open(O_CREAT|O_EXCL|O_RDWR), unlink, write, pread, close: all
        succeed and nothing reaches the store."""
        before = self.snapshot()
        rev = self.store.revision()
        name = "tmpq7z3kw"
        path = os.path.join(self.p("d"), name)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            os.unlink(path)
            self.assertNotIn(name, os.listdir(self.p("d")))
            self.assertFalse(os.path.lexists(path))
            self.assertEqual(os.write(fd, b"data"), 4)
            self.assertEqual(os.pread(fd, 100, 0), b"data")
        finally:
            err = self.close_errno(fd)
        self.assertIsNone(err, "close: %s" % errno.errorcode.get(err, err))
        self.assertUnchanged(before)
        self.assertEqual(self.store.revision(), rev, "something was written")

    def test_5b_named_temporary_file_replace(self):
        """Python's atomic write (NamedTemporaryFile, os.replace before the
        close) over an existing and onto a new target: the target holds the
        new value, no temporary key anywhere."""
        for target, old in (("f", b"old"), ("fresh", None)):
            self.assertEqual(self.store.get(self.key(target)), old)
            before = self.keyset()
            with tempfile.NamedTemporaryFile(dir=self.p(""), delete=False) as tf:
                tmpname = os.path.basename(tf.name)
                tf.write(b"new value")
                os.replace(tf.name, self.p(target))
            self.assertEqual(self.store.get(self.key(target)), b"new value", target)
            self.assertIsNone(self.store.get(self.key(tmpname)), target)
            self.assertEqual(self.keyset(), before | {self.key(target)}, target)
            self.assertNotIn(tmpname, os.listdir(self.p("")))
            self.assertEqual(read_file(self.p(target)), b"new value", target)

    def test_5c_second_open_of_new_file(self):
        """A file created and still open can be opened again: the second
        open reads its bytes so far, the name is listed once, and only the
        first close writes the store."""
        before = self.keyset()
        path = self.p("fresh")
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR)
        try:
            os.write(fd, b"abc")
            self.assertEqual(read_file(path), b"abc")
            self.assertEqual(os.listdir(self.p("")).count("fresh"), 1)
            self.assertEqual(self.keyset(), before)
        finally:
            err = self.close_errno(fd)
        self.assertIsNone(err, "close: %s" % errno.errorcode.get(err, err))
        self.assertEqual(self.store.get(self.key("fresh")), b"abc")
        self.assertEqual(self.keyset(), before | {self.key("fresh")})

    def test_5d_mknod_creates_the_key(self):
        """mknod(2) of a regular file creates it, empty, in the store."""
        before = self.keyset()
        os.mknod(self.p("made"), 0o644 | stat.S_IFREG)
        self.assertEqual(self.store.get(self.key("made")), b"")
        self.assertEqual(self.keyset(), before | {self.key("made")})

    def test_2d_inherited_descriptor_closed_by_a_child(self):
        """A child closing a descriptor it inherited and never used (a
        fork + exec while another thread writes) commits nothing: the
        half-written buffer never reaches the store; the writer's own close
        writes the whole value."""
        self.store.put(self.key("f"), b"old")
        fd = os.open(self.p("f"), os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, b"half ")
            subprocess.run(["true"], pass_fds=(fd,), check=True)
            self.assertEqual(self.store.get(self.key("f")), b"old")
            os.write(fd, b"and whole")
        finally:
            err = self.close_errno(fd)
        self.assertIsNone(err, "close: %s" % errno.errorcode.get(err, err))
        self.assertEqual(self.store.get(self.key("f")), b"half and whole")

    # ---------------------------------------------------------------
    # 6. open files that are renamed or deleted

    def test_6a_rename_open_file(self):
        """Write to an open f, rename f to g, close: g holds the edit, f is
        gone."""
        before = self.keyset()
        fd = os.open(self.p("f"), os.O_RDWR)
        try:
            os.write(fd, b"edited")
            os.rename(self.p("f"), self.p("g"))
        finally:
            err = self.close_errno(fd)
        self.assertIsNone(err, "close: %s" % errno.errorcode.get(err, err))
        self.assertEqual(self.store.get(self.key("g")), b"edited")
        self.assertIsNone(self.store.get(self.key("f")))
        self.assertEqual(self.keyset(), before - {self.key("f")} | {self.key("g")})
        self.assertEqual(read_file(self.p("g")), b"edited")

    def test_6a_rename_parent_of_open_file(self):
        """Write to an open d/x, rename d to e, close: e/x holds the edit,
        nothing is left under d."""
        before = self.keyset()
        d = self.key("d")
        fd = os.open(self.p("d/x"), os.O_RDWR)
        try:
            os.write(fd, b"XX")
            os.rename(self.p("d"), self.p("e"))
        finally:
            err = self.close_errno(fd)
        self.assertIsNone(err, "close: %s" % errno.errorcode.get(err, err))
        self.assertEqual(self.store.get(self.key("e/x")), b"XXal")
        self.assertEqual(self.store.get(self.key("e/y")), b"yval")
        want = {self.key("e") + k[len(d):] if k == d or k.startswith(d + "/") else k
                for k in before}
        self.assertEqual(self.keyset(), want)
        self.assertEqual(read_file(self.p("e/x")), b"XXal")

    def test_6b_unlink_open_file(self):
        """Unlink an open f: fstat says st_nlink 0 and the last size, the fd
        still reads and writes, close succeeds and writes nothing."""
        before = self.keyset()
        fd = os.open(self.p("f"), os.O_RDWR)
        try:
            rev = self.store.revision()
            ino = os.fstat(fd).st_ino
            os.unlink(self.p("f"))
            self.assertIsNone(self.store.get(self.key("f")))
            st = os.fstat(fd)
            self.assertEqual((st.st_nlink, st.st_size), (0, 3))
            self.assertEqual(st.st_ino, ino, "the same file, still")
            self.assertEqual(os.write(fd, b"x"), 1)
            self.assertEqual(os.pread(fd, 100, 0), b"xld")
        finally:
            err = self.close_errno(fd)
        self.assertIsNone(err, "close: %s" % errno.errorcode.get(err, err))
        self.assertEqual(self.keyset(), before - {self.key("f")})
        self.assertEqual(self.store.revision(), rev + 1, "not exactly one write (the delete)")
        self.assertNotIn("f", os.listdir(self.p("")))

    # ---------------------------------------------------------------
    # 7. mmap

    def test_7_mmap_private_works_shared_enodev(self):
        """mmap of a file open O_RDONLY: MAP_PRIVATE reads the value,
        MAP_SHARED is ENODEV (direct I/O)."""
        before = self.snapshot()
        fd = os.open(self.p("d/x"), os.O_RDONLY)
        try:
            mm = mmap.mmap(fd, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
            try:
                self.assertEqual(mm[:], b"xval")
            finally:
                mm.close()
            self.assertErrno(errno.ENODEV, mmap.mmap, fd, 0,
                             flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
        finally:
            os.close(fd)
        self.assertUnchanged(before)


if __name__ == "__main__":
    h.main()
