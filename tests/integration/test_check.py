#!/usr/bin/python3
"""topofs --check (issue 24, SPEC 10): the Vitess checklist as one command.

Real servers on loopback and the real binary: a healthy 3-member etcd
cluster / ZooKeeper ensemble (exit 0), then one member killed (its address
warns, exit 1); an address of the other store (it says which store answers
there); a missing root (ZooKeeper: FAIL with the create_root hint; etcd:
warn); refused credentials (etcd: a wrong password; ZooKeeper: an auth
scheme the server does not know); cells from CellInfo records, one of them
unreachable (warn); --json; --check=write leaves no key and plain --check
writes nothing (checked with an independent client). etcd only: TLS with
valid, soon-expiring and expired certificates (the expired ones made with
openssl x509 -days -1). Every run must end within its time bound.
"""

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
import harness as h  # noqa: E402

T = 3  # -o timeout for every run, in seconds


def cellinfo(address, root):
    """A CellInfo record: field 1 server_address, field 2 root."""
    def field(num, s):
        b = s.encode()
        assert len(b) < 128
        return bytes([num << 3 | 2, len(b)]) + b
    return field(1, address) + field(2, root)


def run_check(args, bound):
    """topofs ARGS; returns (exit status, stdout, stderr, seconds). Fails
    when it takes longer than `bound` seconds."""
    t0 = time.time()
    r = h.run_topofs(list(args), timeout=bound + 30)
    took = time.time() - t0
    out = r.stdout.decode("utf-8", "replace")
    err = r.stderr.decode("utf-8", "replace")
    if took > bound:
        raise AssertionError("topofs %s took %.1f s (bound %s s):\n%s%s"
                             % (" ".join(args), took, bound, out, err))
    return r.returncode, out, err, took


def lines(out, word=None, part=""):
    """The report lines (optionally: starting with `word`, holding
    `part`)."""
    got = [ln for ln in out.splitlines()
           if ln.split(" ", 1)[0] in ("ok", "warn", "FAIL")]
    return [ln for ln in got if (word is None or ln.split(" ", 1)[0] == word)
            and part in ln]


class CheckCase(h.TopofsTestCase):
    """Helpers: a root holding one key, runs against it."""

    def make_root(self, kvs=None):
        self.load(kvs or {"keyspaces/ks/Keyspace": b"\x00"})
        self.addCleanup(self.drop, self.root)

    def drop(self, root):
        try:
            self.store.delete_prefix(root + ("/" if self.is_etcd else ""))
        except Exception:
            pass

    def check(self, extra=(), want=None, bound=2 * T, source=None,
              impl=None):
        """--check with the module server and self.root unless `source`
        is given; asserts the exit status `want`. (status, stdout)"""
        src = source or "%s://%s%s" % (impl or self.server.impl,
                                      self.server.address, self.root)
        args = ["--check", "--timeout=%d" % T] + list(extra) + [src]
        rc, out, err, _ = run_check(args, bound)
        if want is not None:
            self.assertEqual(rc, want, "exit status of topofs %s:\n%s%s"
                             % (" ".join(args), out, err))
        return rc, out

    def assertLine(self, out, word, *parts):
        got = lines(out, word)
        for ln in got:
            if all(p in ln for p in parts):
                return ln
        self.fail("no '%s' line with %r in:\n%s" % (word, parts, out))


