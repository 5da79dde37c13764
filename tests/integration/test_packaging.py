#!/usr/bin/python3
"""The Debian package (issue 9): packaging/build-deb makes
topofs_VERSION_ARCH.deb; its contents and control fields are checked with
dpkg-deb, it is unpacked with `dpkg -x` into a throwaway directory (never
installed), and that tree is used like an installed one:

- the mount(8) helpers: `mount -t fuse.topofs` / `mount -t topofs` and an
  fstab line (`mount -T FILE`), with options that mount(8) and systemd add;
  `umount` ends the daemon;
- the man page renders without warnings and names every --help option;
- a daemon logs to syslog as "topofs" (a test socket at /dev/log when there
  is no syslog daemon), a foreground topofs to stderr only;
- the systemd unit passes `systemd-analyze verify`, and its command line
  mounts (ready when it returns, as Type=forking expects) and SIGTERM
  unmounts;
- topofs-backup@.service and .timer pass `systemd-analyze verify`, and the
  service's command line, expanded with an instance's settings file as
  systemd expands it, runs the packaged topofs-backup (which finds the
  packaged topofs beside it) and writes a verified archive; the man pages of
  topofs-backup and topofs-restore render without warnings.

mount(8) runs helpers from /sbin only and clears PATH for them, so the
mount(8) tests put a throwaway /sbin/mount.fuse.topofs and /sbin/mount.topofs
there (under a lock, never over a real file, removed at cleanup and at
exit) that run the unpacked helper with the unpacked topofs first in PATH.
The helper is also run directly, as mount(8) would.

Runs once, against the plain build (the package holds topofs, not
topofs-asan)."""

import atexit
import errno
import fcntl
import gzip
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import read_file  # noqa: E402

BACKENDS = ("etcd",)

BUILD_DEB = os.path.join(h.REPO, "packaging", "build-deb")
CHECK_MAN = os.path.join(h.REPO, "packaging", "check-man")
MARK = "# throwaway helper of topofs test_packaging.py"
LOCK = "/run/lock/topofs-test-packaging.lock"

# every file, link and directory of the package (dpkg-deb -c)
EXPECTED_FILES = {
    "./usr/bin/topofs": ("-rwxr-xr-x", None),
    "./sbin/mount.topofs": ("-rwxr-xr-x", None),
    "./sbin/mount.fuse.topofs": ("lrwxrwxrwx", "mount.topofs"),
    "./usr/share/man/man1/topofs.1.gz": ("-rw-r--r--", None),
    "./lib/systemd/system/topofs@.service": ("-rw-r--r--", None),
    "./usr/bin/topofs-backup": ("-rwxr-xr-x", None),
    "./usr/bin/topofs-restore": ("lrwxrwxrwx", "topofs-backup"),
    "./usr/share/man/man1/topofs-backup.1.gz": ("-rw-r--r--", None),
    "./usr/share/man/man1/topofs-restore.1.gz": ("-rw-r--r--", None),
    "./lib/systemd/system/topofs-backup@.service": ("-rw-r--r--", None),
    "./lib/systemd/system/topofs-backup@.timer": ("-rw-r--r--", None),
}
EXPECTED_DIRS = {"./", "./usr/", "./usr/bin/", "./usr/share/", "./usr/share/man/",
                 "./usr/share/man/man1/", "./sbin/", "./lib/", "./lib/systemd/",
                 "./lib/systemd/system/"}
EXPECTED_DEPENDS = {"fuse3", "libfuse3-3", "libcurl4", "libjansson4",
                    "libzookeeper-mt2", "libc6",
                    "python3", "tar", "zstd"}     # for topofs-backup


def project_version():
    with open(os.path.join(h.REPO, "CMakeLists.txt")) as f:
        m = re.search(r"project\(topofs\s+VERSION\s+([0-9.]+)", f.read())
    return m.group(1)


def build_dir():
    """The CMake build directory of $TOPOFS_BIN, if it is one."""
    d = os.path.dirname(os.path.abspath(h.topofs_bin()))
    return d if os.path.exists(os.path.join(d, "CMakeCache.txt")) else None



