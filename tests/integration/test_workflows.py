#!/usr/bin/python3
"""The workflows users mount topofs for (issue 4), with the real tools and the
exact commands of docs/backup-and-migration.md, sections "Backups" and "Moving between etcd and
ZooKeeper":

- Backups: `tar -C MNT -cf backup.tar .` from a `-o ro,noephemeral` mount, and
  `tar -C MNT2 -xf backup.tar` into an empty root mounted with
  `-o create_root`, restore every key byte-exact (binary, empty, 1,000,000
  byte values, `.topofs-data`); leased keys / ephemeral znodes stay out;
  `tar -x`, `cp -a` and `rsync -a` exit 0 with nothing on stderr.
- Incremental backups: `rsync -a --itemize-changes MNT/ DIR/` a second time
  copies nothing; after one key changes in the store, exactly that file.
- Migration (starts an etcd AND a ZooKeeper, whatever TOPOFS_BACKEND is):
  `cp -a ZKMNT/. ETCDMNT/` and back give byte-identical key sets, and
  `diff -r` between an etcd mount and a ZooKeeper mount of the same generated
  topology is clean.

Every result is checked in the store with the independent client (etcd JSON
gateway / kazoo).  Runs against TOPOFS_BACKEND (etcd | zk).
"""

import os
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wf_util as w  # noqa: E402
from harness import read_file  # noqa: E402

HAVE_RSYNC = bool(shutil.which("rsync"))


def rel_snapshot(store, root):
    """{relpath: value} for every key (etcd) / znode (ZooKeeper, parents
    included) below root."""
    root = root.rstrip("/")
    return {k[len(root) + 1:]: v[0] for k, v in store.range(root + "/").items()
            if k.startswith(root + "/")}


def file_snapshot(store, root):
    """The records only: like rel_snapshot, but without ZooKeeper's plain
    directories (znodes with children and no data), which etcd cannot hold."""
    snap = rel_snapshot(store, root)
    if store.backend != "zk":
        return snap
    parents = set()
    for r in snap:
        parts = r.split("/")
        for i in range(1, len(parts)):
            parents.add("/".join(parts[:i]))
    return {r: v for r, v in snap.items() if r not in parents or v}


def dir_snapshot(top):
    """{relpath: bytes} of the files under a local directory."""
    out = {}
    for dp, dn, fn in os.walk(top):
        for f in fn:
            p = os.path.join(dp, f)
            out[os.path.relpath(p, top)] = read_file(p)
    return out


class WorkflowBase(h.TopofsTestCase):

    def setUp(self):
        super().setUp()
        self.work = h.make_tempdir("topofs-wf-")
        self.addCleanup(h.remove_tempdir, self.work)

    def sh(self, argv, timeout=300):
        """Run a command; assert exit 0 and an empty stderr."""
        rc, out, err = w.run(argv, timeout=timeout)
        self.assertEqual((rc, err.decode("utf-8", "replace")), (0, ""),
                         "%s failed" % " ".join(argv))
        return out.decode("utf-8", "surrogateescape")

    def assertSnapshotsEqual(self, got, want, what):
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        self.assertEqual((missing[:20], extra[:20]), ([], []),
                         "%s: key sets differ (missing, extra)" % what)
        bad = sorted(k for k in want if got[k] != want[k])
        self.assertEqual(bad[:20], [], "%s: values differ (lengths %r)" % (
            what, [(k, len(got[k]), len(want[k])) for k in bad[:5]]))

    def root2(self, tag):
        return "%s-%s" % (self.root, tag)


# --------------------------------------------------------------------------

