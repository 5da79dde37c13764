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

Every Mount is checked when it ends: the test fails if topofs exited
non-zero after the unmount (or died while mounted), or if its stderr log holds
an AddressSanitizer / LeakSanitizer / UndefinedBehaviorSanitizer report (the
topofs-asan build writes those to stderr).

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
import collections
import errno
import hashlib
import json
import os
import random
import re
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


class Meta(tuple):
    """One node's metadata in backend-neutral terms (Store.meta(key)):
    value      bytes
    version    etcd: the key's version counter; ZooKeeper: the data version
    mod_id     etcd: mod_revision; ZooKeeper: mzxid
    create_id  etcd: create_revision; ZooKeeper: czxid
    ephemeral  etcd: the lease id (0: none); ZooKeeper: ephemeralOwner
    """
    __slots__ = ()
    _fields = ("value", "version", "mod_id", "create_id", "ephemeral")

    def __new__(cls, value, version, mod_id, create_id, ephemeral):
        return tuple.__new__(cls, (value, version, mod_id, create_id, ephemeral))

    value = property(lambda self: self[0])
    version = property(lambda self: self[1])
    mod_id = property(lambda self: self[2])
    create_id = property(lambda self: self[3])
    ephemeral = property(lambda self: self[4])

    def __repr__(self):
        return "Meta(len=%d, version=%d, mod_id=%d, create_id=%d, ephemeral=%d)" % (
            len(self[0]), self[1], self[2], self[3], self[4])


class EtcdError(Exception):
    pass


