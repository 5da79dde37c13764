#!/usr/bin/python3
"""etcd, -o noephemeral: a directory exists only through the keys the mount
shows (SPEC 2), so one whose only keys are leased (a Vitess lock in
`keyspaces/ks/locks/`) is hidden, and a backup of the mount carries no
directory that the source did not have."""

import errno
import os
import subprocess
import sys
import tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

BACKENDS = ("etcd",)


class NoEphemeralDirsTest(h.TopofsTestCase):

    def setUp(self):
        super().setUp()
        self.load({"keyspaces/ks/Keyspace": b"ks",
                   "keyspaces/ks/shards/0/Shard": b"shard",
                   "keyspaces/ks/shards/0/locks/keep": b"persistent"})
        leases = [
            self.store.put_ephemeral(self.key("keyspaces/ks/locks/lock1"),
                                     b"lock"),
            self.store.put_ephemeral(self.key("keyspaces/ks/locks/deep/l2"),
                                     b"lock"),
            self.store.put_ephemeral(
                self.key("keyspaces/ks/shards/0/locks/l3"), b"lock"),
        ]
        for lease in leases:
            self.addCleanup(self.store.drop_ephemeral, lease)

    def test_directory_of_leased_keys_is_hidden(self):
        m = self.mount(["-o", "noephemeral"])
        ks = os.path.join(m.mnt, "keyspaces", "ks")
        self.assertEqual(sorted(os.listdir(ks)), ["Keyspace", "shards"])
        with self.assertRaises(OSError) as cm:
            os.stat(os.path.join(ks, "locks"))
        self.assertEqual(cm.exception.errno, errno.ENOENT)
        # a directory that also holds a persistent key stays, without its
        # leased keys
        self.assertEqual(os.listdir(os.path.join(ks, "shards", "0", "locks")),
                         ["keep"])
        out = subprocess.run(["ls", "-lR", m.mnt], capture_output=True,
                             check=True).stdout
        self.assertNotIn(b"lock1", out)
        self.assertNotIn(b"deep", out)

    def test_backup_has_no_stray_directory(self):
        m = self.mount(["-o", "noephemeral"])
        archive = os.path.join(h.make_tempdir("topofs-noeph-"), "b.tar")
        subprocess.run(["tar", "-cf", archive, "."], cwd=m.mnt, check=True)
        with tarfile.open(archive) as tf:
            names = sorted(n.rstrip("/") for n in tf.getnames())
        self.assertEqual(names, [
            ".", "./keyspaces", "./keyspaces/ks", "./keyspaces/ks/Keyspace",
            "./keyspaces/ks/shards", "./keyspaces/ks/shards/0",
            "./keyspaces/ks/shards/0/Shard", "./keyspaces/ks/shards/0/locks",
            "./keyspaces/ks/shards/0/locks/keep"])

    def test_shown_without_noephemeral(self):
        m = self.mount()
        ks = os.path.join(m.mnt, "keyspaces", "ks")
        self.assertEqual(sorted(os.listdir(ks)),
                         ["Keyspace", "locks", "shards"])
        self.assertEqual(sorted(os.listdir(os.path.join(ks, "locks"))),
                         ["deep", "lock1"])


if __name__ == "__main__":
    h.main()
