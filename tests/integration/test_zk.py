#!/usr/bin/python3
"""The zk2 backend against a real ZooKeeper (Debian's zookeeper, kazoo as
the independent client): mapping (a znode with children is a directory, one
without is a file, mkdir'd znodes stay directories), byte-exact reads,
one write per changed close, compare-and-set on the data version, O_EXCL,
EFBIG at ZooKeeper's 1 MiB limit, rename as one multi, ephemeral znodes
read-only, missing root / -o create_root, bad invocations.

Plus the ZooKeeper-only rules of SPEC 2: an empty-data leaf is an empty
file, a mkdir'd znode stays a directory, a directory znode's empty data is
not shown as .topofs-data (non-empty data is; unlinking it empties the data),
ephemeral (sequential) znodes are read-only, -o create_root; and a tree as
Vitess's zk2 writes it (parents with empty data, protobuf leaves, ephemeral
sequential lock znodes) is browsed exactly like the same tree in etcd and
edited in place (data version +1, czxid unchanged).

The change counter is the server's last zxid: every create/set/delete/multi
moves it by exactly one (so do session create/close: mount() waits for the
zxid to settle).  The rest of the suite runs against ZooKeeper too
(TOPOFS_BACKEND=zk, ctest integ.zk.*); this module holds what only
ZooKeeper has."""

import errno
import os
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import read_file, write_file, sha256  # noqa: E402

BACKENDS = ("zk",)     # read by CMakeLists.txt: registered as integ.zk.zk only

GEN = os.path.join(h.REPO, "tests", "tools", "gen_topology.py")


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


