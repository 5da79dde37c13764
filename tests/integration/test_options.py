#!/usr/bin/python3
"""SPEC rules beyond the core list: -o ro, -o noephemeral, -o uid=/gid=,
read-only extended attributes, editor saves (sed -i, vim) and scratch files
that never reach the store."""

import errno
import os
import stat
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import read_file, write_file  # noqa: E402


class OptionsTest(h.TopofsTestCase):

    def setUp(self):
        super().setUp()
        self.load({"a": b"alpha\n", "d/b": b"bravo\n", "d/c": b"charlie\n"})

    def test_read_only_mount(self):
        self.mount(["-o", "ro"])
        before = self.snapshot()
        st = os.stat(self.p("a"))
        self.assertEqual(stat.S_IMODE(st.st_mode) & 0o222, 0, "write bits on a ro mount")
        self.assertEqual(stat.S_IMODE(os.stat(self.p("d")).st_mode) & 0o222, 0)
        self.assertEqual(read_file(self.p("a")), b"alpha\n")
        self.assertErrno(errno.EROFS, os.open, self.p("a"), os.O_WRONLY)
        self.assertErrno(errno.EROFS, os.open, self.p("new"), os.O_WRONLY | os.O_CREAT, 0o644)
        self.assertErrno(errno.EROFS, os.unlink, self.p("a"))
        self.assertErrno(errno.EROFS, os.mkdir, self.p("nd"))
        self.assertErrno(errno.EROFS, os.rename, self.p("a"), self.p("z"))
        self.assertUnchanged(before)

    def test_noephemeral_hides_leased_keys(self):
        # etcd: a key with a lease; ZooKeeper: an ephemeral znode
        rel = self.put_ephemeral("d/locks/77", b"{}")
        self.mount(["-o", "noephemeral"])
        self.assertFalse(os.path.exists(self.p(rel)))
        self.assertNotIn("77", os.listdir(self.p("d/locks"))
                         if os.path.isdir(self.p("d/locks")) else [])
        self.assertEqual(read_file(self.p("d/b")), b"bravo\n")
        files, _ = h.walk_files(self.p())
        self.assertNotIn(rel, files)
        # a directory holding only hidden keys is at most empty
        if os.path.isdir(self.p("d/locks")):
            self.assertEqual(os.listdir(self.p("d/locks")), [])

    def test_uid_gid_option(self):
        self.mount(["-o", "uid=4321,gid=8765"])
        st = os.stat(self.p("a"))
        self.assertEqual((st.st_uid, st.st_gid), (4321, 8765))
        st = os.stat(self.p("d"))
        self.assertEqual((st.st_uid, st.st_gid), (4321, 8765))

    def test_xattrs(self):
        rel = self.put_ephemeral("d/locks/78", b"{}")
        self.store.put(self.key("a"), b"alpha v2\n")       # version 1 on zk
        self.mount()
        names = os.listxattr(self.p("a"))
        self.assertIn("user.topo.version", names)
        self.assertIn("user.topo.ephemeral", names)
        m = self.node_meta("a")
        # etcd: mod_revision; ZooKeeper: the data version
        want = m.version if self.is_zk else m.mod_id
        self.assertEqual(os.getxattr(self.p("a"), "user.topo.version").strip(),
                         str(want).encode())
        self.assertEqual(os.getxattr(self.p("a"), "user.topo.ephemeral").strip(), b"0")
        self.assertEqual(os.getxattr(self.p(rel), "user.topo.ephemeral").strip(), b"1")
        # backend-specific attributes, checked against the independent client
        if self.is_zk:
            zst = self.store.stat(self.key("a"))
            for attr, val in (("czxid", zst.czxid), ("mzxid", zst.mzxid),
                              ("version", zst.version), ("mtime", zst.mtime),
                              ("ctime", zst.ctime), ("cversion", zst.cversion),
                              ("data_length", zst.dataLength),
                              ("num_children", zst.numChildren)):
                self.assertIn("user.zk." + attr, names)
                self.assertEqual(os.getxattr(self.p("a"), "user.zk." + attr).strip(),
                                 str(val).encode(), attr)
            owner = self.store.stat(self.key(rel)).ephemeralOwner
            self.assertEqual(os.getxattr(self.p(rel), "user.zk.ephemeral_owner").strip(),
                             str(owner).encode())
            # exactly SPEC 3's set, nothing else under user.zk.
            self.assertEqual(sorted(n for n in names if n.startswith("user.zk.")),
                             sorted("user.zk." + a for a in (
                                 "czxid", "mzxid", "ctime", "mtime", "version",
                                 "cversion", "ephemeral_owner", "data_length",
                                 "num_children")))
        else:
            for attr, val in (("create_revision", m.create_id),
                              ("mod_revision", m.mod_id), ("version", m.version)):
                self.assertIn("user.etcd." + attr, names)
                self.assertEqual(os.getxattr(self.p("a"), "user.etcd." + attr).strip(),
                                 str(val).encode(), attr)
            lease = self.node_meta(rel).ephemeral
            self.assertEqual(os.getxattr(self.p(rel), "user.etcd.lease").strip(),
                             str(lease).encode())
        before = self.snapshot()
        with self.assertRaises(OSError):
            os.setxattr(self.p("a"), "user.topo.version", b"1")
        self.assertUnchanged(before)

    def test_xattrs_of_a_file_being_created(self):
        """A file created through the mount and still open exists (stat
        shows it) while the store holds nothing yet: its attributes are
        absent (ENODATA), not the file (ENOENT); after close they are the
        store's."""
        self.mount()
        path = self.p("new")
        with open(path, "wb") as f:
            f.write(b"x\n")
            f.flush()
            self.assertEqual(os.stat(path).st_size, 2)
            self.assertEqual(os.listxattr(path), [])
            for name in ("user.topo.version", "security.capability"):
                with self.assertRaises(OSError) as cm:
                    os.getxattr(path, name)
                self.assertEqual(cm.exception.errno, errno.ENODATA, name)
            self.assertIsNone(self.store.get(self.key("new")))
        self.assertEqual(self.store.get(self.key("new")), b"x\n")
        self.assertIn("user.topo.version", os.listxattr(path))
        with self.assertRaises(OSError) as cm:
            os.getxattr(self.p("absent"), "user.topo.version")
        self.assertEqual(cm.exception.errno, errno.ENOENT)

    def test_sed_i_updates_in_place(self):
        self.mount()
        before = self.snapshot()
        r = subprocess.run(["sed", "-i", "s/bravo/BRAVO/", self.p("d/b")],
                           stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, r.stderr)
        after = self.snapshot()
        self.assertEqual(after.get(self.key("d/b")), b"BRAVO\n")
        self.assertEqual(sorted(after), sorted(before), "sed -i created or deleted keys")

    @unittest.skipUnless(os.path.exists("/usr/bin/vim"), "no vim")
    def test_vim_save(self):
        self.mount()
        before = self.snapshot()
        r = subprocess.run(["vim", "-u", "NONE", "-N", "-n", "-es",
                            "-c", "%s/charlie/CHARLIE/", "-c", "wq", self.p("d/c")],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        after = self.snapshot()
        self.assertEqual(after.get(self.key("d/c")), b"CHARLIE\n")
        self.assertEqual(sorted(after), sorted(before), "vim created or deleted keys")

    def test_scratch_files_stay_in_memory(self):
        self.mount()
        before = self.snapshot()
        for n in ("a~", ".a.swp", "4913", ".#a", "#a#"):
            write_file(self.p("d/" + n), b"scratch")
            self.assertEqual(read_file(self.p("d/" + n)), b"scratch")
            self.assertIn(n, os.listdir(self.p("d")))
        self.assertUnchanged(before)
        for n in ("a~", ".a.swp", "4913", ".#a", "#a#"):
            os.unlink(self.p("d/" + n))
        self.assertUnchanged(before)


if __name__ == "__main__":
    h.main()
