#!/usr/bin/python3
"""The zk2 backend against a real ZooKeeper (Debian's zookeeper, kazoo as
the independent client): mapping (a znode with children is a directory, one
without is a file, mkdir'd znodes stay directories), byte-exact reads,
one write per changed close, compare-and-set on the data version, O_EXCL,
EFBIG at ZooKeeper's 1 MiB limit, rename as one multi, ephemeral znodes
read-only, missing root / -o create_root, bad invocations.

The change counter is the server's last zxid: every create/set/delete/multi
moves it by exactly one."""

import errno
import os
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import read_file, write_file, sha256  # noqa: E402


def zk_expected_files(znodes, root):
    """{relpath: data} the mount should show for {znode path: data}: leaves
    are files; a znode with children and non-empty data shows its data as
    <dir>/.topofs-data."""
    rels = {k[len(root) + 1:]: v for k, v in znodes.items() if k.startswith(root + "/")}
    parents = set()
    for r in rels:
        parts = r.split("/")
        for i in range(1, len(parts)):
            parents.add("/".join(parts[:i]))
    files, optional = {}, {}
    rootdata = znodes.get(root)
    if rels and rootdata is not None:       # the root has children
        (files if rootdata else optional)[".topofs-data"] = rootdata
    for r, v in rels.items():
        if r in parents:
            if v:
                files[r + "/.topofs-data"] = v
            else:
                optional[r + "/.topofs-data"] = v
        else:
            files[r] = v
    return files, optional, parents


