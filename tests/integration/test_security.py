#!/usr/bin/python3
"""Secure access (issue 8): TLS to etcd, etcd users and roles, ZooKeeper
digest ACLs, read-only mounts, owners, allow_other, nothing read or written
outside the root, and no secret in a log or in `ps -ef`.

Every check has its positive and its negative side.  Certificates are made
with openssl at test time; the TLS etcd and the etcd with users are servers
of this module's own (stopped by pid at the end); every effect is checked
with an independent client (the etcd gateway over TLS / as root, kazoo).

Classes: EtcdTlsTest, EtcdAuthTest (etcd only), ZkAclTest (ZooKeeper only),
HygieneTest (both backends).  Runs as root (allow_other is checked with a
process of the user nobody)."""

import errno
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import read_file, write_file  # noqa: E402

NOBODY = 65534

# Every secret any test uses; none may show in a log or in ps.
SECRETS = set()


def secret(prefix):
    s = "%s-%016x" % (prefix, random.getrandbits(64))
    SECRETS.add(s)
    return s


def secret_file(d, name, text):
    """A 0600 file holding text (one line)."""
    p = os.path.join(d, name)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    return p


def ps_ef():
    return subprocess.run(["ps", "-ef"], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, check=True
                          ).stdout.decode("utf-8", "replace")


def wait_for(cond, timeout=5.0, step=0.1):
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v or time.time() >= deadline:
            return v
        time.sleep(step)


class SecureCase(h.TopofsTestCase):
    """Checks shared by the classes: no secret leaks, refusals."""

    def assertNoSecrets(self, text, where):
        for s in SECRETS:
            self.assertNotIn(s, text, "a secret shows in %s" % where)

    def mount(self, *a, **kw):
        m = super().mount(*a, **kw)
        self.assertNoSecrets(ps_ef(), "ps -ef while mounted")
        self.addCleanup(self._check_log, m)
        return m

    def _check_log(self, m):
        # runs after the unmount (cleanups are last in, first out)
        self.assertNoSecrets(m.full_log(), "the topofs log")

    def assertRefused(self, args, want):
        """topofs ARGS MNT ends before mounting: non-zero exit, one line on
        stderr containing `want`, no secret in it, nothing mounted."""
        mnt = h.make_tempdir("topofs-sec-mnt-")
        self.addCleanup(h.remove_tempdir, mnt)
        r = h.run_topofs(["-f"] + list(args) + [mnt], timeout=30)
        err = r.stderr.decode("utf-8", "replace")
        self.assertFalse(h.is_mounted(mnt), "mounted although refused")
        self.assertNotEqual(r.returncode, 0, err)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        self.assertEqual(len(lines), 1, "want one line on stderr:\n" + err)
        self.assertIn(want, lines[0])
        self.assertTrue(lines[0].startswith("topofs: "), lines[0])
        self.assertNoSecrets(err + r.stdout.decode("utf-8", "replace"),
                             "a refusal")
        return lines[0]


# --------------------------------------------------------------------------
# TLS to etcd

def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_pki(d):
    """Two CAs; a server certificate for IP 127.0.0.1 and a client
    certificate from the first; a client certificate from the second.
    {name: path}.  The server certificate is a client one too: etcd's
    gateway connects to its own gRPC port with it (--client-cert-auth)."""
    def ca(name):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes",
                "-keyout", name + ".key", "-out", name + ".crt", "-days", "2",
                "-subj", "/CN=topofs test " + name, cwd=d)

    def cert(name, ca_name, ext):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout",
                name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name,
                cwd=d)
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca_name + ".crt",
                "-CAkey", ca_name + ".key", "-CAcreateserial", "-out",
                name + ".crt", "-days", "2", "-extfile", name + ".ext", cwd=d)

    ca("ca")
    ca("ca2")
    cert("server", "ca", "subjectAltName=IP:127.0.0.1\n"
         "extendedKeyUsage=serverAuth,clientAuth\n")
    cert("client", "ca", "extendedKeyUsage=clientAuth\n")
    cert("client2", "ca2", "extendedKeyUsage=clientAuth\n")
    out = {}
    for n in ("ca", "ca2", "server", "client", "client2"):
        out[n + ".crt"] = os.path.join(d, n + ".crt")
        out[n + ".key"] = os.path.join(d, n + ".key")
    for p in out.values():
        os.chmod(p, 0o600 if p.endswith(".key") else 0o644)
    os.chmod(d, 0o755)
    return out


