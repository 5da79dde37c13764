#!/usr/bin/python3
"""topofs -o etcd_api=v2: etcd's v2 keys API (/v2/keys), on an etcd started
with --enable-v2=true. Real directories (mkdir/rmdir), compare-and-set on
modifiedIndex (prevIndex), create with prevExist=false, recursive listings,
change notices by long poll; every effect checked with an independent v2
client (urllib on /v2/keys)."""

import errno
import json
import os
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import read_file, write_file  # noqa: E402

BACKENDS = ("etcd",)


class V2Error(Exception):
    def __init__(self, status, doc):
        super().__init__("HTTP %d %r" % (status, doc))
        self.status = status
        self.code = doc.get("errorCode") if isinstance(doc, dict) else None


class V2Client:
    """An independent client of etcd's v2 keys API. Keys are str, values
    str (v2 keeps text)."""

    def __init__(self, endpoint, timeout=15):
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout

    def call(self, method, key, params=None, form=None):
        url = self.endpoint + "/v2/keys" + urllib.parse.quote(key, safe="/")
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                doc = json.loads(body)
            except ValueError:
                doc = body
            raise V2Error(e.code, doc)

    def node(self, key, recursive=False):
        try:
            params = {"quorum": "true"}
            if recursive:
                params["recursive"] = "true"
            return self.call("GET", key, params)["node"]
        except V2Error as e:
            if e.code == 100:
                return None
            raise

    def get(self, key):
        n = self.node(key)
        return None if n is None or n.get("dir") else n.get("value", "")

    def put(self, key, value, **params):
        return self.call("PUT", key, params or None, {"value": value})["node"]

    def mkdir(self, key):
        return self.call("PUT", key, {"dir": "true"})["node"]

    def delete(self, key, **params):
        return self.call("DELETE", key, params or None)

    def tree(self, root):
        """({relpath: value} of files, {relpath} of dirs) below root."""
        files, dirs = {}, set()
        top = self.node(root, recursive=True)

        def walk(n):
            for k in n.get("nodes") or []:
                rel = k["key"][len(root) + 1:]
                if k.get("dir"):
                    dirs.add(rel)
                    walk(k)
                else:
                    files[rel] = k.get("value", "")
        if top:
            walk(top)
        return files, dirs


