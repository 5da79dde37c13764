"""Integration-test harness for topofs.

- free loopback ports
- EtcdServer: a throwaway Debian `etcd` on loopback, stopped by its pid
- EtcdClient: an independent client over etcd's v3 JSON gateway (urllib)
- ZkServer / ZkClient: the same for ZooKeeper (kazoo), for the zk2 backend
- Mount: runs the real topofs binary in the foreground, waits for the mount,
  unmounts with fusermount3 and waits for the process to exit
- TopofsTestCase: unittest base class, one store server per test module, a
  unique root per test, everything cleaned up (addCleanup + atexit), and a
  watchdog that force-unmounts a hung mount so no test hangs forever.

Environment:
  TOPOFS_BIN      the binary (default: the first of <repo>/build/topofs,
                  <repo>/build/fs/topofs that exists)
  TOPOFS_BACKEND  etcd (default) | zk
  TOPOFS_KEEP_LOGS=1  keep topofs stderr logs on success too
  TOPOFS_TEST_TIMEOUT seconds per test before the watchdog fires (default 180)

Standard library only (plus kazoo for ZooKeeper).  Run with /usr/bin/python3.
"""

import atexit
import base64
import errno
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "tools"))
import gen_topology  # noqa: E402


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


def free_port():
    """A port nobody listens on right now (bind to 0 on loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def sha256(b):
    return hashlib.sha256(b).hexdigest()


# --------------------------------------------------------------------------
# etcd

def b64e(b):
    if isinstance(b, str):
        b = b.encode("utf-8")
    return base64.b64encode(b).decode("ascii")


def b64d(s):
    return base64.b64decode(s) if s else b""


def prefix_end(prefix):
    """etcd range_end for 'every key starting with prefix'."""
    p = bytearray(prefix.encode("utf-8") if isinstance(prefix, str) else prefix)
    while p:
        if p[-1] < 0xFF:
            p[-1] += 1
            return bytes(p)
        p.pop()
    return b"\x00"


class EtcdError(Exception):
    pass


class EtcdClient:
    """Independent etcd v3 client over the JSON gateway.  Keys are str
    (UTF-8) in and out; values are bytes."""

    backend = "etcd"

    def __init__(self, endpoint, timeout=15):
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout

    def call(self, path, body):
        data = json.dumps(body).encode()
        req = urllib.request.Request(self.endpoint + path, data=data,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                reply = json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise EtcdError("%s: HTTP %d %s" % (path, e.code, e.read()[:300]))
        if isinstance(reply, dict) and ("error" in reply or "code" in reply) \
                and "header" not in reply:
            raise EtcdError("%s: %r" % (path, reply))
        return reply

    # -- reads
    def _range(self, key, range_end=None, keys_only=False, count_only=False,
               limit=0):
        body = {"key": b64e(key)}
        if range_end is not None:
            body["range_end"] = b64e(range_end)
        if keys_only:
            body["keys_only"] = True
        if count_only:
            body["count_only"] = True
        if limit:
            body["limit"] = limit
        return self.call("/v3/kv/range", body)

    def get(self, key):
        r = self._range(key)
        kvs = r.get("kvs") or []
        return b64d(kvs[0].get("value")) if kvs else None

    def get_meta(self, key):
        """(value, mod_revision, version, lease) or None."""
        r = self._range(key)
        kvs = r.get("kvs") or []
        if not kvs:
            return None
        kv = kvs[0]
        return (b64d(kv.get("value")), int(kv.get("mod_revision", 0)),
                int(kv.get("version", 0)), int(kv.get("lease", 0)))

    def range(self, prefix):
        """{key: (value, mod_revision, version, lease)} for keys under prefix
        (paginated, never capped)."""
        out = {}
        start = prefix.encode("utf-8")
        end = prefix_end(prefix)
        while True:
            r = self._range(start, end, limit=500)
            kvs = r.get("kvs") or []
            for kv in kvs:
                k = b64d(kv["key"])
                out[k.decode("utf-8", "surrogateescape")] = (
                    b64d(kv.get("value")), int(kv.get("mod_revision", 0)),
                    int(kv.get("version", 0)), int(kv.get("lease", 0)))
            if not r.get("more") or not kvs:
                break
            start = b64d(kvs[-1]["key"]) + b"\x00"
        return out

    def keys(self, prefix):
        """Sorted list of full keys starting with prefix."""
        out = []
        start = prefix.encode("utf-8")
        end = prefix_end(prefix)
        while True:
            r = self._range(start, end, keys_only=True, limit=1000)
            kvs = r.get("kvs") or []
            out += [b64d(kv["key"]) for kv in kvs]
            if not r.get("more") or not kvs:
                break
            start = out[-1] + b"\x00"
        return sorted(k.decode("utf-8", "surrogateescape") for k in out)

    def revision(self):
        r = self._range("\x00", count_only=True)
        return int(r["header"]["revision"])

    change_counter = revision

    # -- writes
    def put(self, key, value, lease=0):
        if isinstance(value, str):
            value = value.encode("utf-8")
        body = {"key": b64e(key), "value": b64e(value)}
        if lease:
            body["lease"] = str(lease)
        return int(self.call("/v3/kv/put", body)["header"]["revision"])

    def put_many(self, kvs):
        gen_topology.etcd_load(self.endpoint, kvs)

    def delete(self, key):
        r = self.call("/v3/kv/deleterange", {"key": b64e(key)})
        return int(r.get("deleted", 0))

    def delete_prefix(self, prefix):
        r = self.call("/v3/kv/deleterange",
                      {"key": b64e(prefix), "range_end": b64e(prefix_end(prefix))})
        return int(r.get("deleted", 0))

    def lease_grant(self, ttl):
        r = self.call("/v3/lease/grant", {"TTL": ttl})
        return int(r["ID"])

    def lease_revoke(self, lease_id):
        self.call("/v3/lease/revoke", {"ID": str(lease_id)})

    def is_ephemeral(self, key):
        m = self.get_meta(key)
        return bool(m and m[3])

    def request_counts(self):
        """{grpc method: requests started} for etcd's KV/Watch/Lease services,
        from the server's /metrics (counts every client, this one too)."""
        with urllib.request.urlopen(self.endpoint + "/metrics",
                                    timeout=self.timeout) as resp:
            text = resp.read().decode()
        out = {}
        for line in text.splitlines():
            if line.startswith("grpc_server_started_total{"):
                labels, val = line.rsplit(" ", 1)
                m = dict(kv.split("=", 1) for kv in
                         labels[len("grpc_server_started_total{"):-1].split(","))
                out[m["grpc_method"].strip('"')] = \
                    out.get(m["grpc_method"].strip('"'), 0) + int(float(val))
        return out