class EtcdTlsTest(SecureCase):

    @classmethod
    def setUpClass(cls):
        if h.BACKEND != "etcd":
            raise unittest.SkipTest("etcd only")
        if not shutil.which("openssl"):
            raise unittest.SkipTest("no openssl")
        super().setUpClass()
        cls.pkidir = h.make_tempdir("topofs-pki-")
        cls.pki = make_pki(cls.pkidir)
        cls.tls_server = h.EtcdServer(tls={
            "cert": cls.pki["server.crt"], "key": cls.pki["server.key"],
            "ca": cls.pki["ca.crt"], "client_cert": cls.pki["client.crt"],
            "client_key": cls.pki["client.key"]}).start()
        cls.addClassCleanup(cls.tls_server.stop)
        cls.addClassCleanup(h.remove_tempdir, cls.pkidir)
        cls.server = cls.tls_server
        cls.store = cls.tls_server.client()

    def tls_flags(self, cert="client", ca="ca", dash=False):
        flag = "--topo-etcd-tls-" if dash else "--topo_etcd_tls_"
        out = []
        if cert:
            out += [flag + "cert=" + self.pki[cert + ".crt"],
                    flag + "key=" + self.pki[cert + ".key"]]
        if ca:
            out += [flag + "ca=" + self.pki[ca + ".crt"]]
        return out

    def test_server_wants_tls_and_a_client_certificate(self):
        """The control: the server really refuses plain http and a TLS
        client without a certificate."""
        plain = h.EtcdClient("http://" + self.server.address, timeout=3)
        with self.assertRaises(Exception):
            plain.call("/v3/maintenance/status", {})
        import ssl
        nocert = h.EtcdClient(self.server.endpoint, timeout=3,
                              ssl_context=ssl.create_default_context(
                                  cafile=self.pki["ca.crt"]))
        with self.assertRaises(Exception):
            nocert.call("/v3/kv/range", {"key": h.b64e("x")})

    def test_mount_over_tls_reads_and_writes(self):
        self.load({"a": b"alpha\n", "d/b": b"bravo\n"})
        self.mount(self.tls_flags())
        self.assertEqual(read_file(self.p("a")), b"alpha\n")
        self.assertEqual(sorted(os.listdir(self.p("d"))), ["b"])
        write_file(self.p("d/new"), b"over tls\n")
        self.assertEqual(self.store.get(self.key("d/new")), b"over tls\n")
        # the watch stream goes over TLS too
        self.store.put(self.key("d/other"), b"from outside\n")
        self.assertTrue(wait_for(lambda: os.path.exists(self.p("d/other"))),
                        "another client's key did not show")

    def test_dash_spelling_and_flag_value_form(self):
        self.load({"a": b"alpha\n"})
        args = [self.server.source(self.root)]
        for f in self.tls_flags(dash=True):
            name, value = f.split("=", 1)
            args += [name, value]
        self.mount(args=args)
        self.assertEqual(read_file(self.p("a")), b"alpha\n")

    def test_refused_without_client_certificate(self):
        self.load({"a": b"alpha\n"})
        self.assertRefused(self.server.topofs_args(self.root)
                           + self.tls_flags(cert=None),
                           "refused the TLS connection (does it want a "
                           "client certificate?")

    def test_refused_server_certificate_of_another_ca(self):
        self.load({"a": b"alpha\n"})
        self.assertRefused(self.server.topofs_args(self.root)
                           + self.tls_flags(ca="ca2"),
                           "its certificate is not trusted (CA: %s"
                           % self.pki["ca2.crt"])
        # no CA given: the system's CAs do not know ours either
        self.assertRefused(self.server.topofs_args(self.root)
                           + self.tls_flags(ca=None),
                           "its certificate is not trusted (CA: the "
                           "system's CAs")

    def test_refused_server_certificate_for_another_host(self):
        """The certificate names IP 127.0.0.1 only: "localhost" does not
        match, although it is the same server and CA."""
        self.load({"a": b"alpha\n"})
        args = ["--topo_global_server_address=localhost:%d" % self.server.port,
                "--topo_global_root=" + self.root] + self.tls_flags()
        line = self.assertRefused(args, "its certificate is not trusted")
        self.assertIn("name the host localhost", line)

    def test_refused_client_certificate_of_another_ca(self):
        self.load({"a": b"alpha\n"})
        self.assertRefused(self.server.topofs_args(self.root)
                           + self.tls_flags(cert="client2"),
                           "refused the TLS connection with the client "
                           "certificate " + self.pki["client2.crt"])

    def test_refused_bad_or_unreadable_key(self):
        self.load({"a": b"alpha\n"})
        base = self.server.topofs_args(self.root)
        ca = "--topo_etcd_tls_ca=" + self.pki["ca.crt"]
        cert = "--topo_etcd_tls_cert=" + self.pki["client.crt"]
        missing = os.path.join(self.pkidir, "missing.key")
        self.assertRefused(base + [cert, "--topo_etcd_tls_key=" + missing, ca],
                           "cannot read --topo_etcd_tls_key file %s: No such "
                           "file or directory" % missing)
        # a key that is not the certificate's
        self.assertRefused(base + [cert, "--topo_etcd_tls_key="
                                   + self.pki["client2.key"], ca],
                           "cannot use the client certificate %s with the "
                           "key %s" % (self.pki["client.crt"],
                                       self.pki["client2.key"]))
        self.assertRefused(base + ["--topo_etcd_tls_key="
                                   + self.pki["client.key"], ca],
                           "--topo_etcd_tls_key needs --topo_etcd_tls_cert")
        # a key its user may not read (0600, root's): run as nobody
        if os.getuid() != 0:
            self.skipTest("needs root for the unreadable-key case")
        mnt = h.make_tempdir("topofs-sec-mnt-")   # root's, 0700
        self.addCleanup(h.remove_tempdir, mnt)
        r = subprocess.run([h.topofs_bin(), "-f"] + base
                           + [cert, "--topo_etcd_tls_key="
                              + self.pki["client.key"], ca, mnt],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           user=NOBODY, group=NOBODY, extra_groups=[],
                           timeout=30)
        err = r.stderr.decode()
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(err.strip(), "topofs: cannot read --topo_etcd_tls_key "
                         "file %s: Permission denied" % self.pki["client.key"])


