#!/usr/bin/python3
"""Failover (issue 6): with a 3-member etcd cluster / a 3-server ZooKeeper
ensemble on loopback and topofs mounted with every address, SIGKILL of one
member during a loop of writes makes no write fail, and every write
acknowledged by close is in the store afterwards, as each surviving member
reports it.

The loop alternates two kinds of write through the mount: the creation of a
new small file (open O_CREAT|O_EXCL, write, close) and a read-modify-write of
one counter file (open O_RDWR, read, +1, rewrite, close).  One member is
killed by its pid (SIGKILL) about 1.5 s into the loop; the loop goes on for
at least 6 s and 10 writes after the kill.  Which member:

- test_kill_first_address   the first address on topofs's command line
- test_kill_leader          the leader (etcd: /v3/maintenance/status
                            `leader` == `member_id`, moved to the second
                            member first so that topofs's endpoint is a
                            follower; ZooKeeper: `srvr` "Mode: leader")
- test_kill_connected       the member topofs is connected to right now
                            (its ESTABLISHED sockets in /proc)

On etcd, a write cut off by the kill is sent again to another member and,
if its compare then fails, settled by reading the keys back
(backends/etcd/settle.c); requests answered "try again" during the leader
election are retried until -o timeout.  ZooKeeper settles a write cut by a
connection loss the same way (backends/zk/zk_write.c, zk_multi.c).

Every cluster is private to its test (started in setUp, stopped by pid in
cleanup)."""

import errno
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

# read by CMakeLists.txt: both backends (etcd since issue 6, see above)
BACKENDS = ("etcd", "zk")
import cluster as c  # noqa: E402

PRE_KILL = 1.5      # seconds of writes before the kill
POST_KILL = 6.0     # at least this long after it
POST_KILL_OPS = 10  # and at least this many completed writes after it
HARD_CAP = 40.0     # the loop never runs longer than this after the kill


