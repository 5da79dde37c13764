#!/usr/bin/python3
"""The deployment view, -o cells (SPEC 9, issue 23): one mount of the global
root shows global/ and one directory per cell of global/cells/*/CellInfo.

A deployment on two servers of the backend (two single-node etcds, or two
ZooKeeper servers), every record written and checked with the independent
client:

    server A   <base>/global   the global root (CellInfo records)
               <base>/zone2    zone2's root
    server B   <base>/zone1    zone1's root

Covered: the listing and every file byte-exact against the servers; writes
land on the cell's server and root; renames between top directories are
EXDEV; the JSON view inside a cell; user.topo.revision per top directory
(etcd); server B down (zone1/ fails with EIO within -o timeout, the rest
works, a view still mounts) and back (zone1/ recovers without a remount);
CellInfo created, deleted and changed by another client followed within a
second; a tar of the view restored into an empty view (-o cells,create_root)
with every root byte-exact and no stray key; -o snapshot backups (etcd) and
its refusal (ZooKeeper); mkdir of a top-level name that is no cell (EPERM);
-o cells=LIST; the mount fails only if the global servers do."""

import errno
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import gen_topology, read_file, write_file  # noqa: E402

TIMEOUT = 2          # -o timeout in the outage test
LIVE_BOUND = 1.5     # CellInfo changes show within 1 s (asserted with slack)
RECOVER_BOUND = 20   # a cell's servers back: zone1/ works again within this


def cellinfo(server_address, root):
    """topodata.CellInfo: 1 server_address, 2 root."""
    return gen_topology.enc_cellinfo(None, server_address, root)


def new_server(backend):
    return (h.ZkServer() if backend == "zk" else h.EtcdServer()).start()


def nodes(store, root):
    """{full key: value} below root (ZooKeeper: every znode, parents too)."""
    return {k: v[0] for k, v in store.range(root + "/").items()
            if k.startswith(root + "/")}


def wipe(store, root):
    """Remove root and everything below it (etcd: the keys under root/)."""
    if store.backend == "zk":
        if store.zk.exists(root):
            store.zk.delete(root, recursive=True)
    else:
        store.delete_prefix(root + "/")


def walk(top):
    """({relpath: bytes}, {relpath of directories}) under top; a directory
    that cannot be listed raises (os.walk would hide an EIO)."""
    files, dirs = {}, set()

    def _raise(e):
        raise e
    for dp, dn, fn in os.walk(top, onerror=_raise):
        rel = os.path.relpath(dp, top)
        for d in dn:
            dirs.add(os.path.normpath(os.path.join(rel, d)))
        for f in fn:
            files[os.path.normpath(os.path.join(rel, f))] = read_file(
                os.path.join(dp, f))
    return files, dirs


def timed(func, *args):
    """h.timed with this module's bound on a call while a store is down."""
    return h.timed(func, *args, limit=TIMEOUT * 4 + 10)


