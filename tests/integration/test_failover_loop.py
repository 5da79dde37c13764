#!/usr/bin/python3
"""Failover in a loop (issue 21 item 10): on a 3-member etcd cluster on
loopback, with topofs mounted with every address and `-o timeout=5`, the
loss of the member topofs is using makes no write fail - round after round,
whether that member is a follower or the leader.

One cluster and one mount serve the whole module.  Each round:

1. finds the member the mount is using: the last log line `etcd: X
   unavailable, now using Y` (Y), or the first address before any;
2. chooses the victim, by turns (KINDS):
   - "leader in use": that member, made the leader first (MoveLeader):
     the mount loses its member and the cluster its leader at once;
   - "follower in use": that member, another one made the leader first;
   - "leader": the leader while the mount uses a follower: that follower
     holds what it forwarded to the dead leader until etcd's own request
     timeout (7 s), past -o timeout;
3. writes WRITES files through the mount (new files alternating with a
   rewrite of one file) and SIGKILLs the victim by its pid from another
   thread a few milliseconds after write KILL_AFTER returns, so that the
   kill lands in flight or between two writes;
4. checks that every write succeeded (open, write and close) and that
   every value is in the store, as each surviving member reports it;
5. restarts the killed member on its data directory and waits until it
   has caught up with the leader (a kill in the next round must leave a
   quorum).

Every failure of every round is collected and reported at the end (the
number of failed writes is the measure of the bug).

Environment: TOPOFS_FAILOVER_ROUNDS (default 50) lowers the number of
rounds; TOPOFS_FAILOVER_DEBUG=1 mounts with -o debug (topofs's debug lines
in the log shown on failure)."""

import errno
import os
import random
import re
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import cluster as c  # noqa: E402

# read by CMakeLists.txt: etcd only (ZooKeeper has its own failover tests)
BACKENDS = ("etcd",)

# the sanitizer build is slower: fewer rounds there keep the suite short
ROUNDS = int(os.environ.get(
    "TOPOFS_FAILOVER_ROUNDS",
    "15" if "asan" in os.path.basename(h.topofs_bin()) else "50"))
WRITES = 30         # writes per round
KILL_AFTER = 10     # the kill follows the return of this write
KILL_DELAY = 0.015  # at most this many seconds later (random)
# -o timeout, seconds. 3 s left half a second beside etcd's default
# elections on a loaded 2-core machine (1 write in 1,500 missed it in two
# full-suite runs); the code before the fix still fails at 4 s (8 of 1,500).
# 4 s missed once too (1 of 1,500, a write cut at 4.00 s while a new leader
# was elected, in a full-suite run of 2026-12-07): 5 s. The code before the
# fix still fails at 5 s (2 of 1,500 writes, that day); the fixed code's
# slowest write then was 3.34 s.
TIMEOUT = 5
KINDS = ("leader in use", "follower in use", "leader")
SWITCH = re.compile(r"etcd: (\S+) unavailable, now using (\S+)")