# --------------------------------------------------------------------------
# etcd users

def etcdctl(server, *args, user=None):
    cmd = ["etcdctl", "--endpoints=" + server.endpoint, "--dial-timeout=5s"]
    if user:
        # --user takes "name:password"; the test's own process, not
        # topofs's (the ps scan only runs while topofs is mounted).
        cmd += ["--user", "%s:%s" % user]
    r = subprocess.run(cmd + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30,
                       env=dict(os.environ, ETCDCTL_API="3"))
    if r.returncode != 0:
        raise AssertionError("etcdctl %s: %s" % (" ".join(args),
                                                 r.stdout.decode()))
    return r.stdout.decode()


class EtcdAuthTest(SecureCase):
    """etcd with auth enabled: root, a read-only and a read-write user
    whose roles are granted on each test's prefix ROOT/ only (so nothing
    outside it may be read).  --auth-token-ttl=2: tokens expire fast."""

    TTL = 2

    @classmethod
    def setUpClass(cls):
        if h.BACKEND != "etcd":
            raise unittest.SkipTest("etcd only")
        super().setUpClass()
        cls.auth_server = h.EtcdServer(
            extra_args=["--auth-token-ttl=%d" % cls.TTL]).start()
        cls.addClassCleanup(cls.auth_server.stop)
        cls.server = cls.auth_server
        cls.rootpw = secret("rootpw")
        cls.readpw = secret("readpw")
        cls.writepw = secret("writepw")
        root = ("root", cls.rootpw)
        etcdctl(cls.server, "user", "add", "root", "--new-user-password",
                cls.rootpw)
        etcdctl(cls.server, "role", "add", "root")
        etcdctl(cls.server, "user", "grant-role", "root", "root")
        for user, pw, role in (("reader", cls.readpw, "topofs-ro"),
                               ("writer", cls.writepw, "topofs-rw")):
            etcdctl(cls.server, "role", "add", role)
            etcdctl(cls.server, "user", "add", user, "--new-user-password", pw)
            etcdctl(cls.server, "user", "grant-role", user, role)
        etcdctl(cls.server, "auth", "enable", user=root)
        cls.server.auth = root
        cls.store = cls.server.client()
        cls.pwdir = h.make_tempdir("topofs-pw-")
        cls.addClassCleanup(h.remove_tempdir, cls.pwdir)
        cls.readpw_file = secret_file(cls.pwdir, "reader.pw", cls.readpw)
        cls.writepw_file = secret_file(cls.pwdir, "writer.pw", cls.writepw)
        cls.badpw_file = secret_file(cls.pwdir, "bad.pw", secret("badpw"))

    def setUp(self):
        super().setUp()
        root = ("root", self.rootpw)
        etcdctl(self.server, "role", "grant-permission", "--prefix",
                "topofs-ro", "read", self.prefix, user=root)
        etcdctl(self.server, "role", "grant-permission", "--prefix",
                "topofs-rw", "readwrite", self.prefix, user=root)
        # outside the root's prefix, next to it: never to be read
        self.sibling = self.root + "-sibling"
        self.store.put(self.sibling, secret("sibling"))
        self.addCleanup(self.store.delete, self.sibling)
        self.load({"a": b"alpha\n", "d/b": b"bravo\n", "d/c": b"charlie\n"})

    def user(self, name):
        pw = {"reader": self.readpw_file, "writer": self.writepw_file,
              "bad": self.badpw_file}[name]
        return ["-o", "etcd_user=%s,etcd_password_file=%s"
                % ("reader" if name == "bad" else name, pw)]

    def test_reader_reads_but_cannot_write(self):
        before = self.snapshot()
        rev = self.store.revision()
        self.mount(self.user("reader"))
        self.assertEqual(read_file(self.p("a")), b"alpha\n")
        self.assertEqual(sorted(os.listdir(self.p())), ["a", "d"])
        self.assertEqual(read_file(self.p("d/c")), b"charlie\n")

        def write_close(path, data, flags):
            fd = os.open(path, flags, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)  # the store is written here

        self.assertErrno(errno.EACCES, write_close, self.p("a"), b"x",
                         os.O_WRONLY | os.O_TRUNC)
        self.assertErrno(errno.EACCES, write_close, self.p("new"), b"x",
                         os.O_WRONLY | os.O_CREAT)
        self.assertErrno(errno.EACCES, os.unlink, self.p("d/b"))
        self.assertErrno(errno.EACCES, os.rename, self.p("a"), self.p("z"))
        os.mkdir(self.p("nd"))   # etcd: in memory only, nothing written
        self.assertErrno(errno.EACCES, write_close, self.p("nd/f"), b"x",
                         os.O_WRONLY | os.O_CREAT)
        # the store is unchanged, as root sees it
        self.assertUnchanged(before)
        self.assertEqual(self.store.revision(), rev)
        # and the mount still shows the store's values
        self.assertEqual(read_file(self.p("a")), b"alpha\n")
        self.assertFalse(os.path.exists(self.p("new")))

    def test_writer_writes_and_sees_changes(self):
        self.mount(self.user("writer"))
        write_file(self.p("a"), b"ALPHA\n")
        write_file(self.p("d/new"), b"new\n")
        os.rename(self.p("d/b"), self.p("d/b2"))
        os.unlink(self.p("d/c"))
        snap = self.snapshot()
        self.assertEqual(snap, {self.key("a"): b"ALPHA\n",
                                self.key("d/new"): b"new\n",
                                self.key("d/b2"): b"bravo\n"})
        # the watch stream carries the token too
        self.store.put(self.key("d/outside"), b"o\n")
        self.assertTrue(wait_for(lambda: os.path.exists(self.p("d/outside"))))

    def test_nothing_outside_the_prefix(self):
        """Roles allow ROOT/ only: mounting, listing, the watch and writes
        work, so no request reached outside the prefix; the sibling key
        ROOT-sibling is neither shown nor changed."""
        sib = self.store.get(self.sibling)
        self.mount(self.user("writer"))
        files, dirs = h.walk_files(self.p())
        self.assertEqual(sorted(files), ["a", "d/b", "d/c"])
        write_file(self.p("x"), b"x\n")
        os.unlink(self.p("x"))
        self.assertEqual(self.store.get(self.sibling), sib)
        self.assertNotIn("watch", self.m.log())   # the watch started fine

    def test_token_renewed_after_expiry_and_restart(self):
        self.mount(self.user("writer") + ["-d"])   # -d: debug logs too
        self.assertEqual(read_file(self.p("a")), b"alpha\n")
        time.sleep(3 * self.TTL)    # idle: etcd forgets the token
        write_file(self.p("after-ttl"), b"1\n")
        self.assertEqual(self.store.get(self.key("after-ttl")), b"1\n")
        # a restart forgets every token: the watch stream reconnects
        self.server.pause()
        self.server.resume()
        self.store.put(self.key("after-restart"), b"2\n")
        self.assertTrue(
            wait_for(lambda: os.path.exists(self.p("after-restart")), 15),
            "the watch did not come back:\n" + self.m.log())
        write_file(self.p("a"), b"again\n")
        self.assertEqual(self.store.get(self.key("a")), b"again\n")
        self.assertIn("new token for user writer", self.m.log())

    def test_wrong_password_refused(self):
        self.assertRefused(self.server.topofs_args(self.root)
                           + self.user("bad"),
                           "authentication failed for user reader (wrong "
                           "user name or password)")

    def test_no_user_refused(self):
        self.assertRefused(self.server.topofs_args(self.root),
                           "not authorised to read the keys under %s/"
                           % self.root)

    def test_password_never_on_the_command_line(self):
        self.assertRefused(self.server.topofs_args(self.root)
                           + ["-o", "etcd_user=reader,etcd_password="
                              + self.readpw],
                           "no password on the command line")

    def test_bad_password_file_refused(self):
        two = secret_file(self.pwdir, "two.pw", "a\nb")
        self.assertRefused(self.server.topofs_args(self.root)
                           + ["-o", "etcd_user=reader,etcd_password_file="
                              + two],
                           "etcd password file %s must hold one non-empty "
                           "line" % two)
        missing = os.path.join(self.pwdir, "missing")
        self.assertRefused(self.server.topofs_args(self.root)
                           + ["-o", "etcd_user=reader,etcd_password_file="
                              + missing],
                           "cannot read etcd password file %s" % missing)


