"""Multi-member stores on loopback for the failover tests.

EtcdCluster: 3 etcd members (--initial-cluster with every member), started
in parallel, each on free client and peer ports.
ZkEnsemble: 3 ZooKeeper servers (server.N=127.0.0.1:P1:P2 lines, myid files),
started in parallel (JVM start-up dominates).

Both: .addresses (host:port list, the order topofs gets them), kill(i)
(SIGKILL of member i by its pid), leader() (the index of the current
leader), alive(), client() (an independent client on the surviving
members), topofs_args(root), stop() (every member by pid, data removed).
They register with the harness's safety net (harness._live_servers), so an
aborted run still stops them.

Also: socket_peer_ports(pid) - the remote loopback ports of the ESTABLISHED
TCP connections a process holds (/proc/PID/fd + /proc/net/tcp), to find the
server a client is connected to.
"""

import json
import logging
import os
import random
import socket
import subprocess
import threading
import time
import urllib.request

import harness as h

# kazoo logs every dropped connection to stderr (a killed server is the
# point of these tests)
logging.getLogger("kazoo").setLevel(logging.ERROR)


def _free_ports(n):
    """n distinct free loopback ports."""
    out = []
    while len(out) < n:
        p = h.free_port()
        if p not in out:
            out.append(p)
    return out


