#!/usr/bin/python3
"""Real tools inside the mount: cp -a, tar -c / tar -x, cp -r, find, du,
each checked against the store with the independent client."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import read_file  # noqa: E402


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


class ToolsTest(h.TopofsTestCase):

    def setUp(self):
        super().setUp()
        self.base = {"src/a": b"alpha", "src/bin": bytes(range(256)),
                     "src/empty": b"", "src/sub/c": b"charlie\n",
                     "src/node": b"node value", "src/node/child": b"child",
                     "src/sp ace/\u540d": b"utf8"}
        self.load(self.base)
        self.mount()

    def copied(self, before, src, dst):
        """before plus a copy of src at dst (on ZooKeeper the directory
        znodes too, made by mkdir with empty data)."""
        exp = dict(before)
        for k, v in before.items():
            rel = k[len(self.prefix):]
            if rel == src or rel.startswith(src + "/"):
                exp[self.key(dst + rel[len(src):])] = v
        for k in self.mkdir_keys(dst):
            exp.setdefault(k, b"")
        return exp

    def test_cp_a_within_mount(self):
        before = self.snapshot()
        r = run(["cp", "-a", self.p("src"), self.p("dst")])
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertUnchanged(self.copied(before, "src", "dst"))

    def test_tar_c_x_within_mount(self):
        before = self.snapshot()
        tmp = h.make_tempdir("topofs-tar-")
        self.addCleanup(h.remove_tempdir, tmp)
        tarball = os.path.join(tmp, "t.tar")
        r = run(["tar", "-C", self.p("src"), "-cf", tarball, "."])
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertUnchanged(before, "(tar -c wrote)")
        os.mkdir(self.p("untar"))
        r = run(["tar", "-C", self.p("untar"), "-xf", tarball])
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertUnchanged(self.copied(before, "src", "untar"))
        # and the archive holds exactly the store's bytes
        out = h.make_tempdir("topofs-untar-")
        self.addCleanup(h.remove_tempdir, out)
        subprocess.run(["tar", "-C", out, "-xf", tarball], check=True)
        self.assertEqual(read_file(os.path.join(out, "bin")), bytes(range(256)))
        self.assertEqual(read_file(os.path.join(out, "node/.topofs-data")), b"node value")

    def test_tar_pipe_to_new_dir(self):
        before = self.snapshot()
        p1 = subprocess.Popen(["tar", "-C", self.p(), "-cf", "-", "src"],
                              stdout=subprocess.PIPE)
        os.mkdir(self.p("pipe"))
        r = subprocess.run(["tar", "-C", self.p("pipe"), "-xf", "-"], stdin=p1.stdout,
                           stderr=subprocess.PIPE)
        p1.stdout.close()
        self.assertEqual(p1.wait(), 0)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertUnchanged(self.copied(before, "src", "pipe/src"))

    def test_copy_in_and_out_of_mount(self):
        tmp = h.make_tempdir("topofs-cp-")
        self.addCleanup(h.remove_tempdir, tmp)
        r = run(["cp", "-a", self.p("src"), os.path.join(tmp, "out")])
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        for rel, v in self.expected_files().items():
            self.assertEqual(read_file(os.path.join(tmp, "out", rel[len("src/"):])), v, rel)
        before = self.snapshot()
        r = run(["cp", "-r", os.path.join(tmp, "out"), self.p("back")])
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertUnchanged(self.copied(before, "src", "back"))

    def test_find_and_du(self):
        before = self.snapshot()
        r = run(["find", self.p(), "-type", "f"])
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        found = sorted(os.path.relpath(x, self.p()) for x in
                       r.stdout.decode().splitlines())
        self.assertEqual(found, sorted(self.expected_files(before)))
        r = run(["du", "-sb", self.p()])
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertUnchanged(before)


if __name__ == "__main__":
    h.main()
