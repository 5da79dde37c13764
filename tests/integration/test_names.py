#!/usr/bin/python3
"""Names at the edges of the mapping (issue 21), on both stores.

Scratch directories (items 3): a directory whose name matches the editor
scratch patterns (SPEC 5) lives in the mount's memory like a scratch file
(SPEC 2: "scratch names are local for directories as for files"), and so
does everything made below it, whatever its name. mkdir, rmdir, listing,
stat, files inside and renames work; the store never sees any of it - the
exact key set is checked with the independent client - and its parent can
be removed once it is gone.

The longest path (item 5): a path of PATH_MAX - 1 = 4095 bytes below the
mount root works like any other (mkdir -p of its directories, create,
write, read back, stat, listing, rename, xattrs, unlink); one of 4096 bytes
is ENAMETOOLONG. The absolute path through the mountpoint is longer than
the kernel takes in one string, so the test walks with directory file
descriptors (openat and friends), the way a process reaches such a path on
a local filesystem.

Runs against TOPOFS_BACKEND (etcd | zk), like every module.
"""

import errno
import os
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import read_file, write_file  # noqa: E402

PATH_MAX = 4096


class ScratchDirTest(h.TopofsTestCase):

    def setUp(self):
        super().setUp()
        self.load({"ks/rec": b"record", "other": b"o"})
        self.mount()

    def assertStore(self, keys, rev, msg):
        """The store holds exactly `keys` (full keys) and was not written
        since revision `rev`."""
        self.assertEqual(self.keyset(), set(keys), msg)
        self.assertEqual(self.store.revision(), rev, "%s: a store write" % msg)

    def test_mkdir_rmdir_scratch_dir(self):
        """mkdir sd/x~ works and stays in memory; rmdir sd works after."""
        os.mkdir(self.p("sd"))
        keys = self.keyset()      # ZooKeeper: with the znode sd
        loaded = {self.key("ks/rec"), self.key("other")}
        if self.is_zk:
            loaded.add(self.key("ks"))    # the parent znode
        self.assertEqual(keys, loaded | self.mkdir_keys("sd"))
        rev = self.store.revision()
        os.mkdir(self.p("sd/x~"))
        st = os.stat(self.p("sd/x~"))
        self.assertTrue(stat.S_ISDIR(st.st_mode), oct(st.st_mode))
        self.assertEqual(st.st_mode & 0o777, 0o755)
        self.assertEqual(st.st_nlink, 2)
        self.assertEqual(os.listdir(self.p("sd")), ["x~"])
        self.assertEqual(os.listdir(self.p("sd/x~")), [])
        self.assertFalse(os.path.exists(self.p("sd/x~/.topofs-data")))
        self.assertErrno(errno.EEXIST, os.mkdir, self.p("sd/x~"))
        self.assertStore(keys, rev, "mkdir of a scratch directory")
        self.assertErrno(errno.ENOTEMPTY, os.rmdir, self.p("sd"))
        os.rmdir(self.p("sd/x~"))
        self.assertFalse(os.path.exists(self.p("sd/x~")))
        self.assertEqual(os.listdir(self.p("sd")), [])
        self.assertErrno(errno.ENOENT, os.rmdir, self.p("sd/x~"))
        self.assertStore(keys, rev, "rmdir of a scratch directory")
        os.rmdir(self.p("sd"))
        self.assertFalse(os.path.exists(self.p("sd")))
        self.assertEqual(self.keyset(), keys - self.mkdir_keys("sd"))

    def test_scratch_dir_in_stored_dir_and_root(self):
        """Scratch directories next to stored keys, and at the root: each
        scratch pattern, mkdir -p of a chain below one."""
        keys, rev = self.keyset(), self.store.revision()
        names = ["x~", ".#lock", "#auto#", "4913", ".rec.swp", "sedAb12Cd"]
        for n in names:
            os.mkdir(self.p("ks/" + n))
        os.makedirs(self.p("top~/a/b/c"))
        self.assertEqual(sorted(os.listdir(self.p("ks"))),
                         sorted(names + ["rec"]))
        self.assertIn("top~", os.listdir(self.p()))
        for n in names:
            self.assertTrue(os.path.isdir(self.p("ks/" + n)), n)
        self.assertEqual(os.stat(self.p("top~")).st_nlink, 3)  # a below
        self.assertTrue(os.path.isdir(self.p("top~/a/b/c")))
        self.assertEqual(read_file(self.p("ks/rec")), b"record")
        self.assertStore(keys, rev, "mkdir of scratch directories")
        self.assertErrno(errno.ENOTEMPTY, os.rmdir, self.p("top~"))
        for n in names:
            os.rmdir(self.p("ks/" + n))
        for d in ("top~/a/b/c", "top~/a/b", "top~/a", "top~"):
            os.rmdir(self.p(d))
        self.assertEqual(sorted(os.listdir(self.p())), ["ks", "other"])
        self.assertEqual(os.listdir(self.p("ks")), ["rec"])
        self.assertStore(keys, rev, "rmdir of scratch directories")

    def test_stored_node_with_scratch_name_not_shown(self):
        """A node of the store with a scratch name (written by another
        client) is not shown; a scratch directory of that name is, once,
        and holds only what was made in it. The stored node stays."""
        self.store.put(self.key("ks/x~/stored"), b"s")
        if self.is_zk:
            self.store.put(self.key("ks/x~"), b"")   # (its parent znode)
        keys, rev = self.keyset(), self.store.revision()
        self.assertEqual(os.listdir(self.p("ks")), ["rec"])
        self.assertFalse(os.path.exists(self.p("ks/x~")))
        os.mkdir(self.p("ks/x~"))
        self.assertEqual(sorted(os.listdir(self.p("ks"))), ["rec", "x~"])
        self.assertEqual(os.listdir(self.p("ks/x~")), [])
        self.assertFalse(os.path.exists(self.p("ks/x~/stored")))
        os.rmdir(self.p("ks/x~"))
        self.assertEqual(os.listdir(self.p("ks")), ["rec"])
        self.assertStore(keys, rev, "a stored node with a scratch name")
        self.assertEqual(self.store.get(self.key("ks/x~/stored")), b"s")

    def test_files_in_scratch_dir_stay_in_memory(self):
        """A file made in a scratch directory is a scratch file, whatever
        its name: written, read, listed, renamed, removed - never stored.
        The directory is not empty (ENOTEMPTY) until it is removed."""
        keys, rev = self.keyset(), self.store.revision()
        os.mkdir(self.p("ks/x~"))
        os.mkdir(self.p("ks/x~/sub"))
        write_file(self.p("ks/x~/file"), b"in memory")
        write_file(self.p("ks/x~/sub/deep"), b"deeper")
        self.assertEqual(read_file(self.p("ks/x~/file")), b"in memory")
        self.assertEqual(os.stat(self.p("ks/x~/file")).st_size, 9)
        self.assertEqual(os.stat(self.p("ks/x~")).st_nlink, 3)
        self.assertEqual(sorted(os.listdir(self.p("ks/x~"))), ["file", "sub"])
        self.assertEqual(os.listdir(self.p("ks/x~/sub")), ["deep"])
        self.assertStore(keys, rev, "files in a scratch directory")
        self.assertErrno(errno.ENOTEMPTY, os.rmdir, self.p("ks/x~"))
        self.assertErrno(errno.ENOTEMPTY, os.rmdir, self.p("ks/x~/sub"))
        # renames within memory: a file, then the directory with all in it
        os.rename(self.p("ks/x~/file"), self.p("ks/x~/sub/moved"))
        os.rename(self.p("ks/x~"), self.p("ks/y~"))
        self.assertFalse(os.path.exists(self.p("ks/x~")))
        self.assertEqual(sorted(os.listdir(self.p("ks"))), ["rec", "y~"])
        self.assertEqual(sorted(os.listdir(self.p("ks/y~/sub"))),
                         ["deep", "moved"])
        self.assertEqual(read_file(self.p("ks/y~/sub/moved")), b"in memory")
        self.assertStore(keys, rev, "renames in a scratch directory")
        os.unlink(self.p("ks/y~/sub/moved"))
        os.unlink(self.p("ks/y~/sub/deep"))
        os.rmdir(self.p("ks/y~/sub"))
        os.rmdir(self.p("ks/y~"))
        self.assertEqual(os.listdir(self.p("ks")), ["rec"])
        self.assertStore(keys, rev, "scratch directory removed")
        # and the stored directory can go now
        os.unlink(self.p("ks/rec"))
        if os.path.exists(self.p("ks")):
            os.rmdir(self.p("ks"))
        self.assertEqual(self.keyset(), {self.key("other")})


