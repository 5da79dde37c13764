"""Integration-test harness, the base the other harness_*.py modules share:
the environment (TOPOFS_BIN, TOPOFS_BACKEND; see harness.py), the registry
of live mounts, servers and temp dirs with the atexit / SIGTERM safety net
that stops them, temp dirs, the mount table (is_mounted, force_unmount) and
stop_pid.  Import it through harness.
"""

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "tools"))
import gen_topology  # noqa: E402,F401 (for harness_clients, harness)


def topofs_bin():
    b = os.environ.get("TOPOFS_BIN")
    if b:
        return b
    for cand in (os.path.join(REPO, "build", "topofs"),
                 os.path.join(REPO, "build", "fs", "topofs"),
                 "/work/main/build/topofs", "/work/main/build/fs/topofs"):
        if os.path.exists(cand):
            return cand
    return "/work/main/build/fs/topofs"


BACKEND = os.environ.get("TOPOFS_BACKEND", "etcd")
BACKENDS = ("etcd", "zk")              # every backend the suite knows
IMPL = {"etcd": "etcd2", "zk": "zk2"}  # --topo_implementation per backend
if BACKEND not in BACKENDS:
    raise SystemExit("TOPOFS_BACKEND=%r: expected one of %s" % (BACKEND, BACKENDS))
FUSERMOUNT = shutil.which("fusermount3") or "fusermount3"

# --------------------------------------------------------------------------
# process / resource registry for the atexit safety net

_live_mounts = []     # Mount objects still mounted / running
_live_servers = []    # server objects still running
_live_dirs = []       # temp dirs to remove


def _safety_net():
    for m in list(_live_mounts):
        try:
            m.force_stop()
        except Exception:
            pass
    for s in list(_live_servers):
        try:
            s.stop()
        except Exception:
            pass
    for d in list(_live_dirs):
        force_unmount(d)
        if not is_mounted(d):
            shutil.rmtree(d, ignore_errors=True)


atexit.register(_safety_net)


def _sigterm(signum, frame):
    raise SystemExit(128 + signum)


for _sig in (signal.SIGTERM, signal.SIGHUP):
    try:
        signal.signal(_sig, _sigterm)
    except (ValueError, OSError):
        pass


def make_tempdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    _live_dirs.append(d)
    return d


def remove_tempdir(d):
    force_unmount(d)
    if is_mounted(d):
        return      # never descend into a mount
    shutil.rmtree(d, ignore_errors=True)
    if d in _live_dirs:
        _live_dirs.remove(d)



def _unescape_mount(field):
    out, i = bytearray(), 0
    b = field.encode("utf-8", "surrogateescape")
    while i < len(b):
        if b[i:i + 1] == b"\\" and i + 3 < len(b) and b[i + 1:i + 4].isdigit():
            out.append(int(b[i + 1:i + 4], 8))
            i += 4
        else:
            out.append(b[i])
            i += 1
    return out.decode("utf-8", "surrogateescape")


def is_mounted(path):
    """True if path is a mount point in /proc/self/mountinfo - unlike
    os.path.ismount this also sees a dead FUSE mount (ENOTCONN)."""
    path = os.path.abspath(path)   # never stat: the mount may hang
    try:
        with open("/proc/self/mountinfo", encoding="utf-8",
                  errors="surrogateescape") as f:
            for line in f:
                parts = line.split(" ")
                if len(parts) > 4 and _unescape_mount(parts[4]) == path:
                    return True
    except OSError:
        return False
    return False


def force_unmount(path):
    """Unmount path (also a dead FUSE mount): -u, then lazy -uz."""
    if not is_mounted(path):
        return
    subprocess.run([FUSERMOUNT, "-u", path], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    if is_mounted(path):
        subprocess.run([FUSERMOUNT, "-uz", path], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


def stop_pid(proc, timeout=10):
    """terminate, wait, kill, wait - only this process, by its pid."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.terminate()
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)
