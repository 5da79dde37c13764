#!/usr/bin/python3
"""etcd: what another client does while the mount writes (issue 21).

- test_dir_rename_takes_keys_made_meanwhile: writers of another client keep
  creating keys in a directory while the mount renames it.  Every round the
  rename either fails (EIO, or EXDEV once it grew past one transaction) and
  nothing moved, or succeeds and moved every key the directory held at the
  rename's revision: none is left at the old path (checked with the
  independent client, key by key, against the revision of each writer's
  put).  A directory made through the mount in it (memory only) ends up
  where the keys are, and the mount lists what the store holds.
- test_quota_full_is_enospc: a private etcd with a tiny
  --quota-backend-bytes, filled by the independent client until etcd
  raises its NOSPACE alarm.  A write through the mount then fails at fsync
  and at close with ENOSPC ("No space left on device"), one log line names
  the key, and the store is unchanged."""

import errno
import os
import random
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

BACKENDS = ("etcd",)

ROUNDS = 12        # renames under fire
FILES = 20         # keys in the directory renamed (42 ops + a guard)
VALUE = 4096       # bytes of each: a listing that takes a moment to read
WRITERS = 2        # threads of the other client creating keys meanwhile
PAUSE = 0.05       # seconds a writer sleeps after half of its puts
QUOTA = 1 << 20    # --quota-backend-bytes of the quota test's etcd


class Writer(threading.Thread):
    """Another client creating keys prefix + "w<tag>-<n>" until stopped;
    made: {key: revision of its put}."""

    def __init__(self, store, prefix, tag):
        super().__init__(daemon=True)
        self.store, self.prefix, self.tag = store, prefix, tag
        self.made = {}
        self.error = None
        self.stop = threading.Event()

    def run(self):
        n = 0
        try:
            while not self.stop.is_set():
                key = "%sw%s-%d" % (self.prefix, self.tag, n)
                self.made[key] = self.store.put(key, b"w")
                n += 1
                # now and then a pause, so that some renames find a
                # quiet moment and some do not
                time.sleep(random.choice((0, PAUSE)))
        except Exception as e:  # reported by the test
            self.error = e