class CellsTest(h.TopofsTestCase):

    TEST_TIMEOUT = 150

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.A, cls.storeA = cls.server, cls.store
        cls.B = new_server(cls.backend)
        cls.addClassCleanup(cls.B.stop)
        cls.storeB = cls.B.client()
        if hasattr(cls.storeB, "close"):
            cls.addClassCleanup(cls.storeB.close)

    def setUp(self):
        super().setUp()
        self.base = self.root           # /t/<test>-<random>
        self.groot = self.base + "/global"
        self.work = h.make_tempdir("topofs-cells-")
        self.addCleanup(h.remove_tempdir, self.work)

    # -- the deployment
    def deploy(self, B=None, storeB=None):
        """Write the deployment: global and zone2 on A, zone1 on B (the
        class's, or the given server).  Sets self.tops: {top directory:
        (store, root)}; returns {top: {relpath: value}} as generated."""
        B = B or self.B
        storeB = storeB or self.storeB
        g, ct = gen_topology.generate(("zone1", "zone2"), keyspaces=2,
                                      shards=2, tablets=2, with_cells=True,
                                      root=self.groot, special=False)
        self.croot = {"zone1": self.base + "/zone1", "zone2": self.base + "/zone2"}
        g["cells/zone1/CellInfo"] = cellinfo(B.address, self.croot["zone1"])
        g["cells/zone2/CellInfo"] = cellinfo(self.A.address, self.croot["zone2"])
        g["metadata/binary"] = bytes(range(256))
        data = {"global": g,
                "zone1": dict(ct["zone1"][1]),
                "zone2": dict(ct["zone2"][1])}
        data["zone1"]["metadata/where"] = b"zone1 on B\n"
        data["zone2"]["metadata/where"] = b"zone2 on A\n"
        data["zone2"]["metadata/empty"] = b""
        self.tops = {"global": (self.storeA, self.groot),
                     "zone1": (storeB, self.croot["zone1"]),
                     "zone2": (self.storeA, self.croot["zone2"])}
        for top, tree in data.items():
            store, root = self.tops[top]
            store.put_many({root + "/" + k: v for k, v in tree.items()})
        self.addCleanup(self._wipe_base)
        return data

    def _wipe_base(self):
        # (self.tops's client of B: the outage test replaces it on zk)
        for store in (self.storeA, self.tops["zone1"][0]):
            try:
                wipe(store, self.base)
            except Exception:
                pass

    def view_args(self, opts="cells", root=None):
        return self.A.topofs_args(root or self.groot) + ["-o", opts]

    def mount_view(self, opts="cells"):
        return self.mount(args=self.view_args(opts))

    def expected(self, top, tops=None):
        store, root = (tops or self.tops)[top]
        return h.expected_view(nodes(store, root), root, self.backend)

    def assertTopMatches(self, m, top, tops=None, what=""):
        want_files, want_dirs = self.expected(top, tops)
        self.assertTrue(want_files, "%s: nothing in the store for %s" % (what, top))
        files, dirs = walk(m.path(top))
        self.assertEqual(sorted(files), sorted(want_files),
                         "%s %s/: file names vs the store" % (what, top))
        bad = sorted(r for r in want_files if files[r] != want_files[r])
        self.assertEqual(bad, [], "%s %s/: bytes differ from the store" % (what, top))
        self.assertEqual(dirs, want_dirs, "%s %s/: directories vs the store" % (what, top))

    def assertTopMatchesSoon(self, m, top, tops=None, what="", limit=3.0):
        """assertTopMatches once another mount's or client's change had
        time to arrive (watches: well within a second)."""
        want = self.expected(top, tops)
        self.poll(lambda: walk(m.path(top)) == want, limit)
        self.assertTopMatches(m, top, tops, what)

    def poll(self, cond, limit):
        """Seconds until cond() is true (polled every 20 ms), or None."""
        t0 = time.time()
        while True:
            try:
                if cond():
                    return time.time() - t0
            except OSError:
                pass
            if time.time() - t0 > limit:
                return None
            time.sleep(0.02)

    def sh(self, cmd, **kw):
        r = subprocess.run(cmd, capture_output=True, timeout=120, **kw)
        self.assertEqual((r.returncode, r.stderr.decode("utf-8", "replace")),
                         (0, ""), "%s failed" % " ".join(cmd))
        return r.stdout

    # ------------------------------------------------------------------ (a)
    def test_view_lists_cells_byte_exact(self):
        self.deploy()
        m = self.mount_view()
        self.assertEqual(os.listdir(m.mnt), ["global", "zone1", "zone2"],
                         "the view's top directory, in order")
        for top in ("global", "zone1", "zone2"):
            self.assertTrue(os.path.isdir(m.path(top)))
            self.assertTopMatches(m, top)
        # global/ is exactly what a plain mount of the global root shows
        plain = self.mount(args=self.A.topofs_args(self.groot))
        self.assertEqual(walk(plain.mnt), walk(m.path("global")))

    def test_writes_land_on_the_cells_server_and_root(self):
        data = self.deploy()
        m = self.mount_view()
        before = {s: nodes(s, self.base) for s in (self.storeA, self.storeB)}
        tablet = "tablets/zone1-0000000999/Tablet"
        os.makedirs(m.path("zone1/tablets/zone1-0000000999"))
        write_file(m.path("zone1/" + tablet), b"tablet 999 in zone1")
        write_file(m.path("zone2/metadata/where"), b"zone2 rewritten")
        write_file(m.path("global/metadata/note"), b"in the global root")
        os.rename(m.path("zone1/metadata/where"), m.path("zone1/metadata/here"))
        z1, z2 = self.croot["zone1"], self.croot["zone2"]
        wantB = dict(before[self.storeB])
        wantB[z1 + "/" + tablet] = b"tablet 999 in zone1"
        if self.is_zk:
            wantB[z1 + "/tablets/zone1-0000000999"] = b""
        wantB[z1 + "/metadata/here"] = wantB.pop(z1 + "/metadata/where")
        wantA = dict(before[self.storeA])
        wantA[z2 + "/metadata/where"] = b"zone2 rewritten"
        wantA[self.groot + "/metadata/note"] = b"in the global root"
        self.assertEqual(nodes(self.storeB, self.base), wantB, "server B")
        self.assertEqual(nodes(self.storeA, self.base), wantA, "server A")
        self.assertEqual(data["zone1"]["metadata/where"], b"zone1 on B\n")
        # renames between top directories: EXDEV, nothing changes
        for src, dst in (("zone1/SrvVSchema", "zone2/SrvVSchema.moved"),
                         ("global/RoutingRules", "zone1/RoutingRules"),
                         ("zone2/keyspaces", "zone1/keyspaces2"),
                         ("zone2/metadata/where", "global/metadata/where")):
            self.assertErrno(errno.EXDEV, os.rename, m.path(src), m.path(dst))
        self.assertEqual(nodes(self.storeB, self.base), wantB, "server B after EXDEV")
        self.assertEqual(nodes(self.storeA, self.base), wantA, "server A after EXDEV")
        self.assertTrue(os.path.exists(m.path("zone1/SrvVSchema")))
        self.assertFalse(os.path.exists(m.path("zone2/SrvVSchema.moved")))

    def test_cell_directory_attributes_do_not_change_on_connect(self):
        """A cell's directory has the same attributes before and after its
        connection completes: `tar` of a cell right after mounting must not
        say "file changed as we read it" (exit 1)."""
        self.deploy()
        for i in range(3):
            m = self.mount_view()
            first = {top: os.stat(m.path(top)) for top in ("zone1", "zone2")}
            out = os.path.join(self.work, "cell.tar")
            r = subprocess.run(["tar", "-cf", out, "."], cwd=m.path("zone1"),
                               capture_output=True, timeout=60)
            self.assertEqual((r.returncode, r.stderr), (0, b""),
                             "mount %d: tar of zone1/ right after mounting" % i)
            for top, st in first.items():
                now = os.stat(m.path(top))
                self.assertEqual(
                    (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_nlink),
                    (now.st_ino, now.st_mtime_ns, now.st_ctime_ns, now.st_nlink),
                    "mount %d: %s/'s (ino, mtime, ctime, nlink) right after "
                    "mounting vs once used" % (i, top))
            self.umount_check_clean(m)

    @h.backends("etcd")
    def test_revision_xattr_per_top_directory(self):
        self.deploy()
        m = self.mount_view()
        if self.storeB.revision() == self.storeA.revision():   # tell them apart
            self.storeB.put(self.croot["zone1"] + "/metadata/bump", b"b")
        revA, revB = self.storeA.revision(), self.storeB.revision()
        for top, rev in (("global", revA), ("zone2", revA), ("zone1", revB)):
            self.assertEqual(int(os.getxattr(m.path(top), "user.topo.revision")),
                             rev, "user.topo.revision of %s/" % top)

    def test_json_view_reads_cell_records(self):
        data = self.deploy()
        m = self.mount_view("cells,view=json")
        tablet = sorted(r for r in data["zone1"] if r.startswith("tablets/"))[0]
        uid = int(tablet.split("/")[1].split("-")[1])
        got = json.loads(read_file(m.path("zone1/" + tablet)))
        self.assertEqual(got["alias"], {"cell": "zone1", "uid": uid})
        self.assertTrue(got["hostname"].endswith(".vt.example"), got)
        self.assertEqual(os.stat(m.path("zone1/" + tablet)).st_size,
                         len(read_file(m.path("zone1/" + tablet))))
        srv = json.loads(read_file(m.path("zone2/keyspaces/commerce/SrvKeyspace")))
        self.assertIn("partitions", srv)
        ci = json.loads(read_file(m.path("global/cells/zone1/CellInfo")))
        self.assertEqual(ci, {"server_address": self.B.address,
                              "root": self.croot["zone1"]})
        # raw files stay raw inside a cell
        self.assertEqual(read_file(m.path("zone1/metadata/where")), b"zone1 on B\n")

    # ------------------------------------------------------------------ (b)
    def test_cell_servers_down_and_back(self):
        # the class's server B: this test stops it and starts it again
        # (same port and data; a private one would cost a start, and on
        # ZooKeeper a JVM's start takes seconds)
        B, storeB = self.B, self.storeB
        self.deploy()
        m = self.mount(args=self.view_args("cells,timeout=%d" % TIMEOUT))
        self.assertEqual(read_file(m.path("zone1/metadata/where")), b"zone1 on B\n")
        m3 = self.mount(args=self.view_args("cells,timeout=%d" % TIMEOUT))
        time.sleep(0.5)    # its cells connect (in the background); untouched
        if self.is_zk:
            storeB.close()     # (its retries would only fill the log)
        B.pause()
        t_down = time.time()
        err, t = timed(write_file, m.path("zone1/metadata/new"), b"x")
        self.assertIsInstance(err, OSError, "a write in zone1/ with B down did not fail")
        self.assertEqual(err.errno, errno.EIO, err)
        self.assertLess(t, TIMEOUT * 2 + 1, "write in zone1/ with B down took %.1fs" % t)
        err, t = timed(os.unlink, m.path("zone1/metadata/where"))
        self.assertIsInstance(err, OSError, "an unlink in zone1/ with B down did not fail")
        self.assertEqual(err.errno, errno.EIO, err)
        self.assertLess(t, TIMEOUT * 2 + 1, "unlink in zone1/ with B down took %.1fs" % t)
        err, t = timed(os.listdir, m.path("zone1/never-seen-dir"))
        self.assertIsInstance(err, OSError)
        self.assertIn(err.errno, (errno.EIO, errno.ENOENT), err)
        self.assertLess(t, TIMEOUT * 2 + 1)
        self.assertTrue([l for l in m.log().splitlines()
                         if "zone1" in l and ("down" in l or "EIO" in l)],
                        "no log line says zone1 is down:\n" + m.log())
        # the rest of the view keeps working, without waiting for B
        err, t = timed(os.listdir, m.mnt)
        self.assertIsNone(err, err)
        self.assertLess(t, 1.0, "listing the view's top took %.1fs" % t)
        self.assertEqual(os.listdir(m.mnt), ["global", "zone1", "zone2"])
        for top in ("global", "zone2"):
            err, t = timed(write_file, m.path(top + "/metadata/during"), top.encode())
            self.assertIsNone(err, "%s/ write with B down: %s" % (top, err))
            self.assertLess(t, 1.0, "%s/ write with B down took %.1fs" % (top, t))
            root = self.tops[top][1]
            self.assertEqual(self.storeA.get(root + "/metadata/during"), top.encode())
            err, t = timed(walk, m.path(top))
            self.assertIsNone(err, "%s/ walk with B down: %s" % (top, err))
            self.assertLess(t, 2.0)
        self.assertTopMatches(m, "zone2", what="B down:")
        # a view mounted while B is down: mounts, lists zone1, zone1/ EIO
        m2 = self.mount(args=self.view_args("cells,timeout=%d" % TIMEOUT))
        self.assertEqual(os.listdir(m2.mnt), ["global", "zone1", "zone2"])
        # m2 and m3 never looked zone1 up (nothing in the kernel's cache);
        # m2 mounted with B down, m3 before
        for mm, name in ((m2, "mounted with B down"), (m3, "mounted before")):
            with self.subTest("the down cell is still listed: `ls -l MNT` "
                              "works (view %s)" % name):
                r = subprocess.run(["ls", "-l", mm.mnt], capture_output=True,
                                   timeout=30)
                self.assertEqual((r.returncode, r.stderr), (0, b""),
                                 "ls -l MNT with B down, view %s" % name)
                err, t = timed(os.stat, mm.path("zone1"))
                self.assertIsNone(err, "stat of zone1/ itself with B down, "
                                  "view %s: %s" % (name, err))
        err, t = timed(os.listdir, m2.path("zone1"))
        self.assertIsInstance(err, OSError, "zone1/ listed with its server down")
        self.assertEqual(err.errno, errno.EIO, err)
        self.assertLess(t, TIMEOUT * 2 + 1)
        self.assertTopMatches(m2, "global", what="B down, second view:")
        # B back (same port, same data): zone1/ works again, no remount
        B.resume()
        t_up = time.time()
        if self.is_zk:
            storeB = B.client()
            type(self).storeB = storeB     # the next tests' client of B
            type(self).addClassCleanup(storeB.close)
            self.tops["zone1"] = (storeB, self.croot["zone1"])
        z1 = self.croot["zone1"]
        for mm, name in ((m, "after"), (m2, "after2")):
            def ok(mm=mm, name=name):
                write_file(mm.path("zone1/metadata/" + name), b"recovered")
                return True
            took = self.poll(ok, RECOVER_BOUND)
            if took is None:
                self.fail_with_log("zone1/ did not recover within %ss" % RECOVER_BOUND)
            self.assertEqual(storeB.get(z1 + "/metadata/" + name), b"recovered")
        sys.stderr.write("\n  [cells outage] B down %.1fs; zone1/ writable %.1fs "
                         "after B came back\n" % (t_up - t_down, time.time() - t_up))
        self.assertIsNone(storeB.get(z1 + "/metadata/new"))
        self.assertEqual(storeB.get(z1 + "/metadata/where"), b"zone1 on B\n")
        for mm in (m, m2):
            self.assertTopMatchesSoon(mm, "zone1", what="B back:")

    # ------------------------------------------------------------------ (c)
    def test_cells_follow_cellinfo_live(self):
        self.deploy()
        z3root = self.base + "/zone3"
        z3 = {"SrvVSchema": b"zone3's SrvVSchema", "tablets/zone3-0000000300/Tablet":
              gen_topology.enc_tablet("zone3", 300, "commerce", "0", "PRIMARY",
                                      "h3.vt.example", 15000, 3306, 1700000000)}
        self.storeA.put_many({z3root + "/" + k: v for k, v in z3.items()})
        m = self.mount_view()
        self.assertEqual(os.listdir(m.mnt), ["global", "zone1", "zone2"])
        # another client adds a CellInfo
        ci3 = self.groot + "/cells/zone3/CellInfo"
        self.storeA.put(ci3, cellinfo(self.A.address, z3root))
        took = self.poll(lambda: "zone3" in os.listdir(m.mnt), 5)
        self.assertIsNotNone(took, "zone3/ did not appear")
        self.assertLessEqual(took, LIVE_BOUND, "zone3/ appeared after %.2fs" % took)
        self.assertEqual(os.listdir(m.mnt), ["global", "zone1", "zone2", "zone3"])
        tops = dict(self.tops, zone3=(self.storeA, z3root))
        self.assertTopMatches(m, "zone3", tops)
        # ... deletes it (ZooKeeper: with the parent it leaves empty, as zk2)
        self.storeA.delete(ci3)
        if self.is_zk:
            self.storeA.delete(self.groot + "/cells/zone3")
        took = self.poll(lambda: "zone3" not in os.listdir(m.mnt), 5)
        self.assertIsNotNone(took, "zone3/ did not go")
        self.assertLessEqual(took, LIVE_BOUND, "zone3/ went after %.2fs" % took)
        self.assertFalse(os.path.exists(m.path("zone3")))
        self.assertEqual(os.listdir(m.mnt), ["global", "zone1", "zone2"])
        # ... changes zone2's root: zone2/ shows the new root
        before = walk(m.path("zone2"))     # (cached by the kernel now)
        z2b = self.base + "/zone2b"
        self.storeA.put_many({z2b + "/metadata/where": b"zone2's new root\n",
                              z2b + "/SrvVSchema": b"\x12\x00new"})
        self.storeA.put(self.groot + "/cells/zone2/CellInfo",
                        cellinfo(self.A.address, z2b))
        took = self.poll(lambda: sorted(os.listdir(m.path("zone2")))
                         == ["SrvVSchema", "metadata"]
                         and read_file(m.path("zone2/metadata/where"))
                         == b"zone2's new root\n", 5)
        self.assertIsNotNone(took, "zone2/ still shows %s" % sorted(before[0])[:5])
        self.assertLessEqual(took, LIVE_BOUND, "zone2/ switched after %.2fs" % took)
        tops["zone2"] = (self.storeA, z2b)
        self.assertTopMatches(m, "zone2", tops, what="new root:")
        # and a write there goes to the new root, never the old one
        write_file(m.path("zone2/metadata/w"), b"to zone2b")
        self.assertEqual(self.storeA.get(z2b + "/metadata/w"), b"to zone2b")
        self.assertIsNone(self.storeA.get(self.croot["zone2"] + "/metadata/w"))

    def test_cell_moves_to_other_servers(self):
        """CellInfo.server_address changed: the cell reconnects to B."""
        self.deploy()
        z2 = self.croot["zone2"]
        self.storeB.put_many({z2 + "/metadata/where": b"zone2 moved to B\n"})
        m = self.mount_view()
        self.assertEqual(read_file(m.path("zone2/metadata/where")), b"zone2 on A\n")
        self.storeA.put(self.groot + "/cells/zone2/CellInfo", cellinfo(self.B.address, z2))
        took = self.poll(lambda: read_file(m.path("zone2/metadata/where"))
                         == b"zone2 moved to B\n", 5)
        self.assertIsNotNone(took, "zone2/ did not move to B")
        self.assertLessEqual(took, LIVE_BOUND, "zone2/ moved after %.2fs" % took)
        self.assertTopMatches(m, "zone2", dict(self.tops, zone2=(self.storeB, z2)))

    # ------------------------------------------------------------------ (d)
    def backup_restore(self, opts):
        """tar of a view mounted with opts, every root wiped, the archive
        extracted into an empty view (-o cells,create_root): every root
        byte-exact and no stray key on either server."""
        self.deploy()
        want = {s: nodes(s, self.base) for s in (self.storeA, self.storeB)}
        src = self.mount_view(opts)
        backup = os.path.join(self.work, "backup.tar")
        self.sh(["tar", "-C", src.mnt, "-cf", backup, "."])
        self.umount_check_clean(src)
        members = self.sh(["tar", "-tf", backup]).decode().splitlines()
        tops = [x for x in members if x.count("/") == 2 and x.endswith("/")]
        self.assertEqual(tops, ["./global/", "./zone1/", "./zone2/"],
                         "top directories in the archive, in order")
        self.assertLess(members.index("./global/cells/zone1/CellInfo"),
                        members.index("./zone1/"), "global/ first in the archive")
        for top in ("global", "zone1", "zone2"):
            store, root = self.tops[top]
            wipe(store, root)
        self.assertEqual(nodes(self.storeB, self.base), {})
        self.assertEqual(nodes(self.storeA, self.base), {})
        dst = self.mount_view("cells,create_root")
        self.assertEqual(os.listdir(dst.mnt), ["global"], "the empty view")
        self.sh(["tar", "-C", dst.mnt, "-xf", backup])
        self.assertEqual(os.listdir(dst.mnt), ["global", "zone1", "zone2"])
        for s, name in ((self.storeA, "server A"), (self.storeB, "server B")):
            got = nodes(s, self.base)
            missing = sorted(set(want[s]) - set(got))
            extra = sorted(set(got) - set(want[s]))
            self.assertEqual((missing[:10], extra[:10]), ([], []),
                             "%s after the restore: (missing, stray) keys" % name)
            bad = sorted(k for k in want[s] if got[k] != want[s][k])
            self.assertEqual(bad[:10], [], "%s: values differ" % name)
        return want

    def test_tar_backup_restores_every_root(self):
        self.backup_restore("cells,ro,noephemeral")

    def test_backup_and_restore_commands_with_cells(self):
        """topofs-backup -o cells archives the whole deployment (on etcd
        named with the global's revision), topofs-restore -o cells puts it
        back into the wiped roots: every root byte-exact, no stray key. (The
        code before failed the backup: no revision on the view's top.)"""
        self.deploy()
        want = {s: nodes(s, self.base) for s in (self.storeA, self.storeB)}
        prog = os.path.dirname(os.path.abspath(h.topofs_bin()))
        out = os.path.join(self.work, "archives")
        source = self.A.source(self.groot)
        r = subprocess.run([os.path.join(prog, "topofs-backup"), "-o",
                            "cells,timeout=5", source, out],
                           capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        archive = r.stdout.decode().strip()
        if self.A.backend == "etcd":
            self.assertRegex(archive, r"-r%d\.tar\.zst$" % self.storeA.revision())
        listing = self.sh(["sh", "-c", "zstd -q -dc '%s' | tar -tf -" % archive])
        self.assertEqual(
            sorted({x.split("/")[1] for x in listing.decode().splitlines()
                    if x.count("/") >= 2}), ["global", "zone1", "zone2"])
        for top in ("global", "zone1", "zone2"):
            store, root = self.tops[top]
            wipe(store, root)
        r = subprocess.run([os.path.join(prog, "topofs-restore"), "-o",
                            "cells,timeout=5", archive, source],
                           capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        for s, name in ((self.storeA, "server A"), (self.storeB, "server B")):
            got = nodes(s, self.base)
            self.assertEqual(got, want[s], "%s after topofs-restore" % name)

    @h.backends("etcd")
    def test_snapshot_backup_pins_every_store(self):
        data = self.deploy()
        revA, revB = self.storeA.revision(), self.storeB.revision()
        want = {top: self.expected(top) for top in self.tops}
        m = self.mount_view("cells,snapshot,noephemeral")
        for top, rev in (("global", revA), ("zone2", revA), ("zone1", revB)):
            self.assertEqual(int(os.getxattr(m.path(top), "user.topo.revision")),
                             rev, "pinned revision of %s/" % top)
        # every store changes after the mount; the backup does not
        for top in ("global", "zone1", "zone2"):
            store, root = self.tops[top]
            store.put(root + "/metadata/where", b"changed after the snapshot")
            store.put(root + "/metadata/later", b"new after the snapshot")
            k = sorted(data[top])[0]
            store.delete(root + "/" + k)
        self.storeA.put(self.groot + "/cells/zone4/CellInfo",
                        cellinfo(self.A.address, self.base + "/zone2"))
        time.sleep(1.2)
        self.assertEqual(os.listdir(m.mnt), ["global", "zone1", "zone2"])
        out = os.path.join(self.work, "out")
        os.mkdir(out)
        backup = os.path.join(self.work, "snap.tar")
        self.sh(["tar", "-C", m.mnt, "-cf", backup, "."])
        self.sh(["tar", "-C", out, "-xf", backup])
        self.assertEqual(sorted(os.listdir(out)), ["global", "zone1", "zone2"])
        for top in ("global", "zone1", "zone2"):
            files, dirs = walk(os.path.join(out, top))
            self.assertEqual(sorted(files), sorted(want[top][0]),
                             "%s/ in the snapshot backup" % top)
            self.assertEqual(files, want[top][0], "%s/ bytes" % top)
        self.assertErrno(errno.EROFS, write_file, m.path("zone1/metadata/x"), b"x")

    @h.backends("zk")
    def test_snapshot_refused_on_zookeeper(self):
        self.deploy()
        m = h.Mount(self.view_args("cells,snapshot"))
        self.addCleanup(m.force_stop)
        with self.assertRaises(h.MountError) as cm:
            m.start(10)
        self.assertIn("snapshot", str(cm.exception))

    # ------------------------------------------------------------------ (e)
    def test_mkdir_of_a_name_that_is_no_cell(self):
        self.deploy()
        m = self.mount_view()
        before = {s: nodes(s, self.base) for s in (self.storeA, self.storeB)}
        self.assertErrno(errno.EPERM, os.mkdir, m.path("zone9"))
        self.assertFalse(os.path.exists(m.path("zone9")))
        self.assertEqual(os.listdir(m.mnt), ["global", "zone1", "zone2"])
        self.assertEqual({s: nodes(s, self.base) for s in before}, before)
        took = self.poll(lambda: "zone9" in m.log(), 2)
        self.assertIsNotNone(took, "no log line names zone9:\n" + m.log())

    def test_cells_option_restricts(self):
        self.deploy()
        m = self.mount_view("cells=zone1")
        self.assertEqual(os.listdir(m.mnt), ["global", "zone1"])
        self.assertTopMatches(m, "zone1")
        self.assertFalse(os.path.exists(m.path("zone2")))
        # a new cell is not shown either
        self.storeA.put(self.groot + "/cells/zone3/CellInfo",
                        cellinfo(self.A.address, self.croot["zone2"]))
        time.sleep(1.2)
        self.assertEqual(os.listdir(m.mnt), ["global", "zone1"])

    def test_cells_option_with_a_list(self):
        """A list of cells: -o cells=A,B (the names up to the next option),
        -o cells=A\\,B, or --cells=A,B."""
        self.deploy()
        self.storeA.put(self.groot + "/cells/zone3/CellInfo",
                        cellinfo(self.A.address, self.croot["zone2"]))
        for args in (self.view_args("cells=zone2,zone1"),
                     self.view_args("cells=zone2,zone1,ro"),
                     self.view_args("cells=zone2\\,zone1"),
                     self.A.topofs_args(self.groot) + ["--cells=zone2,zone1"]):
            m = self.mount(args=args)
            self.assertEqual(os.listdir(m.mnt), ["global", "zone1", "zone2"],
                             " ".join(args))
            self.assertTopMatches(m, "zone2")

    def test_cell_named_global_is_skipped(self):
        self.deploy()
        self.storeA.put(self.groot + "/cells/global/CellInfo",
                        cellinfo(self.A.address, self.croot["zone2"]))
        m = self.mount_view()
        self.assertEqual(os.listdir(m.mnt), ["global", "zone1", "zone2"])
        self.assertTopMatches(m, "global")

    def test_cellinfo_that_is_no_record_is_not_shown(self):
        self.deploy()
        self.storeA.put(self.groot + "/cells/bad/CellInfo", b"\xff\xff not a record")
        self.storeA.put(self.groot + "/cells/noroot/CellInfo",
                        cellinfo(self.A.address, ""))
        m = self.mount_view()
        self.assertEqual(os.listdir(m.mnt), ["global", "zone1", "zone2"])
        for name in ("bad", "noroot"):
            self.assertFalse(os.path.exists(m.path(name)))
            self.assertIsNotNone(self.poll(lambda: "'%s'" % name in m.log(), 2),
                                 "no log line names cell %s:\n%s" % (name, m.log()))
        self.assertTopMatches(m, "zone1")

    def test_mount_fails_only_without_the_global_servers(self):
        port = h.free_port()
        args = ["--topo_implementation=" + self.A.impl,
                "--topo_global_server_address=127.0.0.1:%d" % port,
                "--topo_global_root=" + self.groot, "-o", "cells,timeout=2"]
        m = h.Mount(args)
        self.addCleanup(m.force_stop)
        t0 = time.time()
        with self.assertRaises(h.MountError):
            m.start(20)
        self.assertLess(time.time() - t0, 15)
        self.assertFalse(h.is_mounted(m.mnt))
        if self.is_etcd:   # one store's revision cannot pin a deployment
            self.deploy()
            m = h.Mount(self.view_args("cells,revision=1"))
            self.addCleanup(m.force_stop)
            with self.assertRaises(h.MountError):
                m.start(10)


if __name__ == "__main__":
    h.main()
