#!/usr/bin/python3
"""Helpers for test_workflows.py and test_editors.py (not a test module).

- Tmux: drives an interactive program (vim, nano, emacs -nw) in a detached
  tmux session on a private socket; waits for text on the screen by polling
  capture-pane; always kills its session (and its private server, by pid).
- SaveRecorder: what one save did to the store, seen by the independent
  client: etcd = every event under the root from a start revision (range
  requests at each revision), ZooKeeper = czxid / version / parent cversion,
  the znode set, the zxid counter, and a poller + data watch that notice if
  the znode is ever missing.
- run(): a command with its exit status, stdout and stderr.
- `python3 wf_util.py put BACKEND ADDRESS KEY HEXVALUE`: write one key from
  another process (an "other client" inside sed's `e` command).
"""

import os
import re
import shlex
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness as h  # noqa: E402

TMUX = "/usr/bin/tmux"


def run(argv, timeout=300, **kw):
    """(returncode, stdout bytes, stderr bytes)."""
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, **kw)
    return r.returncode, r.stdout, r.stderr


# --------------------------------------------------------------------------
# tmux

class TmuxTimeout(AssertionError):
    pass


class Tmux:
    """One program in a detached tmux session on its own socket.  The program
    runs under `sh -c 'PROG; echo __EXIT=$?__; sleep 3600'` so its exit status
    stays on the screen.  Call kill() (registered as a cleanup) in any case."""

    def __init__(self, argv, env=None, cwd=None, width=160, height=45):
        self.sock = "topofs-wf-%d-%x" % (os.getpid(), int(time.time() * 1e6))
        self.name = "wf"
        self.argv = list(argv)
        self.env = dict(env or os.environ)
        self.cwd = cwd
        self.width, self.height = width, height
        self.server_pid = None
        self.started = False

    def _tmux(self, *args, check=True):
        r = subprocess.run([TMUX, "-L", self.sock] + list(args),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=self.env, timeout=30)
        if check and r.returncode != 0:
            raise RuntimeError("tmux %s: %s" % (args[0], r.stderr.decode()))
        return r.stdout.decode("utf-8", "replace")

    def start(self):
        prog = " ".join(shlex.quote(a) for a in self.argv)
        shell = "%s; echo __EXIT=$?__; sleep 3600" % prog
        self._tmux("-f", "/dev/null", "new-session", "-d", "-s", self.name,
                   "-x", str(self.width), "-y", str(self.height),
                   *(["-c", self.cwd] if self.cwd else []),
                   "sh", "-c", shell)
        self.started = True
        try:
            self.server_pid = int(self._tmux("display-message", "-p",
                                             "-t", self.name, "#{pid}").strip())
        except Exception:
            self.server_pid = None
        return self

    def screen(self):
        return self._tmux("capture-pane", "-p", "-J", "-t", self.name,
                          check=False)

    def wait_for(self, pattern, timeout=20, flags=0):
        """Poll the screen until regex `pattern` matches; returns the screen."""
        rx = re.compile(pattern, flags)
        deadline = time.time() + timeout
        scr = ""
        while time.time() < deadline:
            scr = self.screen()
            m = rx.search(scr)
            if m:
                if os.environ.get("TOPOFS_WF_SHOW"):
                    line = scr[scr.rfind("\n", 0, m.start()) + 1:
                               scr.find("\n", m.end())]
                    sys.stderr.write("[screen %s] %s\n" % (self.argv[0], line.strip()))
                return scr
            time.sleep(0.1)
        raise TmuxTimeout("timed out after %ss waiting for %r on the screen of "
                          "%s:\n%s" % (timeout, pattern, self.argv, scr))

    def keys(self, *keys):
        """Named keys (Enter, Escape, C-o, ...)."""
        self._tmux("send-keys", "-t", self.name, *keys)

    def escape(self):
        """Escape, then a pause: vim takes Escape followed at once by more
        keys as one key code (Alt-:), and the keys are lost."""
        self.keys("Escape")
        time.sleep(0.5)

    def type(self, text):
        """Literal text."""
        self._tmux("send-keys", "-t", self.name, "-l", text)

    def exit_status(self, timeout=30):
        scr = self.wait_for(r"__EXIT=\d+__", timeout)
        return int(re.search(r"__EXIT=(\d+)__", scr).group(1))

    def kill(self):
        if not self.started:
            return
        self._tmux("kill-session", "-t", self.name, check=False)
        self._tmux("kill-server", check=False)
        if self.server_pid:
            deadline = time.time() + 5
            while time.time() < deadline:
                try:
                    os.kill(self.server_pid, 0)
                except OSError:
                    break
                time.sleep(0.05)
            else:
                try:
                    os.kill(self.server_pid, 9)
                except OSError:
                    pass
        try:
            os.unlink(os.path.join("/tmp", "tmux-%d" % os.getuid(), self.sock))
        except OSError:
            pass
        self.started = False


