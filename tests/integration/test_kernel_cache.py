#!/usr/bin/python3
"""The kernel keeps names, attributes and listings while the store's watch
keeps them true (topofs on libfuse's low-level API): a tree walked once is
walked again without a LOOKUP or a listing request, and every change
another client makes still shows within a second, without EIO, including a
file that becomes a directory and back.

Requests are counted from the daemon's -d log (h.fuse_requests); changes are
made with the harness's independent client."""

import errno
import os
import random
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import read_file  # noqa: E402

LISTINGS = ("READDIR", "READDIRPLUS")


def ls_lr(path):
    return subprocess.run(["ls", "-lR", path], check=True,
                          stdout=subprocess.PIPE).stdout


class KernelCacheTest(h.TopofsTestCase):

    def setUp(self):
        super().setUp()
        kvs = {"a": b"alpha\n", "d/b": b"bravo\n", "d/c": b"charlie\n",
               "d/e/f": b"foxtrot\n", "d/e/g": b"golf\n"}
        kvs.update({"x/y/z%02d" % i: b"z" * i for i in range(20)})
        self.load(kvs)

    def test_warm_tree_costs_no_lookup_nor_listing(self):
        """A second `ls -lR` of an unchanged tree is served by the kernel:
        no LOOKUP, no READDIR or READDIRPLUS (only OPENDIR/RELEASEDIR,
        which the kernel always sends, and what ls -l asks of xattrs)."""
        m = self.mount(["-d"])
        cold_out = []
        cold = h.fuse_requests(m, lambda: cold_out.append(ls_lr(m.mnt)))
        warm_out = []
        warm = h.fuse_requests(m, lambda: warm_out.append(ls_lr(m.mnt)))
        sys.stderr.write("\n  [kernel cache] ls -lR cold: %r\n  [kernel cache] "
                         "ls -lR warm: %r\n" % (dict(cold), dict(warm)))
        self.assertEqual(warm_out, cold_out)
        self.assertGreaterEqual(cold["LOOKUP"] + cold["READDIRPLUS"], 1)
        self.assertEqual(warm["LOOKUP"], 0, dict(warm))
        for op in LISTINGS:
            self.assertEqual(warm[op], 0, dict(warm))
        # and a third time, after reading every file: still nothing
        for rel in ("a", "d/b", "d/e/f", "x/y/z05"):
            read_file(self.p(rel))
        again = h.fuse_requests(m, lambda: ls_lr(m.mnt))
        self.assertEqual(again["LOOKUP"], 0, dict(again))
        for op in LISTINGS:
            self.assertEqual(again[op], 0, dict(again))

    def test_warm_tar_costs_no_lookup_nor_listing(self):
        m = self.mount(["-d"])
        out = os.path.join(h.make_tempdir("topofs-tar-"), "t.tar")
        # (not to /dev/null: GNU tar then reads no file)

        def tar():
            subprocess.run(["tar", "-C", m.mnt, "-cf", out, "."], check=True)
        cold = h.fuse_requests(m, tar)
        warm = h.fuse_requests(m, tar)
        sys.stderr.write("\n  [kernel cache] tar cold: %r\n  [kernel cache] "
                         "tar warm: %r\n" % (dict(cold), dict(warm)))
        self.assertEqual(warm["LOOKUP"], 0, dict(warm))
        for op in LISTINGS:
            self.assertEqual(warm[op], 0, dict(warm))

    def test_long_listing_brings_every_attribute(self):
        """A directory whose listing takes several replies (1,000 names,
        like a cell's tablets/) gets attributes with every one: a cold
        `tar` of it sends no LOOKUP. (The kernel's default, READDIRPLUS for
        the first reply only and for those after a child was looked up,
        made tar send about 800 LOOKUPs here.)"""
        self.load({"t/%04d/Tablet" % i: b"v%d\n" % i for i in range(1000)})
        m = self.mount(["-d"])
        out = os.path.join(h.make_tempdir("topofs-tar-"), "t.tar")

        def tar():
            subprocess.run(["tar", "-C", m.mnt, "-cf", out, "t"], check=True)
        cold = h.fuse_requests(m, tar)
        sys.stderr.write("\n  [kernel cache] cold tar of 1000 names: %r\n"
                         % dict(cold))
        self.assertEqual(cold["READ"], 1000, dict(cold))
        self.assertEqual(cold["READDIR"], 0, dict(cold))
        self.assertLessEqual(cold["LOOKUP"], 1, dict(cold))   # "t" itself

    def test_pinned_mount_opens_without_asking(self):
        """A pinned mount never changes, so the kernel opens its files and
        directories without asking (the first OPEN and OPENDIR are answered
        ENOSYS) and keeps their pages and listings: a warm tar sends no
        request at all, and reads without an open handle give the store's
        bytes."""
        if self.is_zk:
            self.skipTest("pinned revisions are etcd's")
        m = self.mount(["-d", "-o", "snapshot"])
        tmp = h.make_tempdir("topofs-tar-")
        out = os.path.join(tmp, "t.tar")

        def tar():
            subprocess.run(["tar", "-C", m.mnt, "-cf", out, "."], check=True)
        cold = h.fuse_requests(m, tar)
        warm = h.fuse_requests(m, tar)
        sys.stderr.write("\n  [kernel cache] -o snapshot tar cold: %r\n  "
                         "[kernel cache] -o snapshot tar warm: %r\n"
                         % (dict(cold), dict(warm)))
        for op in ("OPEN", "OPENDIR", "FLUSH"):
            self.assertLessEqual(cold[op], 1, dict(cold))   # the ENOSYS
        for op in ("RELEASE", "RELEASEDIR"):
            self.assertEqual(cold[op], 0, dict(cold))
        self.assertEqual(sum(warm.values()), 0, dict(warm))
        ex = os.path.join(tmp, "x")
        os.mkdir(ex)
        subprocess.run(["tar", "-C", ex, "-xf", out], check=True)
        want = self.expected_files()
        files, _ = h.walk_files(ex)
        self.assertEqual(sorted(files), sorted(want))
        for rel, value in want.items():
            self.assertEqual(read_file(os.path.join(ex, rel)), value, rel)

    # -- other clients' changes

    def test_open_file_keeps_its_version_across_a_change(self):
        """A file opened before another client changed it reads, whole, the
        value it had at open, also after a stat told the kernel the new
        size (as a file replaced by rename keeps its old inode): it is read
        with direct I/O from its own copy, never through pages bounded by
        another value's size. A new open reads the new value."""
        self.mount()
        old = b"alpha\n"
        for new in (b"a much longer value than before\n", b"a\n", old):
            fd = os.open(self.p("a"), os.O_RDONLY)
            try:
                self.assertEqual(os.pread(fd, 3, 0), old[:3])
                self.store.put(self.key("a"), new)
                self.assertShows("a's new value",
                                 lambda: read_file(self.p("a")) == new)
                self.assertEqual(os.stat(self.p("a")).st_size, len(new))
                self.assertEqual(os.pread(fd, 4096, 0), old)
            finally:
                os.close(fd)
            self.assertEqual(read_file(self.p("a")), new)
            self.assertEqual(self.store.get(self.key("a")), new)
            old = new

    def test_readers_see_whole_values_while_another_client_writes(self):
        """Another client rewrites files with values of other lengths as
        fast as it can while readers cat them: every read is one whole
        value (never one cut to another value's size, nor padded), and
        once the store is quiet every file reads as the store holds it.
        (On ZooKeeper a fresh mount's listing that a notice raced was
        listed again, three times, then not taken: the files were ENOENT
        while the other client kept writing.)"""
        self.mount()
        rels = ["a", "d/b", "d/c", "d/e/f"]
        rnd = random.Random(99)
        stop, bad = threading.Event(), []
        whole = re.compile(rb"\Aw\d+:(x*)\n\Z")

        def reader(i):
            while not stop.is_set():
                for rel in rels:
                    try:
                        v = read_file(self.p(rel))
                    except OSError as e:
                        bad.append((rel, e))
                        continue
                    if v in (b"alpha\n", b"bravo\n", b"charlie\n",
                             b"foxtrot\n"):
                        continue
                    m = whole.match(v)
                    if not m or len(v) != int(v[1:v.index(b":")]):
                        bad.append((rel, v))
        threads = [threading.Thread(target=reader, args=(i,))
                   for i in range(4)]
        for t in threads:
            t.start()
        n = 0
        try:
            deadline = time.time() + 6
            while time.time() < deadline:
                pad = rnd.choice((0, 1, 5, 40, 300, 3000))
                # "w<total length>:" then x's: a cut or padded read shows
                body = b":" + b"x" * pad + b"\n"
                length = len(body) + 1
                while len(b"w%d" % length) + len(body) != length:
                    length += 1
                self.store.put(self.key(rnd.choice(rels)),
                               b"w%d" % length + body)
                n += 1
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(bad[:3], [], "%d torn or failed reads of %d "
                         "changes" % (len(bad), n))
        time.sleep(1.5)
        for rel in rels:
            want = self.store.get(self.key(rel))
            self.assertEqual(read_file(self.p(rel)), want, rel)
            self.assertEqual(os.stat(self.p(rel)).st_size, len(want), rel)
        sys.stderr.write("\n  [kernel cache] %d rewrites by another client, "
                         "every read whole\n" % n)

    def test_fstat_of_an_open_file_gives_the_size_it_reads(self):
        """Another client rewrites a file with values of other lengths
        while readers open it, fstat the descriptor, read it to its end
        and fstat again (what tar does): the size the first fstat gives
        is the length read, the value one that was written, and the second
        fstat gives that size too or the size of a value written since
        (tar then says the file changed). (The kernel kept the old value's
        attributes until the notifier thread invalidated them, while the
        open took the new value: tar read the new value cut to the old
        one's size, and its second fstat saw the same old size.)"""
        self.mount()
        key, path = self.key("a"), self.p("a")
        values = [b"v%d-" % i + b"x" * (500 + 700 * (i % 3))
                  for i in range(3)]
        self.store.put(key, values[0])
        self.assertShows("the first value",
                         lambda: read_file(path) == values[0])
        sizes = [len(v) for v in values]
        stop, bad, reads = threading.Event(), [], [0]

        def reader():
            while not stop.is_set() and len(bad) < 3:
                fd = os.open(path, os.O_RDONLY)
                try:
                    size = os.fstat(fd).st_size
                    got = os.read(fd, 4096)
                    after = os.fstat(fd).st_size
                finally:
                    os.close(fd)
                reads[0] += 1
                if (size != len(got) or got not in values
                        or after not in sizes):
                    bad.append((size, after, len(got), got[:4]))
        threads = [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        n = 0
        try:
            deadline = time.time() + 6
            while time.time() < deadline and not bad:
                n += 1
                self.store.put(key, values[n % 3])
                time.sleep(0.002)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(bad, [], "(fstat size, fstat after, bytes read, "
                         "value) of %d reads, %d changes" % (reads[0], n))
        sys.stderr.write("\n  [kernel cache] %d reads of %d changes: each "
                         "fstat the length read\n" % (reads[0], n))

    def assertShows(self, what, check, within=1.0):
        """check() becomes true within `within` seconds of now; an EIO on
        the way fails (a name of another type must be looked up again)."""
        start = time.time()
        last = None
        while True:
            try:
                if check():
                    return time.time() - start
            except OSError as e:
                if e.errno == errno.EIO:
                    self.fail("%s: EIO after %.3f s" % (what, time.time() - start))
                last = e
            if time.time() - start > within:
                self.fail("%s: not shown within %.1f s (last error: %r)"
                          % (what, within, last))
            time.sleep(0.01)

    def warm(self):
        """Fill the kernel's caches: every name, attribute and listing."""
        ls_lr(self.m.mnt)
        for rel in ("a", "d/b", "d/e/f"):
            read_file(self.p(rel))
        ls_lr(self.m.mnt)

    def test_other_clients_changes_show_within_a_second(self):
        self.mount()
        self.warm()
        root, d = self.p(), self.p("d")
        took = {}
        # ZooKeeper's child watches are one-shot: after one fired, topofs
        # trusts the directory's listing for cache_ttl (1 s) from when it
        # was read, then confirms it (cache.c, Freshness): a new or last
        # child shows within about a second there, not at once.
        names_within = 1.0 if self.is_etcd else 2.0

        self.store.delete(self.key("d/b"))
        took["delete"] = self.assertShows(
            "deleted d/b",
            lambda: "b" not in os.listdir(d) and not os.path.exists(self.p("d/b")))

        self.store.put(self.key("d/new"), b"new\n")
        took["create"] = self.assertShows(
            "created d/new",
            lambda: "new" in os.listdir(d) and read_file(self.p("d/new")) == b"new\n",
            within=names_within)

        self.store.put(self.key("a"), b"alpha 2\n")
        took["change"] = self.assertShows(
            "changed a", lambda: read_file(self.p("a")) == b"alpha 2\n"
            and os.stat(self.p("a")).st_size == 8)

        # a file that becomes a directory (etcd: a key that becomes the
        # prefix of another; ZooKeeper: a znode that gains a child), its
        # value now its .topofs-data
        fd = os.open(self.p("a"), os.O_RDONLY)
        self.addCleanup(os.close, fd)
        self.store.put(self.key("a/kid"), b"kid\n")
        took["file->dir"] = self.assertShows(
            "a became a directory",
            lambda: os.path.isdir(self.p("a"))
            and sorted(os.listdir(self.p("a"))) == [".topofs-data", "kid"]
            and read_file(self.p("a/kid")) == b"kid\n"
            and read_file(self.p("a/.topofs-data")) == b"alpha 2\n")
        self.assertTrue(os.path.isdir(self.p("a")))
        # the file opened before is still readable (not a broken inode)
        self.assertEqual(os.pread(fd, 100, 0), b"alpha 2\n")

        # ... and back
        self.store.delete(self.key("a/kid"))
        took["dir->file"] = self.assertShows(
            "a became a file again",
            lambda: os.path.isfile(self.p("a"))
            and read_file(self.p("a")) == b"alpha 2\n"
            and "a" in os.listdir(root))

        # a directory whose last node goes (etcd: the prefix is gone;
        # ZooKeeper: the parent znode stays, an empty file)
        for rel in ("x/y/z%02d" % i for i in range(20)):
            self.store.delete(self.key(rel))
        if self.is_zk:
            took["dir emptied"] = self.assertShows(
                "x/y became an empty file",
                lambda: os.path.isfile(self.p("x/y"))
                and os.stat(self.p("x/y")).st_size == 0, within=names_within)
        else:
            took["dir emptied"] = self.assertShows(
                "x is gone",
                lambda: "x" not in os.listdir(root)
                and not os.path.exists(self.p("x")), within=names_within)
        sys.stderr.write("\n  [kernel cache] shown after (s): %s\n"
                         % ", ".join("%s %.3f" % kv for kv in took.items()))
        # and the mount agrees with the store at the end
        want = self.expected_files()
        files, _ = h.walk_files(self.p())
        self.assertEqual(sorted(files), sorted(want))
        for rel, value in want.items():
            self.assertEqual(read_file(self.p(rel)), value, rel)

    def test_converges_after_a_storm_of_changes(self):
        """Another client changes names, values and types as fast as it
        can while six local readers walk, stat and read the tree: no EIO,
        and once the store is quiet the mount shows exactly the store (a
        reply that raced an invalidation must not leave a stale name, type,
        listing or value in the kernel for its hour, nor a notice or a
        get() that raced another one a stale node in topofs's cache)."""
        self.mount()
        rnd = random.Random(1234)
        names = ["s%d/%s%d" % (i % 3, "k", i) for i in range(24)]
        errors, stop = [], threading.Event()

        def reader():
            while not stop.is_set():
                try:
                    for dp, dn, fn in os.walk(self.p()):
                        for f in fn:
                            try:
                                read_file(os.path.join(dp, f))
                            except OSError as e:
                                if e.errno == errno.EIO:
                                    errors.append((os.path.join(dp, f), e))
                except OSError as e:
                    if e.errno == errno.EIO:
                        errors.append(("walk", e))
        def delete(rel):
            try:
                self.store.delete(self.key(rel))
            except Exception as e:   # ZooKeeper: a node with children
                if type(e).__name__ not in ("NotEmptyError", "NoNodeError"):
                    raise
        readers = [threading.Thread(target=reader) for _ in range(6)]
        for t in readers:
            t.start()
        try:
            deadline = time.time() + 10
            n = 0
            while time.time() < deadline:
                rel = rnd.choice(names)
                op = rnd.random()
                if op < 0.35:
                    self.store.put(self.key(rel), b"v%d\n" % n)
                elif op < 0.6:
                    delete(rel)
                elif op < 0.8:   # a file that gains a child: a directory
                    self.store.put(self.key(rel + "/c"), b"c%d\n" % n)
                else:            # ... that loses it
                    delete(rel + "/c")
                n += 1
        finally:
            stop.set()
            for t in readers:
                t.join()
        self.assertEqual(errors, [])
        time.sleep(2.5)   # quiet: notices, re-checks (ZooKeeper) and
        # the second invalidation pass are done
        want = self.expected_files()
        files, _ = h.walk_files(self.p())
        self.assertEqual(sorted(files), sorted(want), "after %d changes; %s"
                         % (n, self.lookups(set(files) ^ set(want))))
        for rel, value in want.items():
            got = read_file(self.p(rel))
            if got != value:
                self.fail(self.stale_value(rel, got, value))
            self.assertEqual(os.stat(self.p(rel)).st_size, len(value), rel)
        sys.stderr.write("\n  [kernel cache] %d changes by another client: "
                         "the mount converged\n" % n)


    def stale_value(self, rel, got, want):
        """Where a stale value is held: topofs's extended attribute is
        asked of topofs at each call (the kernel caches no xattrs), so a
        version there that is the store's points at the kernel's pages."""
        key = rel[:-len("/.topofs-data")] if rel.endswith(
            "/.topofs-data") else rel
        try:
            xv = os.getxattr(self.p(rel), "user.topo.version").decode()
        except OSError as e:
            xv = errno.errorcode[e.errno]
        meta = self.node_meta(key)
        time.sleep(1)
        return ("%s: read %r, store has %r (version %s); topofs's "
                "user.topo.version %s; read again 1 s later: %r"
                % (rel, got, want, meta.version if meta else None, xv,
                   read_file(self.p(rel))))

    def lookups(self, rels):
        """What a lookup of each path finds: the kernel keeps no absent
        names, so a name missing from a listing that a lookup finds points
        at the kernel's caches, one it does not find at topofs's."""
        out = []
        for rel in sorted(rels):
            try:
                st = os.lstat(self.p(rel))
                out.append("%s: mode %o" % (rel, st.st_mode))
            except OSError as e:
                out.append("%s: %s" % (rel, errno.errorcode[e.errno]))
        return "lookups: " + ", ".join(out)


if __name__ == "__main__":
    h.main()
