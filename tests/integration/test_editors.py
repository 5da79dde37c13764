#!/usr/bin/python3
"""Editing a record (SPEC 5, issue 4): real editors save through the mount.

vim (Debian's defaults: swap file, writebackup, backupcopy=auto), vim with
`:set backupcopy=no`, nano and emacs -nw are driven in a terminal (tmux);
emacs --batch and `sed -i` run directly.  For every save the store is
checked with the independent client, never through the mount:

  etcd       exactly one event under the test root since the save began, a
             PUT of the edited key (so it was never absent and no other key
             was created or deleted, not even for a moment), same
             create_revision, version + 1;
  ZooKeeper  same czxid, data version + 1, parent cversion unchanged, the
             same znode set, exactly one transaction, and a poller and a data
             watch never saw the znode missing.

A save that cannot be written - another client changed the record after the
editor read it, or the new value is over the backend's limit (EFBIG) - must
be reported by the editor (screen / exit status) and the store keeps its
value.

Runs against TOPOFS_BACKEND (etcd | zk), like every module.
"""

import os
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import wf_util as w  # noqa: E402
from harness import read_file  # noqa: E402

REC = "cfg/rec"
ORIG = b"line one\nhello world\nline three\n"
NEW = b"line one\nHELLO WORLD\nline three\n"
OTHER = b"line one\nchanged by another client\nline three\n"
# over both limits (etcd ~1.5 MiB, ZooKeeper 1 MiB), as text lines
BIG_SIZE = 2000000

HAVE = {p: shutil.which(p) for p in ("vim", "nano", "emacs", "tmux", "sed")}


def need(*progs):
    missing = [p for p in progs if not HAVE[p]]
    return unittest.skipIf(missing, "not installed: %s" % " ".join(missing))