class LoopCluster(c.EtcdCluster):
    """An etcd cluster whose killed members can be started again."""

    def restart(self, i, timeout=30):
        """Start member i again on its data directory (etcd then ignores
        the --initial-cluster flags) and wait until it has caught up."""
        self._spawn(i, self.member_cmd(i, "existing"))
        self.killed.discard(i)
        self.wait_caught_up(i, timeout)

    def wait_caught_up(self, i, timeout):
        """Until member i answers, every member agrees on a leader and i's
        raft index has reached the leader's."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.procs[i].poll() is not None:
                break
            try:
                lead = self.leader(timeout=max(1, deadline - time.time()))
                if int(self.status(i)["raftIndex"]) >= \
                        int(self.status(lead)["raftIndex"]):
                    return
            except Exception as e:      # noqa: B902
                last = e
            time.sleep(0.1)
        raise RuntimeError("member %d did not catch up (%r):\n%s"
                           % (i, last, self.logs()))


class FailoverLoopTest(h.TopofsTestCase):
    # the watchdog: generous, the rounds bound the run themselves
    TEST_TIMEOUT = max(180.0, ROUNDS * 15.0)

    @classmethod
    def setUpClass(cls):
        # no module server: one cluster of our own for every round
        if not os.path.exists(h.topofs_bin()):
            if os.environ.get("TOPOFS_BIN"):
                raise RuntimeError("TOPOFS_BIN=%s does not exist" % h.topofs_bin())
            raise unittest.SkipTest("no topofs binary at %s" % h.topofs_bin())
        if h.BACKEND != "etcd":
            raise unittest.SkipTest("etcd only")
        cls.backend = "etcd"
        cls.cluster = LoopCluster()
        cls.addClassCleanup(cls.cluster.stop)
        cls.cluster.start()

    def setUp(self):
        super().setUp()
        self.server = self.cluster
        self.store = self.cluster.client()
        self.store.put(self.key("seed"), b"seed")   # the root exists
        extra = ["-o", "timeout=%d" % TIMEOUT]
        if os.environ.get("TOPOFS_FAILOVER_DEBUG") == "1":
            extra += ["-o", "debug"]
        self.mount(extra)

    # -- the member in use, the leader
    def current_member(self):
        """The member the mount uses: the target of its last switch."""
        switches = SWITCH.findall(self.m.full_log())
        if not switches:
            return 0
        return self.cluster.addresses.index(switches[-1][1])

    def choose_victim(self, kind, cur):
        """Place the leader for a round of this kind (KINDS) while the
        mount uses member cur; returns the member to kill."""
        if kind == "leader in use":
            self.cluster.move_leader(cur)
            return cur
        if self.cluster.leader() == cur:
            self.cluster.move_leader(random.choice(
                [i for i in self.cluster.alive() if i != cur]))
        return cur if kind == "follower in use" else self.cluster.leader()

    # -- one round of writes
    def write_one(self, rnd, i):
        """Write i of round rnd: a new file (even i) or a rewrite of the
        round's file `last` (odd i). Returns its record."""
        rel = "r%03d-w%02d" % (rnd, i) if i % 2 == 0 else "r%03d-last" % rnd
        val = ("round %d write %d\n" % (rnd, i)).encode()
        rec = {"i": i, "rel": rel, "value": val, "err": None,
               "stage": "open", "t0": time.time()}
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if i % 2 == 0 else os.O_TRUNC)
        try:
            fd = os.open(self.p(rel), flags, 0o644)
            try:
                rec["stage"] = "write"
                os.write(fd, val)
            finally:
                rec["stage"] = "close"
                os.close(fd)
        except OSError as e:
            rec["err"] = e
        rec["t1"] = time.time()
        return rec

    def write_round(self, rnd, victim):
        """WRITES writes; victim is killed just after write KILL_AFTER.
        Returns (records, time of the kill)."""
        recs, kill = [], {}

        def killer():
            time.sleep(random.uniform(0, KILL_DELAY))
            kill["t"] = time.time()
            self.cluster.kill(victim)
        th = threading.Thread(target=killer, daemon=True)
        for i in range(WRITES):
            recs.append(self.write_one(rnd, i))
            if i == KILL_AFTER - 1:
                th.start()
        th.join(30)
        self.assertIn("t", kill, "member %d was not killed" % victim)
        return recs, kill["t"]

    # -- checks
    def lost_writes(self, rnd, recs):
        """What the surviving members lack of the acknowledged writes."""
        acked = [r for r in recs if r["err"] is None]
        want = {r["rel"]: r["value"] for r in acked}     # the last write wins
        rewrites_failed = any(r["err"] and r["i"] % 2 for r in recs)
        out = []
        for i in self.cluster.alive():
            snap = {k: v[0] for k, v in h.EtcdClient(
                self.cluster.endpoints[i]).range(self.prefix + "r%03d-" % rnd).items()}
            for rel, val in sorted(want.items()):
                got = snap.get(self.key(rel))
                # a failed rewrite after the last acknowledged one may
                # have landed: only then may `last` hold a later value
                if got != val and not (rewrites_failed and rel.endswith("last")):
                    out.append("round %d member %d: %s = %r, acknowledged %r"
                               % (rnd, i, rel, got, val))
        return out

    def describe(self, rnd, rec, t_kill, victim, kind):
        return ("round %d: write %d (%s) failed at %s: %s "
                "[t0=%+.3fs t1=%+.3fs after killing member %d at %s.%03d: %s]"
                % (rnd, rec["i"], rec["rel"], rec["stage"],
                   errno.errorcode.get(rec["err"].errno, rec["err"]),
                   rec["t0"] - t_kill, rec["t1"] - t_kill, victim,
                   time.strftime("%H:%M:%S", time.localtime(t_kill)),
                   int(t_kill * 1000) % 1000, kind))

    def run_round(self, rnd, stats):
        """One round; returns the problems found (strings)."""
        kind = KINDS[rnd % len(KINDS)]
        victim = self.choose_victim(kind, self.current_member())
        recs, t_kill = self.write_round(rnd, victim)
        failed = [r for r in recs if r["err"] is not None]
        problems = [self.describe(rnd, r, t_kill, victim, kind) for r in failed]
        problems += self.lost_writes(rnd, recs)
        stats["writes"] += len(recs)
        stats["failed"] += len(failed)
        stats["slowest"] = max([stats["slowest"]] +
                               [r["t1"] - r["t0"] for r in recs])
        self.cluster.restart(victim)
        return problems

    def test_kill_one_member_every_round(self):
        stats = {"writes": 0, "failed": 0, "slowest": 0.0}
        problems = []
        t0 = time.time()
        for rnd in range(ROUNDS):
            problems += self.run_round(rnd, stats)
        sys.stderr.write(
            "\n  [failover loop] %d rounds (victims by turns: %s) in %.0f s: "
            "%d of %d writes failed; slowest write %.2f s\n"
            % (ROUNDS, ", ".join(KINDS), time.time() - t0,
               stats["failed"], stats["writes"], stats["slowest"]))
        if problems:
            log = "\n".join(line for line in self.m.full_log().splitlines()
                            if "etcd" in line)[-6000:]
            self.fail("%d of %d writes failed in %d rounds:\n  %s\n"
                      "--- the mount's etcd lines:\n%s"
                      % (stats["failed"], stats["writes"], ROUNDS,
                         "\n  ".join(problems[:40]), log))


if __name__ == "__main__":
    h.main()
