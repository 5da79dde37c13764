#!/usr/bin/python3
"""Invocation: --help/--version, bad flags, unreachable server, missing root,
root that is a key (one stderr line, non-zero exit, nothing mounted), the
SOURCE form, -o options, both flag spellings, daemon mode, clean unmount."""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import read_file  # noqa: E402



def running(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class InvocationTest(h.TopofsTestCase):

    def setUp(self):
        super().setUp()
        self.load({"a": b"alpha", "d/b": b"bravo", "node": b"n", "node/c": b"c"})
        self.mnt = h.make_tempdir("topofs-inv-")
        self.errdir = h.make_tempdir("topofs-inv-err-")
        self.addCleanup(h.remove_tempdir, self.errdir)
        self.addCleanup(self._cleanup_mnt)

    def _cleanup_mnt(self):
        pids = h.topofs_pids(self.mnt)
        h.force_unmount(self.mnt)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        h.remove_tempdir(self.mnt)

    def check_fails(self, args, what, timeout=40):
        """Non-zero exit, exactly one line on stderr, nothing mounted."""
        errf = open(os.path.join(self.errdir, "stderr"), "w+b")
        proc = subprocess.Popen([h.topofs_bin()] + list(args), stdout=subprocess.DEVNULL,
                                stderr=errf, stdin=subprocess.DEVNULL)
        deadline = time.time() + timeout
        rc = None
        while time.time() < deadline:
            rc = proc.poll()
            if rc is not None:
                break
            if h.is_mounted(self.mnt):
                time.sleep(0.5)   # give a late error exit a chance
                rc = proc.poll()
                break
            time.sleep(0.05)
        if rc is None:
            mounted = h.is_mounted(self.mnt)
            if mounted:
                subprocess.run([h.FUSERMOUNT, "-u", self.mnt])
            h.stop_pid(proc)
            h.force_unmount(self.mnt)
            errf.seek(0)
            self.fail("%s: topofs did not exit (mountpoint %s); stderr:\n%s"
                      % (what, "MOUNTED" if mounted else "not mounted after %ss" % timeout,
                         errf.read().decode("utf-8", "replace")))
        errf.seek(0)
        err = errf.read().decode("utf-8", "replace")
        errf.close()
        rep = h.sanitizer_report(err)
        self.assertIsNone(rep, "%s: sanitizer report:\n%s" % (what, rep))
        mounted = h.is_mounted(self.mnt)
        self.assertFalse(mounted, "%s: the mountpoint got mounted" % what)
        self.assertNotEqual(rc, 0, "%s: exit status 0; stderr=%r" % (what, err))
        lines = [l for l in err.splitlines()]
        self.assertEqual(len(lines), 1,
                         "%s: expected exactly one stderr line, got %d:\n%s"
                         % (what, len(lines), err))
        self.assertTrue(lines[0].strip(), "%s: empty error line" % what)
        return lines[0]

    def walk_equals_store(self, mnt):
        files, _ = h.walk_files(mnt)
        want = self.expected_files()
        self.assertEqual(sorted(files), sorted(want))
        for rel, v in want.items():
            self.assertEqual(read_file(os.path.join(mnt, rel)), v, rel)

    # --------------------------------------------------------------
    def test_help_and_version(self):
        r = h.run_topofs(["--help"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"topo", (r.stdout + r.stderr).lower())
        r = h.run_topofs(["--version"])
        self.assertEqual(r.returncode, 0, r.stderr)
        out = (r.stdout + r.stderr).decode()
        self.assertRegex(out, r"\d+\.\d+")
        self.assertFalse(h.is_mounted(self.mnt))

    def test_unknown_flag(self):
        line = self.check_fails(["-f", "--no-such-flag"] + self.server.topofs_args(self.root)
                                + [self.mnt], "unknown flag")
        self.assertIn("no-such-flag", line)

    def test_bad_implementation(self):
        args = ["-f", "--topo_implementation=consul",
                "--topo_global_server_address=" + self.server.address,
                "--topo_global_root=" + self.root, self.mnt]
        self.check_fails(args, "bad --topo_implementation")

    def test_missing_mountpoint_arg(self):
        self.check_fails(["-f"] + self.server.topofs_args(self.root), "no mountpoint")

    def test_unreachable_server(self):
        port = h.free_port()
        args = ["--topo_implementation=" + self.server.impl,
                "--topo_global_server_address=127.0.0.1:%d" % port,
                "--topo_global_root=" + self.root, self.mnt]
        t0 = time.time()
        self.check_fails(["-f"] + args, "unreachable server (-f)")
        self.assertLess(time.time() - t0, 30)
        self.check_fails(args, "unreachable server (daemon)")

    @h.backends("etcd")
    def test_root_is_a_key(self):
        # (on ZooKeeper any znode can have children: a leaf root is an
        # empty directory, see test_zk.py)
        args = self.server.topofs_args(self.key("a")) + [self.mnt]
        self.check_fails(["-f"] + args, "root is a key")
        self.check_fails(args, "root is a key (daemon)")

    def test_missing_root(self):
        args = self.server.topofs_args(self.root + "/nonexistent") + [self.mnt]
        self.check_fails(["-f"] + args, "missing root")

    def test_bad_mountpoint(self):
        args = ["-f"] + self.server.topofs_args(self.root) + [self.mnt + "/nope"]
        self.check_fails(args, "mountpoint does not exist")

    def test_source_form(self):
        self.mount(args=[self.server.source(self.root)])
        self.walk_equals_store(self.m.mnt)

    def test_dash_o_root(self):
        self.mount(args=["--topo_implementation=" + self.server.impl,
                         "--topo_global_server_address=" + self.server.address,
                         "-o", "topo_global_root=" + self.root])
        self.walk_equals_store(self.m.mnt)

    def test_dash_o_everything(self):
        self.mount(args=["-o", "topo_implementation=%s,topo_global_server_address=%s,"
                         "topo_global_root=%s" % (self.server.impl, self.server.address,
                                                  self.root)])
        self.walk_equals_store(self.m.mnt)

    def test_dash_spelling(self):
        self.mount(args=["--topo-implementation=" + self.server.impl,
                         "--topo-global-server-address=" + self.server.address,
                         "--topo-global-root=" + self.root])
        self.walk_equals_store(self.m.mnt)

    def test_separate_value_spelling(self):
        self.mount(args=["--topo_implementation", self.server.impl,
                         "--topo_global_server_address", self.server.address,
                         "--topo_global_root", self.root])
        self.walk_equals_store(self.m.mnt)

    def test_underscore_spelling(self):
        self.mount()
        self.walk_equals_store(self.m.mnt)

    def test_several_addresses_first_dead(self):
        dead = "127.0.0.1:%d" % h.free_port()
        self.mount(args=["--topo_implementation=" + self.server.impl,
                         "--topo_global_server_address=%s,%s" % (dead, self.server.address),
                         "--topo_global_root=" + self.root])
        self.walk_equals_store(self.m.mnt)

    def test_clean_unmount(self):
        m = self.mount()
        h.write_file(self.p("new"), b"n")
        read_file(self.p("a"))
        rc = m.unmount()
        self.assertEqual(rc, 0, "topofs exit status after fusermount3 -u:\n" + m.log())
        self.assertFalse(h.is_mounted(m.mnt))
        self.assertEqual(self.store.get(self.key("new")), b"n")

    def test_daemon_mode(self):
        # a daemon's stderr is /dev/null: sanitizer reports go to files
        san = os.path.join(self.errdir, "sanitizer")
        r = h.run_topofs(self.server.topofs_args(self.root) + [self.mnt], timeout=30,
                         env=h.sanitizer_env(san))
        self.assertEqual(r.returncode, 0, r.stderr)
        deadline = time.time() + 10
        while not os.path.ismount(self.mnt) and time.time() < deadline:
            time.sleep(0.05)
        self.assertTrue(os.path.ismount(self.mnt), "daemonised topofs did not mount")
        self.assertEqual(read_file(os.path.join(self.mnt, "a")), b"alpha")
        pids = h.topofs_pids(self.mnt)
        self.assertTrue(pids, "no topofs process found for the mount")
        subprocess.run([h.FUSERMOUNT, "-u", self.mnt], check=True)
        deadline = time.time() + 10
        while time.time() < deadline and any(running(p) for p in pids):
            time.sleep(0.1)
        for p in pids:
            self.assertFalse(running(p), "daemon %d still running after unmount" % p)
        rep = h.sanitizer_files_report(san)
        self.assertIsNone(rep, "sanitizer report from the daemon:\n%s" % rep)

if __name__ == "__main__":
    h.main()
