#!/usr/bin/python3
"""Two mounts of one root, racing: one mount makes directories, creates,
rewrites, renames and removes files and directories while the other runs
`find` and `ls -lR` and reads files in a loop.  No read may return a value
that was never written, no operation may fail with EIO, and after a quiet
moment both mounts and the store (read with the independent client) agree
exactly with what the writer did.  On the single server of the module, and
on a 3-member etcd cluster / 3-server ZooKeeper ensemble with the two
mounts connected to different members."""

import errno
import os
import random
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
import harness as h  # noqa: E402

STORM_SECONDS = float(os.environ.get("TOPOFS_STORM_SECONDS", "4"))
AGREE_SECONDS = 5.0  # how long the mounts may take to agree after the storm
ALLOWED_READ_ERRORS = (errno.ENOENT, errno.ESTALE, errno.ENOTDIR,
                       errno.EISDIR)
TRANSIENT = ("No such file", "Stale file handle", "Not a directory")


class Writer:
    """The storm on mount A, with a model of what it left: files
    {relpath: bytes} and the directories it made."""

    def __init__(self, root, seed, files, real_dirs):
        self.root = root
        self.real_dirs = real_dirs  # ZooKeeper: directories are nodes
        self.rnd = random.Random(seed)
        self.files = dict(files)
        self.dirs = {os.path.dirname(p) for p in files} - {""}
        for p in list(self.dirs):
            while os.path.dirname(p):
                p = os.path.dirname(p)
                self.dirs.add(p)
        self.written = set(files.values())
        self.ever_dirs = set(self.dirs)  # (readers: see Readers.read_one)
        self.n = 0
        self.log = []

    def p(self, rel):
        return os.path.join(self.root, rel)

    def new_value(self, rel):
        self.n += 1
        v = b"value %d of %s" % (self.n, rel.encode())
        self.written.add(v)
        return v

    def pick_dir(self):
        return self.rnd.choice(sorted(self.dirs | {""}))

    def write(self, rel):
        v = self.new_value(rel)
        with open(self.p(rel), "wb") as f:
            f.write(v)
        self.files[rel] = v

    def op_create(self):
        d = self.pick_dir()
        self.n += 1
        self.write(os.path.join(d, "f%d" % self.n))

    def op_rewrite(self):
        if self.files:
            self.write(self.rnd.choice(sorted(self.files)))

    def op_mkdir(self):
        self.n += 1
        rel = os.path.join(self.pick_dir(), "d%d" % self.n, "e%d" % self.n)
        self.ever_dirs.update({rel, os.path.dirname(rel)})  # before B looks
        os.makedirs(self.p(rel))
        self.dirs.update({rel, os.path.dirname(rel)})
        self.write(os.path.join(rel, "f%d" % self.n))  # not left empty

    def op_rename_file(self):
        if not self.files:
            return
        src = self.rnd.choice(sorted(self.files))
        if not self.leaves_dirs_whole([src]):
            return
        self.n += 1
        dst = os.path.join(self.pick_dir(), "r%d" % self.n)
        os.rename(self.p(src), self.p(dst))
        self.files[dst] = self.files.pop(src)

    def below(self, d):
        return [p for p in self.files if p.startswith(d + "/")]

    def leaves_dirs_whole(self, gone):
        """ZooKeeper: whether removing the entries `gone` (files or
        directories) leaves every remaining directory a child.  A znode
        without children is a file (SPEC 2), so the writer never empties
        one: what each mount then shows would depend on which of them made
        it."""
        if not self.real_dirs:
            return True
        def under(p):
            return any(p == g or p.startswith(g + "/") for g in gone)
        left = [p for p in list(self.files) + list(self.dirs) if not under(p)]
        for g in gone:
            parent = os.path.dirname(g)
            if parent and not any(os.path.dirname(p) == parent for p in left):
                return False
        return True

    def op_rename_dir(self):
        if not self.dirs:
            return
        src = self.rnd.choice(sorted(self.dirs))
        if not self.leaves_dirs_whole([src]):
            return
        self.n += 1
        dst = "m%d" % self.n
        os.rename(self.p(src), self.p(dst))
        for p in self.below(src):
            self.files[dst + p[len(src):]] = self.files.pop(p)
        moved = {d for d in self.dirs if d == src or d.startswith(src + "/")}
        self.dirs -= moved
        self.dirs |= {dst + d[len(src):] for d in moved}

    def op_remove(self):
        if self.rnd.random() < 0.5 and self.files:
            rel = self.rnd.choice(sorted(self.files))
            if not self.leaves_dirs_whole([rel]):
                return
            os.unlink(self.p(rel))
            del self.files[rel]
        elif self.dirs:
            d = self.rnd.choice(sorted(self.dirs))
            if not self.leaves_dirs_whole([d]):
                return
            shutil.rmtree(self.p(d))
            for p in self.below(d):
                del self.files[p]
            self.dirs = {x for x in self.dirs
                         if x != d and not x.startswith(d + "/")}

    OPS = (("op_create", 30), ("op_rewrite", 30), ("op_mkdir", 8),
           ("op_rename_file", 12), ("op_rename_dir", 4), ("op_remove", 8))

    def run(self, seconds):
        names = [n for n, w in self.OPS for _ in range(w)]
        end = time.time() + seconds
        while time.time() < end:
            op = self.rnd.choice(names)
            self.log.append(op)
            getattr(self, op)()
            if not self.real_dirs:  # etcd: directories exist through keys
                self.dirs = {d for p in self.files
                             for d in TwoMountsTest.parents(p)}
            self.ever_dirs |= self.dirs


