"""Integration-test harness: throwaway store servers on free loopback
ports - EtcdServer (Debian etcd) and ZkServer (ZooKeeper), each stopped by
its pid - and the TCP connections to a server's port.  Import them through
harness.
"""

import os
import socket
import subprocess
import time

from harness_base import (BACKEND, _live_servers, make_tempdir,
                          remove_tempdir, stop_pid)
from harness_clients import EtcdClient, ZkClient


def free_port():
    """A port nobody listens on right now (bind to 0 on loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
