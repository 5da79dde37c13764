#!/usr/bin/python3
"""Valgrind (issue 6, Sanitizers): one mount/use/unmount cycle of the plain
topofs under

    valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99

mount, `ls -R`, cat every file, write one file, rename it, delete it,
unmount: exit status 0 and "ERROR SUMMARY: 0 errors" in valgrind's log (no
invalid access, no uninitialised use, no definite leak).  Every step is
checked in the store too.

Skipped (with the reason) without valgrind, or when TOPOFS_BIN is the
ASan build (valgrind cannot run it; the integ.* run covers the plain
binary)."""

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

VALGRIND = shutil.which("valgrind")


def is_asan_build(path):
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


class ValgrindTest(h.TopofsTestCase):

    def setUp(self):
        if not VALGRIND:
            self.skipTest("valgrind is not installed (apt-get install valgrind)")
        if is_asan_build(h.topofs_bin()):
            self.skipTest("TOPOFS_BIN=%s is a sanitizer build, which valgrind "
                          "cannot run; the plain binary's run covers this"
                          % h.topofs_bin())
        super().setUp()

    def test_mount_use_unmount_cycle(self):
        kvs = self.load({"a": b"alpha", "d/b": b"bravo", "d/e/c": b"\x00\x01bin",
                         "d/e/f": b"x" * 5000})
        mnt = h.make_tempdir("topofs-mnt-")
        logdir = h.make_tempdir("topofs-vg-")
        self.addCleanup(h.remove_tempdir, logdir)
        self.addCleanup(h.remove_tempdir, mnt)
        vlog = os.path.join(logdir, "valgrind.log")
        errpath = os.path.join(logdir, "stderr")
        cmd = [VALGRIND, "--leak-check=full", "--errors-for-leak-kinds=definite",
               "--error-exitcode=99", "--log-file=" + vlog,
               h.topofs_bin(), "-f"] + self.server.topofs_args(self.root) + [mnt]
        env = dict(os.environ)
        for v in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            env.pop(v, None)
        with open(errpath, "wb") as err:
            proc = subprocess.Popen(cmd, stdout=err, stderr=err,
                                    stdin=subprocess.DEVNULL, env=env)

        def stop():
            if proc.poll() is None:
                h.force_unmount(mnt)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            h.force_unmount(mnt)
        self.addCleanup(stop)

        def logs():
            out = []
            for p in (errpath, vlog):
                try:
                    with open(p, "rb") as f:
                        out.append(f.read()[-6000:].decode("utf-8", "replace"))
                except OSError:
                    pass
            return "\n--- valgrind log:\n".join(out)

        deadline = time.time() + 40
        while time.time() < deadline and not h.is_mounted(mnt):
            if proc.poll() is not None:
                self.fail("topofs under valgrind exited (%s) before mounting:\n%s"
                          % (proc.returncode, logs()))
            time.sleep(0.1)
        self.assertTrue(h.is_mounted(mnt), "no mount within 40 s:\n" + logs())
        if self.is_zk:
            self.settle_store()

        # ls -R, cat every file
        r = subprocess.run(["ls", "-lR", mnt], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout)
        files, _ = h.walk_files(mnt)
        self.assertEqual(set(files), set(self.expected_files()))
        for rel in files:
            r = subprocess.run(["cat", os.path.join(mnt, rel)], stdout=subprocess.PIPE,
                               timeout=60)
            self.assertEqual(r.returncode, 0)
            self.assertEqual(r.stdout, kvs[self.key(rel)], rel)
        # write, rename, delete - each checked in the store
        h.write_file(os.path.join(mnt, "d/new"), b"written under valgrind")
        self.assertEqual(self.store.get(self.key("d/new")), b"written under valgrind")
        os.rename(os.path.join(mnt, "d/new"), os.path.join(mnt, "renamed"))
        self.assertIsNone(self.store.get(self.key("d/new")))
        self.assertEqual(self.store.get(self.key("renamed")), b"written under valgrind")
        os.unlink(os.path.join(mnt, "renamed"))
        self.assertIsNone(self.store.get(self.key("renamed")))
        self.assertEqual(self.snapshot() if self.is_etcd else self.expected_files(),
                         kvs if self.is_etcd else
                         {k[len(self.prefix):]: v for k, v in kvs.items()})
        # unmount
        r = subprocess.run([h.FUSERMOUNT, "-u", mnt], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout)
        try:
            rc = proc.wait(60)
        except subprocess.TimeoutExpired:
            self.fail("topofs under valgrind did not exit 60 s after unmount:\n"
                      + logs())
        with open(vlog, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        self.assertEqual(rc, 0, "exit status under valgrind (99: valgrind "
                         "errors):\n" + logs())
        self.assertIn("ERROR SUMMARY: 0 errors", text, logs())
        self.assertIn("definitely lost: 0 bytes", text.replace(",", "")
                      if "definitely lost" in text else "definitely lost: 0 bytes",
                      logs())


if __name__ == "__main__":
    h.main()
