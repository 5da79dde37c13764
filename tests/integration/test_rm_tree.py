#!/usr/bin/python3
"""`rm -r` of a tree through the mount removes every key below it, and
nothing else, however deep the directories that hold no key of their own
(etcd: a directory is only a prefix; each rmdir used to drop the prefix
above it, and `rm -r` then failed with ENOENT half way)."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


class RmTreeTest(h.TopofsTestCase):

    def test_rm_r_deep_tree(self):
        self.load({"a/b/c/d/file": b"1", "a/b/c/e": b"2", "a/x/y/z": b"3",
                   "keep/k": b"k"})
        m = self.mount()
        r = subprocess.run(["rm", "-r", os.path.join(m.mnt, "a")],
                           capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(self.keyset(), {self.key("keep/k")} |
                         ({self.key("keep")} if self.is_zk else set()))
        self.assertEqual(os.listdir(m.mnt), ["keep"])

    def test_rm_r_then_rmdir_parent(self):
        """Emptied by `rm -r` of its only subdirectory, a directory is
        still there to be removed, as on a local filesystem."""
        self.load({"p/q/r/s": b"1", "other": b"o"})
        m = self.mount()
        subprocess.run(["rm", "-r", os.path.join(m.mnt, "p", "q")],
                       check=True)
        self.assertEqual(os.listdir(os.path.join(m.mnt, "p")), [])
        os.rmdir(os.path.join(m.mnt, "p"))
        self.assertEqual(os.listdir(m.mnt), ["other"])
        self.assertEqual(self.keyset(), {self.key("other")})


if __name__ == "__main__":
    h.main()
