"""Integration-test harness for topofs.

- free loopback ports
- EtcdServer: a throwaway Debian `etcd` on loopback, stopped by its pid
- EtcdClient: an independent client over etcd's v3 JSON gateway (urllib)
- ZkServer / ZkClient: the same for ZooKeeper (kazoo), for the zk2 backend
- Mount: runs the real topofs binary in the foreground, waits for the mount,
  unmounts with fusermount3 and waits for the process to exit
- TopofsTestCase: unittest base class, one store server per test module, a
  unique root per test, everything cleaned up (addCleanup + atexit), and a
  watchdog that force-unmounts a hung mount so no test hangs forever.

The parts live in modules of their own; this one re-exports their names, so
a test needs `import harness as h` alone:
  harness_base.py     the environment, the registry of live mounts, servers
                      and temp dirs with the atexit safety net, temp dirs,
                      the mount table (is_mounted, force_unmount), stop_pid
  harness_servers.py  EtcdServer, ZkServer, free_port, tcp_client_sockets
  harness_clients.py  EtcdClient, ZkClient, Meta
  harness_mounts.py   Mount, run_topofs, the sanitizer checks,
                      fuse_requests, topofs_pids
  harness.py          TopofsTestCase and its assertions, module_server, and
                      the file and expected-view helpers

Every Mount is checked when it ends: the test fails if topofs exited
non-zero after the unmount (or died while mounted), or if its stderr log holds
an AddressSanitizer / LeakSanitizer / UndefinedBehaviorSanitizer report (the
topofs-asan build writes those to stderr).

Environment:
  TOPOFS_BIN      the binary (default: the first of <repo>/build/topofs,
                  <repo>/build/fs/topofs that exists)
  TOPOFS_BACKEND  etcd (default) | zk
  TOPOFS_KEEP_LOGS=1  keep topofs stderr logs on success too
  TOPOFS_TEST_TIMEOUT seconds per test before the watchdog fires (default 180)

Standard library only (plus kazoo for ZooKeeper).  Run with /usr/bin/python3.
"""

import errno
import hashlib
import os
import random
import sys
import threading
import time
import unittest

# The harness's parts, re-exported: test modules use them as h.<name>.
from harness_base import (  # noqa: F401
    BACKEND, BACKENDS, FUSERMOUNT, HERE, IMPL, REPO, _live_dirs,
    _live_mounts, _live_servers, _safety_net, _sigterm, _unescape_mount,
    force_unmount, gen_topology, is_mounted, make_tempdir, remove_tempdir,
    stop_pid, topofs_bin)
from harness_clients import (  # noqa: F401
    EtcdClient, EtcdError, Meta, ZkClient, b64d, b64e, prefix_end)
from harness_mounts import (  # noqa: F401
    SANITIZER_MARKERS, Mount, MountError, fuse_requests, run_topofs,
    sanitizer_env, sanitizer_files_report, sanitizer_report, topofs_pids)
from harness_servers import (  # noqa: F401
    EtcdServer, ZkServer, free_port, make_server, tcp_client_sockets)


def sha256(b):
    return hashlib.sha256(b).hexdigest()


# --------------------------------------------------------------------------
# unittest base class

_module_server = {}


def module_server(backend=None, **options):
    """One store server per test module, backend and server options
    (EtcdServer's, e.g. enable_v2=True), lazily started."""
    backend = backend or BACKEND
    key = backend if not options else (backend,) + tuple(sorted(options.items()))
    s = _module_server.get(key)
    if s is None:
        s = (ZkServer() if backend == "zk" else EtcdServer(**options)).start()
        _module_server[key] = s
    return s


def stop_module_server():
    for b in list(_module_server):
        _module_server.pop(b).stop()


def sample(root, **kw):
    """The default generated sample as {full key: value}."""
    g, ct = gen_topology.generate(root=root, **kw)
    return gen_topology.flatten(root, g, ct)