class RaceTest(h.TopofsTestCase):

    def rename_under_fire(self, r):
        """One round: D<r> (FILES keys and a subdirectory) renamed to E<r>
        through the mount while WRITERS threads create keys in it.
        Returns (D<r>'s keys as loaded, the rename's error or None,
        {key: revision} the writers made)."""
        d, e = "D%d" % r, "E%d" % r
        kvs = self.dirs[r]
        self.assertEqual(len(os.listdir(self.p(d))), FILES + 1)
        os.listdir(self.p(d + "/sub"))
        os.mkdir(self.p(d + "/made"))  # in the mount's memory only
        writers = [Writer(h.EtcdClient(self.server.endpoint),
                          self.key(d) + "/", "%d" % i)
                   for i in range(WRITERS)]
        for w in writers:
            w.start()
        while not all(w.made for w in writers):
            time.sleep(0.001)  # both are writing
        err = None
        try:
            os.rename(self.p(d), self.p(e))
        except OSError as ex:
            err = ex
        time.sleep(0.01)
        for w in writers:
            w.stop.set()
        for w in writers:
            w.join(10)
            self.assertIsNone(w.error, "writer failed")
        made = {}
        for w in writers:
            made.update(w.made)
        return kvs, err, made

    def check_round(self, r, kvs, err, made):
        d, e = "D%d" % r, "E%d" % r
        old = self.store.range(self.key(d) + "/")
        new = self.store.range(self.key(e) + "/")
        if err is not None:
            # failed: nothing moved, nothing lost. EIO: changed twice
            # while being renamed; EXDEV: grew past one transaction (mv
            # then copies)
            self.assertIn(err.errno, (errno.EIO, errno.EXDEV),
                          "round %d: %r" % (r, err))
            self.assertEqual(new, {}, "round %d: failed rename moved keys" % r)
            want = set(self.key(k) for k in kvs) | set(made)
            self.assertEqual(set(old), want, "round %d" % r)
            for k, v in kvs.items():
                self.assertEqual(old[self.key(k)][0], v, k)
            # and the mount shows it so: the directory made through it
            # stays where it was
            self.assertFalse(os.path.exists(self.p(e)), "round %d" % r)
            os.rmdir(self.p(d + "/made"))
            if err.errno == errno.EIO:  # a conflict: logged, naming it
                self.assertIn("%s: not renamed: changed by another client"
                              % d, self.m.full_log())
            return "failed"
        # succeeded: one transaction at revision rev moved every key the
        # directory held then; only keys made after it are at the old path
        revs = {v[1] for v in new.values()}
        self.assertEqual(len(revs), 1, "round %d: moved at %s" % (r, revs))
        rev = revs.pop()
        before = {k for k, kr in made.items() if kr < rev}
        after = {k for k, kr in made.items() if kr > rev}
        left = sorted(k for k in before if k in old)
        self.assertEqual(left, [], "round %d: keys made before the rename "
                         "(at revision %d) left at the old path" % (r, rev))
        moved = set(self.key(k) for k in kvs) | before
        prefix_d, prefix_e = self.key(d) + "/", self.key(e) + "/"
        self.assertEqual(set(new), {prefix_e + k[len(prefix_d):] for k in moved},
                         "round %d" % r)
        self.assertEqual(set(old), after, "round %d" % r)
        for k, v in kvs.items():
            self.assertEqual(new[prefix_e + k[len(d) + 1:]][0], v, k)
        self.assertFalse(os.path.exists(self.p(d + "/made")), "round %d" % r)
        os.rmdir(self.p(e + "/made"))
        return "moved"

    def test_dir_rename_takes_keys_made_meanwhile(self):
        self.dirs = []
        for r in range(ROUNDS):
            kvs = {"D%d/f%02d" % (r, i): os.urandom(VALUE)
                   for i in range(FILES)}
            kvs["D%d/sub/g" % r] = b"g"
            self.dirs.append(kvs)
            self.load(kvs)
        self.mount()
        outcomes = []
        for r in range(ROUNDS):
            kvs, err, made = self.rename_under_fire(r)
            outcomes.append(self.check_round(r, kvs, err, made))
        sys.stderr.write("renames: %s\n" % outcomes)
        # the mount agrees with the store (within a second: SPEC 6)
        deadline = time.time() + 2
        while True:
            diff = self.mount_differs()
            if not diff or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(diff, [])

    def mount_differs(self):
        """[(directory, what the mount lists, what the store holds)] for
        every D<r> and E<r> on which they disagree."""
        out = []
        for r in range(ROUNDS):
            for name in ("D%d" % r, "E%d" % r):
                below = self.key(name) + "/"
                want = {k[len(below):].split("/")[0]
                        for k in self.store.keys(below)}
                try:
                    got = set(os.listdir(self.p(name)))
                except FileNotFoundError:
                    got = None
                if got != (want or None):
                    out.append((name, got, want))
        return out

    def test_quota_full_is_enospc(self):
        # a private etcd with a tiny quota: the module's server stays usable
        self.server = h.EtcdServer(
            extra_args=("--quota-backend-bytes=%d" % QUOTA,)).start()
        self.addCleanup(self.server.stop)
        self.store = self.server.client()
        self.load({"a": "alpha\n", "dir/b": "bravo"})
        self.mount()
        self.assertEqual(h.read_file(self.p("a")), b"alpha\n")
        # fill it from outside the mounted root until etcd says no
        blob = os.urandom(64 << 10)
        for i in range(4 * QUOTA // len(blob)):
            try:
                self.store.put("/fill/%d" % i, blob)
            except h.EtcdError as e:
                self.assertIn("database space exceeded", str(e))
                break
        else:
            self.fail("etcd took %d bytes over its quota" % (4 * QUOTA))
        before = self.snapshot()
        logged = len(self.m.full_log().splitlines())

        fd = os.open(self.p("a"), os.O_WRONLY | os.O_TRUNC)
        os.write(fd, b"more than before\n")
        with self.assertRaises(OSError) as cm:
            os.fsync(fd)
        self.assertEqual(cm.exception.errno, errno.ENOSPC, cm.exception)
        with self.assertRaises(OSError) as cm:
            os.close(fd)
        self.assertEqual(cm.exception.errno, errno.ENOSPC, cm.exception)
        # a new file: the same at close
        fd = os.open(self.p("dir/new"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        os.write(fd, b"x")
        with self.assertRaises(OSError) as cm:
            os.close(fd)
        self.assertEqual(cm.exception.errno, errno.ENOSPC, cm.exception)

        self.assertUnchanged(before, "after ENOSPC")
        lines = self.m.full_log().splitlines()[logged:]
        # fsync and close of a, close of dir/new: one line each, naming
        # the key and the cause
        naming_a = [ln for ln in lines if re.search(r"(^|[\s/])a: ", ln)]
        naming_new = [ln for ln in lines if "dir/new" in ln]
        self.assertEqual(len(naming_a), 2, "\n".join(lines))
        self.assertEqual(len(naming_new), 1, "\n".join(lines))
        for ln in naming_a + naming_new:
            self.assertIn("No space left on device", ln)


if __name__ == "__main__":
    h.main()