class EtcdV2Test(h.TopofsTestCase):
    SERVER_OPTIONS = {"enable_v2": True}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.v2 = V2Client(cls.server.endpoint)

    def load2(self, files, dirs=()):
        for d in dirs:
            self.v2.mkdir(self.key(d))
        for rel, v in files.items():
            self.v2.put(self.key(rel), v)

    def mount2(self, extra=()):
        return self.mount(["-o", "etcd_api=v2"] + list(extra))

    def mounted_tree(self):
        files, dirs = h.walk_files(self.p())
        return ({rel: read_file(self.p(rel)).decode("utf-8") for rel in files},
                dirs)

    def wait_for(self, cond, limit=1.0, msg=""):
        """cond() true within limit seconds (SPEC: other clients' changes
        show within a second)."""
        deadline = time.time() + limit
        while True:
            if cond():
                return time.time() - (deadline - limit)
            if time.time() > deadline:
                self.fail_with_log("not within %.1f s: %s" % (limit, msg))
            time.sleep(0.05)

    # -- reading

    def test_listing_and_reading(self):
        self.load2({"a": "alpha\n", "d/b": "bravo\n", "d/e/f": "",
                    "u": "h\u00e9llo \u20ac \U0001F600\n", "ctl": "a\x01b\x7f"},
                   dirs=["empty", "d/e"])
        self.mount2()
        files, dirs = self.mounted_tree()
        want_files, want_dirs = self.v2.tree(self.root)
        self.assertEqual(files, want_files)
        self.assertEqual(dirs, want_dirs)
        self.assertEqual(dirs, {"d", "d/e", "empty"})
        self.assertEqual(os.listdir(self.p("empty")), [])
        self.assertEqual(os.stat(self.p("u")).st_size,
                         len("h\u00e9llo \u20ac \U0001F600\n".encode()))
        node = self.v2.node(self.key("a"))
        self.assertEqual(os.getxattr(self.p("a"), "user.topo.version"),
                         str(node["modifiedIndex"]).encode())
        self.assertEqual(os.getxattr(self.p("a"), "user.etcd.created_index"),
                         str(node["createdIndex"]).encode())
        # v2 keeps no global revision that could be pinned
        self.assertNotIn("user.topo.revision", os.listxattr(self.p()))

    def test_ttl_keys_are_read_only(self):
        self.load2({"a": "alpha\n"})
        self.v2.put(self.key("lock"), "held", ttl="60")
        self.mount2()
        self.assertEqual(read_file(self.p("lock")), b"held")
        self.assertEqual(os.stat(self.p("lock")).st_mode & 0o777, 0o444)
        self.assertEqual(os.getxattr(self.p("lock"), "user.topo.ephemeral"), b"1")
        self.assertErrno(errno.EACCES, os.open, self.p("lock"), os.O_WRONLY)

    # -- writing

    def test_write_is_compare_and_set(self):
        self.load2({"a": "one\n"})
        self.mount2()
        before = self.v2.node(self.key("a"))["modifiedIndex"]
        write_file(self.p("a"), b"two\n")
        n = self.v2.node(self.key("a"))
        self.assertEqual(n["value"], "two\n")
        self.assertGreater(n["modifiedIndex"], before)
        self.assertEqual(read_file(self.p("a")), b"two\n")

    def test_conflict_fails_at_close_and_the_other_value_stays(self):
        self.load2({"a": "one\n"})
        self.mount2()
        f = open(self.p("a"), "r+b")
        f.write(b"mine\n")
        self.v2.put(self.key("a"), "theirs\n")
        with self.assertRaises(OSError) as cm:
            f.close()
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertEqual(self.v2.get(self.key("a")), "theirs\n")
        self.assertIn("changed by another client", self.m.log())

    def test_create_and_exclusive_create(self):
        self.load2({"a": "one\n"}, dirs=["d"])
        self.mount2()
        write_file(self.p("d/new"), b"fresh\n")
        self.assertEqual(self.v2.get(self.key("d/new")), "fresh\n")
        self.assertErrno(errno.EEXIST, os.open, self.p("a"),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        fd = os.open(self.p("d/excl"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"x")
        # another client creates it meanwhile: prevExist=false refuses
        self.v2.put(self.key("d/excl"), "theirs")
        self.assertErrno(errno.EIO, os.close, fd)
        self.assertEqual(self.v2.get(self.key("d/excl")), "theirs")
        # an empty new file is a key with an empty value
        open(self.p("d/empty"), "wb").close()
        self.assertEqual(self.v2.get(self.key("d/empty")), "")

    def test_values_v2_cannot_keep_are_refused(self):
        self.load2({"a": "one\n"})
        self.mount2()
        for name, data in (("nul", b"a\x00b"), ("latin1", b"caf\xe9"),
                           ("ff", b"\xff\xfe")):
            f = open(self.p(name), "wb")
            f.write(data)
            with self.assertRaises(OSError) as cm:
                f.close()
            self.assertEqual(cm.exception.errno, errno.EINVAL, name)
            self.assertIsNone(self.v2.node(self.key(name)), name)
        f = open(self.p("a"), "r+b")
        f.write(b"\x00")
        with self.assertRaises(OSError) as cm:
            f.close()
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        self.assertEqual(self.v2.get(self.key("a")), "one\n")
        self.assertIn("UTF-8 text without NUL", self.m.log())

    def test_hidden_names_are_refused(self):
        self.load2({"a": "one\n"})
        self.mount2()
        f = open(self.p("_hidden"), "wb")
        f.write(b"x")
        with self.assertRaises(OSError) as cm:
            f.close()
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        self.assertErrno(errno.EINVAL, os.mkdir, self.p("_dir"))
        self.assertIsNone(self.v2.node(self.key("_hidden")))
        self.assertIsNone(self.v2.node(self.key("_dir")))

    def test_unlink(self):
        self.load2({"a": "one\n", "d/b": "two\n"})
        self.mount2()
        os.unlink(self.p("a"))
        self.assertIsNone(self.v2.node(self.key("a")))
        self.assertFalse(os.path.exists(self.p("a")))
        os.unlink(self.p("d/b"))
        self.assertIsNone(self.v2.node(self.key("d/b")))
        # the directory is a real one: it stays
        self.assertTrue(self.v2.node(self.key("d"))["dir"])
        self.assertEqual(os.listdir(self.p("d")), [])

    # -- directories

    def test_mkdir_and_rmdir(self):
        self.load2({"a": "one\n"})
        self.mount2()
        os.mkdir(self.p("nd"))
        n = self.v2.node(self.key("nd"))
        self.assertTrue(n and n.get("dir"), n)
        self.assertTrue(os.path.isdir(self.p("nd")))
        self.assertErrno(errno.EEXIST, os.mkdir, self.p("nd"))
        os.makedirs(self.p("nd/x/y"))
        self.assertTrue(self.v2.node(self.key("nd/x/y"))["dir"])
        write_file(self.p("nd/x/f"), b"file\n")
        self.assertErrno(errno.ENOTEMPTY, os.rmdir, self.p("nd/x"))
        self.assertEqual(self.v2.get(self.key("nd/x/f")), "file\n")
        os.rmdir(self.p("nd/x/y"))
        self.assertIsNone(self.v2.node(self.key("nd/x/y")))
        os.unlink(self.p("nd/x/f"))
        os.rmdir(self.p("nd/x"))
        os.rmdir(self.p("nd"))
        self.assertIsNone(self.v2.node(self.key("nd")))
        self.assertFalse(os.path.exists(self.p("nd")))
        self.assertErrno(errno.ENOTDIR, os.rmdir, self.p("a"))

    def test_rmdir_is_never_recursive(self):
        """A key added by another client after the mount listed the
        directory: v2 refuses the delete (never recursive)."""
        self.load2({}, dirs=["d"])
        self.mount2()
        self.assertEqual(os.listdir(self.p("d")), [])
        # no watch delay allowed to help: add and remove at once
        self.v2.put(self.key("d/late"), "late")
        try:
            os.rmdir(self.p("d"))
            self.fail("rmdir removed a non-empty directory")
        except OSError as e:
            self.assertEqual(e.errno, errno.ENOTEMPTY)
        self.assertEqual(self.v2.get(self.key("d/late")), "late")

    # -- rename: no transactions in v2

    def test_rename_is_exdev_and_mv_copies(self):
        self.load2({"a": "one\n", "d/b": "two\n", "d/e/f": "three\n"})
        self.mount2()
        self.assertErrno(errno.EXDEV, os.rename, self.p("a"), self.p("z"))
        self.assertErrno(errno.EXDEV, os.rename, self.p("d"), self.p("dd"))
        self.assertEqual(self.v2.get(self.key("a")), "one\n")
        r = subprocess.run(["mv", self.p("a"), self.p("z")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertIsNone(self.v2.node(self.key("a")))
        self.assertEqual(self.v2.get(self.key("z")), "one\n")
        r = subprocess.run(["mv", self.p("d"), self.p("dd")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        files, dirs = self.v2.tree(self.root)
        self.assertEqual(files, {"z": "one\n", "dd/b": "two\n", "dd/e/f": "three\n"})
        self.assertEqual(dirs, {"dd", "dd/e"})

    def test_editor_style_save(self):
        """sed -i writes a scratch file and renames it over the key: one
        compare-and-set put, which needs no transaction."""
        self.load2({"cfg": "hello world\n"})
        self.mount2()
        r = subprocess.run(["sed", "-i", "s/hello/HELLO/", self.p("cfg")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(self.v2.get(self.key("cfg")), "HELLO world\n")
        self.assertEqual(self.v2.tree(self.root)[0], {"cfg": "HELLO world\n"})

    # -- other clients

    def test_changes_by_another_client_show_within_a_second(self):
        self.load2({"a": "one\n"}, dirs=["d"])
        self.mount2()
        self.assertEqual(read_file(self.p("a")), b"one\n")
        self.assertEqual(os.listdir(self.p("d")), [])
        self.v2.put(self.key("a"), "two\n")
        self.wait_for(lambda: read_file(self.p("a")) == b"two\n", msg="a changed")
        self.v2.put(self.key("d/n"), "new\n")
        self.wait_for(lambda: os.listdir(self.p("d")) == ["n"], msg="d/n created")
        self.v2.mkdir(self.key("sub"))
        self.wait_for(lambda: os.path.isdir(self.p("sub")), msg="sub made")
        self.v2.delete(self.key("a"))
        self.wait_for(lambda: not os.path.exists(self.p("a")), msg="a deleted")
        self.v2.delete(self.key("d"), recursive="true")
        self.wait_for(lambda: not os.path.exists(self.p("d")), msg="d deleted")

    def test_directory_stays_after_its_last_key_goes(self):
        """v2 directories are nodes of their own: when another client (or
        the mount, racing its own notice) removes the last key below one,
        it is still a directory, and rmdir removes it."""
        self.load2({"d/only": "x\n", "e/f/g": "y\n"})
        self.mount2()
        self.assertEqual(os.listdir(self.p("d")), ["only"])
        self.v2.delete(self.key("d/only"))
        self.wait_for(lambda: os.listdir(self.p("d")) == [], msg="d/only gone")
        time.sleep(0.3)
        self.assertTrue(os.path.isdir(self.p("d")))
        self.assertTrue(self.v2.node(self.key("d"))["dir"])
        os.rmdir(self.p("d"))
        self.assertIsNone(self.v2.node(self.key("d")))
        # the same through the mount, many times: the notices of our own
        # deletes race the cache's own bookkeeping
        # Wait for the mount to show this very put: in the first round the
        # key is already there (loaded), and an unlink of the older version
        # it still showed would rightly fail its version check.
        def shows(version):
            try:
                return os.getxattr(self.p("e/f/g"), "user.topo.version") \
                    == str(version).encode()
            except OSError:
                return False
        for i in range(20):
            version = self.v2.put(self.key("e/f/g"), "y\n")["modifiedIndex"]
            self.wait_for(lambda: shows(version), msg="e/f/g round %d" % i)
            os.unlink(self.p("e/f/g"))
            self.assertTrue(os.path.isdir(self.p("e/f")), "round %d" % i)
        os.rmdir(self.p("e/f"))
        os.rmdir(self.p("e"))
        self.assertIsNone(self.v2.node(self.key("e")))

    def test_watch_survives_a_server_restart(self):
        self.load2({"a": "one\n"})
        self.mount2()
        self.assertEqual(read_file(self.p("a")), b"one\n")
        self.server.pause()
        try:
            time.sleep(1.5)
        finally:
            self.server.resume()
        self.v2.put(self.key("a"), "after\n")
        self.wait_for(lambda: read_file(self.p("a")) == b"after\n", limit=5.0,
                      msg="a change after the restart")

    # -- mounting

    def test_missing_root_and_create_root(self):
        mnt = h.make_tempdir("topofs-mnt-")
        self.addCleanup(h.remove_tempdir, mnt)
        r = h.run_topofs(["-f"] + self.server.topofs_args(self.root)
                         + ["-o", "etcd_api=v2", mnt])
        lines = r.stderr.decode().strip().splitlines()
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("create_root", lines[0])
        self.assertFalse(h.is_mounted(mnt))
        self.mount2(["-o", "create_root"])
        self.assertTrue(self.v2.node(self.root)["dir"])
        self.assertEqual(os.listdir(self.p()), [])

    def test_root_that_is_a_key_is_refused(self):
        self.v2.put(self.root, "a file")
        mnt = h.make_tempdir("topofs-mnt-")
        self.addCleanup(h.remove_tempdir, mnt)
        r = h.run_topofs(["-f"] + self.server.topofs_args(self.root)
                         + ["-o", "etcd_api=v2", mnt])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not a directory", r.stderr.decode())

    def test_pinned_mounts_are_refused_on_v2(self):
        mnt = h.make_tempdir("topofs-mnt-")
        self.addCleanup(h.remove_tempdir, mnt)
        for opt in ("snapshot", "revision=3"):
            r = h.run_topofs(["-f"] + self.server.topofs_args(self.root)
                             + ["-o", "etcd_api=v2," + opt, mnt])
            lines = r.stderr.decode().strip().splitlines()
            self.assertNotEqual(r.returncode, 0)
            self.assertEqual(len(lines), 1, lines)
            self.assertIn("v2 API keeps no history", lines[0])

    def test_v2_api_off_is_refused(self):
        plain = h.module_server("etcd")     # started without --enable-v2
        mnt = h.make_tempdir("topofs-mnt-")
        self.addCleanup(h.remove_tempdir, mnt)
        r = h.run_topofs(["-f"] + plain.topofs_args(self.root)
                         + ["-o", "etcd_api=v2", mnt])
        lines = r.stderr.decode().strip().splitlines()
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("--enable-v2", lines[0])

    def test_tar_of_the_mount_is_the_store(self):
        files = {"keyspaces/ks%d/shards/-80/Shard" % i: "shard %d\n" % i
                 for i in range(20)}
        files.update({"cells/zone1/CellInfo": "cell\n", "top": ""})
        self.load2(files, dirs=["empty/dir"])
        self.mount2()
        out = h.make_tempdir("topofs-tar-")
        self.addCleanup(h.remove_tempdir, out)
        subprocess.run(["tar", "-C", self.p(), "-cf", os.path.join(out, "t.tar"), "."],
                       check=True)
        ex = os.path.join(out, "x")
        os.mkdir(ex)
        subprocess.run(["tar", "-C", ex, "-xf", os.path.join(out, "t.tar")], check=True)
        got_files, got_dirs = h.walk_files(ex)
        want_files, want_dirs = self.v2.tree(self.root)
        self.assertEqual({r: read_file(os.path.join(ex, r)).decode() for r in got_files},
                         want_files)
        self.assertEqual(got_dirs, want_dirs)


if __name__ == "__main__":
    h.main()