class EditorTest(h.TopofsTestCase):

    def setUp(self):
        super().setUp()
        self.load({REC: ORIG, "cfg/neighbour": b"neighbour\n",
                   "other/key": b"x\n"})
        # a clean HOME: no user vimrc / .emacs / nanorc interferes; Debian's
        # system-wide defaults apply
        self.home = h.make_tempdir("topofs-home-")
        self.addCleanup(h.remove_tempdir, self.home)
        self.env = {"HOME": self.home, "PATH": "/usr/bin:/bin",
                    "LANG": "C.UTF-8", "TERM": "xterm",
                    "XDG_CONFIG_HOME": os.path.join(self.home, ".config")}
        self.mount()
        self.path = self.p(REC)
        self.key_ = self.key(REC)

    # -- helpers
    def big_file(self):
        p = os.path.join(self.home, "big.txt")
        line = b"y" * 99 + b"\n"
        with open(p, "wb") as f:
            f.write(line * (BIG_SIZE // len(line)))
        return p

    def term(self, argv):
        t = w.Tmux(argv, env=self.env, cwd=self.home)
        self.addCleanup(t.kill)
        return t.start()

    def recorder(self):
        return w.SaveRecorder(self, self.key_).start()

    def other_client_changes(self):
        """Another client writes OTHER; returns the store's change counter
        right after, and waits until the mount shows it."""
        self.store.put(self.key_, OTHER)
        c = self.store.revision()
        w.wait_visible(self.path, OTHER)
        return c

    def vim(self, extra=()):
        t = self.term(["vim"] + list(extra) + [self.path])
        t.wait_for(r"hello world")
        t.wait_for(r"3L, \d+B")          # vim read the file
        return t

    def vim_check_defaults(self, t, bkc):
        t.type(":echo 'OPTS=' . &backupcopy . ',' . &writebackup . ',' . &swapfile")
        t.keys("Enter")
        t.wait_for(r"OPTS=%s,1,1" % bkc)

    def nano(self):
        t = self.term(["nano", self.path])
        t.wait_for(r"hello world")
        t.wait_for(r"Read 3 lines")
        return t

    def emacs(self):
        t = self.term(["emacs", "-Q", "-nw", self.path])
        t.wait_for(r"hello world", timeout=30)
        return t

    def emacs_replace(self, t):
        t.keys("M-<")
        t.keys("M-x")
        t.type("replace-string")
        t.keys("Enter")
        t.wait_for(r"Replace string")
        t.type("hello world")
        t.keys("Enter")
        t.wait_for(r"with:")
        t.type("HELLO WORLD")
        t.keys("Enter")
        t.wait_for(r"HELLO WORLD")

    def nano_replace(self, t):
        t.keys("C-\\")
        t.wait_for(r"Search \(to replace\)")
        t.type("hello world")
        t.keys("Enter")
        t.wait_for(r"Replace with")
        t.type("HELLO WORLD")
        t.keys("Enter")
        t.wait_for(r"Replace this instance")
        t.type("a")
        t.wait_for(r"Replaced 1 occurrence")

    def assert_saved(self, rec):
        rec.assert_one_update(NEW)
        self.assertEqual(read_file(self.path), NEW)

    # ------------------------------------------------------------------
    # opening a record and quitting writes nothing (swap / lock files stay
    # in memory)

    def assert_session_wrote_nothing(self, c0, keys0):
        self.assertEqual(self.store.get(self.key_), ORIG)
        if self.store.backend == "etcd":
            ev = w.etcd_history(self.store, self.prefix, c0)
            self.assertEqual([(e[1], e[2]) for e in ev], [],
                             "opening and quitting the editor wrote to the store")
        else:
            now = set(self.store.keys(self.root))
            self.assertEqual((sorted(now - keys0), sorted(keys0 - now)), ([], []))
            self.assertEqual(self.store.revision(), c0,
                             "opening and quitting the editor wrote to the store "
                             "(ZooKeeper transactions)")

    def _keys_now(self):
        return set(self.store.keys(self.root if self.store.backend == "zk"
                                   else self.prefix))

    @need("vim", "tmux")
    def test_vim_open_and_quit_writes_nothing(self):
        c0, keys0 = self.store.revision(), self._keys_now()
        t = self.vim()
        t.type(":q")
        t.keys("Enter")
        self.assertEqual(t.exit_status(), 0, t.screen())
        self.assert_session_wrote_nothing(c0, keys0)

    @need("nano", "tmux")
    def test_nano_open_and_quit_writes_nothing(self):
        c0, keys0 = self.store.revision(), self._keys_now()
        t = self.nano()
        t.keys("C-x")
        self.assertEqual(t.exit_status(), 0, t.screen())
        self.assert_session_wrote_nothing(c0, keys0)

    @need("emacs", "tmux")
    def test_emacs_open_modify_and_quit_writes_nothing(self):
        """emacs also makes its lock file .#rec (a symlink) when the buffer
        is first modified; quit without saving."""
        c0, keys0 = self.store.revision(), self._keys_now()
        t = self.emacs()
        self.emacs_replace(t)
        t.keys("M-x")
        t.type("kill-emacs")
        t.keys("Enter")
        self.assertEqual(t.exit_status(), 0, t.screen())
        self.assert_session_wrote_nothing(c0, keys0)

    # ------------------------------------------------------------------
    # saves that work

    @need("vim", "tmux")
    def test_vim_default_save(self):
        t = self.vim()
        self.vim_check_defaults(t, "auto")
        rec = self.recorder()
        t.type(":%s/hello world/HELLO WORLD/")
        t.keys("Enter")
        t.type(":wq")
        t.keys("Enter")
        self.assertEqual(t.exit_status(), 0, t.screen())
        self.assert_saved(rec)

    @need("vim", "tmux")
    def test_vim_backupcopy_no_save(self):
        t = self.vim(("-c", "set backupcopy=no"))
        self.vim_check_defaults(t, "no")
        rec = self.recorder()
        t.type(":%s/hello world/HELLO WORLD/")
        t.keys("Enter")
        t.type(":wq")
        t.keys("Enter")
        self.assertEqual(t.exit_status(), 0, t.screen())
        self.assert_saved(rec)

    @need("nano", "tmux")
    def test_nano_save(self):
        rec = self.recorder()
        t = self.nano()
        self.nano_replace(t)
        t.keys("C-o")
        t.wait_for(r"File Name to Write")
        t.keys("Enter")
        t.wait_for(r"Wrote 3 lines")
        t.keys("C-x")
        self.assertEqual(t.exit_status(), 0, t.screen())
        self.assert_saved(rec)

    @need("emacs", "tmux")
    def test_emacs_nw_save(self):
        rec = self.recorder()
        t = self.emacs()
        self.emacs_replace(t)
        t.keys("C-x", "C-s")
        t.wait_for(r"Wrote ")
        t.keys("C-x", "C-c")
        self.assertEqual(t.exit_status(), 0, t.screen())
        self.assert_saved(rec)

    @need("emacs")
    def test_emacs_batch_save(self):
        rec = self.recorder()
        rc, out, err = w.run(
            ["emacs", "-Q", "--batch", self.path, "--eval",
             '(progn (goto-char (point-min)) '
             '(while (search-forward "hello world" nil t) '
             '(replace-match "HELLO WORLD" t t)) (save-buffer))'],
            env=self.env, timeout=120)
        self.assertEqual(rc, 0, err)
        self.assert_saved(rec)

    @need("sed")
    def test_sed_i_save(self):
        rec = self.recorder()
        rc, out, err = w.run(["sed", "-i", "s/hello world/HELLO WORLD/", self.path])
        self.assertEqual((rc, err), (0, b""))
        self.assert_saved(rec)

    # ------------------------------------------------------------------
    # another client changed the record after the editor read it

    # Each editor remembers the file's mtime when it read it and asks before
    # overwriting a newer file.  Two stagings: the other client's change comes
    # more than a second after the record's previous change (the common case),
    # or within the same wall-clock second (an editor that compares whole
    # seconds, like nano, notices only if the mount's st_mtime seconds move;
    # emacs compares full timestamps and starts too slowly to stage this).

    def stage(self, same_second):
        """Before the editor starts.  same_second: re-put the record at the
        start of a second, so that the other client's change (made within the
        next ~0.9 s) falls in the same second."""
        if same_second:
            while time.time() % 1.0 > 0.05:
                time.sleep(0.01)
            self.t_orig = time.time()
            self.store.put(self.key_, ORIG)
            w.wait_visible(self.path, ORIG)
        else:
            self.t_orig = None
            time.sleep(1.1)     # the record's last change is > 1 s old

    def other_client_changes_staged(self):
        if self.t_orig is not None:
            t1 = time.time()
            if int(t1) != int(self.t_orig) or t1 - self.t_orig > 0.9:
                self.skipTest("could not stage the change within the same "
                              "second (editor too slow to start)")
        return self.other_client_changes()

    def _vim_conflict(self, same_second):
        self.stage(same_second)
        t = self.vim()
        rec = self.recorder()
        c = self.other_client_changes_staged()
        t.type(":%s/hello world/HELLO WORLD/")
        t.keys("Enter")
        t.type(":w")
        t.keys("Enter")
        t.wait_for(r"changed since reading it|W11|E\d+:")
        t.type("n")     # do not overwrite the other client's change
        t.escape()
        t.type(":q!")
        t.keys("Enter")
        t.exit_status()
        rec.assert_untouched_after(OTHER, c)

    def _nano_conflict(self, same_second):
        self.stage(same_second)
        t = self.nano()
        rec = self.recorder()
        c = self.other_client_changes_staged()
        self.nano_replace(t)
        t.keys("C-o")
        t.wait_for(r"File Name to Write")
        t.keys("Enter")
        try:
            t.wait_for(r"modified since you opened it|[Ee]rror writing")
        except w.TmuxTimeout as e:
            self.fail("nano did not warn that the file changed on disk; store "
                      "now holds %r\n%s" % (self.store.get(self.key_), e))
        t.type("n")
        t.keys("C-x")
        t.wait_for(r"Save modified buffer")
        t.type("n")
        t.exit_status()
        rec.assert_untouched_after(OTHER, c)

    def _emacs_conflict(self, same_second):
        self.stage(same_second)
        t = self.emacs()
        rec = self.recorder()
        c = self.other_client_changes_staged()
        # emacs checks the file's mtime when the buffer is first modified
        # ("changed on disk; really edit the buffer?") and again on save
        # ("has changed since visited or saved.  Save anyway?")
        t.keys("M-<")
        t.keys("M-x")
        t.type("replace-string")
        t.keys("Enter")
        t.wait_for(r"Replace string")
        t.type("hello world")
        t.keys("Enter")
        t.wait_for(r"with:")
        t.type("HELLO WORLD")
        t.keys("Enter")
        # the echo area, not the minibuffer input (which also holds
        # "HELLO WORLD" while it is typed)
        scr = t.wait_for(r"really edit the buffer|Replaced \d+ occurrence")
        if "really edit the buffer" in scr:
            t.type("n")
            # emacs' answer to "n" is an error in the echo area; it must be
            # text the prompt itself ("rec changed on disk; ...") lacks, or
            # M-x below may be typed into the prompt still open
            t.wait_for(r"File changed on disk:|File reverted:")
        else:
            t.keys("C-x", "C-s")
            t.wait_for(r"changed since visited or saved|changed on disk")
            t.type("no")
            t.keys("Enter")
            t.wait_for(r"not confirmed")
        t.keys("M-x")
        t.type("kill-emacs")
        t.keys("Enter")
        t.exit_status()
        rec.assert_untouched_after(OTHER, c)

    @need("vim", "tmux")
    def test_vim_conflict_reported(self):
        self._vim_conflict(False)

    @need("vim", "tmux")
    def test_vim_conflict_same_second_reported(self):
        self._vim_conflict(True)

    @need("nano", "tmux")
    def test_nano_conflict_reported(self):
        self._nano_conflict(False)

    @need("nano", "tmux")
    def test_nano_conflict_same_second_reported(self):
        """nano compares whole seconds of st_mtime; on ZooKeeper a change
        within the same second does not move them, so here it is the mount
        that refuses the save: nano read the record and rewrites it whole
        (O_TRUNC), which compares with the version nano read."""
        self._nano_conflict(True)

    @need("emacs", "tmux")
    def test_emacs_conflict_reported(self):
        self._emacs_conflict(False)

    @need("sed")
    def test_sed_conflict_fails(self):
        """sed -i reads the record, writes sedXXXXXX (a scratch file) and
        renames it over the record.  Here another client changes the record
        while sed runs (sed's `e` command runs it after sed read line 1; the
        sleep lets the mount's watch see the change): the rename must fail
        (compare-and-set) instead of overwriting the other client's value."""
        rec = self.recorder()
        helper = "/usr/bin/python3 %s put %s %s %s %s >/dev/null 2>&1; sleep 1.5" % (
            os.path.join(h.HERE, "wf_util.py"), self.store.backend,
            self.server.address, self.key_, OTHER.hex())
        c0 = self.store.revision()
        rc, out, err = w.run(["sed", "-i", "-e", "1e " + helper,
                              "-e", "s/hello world/HELLO WORLD/", self.path])
        self.assertEqual(self.store.get(self.key_), OTHER,
                         "sed -i overwrote a change another client made while "
                         "it ran (lost update); sed exit %d, stderr %r" % (rc, err))
        self.assertNotEqual(rc, 0, "sed -i reported success but its edit was "
                            "not stored")
        self.assertIn(b"sed", err)
        # exactly one write since sed began: the other client's
        rec.assert_untouched_after(OTHER, c0 + 1)

    # ------------------------------------------------------------------
    # the new value is over the backend's limit

    @need("vim", "tmux")
    def test_vim_efbig_reported(self):
        self._vim_efbig(())

    @need("vim", "tmux")
    def test_vim_backupcopy_no_efbig_reported(self):
        self._vim_efbig(("-c", "set backupcopy=no"))

    def _vim_efbig(self, extra):
        big = self.big_file()
        t = self.vim(extra)
        rec = self.recorder()
        t.type(":r " + big)
        t.keys("Enter")
        t.type(":w")
        t.keys("Enter")
        scr = t.wait_for(r"E\d+:", timeout=60)
        self.assertRegex(scr, r"E\d+: .*([Ww]rite|[Cc]lose|[Ff]sync|[Cc]annot|[Ee]rror)")
        t.escape()
        t.type(":q!")
        t.keys("Enter")
        t.exit_status()
        rec.assert_untouched_after(ORIG)

    @need("nano", "tmux")
    def test_nano_efbig_reported(self):
        big = self.big_file()
        rec = self.recorder()
        t = self.nano()
        t.keys("C-r")
        t.wait_for(r"File to insert")
        t.type(big)
        t.keys("Enter")
        t.wait_for(r"Read \d+ lines")
        t.keys("C-o")
        t.wait_for(r"File Name to Write")
        t.keys("Enter")
        t.wait_for(r"[Ee]rror writing.*(too large|[Ii]nput/output)", timeout=60)
        t.keys("C-x")
        t.wait_for(r"Save modified buffer")
        t.type("n")
        t.exit_status()
        rec.assert_untouched_after(ORIG)

    @need("emacs", "tmux")
    def test_emacs_efbig_reported(self):
        big = self.big_file()
        rec = self.recorder()
        t = self.emacs()
        t.keys("C-x", "i")
        t.wait_for(r"Insert file")
        t.keys("C-a", "C-k")
        t.type(big)
        t.keys("Enter")
        t.keys("C-x", "C-s")
        t.wait_for(r"too large|[Ww]rite error|[Ii]nput/output error", timeout=60)
        t.keys("M-x")
        t.type("kill-emacs")
        t.keys("Enter")
        t.exit_status()
        rec.assert_untouched_after(ORIG)

    @need("sed")
    def test_sed_efbig_fails(self):
        # a record under both limits that `sed p` doubles to over them
        val = (b"z" * 99 + b"\n") * 9000          # 900,000 bytes
        self.store.put(self.key_, val)
        w.wait_visible(self.path, val)
        rec = self.recorder()
        rc, out, err = w.run(["sed", "-i", "p", self.path])
        self.assertNotEqual(rc, 0, "sed -i reported success for a value over "
                            "the limit")
        self.assertIn(b"sed", err)
        rec.assert_untouched_after(val)


if __name__ == "__main__":
    h.main()
