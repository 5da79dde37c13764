"""Integration-test harness: the independent clients that check every
effect in the store - EtcdClient (etcd v3 JSON gateway, urllib) and
ZkClient (ZooKeeper, kazoo) - with the backend-neutral Meta.  Import them
through harness.
"""

import base64
import json
import urllib.error
import urllib.request

from harness_base import gen_topology


# --------------------------------------------------------------------------
# etcd

def b64e(b):
    if isinstance(b, str):
        b = b.encode("utf-8")
    return base64.b64encode(b).decode("ascii")


def b64d(s):
    return base64.b64decode(s) if s else b""


def prefix_end(prefix):
    """etcd range_end for 'every key starting with prefix'."""
    p = bytearray(prefix.encode("utf-8") if isinstance(prefix, str) else prefix)
    while p:
        if p[-1] < 0xFF:
            p[-1] += 1
            return bytes(p)
        p.pop()
    return b"\x00"


class Meta(tuple):
    """One node's metadata in backend-neutral terms (Store.meta(key)):
    value      bytes
    version    etcd: the key's version counter; ZooKeeper: the data version
    mod_id     etcd: mod_revision; ZooKeeper: mzxid
    create_id  etcd: create_revision; ZooKeeper: czxid
    ephemeral  etcd: the lease id (0: none); ZooKeeper: ephemeralOwner
    """
    __slots__ = ()
    _fields = ("value", "version", "mod_id", "create_id", "ephemeral")

    def __new__(cls, value, version, mod_id, create_id, ephemeral):
        return tuple.__new__(cls, (value, version, mod_id, create_id, ephemeral))

    value = property(lambda self: self[0])
    version = property(lambda self: self[1])
    mod_id = property(lambda self: self[2])
    create_id = property(lambda self: self[3])
    ephemeral = property(lambda self: self[4])

    def __repr__(self):
        return "Meta(len=%d, version=%d, mod_id=%d, create_id=%d, ephemeral=%d)" % (
            len(self[0]), self[1], self[2], self[3], self[4])


class EtcdError(Exception):
    pass


