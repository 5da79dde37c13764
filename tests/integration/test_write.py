#!/usr/bin/python3
"""Writing through the mount, each effect checked with the independent
client: one store write per changed close, compare-and-set, O_EXCL, EFBIG,
append/truncate/pwrite, .topofs-data, leased keys, no-op metadata calls."""

import errno
import os
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import read_file, write_file  # noqa: E402


class WriteTest(h.TopofsTestCase):

    def setUp(self):
        super().setUp()
        self.base = {"a": b"alpha\n", "dir/b": b"bravo\x00\x01\x02",
                     "dir/sub/c": b"charlie", "empty": b""}
        self.load(self.base)
        self.mount()

    # helpers
    def meta(self, rel):
        """(value, mod_revision|mzxid, version, lease|ephemeralOwner)"""
        return self.store.get_meta(self.key(rel))

    def node(self, rel):
        """backend-neutral h.Meta"""
        return self.store.meta(self.key(rel))

    def others(self, snap, *rels):
        keys = {self.key(r) for r in rels}
        return {k: v for k, v in snap.items() if k not in keys}

    def assertOthersUnchanged(self, before, *rels):
        after = self.snapshot()
        self.assertEqual(self.others(after, *rels), self.others(before, *rels),
                         "other keys changed")

    # ---------------------------------------------------------------
    def test_overwrite_is_one_store_write(self):
        before = self.snapshot()
        rev = self.store.revision()
        m0 = self.node("a")
        write_file(self.p("a"), b"new content \x00 here")
        self.assertEqual(self.store.get(self.key("a")), b"new content \x00 here")
        # etcd: revision +1 = the key's mod_revision, version +1;
        # ZooKeeper: data version +1, czxid unchanged (set, not re-create)
        self.assertOneWrite("a", m0, rev)
        self.assertOthersUnchanged(before, "a")
        # read-your-writes, exact size
        self.assertEqual(read_file(self.p("a")), b"new content \x00 here")
        self.assertEqual(os.stat(self.p("a")).st_size, len(b"new content \x00 here"))

    def test_many_writes_one_commit(self):
        rev = self.store.revision()
        m0 = self.node("a")
        with open(self.p("a"), "wb", buffering=0) as f:
            for i in range(50):
                f.write(b"line %d\n" % i)
        want = b"".join(b"line %d\n" % i for i in range(50))
        self.assertEqual(self.store.get(self.key("a")), want)
        self.assertOneWrite("a", m0, rev)

    def test_identical_content_writes_nothing(self):
        rev = self.store.revision()
        write_file(self.p("a"), b"alpha\n")
        write_file(self.p("dir/b"), b"bravo\x00\x01\x02")
        write_file(self.p("empty"), b"")
        self.assertEqual(self.store.revision(), rev, "identical content was written")

    def test_append(self):
        rev = self.store.revision()
        m0 = self.node("a")
        with open(self.p("a"), "ab") as f:
            f.write(b"more\n")
        self.assertEqual(self.store.get(self.key("a")), b"alpha\nmore\n")
        self.assertOneWrite("a", m0, rev)
        fd = os.open(self.p("dir/b"), os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, b"X")
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, b"Y")   # O_APPEND: still at the end
        finally:
            os.close(fd)
        self.assertEqual(self.store.get(self.key("dir/b")), b"bravo\x00\x01\x02XY")
        self.assertEqual(self.store.revision(), rev + 2)

    def test_truncate_path(self):
        rev = self.store.revision()
        os.truncate(self.p("a"), 2)
        self.assertEqual(self.store.get(self.key("a")), b"al")
        self.assertEqual(os.stat(self.p("a")).st_size, 2)
        self.assertEqual(self.store.revision(), rev + 1)
        os.truncate(self.p("a"), 5)   # grow: zero filled
        self.assertEqual(self.store.get(self.key("a")), b"al\x00\x00\x00")
        os.truncate(self.p("a"), 0)
        self.assertEqual(self.store.get(self.key("a")), b"")
        self.assertEqual(self.store.revision(), rev + 3)
        self.assertErrno(errno.ENOENT, os.truncate, self.p("nosuch"), 0)
        self.assertIsNone(self.store.get(self.key("nosuch")))

    def test_ftruncate_open_fd(self):
        rev = self.store.revision()
        m0 = self.node("dir/sub/c")
        fd = os.open(self.p("dir/sub/c"), os.O_RDWR)
        try:
            os.ftruncate(fd, 4)
            self.assertEqual(os.fstat(fd).st_size, 4)
            os.pwrite(fd, b"!", 4)
        finally:
            os.close(fd)
        self.assertEqual(self.store.get(self.key("dir/sub/c")), b"char!")
        self.assertOneWrite("dir/sub/c", m0, rev)

    def test_o_trunc_then_write(self):
        fd = os.open(self.p("a"), os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, b"zz")
        finally:
            os.close(fd)
        self.assertEqual(self.store.get(self.key("a")), b"zz")

    def test_pwrite_past_end_zero_fills(self):
        rev = self.store.revision()
        fd = os.open(self.p("a"), os.O_WRONLY)
        try:
            os.pwrite(fd, b"END", 10)
        finally:
            os.close(fd)
        self.assertEqual(self.store.get(self.key("a")), b"alpha\n\x00\x00\x00\x00END")
        self.assertEqual(os.stat(self.p("a")).st_size, 13)
        self.assertEqual(self.store.revision(), rev + 1)
        # in the middle
        fd = os.open(self.p("a"), os.O_RDWR)
        try:
            os.pwrite(fd, b"ALP", 0)
            self.assertEqual(os.pread(fd, 100, 0), b"ALPha\n\x00\x00\x00\x00END")
        finally:
            os.close(fd)
        self.assertEqual(self.store.get(self.key("a")), b"ALPha\n\x00\x00\x00\x00END")

    def test_fsync_commits(self):
        rev = self.store.revision()
        m0 = self.node("a")
        fd = os.open(self.p("a"), os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, b"synced")
            os.fsync(fd)
            self.assertEqual(self.store.get(self.key("a")), b"synced")
            self.assertOneWrite("a", m0, rev)
        finally:
            os.close(fd)
        self.assertEqual(self.store.revision(), rev + 1, "close after fsync wrote again")

    def test_create_new_file(self):
        before = self.snapshot()
        rev = self.store.revision()
        write_file(self.p("dir/new"), b"fresh")
        self.assertEqual(self.store.get(self.key("dir/new")), b"fresh")
        self.assertOneWrite("dir/new", None, rev)
        self.assertFalse(self.node("dir/new").ephemeral)
        self.assertEqual(self.keyset(), set(before) | {self.key("dir/new")})
        self.assertIn("new", os.listdir(self.p("dir")))
        # a new file deep in a new path (on ZooKeeper mkdir made n1, n1/n2)
        os.makedirs(self.p("n1/n2"))
        write_file(self.p("n1/n2/f"), b"deep")
        self.assertEqual(self.store.get(self.key("n1/n2/f")), b"deep")
        self.assertEqual(self.keyset(), set(before) | {self.key("dir/new"), self.key("n1/n2/f")}
                         | self.mkdir_keys("n1/n2"))

    def test_touch_new_file_is_empty_key(self):
        before = self.keyset()
        r = subprocess.run(["touch", self.p("touched")], stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.store.get(self.key("touched")), b"")
        self.assertEqual(self.keyset(), before | {self.key("touched")})
        self.assertEqual(os.stat(self.p("touched")).st_size, 0)
        # touching an existing file writes nothing
        rev = self.store.revision()
        subprocess.run(["touch", self.p("a")], check=True)
        self.assertEqual(self.store.revision(), rev)

    def test_create_excl(self):
        before = self.snapshot()
        self.assertErrno(errno.EEXIST, os.open, self.p("a"),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self.assertErrno(errno.EEXIST, os.open, self.p("dir"),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self.assertUnchanged(before)
        fd = os.open(self.p("excl"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"x")
        os.close(fd)
        self.assertEqual(self.store.get(self.key("excl")), b"x")

    def test_create_excl_races_other_client(self):
        # the key appears in the store after open(O_EXCL) succeeded: the
        # create-if-absent at close must fail and keep the other value
        fd = os.open(self.p("race"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"mine")
        self.store.put(self.key("race"), b"theirs")
        with self.assertRaises(OSError) as cm:
            os.close(fd)
        self.assertIn(cm.exception.errno, (errno.EIO, errno.EEXIST))
        self.assertEqual(self.store.get(self.key("race")), b"theirs")

    def test_concurrent_change_close_fails_eio(self):
        f = open(self.p("a"), "wb")
        try:
            f.write(b"from the mount")
            f.flush()   # python buffer -> FUSE write; store still untouched
            self.assertEqual(self.store.get(self.key("a")), b"alpha\n")
            self.store.put(self.key("a"), b"other client")
        finally:
            with self.assertRaises(OSError) as cm:
                f.close()
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertEqual(self.store.get(self.key("a")), b"other client")
        time.sleep(1.2)
        self.assertEqual(read_file(self.p("a")), b"other client")

    def test_concurrent_change_fsync_fails_eio(self):
        fd = os.open(self.p("a"), os.O_WRONLY)
        try:
            os.write(fd, b"X")
            self.store.put(self.key("a"), b"other client")
            self.assertErrno(errno.EIO, os.fsync, fd)
        finally:
            try:
                os.close(fd)
            except OSError:
                pass
        self.assertEqual(self.store.get(self.key("a")), b"other client")

    def wait_version_moves(self, rel, before):
        """Until the mount shows a version of rel other than `before`
        (getxattr: not an open, so no read is recorded)."""
        deadline = time.time() + 5
        while os.getxattr(self.p(rel), "user.topo.version") == before:
            self.assertLess(time.time(), deadline, "change not seen in 5 s")
            time.sleep(0.05)

    def test_rewrite_of_what_this_process_read_fails_after_change(self):
        """A process that read a record and then rewrites it whole (O_TRUNC,
        as nano saves) compares with the version it read: another client's
        change in between is kept, even one the mount has already seen."""
        v0 = os.getxattr(self.p("a"), "user.topo.version")
        self.assertEqual(read_file(self.p("a")), b"alpha\n")
        self.store.put(self.key("a"), b"other client")
        self.wait_version_moves("a", v0)
        f = open(self.p("a"), "wb")
        f.write(b"edit of alpha")
        with self.assertRaises(OSError) as cm:
            f.close()
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertEqual(self.store.get(self.key("a")), b"other client")
        # having read the new value, the same process may rewrite it
        self.assertEqual(read_file(self.p("a")), b"other client")
        write_file(self.p("a"), b"edit of other")
        self.assertEqual(self.store.get(self.key("a")), b"edit of other")
        # and its own write is what it edits next: no conflict with itself
        write_file(self.p("a"), b"second edit")
        self.assertEqual(self.store.get(self.key("a")), b"second edit")

    def test_blind_rewrite_by_another_process_succeeds(self):
        """Only the process that read the record is held to its version: a
        shell that never read it overwrites it (SPEC 5, the version seen at
        open)."""
        v0 = os.getxattr(self.p("a"), "user.topo.version")
        self.assertEqual(read_file(self.p("a")), b"alpha\n")
        self.store.put(self.key("a"), b"other client")
        self.wait_version_moves("a", v0)
        rc = subprocess.run(["sh", "-c", "printf blind > \"$1\"", "sh",
                             self.p("a")]).returncode
        self.assertEqual(rc, 0)
        self.assertEqual(self.store.get(self.key("a")), b"blind")

    def test_concurrent_delete_close_fails(self):
        fd = os.open(self.p("a"), os.O_WRONLY)
        os.write(fd, b"X")
        self.store.delete(self.key("a"))
        with self.assertRaises(OSError) as cm:
            os.close(fd)
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertIsNone(self.store.get(self.key("a")))

    def changed_keys(self, before):
        after = self.snapshot()
        return {k[len(self.prefix):]: (None if k not in after else len(after[k]))
                for k in set(before) | set(after) if before.get(k) != after.get(k)}

    def test_value_over_limit_efbig(self):
        # open(..., "wb") + a 2 MiB write: EFBIG, and nothing at all reaches
        # the store (neither the truncation of "a" nor an empty "toobig")
        before = self.snapshot()
        rev = self.store.revision()
        big = b"z" * (2 * 1024 * 1024)
        with self.assertRaises(OSError) as cm:
            with open(self.p("a"), "wb") as f:
                f.write(big)
        self.assertEqual(cm.exception.errno, errno.EFBIG)
        with self.assertRaises(OSError) as cm:
            with open(self.p("toobig"), "wb") as f:
                f.write(big)
        self.assertEqual(cm.exception.errno, errno.EFBIG)
        self.assertEqual(self.changed_keys(before), {},
                         "keys written after EFBIG (relpath: new length or None)")
        self.assertEqual(self.store.revision(), rev, "something was written")

    def test_value_over_limit_efbig_existing_no_trunc(self):
        before = self.snapshot()
        rev = self.store.revision()
        fd = os.open(self.p("a"), os.O_WRONLY)
        try:
            data = b"y" * (2 * 1024 * 1024)
            off = 0
            raised_at_write = None
            try:
                while off < len(data):      # a careful writer: retry short writes
                    n = os.pwrite(fd, data[off:], off)
                    self.assertGreater(n, 0)
                    off += n
            except OSError as e:
                raised_at_write = e.errno
        finally:
            try:
                os.close(fd)
                raised_at_close = None
            except OSError as e:
                raised_at_close = e.errno
        self.assertIn(errno.EFBIG, (raised_at_write, raised_at_close),
                      "no EFBIG (write: %s, close: %s)" % (raised_at_write, raised_at_close))
        self.assertEqual(self.changed_keys(before), {})
        self.assertEqual(self.store.revision(), rev)

    def test_value_of_one_mb_written(self):
        data = bytes(range(256)) * 4000    # 1,024,000 bytes, all byte values
        write_file(self.p("big"), data)
        self.assertEqual(self.store.get(self.key("big")), data)
        self.assertEqual(read_file(self.p("big")), data)
        self.assertEqual(os.stat(self.p("big")).st_size, len(data))

    def test_names_with_spaces_and_utf8(self):
        names = ["with space", "tab\there", "\u00fcn\u00efc\u00f8d\u00e9-\u540d\u524d",
                 "emoji-\U0001F600", "quote'\"", "semi;colon"]
        if self.is_zk:
            # ZooKeeper refuses control characters and characters outside
            # the BMP in paths: EINVAL, nothing written
            bad = [n for n in names if not h.zk_name_ok(n)]
            self.assertEqual(bad, ["tab\there", "emoji-\U0001F600"])
            names = [n for n in names if n not in bad]
            before = self.snapshot()
            for n in bad:
                self.assertErrno(errno.EINVAL, write_file, self.p("dir/" + n), b"x")
                self.assertErrno(errno.EINVAL, os.mkdir, self.p("dir/" + n + "-d"))
                self.assertFalse(os.path.exists(self.p("dir/" + n)))
            self.assertUnchanged(before)
        before = self.keyset()
        for n in names:
            write_file(self.p("dir/" + n), n.encode("utf-8"))
        for n in names:
            self.assertEqual(self.store.get(self.key("dir/" + n)), n.encode("utf-8"), n)
        self.assertEqual(self.keyset(), before | {self.key("dir/" + n) for n in names})
        os.makedirs(self.p("sp ace/\u540d"))
        write_file(self.p("sp ace/\u540d/f g"), b"1")
        self.assertEqual(self.store.get(self.key("sp ace/\u540d/f g")), b"1")
        self.assertEqual(read_file(self.p("sp ace/\u540d/f g")), b"1")

    def test_topofs_data_write_updates_node(self):
        self.load({"node": b"own", "node/child": b"kid"})
        time.sleep(1.2)
        self.assertEqual(read_file(self.p("node/.topofs-data")), b"own")
        before = self.snapshot()
        rev = self.store.revision()
        m0 = self.node("node")
        write_file(self.p("node/.topofs-data"), b"own v2")
        self.assertEqual(self.store.get(self.key("node")), b"own v2")
        self.assertOneWrite("node", m0, rev)
        self.assertIsNone(self.store.get(self.key("node/.topofs-data")),
                          "a key named .topofs-data was written")
        self.assertOthersUnchanged(before, "node")

    def test_topofs_data_create_on_plain_dir(self):
        # writing .topofs-data in a plain directory gives the prefix a value
        # (etcd: creates the key "dir"; ZooKeeper: sets the data of the
        # znode "dir", which was there with empty data)
        before = self.keyset()
        rev = self.store.revision()
        m0 = self.node("dir")
        if self.is_zk:
            self.assertEqual(m0.value, b"")
        else:
            self.assertIsNone(m0)
        write_file(self.p("dir/.topofs-data"), b"dirvalue")
        self.assertEqual(self.store.get(self.key("dir")), b"dirvalue")
        self.assertOneWrite("dir", m0, rev)
        self.assertEqual(self.keyset(), before | {self.key("dir")})
        self.assertIn(".topofs-data", os.listdir(self.p("dir")))
        self.assertEqual(read_file(self.p("dir/.topofs-data")), b"dirvalue")

    def test_leased_key_readonly(self):
        # etcd: a key with a lease; ZooKeeper: an ephemeral znode
        rel = self.put_ephemeral("dir/locks/123", b'{"lock": 1}')
        owner = self.node(rel).ephemeral
        self.assertNotEqual(owner, 0)
        time.sleep(1.2)
        st = os.stat(self.p(rel))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o444)
        self.assertEqual(read_file(self.p(rel)), b'{"lock": 1}')
        before = self.snapshot()
        rev = self.store.revision()
        self.assertErrno(errno.EACCES, open, self.p(rel), "wb")
        self.assertErrno(errno.EACCES, os.open, self.p(rel), os.O_WRONLY)
        self.assertErrno(errno.EACCES, os.truncate, self.p(rel), 0)
        self.assertUnchanged(before)
        self.assertEqual(self.store.revision(), rev)
        self.assertEqual(self.node(rel).ephemeral, owner, "lease/owner changed")

    def test_chmod_chown_utime_noop(self):
        before = self.snapshot()
        rev = self.store.revision()
        os.chmod(self.p("a"), 0o600)
        os.chmod(self.p("dir"), 0o700)
        os.chown(self.p("a"), os.getuid(), os.getgid())
        os.chown(self.p("a"), 1234, 1234)
        os.utime(self.p("a"), (1000000, 1000000))
        os.utime(self.p("dir"), None)
        r = subprocess.run(["touch", "-d", "2001-01-01", self.p("a")], stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.store.revision(), rev)
        self.assertUnchanged(before)

    def test_no_unwritten_keys_during_session(self):
        # a mixed session: only the keys the user wrote differ afterwards
        before = self.snapshot()
        os.mkdir(self.p("m"))
        os.mkdir(self.p("m/n"))
        os.listdir(self.p("m"))
        write_file(self.p("m/n/f"), b"F")
        read_file(self.p("a"))
        os.stat(self.p("dir/sub"))
        after = self.snapshot()
        diff = {k for k in set(after) | set(before) if after.get(k) != before.get(k)}
        # ZooKeeper: mkdir creates the znodes m and m/n at once (empty data)
        self.assertEqual(diff, {self.key("m/n/f")} | self.mkdir_keys("m/n"))
        for k in self.mkdir_keys("m/n"):
            self.assertEqual(after[k], b"", k)


if __name__ == "__main__":
    h.main()