class ZkTest(h.ZkTestCase):

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
        # SPEC 2: a directory znode's empty data is not shown
        self.assertEqual(set(files) & set(optional), set(),
                         "empty data of directory znodes shown as .topofs-data")
        self.assertEqual(sorted(files), sorted(self.expected_files()))
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

    # ------------------------------------------------------------------
    # ZooKeeper-only mapping rules (SPEC 2)

    def test_empty_data_leaf_is_empty_file(self):
        self.load({"d/empty": b"", "d/full": b"x"})
        self.store.zk.create(self.key("top-empty"), b"")
        self.mount()
        for rel in ("d/empty", "top-empty"):
            st = os.stat(self.p(rel))
            self.assertTrue(stat.S_ISREG(st.st_mode), "%s: a leaf is not a file" % rel)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o644, rel)
            self.assertEqual(st.st_size, 0, rel)
            self.assertEqual(read_file(self.p(rel)), b"", rel)
            self.assertErrno(errno.ENOTDIR, os.listdir, self.p(rel))
            self.assertEqual(os.getxattr(self.p(rel), "user.zk.data_length").strip(), b"0")
        self.assertEqual(sorted(os.listdir(self.p("d"))), ["empty", "full"])
        # it stays a file when written, and the write is one set
        m0 = self.store.meta(self.key("d/empty"))
        z = self.zxid()
        write_file(self.p("d/empty"), b"now with data")
        self.assertOneWrite("d/empty", m0, z)
        self.assertTrue(os.path.isfile(self.p("d/empty")))

    def test_mkdir_creates_znode_and_stays_dir(self):
        self.load_small()
        self.mount()
        z = self.zxid()
        os.mkdir(self.p("made"))
        # the znode exists at once: empty data, persistent, no children
        st = self.store.stat(self.key("made"))
        self.assertIsNotNone(st, "mkdir did not create the znode")
        self.assertEqual(self.zxid(), z + 1, "mkdir was not exactly one create")
        self.assertEqual((self.store.get(self.key("made")), st.version, st.numChildren,
                          st.ephemeralOwner), (b"", 0, 0, 0))
        self.assertEqual(sorted(self.store.zk.get_children(self.key("made"))), [])
        # a childless znode, still a directory: now, after the cache has
        # expired, and after another client changed the parent listing
        self.assertTrue(os.path.isdir(self.p("made")))
        time.sleep(1.2)
        self.assertTrue(os.path.isdir(self.p("made")), "stopped being a directory")
        self.store.put(self.key("sibling"), b"s")
        time.sleep(1.2)
        entries = {e.name: e for e in os.scandir(self.p())}
        self.assertIn("sibling", entries)
        self.assertTrue(entries["made"].is_dir(), "readdir type of a mkdir'd dir")
        self.assertEqual(os.listdir(self.p("made")), [])
        self.assertEqual(stat.S_IMODE(os.stat(self.p("made")).st_mode), 0o755)
        # a child comes and goes: still a directory
        write_file(self.p("made/f"), b"F")
        os.unlink(self.p("made/f"))
        self.assertTrue(os.path.isdir(self.p("made")))
        self.assertEqual(os.listdir(self.p("made")), [])
        self.assertEqual(self.store.get(self.key("made")), b"")
        # nested mkdir -p: one znode per level, parents first
        z = self.zxid()
        os.makedirs(self.p("made/x/y"))
        self.assertEqual(self.zxid(), z + 2)
        self.assertEqual(self.store.get(self.key("made/x/y")), b"")
        self.assertTrue(os.path.isdir(self.p("made/x/y")))

    def test_rmdir_of_mkdir_dir_deletes_znode(self):
        self.load_small()
        self.mount()
        os.mkdir(self.p("gone"))
        self.assertIsNotNone(self.store.stat(self.key("gone")))
        z = self.zxid()
        os.rmdir(self.p("gone"))
        self.assertIsNone(self.store.stat(self.key("gone")),
                          "rmdir left the znode in ZooKeeper")
        self.assertEqual(self.zxid(), z + 1)
        time.sleep(1.2)
        self.assertFalse(os.path.exists(self.p("gone")), "the removed directory came back")

    def test_topofs_data_only_for_nonempty_dir_data(self):
        # p: empty data + child (as zk2 writes parents); q: data + child
        self.load({"p/kid": b"k", "q/kid": b"k"})
        self.store.zk.set(self.key("q"), b"q's own data")
        self.mount()
        self.assertEqual(sorted(os.listdir(self.p("p"))), ["kid"],
                         "empty data of a directory znode is shown")
        self.assertFalse(os.path.exists(self.p("p/.topofs-data")))
        self.assertEqual(sorted(os.listdir(self.p("q"))), [".topofs-data", "kid"])
        self.assertEqual(read_file(self.p("q/.topofs-data")), b"q's own data")
        self.assertEqual(os.stat(self.p("q/.topofs-data")).st_size, len(b"q's own data"))
        # writing p/.topofs-data sets p's data: one set, same czxid
        m0, z = self.store.meta(self.key("p")), self.zxid()
        write_file(self.p("p/.topofs-data"), b"p now")
        self.assertOneWrite("p", m0, z)
        self.assertEqual(self.store.get(self.key("p")), b"p now")
        self.assertIsNone(self.store.stat(self.key("p/.topofs-data")))
        self.assertEqual(sorted(os.listdir(self.p("p"))), [".topofs-data", "kid"])
        # unlinking .topofs-data empties the data; the znode and its
        # children stay, and the name is no longer listed
        m0, z = self.store.meta(self.key("q")), self.zxid()
        os.unlink(self.p("q/.topofs-data"))
        self.assertOneWrite("q", m0, z)
        self.assertEqual(self.store.get(self.key("q")), b"")
        self.assertEqual(self.store.get(self.key("q/kid")), b"k")
        self.assertEqual(sorted(os.listdir(self.p("q"))), ["kid"])
        self.assertFalse(os.path.exists(self.p("q/.topofs-data")))
        self.assertTrue(os.path.isdir(self.p("q")))
        # the root's own data works the same way
        self.store.zk.set(self.root, b"root data")
        time.sleep(1.2)
        self.assertIn(".topofs-data", os.listdir(self.p()))
        self.assertEqual(read_file(self.p(".topofs-data")), b"root data")

    def test_ephemeral_sequential_locks_readonly(self):
        self.load_small()
        kept = self.put_ephemeral("d/locks/", b'{"Action": "lock"}', sequence=True)
        other = h.ZkClient(self.server.address)     # a second session
        try:
            gone = other.put_ephemeral(self.key("d/locks/"), b"short", sequence=True)
            gone_rel = gone[len(self.prefix):]
            self.mount()
            names = sorted(os.listdir(self.p("d/locks")))
            self.assertEqual(names, sorted([os.path.basename(kept),
                                            os.path.basename(gone_rel)]))
            path = self.p(kept)
            st = os.stat(path)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o444)
            self.assertEqual(read_file(path), b'{"Action": "lock"}')
            self.assertEqual(os.getxattr(path, "user.topo.ephemeral").strip(), b"1")
            self.assertEqual(os.getxattr(self.p("a"), "user.topo.ephemeral").strip(), b"0")
            before, z = self.snapshot(), self.zxid()
            self.assertErrno(errno.EACCES, open, path, "wb")
            self.assertErrno(errno.EACCES, open, path, "ab")
            self.assertErrno(errno.EACCES, os.truncate, path, 0)
            self.assertUnchanged(before)
            self.assertEqual(self.zxid(), z)
            self.assertTrue(self.store.is_ephemeral(self.key(kept)))
        finally:
            other.close()                              # its session ends
        deadline = time.time() + 3
        while time.time() < deadline and os.path.exists(self.p(gone_rel)):
            time.sleep(0.1)
        self.assertFalse(os.path.exists(self.p(gone_rel)),
                         "an ephemeral znode of a closed session is still shown")
        self.assertTrue(os.path.exists(self.p(kept)))

    def test_create_root_details(self):
        root = self.root + "/fresh"
        z = self.zxid()
        self.mount(["-o", "create_root"], root=root)
        st = self.store.stat(root)
        self.assertIsNotNone(st, "-o create_root did not create the root")
        self.assertEqual((self.store.get(root), st.ephemeralOwner, st.numChildren),
                         (b"", 0, 0))
        self.assertEqual(os.listdir(self.p()), [])
        self.assertTrue(os.path.isdir(self.p()))
        write_file(self.p("f"), b"first")
        self.assertEqual(self.store.get(root + "/f"), b"first")
        self.assertEqual(set(self.store.keys(self.root)), {root, root + "/f"},
                         "create_root wrote other znodes")
        self.assertGreater(self.zxid(), z)
        # an existing root: -o create_root writes nothing (compared on the
        # znodes' stats: the zxid also counts topofs's session create/close)
        self.umount_check_clean()
        before = self.store.stat(root), self.store.stat(self.root)
        self.mount(["-o", "create_root"], root=root)
        self.assertEqual(os.listdir(self.p()), ["f"])
        self.assertEqual((self.store.stat(root), self.store.stat(self.root)), before)