class ZkTest(h.TopofsTestCase):
    BACKEND = "zk"

    def setUp(self):
        super().setUp()
        self.store.zk.ensure_path(self.root)
        self.addCleanup(self._drop_root)

    def _drop_root(self):
        try:
            self.store.delete_prefix(self.root)
        except Exception:
            pass

    def zxid(self):
        return self.store.revision()

    def version(self, rel):
        return self.store.zk.exists(self.key(rel)).version

    def load_small(self):
        return self.load({"a": b"alpha", "d/b": b"bravo\x00", "d/sub/c": b"charlie",
                          "node": b"own", "node/kid": b"kid", "empty": b""})

    # ------------------------------------------------------------------
    def test_listing_and_content(self):
        self.load()
        self.mount()
        snap = self.snapshot()
        snap[self.root] = self.store.get(self.root)
        want, optional, parents = zk_expected_files(snap, self.root)
        files, dirs = h.walk_files(self.p())
        extra = set(files) - set(want) - set(optional)
        self.assertEqual(extra, set(), "files that are not znodes")
        self.assertEqual(set(want) - set(files), set(), "znodes not shown")
        self.assertEqual(dirs, parents)
        for rel in files:
            v = want.get(rel, optional.get(rel))
            st = os.stat(self.p(rel))
            self.assertEqual(st.st_size, len(v), rel)
            self.assertEqual(sha256(read_file(self.p(rel))), sha256(v), rel)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o644, rel)

    def test_read_writes_nothing(self):
        self.load()
        self.mount()
        z = self.zxid()
        subprocess.run(["ls", "-lR", self.p()], check=True, stdout=subprocess.DEVNULL)
        for rel in h.walk_files(self.p())[0]:
            read_file(self.p(rel))
        with open(self.p("RoutingRules"), "r+b") as f:
            f.read(1)
        time.sleep(0.3)
        self.assertEqual(self.zxid(), z)

    def test_overwrite_one_write_and_cas(self):
        self.load_small()
        self.mount()
        z, v = self.zxid(), self.version("a")
        write_file(self.p("a"), b"new \x00 value")
        self.assertEqual(self.store.get(self.key("a")), b"new \x00 value")
        self.assertEqual(self.zxid(), z + 1)
        self.assertEqual(self.version("a"), v + 1)
        z = self.zxid()
        write_file(self.p("a"), b"new \x00 value")          # identical
        self.assertEqual(self.zxid(), z)
        with open(self.p("a"), "ab") as f:
            f.write(b"+")
        self.assertEqual(self.store.get(self.key("a")), b"new \x00 value+")
        os.truncate(self.p("a"), 3)
        self.assertEqual(self.store.get(self.key("a")), b"new")
        # conflict: another client changes the znode while open
        f = open(self.p("a"), "wb")
        f.write(b"mine")
        f.flush()
        self.store.put(self.key("a"), b"theirs")
        with self.assertRaises(OSError) as cm:
            f.close()
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertEqual(self.store.get(self.key("a")), b"theirs")

    def test_create_mkdir_rmdir_unlink(self):
        self.load_small()
        self.mount()
        before = set(self.store.keys(self.root))
        z = self.zxid()
        os.mkdir(self.p("newdir"))
        self.assertEqual(self.store.get(self.key("newdir")), b"", "mkdir did not create the znode")
        self.assertEqual(self.zxid(), z + 1)
        self.assertTrue(os.path.isdir(self.p("newdir")))
        time.sleep(1.2)
        try:
            mode = oct(os.stat(self.p("newdir")).st_mode)
        except OSError as e:
            mode = "stat failed: %s" % e
        self.assertTrue(os.path.isdir(self.p("newdir")),
                        "empty mkdir'd znode stopped being a directory after 1.2 s "
                        "(st_mode %s)" % mode)
        write_file(self.p("newdir/f"), b"F")
        self.assertEqual(self.store.get(self.key("newdir/f")), b"F")
        self.assertErrno(errno.ENOTEMPTY, os.rmdir, self.p("newdir"))
        os.unlink(self.p("newdir/f"))
        self.assertIsNone(self.store.get(self.key("newdir/f")))
        os.rmdir(self.p("newdir"))
        self.assertIsNone(self.store.get(self.key("newdir")))
        self.assertErrno(errno.ENOTEMPTY, os.rmdir, self.p("d"))
        self.assertErrno(errno.EEXIST, os.open, self.p("a"),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        subprocess.run(["touch", self.p("t")], check=True)
        self.assertEqual(self.store.get(self.key("t")), b"")
        self.assertEqual(set(self.store.keys(self.root)), before | {self.key("t")})

    def test_rename_is_one_multi(self):
        self.load_small()
        self.mount()
        z = self.zxid()
        os.rename(self.p("a"), self.p("d/a2"))
        self.assertEqual(self.zxid(), z + 1, "rename was not one multi")
        self.assertIsNone(self.store.get(self.key("a")))
        self.assertEqual(self.store.get(self.key("d/a2")), b"alpha")
        z = self.zxid()
        os.rename(self.p("d/a2"), self.p("d/b"))
        self.assertEqual(self.zxid(), z + 1, "rename-over was not one multi")
        self.assertEqual(self.store.get(self.key("d/b")), b"alpha")
        self.assertIsNone(self.store.get(self.key("d/a2")))

    def test_efbig(self):
        self.load_small()
        self.mount()
        before = self.snapshot()
        z = self.zxid()
        with self.assertRaises(OSError) as cm:
            with open(self.p("a"), "wb") as f:
                f.write(b"z" * (2 * 1024 * 1024))
        self.assertEqual(cm.exception.errno, errno.EFBIG)
        self.assertEqual(self.zxid(), z)
        self.assertUnchanged(before)

    def test_topofs_data(self):
        self.load_small()
        self.mount()
        self.assertEqual(read_file(self.p("node/.topofs-data")), b"own")
        write_file(self.p("node/.topofs-data"), b"own2")
        self.assertEqual(self.store.get(self.key("node")), b"own2")
        self.assertIsNone(self.store.get(self.key("node/.topofs-data")))

    def test_ephemeral_readonly(self):
        self.load_small()
        self.store.zk.create(self.key("d/locks/lock-"), b"{}", ephemeral=True,
                             sequence=True, makepath=True)
        name = self.store.zk.get_children(self.key("d/locks"))[0]
        self.mount()
        path = self.p("d/locks/" + name)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o444)
        self.assertErrno(errno.EACCES, open, path, "wb")
        self.assertEqual(self.store.get(self.key("d/locks/" + name)), b"{}")

    def test_missing_root_and_create_root(self):
        root = self.root + "/absent"
        mnt = h.make_tempdir("topofs-zkmnt-")
        self.addCleanup(h.remove_tempdir, mnt)
        r = h.run_topofs(["-f"] + self.server.topofs_args(root) + [mnt], timeout=40)
        if h.is_mounted(mnt):
            h.force_unmount(mnt)
            self.fail("mounted a missing zk root")
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(len(r.stderr.decode().splitlines()), 1, r.stderr)
        self.assertIsNone(self.store.get(root), "a missing root was created without create_root")
        self.mount(["-o", "create_root"], root=root)
        self.assertIsNotNone(self.store.get(root))
        # empty root: nothing but (at most) an empty .topofs-data
        names = os.listdir(self.p())
        self.assertIn(names, ([], [".topofs-data"]))
        if names:
            self.assertEqual(read_file(self.p(".topofs-data")), b"")

    def test_unreachable(self):
        mnt = h.make_tempdir("topofs-zkmnt-")
        self.addCleanup(h.remove_tempdir, mnt)
        args = ["-f", "--topo_implementation=zk2",
                "--topo_global_server_address=127.0.0.1:%d" % h.free_port(),
                "--topo_global_root=" + self.root, mnt]
        try:
            r = h.run_topofs(args, timeout=60)
        finally:
            if h.is_mounted(mnt):
                h.force_unmount(mnt)
                self.fail("mounted with an unreachable zk")
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(len(r.stderr.decode().splitlines()), 1, r.stderr)

    def test_source_form(self):
        self.load_small()
        self.mount(args=[self.server.source(self.root)])
        self.assertEqual(read_file(self.p("d/b")), b"bravo\x00")


if __name__ == "__main__":
    h.main()