def package_of(path):
    """The Debian package that holds the file path (also where /lib is a
    link to /usr/lib: dpkg knows the name the package shipped)."""
    real = os.path.realpath(path)
    for cand in (path, real, real.replace("/usr/lib/", "/lib/", 1),
                 os.path.join(os.path.dirname(path), os.path.basename(real))):
        r = subprocess.run(["dpkg", "-S", cand], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
        if r.returncode == 0:
            return r.stdout.decode().split(":")[0]
    return None


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pids, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def stop_daemons(mnt):
    """Cleanup: unmount mnt and end whatever topofs serves it, by pid."""
    pids = h.topofs_pids(mnt)
    h.force_unmount(mnt)
    for p in wait_gone(pids, 5):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_gone(pids, 5)
    h.force_unmount(mnt)


# --------------------------------------------------------------------------
# throwaway files outside the test's own directories: the mount(8) helpers
# in /sbin and a syslog socket at /dev/log. Each is created only where
# nothing is, and removed by the test's cleanup or, failing that, at exit.

_throwaway = set()


def _remove_throwaway():
    for path in list(_throwaway):
        remove_throwaway(path)


atexit.register(_remove_throwaway)


def remove_throwaway(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    _throwaway.discard(path)


def is_our_helper(path):
    try:
        with open(path, errors="replace") as f:
            return MARK in f.read(4096)
    except OSError:
        return False


def put_helper(path, tree):
    """A throwaway mount(8) helper at path that runs the unpacked helper
    with the unpacked topofs first in PATH; False if a real one is there."""
    if os.path.lexists(path):
        if not is_our_helper(path):
            return False
        os.unlink(path)          # left behind by a killed run of this test
    text = ("#!/bin/sh\n%s\nPATH=%s/usr/bin:/usr/sbin:/usr/bin:/sbin:/bin "
            "exec %s/sbin/%s \"$@\"\n"
            % (MARK, tree, tree, os.path.basename(path)))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755)
    _throwaway.add(path)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return True


class SyslogSocket:
    """A datagram socket at /dev/log collecting what syslog(3) sends, when
    no syslog daemon owns /dev/log."""

    PATH = "/dev/log"

    def __init__(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.PATH)       # fails if anything is there
        _throwaway.add(self.PATH)
        self.lines = []

    def close(self):
        self.sock.close()
        remove_throwaway(self.PATH)

    def read(self, wait=0.5):
        """Every message received so far (decoded), waiting up to `wait`
        seconds for one more."""
        self.sock.settimeout(wait)
        try:
            while True:
                self.lines.append(self.sock.recv(8192).decode("utf-8", "replace"))
                self.sock.settimeout(0.1)
        except (socket.timeout, BlockingIOError):
            pass
        return list(self.lines)


# --------------------------------------------------------------------------

class PackagingTest(h.TopofsTestCase):

    @classmethod
    def setUpClass(cls):
        if os.path.basename(h.topofs_bin()) != "topofs":
            raise unittest.SkipTest(
                "the package holds the plain topofs build, not %s: tested "
                "by the plain run" % os.path.basename(h.topofs_bin()))
        super().setUpClass()
        cls.lock = open(LOCK, "w")
        cls.addClassCleanup(cls.lock.close)
        fcntl.flock(cls.lock, fcntl.LOCK_EX)   # one run at a time (throwaways)
        cls.work = h.make_tempdir("topofs-pkg-")
        cls.addClassCleanup(h.remove_tempdir, cls.work)
        env = dict(os.environ)
        if build_dir():
            env["BUILD"] = build_dir()
        r = subprocess.run([BUILD_DEB, os.path.join(cls.work, "out")], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=900)
        if r.returncode != 0:
            raise AssertionError("build-deb failed (%d):\n%s%s" % (
                r.returncode, r.stdout.decode(), r.stderr.decode()))
        cls.build_deb_stderr = r.stderr.decode()
        cls.deb = r.stdout.decode().strip().splitlines()[-1]
        cls.tree = os.path.join(cls.work, "root")
        subprocess.run(["dpkg", "-x", cls.deb, cls.tree], check=True)
        cls.topofs = os.path.join(cls.tree, "usr", "bin", "topofs")

    def setUp(self):
        super().setUp()
        self.load({"a": b"alpha\n", "d/b": b"bravo", "d/e/f": b"\x00\xffbin"})

    # -- helpers
    def mountpoint(self):
        mnt = h.make_tempdir("topofs-pkg-mnt-")
        self.addCleanup(h.remove_tempdir, mnt)
        self.addCleanup(stop_daemons, mnt)
        return mnt

    def source(self):
        return "etcd2://%s%s" % (self.server.address, self.root)

    def env(self):
        """The unpacked tree's programs first in PATH."""
        env = dict(os.environ)
        env["PATH"] = os.path.join(self.tree, "usr", "bin") + ":" + env["PATH"]
        return env

    def run_ok(self, cmd, **kw):
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=60, **kw)
        self.assertEqual(r.returncode, 0, "%s: exit %d\n%s%s" % (
            " ".join(cmd), r.returncode, r.stdout.decode(), r.stderr.decode()))
        return r

    def helpers_in_sbin(self):
        """Throwaway /sbin helpers for mount(8) (see the module docstring)."""
        for name in ("mount.fuse.topofs", "mount.topofs"):
            path = os.path.join("/sbin", name)
            if not put_helper(path, self.tree):
                self.skipTest("%s is installed for real: not replacing it" % path)
            self.addCleanup(remove_throwaway, path)

    def assertServes(self, mnt, source=None):
        """mnt is a topofs mount of self.root that shows the store, served
        by one topofs from the unpacked tree; returns its pid."""
        self.assertTrue(h.is_mounted(mnt), "%s is not mounted" % mnt)
        files, _ = h.walk_files(mnt)
        want = self.expected_files()
        self.assertEqual(sorted(files), sorted(want))
        for rel, v in want.items():
            self.assertEqual(read_file(os.path.join(mnt, rel)), v, rel)
        r = self.run_ok(["findmnt", "-n", "-o", "FSTYPE,SOURCE", mnt])
        self.assertEqual(r.stdout.decode().split(),
                         ["fuse.topofs", source or self.source()])
        pids = h.topofs_pids(mnt)
        self.assertEqual(len(pids), 1, "topofs processes for %s: %s" % (mnt, pids))
        self.assertEqual(os.readlink("/proc/%d/exe" % pids[0]), self.topofs)
        return pids[0]

    def assertUmountEnds(self, mnt, pid):
        self.run_ok(["umount", mnt])
        self.assertFalse(h.is_mounted(mnt))
        self.assertEqual(wait_gone([pid]), [], "topofs still runs after umount")

    # -- the package
    def test_contents(self):
        r = self.run_ok(["dpkg-deb", "-c", self.deb])
        files, dirs = {}, set()
        for line in r.stdout.decode().splitlines():
            parts = line.split()
            mode, owner, path = parts[0], parts[1], parts[5]
            self.assertEqual(owner, "root/root", line)
            if mode.startswith("d"):
                self.assertEqual(mode, "drwxr-xr-x", line)
                dirs.add(path)
            else:
                target = parts[7] if mode.startswith("l") else None
                files[path] = (mode, target)
        self.assertEqual(files, EXPECTED_FILES)
        self.assertEqual(dirs, EXPECTED_DIRS)
        self.assertNotIn("warning", self.build_deb_stderr)
        # the binary is stripped, the man page gzip'd roff
        sections = self.run_ok(["readelf", "-S", "-W", self.topofs]).stdout.decode()
        self.assertIn(".text", sections)
        self.assertNotIn(".symtab", sections)
        self.assertNotIn(".debug_info", sections)
        with gzip.open(os.path.join(self.tree, "usr/share/man/man1/topofs.1.gz")) as f:
            self.assertTrue(f.read().startswith(b'.\\" DO NOT MODIFY'))

    def test_control(self):
        arch = self.run_ok(["dpkg", "--print-architecture"]).stdout.decode().strip()
        version = project_version()
        self.assertEqual(os.path.basename(self.deb),
                         "topofs_%s_%s.deb" % (version, arch))
        fields = {}
        out = self.run_ok(["dpkg-deb", "-f", self.deb]).stdout.decode()
        for line in out.splitlines():
            if line[:1] not in (" ", ""):
                k, v = line.split(":", 1)
                fields[k] = v.strip()
        self.assertEqual(fields["Package"], "topofs")
        self.assertEqual(fields["Version"], version)
        self.assertEqual(fields["Architecture"], arch)
        self.assertTrue(fields["Maintainer"] and fields["Description"])
        deps = {d.strip().split()[0] for d in fields["Depends"].split(",")}
        self.assertEqual(deps, EXPECTED_DEPENDS)
        # every library topofs links is declared: its package is a dependency
        needed = re.findall(r"NEEDED\s+(\S+)", self.run_ok(
            ["objdump", "-p", self.topofs]).stdout.decode())
        ldd = self.run_ok(["ldd", self.topofs]).stdout.decode()
        for so in needed:
            m = re.search(r"^\s*%s => (\S+)" % re.escape(so), ldd, re.M)
            self.assertTrue(m, "%s not resolved:\n%s" % (so, ldd))
            pkg = package_of(m.group(1))
            self.assertIn(pkg, deps, "%s (%s) is not a dependency" % (so, m.group(1)))
        # md5sums match the files
        sums = subprocess.run(["dpkg-deb", "-I", self.deb, "md5sums"],
                              stdout=subprocess.PIPE, check=True).stdout.decode()
        listed = {}
        for line in sums.splitlines():
            digest, path = line.split(None, 1)
            listed[path] = digest
        self.assertEqual(sorted(listed), sorted(
            p[2:] for p, (mode, _) in EXPECTED_FILES.items() if mode[0] == "-"))
        r = subprocess.run(["md5sum", "-c", "--quiet", "-"], cwd=self.tree,
                           input=sums.encode(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        self.assertEqual(r.returncode, 0, r.stdout.decode())

    def test_version_and_help(self):
        r = self.run_ok([self.topofs, "--version"])
        self.assertTrue(r.stdout.decode().startswith("topofs %s " % project_version()),
                        r.stdout)
        self.assertTrue(self.run_ok([self.topofs, "--help"]).stdout)

    def test_man_page(self):
        page = os.path.join(self.tree, "usr/share/man/man1/topofs.1.gz")
        plain = os.path.join(self.work, "topofs.1")
        with gzip.open(page) as src, open(plain, "wb") as dst:
            dst.write(src.read())
        r = subprocess.run([CHECK_MAN, plain], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        self.assertEqual(r.returncode, 0, r.stdout.decode())
        env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
        r = subprocess.run(["man", "-l", "-Tutf8", page], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.assertEqual((r.returncode, r.stderr), (0, b""))
        text = subprocess.run(["man", "-E", "ascii", "-l", page], env=env,
                              stdout=subprocess.PIPE, check=True).stdout.decode()
        # every option of --help, and the sections --help lacks
        help_text = self.run_ok([self.topofs, "--help"]).stdout.decode()
        opts = set(re.findall(r"--[a-z][a-z_-]+", help_text))
        opts |= {"-o " + o for o in re.findall(r"-o ([a-z_]+)", help_text)}
        opts |= {"-f", "-d", "-s", "-h", "-V"}
        self.assertGreater(len(opts), 20)
        flat = " ".join(text.split())
        for o in sorted(opts):
            self.assertIn(o, flat, "%s is in --help but not in the man page" % o)
        for o in ("cache_ttl", "timeout", "view", "scratch", "topo_etcd_tls_ca",
                  "topo_zk_auth_file", "noephemeral", "create_root"):
            self.assertIn(o, help_text)
        for section in ("SYNOPSIS", "MOUNT(8) AND FSTAB", "SYSTEMD", "LOGGING",
                        "FILES", "SEE ALSO"):
            self.assertIn("\n" + section + "\n", text)

    def test_backup_man_pages(self):
        """topofs-backup(1) and topofs-restore(1): no warnings, every option
        of their --help, and the sections --help lacks."""
        for prog, sections in (("topofs-backup", ("SYSTEMD", "FILES", "EXAMPLES")),
                               ("topofs-restore", ("EXAMPLES", "SEE ALSO"))):
            page = os.path.join(self.tree, "usr/share/man/man1/%s.1.gz" % prog)
            plain = os.path.join(self.work, prog + ".1")
            with gzip.open(page) as src, open(plain, "wb") as dst:
                dst.write(src.read())
            r = subprocess.run([CHECK_MAN, plain], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
            self.assertEqual(r.returncode, 0, r.stdout.decode())
            env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
            text = subprocess.run(["man", "-E", "ascii", "-l", page], env=env,
                                  stdout=subprocess.PIPE, check=True).stdout.decode()
            help_text = self.run_ok([os.path.join(self.tree, "usr/bin", prog),
                                     "--help"]).stdout.decode()
            opts = set(re.findall(r"--[a-z][a-z-]+", help_text))
            self.assertGreaterEqual(len(opts), 3, help_text)
            # (man hyphenates words at line ends: "--ver- ify")
            flat = re.sub(r"(\w)- (\w)", r"\1\2", " ".join(text.split()))
            for o in sorted(opts):
                self.assertIn(o, flat, "%s: %s is in --help, not in the man page"
                              % (prog, o))
            for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS") + sections:
                self.assertIn("\n" + section + "\n", text, prog)

    # -- mounting as an installed package would
    def test_helper_run_directly(self):
        """/sbin/mount.fuse.topofs SOURCE MNT -o OPTIONS, as mount(8) runs
        it: options of mount(8) and systemd are dropped or ignored, topofs's
        own reach it; a write goes to the store; umount ends the daemon."""
        mnt = self.mountpoint()
        self.run_ok([os.path.join(self.tree, "sbin", "mount.fuse.topofs"),
                     self.source(), mnt, "-o",
                     "rw,_netdev,nofail,noatime,relatime,x-systemd.device-timeout=5,"
                     "comment=x,timeout=5,uid=4321"], env=self.env())
        pid = self.assertServes(mnt)
        self.assertEqual(os.stat(os.path.join(mnt, "a")).st_uid, 4321)
        h.write_file(os.path.join(mnt, "d", "new"), b"written")
        self.assertEqual(self.store.get(self.key("d/new")), b"written")
        self.assertUmountEnds(mnt, pid)

    def test_mount_t_fuse_topofs(self):
        """mount -t fuse.topofs SOURCE MNT -o ro; and -t topofs."""
        self.helpers_in_sbin()
        for fstype in ("fuse.topofs", "topofs"):
            mnt = self.mountpoint()
            self.run_ok(["mount", "-t", fstype, self.source(), mnt, "-o", "ro"])
            pid = self.assertServes(mnt)
            self.assertErrno(errno.EROFS, h.write_file, os.path.join(mnt, "x"), b"x")
            self.assertUmountEnds(mnt, pid)

    def test_fstab_line(self):
        """An fstab line (mount -T FILE MNT) with the options operators
        write there, several servers, and topofs options."""
        self.helpers_in_sbin()
        lease = self.put_ephemeral("lock", b"held")
        mnt = self.mountpoint()
        source = "etcd2://%s,%s%s" % (self.server.address, self.server.address,
                                      self.root)
        fstab = os.path.join(self.work, "fstab")
        with open(fstab, "w") as f:
            f.write("# test\n%s %s fuse.topofs ro,_netdev,nofail,noatime,"
                    "x-systemd.requires=network-online.target,noephemeral,"
                    "uid=4321,timeout=5 0 0\n" % (source, mnt))
        self.run_ok(["mount", "-T", fstab, mnt])
        self.assertFalse(os.path.exists(os.path.join(mnt, lease)))
        files = self.expected_files()
        files.pop(lease)
        pid = h.topofs_pids(mnt)
        self.assertEqual(sorted(h.walk_files(mnt)[0]), sorted(files))
        for rel, v in files.items():
            self.assertEqual(read_file(os.path.join(mnt, rel)), v, rel)
            self.assertEqual(os.stat(os.path.join(mnt, rel)).st_uid, 4321)
        r = self.run_ok(["findmnt", "-n", "-o", "FSTYPE,SOURCE,OPTIONS", mnt])
        fstype, src, opts = r.stdout.decode().split()
        self.assertEqual((fstype, src), ("fuse.topofs", source))
        self.assertIn("ro", opts.split(","))
        self.assertEqual(len(pid), 1)
        self.assertUmountEnds(mnt, pid[0])

    # -- logging
    def test_daemon_logs_to_syslog(self):
        if os.path.lexists(SyslogSocket.PATH):
            self.skipTest("%s belongs to a syslog daemon: its messages cannot "
                          "be read back here" % SyslogSocket.PATH)
        log = SyslogSocket()
        self.addCleanup(log.close)
        # a key whose name cannot be a file name is logged when listed
        self.store.put(self.key("bad/../x"), b"hidden")
        mnt = self.mountpoint()
        self.run_ok([os.path.join(self.tree, "sbin", "mount.topofs"),
                     self.source(), mnt], env=self.env())
        pid = h.topofs_pids(mnt)[0]
        self.assertNotIn("bad/x", h.walk_files(mnt)[0])
        self.assertUmountEnds(mnt, pid)
        mine = [m for m in log.read() if "topofs[%d]: " % pid in m]
        text = "\n".join(mine)
        # <30>: facility daemon, level info; <28>: daemon, warning
        self.assertTrue(any(m.startswith("<30>") and "mounted on %s" % mnt in m
                            for m in mine), text)
        self.assertTrue(any(m.startswith("<28>") and "bad/../x" in m
                            for m in mine), text)
        self.assertTrue(any(m.startswith("<30>") and "stopping: %s" % mnt in m
                            for m in mine), text)

        # in the foreground the same goes to stderr, nothing to syslog
        before = len(log.read(0.1))
        m = h.Mount(["--topo_implementation=etcd2",
                     "--topo_global_server_address=" + self.server.address,
                     "--topo_global_root=" + self.root], bin=self.topofs)
        self.mounts.append(m)
        self.addCleanup(self._umount, m)
        m.start()
        h.walk_files(m.mnt)
        self.assertEqual(m.unmount(), 0)
        self.assertIn("bad/../x", m.log())
        # (other programs on the machine may log meanwhile: only topofs counts)
        theirs = [x for x in log.read(0.3)[before:]
                  if "topofs[%d]: " % m.proc.pid in x or "bad/../x" in x]
        self.assertEqual(theirs, [])

    # -- systemd
    def unit(self):
        with open(os.path.join(self.tree, "lib/systemd/system/topofs@.service")) as f:
            return f.read()

    def test_systemd_unit_verifies(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("no systemd-analyze")
        d = os.path.join(self.work, "units")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "topofs@.service"), "w") as f:
            f.write(self.unit().replace("/usr/bin/topofs", self.topofs))
        r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                            os.path.join(d, "topofs@mnt-topo.service")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual((r.returncode, r.stdout.decode()), (0, ""))
        unit = self.unit()
        for line in ("Type=forking", "After=network-online.target",
                     "Wants=network-online.target", "WantedBy=remote-fs.target",
                     "EnvironmentFile=/etc/topofs/%i.conf"):
            self.assertIn("\n" + line + "\n", unit)

    def backup_unit(self, suffix):
        with open(os.path.join(self.tree, "lib/systemd/system/topofs-backup@."
                               + suffix)) as f:
            return f.read()

    def test_backup_units_verify(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("no systemd-analyze")
        d = os.path.join(self.work, "backup-units")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "topofs-backup@.service"), "w") as f:
            f.write(self.backup_unit("service").replace(
                "/usr/bin/topofs-backup",
                os.path.join(self.tree, "usr/bin/topofs-backup")))
        with open(os.path.join(d, "topofs-backup@.timer"), "w") as f:
            f.write(self.backup_unit("timer"))
        r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                            os.path.join(d, "topofs-backup@global.timer"),
                            os.path.join(d, "topofs-backup@global.service")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual((r.returncode, r.stdout.decode()), (0, ""))
        service, timer = self.backup_unit("service"), self.backup_unit("timer")
        for line in ("Type=oneshot", "EnvironmentFile=/etc/topofs/backup-%i.conf",
                     "After=network-online.target", "KillMode=mixed"):
            self.assertIn("\n" + line + "\n", service)
        for line in ("OnCalendar=daily", "Persistent=true",
                     "RandomizedDelaySec=1h", "WantedBy=timers.target"):
            self.assertIn("\n" + line + "\n", timer)
        # the schedule's drop-in, as the timer's comment documents it
        os.makedirs(os.path.join(d, "topofs-backup@global.timer.d"))
        with open(os.path.join(d, "topofs-backup@global.timer.d",
                               "schedule.conf"), "w") as f:
            f.write("[Timer]\nOnCalendar=\nOnCalendar=00/6:00\n")
        r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                            os.path.join(d, "topofs-backup@global.timer")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual((r.returncode, r.stdout.decode()), (0, ""))

    def test_backup_unit_command(self):
        """topofs-backup@.service's ExecStart with a settings file, expanded
        as systemd does ($VAR: words, ${VAR}: one word): the packaged
        topofs-backup, with the packaged topofs beside it, writes an
        archive that --verify finds equal to the store."""
        execstart = re.search(r"^ExecStart=(.*)$", self.backup_unit("service"),
                              re.M).group(1)
        defaults = dict(re.findall(r'^Environment="([A-Z_]+)=(.*)"$',
                                   self.backup_unit("service"), re.M))
        out = os.path.join(self.work, "backups")
        conf = dict(defaults, BACKUP_SOURCE=self.source(), BACKUP_DIR=out,
                    BACKUP_OPTIONS="-o timeout=5")
        self.assertEqual(defaults["BACKUP_RETENTION"],
                         "--keep-daily=7 --keep-weekly=4")
        argv = []
        for word in execstart.split():
            m = re.match(r"^\$\{(\w+)\}$|^\$(\w+)$", word)
            if m and m.group(1):
                argv.append(conf[m.group(1)])
            elif m:
                argv += conf[m.group(2)].split()
            else:
                argv.append(word)
        self.assertEqual(argv[0], "/usr/bin/topofs-backup")
        argv[0] = os.path.join(self.tree, "usr/bin/topofs-backup")
        env = dict(os.environ)
        env.pop("TOPOFS", None)
        r = self.run_ok(argv, env=env)
        archive = r.stdout.decode().strip()
        self.assertEqual(sorted(os.listdir(out)), [
            os.path.basename(archive), os.path.basename(archive) + ".sha256"])
        r = self.run_ok([os.path.join(self.tree, "usr/bin/topofs-backup"),
                         "--verify", archive, self.source()], env=env)
        self.assertEqual(r.stdout, b"")

    def test_systemd_unit_command(self):
        """The unit's ExecStart, with an instance's settings, as systemd
        runs it for Type=forking: the mount is in place when the command
        returns; SIGTERM (systemctl stop) unmounts and ends the daemon."""
        mnt = self.mountpoint()
        execstart = re.search(r"^ExecStart=(.*)$", self.unit(), re.M).group(1)
        conf = {"TOPOFS_SOURCE": self.source(), "TOPOFS_OPTIONS": "-o ro,noephemeral"}
        argv = []
        for word in execstart.split():
            if word.startswith("$"):
                argv += conf[word[1:]].split()
            else:
                argv.append(word.replace("%f", mnt))
        self.assertEqual(argv[0], "/usr/bin/topofs")
        argv[0] = self.topofs
        self.run_ok(argv)
        pid = self.assertServes(mnt)
        os.kill(pid, signal.SIGTERM)
        self.assertEqual(wait_gone([pid]), [], "topofs still runs after SIGTERM")
        deadline = time.time() + 5
        while h.is_mounted(mnt) and time.time() < deadline:
            time.sleep(0.05)
        self.assertFalse(h.is_mounted(mnt), "still mounted after SIGTERM")


if __name__ == "__main__":
    h.main()