class BackupTest(WorkflowBase):

    def test_tar_backup_restores_byte_exact(self):
        kvs = self.load()           # generated sample with metadata/ specials
        rels = {k[len(self.prefix):] for k in kvs}
        for special in ("metadata/empty", "metadata/binary", "metadata/large",
                        "metadata/dirdata", "metadata/dirdata/child"):
            self.assertIn(special, rels)
        self.assertEqual(len(kvs[self.key("metadata/large")]), 1000000)
        src = self.mount(["-o", "ro,noephemeral"])   # as the README says
        backup = os.path.join(self.work, "backup.tar")
        self.sh(["tar", "-C", src.mnt, "-cf", backup, "."])
        members = self.sh(["tar", "-tf", backup]).splitlines()
        self.assertIn("./metadata/dirdata/.topofs-data", members)
        # restore into an empty root: it has no keys, so -o create_root
        root2 = self.root2("restore")
        dst = self.mount(["-o", "create_root"], root=root2)
        self.sh(["tar", "-C", dst.mnt, "-xf", backup])
        self.assertSnapshotsEqual(rel_snapshot(self.store, root2),
                                  rel_snapshot(self.store, self.root),
                                  "restored root vs original root")
        self.assertEqual(self.store.get(root2 + "/metadata/dirdata"),
                         b"dir's own value\x00\n")
        self.assertEqual(self.store.get(root2 + "/metadata/empty"), b"")

    def test_tar_restore_with_writeback(self):
        """-o writeback: the same restore, with the creates applied in
        batches: byte-exact, in far fewer store transactions than keys;
        `sync MNT` waits for the queue; the unmount ends with status 0."""
        kvs = self.load()
        more = {"bulk/t%03d/Tablet" % i: b"t%d" % i for i in range(400)}
        kvs.update(self.load(more))
        src = self.mount(["-o", "noephemeral"])
        backup = os.path.join(self.work, "backup.tar")
        self.sh(["tar", "-C", src.mnt, "-cf", backup, "."])
        root2 = self.root2("writeback")
        dst = self.mount(["-o", "create_root,writeback"], root=root2)
        rev0 = self.store.revision()
        self.sh(["tar", "-C", dst.mnt, "-xf", backup])
        self.sh(["sync", dst.mnt])
        transactions = self.store.revision() - rev0
        sys.stderr.write("\n  [writeback] %d store transactions for %d keys\n"
                         % (transactions, len(kvs)))
        self.assertSnapshotsEqual(rel_snapshot(self.store, root2),
                                  rel_snapshot(self.store, self.root),
                                  "restored root vs original root")
        self.assertLess(transactions, len(kvs) * 3 / 4,
                        "%d store transactions for %d keys" % (transactions, len(kvs)))
        # what was restored reads back, from the cache and after a re-read
        for rel in ("metadata/empty", "metadata/large", "metadata/dirdata/child"):
            self.assertEqual(h.read_file(dst.path(rel)), self.store.get(root2 + "/" + rel))
        self.assertEqual(dst.unmount(), 0)

    def test_writeback_orders_and_reports(self):
        """-o writeback: a queued file reads back at once; a delete after it
        reaches the store after it; a create the store refuses (ZooKeeper:
        a parent whose ACL allows no create) fails the next sync with EIO,
        vanishes from the mount, and makes the exit status 1."""
        self.load({"open/a": b"a"})
        refused = self.is_zk
        if refused:
            from kazoo.security import make_acl
            self.store.zk.create(self.key("locked/seed"), b"s", makepath=True)
            self.store.zk.set_acls(self.key("locked"),
                                   [make_acl("world", "anyone", read=True)])
        m = self.mount(["-o", "writeback"])
        h.write_file(self.p("open/new"), b"new")
        self.assertEqual(h.read_file(self.p("open/new")), b"new")
        self.assertEqual(sorted(os.listdir(self.p("open"))), ["a", "new"])
        h.write_file(self.p("open/gone"), b"x")
        os.unlink(self.p("open/gone"))
        if refused:
            h.write_file(self.p("locked/x"), b"x")  # queued: close succeeds
            r = subprocess.run(["sync", m.mnt], stderr=subprocess.PIPE)
            self.assertNotEqual(r.returncode, 0, "sync hid a refused create")
            self.assertIn(b"Input/output error", r.stderr)
            self.assertIsNone(self.store.get(self.key("locked/x")))
            self.assertFalse(os.path.exists(self.p("locked/x")))
        self.sh(["sync", m.mnt])  # reported once
        self.assertEqual(self.store.get(self.key("open/new")), b"new")
        self.assertIsNone(self.store.get(self.key("open/gone")))
        m.expect_exit_status = 1 if refused else 0
        self.assertEqual(m.unmount(), m.expect_exit_status)
        if refused:
            self.assertIn("locked/x: not created (-o writeback)", m.log())

    def _add_ephemeral(self, rel, value):
        key = self.key(rel)
        if self.store.backend == "etcd":
            lease = self.store.lease_grant(120)
            self.addCleanup(self.store.lease_revoke, lease)
            self.store.put(key, value, lease=lease)
        else:
            self.store.put(key, value, ephemeral=True)
            self.addCleanup(self.store.delete, key)
        self.assertTrue(self.store.is_ephemeral(key))
        return key

    def test_noephemeral_backup_leaves_out_locks(self):
        self.load({"keyspaces/commerce/Keyspace": b"ks\n",
                   "keyspaces/commerce/shards/0/Shard": b"shard\n",
                   "keyspaces/commerce/locks/keep": b"not a lock\n"})
        lock = "keyspaces/commerce/locks/lock-0001"
        self._add_ephemeral(lock, b'{"Action":"Reshard"}')
        # a plain mount shows the lock (read-only): the option is what hides it
        plain = self.mount()
        self.assertTrue(os.path.isfile(plain.path(lock)))
        src = self.mount(["-o", "noephemeral"])
        self.assertFalse(os.path.exists(src.path(lock)))
        backup = os.path.join(self.work, "backup.tar")
        self.sh(["tar", "-C", src.mnt, "-cf", backup, "."])
        members = [m.rstrip("/") for m in self.sh(["tar", "-tf", backup]).splitlines()]
        self.assertNotIn("./" + lock, members)
        self.assertIn("./keyspaces/commerce/locks/keep", members)
        self.assertIn("./keyspaces/commerce/shards/0/Shard", members)
        root2 = self.root2("restore")
        dst = self.mount(["-o", "create_root"], root=root2)
        self.sh(["tar", "-C", dst.mnt, "-xf", backup])
        want = rel_snapshot(self.store, self.root)
        del want[lock]
        self.assertSnapshotsEqual(rel_snapshot(self.store, root2), want,
                                  "restore of a -o noephemeral backup")

    def test_cp_a_and_rsync_a_run_clean(self):
        kvs = self.load()
        want_files = h.expected_files(kvs, self.root)
        src = self.mount(["-o", "noephemeral"])
        # out of the mount
        d1 = os.path.join(self.work, "cp")
        d2 = os.path.join(self.work, "rsync")
        os.mkdir(d1)
        self.sh(["cp", "-a", src.mnt + "/.", d1 + "/"])
        self.assertSnapshotsEqual(dir_snapshot(d1), want_files, "cp -a out")
        if HAVE_RSYNC:
            self.sh(["rsync", "-a", src.mnt + "/", d2 + "/"])
            self.assertSnapshotsEqual(dir_snapshot(d2), want_files, "rsync -a out")
        # into empty roots through the mount
        want = rel_snapshot(self.store, self.root)
        r_cp = self.root2("cp")
        m_cp = self.mount(["-o", "create_root"], root=r_cp)
        self.sh(["cp", "-a", d1 + "/.", m_cp.mnt + "/"])
        self.assertSnapshotsEqual(rel_snapshot(self.store, r_cp), want, "cp -a in")
        if HAVE_RSYNC:
            r_rs = self.root2("rsync")
            m_rs = self.mount(["-o", "create_root"], root=r_rs)
            self.sh(["rsync", "-a", d1 + "/", m_rs.mnt + "/"])
            self.assertSnapshotsEqual(rel_snapshot(self.store, r_rs), want,
                                      "rsync -a in")

    @unittest.skipUnless(HAVE_RSYNC, "no rsync")
    def test_rsync_incremental(self):
        self.load()
        src = self.mount(["-o", "noephemeral"])
        dest = os.path.join(self.work, "backup")
        cmd = ["rsync", "-a", "--itemize-changes", src.mnt + "/", dest + "/"]
        first = self.sh(cmd).splitlines()
        self.assertTrue(any(l.startswith(">f") for l in first), first[:5])
        want = h.expected_files(
            {self.prefix + r: v
             for r, v in file_snapshot(self.store, self.root).items()},
            self.root)
        self.assertSnapshotsEqual(dir_snapshot(dest), want, "first rsync")
        # nothing changed: nothing is copied
        second = self.sh(cmd).splitlines()
        self.assertEqual([l for l in second if not l.startswith(".d")], [],
                         "the second rsync copied files")
        self.assertEqual(second, [], "the second rsync changed directory "
                         "attributes (unstable directory mtimes)")
        # another client changes one record, keeping its size
        rel = "keyspaces/commerce/Keyspace"
        old = self.store.get(self.key(rel))
        mtime0 = os.stat(src.path(rel)).st_mtime_ns
        # rsync compares whole seconds, and a znode's mtime is ZooKeeper's
        # clock: change it in a later second than the load wrote it
        time.sleep(1.1)
        new = old[:-1] + bytes([old[-1] ^ 0x55])
        self.store.put(self.key(rel), new)
        w.wait_visible(src.path(rel), new)
        # SPEC 6: visible within a second; the kernel's attributes follow
        # the content by the time its invalidation is processed
        deadline = time.time() + 1.0
        while (os.stat(src.path(rel)).st_mtime_ns == mtime0 and
               time.time() < deadline):
            time.sleep(0.02)
        third = self.sh(cmd).splitlines()
        files = [l for l in third if not l.startswith(".d")]
        self.assertEqual(len(files), 1, third)
        self.assertRegex(files[0], r"^>f\S* " + rel + "$")
        self.assertEqual(read_file(os.path.join(dest, rel)), new)
        want[rel] = new
        self.assertSnapshotsEqual(dir_snapshot(dest), want, "third rsync")