class Readers:
    """`find`, `ls -lR` and reads of every file found, on mount B, in a loop;
    every problem is collected."""

    def __init__(self, root, written, ever_dirs, real_dirs):
        self.root = root
        self.written = written  # grows while the writer runs
        self.ever_dirs = ever_dirs
        self.real_dirs = real_dirs
        self.problems = []
        self.reads = 0
        self.stop = threading.Event()

    def tools(self):
        while not self.stop.is_set():
            for cmd in (["find", self.root], ["ls", "-lR", self.root]):
                r = subprocess.run(cmd, capture_output=True)
                for line in r.stderr.decode(errors="replace").splitlines():
                    # a name gone meanwhile, or (ZooKeeper) a directory
                    # seen for a moment without its children: a file
                    if not any(ok in line for ok in TRANSIENT):
                        self.problems.append("%s: %s" % (cmd[0], line))

    def read_all(self):
        while not self.stop.is_set():
            for d, _, names in os.walk(self.root):
                for n in names:
                    self.read_one(os.path.join(d, n))

    def read_one(self, path):
        try:
            with open(path, "rb") as f:
                v = f.read()
        except OSError as e:
            if e.errno not in ALLOWED_READ_ERRORS:
                self.problems.append("read %s: %s" % (path, e))
            return
        self.reads += 1
        rel = os.path.relpath(path, self.root)
        if v == b"" and self.real_dirs and rel in self.ever_dirs:
            return  # a directory znode seen between `rm -r`'s steps
        if v not in self.written:
            self.problems.append("read %s: %r was never written" % (path, v))

    def start(self):
        self.threads = [threading.Thread(target=f, daemon=True)
                        for f in (self.tools, self.read_all)]
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)


def walk(root):
    """({relpath: bytes} of the files, {relpath} of the directories)."""
    files, dirs = {}, set()
    for d, subdirs, names in os.walk(root):
        rel = os.path.relpath(d, root)
        for s in subdirs:
            dirs.add(os.path.normpath(os.path.join(rel, s)))
        for n in names:
            with open(os.path.join(d, n), "rb") as f:
                files[os.path.normpath(os.path.join(rel, n))] = f.read()
    return files, dirs