class FailoverTest(h.TopofsTestCase):

    @classmethod
    def setUpClass(cls):
        # no module server: every test starts its own cluster
        if not os.path.exists(h.topofs_bin()):
            if os.environ.get("TOPOFS_BIN"):
                raise RuntimeError("TOPOFS_BIN=%s does not exist" % h.topofs_bin())
            raise unittest.SkipTest("no topofs binary at %s" % h.topofs_bin())
        cls.backend = h.BACKEND

    def setUp(self):
        super().setUp()
        self.cluster = c.ZkEnsemble() if self.is_zk else c.EtcdCluster()
        self.addCleanup(self.cluster.stop)
        self.cluster.start()
        self.server = self.cluster
        self.store = self.cluster.client()
        if hasattr(self.store, "close"):
            self.addCleanup(self.store.close)
        self.store.put(self.key("seed"), b"seed")
        self.store.put(self.key("counter"), b"0")
        self.mount()
        self.topofs_pid = self.m.proc.pid

    # -- the write loop
    def _loop(self, ops, stop, kill_done):
        """Writes until stop is set; appends one record per write:
        dict(kind, rel, value, t0, t1, err)."""
        i = 0
        while not stop.is_set():
            i += 1
            t0 = time.time()
            rec = {"i": i, "t0": t0, "err": None}
            try:
                if i % 2:
                    rel = "f%05d" % i
                    val = ("value %d of %s\n" % (i, self.id())).encode()
                    rec.update(kind="create", rel=rel, value=val)
                    fd = os.open(self.p(rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                    try:
                        os.write(fd, val)
                    finally:
                        rec["stage"] = "close"
                        os.close(fd)
                else:
                    rec.update(kind="rmw", rel="counter")
                    fd = os.open(self.p("counter"), os.O_RDWR)
                    try:
                        cur = os.read(fd, 64)
                        rec["read"] = cur
                        val = str(int(cur) + 1).encode()
                        rec["value"] = val
                        os.ftruncate(fd, 0)
                        os.pwrite(fd, val, 0)
                    finally:
                        rec["stage"] = "close"
                        os.close(fd)
            except Exception as e:      # noqa: B902
                rec["err"] = e
            rec["t1"] = time.time()
            ops.append(rec)

    def run_failover(self, victim_fn, what):
        ops, stop, kill_done = [], threading.Event(), threading.Event()
        th = threading.Thread(target=self._loop, args=(ops, stop, kill_done),
                              daemon=True)
        th.start()
        try:
            time.sleep(PRE_KILL)
            victim = victim_fn()
            t_kill = time.time()
            self.cluster.kill(victim)
            t_killed = time.time()
            kill_done.set()
            deadline = t_killed + HARD_CAP
            while time.time() < deadline:
                after = [o for o in ops if o["t0"] >= t_killed]
                if time.time() - t_killed >= POST_KILL and len(after) >= POST_KILL_OPS:
                    break
                if not th.is_alive():
                    break
                time.sleep(0.1)
        finally:
            stop.set()
            th.join(60)
        self.assertFalse(th.is_alive(), "the write loop hung (a write blocked > 60 s)")
        sys.stderr.write("\n  [failover %s/%s] killed member %d (%s) of %s; %d writes, "
                         "%d after the kill\n"
                         % (self.backend, what, victim, self.cluster.addresses[victim],
                            ",".join(self.cluster.addresses), len(ops),
                            len([o for o in ops if o["t0"] >= t_killed])))
        return ops, victim, t_kill, t_killed

    # -- checks through the surviving members
    def member_stores(self):
        """One independent client per surviving member (ZooKeeper: synced)."""
        out = []
        for i in self.cluster.alive():
            if self.is_zk:
                cl = h.ZkClient(self.cluster.addresses[i])
                self.addCleanup(cl.close)
                cl.zk.sync(self.root)
            else:
                cl = h.EtcdClient(self.cluster.endpoints[i])
            out.append((i, cl))
        return out

    def describe(self, o, t_kill, t_killed):
        return ("#%d %s %s value=%r: %s at %s [t0=%+.3fs t1=%+.3fs vs kill; "
                "in flight at the kill: %s]"
                % (o["i"], o["kind"], o["rel"], o.get("value"),
                   errno.errorcode.get(getattr(o["err"], "errno", None), "?"),
                   o.get("stage", "open/write"), o["t0"] - t_kill, o["t1"] - t_kill,
                   o["t0"] <= t_killed and o["t1"] >= t_kill))

    def check(self, ops, victim, t_kill, t_killed):
        after = [o for o in ops if o["t0"] >= t_killed and o["err"] is None]
        failed = [o for o in ops if o["err"] is not None]
        members = self.member_stores()
        self.assertEqual(len(members), 2)
        # every acknowledged write is in the store, on every surviving member
        snaps = {i: {k: v[0] for k, v in st.range(self.prefix).items()}
                 for i, st in members}
        acked_creates = {o["rel"]: o["value"] for o in ops
                         if o["kind"] == "create" and o["err"] is None}
        acked_rmw = [o for o in ops if o["kind"] == "rmw" and o["err"] is None]
        lost = []
        for i, snap in snaps.items():
            for rel, val in sorted(acked_creates.items()):
                if snap.get(self.key(rel)) != val:
                    lost.append("member %d: %s = %r, acknowledged %r"
                                % (i, rel, snap.get(self.key(rel)), val))
        # what landed of the failed writes (for the report)
        fates = []
        for o in failed:
            got = snaps[members[0][0]].get(self.key(o["rel"]))
            fates.append("%s -> store has %r" % (self.describe(o, t_kill, t_killed), got))
        # the counter: the last acknowledged value, and (no failed rmw) the
        # number of acknowledged read-modify-writes
        last_val = acked_rmw[-1]["value"] if acked_rmw else b"0"
        failed_rmw = [o for o in failed if o["kind"] == "rmw"]
        for i, snap in snaps.items():
            got = snap.get(self.key("counter"))
            if failed_rmw:
                # a failed rmw may have landed; later acknowledged rmws
                # read the store, so the value is at least the last ack
                if got is None or int(got) < int(last_val):
                    lost.append("member %d: counter %r < last acknowledged %r"
                                % (i, got, last_val))
            elif got != str(len(acked_rmw)).encode():
                lost.append("member %d: counter %r, %d acknowledged increments"
                            % (i, got, len(acked_rmw)))
        # nothing but the seed, the counter and the created files
        for i, snap in snaps.items():
            extra = set(snap) - {self.key(r) for r in acked_creates} - {
                self.key("seed"), self.key("counter")} - {
                self.key(o["rel"]) for o in failed}
            if extra:
                lost.append("member %d: unexpected keys %s" % (i, sorted(extra)[:10]))
        msg = []
        if lost:
            msg.append("ACKNOWLEDGED WRITES NOT IN THE STORE:\n  " + "\n  ".join(lost[:30]))
        if failed:
            msg.append("%d of %d writes failed (killed member %d %s at t=0):\n  %s"
                       % (len(failed), len(ops), victim,
                          self.cluster.addresses[victim], "\n  ".join(fates[:30])))
        if len(after) < POST_KILL_OPS:
            msg.append("only %d writes succeeded after the kill" % len(after))
        if msg:
            self.fail_with_log("\n".join(msg))
        # the mount itself still serves what it wrote
        names = set(os.listdir(self.p()))
        self.assertTrue(set(acked_creates) <= names,
                        "listing lacks %s" % sorted(set(acked_creates) - names)[:5])
        self.assertEqual(h.read_file(self.p("counter")),
                         snaps[members[0][0]][self.key("counter")])

    # -- tests
    def test_kill_first_address(self):
        ops, victim, tk, tkd = self.run_failover(lambda: 0, "first address")
        self.check(ops, victim, tk, tkd)

    def test_kill_leader(self):
        if self.is_etcd:
            # not the first address (that is test_kill_first_address): topofs
            # talks to a follower, which forwards to the leader that dies
            self.cluster.move_leader(1)
        ops, victim, tk, tkd = self.run_failover(self.cluster.leader, "leader")
        self.check(ops, victim, tk, tkd)

    def test_kill_connected(self):
        def connected():
            ports = c.socket_peer_ports(self.topofs_pid)
            idx = [i for i, p in enumerate(self.cluster.client_ports) if p in ports]
            self.assertTrue(idx, "topofs holds no connection to any member "
                            "(peer ports %s)" % sorted(ports))
            return idx[0]
        ops, victim, tk, tkd = self.run_failover(connected, "connected member")
        self.check(ops, victim, tk, tkd)


if __name__ == "__main__":
    h.main()
