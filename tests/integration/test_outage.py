#!/usr/bin/python3
"""Store outage (SPEC 6): with the store (etcd or ZooKeeper) unreachable
every operation fails with EIO within -o timeout, nothing hangs, and the
mount recovers by itself when the store comes back.  Uses its own server (it
gets stopped and restarted on the same port with the same data; a ZooKeeper
session that has not expired survives that)."""

import errno
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import read_file, write_file  # noqa: E402

TIMEOUT = 3


class OutageTest(h.TopofsTestCase):

    def setUp(self):
        super().setUp()
        # a private server: this test stops it
        self.server = (h.ZkServer() if self.is_zk else h.EtcdServer()).start()
        self.addCleanup(self.server.stop)
        self.store = self.server.client()
        if hasattr(self.store, "close"):
            self.addCleanup(self.store.close)
        self.load({"a": b"alpha", "d/b": b"bravo"})
        self.mount(["-o", "timeout=%d" % TIMEOUT])

    def timed(self, func, *args):
        """(exception or None, seconds) of func(*args); fails if it hangs
        with the store down."""
        return h.timed(func, *args, limit=TIMEOUT * 4 + 10)

    def test_outage_eio_and_recovery(self):
        self.assertEqual(read_file(self.p("a")), b"alpha")
        self.server.pause()
        t_down = time.time()
        # uncached operations and writes must fail with EIO in bounded time
        err, t = self.timed(write_file, self.p("d/new"), b"x")
        self.assertIsInstance(err, OSError, "write with the store down did not fail")
        self.assertEqual(err.errno, errno.EIO, err)
        self.assertLess(t, TIMEOUT * 3 + 2)
        err, t = self.timed(os.listdir, self.p("nosuchdir-never-seen"))
        self.assertIsInstance(err, OSError)
        self.assertIn(err.errno, (errno.EIO, errno.ENOENT))
        err, t = self.timed(os.unlink, self.p("d/b"))
        self.assertIsInstance(err, OSError, "unlink with the store down did not fail")
        self.assertEqual(err.errno, errno.EIO)
        self.assertLess(time.time() - t_down, 60)
        # back again
        self.server.resume()
        t_up = time.time()
        if self.is_zk:
            # our own kazoo session may have expired during the outage
            self.store.close()
            self.store = self.server.client()
            self.addCleanup(self.store.close)
        deadline = time.time() + 30
        last = None
        while time.time() < deadline:
            try:
                write_file(self.p("d/after"), b"recovered")
                break
            except OSError as e:
                last = e
                time.sleep(0.5)
        else:
            self.fail_with_log("mount did not recover: %s" % last)
        sys.stderr.write("\n  [outage] down %.1fs; a write succeeded %.1fs after the "
                         "store came back\n" % (t_up - t_down, time.time() - t_up))
        self.assertEqual(self.store.get(self.key("d/after")), b"recovered")
        self.assertEqual(self.store.get(self.key("d/b")), b"bravo")
        self.assertIsNone(self.store.get(self.key("d/new")))
        self.store.put(self.key("a"), b"changed after outage")
        deadline = time.time() + 5
        while time.time() < deadline and read_file(self.p("a")) != b"changed after outage":
            time.sleep(0.2)
        self.assertEqual(read_file(self.p("a")), b"changed after outage",
                         "watch not re-established after the outage")


if __name__ == "__main__":
    h.main()
