#!/usr/bin/python3
"""How soon another client's create shows in a listing the mount has
cached: 50 creates, each polled with `os.listdir` until it shows; p50 and
p99 printed.  ZooKeeper's child watch is one-shot: after one fired the
listing used to be trusted for cache_ttl (p99 1,003 ms against etcd's
23 ms); a child notice while none of the mount's own writes is in flight
is now checked at once.  The bound asserted (400 ms) only separates that
behaviour from a slow machine; the figures are the measurement."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CREATES = 50
BOUND_MS = 400


def percentile(sorted_ms, q):
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


class ListingLatencyTest(h.TopofsTestCase):

    def test_other_clients_create_shows_soon(self):
        self.load({"dir/first": b"1"})
        m = self.mount()
        d = os.path.join(m.mnt, "dir")
        self.assertEqual(os.listdir(d), ["first"])
        waits = []
        for i in range(CREATES):
            name = "n%02d" % i
            self.store.put(self.key("dir/" + name), b"v")
            t0 = time.monotonic()
            while name not in os.listdir(d):
                if time.monotonic() - t0 > 5:
                    self.fail("%s not listed after 5 s" % name)
                time.sleep(0.002)
            waits.append((time.monotonic() - t0) * 1000)
            time.sleep(0.02)  # the next create comes alone
        waits.sort()
        p50, p99 = percentile(waits, 0.5), percentile(waits, 0.99)
        sys.stderr.write("\n%s: another client's create listed after "
                         "p50 %.1f ms, p99 %.1f ms (%d creates)\n"
                         % (self.backend, p50, p99, CREATES))
        self.assertLess(p99, BOUND_MS)
        self.assertEqual(sorted(os.listdir(d)),
                         ["first"] + ["n%02d" % i for i in range(CREATES)])


if __name__ == "__main__":
    h.main()