class TopofsTestCase(unittest.TestCase):
    """Base class.  self.server, self.store (independent client), self.root
    (unique per test), self.mount() / self.m (Mount), helpers."""

    maxDiff = 4000
    TEST_TIMEOUT = float(os.environ.get("TOPOFS_TEST_TIMEOUT", "180"))
    BACKEND = None      # None: $TOPOFS_BACKEND; a subclass may pin "zk"/"etcd"
    SERVER_OPTIONS = {}  # for the module's server, e.g. {"enable_v2": True}

    backend = BACKEND   # the backend in use ("etcd" | "zk"), set by setUpClass

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(topofs_bin()):
            if os.environ.get("TOPOFS_BIN"):
                raise RuntimeError("TOPOFS_BIN=%s does not exist" % topofs_bin())
            raise unittest.SkipTest("no topofs binary at %s" % topofs_bin())
        cls.backend = cls.BACKEND or BACKEND
        cls.server = module_server(cls.BACKEND, **cls.SERVER_OPTIONS)
        cls.store = cls.server.client()
        if hasattr(cls.store, "close"):
            cls.addClassCleanup(cls.store.close)

    def setUp(self):
        name = self.id().split(".")[-1]
        self.root = "/t/%s-%08x" % (name, random.getrandbits(32))
        self.prefix = self.root + "/"
        self.mounts = []
        self._watchdog = threading.Timer(self.TEST_TIMEOUT, self._fire_watchdog)
        self._watchdog.daemon = True
        self._watchdog.start()
        self.addCleanup(self._watchdog.cancel)

    def _fire_watchdog(self):
        sys.stderr.write("\n*** WATCHDOG: %s exceeded %ss; force-unmounting\n"
                         % (self.id(), self.TEST_TIMEOUT))
        for m in list(self.mounts):
            sys.stderr.write("--- topofs log (%s):\n%s\n" % (m.mnt, m.log()))
            m.force_stop()

    # -- store helpers
    def load(self, kvs=None, **kw):
        """Put the generated sample (or kvs, relpaths or full keys) under
        self.root; returns {full key: value}."""
        if kvs is None:
            kvs = sample(self.root, **kw)
        else:
            kvs = {self.key(k): (v.encode() if isinstance(v, str) else v)
                   for k, v in kvs.items()}
        self.store.put_many(kvs)
        return kvs

    def key(self, rel):
        if rel.startswith(self.root + "/"):
            return rel
        return self.prefix + rel

    def snapshot(self):
        """{full key: value} under root."""
        return {k: v[0] for k, v in self.store.range(self.prefix).items()}

    def keyset(self):
        return set(self.store.keys(self.prefix))

    # -- mount helpers
    def mount(self, extra=(), root=None, args=None, timeout=10):
        if args is None:
            args = self.server.topofs_args(root or self.root) + list(extra)
        m = Mount(args)
        self.mounts.append(m)
        self.addCleanup(self._umount, m)
        try:
            m.start(timeout)
        except MountError as e:
            self.fail(str(e))
        self.m = m
        self.settle_store()
        return m

    def settle_store(self, quiet=0.3, limit=3.0):
        """ZooKeeper: wait until the zxid stops moving (topofs's session
        create/close are transactions too and may land just after the
        mount), so later revision() deltas count only data writes."""
        if not self.is_zk:
            return
        deadline = time.time() + limit
        last, since = self.store.revision(), time.time()
        while time.time() < deadline:
            time.sleep(0.1)
            cur = self.store.revision()
            if cur != last:
                last, since = cur, time.time()
            elif time.time() - since >= quiet:
                return

    def _test_failed(self):
        res = getattr(getattr(self, "_outcome", None), "result", None)
        if res is None:
            return False
        return any(t is self for t, _ in list(res.failures) + list(res.errors))

    def _umount(self, m):
        """Cleanup of every mount: unmount, then fail the test if topofs did
        not end cleanly (sanitizer report, died, non-zero exit)."""
        if m.proc is not None and m.proc.poll() is None:
            m.unmount()
        else:
            if m.proc is not None and m.returncode is None and not m.killed:
                m.died_while_mounted = True
            m.cleanup()
        problems = m.problems() if m.proc is not None else []
        if self._test_failed() or problems:
            sys.stderr.write("\n--- topofs log for %s %s (%s):\n%s\n"
                             % ("failed" if self._test_failed() else "unclean",
                                self.id(), " ".join(getattr(m, "cmd", [])), m.log()))
        if problems:
            self.fail("topofs (%s) did not end cleanly:\n%s"
                      % (" ".join(getattr(m, "cmd", [])), "\n".join(problems)))

    def p(self, rel=""):
        return self.m.path(rel)

    def umount_check_clean(self, m=None):
        m = m or self.m
        rc = m.unmount()
        self.assertEqual(rc, 0, "topofs did not exit cleanly:\n" + m.log())
        rep = m.sanitizer_report()
        self.assertIsNone(rep, "sanitizer report in the topofs log:\n%s" % rep)

    def fail_with_log(self, msg):
        logs = "\n".join("--- topofs log (%s):\n%s" % (m.mnt, m.log())
                         for m in self.mounts)
        self.fail(msg + "\n" + logs)

    def assertUnchanged(self, before, msg=""):
        after = self.snapshot()
        self.assertEqual(sorted(after), sorted(before),
                         "key set changed %s" % msg)
        for k in before:
            self.assertEqual(sha256(after[k]), sha256(before[k]),
                             "value of %s changed %s" % (k, msg))

    # -- backend-aware helpers (SPEC 2)
    @property
    def is_zk(self):
        return self.backend == "zk"

    @property
    def is_etcd(self):
        return self.backend == "etcd"

    def expected_files(self, snap=None):
        """{relpath: value} the mount shows for snap (default: the store
        now), by this backend's mapping rule."""
        return expected_view(self.snapshot() if snap is None else snap,
                             self.root, self.backend)[0]

    def expected_dirs(self, snap=None):
        return expected_view(self.snapshot() if snap is None else snap,
                             self.root, self.backend)[1]

    def node_meta(self, rel):
        """Meta of the key/znode rel (or full key) via the independent client."""
        return self.store.meta(self.key(rel))

    def mkdir_keys(self, *rels):
        """The keys that `mkdir -p rel` leaves in the store on this backend:
        none on etcd (directories live in memory), the znode and its
        ancestors below the root on ZooKeeper."""
        out = set()
        if self.is_zk:
            for rel in rels:
                parts = rel.strip("/").split("/")
                for i in range(1, len(parts) + 1):
                    out.add(self.key("/".join(parts[:i])))
        return out

    def assertOneWrite(self, rel, before, rev=None, created=False, msg=""):
        """rel was written exactly once since `before` (its Meta then, or
        None if it did not exist) and `rev` (store.revision() then).
        etcd: the revision moved by one and is the key's mod_revision, the
        key's version +1.  ZooKeeper: the data version +1 and czxid
        unchanged (a new znode: version 0), and the zxid moved by one."""
        after = self.node_meta(rel)
        self.assertIsNotNone(after, "%s: %s is not in the store" % (msg, rel))
        if rev is not None:
            self.assertEqual(self.store.revision(), rev + 1,
                             "%s: not exactly one store write" % msg)
        if before is None or created:
            if self.is_zk:
                self.assertEqual(after.version, 0, "%s: new znode %s" % (msg, rel))
            elif rev is not None:
                self.assertEqual(after.create_id, rev + 1, "%s: %s" % (msg, rel))
            return after
        if self.is_zk:
            self.assertEqual(after.version, before.version + 1,
                             "%s: data version of %s not +1" % (msg, rel))
            self.assertEqual(after.create_id, before.create_id,
                             "%s: czxid of %s changed (znode re-created?)" % (msg, rel))
        else:
            self.assertEqual(after.version, before.version + 1,
                             "%s: version of %s not +1" % (msg, rel))
            self.assertEqual(after.create_id, before.create_id,
                             "%s: create_revision of %s changed" % (msg, rel))
            if rev is not None:
                self.assertEqual(after.mod_id, rev + 1,
                                 "%s: mod_revision of %s" % (msg, rel))
        return after

    def put_ephemeral(self, rel, value, sequence=False):
        """An ephemeral node (etcd: a key with a lease; ZooKeeper: an
        ephemeral znode, sequential if asked) removed at cleanup; returns
        its relpath."""
        if self.is_zk:
            path = self.store.put_ephemeral(self.key(rel), value, sequence=sequence)
        else:
            key = self.key(rel)
            if sequence:
                key += "%010d" % random.randrange(10 ** 9)
            path = key
            handle = self.store.put_ephemeral(key, value)
            self.addCleanup(self.store.drop_ephemeral, handle)
            return path[len(self.prefix):]
        self.addCleanup(self.store.drop_ephemeral, path)
        return path[len(self.prefix):]

    def assertErrno(self, err, func, *args, **kw):
        with self.assertRaises(OSError) as cm:
            func(*args, **kw)
        self.assertEqual(cm.exception.errno, err,
                         "expected %s, got %s (%s)"
                         % (errno.errorcode.get(err), errno.errorcode.get(
                             cm.exception.errno), cm.exception))
        return cm.exception