class CheckTest(CheckCase):

    def test_healthy_single_server(self):
        self.make_root()
        _, out = self.check(want=0)
        addr = self.server.address
        self.assertLine(out, "ok", addr, "reachable")
        self.assertLine(out, "ok", addr, "store",
                        "ZooKeeper" if self.is_zk else "etcd")
        self.assertLine(out, "ok", addr, "round trip", "ms")
        self.assertLine(out, "ok", "root", self.root, "exists")
        self.assertEqual(lines(out, "warn") + lines(out, "FAIL"), [], out)
        self.assertIn("vitess flags: --topo_implementation=%s "
                      "--topo_global_server_address=%s "
                      "--topo_global_root=%s\n"
                      % (self.server.impl, addr, self.root), out)
        self.assertIn("result: all ok (exit 0)", out)

    def test_same_flags_as_a_mount(self):
        """The Vitess flags, in both spellings, instead of SOURCE."""
        self.make_root()
        args = ["--check", "--timeout", str(T),
                "--topo-implementation", self.server.impl,
                "--topo_global_server_address=" + self.server.address,
                "--topo-global-root=" + self.root]
        rc, out, err, _ = run_check(args, 2 * T)
        self.assertEqual(rc, 0, out + err)
        self.assertLine(out, "ok", "root", self.root)

    def test_json(self):
        self.make_root()
        rc, out, err, _ = run_check(
            ["--check", "--json", "--timeout=%d" % T,
             self.server.source(self.root)], 2 * T)
        self.assertEqual(rc, 0, out + err)
        doc = json.loads(out)
        self.assertEqual(doc["status"], "ok")
        self.assertEqual(doc["exit"], 0)
        self.assertEqual(doc["implementation"], self.server.impl)
        self.assertEqual(doc["root"], self.root)
        self.assertIn("--topo_global_root=" + self.root, doc["vitess_flags"])
        mine = [c for c in doc["checks"]
                if c.get("server") == self.server.address]
        self.assertIn("reachable", [c["what"] for c in mine])
        self.assertTrue(all(c["level"] == "ok" for c in doc["checks"]), doc)
        rtt = [c for c in mine if c["what"] == "round trip"]
        self.assertTrue(rtt and rtt[0]["ms"] >= 0, doc)

    def test_bad_invocation_is_exit_2(self):
        for args in (["--check=often"], ["--check", "etcd2://a:1/r", "/mnt"],
                     ["--json", "etcd2://a:1/r"]):
            r = h.run_topofs(args)
            self.assertEqual(r.returncode, 2 if "--check" in " ".join(args)
                             else 1, args)

    def test_wrong_implementation(self):
        """This store's address given as the other store: says which one
        answers there."""
        self.make_root()
        other = "etcd2" if self.is_zk else "zk2"
        _, out = self.check(impl=other, want=2)
        addr = self.server.address
        self.assertLine(out, "FAIL", addr, "store", "does not answer as")
        self.assertLine(out, "FAIL", addr, "implementation",
                        "answers as %s" % self.server.impl,
                        "--topo_implementation=%s" % self.server.impl)
        self.assertLine(out, "FAIL", "root", "not checked")

    def test_silent_server_is_bounded(self):
        """An address that takes connections and never answers (a hung
        server): the check ends within -o timeout per step."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(16)
            addr = "127.0.0.1:%d" % s.getsockname()[1]
            src = "%s://%s%s" % (self.server.impl, addr, self.root)
            _, out = self.check(source=src, want=2, bound=3 * T)
        self.assertLine(out, "FAIL", addr, "store", "no answer")
        self.assertLine(out, "FAIL", "root", "not checked")

    def test_missing_root(self):
        """ZooKeeper: FAIL with the create_root hint, nothing created;
        etcd: a root without keys is a warning (a new topology)."""
        if self.is_zk:
            _, out = self.check(want=2)
            self.assertLine(out, "FAIL", "root", self.root,
                            "-o create_root")
            self.assertIsNone(self.store.zk.exists(self.root))
        else:
            rev = self.store.revision()
            _, out = self.check(want=1)
            self.assertLine(out, "warn", "root", "no keys under " + self.root)
            self.assertEqual(self.store.revision(), rev)

    def test_check_writes_nothing_and_write_leaves_no_key(self):
        self.make_root()
        before = self.snapshot()
        rev = self.store.revision()
        self.check(want=0)
        self.assertEqual(self.snapshot(), before)
        if self.is_etcd:
            self.assertEqual(self.store.revision(), rev, "--check wrote")
        _, out = self.check(["--check=write"], want=0)
        ln = self.assertLine(out, "ok", "write", "create", "read", "delete",
                             self.root + "/.topofs-check-")
        self.assertEqual(self.snapshot(), before, ln)
        if self.is_etcd:   # one create and one delete, nothing else
            self.assertEqual(self.store.revision(), rev + 2)

    def test_cells(self):
        """Every cells/<cell>/CellInfo: a cell whose servers answer and
        whose root exists is ok; an unreachable one warns (exit 1)."""
        good_root = self.root + "-cell"
        self.store.put_many({good_root + "/tablets/x/Tablet": b"\x00"})
        self.addCleanup(self.drop, good_root)
        dead = "127.0.0.1:%d" % h.free_port()
        self.make_root({
            "cells/good/CellInfo": cellinfo(self.server.address, good_root),
            "cells/down/CellInfo": cellinfo(dead, "/vitess/down"),
            "cells/bad/CellInfo": b"\xff\xff"})
        _, out = self.check(want=1, bound=3 * T)
        self.assertLine(out, "ok", "cell good", good_root, "exists")
        self.assertLine(out, "warn", "cell down", dead, "reachable")
        self.assertLine(out, "warn", "cell", "cells/bad/CellInfo")
        self.assertEqual(lines(out, "FAIL"), [], out)

    def test_credentials_refused(self):
        """ZooKeeper: an auth scheme the server does not know is refused
        (a digest is always accepted; its ACLs decide what it may read).
        etcd: see EtcdAuthCheckTest."""
        if not self.is_zk:
            raise unittest.SkipTest("etcd: EtcdAuthCheckTest")
        self.make_root()
        d = h.make_tempdir("topofs-check-auth-")
        self.addCleanup(h.remove_tempdir, d)
        good = os.path.join(d, "good")
        bad = os.path.join(d, "bad")
        with open(good, "w") as f:
            f.write("digest:alice:secret\n")
        with open(bad, "w") as f:
            f.write("nosuchscheme:alice\n")
        _, out = self.check(["--topo_zk_auth_file=" + good], want=0)
        self.assertLine(out, "ok", "credentials", "digest")
        _, out = self.check(["--topo_zk_auth_file=" + bad], want=2)
        self.assertLine(out, "FAIL", self.server.address, "credentials",
                        bad)


class ClusterCheckTest(CheckCase):
    """A 3-member etcd cluster or ZooKeeper ensemble of its own."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cluster = (cluster.ZkEnsemble() if cls.backend == "zk"
                       else cluster.EtcdCluster())
        cls.cluster.start()
        cls.addClassCleanup(cls.cluster.stop)

    def test_healthy_then_one_member_killed(self):
        c = self.cluster
        client = c.client()
        if self.is_zk:
            client.put(self.root + "/a", b"x")
        else:
            client.put(self.root + "/a", b"x")
        src = "%s://%s%s" % (c.impl, ",".join(c.addresses), self.root)
        _, out = self.check(source=src, want=0, bound=3 * T)
        for a in c.addresses:
            self.assertLine(out, "ok", a, "store")
        if self.is_zk:
            self.assertLine(out, "ok", "ensemble", "3 of 3", "1 leader")
            modes = [self.assertLine(out, "ok", a, "store")
                     for a in c.addresses]
            self.assertEqual(sum("mode leader" in m for m in modes), 1, out)
        else:
            self.assertLine(out, "ok", "cluster", "3 of 3 members")
            self.assertEqual(len(lines(out, "ok", "this member")), 1, out)
        # one member down (not the leader: no election under way)
        victim = (c.leader() + 1) % c.n
        c.kill(victim)
        if self.is_zk:
            c.wait_serving()
        _, out = self.check(source=src, want=1, bound=3 * T)
        self.assertLine(out, "warn", c.addresses[victim], "reachable")
        self.assertLine(out, "warn", "2 of 3")
        self.assertLine(out, "ok", "root", self.root)
        self.assertEqual(lines(out, "FAIL"), [], out)