class EtcdClient:
    """Independent etcd v3 client over the JSON gateway.  Keys are str
    (UTF-8) in and out; values are bytes.  ssl_context: for an https
    endpoint (CA and client certificate); auth: (user, password) of an etcd
    user, whose token goes with every request (renewed when etcd forgets
    it)."""

    backend = "etcd"

    def __init__(self, endpoint, timeout=15, ssl_context=None, auth=None):
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.auth = auth
        self.token = None

    def _open(self, req):
        return urllib.request.urlopen(req, timeout=self.timeout,
                                      context=self.ssl_context)

    def _login(self):
        self.token = None
        r = self.call("/v3/auth/authenticate",
                      {"name": self.auth[0], "password": self.auth[1]})
        self.token = r["token"]

    def call(self, path, body, _retry=True):
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.auth and path != "/v3/auth/authenticate":
            if self.token is None:
                self._login()
            headers["Authorization"] = self.token
        req = urllib.request.Request(self.endpoint + path, data=data,
                                     headers=headers)
        try:
            with self._open(req) as resp:
                reply = json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            text = e.read()[:300]
            if self.auth and _retry and b"invalid auth token" in text:
                self.token = None
                return self.call(path, body, _retry=False)
            raise EtcdError("%s: HTTP %d %s" % (path, e.code, text))
        if isinstance(reply, dict) and ("error" in reply or "code" in reply) \
                and "header" not in reply:
            raise EtcdError("%s: %r" % (path, reply))
        return reply

    # -- reads
    def _range(self, key, range_end=None, keys_only=False, count_only=False,
               limit=0):
        body = {"key": b64e(key)}
        if range_end is not None:
            body["range_end"] = b64e(range_end)
        if keys_only:
            body["keys_only"] = True
        if count_only:
            body["count_only"] = True
        if limit:
            body["limit"] = limit
        return self.call("/v3/kv/range", body)

    def get(self, key):
        r = self._range(key)
        kvs = r.get("kvs") or []
        return b64d(kvs[0].get("value")) if kvs else None

    def get_meta(self, key):
        """(value, mod_revision, version, lease) or None."""
        r = self._range(key)
        kvs = r.get("kvs") or []
        if not kvs:
            return None
        kv = kvs[0]
        return (b64d(kv.get("value")), int(kv.get("mod_revision", 0)),
                int(kv.get("version", 0)), int(kv.get("lease", 0)))

    def meta(self, key):
        """Meta (backend-neutral) or None."""
        kvs = self._range(key).get("kvs") or []
        if not kvs:
            return None
        kv = kvs[0]
        return Meta(b64d(kv.get("value")), int(kv.get("version", 0)),
                    int(kv.get("mod_revision", 0)), int(kv.get("create_revision", 0)),
                    int(kv.get("lease", 0)))

    def range(self, prefix):
        """{key: (value, mod_revision, version, lease)} for keys under prefix
        (paginated, never capped)."""
        out = {}
        start = prefix.encode("utf-8")
        end = prefix_end(prefix)
        while True:
            r = self._range(start, end, limit=500)
            kvs = r.get("kvs") or []
            for kv in kvs:
                k = b64d(kv["key"])
                out[k.decode("utf-8", "surrogateescape")] = (
                    b64d(kv.get("value")), int(kv.get("mod_revision", 0)),
                    int(kv.get("version", 0)), int(kv.get("lease", 0)))
            if not r.get("more") or not kvs:
                break
            start = b64d(kvs[-1]["key"]) + b"\x00"
        return out

    def keys(self, prefix):
        """Sorted list of full keys starting with prefix."""
        out = []
        start = prefix.encode("utf-8")
        end = prefix_end(prefix)
        while True:
            r = self._range(start, end, keys_only=True, limit=1000)
            kvs = r.get("kvs") or []
            out += [b64d(kv["key"]) for kv in kvs]
            if not r.get("more") or not kvs:
                break
            start = out[-1] + b"\x00"
        return sorted(k.decode("utf-8", "surrogateescape") for k in out)

    def revision(self):
        r = self._range("\x00", count_only=True)
        return int(r["header"]["revision"])

    change_counter = revision

    # -- writes
    def put(self, key, value, lease=0):
        if isinstance(value, str):
            value = value.encode("utf-8")
        body = {"key": b64e(key), "value": b64e(value)}
        if lease:
            body["lease"] = str(lease)
        return int(self.call("/v3/kv/put", body)["header"]["revision"])

    def put_many(self, kvs):
        if self.ssl_context or self.auth:
            for k, v in kvs.items():   # gen_topology speaks plain http only
                self.put(k, v)
            return
        gen_topology.etcd_load(self.endpoint, kvs)

    def delete(self, key):
        r = self.call("/v3/kv/deleterange", {"key": b64e(key)})
        return int(r.get("deleted", 0))

    def delete_prefix(self, prefix):
        r = self.call("/v3/kv/deleterange",
                      {"key": b64e(prefix), "range_end": b64e(prefix_end(prefix))})
        return int(r.get("deleted", 0))

    def lease_grant(self, ttl):
        r = self.call("/v3/lease/grant", {"TTL": ttl})
        return int(r["ID"])

    def lease_revoke(self, lease_id):
        self.call("/v3/lease/revoke", {"ID": str(lease_id)})

    def put_ephemeral(self, key, value, ttl=60):
        """A key that lives as long as a lease (Vitess locks); returns a
        handle for drop_ephemeral."""
        lease = self.lease_grant(ttl)
        self.put(key, value, lease=lease)
        return lease

    def drop_ephemeral(self, handle):
        try:
            self.lease_revoke(handle)
        except EtcdError:
            pass

    def is_ephemeral(self, key):
        m = self.get_meta(key)
        return bool(m and m[3])

    def request_counts(self):
        """{grpc method: requests started} for etcd's KV/Watch/Lease services,
        from the server's /metrics (counts every client, this one too)."""
        with self._open(self.endpoint + "/metrics") as resp:
            text = resp.read().decode()
        out = {}
        for line in text.splitlines():
            if line.startswith("grpc_server_started_total{"):
                labels, val = line.rsplit(" ", 1)
                m = dict(kv.split("=", 1) for kv in
                         labels[len("grpc_server_started_total{"):-1].split(","))
                out[m["grpc_method"].strip('"')] = \
                    out.get(m["grpc_method"].strip('"'), 0) + int(float(val))
        return out


# --------------------------------------------------------------------------
# ZooKeeper