def timed(func, *args, limit):
    """Run func(*args) in a thread: (exception or None, seconds). Raises
    AssertionError (fails the caller) if it still runs after limit seconds:
    a call into a mount must never hang."""
    box = {}

    def run():
        t0 = time.time()
        try:
            func(*args)
            box["err"] = None
        except BaseException as e:  # noqa: B902
            box["err"] = e
        box["t"] = time.time() - t0
    th = threading.Thread(target=run, daemon=True)
    th.start()
    th.join(limit)
    if th.is_alive():
        raise AssertionError("%s%r hung (> %ss)" % (func.__name__, args, limit))
    return box["err"], box["t"]


def write_file(path, data, mode="wb"):
    with open(path, mode) as f:
        f.write(data)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def _raise(err):
    raise err


def walk_files(top, strict=True):
    """relpath -> lstat for every non-directory under top; dirs set.
    strict: a directory that cannot be listed raises its OSError (os.walk
    would silently skip it, hiding an EIO from the mount)."""
    files, dirs = {}, set()
    for dp, dn, fn in os.walk(top, onerror=_raise if strict else None):
        rel = os.path.relpath(dp, top)
        for d in dn:
            dirs.add(os.path.normpath(os.path.join(rel, d)))
        for f in fn:
            r = os.path.normpath(os.path.join(rel, f))
            files[r] = os.lstat(os.path.join(dp, f))
    return files, dirs