class TwoMountsTest(h.TopofsTestCase):

    TEST_TIMEOUT = 300

    def initial(self):
        return {"keyspaces/ks%d/shards/%d/Shard" % (k, s): b"shard %d/%d" % (k, s)
                for k in range(3) for s in range(3)}

    def storm(self, a, b, store, seed):
        files = self.initial()
        w = Writer(a.mnt, seed, files, self.is_zk)
        readers = Readers(b.mnt, w.written, w.ever_dirs, self.is_zk)
        readers.start()
        try:
            w.run(STORM_SECONDS)
        except OSError as e:
            self.fail("seed %d: the writer's op %s failed: %s (last ops: %s)"
                      % (seed, w.log[-1], e, w.log[-8:]))
        finally:
            readers.finish()
        self.assertEqual(readers.problems[:10], [],
                         "seed %d: what the readers saw" % seed)
        self.assertGreater(readers.reads, 0)
        self.agree(a, b, store, w, seed)

    def agree(self, a, b, store, w, seed):
        """After the storm: mount A, mount B and the store hold exactly the
        writer's files (and, on ZooKeeper, its directories)."""
        want_dirs = w.dirs if self.is_zk else {
            d for p in w.files for d in self.parents(p)}
        deadline = time.time() + AGREE_SECONDS
        while True:
            seen = [(walk(m.mnt)) for m in (a, b)]
            ok = all(f == w.files for f, _ in seen) and \
                seen[1][1] == want_dirs
            if ok or time.time() > deadline:
                break
            time.sleep(0.2)
        for name, (f, d) in zip(("mount A", "mount B"), seen):
            self.assertEqual(f, w.files, "seed %d: %s's files" % (seed, name))
        self.assertEqual(seen[1][1], want_dirs,
                         "seed %d: mount B's directories" % seed)
        self.assertTrue(want_dirs <= seen[0][1])
        stored = {k[len(self.prefix):]: v
                  for k, v in store.range(self.prefix).items()}
        stored_files = {k: v[0] for k, v in stored.items()
                        if k not in w.dirs}
        self.assertEqual(stored_files, w.files,
                         "seed %d: the store's files" % seed)
        if self.is_zk:
            self.assertEqual(set(stored) - set(w.files), want_dirs,
                             "seed %d: the store's directories" % seed)

    @staticmethod
    def parents(p):
        out = set()
        while os.path.dirname(p):
            p = os.path.dirname(p)
            out.add(p)
        return out

    def seed(self):
        s = int(os.environ.get("TOPOFS_STORM_SEED", random.randrange(1 << 30)))
        sys.stderr.write("storm seed %d\n" % s)
        return s

    def test_two_mounts_one_server(self):
        self.load(self.initial())
        a = self.mount()
        b = self.mount()
        self.storm(a, b, self.store, self.seed())

    def test_two_mounts_on_different_members(self):
        c = cluster.ZkEnsemble() if self.is_zk else cluster.EtcdCluster()
        self.addCleanup(c.stop)
        c.start()
        client = c.client()
        if hasattr(client, "close"):
            self.addCleanup(client.close)
        client.put_many({self.key(k): v for k, v in self.initial().items()})
        args = c.topofs_args(self.root)
        mounts = []
        members = []
        for first in (0, 1, 2, 0, 1, 2):  # each mount's first address
            order = c.addresses[first:] + c.addresses[:first]
            m = self.mount(args=self.member_args(args, c, order))
            os.listdir(m.mnt)  # connected now
            if self.member_of(c, m) not in members:
                mounts.append(m)
                members.append(self.member_of(c, m))
            if len(mounts) == 2:
                break  # (ZooKeeper's client picks its server at random)
        sys.stderr.write("mounts on members %s\n" % members)
        self.assertEqual(len(mounts), 2, "no two mounts on two members")
        self.storm(mounts[0], mounts[1], client, self.seed())

    def member_of(self, c, m):
        """The members mount m holds a connection to."""
        ports = cluster.socket_peer_ports(m.proc.pid)
        return sorted(i for i, p in enumerate(c.client_ports) if p in ports)

    @staticmethod
    def member_args(args, c, order):
        joined, wanted = ",".join(c.addresses), ",".join(order)
        return [a.replace(joined, wanted) for a in args]


if __name__ == "__main__":
    h.main()