# --------------------------------------------------------------------------
# etcd only: TLS and users

def openssl(d, *args):
    subprocess.run(["openssl"] + list(args), cwd=d, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_pki(d):
    """A CA; server certificates for IP 127.0.0.1 valid for a year and
    expired a day ago; client certificates valid for a year, for ten days
    and expired a day ago. EC keys (fast). {name: path}."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes"]
    openssl(d, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "3650", "-subj", "/CN=topofs check test CA")
    server = ("subjectAltName=IP:127.0.0.1\n"
              "extendedKeyUsage=serverAuth,clientAuth\n")
    client = "extendedKeyUsage=clientAuth\n"
    for name, ext, days in (("server", server, "365"),
                            ("server_old", server, "-1"),
                            ("client", client, "365"),
                            ("client_soon", client, "10"),
                            ("client_old", client, "-1")):
        openssl(d, "req", *ec, "-keyout", name + ".key", "-out",
                name + ".csr", "-subj", "/CN=" + name)
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext)
        openssl(d, "x509", "-req", "-in", name + ".csr", "-CA", "ca.crt",
                "-CAkey", "ca.key", "-CAcreateserial", "-out", name + ".crt",
                "-days", days, "-extfile", name + ".ext")
    return {n: os.path.join(d, n) for n in os.listdir(d)}


class LaxTlsEtcd(h.EtcdServer):
    """An etcd whose own certificate has expired: started and checked
    without verifying it, and without --client-cert-auth (etcd's gateway
    presents that certificate to its own gRPC port)."""

    def ssl_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def tls_args(self):
        return ["--cert-file", self.tls["cert"], "--key-file",
                self.tls["key"]]


class EtcdTlsCheckTest(CheckCase):

    @classmethod
    def setUpClass(cls):
        if h.BACKEND != "etcd":
            raise unittest.SkipTest("etcd only")
        if not shutil.which("openssl"):
            raise unittest.SkipTest("no openssl")
        super().setUpClass()
        cls.pkidir = h.make_tempdir("topofs-check-pki-")
        cls.addClassCleanup(h.remove_tempdir, cls.pkidir)
        cls.pki = make_pki(cls.pkidir)
        p = cls.pki
        cls.tls = h.EtcdServer(tls={
            "cert": p["server.crt"], "key": p["server.key"],
            "ca": p["ca.crt"], "client_cert": p["client.crt"],
            "client_key": p["client.key"]}).start()
        cls.addClassCleanup(cls.tls.stop)
        cls.old = LaxTlsEtcd(tls={
            "cert": p["server_old.crt"], "key": p["server_old.key"],
            "ca": p["ca.crt"]}).start()
        cls.addClassCleanup(cls.old.stop)
        cls.server = cls.tls
        cls.store = cls.tls.client()

    def flags(self, client):
        return ["--topo_etcd_tls_ca=" + self.pki["ca.crt"],
                "--topo_etcd_tls_cert=" + self.pki[client + ".crt"],
                "--topo_etcd_tls_key=" + self.pki[client + ".key"]]

    def days_left(self, name, since, until):
        """The days left that a check run between `since` and `until`
        may report for certificate `name`: whole days, floor (a
        certificate made in the same second as the check has exactly
        365 days left, one made a second earlier 364)."""
        out = subprocess.run(["openssl", "x509", "-noout", "-enddate",
                              "-in", self.pki[name]], check=True,
                             capture_output=True, text=True).stdout
        end = ssl.cert_time_to_seconds(out.strip().split("=", 1)[1])
        return {"%d days left" % ((end - int(t)) // 86400)
                for t in (since, until)}

    def check_days(self, client, want):
        since = time.time()
        _, out = self.check(self.flags(client), want=want)
        return out, since, time.time()

    def assertDays(self, out, word, what, name, since, until):
        got = self.assertLine(out, word, what)
        days = self.days_left(name, since, until)
        self.assertTrue(any(d in got for d in days),
                        "%r: want one of %r" % (got, sorted(days)))

    def test_valid_certificates(self):
        self.make_root()
        out, since, until = self.check_days("client", 0)
        a = self.tls.address
        self.assertLine(out, "ok", a, "tls handshake", "trusted")
        self.assertDays(out, "ok", "tls server certificate", "server.crt",
                        since, until)
        self.assertDays(out, "ok", "tls client certificate", "client.crt",
                        since, until)

    def test_client_certificate_expiring_soon_warns(self):
        self.make_root()
        out, since, until = self.check_days("client_soon", 1)
        self.assertDays(out, "warn", "tls client certificate",
                        "client_soon.crt", since, until)

    def test_expired_client_certificate_fails(self):
        _, out = self.check(self.flags("client_old"), want=2)
        self.assertLine(out, "FAIL", "tls client certificate", "expired on")

    def test_expired_server_certificate_fails(self):
        src = "etcd2://%s%s" % (self.old.address, self.root)
        _, out = self.check(self.flags("client"), source=src, want=2,
                            bound=3 * T)
        a = self.old.address
        self.assertLine(out, "FAIL", a, "tls handshake", "not trusted")
        self.assertLine(out, "FAIL", a, "tls server certificate",
                        "expired on")

    def test_plain_http_to_a_tls_server(self):
        _, out = self.check(want=2)
        self.assertLine(out, "FAIL", self.tls.address, "tls")


class EtcdV2CheckTest(CheckCase):
    """-o etcd_api=v2: the same server checks (etcd 3 servers); the root is
    a v2 directory, so a missing one fails with the create_root hint."""

    SERVER_OPTIONS = {"enable_v2": True}

    @classmethod
    def setUpClass(cls):
        if h.BACKEND != "etcd":
            raise unittest.SkipTest("etcd only")
        super().setUpClass()

    def v2put(self, key, value):
        import urllib.parse
        import urllib.request
        req = urllib.request.Request(
            self.server.endpoint + "/v2/keys" + key, method="PUT",
            data=urllib.parse.urlencode({"value": value}).encode())
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    def test_v2(self):
        self.v2put(self.root + "/a", "x")
        _, out = self.check(["-o", "etcd_api=v2", "--check=write"], want=0)
        self.assertLine(out, "ok", self.server.address, "store", "etcd")
        self.assertLine(out, "ok", "root", self.root)
        self.assertLine(out, "ok", "write", "delete")
        _, out = self.check(["-o", "etcd_api=v2"], want=2,
                            source=self.server.source(self.root + "-none"))
        self.assertLine(out, "FAIL", "root", "-o create_root")


def etcdctl(server, *args, user=None):
    cmd = ["etcdctl", "--endpoints=" + server.endpoint, "--dial-timeout=5s"]
    if user:
        cmd += ["--user", "%s:%s" % user]
    subprocess.run(cmd + list(args), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=30,
                   env=dict(os.environ, ETCDCTL_API="3"))


class EtcdAuthCheckTest(CheckCase):

    @classmethod
    def setUpClass(cls):
        if h.BACKEND != "etcd":
            raise unittest.SkipTest("etcd only")
        super().setUpClass()
        cls.server = h.EtcdServer().start()
        cls.addClassCleanup(cls.server.stop)
        cls.pw = "pw-%d" % os.getpid()
        etcdctl(cls.server, "user", "add", "root", "--new-user-password",
                cls.pw)
        etcdctl(cls.server, "user", "grant-role", "root", "root")
        etcdctl(cls.server, "auth", "enable", user=("root", cls.pw))
        cls.server.auth = ("root", cls.pw)
        cls.store = cls.server.client()
        cls.pwdir = h.make_tempdir("topofs-check-pw-")
        cls.addClassCleanup(h.remove_tempdir, cls.pwdir)

    def pwfile(self, text):
        p = os.path.join(self.pwdir, "pw-%d" % len(os.listdir(self.pwdir)))
        with open(p, "w") as f:
            f.write(text + "\n")
        return p

    def test_password_accepted_and_refused(self):
        self.make_root()
        ok = ["-o", "etcd_user=root,etcd_password_file=" + self.pwfile(self.pw)]
        _, out = self.check(ok, want=0)
        self.assertLine(out, "ok", self.server.address, "credentials",
                        "user root accepted")
        bad = ["-o", "etcd_user=root,etcd_password_file="
               + self.pwfile("wrong")]
        _, out = self.check(bad, want=2)
        self.assertLine(out, "FAIL", self.server.address, "credentials",
                        "wrong user name or password")
        self.assertNotIn(self.pw, out)


if __name__ == "__main__":
    h.main()