class EtcdClient:
    """Independent etcd v3 client over the JSON gateway.  Keys are str
    (UTF-8) in and out; values are bytes.  ssl_context: for an https
    endpoint (CA and client certificate); auth: (user, password) of an etcd
    user, whose token goes with every request (renewed when etcd forgets
    it)."""

    backend = "etcd"

    def __init__(self, endpoint, timeout=15, ssl_context=None, auth=None):
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.auth = auth
        self.token = None

    def _open(self, req):
        return urllib.request.urlopen(req, timeout=self.timeout,
                                      context=self.ssl_context)

    def _login(self):
        self.token = None
        r = self.call("/v3/auth/authenticate",
                      {"name": self.auth[0], "password": self.auth[1]})
        self.token = r["token"]

    def call(self, path, body, _retry=True):
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.auth and path != "/v3/auth/authenticate":
            if self.token is None:
                self._login()
            headers["Authorization"] = self.token
        req = urllib.request.Request(self.endpoint + path, data=data,
                                     headers=headers)
        try:
            with self._open(req) as resp:
                reply = json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            text = e.read()[:300]
            if self.auth and _retry and b"invalid auth token" in text:
                self.token = None
                return self.call(path, body, _retry=False)
            raise EtcdError("%s: HTTP %d %s" % (path, e.code, text))
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

    def meta(self, key):
        """Meta (backend-neutral) or None."""
        kvs = self._range(key).get("kvs") or []
        if not kvs:
            return None
        kv = kvs[0]
        return Meta(b64d(kv.get("value")), int(kv.get("version", 0)),
                    int(kv.get("mod_revision", 0)), int(kv.get("create_revision", 0)),
                    int(kv.get("lease", 0)))

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
        if self.ssl_context or self.auth:
            for k, v in kvs.items():   # gen_topology speaks plain http only
                self.put(k, v)
            return
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

    def put_ephemeral(self, key, value, ttl=60):
        """A key that lives as long as a lease (Vitess locks); returns a
        handle for drop_ephemeral."""
        lease = self.lease_grant(ttl)
        self.put(key, value, lease=lease)
        return lease

    def drop_ephemeral(self, handle):
        try:
            self.lease_revoke(handle)
        except EtcdError:
            pass

    def is_ephemeral(self, key):
        m = self.get_meta(key)
        return bool(m and m[3])

    def request_counts(self):
        """{grpc method: requests started} for etcd's KV/Watch/Lease services,
        from the server's /metrics (counts every client, this one too)."""
        with self._open(self.endpoint + "/metrics") as resp:
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
    """A throwaway etcd.  tls: None (plain http), or a dict with the files
    "cert", "key" (the server's), "ca" (clients must present a certificate
    from it: --client-cert-auth) and "client_cert", "client_key" (what
    client() presents).  extra_args: more etcd flags.  auth: (user,
    password) that client() logs in with, once the test enabled auth.
    enable_v2=True also serves the v2 keys API (/v2/keys,
    --enable-v2=true) for topofs -o etcd_api=v2."""
    backend = "etcd"
    impl = "etcd2"

    def __init__(self, tls=None, extra_args=(), enable_v2=False):
        self.enable_v2 = enable_v2
        self.port = free_port()
        self.peer_port = free_port()
        while self.peer_port == self.port:
            self.peer_port = free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.tls = tls
        self.extra_args = list(extra_args)
        self.auth = None
        self.endpoint = ("https://" if tls else "http://") + self.address
        self.datadir = None
        self.proc = None
        self.logpath = None

    def ssl_context(self):
        """The TLS context of client() (None without TLS)."""
        if not self.tls:
            return None
        import ssl
        ctx = ssl.create_default_context(cafile=self.tls["ca"])
        if self.tls.get("client_cert"):
            ctx.load_cert_chain(self.tls["client_cert"], self.tls["client_key"])
        return ctx

    def tls_args(self):
        if not self.tls:
            return []
        return ["--cert-file", self.tls["cert"], "--key-file", self.tls["key"],
                "--trusted-ca-file", self.tls["ca"], "--client-cert-auth"]

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
               "--initial-cluster", "t=" + peer] + self.tls_args() + self.extra_args
        if self.enable_v2:
            cmd.append("--enable-v2=true")
        log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        if self not in _live_servers:
            _live_servers.append(self)
        client = EtcdClient(self.endpoint, timeout=2,
                            ssl_context=self.ssl_context())
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                # answers without a user even when auth is enabled
                client.call("/v3/maintenance/status", {})
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
        return EtcdClient(self.endpoint, ssl_context=self.ssl_context(),
                          auth=self.auth)

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
        # retry connecting for ever (quickly): across a server restart the
        # client reconnects, with a new session if the old one expired
        self.zk = KazooClient(hosts=hosts, timeout=10,
                              connection_retry=dict(max_tries=-1, delay=0.1,
                                                    backoff=1.5, max_delay=1.0))
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
        """Create/set every znode, parents first (with empty data, like
        Vitess's zk2), pipelined: one wave of asynchronous calls per depth."""
        from kazoo.exceptions import NodeExistsError
        want = {}
        for k, v in kvs.items():
            want[k] = v.encode("utf-8") if isinstance(v, str) else v
            parts = k.strip("/").split("/")
            for i in range(1, len(parts)):
                want.setdefault("/" + "/".join(parts[:i]), None)   # parent
        bydepth = {}
        for k in want:
            bydepth.setdefault(k.count("/"), []).append(k)
        for depth in sorted(bydepth):
            # multis of up to 500 creates / 512 KiB, all of a depth in flight
            chunks, cur, size = [], [], 0
            for k in sorted(bydepth[depth]):
                n = len(want[k] or b"") + len(k) + 64
                if cur and (len(cur) >= 500 or size + n > 512 * 1024):
                    chunks.append(cur)
                    cur, size = [], 0
                cur.append(k)
                size += n
            if cur:
                chunks.append(cur)
            pend = []
            for chunk in chunks:
                t = self.zk.transaction()
                for k in chunk:
                    t.create(k, want[k] or b"")
                pend.append((chunk, t.commit_async()))
            for chunk, a in pend:
                res = a.get(timeout=60)
                if not any(isinstance(r, Exception) for r in res):
                    continue
                # something existed: one by one
                for k in chunk:
                    try:
                        self.zk.create(k, want[k] or b"")
                    except NodeExistsError:
                        if want[k] is not None:
                            self.zk.set(k, want[k])

    def get_meta(self, key):
        """(value, mzxid, version, ephemeralOwner) or None (as range())."""
        m = self.meta(key)
        return None if m is None else (m.value, m.mod_id, m.version, m.ephemeral)

    def meta(self, key):
        """Meta (backend-neutral) or None."""
        from kazoo.exceptions import NoNodeError
        try:
            data, st = self.zk.get(key)
        except NoNodeError:
            return None
        return Meta(data or b"", st.version, st.mzxid, st.czxid, st.ephemeralOwner)

    def stat(self, key):
        """kazoo ZnodeStat or None."""
        return self.zk.exists(key)

    def put_ephemeral(self, key, value, sequence=False):
        """An ephemeral znode of this client's session (parents persistent,
        empty data); returns its path (the handle for drop_ephemeral)."""
        if isinstance(value, str):
            value = value.encode("utf-8")
        return self.zk.create(key, value, ephemeral=True, sequence=sequence,
                              makepath=True)

    def drop_ephemeral(self, handle):
        self.delete(handle)

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
    backend = "zk"
    impl = "zk2"

    def __init__(self):
        self.port = free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.dir = None
        self.proc = None

    def start(self, timeout=40):
        if self.dir is None:
            self.dir = make_tempdir("topofs-zk-")
            cfg = os.path.join(self.dir, "zoo.cfg")
            with open(cfg, "w") as f:
                f.write("tickTime=2000\ninitLimit=10\nsyncLimit=5\n"
                        "dataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
                        "admin.enableServer=false\n4lw.commands.whitelist=*\n"
                        % (os.path.join(self.dir, "data"), self.port))
            os.makedirs(os.path.join(self.dir, "data"))
        cfg = os.path.join(self.dir, "zoo.cfg")
        self.logpath = os.path.join(self.dir, "zk.log")
        cp = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
        cmd = ["java", "-cp", cp, "-Dzookeeper.log.dir=" + self.dir,
               "-Dzookeeper.root.logger=INFO,CONSOLE",
               "-Dzookeeper.4lw.commands.whitelist=*",
               "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg]
        log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        if self not in _live_servers:
            _live_servers.append(self)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            # "ruok" answers before the server serves sessions; "srvr"
            # names the last zxid only once it does
            try:
                with socket.create_connection(("127.0.0.1", self.port), 1) as s:
                    s.sendall(b"srvr")
                    reply = b""
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        reply += chunk
                    if b"Zxid:" in reply:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        try:
            out = open(self.logpath, "rb").read()[-4000:].decode("utf-8", "replace")
        except Exception:
            out = ""
        self.stop()
        raise RuntimeError("zookeeper did not start:\n" + out)

    def client(self):
        return ZkClient(self.address)

    def log(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except Exception:
            return ""

    def pause(self):
        """Stop the server (by pid) but keep its data: the store becomes
        unreachable; resume() brings it back on the same port (sessions
        that have not expired survive)."""
        stop_pid(self.proc)

    def resume(self, timeout=40):
        return self.start(timeout)

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


# --------------------------------------------------------------------------
# unittest base class

_module_server = {}


def module_server(backend=None, **options):
    """One store server per test module, backend and server options
    (EtcdServer's, e.g. enable_v2=True), lazily started."""
    backend = backend or BACKEND
    key = backend if not options else (backend,) + tuple(sorted(options.items()))
    s = _module_server.get(key)
    if s is None:
        s = (ZkServer() if backend == "zk" else EtcdServer(**options)).start()
        _module_server[key] = s
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
    SERVER_OPTIONS = {}  # for the module's server, e.g. {"enable_v2": True}

    backend = BACKEND   # the backend in use ("etcd" | "zk"), set by setUpClass

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(topofs_bin()):
            if os.environ.get("TOPOFS_BIN"):
                raise RuntimeError("TOPOFS_BIN=%s does not exist" % topofs_bin())
            raise unittest.SkipTest("no topofs binary at %s" % topofs_bin())
        cls.backend = cls.BACKEND or BACKEND
        cls.server = module_server(cls.BACKEND, **cls.SERVER_OPTIONS)
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
        self.settle_store()
        return m

    def settle_store(self, quiet=0.3, limit=3.0):
        """ZooKeeper: wait until the zxid stops moving (topofs's session
        create/close are transactions too and may land just after the
        mount), so later revision() deltas count only data writes."""
        if not self.is_zk:
            return
        deadline = time.time() + limit
        last, since = self.store.revision(), time.time()
        while time.time() < deadline:
            time.sleep(0.1)
            cur = self.store.revision()
            if cur != last:
                last, since = cur, time.time()
            elif time.time() - since >= quiet:
                return

    def _test_failed(self):
        res = getattr(getattr(self, "_outcome", None), "result", None)
        if res is None:
            return False
        return any(t is self for t, _ in list(res.failures) + list(res.errors))

    def _umount(self, m):
        """Cleanup of every mount: unmount, then fail the test if topofs did
        not end cleanly (sanitizer report, died, non-zero exit)."""
        if m.proc is not None and m.proc.poll() is None:
            m.unmount()
        else:
            if m.proc is not None and m.returncode is None and not m.killed:
                m.died_while_mounted = True
            m.cleanup()
        problems = m.problems() if m.proc is not None else []
        if self._test_failed() or problems:
            sys.stderr.write("\n--- topofs log for %s %s (%s):\n%s\n"
                             % ("failed" if self._test_failed() else "unclean",
                                self.id(), " ".join(getattr(m, "cmd", [])), m.log()))
        if problems:
            self.fail("topofs (%s) did not end cleanly:\n%s"
                      % (" ".join(getattr(m, "cmd", [])), "\n".join(problems)))

    def p(self, rel=""):
        return self.m.path(rel)

    def umount_check_clean(self, m=None):
        m = m or self.m
        rc = m.unmount()
        self.assertEqual(rc, 0, "topofs did not exit cleanly:\n" + m.log())
        rep = m.sanitizer_report()
        self.assertIsNone(rep, "sanitizer report in the topofs log:\n%s" % rep)

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

    # -- backend-aware helpers (SPEC 2)
    @property
    def is_zk(self):
        return self.backend == "zk"

    @property
    def is_etcd(self):
        return self.backend == "etcd"

    def expected_files(self, snap=None):
        """{relpath: value} the mount shows for snap (default: the store
        now), by this backend's mapping rule."""
        return expected_view(self.snapshot() if snap is None else snap,
                             self.root, self.backend)[0]

    def expected_dirs(self, snap=None):
        return expected_view(self.snapshot() if snap is None else snap,
                             self.root, self.backend)[1]

    def node_meta(self, rel):
        """Meta of the key/znode rel (or full key) via the independent client."""
        return self.store.meta(self.key(rel))

    def mkdir_keys(self, *rels):
        """The keys that `mkdir -p rel` leaves in the store on this backend:
        none on etcd (directories live in memory), the znode and its
        ancestors below the root on ZooKeeper."""
        out = set()
        if self.is_zk:
            for rel in rels:
                parts = rel.strip("/").split("/")
                for i in range(1, len(parts) + 1):
                    out.add(self.key("/".join(parts[:i])))
        return out

    def assertOneWrite(self, rel, before, rev=None, created=False, msg=""):
        """rel was written exactly once since `before` (its Meta then, or
        None if it did not exist) and `rev` (store.revision() then).
        etcd: the revision moved by one and is the key's mod_revision, the
        key's version +1.  ZooKeeper: the data version +1 and czxid
        unchanged (a new znode: version 0), and the zxid moved by one."""
        after = self.node_meta(rel)
        self.assertIsNotNone(after, "%s: %s is not in the store" % (msg, rel))
        if rev is not None:
            self.assertEqual(self.store.revision(), rev + 1,
                             "%s: not exactly one store write" % msg)
        if before is None or created:
            if self.is_zk:
                self.assertEqual(after.version, 0, "%s: new znode %s" % (msg, rel))
            elif rev is not None:
                self.assertEqual(after.create_id, rev + 1, "%s: %s" % (msg, rel))
            return after
        if self.is_zk:
            self.assertEqual(after.version, before.version + 1,
                             "%s: data version of %s not +1" % (msg, rel))
            self.assertEqual(after.create_id, before.create_id,
                             "%s: czxid of %s changed (znode re-created?)" % (msg, rel))
        else:
            self.assertEqual(after.version, before.version + 1,
                             "%s: version of %s not +1" % (msg, rel))
            self.assertEqual(after.create_id, before.create_id,
                             "%s: create_revision of %s changed" % (msg, rel))
            if rev is not None:
                self.assertEqual(after.mod_id, rev + 1,
                                 "%s: mod_revision of %s" % (msg, rel))
        return after

    def put_ephemeral(self, rel, value, sequence=False):
        """An ephemeral node (etcd: a key with a lease; ZooKeeper: an
        ephemeral znode, sequential if asked) removed at cleanup; returns
        its relpath."""
        if self.is_zk:
            path = self.store.put_ephemeral(self.key(rel), value, sequence=sequence)
        else:
            key = self.key(rel)
            if sequence:
                key += "%010d" % random.randrange(10 ** 9)
            path = key
            handle = self.store.put_ephemeral(key, value)
            self.addCleanup(self.store.drop_ephemeral, handle)
            return path[len(self.prefix):]
        self.addCleanup(self.store.drop_ephemeral, path)
        return path[len(self.prefix):]

    def assertErrno(self, err, func, *args, **kw):
        with self.assertRaises(OSError) as cm:
            func(*args, **kw)
        self.assertEqual(cm.exception.errno, err,
                         "expected %s, got %s (%s)"
                         % (errno.errorcode.get(err), errno.errorcode.get(
                             cm.exception.errno), cm.exception))
        return cm.exception


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


def write_file(path, data, mode="wb"):
    with open(path, mode) as f:
        f.write(data)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def _raise(err):
    raise err


def walk_files(top, strict=True):
    """relpath -> lstat for every non-directory under top; dirs set.
    strict: a directory that cannot be listed raises its OSError (os.walk
    would silently skip it, hiding an EIO from the mount)."""
    files, dirs = {}, set()
    for dp, dn, fn in os.walk(top, onerror=_raise if strict else None):
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


def expected_view(nodes, root, backend=None):
    """What a mount of root shows for nodes ({full key or znode path:
    value}), by the backend's rule (SPEC 2): (files {relpath: value},
    dirs {relpath}).
    etcd: every key is a file, every proper prefix a directory; a key that
    is also a prefix is a directory with its value in .topofs-data.
    zk: nodes holds every znode (parents too, as Store.range() gives them);
    a znode with children is a directory whose data, if not empty, is its
    .topofs-data; a znode without children is a file (even with empty data).
    The root itself is not in nodes."""
    backend = backend or BACKEND
    rels = {k[len(root) + 1:]: v for k, v in nodes.items()
            if k.startswith(root + "/")}
    prefixes = set()
    for r in rels:
        parts = r.split("/")
        for i in range(1, len(parts)):
            prefixes.add("/".join(parts[:i]))
    files = {}
    for r, v in rels.items():
        if r in prefixes:
            if backend != "zk" or v:
                files[r + "/.topofs-data"] = v
        else:
            files[r] = v
    return files, prefixes


def zk_name_ok(name):
    """False if ZooKeeper refuses name as a path segment (its PathUtils:
    control characters, U+007F-U+009F, UTF-16 surrogates - so every
    character outside the BMP - and U+E000-U+F8FF, U+FFF0-U+FFFF)."""
    if name in ("", ".", ".."):
        return False
    for ch in name:
        c = ord(ch)
        if c <= 0x1F or 0x7F <= c <= 0x9F or 0xD800 <= c <= 0xF8FF \
                or 0xFFF0 <= c <= 0xFFFF or c > 0xFFFF:
            return False
    return True


def backends(*names):
    """Decorator: run this test only on the given backends (skipped, with
    the reason, elsewhere).  For behaviour that exists on one backend only
    (etcd revisions, leases); where both have a rule, branch on
    self.backend instead and check each rule."""
    def deco(func):
        def wrapper(self, *a, **kw):
            if self.backend not in names:
                self.skipTest("%s only" % "/".join(names))
            return func(self, *a, **kw)
        wrapper.__name__ = func.__name__
        wrapper.__doc__ = func.__doc__
        return wrapper
    return deco


def main():
    try:
        unittest.main(verbosity=2)
    finally:
        stop_module_server()