def long_names(total, first=250):
    """Names (each at most 255 bytes) whose '/'-joined path is exactly
    `total` bytes: directories of `first` bytes, then the rest."""
    names, used, i = [], 0, 0
    while total - used > first + 1:
        names.append(("d%02d" % i).ljust(first, "x"))
        used += first + 1
        i += 1
    names.append("f".ljust(total - used, "y"))
    assert len("/".join(names)) == total
    assert all(len(n) <= 255 for n in names)
    return names


class LongPathTest(h.TopofsTestCase):

    def setUp(self):
        super().setUp()
        self.load({"k": b"v"})
        self.mount()
        self.fds = []
        self.addCleanup(self.close_fds)

    def close_fds(self):
        for fd in self.fds:
            os.close(fd)

    def dir_fd(self, name, at):
        """An open descriptor of directory `name` in directory fd `at`."""
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=at)
        self.fds.append(fd)
        return fd

    def make_dirs(self, names):
        """mkdir -p of names (relative to the mount, one by one with
        openat): the descriptor of the last one."""
        fd = self.dir_fd(self.p(), None)
        for n in names:
            os.mkdir(n, dir_fd=fd)
            fd = self.dir_fd(n, fd)
        return fd

    def test_path_of_4095_bytes(self):
        names = long_names(PATH_MAX - 1)
        rel = "/".join(names)
        self.assertEqual(len(rel.encode()), 4095)
        fd = self.make_dirs(names[:-1])
        name, data = names[-1], b"at the end of the longest path\n"
        f = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644,
                    dir_fd=fd)
        os.write(f, data)
        os.close(f)
        self.assertEqual(self.store.get(self.key(rel)), data)
        expect = {self.key("k"), self.key(rel)} | \
            self.mkdir_keys("/".join(names[:-1]))
        self.assertEqual(self.keyset(), expect)
        # read back, stat, listing (READDIRPLUS stats every entry), xattr
        f = os.open(name, os.O_RDONLY, dir_fd=fd)
        self.assertEqual(os.read(f, 1000), data)
        self.assertEqual(os.getxattr(f, "user.topo.ephemeral"), b"0")
        os.close(f)
        st = os.stat(name, dir_fd=fd)
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertEqual(st.st_size, len(data))
        self.assertEqual(os.listdir(fd), [name])
        self.assertEqual([(e.name, e.stat().st_size) for e in os.scandir(fd)],
                         [(name, len(data))])
        # a rename to another name of the same length: one store operation
        other = "g" + name[1:]
        os.rename(name, other, src_dir_fd=fd, dst_dir_fd=fd)
        other_rel = "/".join(names[:-1] + [other])
        self.assertIsNone(self.store.get(self.key(rel)))
        self.assertEqual(self.store.get(self.key(other_rel)), data)
        os.unlink(other, dir_fd=fd)
        self.assertIsNone(self.store.get(self.key(other_rel)))
        self.assertEqual(os.listdir(fd), [])
        # a directory of 4095 bytes, empty, listed and removed
        os.mkdir(name, dir_fd=fd)
        self.assertEqual(os.listdir(self.dir_fd(name, fd)), [])
        self.assertTrue(stat.S_ISDIR(os.stat(name, dir_fd=fd).st_mode))
        os.rmdir(name, dir_fd=fd)
        self.assertEqual(self.keyset(), expect - {self.key(rel)})

    def test_path_of_4096_bytes(self):
        names = long_names(PATH_MAX)
        self.assertEqual(len("/".join(names)), 4096)
        fd = self.make_dirs(names[:-1])
        before = self.keyset()
        name = names[-1]
        self.assertErrno(errno.ENAMETOOLONG, os.open, name,
                         os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        self.assertErrno(errno.ENAMETOOLONG, os.mkdir, name, dir_fd=fd)
        self.assertErrno(errno.ENAMETOOLONG, os.stat, name, dir_fd=fd)
        # one byte less is fine
        f = os.open(name[:-1], os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.close(f)
        self.assertEqual(os.listdir(fd), [name[:-1]])
        self.assertEqual(self.keyset(),
                         before | {self.key("/".join(names)[:-1])})


if __name__ == "__main__":
    h.main()