# --------------------------------------------------------------------------
# the store's view of one save

def etcd_range_at(store, prefix, rev):
    """{key: (value, create_rev, mod_rev, version, lease)} under prefix at
    revision rev."""
    body = {"key": h.b64e(prefix), "range_end": h.b64e(h.prefix_end(prefix)),
            "revision": str(rev)}
    r = store.call("/v3/kv/range", body)
    out = {}
    for kv in r.get("kvs") or []:
        out[h.b64d(kv["key"]).decode("utf-8", "surrogateescape")] = (
            h.b64d(kv.get("value")), int(kv.get("create_revision", 0)),
            int(kv.get("mod_revision", 0)), int(kv.get("version", 0)),
            int(kv.get("lease", 0)))
    return out


def etcd_history(store, prefix, rev_from, rev_to=None):
    """Every event under prefix in revisions (rev_from, rev_to]:
    [(rev, 'PUT'|'DELETE', key, value)], from range requests at each
    revision (the store is never compacted in these tests)."""
    if rev_to is None:
        rev_to = store.revision()
    events = []
    prev = etcd_range_at(store, prefix, rev_from)
    for rev in range(rev_from + 1, rev_to + 1):
        cur = etcd_range_at(store, prefix, rev)
        for k, v in sorted(cur.items()):
            if v[2] == rev:
                events.append((rev, "PUT", k, v[0]))
        for k in sorted(set(prev) - set(cur)):
            events.append((rev, "DELETE", k, None))
        prev = cur
    return events