# --------------------------------------------------------------------------
# ZooKeeper digest ACLs

class ZkAclTest(SecureCase):
    """Znodes protected by digest ACLs (kazoo make_digest_acl)."""

    @classmethod
    def setUpClass(cls):
        if h.BACKEND != "zk":
            raise unittest.SkipTest("ZooKeeper only")
        super().setUpClass()
        cls.alicepw = secret("alicepw")
        cls.authdir = h.make_tempdir("topofs-zkauth-")
        cls.addClassCleanup(h.remove_tempdir, cls.authdir)
        cls.alice_file = secret_file(cls.authdir, "alice",
                                     "digest:alice:" + cls.alicepw)
        cls.bob_file = secret_file(cls.authdir, "bob",
                                   "digest:alice:" + secret("wrongpw"))
        # the independent client sees everything alice may
        cls.store.zk.add_auth("digest", "alice:" + cls.alicepw)
        cls.store.zk.ensure_path("/t")   # open, for every test's root

    def setUp(self):
        super().setUp()
        from kazoo.security import make_digest_acl, OPEN_ACL_UNSAFE
        self.alice_acl = [make_digest_acl("alice", self.alicepw, all=True)]
        self.world_read = [make_digest_acl("alice", self.alicepw, all=True)]
        from kazoo.security import ACL, Id, Permissions
        self.world_read.append(ACL(Permissions.READ, Id("world", "anyone")))
        self.open_acl = OPEN_ACL_UNSAFE
        self.alice = self.store.zk

    def kazoo(self, auth):
        from kazoo.client import KazooClient
        kw = {"auth_data": [("digest", "alice:" + self.alicepw)]} if auth else {}
        zk = KazooClient(hosts=self.server.address, timeout=10, **kw)
        zk.start(timeout=15)
        self.addCleanup(zk.close)
        self.addCleanup(zk.stop)
        return zk

    def make(self, rel, data, acl):
        path = self.key(rel) if rel else self.root
        self.alice.create(path, data, acl=acl, makepath=True)
        return path

    def acl_of(self, path):
        return self.alice.get_acls(path)[0]

    def test_digest_auth_and_new_znodes_take_the_parent_acl(self):
        self.make("", b"", self.alice_acl)
        self.make("a", b"alpha\n", self.alice_acl)
        self.make("d", b"", self.alice_acl)
        self.make("d/b", b"bravo\n", self.alice_acl)
        self.mount(["--topo_zk_auth_file=" + self.alice_file])
        self.assertEqual(read_file(self.p("a")), b"alpha\n")
        self.assertEqual(read_file(self.p("d/b")), b"bravo\n")
        write_file(self.p("new"), b"n\n")
        os.mkdir(self.p("nd"))
        write_file(self.p("nd/f"), b"f\n")
        write_file(self.p("d/x"), b"x\n")
        os.rename(self.p("d/x"), self.p("d/y"))
        for rel in ("new", "nd", "nd/f", "d/y"):
            self.assertEqual(self.acl_of(self.key(rel)), self.alice_acl, rel)
        self.assertEqual(self.alice.get(self.key("nd/f"))[0], b"f\n")
        # the protected tree stays protected: without auth, nothing
        from kazoo.exceptions import NoAuthError
        anon = self.kazoo(auth=False)
        for rel in ("new", "nd/f", "d/y"):
            with self.assertRaises(NoAuthError, msg=rel):
                anon.get(self.key(rel))

    def test_without_auth_refused_before_mounting(self):
        self.make("", b"", self.alice_acl)
        self.make("a", b"alpha\n", self.alice_acl)
        self.assertRefused(self.server.topofs_args(self.root),
                           "not allowed to read root %s in ZooKeeper (no "
                           "--topo_zk_auth_file given)" % self.root)
        self.assertRefused(self.server.topofs_args(self.root)
                           + ["--topo_zk_auth_file=" + self.bob_file],
                           "not allowed to read root %s in ZooKeeper (with "
                           "the credentials in %s)" % (self.root,
                                                       self.bob_file))

    def write_close(self, path, data, flags):
        fd = os.open(path, flags, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)  # the store is written here

    def test_noauth_is_eacces_everywhere(self):
        """World may only read; alice may do all. Mounted with the wrong
        password, reads work and every write the store refuses is EACCES;
        nothing changes."""
        self.make("", b"", self.world_read)
        self.make("pub", b"public\n", self.world_read)
        self.make("dir", b"", self.world_read)
        self.make("dir/f", b"f\n", self.world_read)
        before = self.snapshot()
        self.mount(["--topo_zk_auth_file=" + self.bob_file])
        rev = self.store.revision()
        self.assertEqual(read_file(self.p("pub")), b"public\n")
        self.assertEqual(read_file(self.p("dir/f")), b"f\n")
        E, wc = errno.EACCES, self.write_close
        self.assertErrno(E, wc, self.p("pub"), b"x", os.O_WRONLY | os.O_TRUNC)
        self.assertErrno(E, wc, self.p("new"), b"x", os.O_WRONLY | os.O_CREAT)
        self.assertErrno(E, wc, self.p("dir/new"), b"x",
                         os.O_WRONLY | os.O_CREAT)
        self.assertErrno(E, os.mkdir, self.p("nd"))
        self.assertErrno(E, os.unlink, self.p("dir/f"))
        self.assertErrno(E, os.rmdir, self.p("dir"))
        self.assertErrno(E, os.rename, self.p("pub"), self.p("z"))
        self.assertErrno(E, os.rename, self.p("dir/f"), self.p("dir/g"))
        self.assertUnchanged(before)
        # (ZooKeeper gives a refused write a zxid of its own, an error
        # transaction: the zxid moves, the data does not)
        for rel in ("pub", "dir", "dir/f"):
            self.assertLessEqual(self.store.meta(self.key(rel)).mod_id, rev)
        self.assertEqual(read_file(self.p("pub")), b"public\n")

    def test_protected_subtree_is_eacces(self):
        """A znode only alice may read, below a world-readable root: its
        contents never show to another user (EACCES), but the rest of the
        tree does: the protected znode shows by name only, as a directory
        with no permissions that cannot be opened or listed."""
        self.make("", b"", self.world_read)
        self.make("pub", b"public\n", self.world_read)
        self.make("private", b"", self.alice_acl)
        self.make("private/s", b"secret\n", self.alice_acl)
        self.make("private/t", b"", self.alice_acl)
        self.make("private/t/u", b"secret too\n", self.alice_acl)
        self.mount(["--topo_zk_auth_file=" + self.bob_file])
        self.assertEqual(sorted(os.listdir(self.p())), ["private", "pub"])
        self.assertEqual(read_file(self.p("pub")), b"public\n")
        st = os.stat(self.p("private"))
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0)
        self.assertErrno(errno.EACCES, os.listdir, self.p("private"))
        self.assertErrno(errno.EACCES, os.open, self.p("private"), os.O_RDONLY)
        for rel in ("private/s", "private/t/u", "private/nope"):
            self.assertErrno(errno.EACCES, read_file, self.p(rel))
            self.assertErrno(errno.EACCES, os.stat, self.p(rel))
        self.assertErrno(errno.EACCES, os.getxattr, self.p("private"),
                         "user.topo.version")
        # tar takes what it may read and reports the rest
        r = subprocess.run(["tar", "-C", self.p(), "-cf", "-", "."],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"Permission denied", r.stderr)
        names = subprocess.run(["tar", "-tf", "-"], input=r.stdout, check=True,
                               stdout=subprocess.PIPE).stdout.split()
        self.assertIn(b"./pub", names)
        self.assertNotIn(b"./private/s", names)
        self.assertNotIn(b"secret", r.stdout)
        self.assertNotIn("secret", self.m.log())
        # alice sees it all
        m = self.mount(["--topo_zk_auth_file=" + self.alice_file])
        self.assertEqual(read_file(m.path("private/s")), b"secret\n")
        self.assertEqual(read_file(m.path("private/t/u")), b"secret too\n")

    def test_auth_again_after_reconnect_and_new_session(self):
        """A tree only alice may use. The server stopped and started: the
        session survives and the client sends its auth again. topofs
        stopped (SIGSTOP, by its pid) past the session timeout: the server
        expires the session, and topofs's new session must add the auth
        again."""
        self.make("", b"", self.alice_acl)
        self.make("a", b"alpha\n", self.alice_acl)
        m = self.mount(["--topo_zk_auth_file=" + self.alice_file,
                        "-o", "timeout=2"])
        self.assertEqual(read_file(self.p("a")), b"alpha\n")
        self.server.pause()
        self.server.resume()
        self.assertTrue(wait_for(lambda: self._writes(self.p("b"), b"b\n"),
                                 20), m.log())
        self.assertEqual(self.alice.get(self.key("b"))[0], b"b\n")
        # the session timeout is 4 s (-o timeout=2, ZooKeeper's minimum)
        os.kill(m.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(10)
        finally:
            os.kill(m.proc.pid, signal.SIGCONT)
        self.assertTrue(wait_for(lambda: self._writes(self.p("c"), b"c\n"),
                                 20), m.log())
        self.assertIn("session expired", m.log())
        self.assertEqual(self.alice.get(self.key("c"))[0], b"c\n")
        self.assertEqual(self.acl_of(self.key("c")), self.alice_acl)
        self.assertEqual(read_file(self.p("a")), b"alpha\n")

    @staticmethod
    def _writes(path, data):
        try:
            write_file(path, data)
            return True
        except OSError:
            return False


# --------------------------------------------------------------------------
# Mount hygiene (both backends)

class HygieneTest(SecureCase):

    def setUp(self):
        super().setUp()
        self.load({"a": b"alpha\n", "d/b": b"bravo\n", "d/e/c": b"charlie\n"})

    def test_read_only_mount_is_erofs_everywhere(self):
        before = self.snapshot()
        self.mount(["-o", "ro"])
        rev = self.store.revision()   # (ZooKeeper: after its session)
        for rel in ("a", "d/b"):
            self.assertEqual(stat.S_IMODE(os.stat(self.p(rel)).st_mode), 0o444)
        for rel in ("", "d", "d/e"):
            self.assertEqual(stat.S_IMODE(os.stat(self.p(rel)).st_mode), 0o555)
        self.assertTrue(os.statvfs(self.p()).f_flag & os.ST_RDONLY)
        self.assertEqual(read_file(self.p("d/e/c")), b"charlie\n")
        E = errno.EROFS
        self.assertErrno(E, os.open, self.p("a"), os.O_WRONLY)
        self.assertErrno(E, os.open, self.p("a"), os.O_RDWR | os.O_APPEND)
        self.assertErrno(E, os.open, self.p("new"), os.O_WRONLY | os.O_CREAT,
                         0o644)
        self.assertErrno(E, os.truncate, self.p("a"), 0)
        self.assertErrno(E, os.unlink, self.p("a"))
        self.assertErrno(E, os.mkdir, self.p("nd"))
        self.assertErrno(E, os.rmdir, self.p("d/e"))
        self.assertErrno(E, os.rename, self.p("a"), self.p("z"))
        self.assertErrno(E, os.rename, self.p("d"), self.p("dd"))
        self.assertErrno(E, os.setxattr, self.p("a"), "user.x", b"1")
        self.assertErrno(E, os.symlink, "a", self.p("ln"))
        self.assertUnchanged(before)
        self.assertEqual(self.store.revision(), rev)

    def test_rw_is_writable_and_last_of_ro_rw_counts(self):
        self.mount(["-o", "ro", "-o", "rw"])
        self.assertEqual(stat.S_IMODE(os.stat(self.p("a")).st_mode), 0o644)
        write_file(self.p("a"), b"A\n")
        self.assertEqual(self.store.get(self.key("a")), b"A\n")

    def test_owner_is_the_mounting_user_unless_uid_gid(self):
        self.mount()
        st = os.stat(self.p("a"))
        self.assertEqual((st.st_uid, st.st_gid), (os.getuid(), os.getgid()))
        self.umount_check_clean()
        self.mount(["-o", "uid=4321,gid=8765"])
        for rel in ("", "a", "d", "d/e/c"):
            st = os.stat(self.p(rel))
            self.assertEqual((st.st_uid, st.st_gid), (4321, 8765), rel)

    def as_nobody(self, code):
        """Run python code as the user nobody: (exit status, output)."""
        r = subprocess.run(["/usr/bin/python3", "-c", code],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           user=NOBODY, group=NOBODY, extra_groups=[],
                           timeout=30)
        return r.returncode, r.stdout.decode()

    PROBE = ("import errno, os, sys\n"
             "def t(f, *a):\n"
             "    try:\n"
             "        f(*a)\n"
             "        return 'ok'\n"
             "    except OSError as e:\n"
             "        return errno.errorcode[e.errno]\n"
             "def w(p):\n"
             "    with open(p, 'wb') as f:\n"
             "        f.write(b'x')\n"
             "def r(p):\n"
             "    with open(p, 'rb') as f:\n"
             "        return f.read()\n"
             "m = sys.argv[1] if len(sys.argv) > 1 else %r\n"
             "print(t(os.stat, m), t(r, m + '/a'), t(w, m + '/a'),"
             " t(w, m + '/new'), t(os.unlink, m + '/d/b'))\n")

    def test_allow_other_only_when_asked(self):
        if os.getuid() != 0:
            self.skipTest("needs root to act as another user")
        before = self.snapshot()
        self.mount()
        rc, out = self.as_nobody(self.PROBE % self.p())
        self.assertEqual(out.split(), ["EACCES"] * 5, out)
        self.umount_check_clean()
        self.mount(["-o", "allow_other"])
        with open("/proc/self/mountinfo") as f:
            line = [ln for ln in f if (" %s " % self.p()) in ln][0]
        self.assertIn("default_permissions", line)
        self.assertIn("allow_other", line)
        rc, out = self.as_nobody(self.PROBE % self.p())
        # nobody reads (0644, 0755) but may not write: the kernel checks
        self.assertEqual(out.split(), ["ok", "ok", "EACCES", "EACCES",
                                       "EACCES"], out)
        self.assertUnchanged(before)
        # the mounting user still writes
        write_file(self.p("a"), b"mine\n")
        self.assertEqual(self.store.get(self.key("a")), b"mine\n")

    @h.backends("zk")
    def test_zk_nothing_outside_the_root(self):
        """The root's parent gives us no right at all, a sibling is open:
        listing, reading, writing, mkdir, rename and delete below the root
        need nothing outside it, and the sibling is untouched."""
        from kazoo.security import make_digest_acl, OPEN_ACL_UNSAFE
        zk = self.store.zk
        eve = secret("evepw")
        inner = self.root + "/inner"
        zk.create(inner + "/x/y", b"y\n", makepath=True, acl=OPEN_ACL_UNSAFE)
        zk.create(self.root + "/sibling", b"s\n", acl=OPEN_ACL_UNSAFE)
        zk.set_acls(self.root, [make_digest_acl("eve", eve, all=True)])
        before = zk.get(self.root + "/sibling")
        self.mount(root=inner)
        self.assertEqual(read_file(self.p("x/y")), b"y\n")
        write_file(self.p("x/z"), b"z\n")
        os.mkdir(self.p("n"))
        write_file(self.p("n/f"), b"f\n")
        os.rename(self.p("n/f"), self.p("x/f"))
        os.unlink(self.p("x/y"))
        os.rmdir(self.p("n"))
        self.assertEqual(sorted(zk.get_children(inner + "/x")), ["f", "z"])
        after = zk.get(self.root + "/sibling")
        self.assertEqual((after[0], after[1].mzxid), (before[0], before[1].mzxid))

    @h.backends("etcd")
    def test_etcd_nothing_outside_the_root(self):
        """Keys next to the root (ROOT-x, ROOT.x, ROOTx, ROOT's parent) are
        neither shown nor changed by anything done in the mount."""
        others = {self.root + "-x": b"1", self.root + ".x": b"2",
                  self.root + "x": b"3", self.root + "-x/y": b"4"}
        for k, v in others.items():
            self.store.put(k, v)
            self.addCleanup(self.store.delete, k)
        metas = {k: self.store.get_meta(k) for k in others}
        self.mount()
        files, dirs = h.walk_files(self.p())
        self.assertEqual(sorted(files), ["a", "d/b", "d/e/c"])
        write_file(self.p("new"), b"n\n")
        os.rename(self.p("d"), self.p("d2"))
        os.unlink(self.p("new"))
        for k in others:
            self.assertEqual(self.store.get_meta(k), metas[k], k)


if __name__ == "__main__":
    h.main()
