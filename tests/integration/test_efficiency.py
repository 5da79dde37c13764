#!/usr/bin/python3
"""SPEC 6 / issue 2: listings and values come in bulk (no round trip per
file for ls -l, find, du, tar, cat of a whole directory), and the etcd
connection is reused (no new TCP connection per request).  Measured on the
server side (etcd's /metrics) and in /proc/net/tcp, with no other client
talking to etcd during the measurement."""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import read_file  # noqa: E402

NFILES = 400


BACKENDS = ("etcd",)   # read by CMakeLists.txt: ZooKeeper has no request metrics to count


class EfficiencyTest(h.TopofsTestCase):

    def setUp(self):
        super().setUp()
        if h.BACKEND != "etcd":
            self.skipTest("etcd only")
        # a private server so no other test's traffic is counted
        self.server = h.EtcdServer().start()
        self.addCleanup(self.server.stop)
        self.store = self.server.client()
        kvs = {"flat/f%04d" % i: b"value %d" % i for i in range(NFILES)}
        for d in range(10):
            for i in range(20):
                kvs["tree/d%d/f%d" % (d, i)] = b"x" * (i + d)
        self.kvs = self.load(kvs)
        self.mount()

    def measure(self, func):
        """(requests by method, new client-side TCP sockets) during func."""
        port = self.server.port
        time.sleep(0.3)
        c0 = self.store.request_counts()
        s0 = h.tcp_client_sockets(port)
        func()
        s1 = h.tcp_client_sockets(port)
        c1 = self.store.request_counts()
        # the request_counts() call itself is one HTTP request, not grpc
        delta = {k: c1.get(k, 0) - c0.get(k, 0) for k in c1
                 if c1.get(k, 0) != c0.get(k, 0)}
        new_ports = {p for p, _ in s1} - {p for p, _ in s0}
        return delta, new_ports

    def test_bulk_listing_and_reads(self):
        def work():
            subprocess.run(["ls", "-l", self.p("flat")], check=True, stdout=subprocess.DEVNULL)
            subprocess.run(["find", self.p(), "-type", "f"], check=True, stdout=subprocess.DEVNULL)
            subprocess.run(["du", "-s", self.p()], check=True, stdout=subprocess.DEVNULL)
            for i in range(NFILES):
                read_file(self.p("flat/f%04d" % i))
            subprocess.run(["tar", "-C", self.p(), "-cf", "/dev/null", "tree"], check=True)
        delta, new_ports = self.measure(work)
        nfiles = len(self.kvs)
        ranges = delta.get("Range", 0)
        sys.stderr.write("\n  [efficiency] %d files: grpc requests %r, new TCP connections %d\n"
                         % (nfiles, delta, len(new_ports)))
        self.assertLess(ranges, nfiles // 10,
                        "%d Range requests for %d files: one round trip per file?"
                        % (ranges, nfiles))
        self.assertLessEqual(len(new_ports), 8,
                             "%d new TCP connections to etcd: connections not reused"
                             % len(new_ports))
        self.assertEqual(delta.get("Put", 0) + delta.get("Txn", 0)
                         + delta.get("DeleteRange", 0), 0, "reading wrote")

    def test_readdirplus_spares_lookups(self):
        """ls -l of a directory is its listing (READDIRPLUS) and nothing
        per entry: each entry comes back with its node and attributes, so
        the kernel sends no LOOKUP or GETATTR per name."""
        m = self.mount(["-d", "-o", "cache_ttl=60000"])
        flat = os.path.join(m.mnt, "flat")
        os.listdir(m.mnt)   # the root's listing: "flat" looked up

        def ls_l():
            out = subprocess.run(["ls", "-l", flat], check=True,
                                 stdout=subprocess.PIPE).stdout
            self.assertEqual(out.count(b"\n"), NFILES + 1)   # "total" line
        ops = h.fuse_requests(m, ls_l)
        sys.stderr.write("\n  [efficiency] ls -l of %d files: FUSE %r\n"
                         % (NFILES, dict(ops)))
        self.assertGreaterEqual(ops["READDIRPLUS"], 1)
        self.assertLessEqual(ops["LOOKUP"], 2, "a LOOKUP per entry")
        self.assertLessEqual(ops["GETATTR"], 2, "a GETATTR per entry")

    def test_writes_reuse_connection(self):
        def work():
            for i in range(50):
                with open(self.p("flat/f%04d" % i), "wb") as f:
                    f.write(b"new %d" % i)
        delta, new_ports = self.measure(work)
        sys.stderr.write("\n  [efficiency] 50 writes: grpc requests %r, new TCP connections %d\n"
                         % (delta, len(new_ports)))
        self.assertLessEqual(len(new_ports), 8,
                             "%d new TCP connections for 50 writes" % len(new_ports))
        self.assertLessEqual(delta.get("Txn", 0) + delta.get("Put", 0), 50 * 2)
        for i in range(50):
            self.assertEqual(self.store.get(self.key("flat/f%04d" % i)), b"new %d" % i)


if __name__ == "__main__":
    h.main()
