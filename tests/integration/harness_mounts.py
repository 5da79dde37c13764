"""Integration-test harness: the topofs process - Mount (topofs -f in the
foreground, unmounted with fusermount3, its end checked), run_topofs (one
run to completion), the sanitizer-report checks, FUSE request counts and
the pids of a mount's topofs.  Import them through harness.
"""

import collections
import os
import re
import subprocess
import time

from harness_base import (FUSERMOUNT, _live_dirs, _live_mounts,
                          force_unmount, is_mounted, make_tempdir,
                          remove_tempdir, stop_pid, topofs_bin)


# --------------------------------------------------------------------------
# sanitizer reports (topofs-asan: ASan + LSan + UBSan write them to stderr)

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "WARNING: AddressSanitizer", "ERROR: UndefinedBehaviorSanitizer",
                     "SUMMARY: AddressSanitizer", "SUMMARY: LeakSanitizer",
                     "SUMMARY: UndefinedBehaviorSanitizer", "runtime error: ",
                     "AddressSanitizer:DEADLYSIGNAL",
                     "LeakSanitizer has encountered a fatal error")


def sanitizer_report(text):
    """The sanitizer report in text (from its first marker line, up to 6000
    characters), or None."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    best = None
    for mk in SANITIZER_MARKERS:
        i = text.find(mk)
        if i >= 0 and (best is None or i < best):
            best = i
    if best is None:
        return None
    start = text.rfind("\n", 0, best) + 1
    return text[start:start + 6000]


def sanitizer_env(log_prefix=None, env=None):
    """A copy of env (default os.environ) whose ASAN_OPTIONS/UBSAN_OPTIONS
    also write reports to files log_prefix.<pid> (for daemonised topofs,
    whose stderr is /dev/null)."""
    env = dict(os.environ if env is None else env)
    if log_prefix:
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            cur = env.get(var, "")
            env[var] = (cur + ":" if cur else "") + "log_path=" + log_prefix
    return env


def sanitizer_files_report(log_prefix):
    """Reports that sanitizer_env(log_prefix) runs left behind, or None."""
    d, base = os.path.split(log_prefix)
    out = []
    try:
        names = sorted(os.listdir(d))
    except OSError:
        return None
    for n in names:
        if n.startswith(base + "."):
            try:
                with open(os.path.join(d, n), "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
            except OSError:
                pass
    text = "\n".join(out)
    return sanitizer_report(text) or (text[:6000] if text.strip() else None)


def fuse_requests(m, func):
    """FUSE requests by opcode while func runs, from the log of mount m
    (started with -d)."""
    time.sleep(0.3)
    pos = os.path.getsize(m.logpath)
    func()
    time.sleep(0.3)
    with open(m.logpath, "rb") as f:
        f.seek(pos)
        log = f.read().decode("utf-8", "replace")
    return collections.Counter(re.findall(r"opcode: (\w+)", log))


# --------------------------------------------------------------------------
# the mount

class MountError(Exception):
    pass


class Mount:
    """topofs -f ARGS MNT, stderr to a log file."""

    def __init__(self, args, mountpoint=None, bin=None):
        self.bin = bin or topofs_bin()
        self.args = list(args)
        self.own_mnt = mountpoint is None
        self.mnt = mountpoint or make_tempdir("topofs-mnt-")
        self.logdir = make_tempdir("topofs-log-")
        self.logpath = os.path.join(self.logdir, "topofs.log")
        self.proc = None
        self.returncode = None
        self.killed = False          # stopped by force_stop (watchdog, atexit)
        self.died_while_mounted = False
        self.expect_exit_status = 0  # a test may set None (any) or another value
        self.final_log = None        # the whole log, kept when logdir goes
        self.mount_failed = False    # exited before mounting (MountError)

    def start(self, timeout=10):
        log = open(self.logpath, "wb")
        cmd = [self.bin, "-f"] + self.args + [self.mnt]
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL)
        log.close()
        _live_mounts.append(self)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if is_mounted(self.mnt):
                return self
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                self.mount_failed = True
                out = self.log()
                self.cleanup()
                raise MountError("topofs exited with %s before mounting: %s\n%s"
                                 % (self.returncode, " ".join(cmd), out))
            time.sleep(0.05)
        out = self.log()
        self.force_stop()
        raise MountError("topofs did not mount within %ss: %s\n%s"
                         % (timeout, " ".join(cmd), out))

    def log(self):
        text = self.full_log()
        return text[-8000:]

    def full_log(self):
        if self.final_log is not None:
            return self.final_log
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except Exception:
            return ""

    def sanitizer_report(self):
        return sanitizer_report(self.full_log())

    def problems(self):
        """Why this mount's end was not clean (a list of strings): a
        sanitizer report in its log, death while mounted, or an exit status
        other than expect_exit_status after the unmount."""
        out = []
        rep = self.sanitizer_report()
        if rep:
            out.append("sanitizer report in the topofs log:\n" + rep)
        if self.killed or self.mount_failed:
            return out
        if self.died_while_mounted:
            out.append("topofs died while mounted (exit status %s)" % self.returncode)
        elif (self.expect_exit_status is not None and self.proc is not None
              and self.returncode != self.expect_exit_status):
            out.append("topofs exit status after unmount: %s (expected %s)"
                       % (self.returncode, self.expect_exit_status))
        return out

    def path(self, rel=""):
        return os.path.join(self.mnt, rel) if rel else self.mnt

    def unmount(self, timeout=10):
        """fusermount3 -u, wait for the process; returns its exit status.
        Falls back to a lazy unmount and kill."""
        rc = None
        if self.proc is None:
            return None
        if self.proc.poll() is not None and self.returncode is None:
            # it ended before anyone unmounted it
            self.died_while_mounted = True
        if is_mounted(self.mnt):
            r = subprocess.run([FUSERMOUNT, "-u", self.mnt],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if r.returncode != 0:
                subprocess.run([FUSERMOUNT, "-uz", self.mnt],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            subprocess.run([FUSERMOUNT, "-uz", self.mnt],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                rc = self.proc.wait(3)
            except subprocess.TimeoutExpired:
                stop_pid(self.proc, 5)
                self.killed = True
                rc = None
        self.returncode = rc
        self.cleanup()
        return rc

    def force_stop(self):
        """For the watchdog / atexit: kill the daemon by its pid first (that
        aborts the FUSE connection, so blocked callers get ENOTCONN), then
        drop the dead mount.  Never stats the mountpoint."""
        if self.proc is not None and self.proc.poll() is None:
            self.killed = True
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        force_unmount(self.mnt)
        self.cleanup()

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is not None:
            force_unmount(self.mnt)   # the process died: drop a dead mount
        if is_mounted(self.mnt):
            return  # never remove a live mount's contents (keep it tracked)
        if self in _live_mounts:
            _live_mounts.remove(self)
        if self.own_mnt:
            try:
                os.rmdir(self.mnt)
            except OSError:
                pass
            if self.mnt in _live_dirs:
                _live_dirs.remove(self.mnt)
        if self.proc is not None and self.proc.poll() is not None:
            if self.returncode is None and not self.killed:
                self.returncode = self.proc.returncode
            if self.final_log is None:
                self.final_log = self.full_log()
        if not os.environ.get("TOPOFS_KEEP_LOGS") and (
                self.final_log is not None or self.proc is None):
            remove_tempdir(self.logdir)


def run_topofs(args, timeout=20, env=None, check_sanitizer=True):
    """Run topofs to completion (for bad invocations / --help).  Raises
    AssertionError if its stderr holds a sanitizer report."""
    r = subprocess.run([topofs_bin()] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                       timeout=timeout, env=env)
    if check_sanitizer:
        rep = sanitizer_report(r.stderr)
        if rep:
            raise AssertionError("sanitizer report from topofs %s:\n%s"
                                 % (" ".join(args), rep))
    return r


def topofs_pids(mnt):
    """pids of live (not zombie) topofs or topofs-asan processes whose
    command line names mnt."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
            with open("/proc/%s/stat" % d) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and argv and \
                os.path.basename(argv[0]).startswith(b"topofs") and \
                os.fsencode(mnt) in argv:
            out.append(int(d))
    return out