def socket_peer_ports(pid):
    """Remote ports of ESTABLISHED TCP connections held by process pid."""
    inodes = set()
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return set()
    for fd in fds:
        try:
            t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if t.startswith("socket:["):
            inodes.add(t[8:-1])
    out = set()
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(fn) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "01" and parts[9] in inodes:   # ESTABLISHED
                        out.add(int(parts[2].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return out


def _kill_proc(proc):
    if proc is not None and proc.poll() is None:
        proc.kill()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            pass


class _Cluster:
    n = 3

    def __init__(self):
        self.procs = [None] * self.n
        self.killed = set()
        self.dir = None

    def alive(self):
        return [i for i in range(self.n)
                if self.procs[i] is not None and self.procs[i].poll() is None]

    def kill(self, i):
        """SIGKILL member i (by its pid) and reap it."""
        proc = self.procs[i]
        assert proc is not None and proc.poll() is None, "member %d not running" % i
        proc.kill()
        proc.wait(10)
        self.killed.add(i)

    def stop(self):
        for p in self.procs:
            try:
                h.stop_pid(p)
            except Exception:
                _kill_proc(p)
        if self in h._live_servers:
            h._live_servers.remove(self)
        if self.dir:
            h.remove_tempdir(self.dir)
            self.dir = None

    def logs(self):
        out = []
        for i in range(self.n):
            try:
                with open(self.logpath(i), "rb") as f:
                    out.append("--- member %d (%s):\n%s" % (
                        i, self.addresses[i],
                        f.read()[-3000:].decode("utf-8", "replace")))
            except OSError:
                pass
        return "\n".join(out)

    def _spawn(self, i, cmd):
        """Start member i (its output to its log)."""
        with open(self.logpath(i), "ab") as log:
            self.procs[i] = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)

    def _wait_ready(self, ready, timeout, pause, what):
        """Wait until ready(i) holds for every member; a member that exits
        ends the wait. Else stop everything and raise with the logs."""
        deadline = time.time() + timeout
        pending = set(range(self.n))
        while pending and time.time() < deadline:
            for i in list(pending):
                if self.procs[i].poll() is not None:
                    deadline = 0
                    break
                if ready(i):
                    pending.discard(i)
            if pending:
                time.sleep(pause)
        if pending:
            logs = self.logs()
            self.stop()
            raise RuntimeError("%s did not start (%s):\n%s"
                               % (what, sorted(pending), logs))
        return self

    def topofs_args(self, root):
        return ["--topo_implementation=" + self.impl,
                "--topo_global_server_address=" + ",".join(self.addresses),
                "--topo_global_root=" + root]


class EtcdCluster(_Cluster):
    backend = "etcd"
    impl = "etcd2"

    def __init__(self):
        super().__init__()
        ports = _free_ports(2 * self.n)
        self.client_ports = ports[:self.n]
        self.peer_ports = ports[self.n:]
        self.addresses = ["127.0.0.1:%d" % p for p in self.client_ports]
        self.endpoints = ["http://" + a for a in self.addresses]
        self.names = ["m%d" % i for i in range(self.n)]

    def logpath(self, i):
        return os.path.join(self.dir, "etcd%d.log" % i)

    def member_cmd(self, i, state, token=None):
        """Member i's etcd command line: state "new" (a new cluster, with
        its token) or "existing" (started again on its data directory)."""
        peers = ["http://127.0.0.1:%d" % p for p in self.peer_ports]
        initial = ",".join("%s=%s" % (n, p) for n, p in zip(self.names, peers))
        cmd = ["etcd", "--name", self.names[i],
               "--data-dir", os.path.join(self.dir, "data%d" % i),
               "--listen-client-urls", self.endpoints[i],
               "--advertise-client-urls", self.endpoints[i],
               "--listen-peer-urls", peers[i],
               "--initial-advertise-peer-urls", peers[i],
               "--initial-cluster", initial]
        if token:
            cmd += ["--initial-cluster-token", token]
        return cmd + ["--initial-cluster-state", state]

    def start(self, timeout=30):
        self.dir = h.make_tempdir("topofs-etcdc-")
        h._live_servers.append(self)
        token = "topofs-%08x" % random.getrandbits(32)
        for i in range(self.n):
            self._spawn(i, self.member_cmd(i, "new", token))

        def ready(i):
            try:
                h.EtcdClient(self.endpoints[i], timeout=2).revision()
                return True
            except Exception:
                return False
        return self._wait_ready(ready, timeout, 0.1, "etcd cluster (members)")

    def status(self, i, timeout=2):
        req = urllib.request.Request(
            self.endpoints[i] + "/v3/maintenance/status", data=b"{}",
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def leader(self, timeout=15):
        """Index of the leader, as every live member reports it."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                ids, leaders = {}, set()
                for i in self.alive():
                    st = self.status(i)
                    ids[str(st["header"]["member_id"])] = i
                    leaders.add(str(st.get("leader", "0")))
                if len(leaders) == 1:
                    lid = leaders.pop()
                    if lid in ids:
                        return ids[lid]
                last = (ids, leaders)
            except Exception as e:
                last = e
            time.sleep(0.2)
        raise RuntimeError("no etcd leader agreed on: %r" % (last,))

    def member_ids(self):
        """[member_id (str) of member i] for the live members (None: dead)."""
        out = [None] * self.n
        for i in self.alive():
            out[i] = str(self.status(i)["header"]["member_id"])
        return out

    def move_leader(self, target, timeout=15):
        """Hand leadership to member `target` (MoveLeader on the leader)."""
        cur = self.leader()
        if cur == target:
            return
        ids = self.member_ids()
        req = urllib.request.Request(
            self.endpoints[cur] + "/v3/maintenance/transfer-leadership",
            data=json.dumps({"targetID": ids[target]}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.leader() == target:
                return
            time.sleep(0.1)
        raise RuntimeError("leadership did not move to member %d" % target)

    def client(self):
        """EtcdClient on the first live member."""
        return h.EtcdClient(self.endpoints[self.alive()[0]])

    def clients(self):
        return [h.EtcdClient(self.endpoints[i]) for i in self.alive()]


class ZkEnsemble(_Cluster):
    backend = "zk"
    impl = "zk2"

    def __init__(self):
        super().__init__()
        ports = _free_ports(3 * self.n)
        self.client_ports = ports[:self.n]
        self.quorum_ports = ports[self.n:2 * self.n]
        self.election_ports = ports[2 * self.n:]
        self.addresses = ["127.0.0.1:%d" % p for p in self.client_ports]

    def logpath(self, i):
        return os.path.join(self.dir, "zk%d" % (i + 1), "zk.log")

    def start(self, timeout=90):
        self.dir = h.make_tempdir("topofs-zke-")
        h._live_servers.append(self)
        servers = "".join("server.%d=127.0.0.1:%d:%d\n" % (
            i + 1, self.quorum_ports[i], self.election_ports[i])
            for i in range(self.n))
        cp = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
        for i in range(self.n):
            d = os.path.join(self.dir, "zk%d" % (i + 1))
            data = os.path.join(d, "data")
            os.makedirs(data)
            with open(os.path.join(data, "myid"), "w") as f:
                f.write("%d\n" % (i + 1))
            cfg = os.path.join(d, "zoo.cfg")
            with open(cfg, "w") as f:
                f.write("tickTime=2000\ninitLimit=10\nsyncLimit=5\n"
                        "dataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
                        "admin.enableServer=false\n4lw.commands.whitelist=*\n"
                        "%s" % (data, self.client_ports[i], servers))
            cmd = ["java", "-Xmx256m", "-XX:+UseSerialGC",
                   "-XX:TieredStopAtLevel=1", "-cp", cp,
                   "-Dzookeeper.log.dir=" + d,
                   "-Dzookeeper.root.logger=INFO,CONSOLE",
                   "-Dzookeeper.4lw.commands.whitelist=*",
                   "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg]
            self._spawn(i, cmd)
        return self._wait_ready(lambda i: self.mode(i) in ("leader", "follower"),
                                timeout, 0.2, "ZooKeeper ensemble (servers)")

    def fourlw(self, i, cmd=b"srvr", timeout=2):
        try:
            with socket.create_connection(("127.0.0.1", self.client_ports[i]),
                                          timeout) as s:
                s.settimeout(timeout)
                s.sendall(cmd)
                reply = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    reply += chunk
                return reply.decode("utf-8", "replace")
        except OSError:
            return ""

    def mode(self, i):
        """'leader' | 'follower' | None (not serving) - from `srvr`."""
        for line in self.fourlw(i).splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
        return None

    def leader(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            leaders = [i for i in self.alive() if self.mode(i) == "leader"]
            if len(leaders) == 1:
                return leaders[0]
            time.sleep(0.2)
        raise RuntimeError("no ZooKeeper leader")

    def wait_serving(self, timeout=60):
        """Until every live server serves (leader/follower)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all(self.mode(i) in ("leader", "follower") for i in self.alive()):
                return
            time.sleep(0.2)
        raise RuntimeError("ZooKeeper ensemble not serving:\n" + self.logs())

    def client(self):
        """kazoo client on the live servers."""
        return h.ZkClient(",".join(self.addresses[i] for i in self.alive()))


def start_parallel(*clusters):
    """Start several clusters at once (threads); raises the first error."""
    errs = []

    def run(c):
        try:
            c.start()
        except Exception as e:      # noqa: B902
            errs.append(e)
    ts = [threading.Thread(target=run, args=(c,)) for c in clusters]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errs:
        raise errs[0]