def tcp_client_sockets(port):
    """{(client port, state)} for every loopback TCP connection to server
    `port` in /proc/net/tcp{,6}, whichever side holds the socket (after a
    close the TIME_WAIT entry may be on the server side)."""
    out = set()
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(fn) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    lport = int(parts[1].rsplit(":", 1)[1], 16)
                    rport = int(parts[2].rsplit(":", 1)[1], 16)
                    st = parts[3]
                    if st == "0A":          # LISTEN
                        continue
                    if rport == port:
                        out.add((lport, st))
                    elif lport == port:
                        out.add((rport, st))
        except OSError:
            pass
    return out


class EtcdServer:
    def __init__(self):
        self.port = free_port()
        self.peer_port = free_port()
        while self.peer_port == self.port:
            self.peer_port = free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.endpoint = "http://" + self.address
        self.datadir = None
        self.proc = None
        self.logpath = None

    def start(self, timeout=20):
        if self.datadir is None:
            self.datadir = make_tempdir("topofs-etcd-")
        self.logpath = os.path.join(self.datadir, "etcd.log")
        peer = "http://127.0.0.1:%d" % self.peer_port
        cmd = ["etcd", "--name", "t", "--data-dir", os.path.join(self.datadir, "data"),
               "--listen-client-urls", self.endpoint,
               "--advertise-client-urls", self.endpoint,
               "--listen-peer-urls", peer,
               "--initial-advertise-peer-urls", peer,
               "--initial-cluster", "t=" + peer]
        log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        if self not in _live_servers:
            _live_servers.append(self)
        client = EtcdClient(self.endpoint, timeout=2)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                client.revision()
                return self
            except Exception:
                time.sleep(0.1)
        out = self.log()
        self.stop()
        raise RuntimeError("etcd did not start:\n" + out)

    def log(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except Exception:
            return ""

    def client(self):
        return EtcdClient(self.endpoint)

    def pause(self):
        """Stop the process (by pid) but keep the data: the store becomes
        unreachable; resume() brings it back on the same ports."""
        stop_pid(self.proc)

    def resume(self, timeout=20):
        return self.start(timeout)

    def stop(self):
        stop_pid(self.proc)
        if self in _live_servers:
            _live_servers.remove(self)
        if self.datadir:
            remove_tempdir(self.datadir)
            self.datadir = None

    # arguments that point topofs at this server
    def topofs_args(self, root):
        return ["--topo_implementation=etcd2",
                "--topo_global_server_address=" + self.address,
                "--topo_global_root=" + root]

    def source(self, root):
        return "etcd2://%s%s" % (self.address, root)


# --------------------------------------------------------------------------
# ZooKeeper

class ZkClient:
    """Independent ZooKeeper client (kazoo) with the Store interface."""

    backend = "zk"

    def __init__(self, hosts):
        from kazoo.client import KazooClient
        self.zk = KazooClient(hosts=hosts, timeout=10)
        self.zk.start(timeout=15)
        self._counter_path = None

    def close(self):
        self.zk.stop()
        self.zk.close()

    def get(self, key):
        from kazoo.exceptions import NoNodeError
        try:
            return self.zk.get(key)[0] or b""
        except NoNodeError:
            return None

    def put(self, key, value, ephemeral=False):
        if isinstance(value, str):
            value = value.encode("utf-8")
        if self.zk.exists(key):
            self.zk.set(key, value)
        else:
            self.zk.create(key, value, makepath=True, ephemeral=ephemeral)

    def put_many(self, kvs):
        for k, v in sorted(kvs.items()):
            self.put(k, v)

    def delete(self, key):
        from kazoo.exceptions import NoNodeError
        try:
            self.zk.delete(key)
            return 1
        except NoNodeError:
            return 0

    def delete_prefix(self, prefix):
        self.zk.delete(prefix.rstrip("/"), recursive=True)

    def _walk(self, path):
        from kazoo.exceptions import NoNodeError
        try:
            children = self.zk.get_children(path)
        except NoNodeError:
            return
        for c in children:
            p = path.rstrip("/") + "/" + c
            yield p
            yield from self._walk(p)

    def keys(self, prefix):
        """Every znode below prefix (a path), sorted."""
        return sorted(self._walk(prefix.rstrip("/") or "/"))

    def range(self, prefix):
        out = {}
        for k in self.keys(prefix):
            data, st = self.zk.get(k)
            out[k] = (data or b"", st.mzxid, st.version, st.ephemeralOwner)
        return out

    def revision(self):
        """The server's last zxid (from the 'srvr' four-letter word, which
        ZkServer whitelists); else the max mzxid/pzxid seen under /.  Every
        write (create, set, delete, multi) moves it by exactly one."""
        try:
            out = self.zk.command(b"srvr")
            for line in out.splitlines():
                if line.startswith("Zxid:"):
                    return int(line.split(":", 1)[1].strip(), 16)
        except Exception:
            pass
        st = self.zk.exists("/")
        best = max(st.mzxid, st.pzxid) if st else 0
        for k in self.keys("/"):
            s = self.zk.exists(k)
            if s:
                best = max(best, s.mzxid, s.pzxid)
        return best

    change_counter = revision

    def is_ephemeral(self, key):
        s = self.zk.exists(key)
        return bool(s and s.ephemeralOwner)


class ZkServer:
    def __init__(self):
        self.port = free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.dir = None
        self.proc = None

    def start(self, timeout=40):
        self.dir = make_tempdir("topofs-zk-")
        cfg = os.path.join(self.dir, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write("tickTime=2000\ninitLimit=10\nsyncLimit=5\n"
                    "dataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
                    "admin.enableServer=false\n4lw.commands.whitelist=*\n"
                    % (os.path.join(self.dir, "data"), self.port))
        os.makedirs(os.path.join(self.dir, "data"))
        self.logpath = os.path.join(self.dir, "zk.log")
        cp = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
        cmd = ["java", "-cp", cp, "-Dzookeeper.log.dir=" + self.dir,
               "-Dzookeeper.root.logger=INFO,CONSOLE",
               "-Dzookeeper.4lw.commands.whitelist=*",
               "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg]
        log = open(self.logpath, "wb")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        _live_servers.append(self)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), 1) as s:
                    s.sendall(b"ruok")
                    if s.recv(4) == b"imok":
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        try:
            out = open(self.logpath, "rb").read()[-4000:].decode("utf-8", "replace")
        except Exception:
            out = ""
        self.stop()
        raise RuntimeError("zookeeper did not start:\n" + out)

    def client(self):
        return ZkClient(self.address)

    def stop(self):
        stop_pid(self.proc)
        if self in _live_servers:
            _live_servers.remove(self)
        if self.dir:
            remove_tempdir(self.dir)
            self.dir = None

    def topofs_args(self, root):
        return ["--topo_implementation=zk2",
                "--topo_global_server_address=" + self.address,
                "--topo_global_root=" + root]

    def source(self, root):
        return "zk2://%s%s" % (self.address, root)


def make_server():
    if BACKEND == "zk":
        return ZkServer()
    return EtcdServer()


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
        try:
            with open(self.logpath, "rb") as f:
                return f.read()[-8000:].decode("utf-8", "replace")
        except Exception:
            return ""

    def path(self, rel=""):
        return os.path.join(self.mnt, rel) if rel else self.mnt

    def unmount(self, timeout=10):
        """fusermount3 -u, wait for the process; returns its exit status.
        Falls back to a lazy unmount and kill."""
        rc = None
        if self.proc is None:
            return None
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
                rc = None
        self.returncode = rc
        self.cleanup()
        return rc

    def force_stop(self):
        """For the watchdog / atexit: kill the daemon by its pid first (that
        aborts the FUSE connection, so blocked callers get ENOTCONN), then
        drop the dead mount.  Never stats the mountpoint."""
        if self.proc is not None and self.proc.poll() is None:
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
        if not os.environ.get("TOPOFS_KEEP_LOGS"):
            remove_tempdir(self.logdir)


def run_topofs(args, timeout=20):
    """Run topofs to completion (for bad invocations / --help)."""
    return subprocess.run([topofs_bin()] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          timeout=timeout)


# --------------------------------------------------------------------------
# unittest base class

_module_server = {}


def module_server(backend=None):
    """One store server per test module and backend (lazily started)."""
    backend = backend or BACKEND
    s = _module_server.get(backend)
    if s is None:
        s = (ZkServer() if backend == "zk" else EtcdServer()).start()
        _module_server[backend] = s
    return s


def stop_module_server():
    for b in list(_module_server):
        _module_server.pop(b).stop()


def sample(root, **kw):
    """The default generated sample as {full key: value}."""
    g, ct = gen_topology.generate(root=root, **kw)
    return gen_topology.flatten(root, g, ct)


class TopofsTestCase(unittest.TestCase):
    """Base class.  self.server, self.store (independent client), self.root
    (unique per test), self.mount() / self.m (Mount), helpers."""

    maxDiff = 4000
    TEST_TIMEOUT = float(os.environ.get("TOPOFS_TEST_TIMEOUT", "180"))
    BACKEND = None      # None: $TOPOFS_BACKEND; a subclass may pin "zk"/"etcd"

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(topofs_bin()):
            if os.environ.get("TOPOFS_BIN"):
                raise RuntimeError("TOPOFS_BIN=%s does not exist" % topofs_bin())
            raise unittest.SkipTest("no topofs binary at %s" % topofs_bin())
        cls.server = module_server(cls.BACKEND)
        cls.store = cls.server.client()
        if hasattr(cls.store, "close"):
            cls.addClassCleanup(cls.store.close)

    def setUp(self):
        name = self.id().split(".")[-1]
        self.root = "/t/%s-%08x" % (name, random.getrandbits(32))
        self.prefix = self.root + "/"
        self.mounts = []
        self._watchdog = threading.Timer(self.TEST_TIMEOUT, self._fire_watchdog)
        self._watchdog.daemon = True
        self._watchdog.start()
        self.addCleanup(self._watchdog.cancel)

    def _fire_watchdog(self):
        sys.stderr.write("\n*** WATCHDOG: %s exceeded %ss; force-unmounting\n"
                         % (self.id(), self.TEST_TIMEOUT))
        for m in list(self.mounts):
            sys.stderr.write("--- topofs log (%s):\n%s\n" % (m.mnt, m.log()))
            m.force_stop()

    # -- store helpers
    def load(self, kvs=None, **kw):
        """Put the generated sample (or kvs, relpaths or full keys) under
        self.root; returns {full key: value}."""
        if kvs is None:
            kvs = sample(self.root, **kw)
        else:
            kvs = {self.key(k): (v.encode() if isinstance(v, str) else v)
                   for k, v in kvs.items()}
        self.store.put_many(kvs)
        return kvs

    def key(self, rel):
        if rel.startswith(self.root + "/"):
            return rel
        return self.prefix + rel

    def snapshot(self):
        """{full key: value} under root."""
        return {k: v[0] for k, v in self.store.range(self.prefix).items()}

    def keyset(self):
        return set(self.store.keys(self.prefix))

    # -- mount helpers
    def mount(self, extra=(), root=None, args=None, timeout=10):
        if args is None:
            args = self.server.topofs_args(root or self.root) + list(extra)
        m = Mount(args)
        self.mounts.append(m)
        self.addCleanup(self._umount, m)
        try:
            m.start(timeout)
        except MountError as e:
            self.fail(str(e))
        self.m = m
        return m

    def _test_failed(self):
        res = getattr(getattr(self, "_outcome", None), "result", None)
        if res is None:
            return False
        return any(t is self for t, _ in list(res.failures) + list(res.errors))

    def _umount(self, m):
        if self._test_failed():
            sys.stderr.write("\n--- topofs log for failed %s (%s):\n%s\n"
                             % (self.id(), " ".join(getattr(m, "cmd", [])), m.log()))
        if m.proc is not None and m.proc.poll() is None:
            m.unmount()
        else:
            m.cleanup()

    def p(self, rel=""):
        return self.m.path(rel)

    def umount_check_clean(self, m=None):
        m = m or self.m
        rc = m.unmount()
        self.assertEqual(rc, 0, "topofs did not exit cleanly:\n" + m.log())

    def fail_with_log(self, msg):
        logs = "\n".join("--- topofs log (%s):\n%s" % (m.mnt, m.log())
                         for m in self.mounts)
        self.fail(msg + "\n" + logs)

    def assertUnchanged(self, before, msg=""):
        after = self.snapshot()
        self.assertEqual(sorted(after), sorted(before),
                         "key set changed %s" % msg)
        for k in before:
            self.assertEqual(sha256(after[k]), sha256(before[k]),
                             "value of %s changed %s" % (k, msg))

    def assertErrno(self, err, func, *args, **kw):
        with self.assertRaises(OSError) as cm:
            func(*args, **kw)
        self.assertEqual(cm.exception.errno, err,
                         "expected %s, got %s (%s)"
                         % (errno.errorcode.get(err), errno.errorcode.get(
                             cm.exception.errno), cm.exception))
        return cm.exception


def write_file(path, data, mode="wb"):
    with open(path, mode) as f:
        f.write(data)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def walk_files(top):
    """relpath -> lstat for every non-directory under top; dirs set."""
    files, dirs = {}, set()
    for dp, dn, fn in os.walk(top):
        rel = os.path.relpath(dp, top)
        for d in dn:
            dirs.add(os.path.normpath(os.path.join(rel, d)))
        for f in fn:
            r = os.path.normpath(os.path.join(rel, f))
            files[r] = os.lstat(os.path.join(dp, f))
    return files, dirs


def expected_files(kvs, root):
    """Map a {full key: value} under root to the files the mount should
    show: {relpath: value}, with `.topofs-data` for keys that are prefixes."""
    rels = {k[len(root) + 1:]: v for k, v in kvs.items()
            if k.startswith(root + "/")}
    prefixes = set()
    for r in rels:
        parts = r.split("/")
        for i in range(1, len(parts)):
            prefixes.add("/".join(parts[:i]))
    out = {}
    for r, v in rels.items():
        out[(r + "/.topofs-data") if r in prefixes else r] = v
    return out


def main():
    try:
        unittest.main(verbosity=2)
    finally:
        stop_module_server()
