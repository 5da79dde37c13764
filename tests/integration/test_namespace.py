#!/usr/bin/python3
"""Namespace operations: mkdir (etcd: memory only; ZooKeeper: creates the
znode at once), rmdir, ENOTEMPTY, unlink, rename (one transaction: etcd txn,
ZooKeeper multi), rename over an existing file, directory rename."""

import errno
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import read_file, write_file  # noqa: E402


class NamespaceTest(h.TopofsTestCase):

    def setUp(self):
        super().setUp()
        self.base = {"a": b"alpha", "b": b"bravo", "dir/x": b"x-ray",
                     "dir/y": b"yankee", "dir/sub/z": b"zulu", "keep/k": b"kilo"}
        self.load(self.base)
        self.mount()

    def test_mkdir_writes_no_key(self):
        # etcd: no marker keys, the directory lives in memory;
        # ZooKeeper: mkdir creates the znode (empty data) at once
        before = self.snapshot()
        rev = self.store.revision()
        os.mkdir(self.p("newdir"))
        os.mkdir(self.p("dir/newsub"))
        os.makedirs(self.p("p/q/r"))
        made = self.mkdir_keys("newdir", "dir/newsub", "p/q/r")
        if self.is_zk:
            self.assertEqual(self.store.revision(), rev + 5, "one create per mkdir")
            for k in made:
                m = self.store.meta(k)
                self.assertIsNotNone(m, "mkdir did not create the znode %s" % k)
                self.assertEqual((m.value, m.version, m.ephemeral), (b"", 0, 0), k)
            self.assertUnchanged(dict(before, **{k: b"" for k in made}))
            rev += 5
            before = self.snapshot()
        else:
            self.assertEqual(made, set())
            self.assertEqual(self.store.revision(), rev, "mkdir wrote to the store")
            self.assertUnchanged(before)
        self.assertIn("newdir", os.listdir(self.p()))
        self.assertIn("newsub", os.listdir(self.p("dir")))
        self.assertTrue(os.path.isdir(self.p("p/q/r")))
        self.assertEqual(os.listdir(self.p("newdir")), [])
        self.assertErrno(errno.EEXIST, os.mkdir, self.p("newdir"))
        self.assertErrno(errno.EEXIST, os.mkdir, self.p("dir"))
        self.assertErrno(errno.EEXIST, os.mkdir, self.p("a"))
        # a file created inside makes the key
        write_file(self.p("newdir/f"), b"in new dir")
        self.assertEqual(self.store.get(self.key("newdir/f")), b"in new dir")
        self.assertEqual(self.keyset(), set(before) | {self.key("newdir/f")})
        self.assertEqual(self.store.revision(), rev + 1)

    def test_rmdir_empty(self):
        os.mkdir(self.p("e"))
        before = self.snapshot()
        rev = self.store.revision()
        os.rmdir(self.p("e"))
        self.assertFalse(os.path.exists(self.p("e")))
        self.assertNotIn("e", os.listdir(self.p()))
        if self.is_zk:
            # the znode mkdir made is deleted, in one write
            self.assertEqual(self.store.revision(), rev + 1)
            del before[self.key("e")]
        else:
            self.assertEqual(self.store.revision(), rev)
        self.assertUnchanged(before)
        self.assertErrno(errno.ENOENT, os.rmdir, self.p("e"))

    def test_rmdir_after_last_file_removed(self):
        os.unlink(self.p("keep/k"))
        self.assertIsNone(self.store.get(self.key("keep/k")))
        if self.is_zk:
            # the parent znode stays (topofs deletes only what the user
            # deletes), still a directory in this mount, so `rm -r` works
            self.assertEqual(self.store.get(self.key("keep")), b"")
            self.assertTrue(os.path.isdir(self.p("keep")),
                            "a directory whose last file was removed is no "
                            "longer a directory")
            os.rmdir(self.p("keep"))
            self.assertIsNone(self.store.get(self.key("keep")))
        # the directory may vanish with its last key (etcd has no empty dirs);
        # if it is still listed, rmdir must work
        if os.path.exists(self.p("keep")):
            os.rmdir(self.p("keep"))
        self.assertFalse(os.path.exists(self.p("keep")))

    def test_rm_r(self):
        before = self.snapshot()
        r = subprocess.run(["rm", "-r", self.p("dir")], stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(self.p("dir")))
        self.assertUnchanged({k: v for k, v in before.items()
                              if k != self.key("dir") and not k.startswith(self.key("dir/"))})

    def test_rmdir_nonempty_enotempty(self):
        before = self.snapshot()
        self.assertErrno(errno.ENOTEMPTY, os.rmdir, self.p("dir"))
        self.assertErrno(errno.ENOTEMPTY, os.rmdir, self.p("dir/sub"))
        self.assertUnchanged(before)
        os.makedirs(self.p("m/n"))
        before = self.snapshot()      # ZooKeeper: with the znodes m, m/n
        self.assertErrno(errno.ENOTEMPTY, os.rmdir, self.p("m"))
        self.assertErrno(errno.ENOTDIR, os.rmdir, self.p("a"))
        self.assertUnchanged(before)

    def test_unlink(self):
        before = self.snapshot()
        rev = self.store.revision()
        os.unlink(self.p("dir/x"))
        self.assertIsNone(self.store.get(self.key("dir/x")))
        self.assertFalse(os.path.exists(self.p("dir/x")))
        self.assertEqual(self.store.revision(), rev + 1)
        expect = dict(before)
        del expect[self.key("dir/x")]
        self.assertUnchanged(expect)
        self.assertErrno(errno.ENOENT, os.unlink, self.p("dir/x"))
        self.assertErrno(errno.ENOENT, os.unlink, self.p("nosuch"))
        with self.assertRaises(OSError) as cm:
            os.unlink(self.p("dir"))
        self.assertIn(cm.exception.errno, (errno.EISDIR, errno.EPERM))
        self.assertUnchanged(expect)

    def test_unlink_key_changed_elsewhere(self):
        # unlink checks nothing else got deleted; changed-under-us may fail
        os.stat(self.p("a"))
        self.store.put(self.key("a"), b"changed")
        time.sleep(1.2)
        os.unlink(self.p("a"))
        self.assertIsNone(self.store.get(self.key("a")))

    def test_rename_file_one_revision(self):
        before = self.snapshot()
        rev = self.store.revision()
        os.rename(self.p("a"), self.p("dir/a2"))
        self.assertEqual(self.store.revision(), rev + 1, "rename was not one transaction")
        self.assertIsNone(self.store.get(self.key("a")))
        self.assertEqual(self.store.get(self.key("dir/a2")), b"alpha")
        # both changes carry the same revision / zxid (one txn / multi)
        m = self.node_meta("dir/a2")
        self.assertEqual(m.mod_id, rev + 1)
        self.assertEqual(m.create_id, rev + 1)
        expect = dict(before)
        expect[self.key("dir/a2")] = expect.pop(self.key("a"))
        self.assertUnchanged(expect)
        self.assertEqual(read_file(self.p("dir/a2")), b"alpha")
        self.assertFalse(os.path.exists(self.p("a")))

    def test_rename_over_existing_file(self):
        before = self.snapshot()
        rev = self.store.revision()
        os.rename(self.p("a"), self.p("b"))
        self.assertEqual(self.store.revision(), rev + 1, "rename-over was not one transaction")
        self.assertIsNone(self.store.get(self.key("a")))
        self.assertEqual(self.store.get(self.key("b")), b"alpha")
        expect = dict(before)
        expect[self.key("b")] = expect.pop(self.key("a"))
        self.assertUnchanged(expect)
        self.assertEqual(read_file(self.p("b")), b"alpha")

    def test_rename_missing_enoent(self):
        before = self.snapshot()
        self.assertErrno(errno.ENOENT, os.rename, self.p("nosuch"), self.p("x"))
        self.assertUnchanged(before)

    def test_rename_file_over_nonempty_dir_fails(self):
        before = self.snapshot()
        with self.assertRaises(OSError) as cm:
            os.rename(self.p("a"), self.p("dir"))
        self.assertIn(cm.exception.errno, (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST))
        self.assertUnchanged(before)

    def test_rename_directory(self):
        before = self.snapshot()
        rev = self.store.revision()
        os.rename(self.p("dir"), self.p("moved"))
        self.assertEqual(self.store.revision(), rev + 1, "small dir rename not atomic")
        expect = {}
        for k, v in before.items():
            rel = k[len(self.prefix):]
            if rel == "dir" or rel.startswith("dir/"):   # znode "dir": zk
                rel = "moved" + rel[3:]
            expect[self.key(rel)] = v
        self.assertUnchanged(expect)
        self.assertFalse(os.path.exists(self.p("dir")))
        self.assertEqual(read_file(self.p("moved/sub/z")), b"zulu")

    def test_rename_big_directory_atomic_or_exdev(self):
        # more keys than etcd allows in one transaction (--max-txn-ops 128):
        # either one atomic revision or EXDEV with nothing changed; `mv`
        # then still works (it copies and deletes)
        big = {"big/k%03d" % i: b"v%d" % i for i in range(300)}
        self.load(big)
        time.sleep(1.2)
        before = self.snapshot()
        rev = self.store.revision()
        moved = {}
        for k, v in before.items():
            rel = k[len(self.prefix):]
            if rel == "big" or rel.startswith("big/"):
                rel = "big2" + rel[3:]
            moved[self.key(rel)] = v
        try:
            os.rename(self.p("big"), self.p("big2"))
        except OSError as e:
            self.assertEqual(e.errno, errno.EXDEV, e)
            self.assertEqual(self.store.revision(), rev)
            self.assertUnchanged(before)
            r = subprocess.run(["mv", self.p("big"), self.p("big2")], stderr=subprocess.PIPE)
            self.assertEqual(r.returncode, 0, r.stderr)
        else:
            self.assertEqual(self.store.revision(), rev + 1, "big dir rename not atomic")
        self.assertUnchanged(moved)
        self.assertEqual(len(os.listdir(self.p("big2"))), 300)

    def test_rename_memory_only_dir(self):
        # etcd: a directory only in memory; ZooKeeper: empty znodes, moved
        # in one multi
        os.makedirs(self.p("md/inner"))
        before = self.snapshot()
        rev = self.store.revision()
        os.rename(self.p("md"), self.p("md2"))
        self.assertTrue(os.path.isdir(self.p("md2/inner")))
        self.assertFalse(os.path.exists(self.p("md")))
        if self.is_zk:
            self.assertEqual(self.store.revision(), rev + 1)
            expect = {k: v for k, v in before.items() if k not in self.mkdir_keys("md/inner")}
            expect.update({k: b"" for k in self.mkdir_keys("md2/inner")})
            self.assertUnchanged(expect)
            time.sleep(1.2)
            self.assertTrue(os.path.isdir(self.p("md2/inner")),
                            "a moved mkdir'd directory stopped being a directory")
        else:
            self.assertEqual(self.store.revision(), rev)
            self.assertUnchanged(before)

    def test_mv_between_dirs_with_shell(self):
        before = self.snapshot()
        r = subprocess.run(["mv", self.p("b"), self.p("keep/")], stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, r.stderr)
        expect = dict(before)
        expect[self.key("keep/b")] = expect.pop(self.key("b"))
        self.assertUnchanged(expect)


if __name__ == "__main__":
    h.main()