class ZkClient:
    """Independent ZooKeeper client (kazoo) with the Store interface."""

    backend = "zk"

    def __init__(self, hosts):
        from kazoo.client import KazooClient
        # retry connecting for ever (quickly): across a server restart the
        # client reconnects, with a new session if the old one expired
        self.zk = KazooClient(hosts=hosts, timeout=10,
                              connection_retry=dict(max_tries=-1, delay=0.1,
                                                    backoff=1.5, max_delay=1.0))
        self.zk.start(timeout=15)
        self._counter_path = None

    def close(self):
        self.zk.stop()
        self.zk.close()

    def get(self, key):
        from kazoo.exceptions import NoNodeError
        try:
            return self.zk.get(key)[0] or b""
        except NoNodeError:
            return None

    def put(self, key, value, ephemeral=False):
        if isinstance(value, str):
            value = value.encode("utf-8")
        if self.zk.exists(key):
            self.zk.set(key, value)
        else:
            self.zk.create(key, value, makepath=True, ephemeral=ephemeral)

    def put_many(self, kvs):
        """Create/set every znode, parents first (with empty data, like
        Vitess's zk2), pipelined: one wave of asynchronous calls per depth."""
        from kazoo.exceptions import NodeExistsError
        want = {}
        for k, v in kvs.items():
            want[k] = v.encode("utf-8") if isinstance(v, str) else v
            parts = k.strip("/").split("/")
            for i in range(1, len(parts)):
                want.setdefault("/" + "/".join(parts[:i]), None)   # parent
        bydepth = {}
        for k in want:
            bydepth.setdefault(k.count("/"), []).append(k)
        for depth in sorted(bydepth):
            # multis of up to 500 creates / 512 KiB, all of a depth in flight
            chunks, cur, size = [], [], 0
            for k in sorted(bydepth[depth]):
                n = len(want[k] or b"") + len(k) + 64
                if cur and (len(cur) >= 500 or size + n > 512 * 1024):
                    chunks.append(cur)
                    cur, size = [], 0
                cur.append(k)
                size += n
            if cur:
                chunks.append(cur)
            pend = []
            for chunk in chunks:
                t = self.zk.transaction()
                for k in chunk:
                    t.create(k, want[k] or b"")
                pend.append((chunk, t.commit_async()))
            for chunk, a in pend:
                res = a.get(timeout=60)
                if not any(isinstance(r, Exception) for r in res):
                    continue
                # something existed: one by one
                for k in chunk:
                    try:
                        self.zk.create(k, want[k] or b"")
                    except NodeExistsError:
                        if want[k] is not None:
                            self.zk.set(k, want[k])

    def get_meta(self, key):
        """(value, mzxid, version, ephemeralOwner) or None (as range())."""
        m = self.meta(key)
        return None if m is None else (m.value, m.mod_id, m.version, m.ephemeral)

    def meta(self, key):
        """Meta (backend-neutral) or None."""
        from kazoo.exceptions import NoNodeError
        try:
            data, st = self.zk.get(key)
        except NoNodeError:
            return None
        return Meta(data or b"", st.version, st.mzxid, st.czxid, st.ephemeralOwner)

    def stat(self, key):
        """kazoo ZnodeStat or None."""
        return self.zk.exists(key)

    def put_ephemeral(self, key, value, sequence=False):
        """An ephemeral znode of this client's session (parents persistent,
        empty data); returns its path (the handle for drop_ephemeral)."""
        if isinstance(value, str):
            value = value.encode("utf-8")
        return self.zk.create(key, value, ephemeral=True, sequence=sequence,
                              makepath=True)

    def drop_ephemeral(self, handle):
        self.delete(handle)

    def delete(self, key):
        from kazoo.exceptions import NoNodeError
        try:
            self.zk.delete(key)
            return 1
        except NoNodeError:
            return 0

    def delete_prefix(self, prefix):
        self.zk.delete(prefix.rstrip("/"), recursive=True)

    def _walk(self, path):
        from kazoo.exceptions import NoNodeError
        try:
            children = self.zk.get_children(path)
        except NoNodeError:
            return
        for c in children:
            p = path.rstrip("/") + "/" + c
            yield p
            yield from self._walk(p)

    def keys(self, prefix):
        """Every znode below prefix (a path), sorted."""
        return sorted(self._walk(prefix.rstrip("/") or "/"))

    def range(self, prefix):
        out = {}
        for k in self.keys(prefix):
            data, st = self.zk.get(k)
            out[k] = (data or b"", st.mzxid, st.version, st.ephemeralOwner)
        return out

    def revision(self):
        """The server's last zxid (from the 'srvr' four-letter word, which
        ZkServer whitelists); else the max mzxid/pzxid seen under /.  Every
        write (create, set, delete, multi) moves it by exactly one."""
        try:
            out = self.zk.command(b"srvr")
            for line in out.splitlines():
                if line.startswith("Zxid:"):
                    return int(line.split(":", 1)[1].strip(), 16)
        except Exception:
            pass
        st = self.zk.exists("/")
        best = max(st.mzxid, st.pzxid) if st else 0
        for k in self.keys("/"):
            s = self.zk.exists(k)
            if s:
                best = max(best, s.mzxid, s.pzxid)
        return best

    change_counter = revision

    def is_ephemeral(self, key):
        s = self.zk.exists(key)
        return bool(s and s.ephemeralOwner)