# --------------------------------------------------------------------------

class MigrationTest(WorkflowBase):
    """Both stores, whatever TOPOFS_BACKEND says."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.etcd_server = h.module_server("etcd")
        cls.zk_server = h.module_server("zk")
        cls.etcd = cls.etcd_server.client()
        cls.zk = cls.zk_server.client()
        cls.addClassCleanup(cls.zk.close)

    def gen(self, root):
        """The same generated topology for both stores (CellInfo records
        name one fixed server, so the values do not depend on the store)."""
        g, ct = h.gen_topology.generate(root=root, server="topo.example:2379")
        return h.gen_topology.flatten(root, g, ct)

    def mount_on(self, server, root, opts=None):
        extra = ["-o", opts] if opts else []
        return self.mount(args=server.topofs_args(root) + extra)

    def test_diff_r_etcd_vs_zk_clean(self):
        kvs = self.gen(self.root)
        self.etcd.put_many(kvs)
        h.gen_topology.zk_load(self.zk_server.address, kvs)
        em = self.mount_on(self.etcd_server, self.root, "ro,noephemeral")
        zm = self.mount_on(self.zk_server, self.root, "ro,noephemeral")
        rc, out, err = w.run(["diff", "-r", zm.mnt, em.mnt])
        self.assertEqual((rc, out.decode("utf-8", "replace"), err.decode()),
                         (0, "", ""))
        # diff -r compared the files: the same set on both sides
        self.assertEqual(sorted(dir_snapshot(zm.mnt)), sorted(dir_snapshot(em.mnt)))
        self.assertEqual(len(dir_snapshot(em.mnt)), len(kvs))

    def test_zk_to_etcd_and_back(self):
        kvs = self.gen(self.root)
        h.gen_topology.zk_load(self.zk_server.address, kvs)
        orig = rel_snapshot(self.zk, self.root)
        zm = self.mount_on(self.zk_server, self.root, "ro,noephemeral")
        r_etcd = self.root2("etcd")
        em = self.mount_on(self.etcd_server, r_etcd, "create_root")
        self.sh(["cp", "-a", zm.mnt + "/.", em.mnt + "/"])
        self.assertSnapshotsEqual(rel_snapshot(self.etcd, r_etcd),
                                  file_snapshot(self.zk, self.root),
                                  "etcd copy vs ZooKeeper records")
        rc, out, err = w.run(["diff", "-r", zm.mnt, em.mnt])
        self.assertEqual((rc, out, err), (0, b"", b""))
        # and back into an empty ZooKeeper root
        r_back = self.root2("back")
        zm2 = self.mount_on(self.zk_server, r_back, "create_root")
        self.sh(["cp", "-a", em.mnt + "/.", zm2.mnt + "/"])
        self.assertSnapshotsEqual(rel_snapshot(self.zk, r_back), orig,
                                  "ZooKeeper -> etcd -> ZooKeeper znodes")

    def test_etcd_to_zk_and_back(self):
        kvs = self.gen(self.root)
        self.etcd.put_many(kvs)
        orig = rel_snapshot(self.etcd, self.root)
        em = self.mount_on(self.etcd_server, self.root, "ro,noephemeral")
        r_zk = self.root2("zk")
        zm = self.mount_on(self.zk_server, r_zk, "create_root")
        self.sh(["cp", "-a", em.mnt + "/.", zm.mnt + "/"])
        self.assertSnapshotsEqual(file_snapshot(self.zk, r_zk), orig,
                                  "ZooKeeper copy vs etcd keys")
        # ZooKeeper parents: plain znodes with no data, as Vitess makes them
        for r, v in rel_snapshot(self.zk, r_zk).items():
            if r not in orig:
                self.assertEqual(v, b"", "parent znode %s has data" % r)
        rc, out, err = w.run(["diff", "-r", em.mnt, zm.mnt])
        self.assertEqual((rc, out, err), (0, b"", b""))
        r_back = self.root2("back")
        em2 = self.mount_on(self.etcd_server, r_back, "create_root")
        self.sh(["cp", "-a", zm.mnt + "/.", em2.mnt + "/"])
        self.assertSnapshotsEqual(rel_snapshot(self.etcd, r_back), orig,
                                  "etcd -> ZooKeeper -> etcd keys")


if __name__ == "__main__":
    h.main()
