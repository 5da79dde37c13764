#!/usr/bin/python3
"""What a failed compare-and-set costs afterwards: the next open of the key
reads that one key again (one get), not its whole directory with every
sibling's value.  Measured at the server, through counters the independent
side can read: etcd's bytes sent to clients (its /metrics), ZooKeeper's
packets sent (the `srvr` four-letter command)."""

import errno
import os
import re
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

SIBLINGS = 40
SIBLING_BYTES = 20000  # 800 kB of siblings beside the key


class ConflictCostTest(h.TopofsTestCase):

    def server_sent(self):
        """etcd: bytes sent to clients; ZooKeeper: packets sent."""
        if self.is_zk:
            text = self.store.zk.command(b"srvr")
            return int(re.search(r"^Sent: (\d+)$", text, re.M).group(1))
        with urllib.request.urlopen(self.store.endpoint + "/metrics") as r:
            text = r.read().decode()
        m = re.search(r"^etcd_network_client_grpc_sent_bytes_total (\S+)$",
                      text, re.M)
        return int(float(m.group(1)))

    def test_open_after_conflict_reads_one_key(self):
        kvs = {"d/s%02d" % i: bytes([65 + i % 26]) * SIBLING_BYTES
               for i in range(SIBLINGS)}
        kvs["d/k"] = b"1"
        self.load(kvs)
        m = self.mount()
        path = os.path.join(m.mnt, "d", "k")
        self.assertEqual(len(os.listdir(os.path.join(m.mnt, "d"))),
                         SIBLINGS + 1)
        fd = os.open(path, os.O_RDWR)
        try:
            os.write(fd, b"2")
            self.store.put(self.key("d/k"), b"9")
        finally:
            with self.assertRaises(OSError) as cm:
                os.close(fd)
        self.assertEqual(cm.exception.errno, errno.EIO)
        time.sleep(0.3)  # the other client's notice, if any, has come
        before = self.server_sent()
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"9")
        spent = self.server_sent() - before
        # a re-listing with values sends every sibling: 800 kB on etcd,
        # one packet or more per sibling on ZooKeeper
        limit = 8 if self.is_zk else SIBLING_BYTES
        self.assertLess(spent, limit,
                        "the open after a conflict read %d %s from the "
                        "server" % (spent,
                                    "packets" if self.is_zk else "bytes"))
        self.assertEqual(self.store.get(self.key("d/k")), b"9")


if __name__ == "__main__":
    h.main()