class VitessTreeTest(h.TopofsTestCase):
    """A tree as Vitess's zk2 plugin writes it - persistent parents with
    empty data, protobuf leaves, ephemeral sequential lock znodes under
    locks/ - is browsed exactly like the same tree in etcd (same `find`
    output and bytes as gen_topology.py --list) and edited in place."""
    BACKEND = "zk"

    LOCKS = ("keyspaces/commerce/locks", "keyspaces/customer/shards/-80/locks")

    def gen(self, *target):
        # the same CellInfo server_address for both stores, so the bytes match
        r = subprocess.run([sys.executable, GEN, "--root", self.root, "--list",
                            "--server-address", "zk1:2181,zk2:2181"]
                           + list(target), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = {}
        for line in r.stdout.decode("utf-8").splitlines():
            rel, digest, n = line.split("\t")
            rows[rel] = (digest, int(n))
        return rows

    @staticmethod
    def files_for(rows):
        """--list rows -> files the mount shows (a node that also has
        children holds its data in .topofs-data)."""
        prefixes = {"/".join(r.split("/")[:i]) for r in rows
                    for i in range(1, r.count("/") + 1)}
        return {(r + "/.topofs-data" if r in prefixes else r): v for r, v in rows.items()}

    def find(self, *args):
        r = subprocess.run(["find", self.p()] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, r.stderr)
        return sorted(r.stdout.decode("utf-8").splitlines())

    def check_tree(self, rows, locks):
        want = self.files_for(rows)
        want.update({rel: (sha256(v), len(v)) for rel, v in locks.items()})
        self.assertEqual(self.find("-type", "f", "-printf", "%P\n"), sorted(want))
        for rel, (digest, n) in sorted(want.items()):
            data = read_file(self.p(rel))
            self.assertEqual((sha256(data), len(data)), (digest, n), rel)
            self.assertEqual(os.stat(self.p(rel)).st_size, n, rel)
        for rel in locks:
            self.assertEqual(stat.S_IMODE(os.stat(self.p(rel)).st_mode), 0o444, rel)
        return self.find("-printf", "%y %m %P\n"), self.find("-type", "f", "-printf", "%s %P\n")

    def test_zk2_tree_browsed_like_etcd_and_edited(self):
        # ZooKeeper, written as zk2 does
        rows = self.gen("--zk", self.server.address)
        self.assertIn("keyspaces/commerce/Keyspace", rows)
        for k in self.store.keys(self.root):     # parents: empty data, as zk2
            if self.store.stat(k).numChildren and not k.endswith("/metadata/dirdata"):
                self.assertEqual(self.store.get(k), b"", "generator parent %s" % k)
        locks = {}
        for d in self.LOCKS:
            rel = self.put_ephemeral(d + "/", b'{"Action":"CreateShard","HostName":"vtctld-1"}',
                                     sequence=True)
            locks[rel] = b'{"Action":"CreateShard","HostName":"vtctld-1"}'
        self.mount()
        zk_view = self.check_tree(rows, locks)

        # the same tree in etcd (keys only; locks as leased keys)
        etcd = h.module_server("etcd")
        estore = etcd.client()
        erows = self.gen("--etcd", etcd.endpoint)
        self.assertEqual(erows, rows)
        for rel, v in locks.items():
            lease = estore.put_ephemeral(self.key(rel), v)
            self.addCleanup(estore.drop_ephemeral, lease)
        zk_mount = self.m
        self.mount(args=etcd.topofs_args(self.root))
        etcd_view = self.check_tree(rows, locks)
        self.assertEqual(zk_view[0], etcd_view[0], "types/modes differ from etcd")
        self.assertEqual(zk_view[1], etcd_view[1], "file sizes differ from etcd")
        self.umount_check_clean()
        self.m = zk_mount

        # edit a leaf: one set - data version +1, czxid unchanged
        before = self.store.range(self.prefix)
        rel = "keyspaces/commerce/Keyspace"
        m0, z = self.store.meta(self.key(rel)), self.store.revision()
        new = h.gen_topology.enc_keyspace(h.random.Random(7)) + b"\x00"
        r = subprocess.run(["cp", "/dev/stdin", self.p(rel)], input=new,
                           stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertOneWrite(rel, m0, z)
        self.assertEqual(self.store.get(self.key(rel)), new)
        self.assertEqual(read_file(self.p(rel)), new)
        # nothing else changed: values, versions, ephemeral owners
        after = self.store.range(self.prefix)
        del before[self.key(rel)], after[self.key(rel)]
        self.assertEqual({k: (v[0], v[2], v[3]) for k, v in after.items()},
                         {k: (v[0], v[2], v[3]) for k, v in before.items()})
        for lrel in locks:
            self.assertTrue(self.store.is_ephemeral(self.key(lrel)), lrel)
        # and a shard record through a tool that rewrites in place (sed -i)
        srel = "keyspaces/customer/shards/-80/Shard"
        m0, z = self.store.meta(self.key(srel)), self.store.revision()
        r = subprocess.run(["sed", "-i", "s/zone1/zone9/", self.p(srel)],
                           stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.store.get(self.key(srel)),
                         m0.value.replace(b"zone1", b"zone9", 1))
        self.assertOneWrite(srel, m0, z)
        self.assertEqual(set(self.store.keys(self.root)), set(before) | {self.key(rel)},
                         "the edits created or deleted znodes")


if __name__ == "__main__":
    h.main()