def expected_files(kvs, root):
    """Map a {full key: value} under root to the files the mount should
    show: {relpath: value}, with `.topofs-data` for keys that are prefixes."""
    rels = {k[len(root) + 1:]: v for k, v in kvs.items()
            if k.startswith(root + "/")}
    prefixes = set()
    for r in rels:
        parts = r.split("/")
        for i in range(1, len(parts)):
            prefixes.add("/".join(parts[:i]))
    out = {}
    for r, v in rels.items():
        out[(r + "/.topofs-data") if r in prefixes else r] = v
    return out


def expected_view(nodes, root, backend=None):
    """What a mount of root shows for nodes ({full key or znode path:
    value}), by the backend's rule (SPEC 2): (files {relpath: value},
    dirs {relpath}).
    etcd: every key is a file, every proper prefix a directory; a key that
    is also a prefix is a directory with its value in .topofs-data.
    zk: nodes holds every znode (parents too, as Store.range() gives them);
    a znode with children is a directory whose data, if not empty, is its
    .topofs-data; a znode without children is a file (even with empty data).
    The root itself is not in nodes."""
    backend = backend or BACKEND
    rels = {k[len(root) + 1:]: v for k, v in nodes.items()
            if k.startswith(root + "/")}
    prefixes = set()
    for r in rels:
        parts = r.split("/")
        for i in range(1, len(parts)):
            prefixes.add("/".join(parts[:i]))
    files = {}
    for r, v in rels.items():
        if r in prefixes:
            if backend != "zk" or v:
                files[r + "/.topofs-data"] = v
        else:
            files[r] = v
    return files, prefixes


def zk_name_ok(name):
    """False if ZooKeeper refuses name as a path segment (its PathUtils:
    control characters, U+007F-U+009F, UTF-16 surrogates - so every
    character outside the BMP - and U+E000-U+F8FF, U+FFF0-U+FFFF)."""
    if name in ("", ".", ".."):
        return False
    for ch in name:
        c = ord(ch)
        if c <= 0x1F or 0x7F <= c <= 0x9F or 0xD800 <= c <= 0xF8FF \
                or 0xFFF0 <= c <= 0xFFFF or c > 0xFFFF:
            return False
    return True


def backends(*names):
    """Decorator: run this test only on the given backends (skipped, with
    the reason, elsewhere).  For behaviour that exists on one backend only
    (etcd revisions, leases); where both have a rule, branch on
    self.backend instead and check each rule."""
    def deco(func):
        def wrapper(self, *a, **kw):
            if self.backend not in names:
                self.skipTest("%s only" % "/".join(names))
            return func(self, *a, **kw)
        wrapper.__name__ = func.__name__
        wrapper.__doc__ = func.__doc__
        return wrapper
    return deco


class ZkTestCase(TopofsTestCase):
    """A ZooKeeper-only test class: its root exists before each test
    (ZooKeeper has no implicit parents) and is removed after it."""

    BACKEND = "zk"

    def setUp(self):
        super().setUp()
        self.store.zk.ensure_path(self.root)
        self.addCleanup(self._drop_root)

    def _drop_root(self):
        try:
            self.store.delete_prefix(self.root)
        except Exception:
            pass


def main():
    try:
        unittest.main(verbosity=2)
    finally:
        stop_module_server()