class SaveRecorder:
    """start() before the save, stop() after; then the assert helpers."""

    def __init__(self, tc, key):
        self.tc = tc
        self.store = tc.store
        self.key = key
        self.backend = tc.store.backend
        self.missing = []          # times the key was seen absent (ZooKeeper)
        self.watch_events = []
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        if self.backend == "etcd":
            self.rev0 = self.store.revision()
            self.meta0 = etcd_range_at(self.store, self.key, self.rev0).get(self.key)
            self.keys0 = set(self.store.keys(self.tc.prefix))
        else:
            zk = self.store.zk
            self.stat0 = zk.exists(self.key)
            self.parent = self.key.rsplit("/", 1)[0]
            self.pstat0 = zk.exists(self.parent)
            self.keys0 = set(self.store.keys(self.tc.root))
            self.zxid0 = self.store.revision()
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
            from kazoo.recipe.watchers import DataWatch

            def on_data(data, stat, event=None):
                if self._stop.is_set():
                    return False
                self.watch_events.append((data, stat, event))
                if stat is None:
                    self.missing.append(("watch", time.time()))
                return True
            DataWatch(zk, self.key, on_data)
        self.tc.addCleanup(self.stop)
        return self

    def _poll(self):
        zk = self.store.zk
        while not self._stop.is_set():
            try:
                if zk.exists(self.key) is None:
                    self.missing.append(("poll", time.time()))
            except Exception:
                pass
            time.sleep(0.003)

    def stop(self):
        if self._stop.is_set():
            return
        time.sleep(0.3)            # let watch notifications arrive
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    def history(self):
        """etcd: the events under the test root since start()."""
        return etcd_history(self.store, self.tc.prefix, self.rev0)

    # -- assertions
    def assert_one_update(self, value):
        """The key now holds value, written by exactly one update in place;
        it was never absent and no other key was created or deleted."""
        self.stop()
        tc = self.tc
        if self.backend == "etcd":
            ev = self.history()
            tc.assertEqual(
                [(e[1], e[2]) for e in ev], [("PUT", self.key)],
                "expected exactly one PUT of %s, got events %r"
                % (self.key, [(e[0], e[1], e[2], len(e[3] or b"")) for e in ev]))
            tc.assertEqual(ev[0][3], value, "the PUT carries the wrong value")
            now = etcd_range_at(self.store, self.key, self.store.revision())[self.key]
            tc.assertEqual(now[1], self.meta0[1],
                           "create_revision changed: the key was deleted and "
                           "created again")
            tc.assertEqual(now[3], self.meta0[3] + 1, "version did not go up by one")
            tc.assertEqual(set(self.store.keys(tc.prefix)), self.keys0,
                           "the key set changed")
        else:
            zk = self.store.zk
            data, st = zk.get(self.key)
            tc.assertEqual(data or b"", value)
            tc.assertEqual(self.missing, [], "the znode was missing during the save")
            tc.assertEqual(st.czxid, self.stat0.czxid,
                           "czxid changed: the znode was deleted and created again")
            tc.assertEqual(st.version, self.stat0.version + 1,
                           "data version did not go up by exactly one")
            pst = zk.exists(self.parent)
            tc.assertEqual(pst.cversion, self.pstat0.cversion,
                           "a child of %s was created or deleted during the save"
                           % self.parent)
            tc.assertEqual(set(self.store.keys(tc.root)), self.keys0,
                           "the znode set changed")
            tc.assertEqual(self.store.revision() - self.zxid0, 1,
                           "expected exactly one ZooKeeper transaction")

    def assert_untouched_after(self, value, after_counter=None):
        """The key still holds value (the other client's), the key set is the
        same, and the editor wrote nothing after the counter value
        after_counter (etcd revision / zxid; default: start())."""
        self.stop()
        tc = self.tc
        tc.assertEqual(self.store.get(self.key), value,
                       "the store lost the other client's value")
        if self.backend == "etcd":
            frm = after_counter if after_counter is not None else self.rev0
            ev = etcd_history(self.store, tc.prefix, frm)
            tc.assertEqual([(e[0], e[1], e[2], len(e[3] or b"")) for e in ev], [],
                           "the failed save wrote to the store")
            tc.assertEqual(set(self.store.keys(tc.prefix)), self.keys0,
                           "the key set changed")
        else:
            tc.assertEqual(self.missing, [], "the znode was missing during the save")
            st = self.store.zk.exists(self.key)
            tc.assertEqual(st.czxid, self.stat0.czxid, "the znode was recreated")
            tc.assertEqual(set(self.store.keys(tc.root)), self.keys0,
                           "the znode set changed")
            if after_counter is None:
                tc.assertEqual(self.store.revision(), self.zxid0,
                               "the failed save wrote to the store")
            else:
                # the other client's helper opens and closes a session of its
                # own (two more zxids): count the znode's writes instead
                tc.assertEqual(st.version, self.stat0.version + 1,
                               "the failed save wrote to the store")


def counter(store):
    return store.revision()


def wait_visible(path, value, timeout=5):
    """Poll the mount until path reads value (watch-driven invalidation)."""
    deadline = time.time() + timeout
    got = None
    while time.time() < deadline:
        try:
            with open(path, "rb") as f:
                got = f.read()
        except OSError:
            got = None
        if got == value:
            return True
        time.sleep(0.05)
    raise AssertionError("%s did not show the other client's change within %ss "
                         "(reads %r)" % (path, timeout, (got or b"")[:80]))


# --------------------------------------------------------------------------
# `put` from another process

def _cli(argv):
    if len(argv) != 5 or argv[0] != "put":
        sys.stderr.write("usage: wf_util.py put etcd|zk ADDRESS KEY HEXVALUE\n")
        return 2
    _, backend, address, key, hexval = argv
    value = bytes.fromhex(hexval)
    if backend == "etcd":
        h.EtcdClient("http://" + address).put(key, value)
    else:
        c = h.ZkClient(address)
        try:
            c.put(key, value)
        finally:
            c.close()
    return 0


if __name__ == "__main__":
    sys.exit(_cli(sys.argv[1:]))
