#!/usr/bin/python3
"""The documentation's links hold (ctest: docs.links).

    check_links.py [REPO]        (default: two levels above this file)

Checks README.md, CONTRIBUTING.md and docs/*.md:

- every relative link and image, `[text](target)`, `![alt](target)`,
  `[ref]: target` and HTML `href=`/`src=`, names a file or directory that
  exists in the repository (URLs with a scheme are not fetched);
- a `#anchor`, in the same file or in another Markdown file, names a
  heading there, with GitHub's rule for heading anchors (lower case,
  punctuation dropped, spaces to hyphens, -1, -2... for repeats);
- README.md starts with the two commands .ci/run and the users rely on: its
  first code block, before any section heading, runs `tests/quickstart`
  and `tests/run-all`, both executable, and .ci/run runs tests/run-all.

Links inside code blocks and code spans are not links and are skipped.
Prints one line per problem (FILE:LINE: ...) and exits 1 if there is any.
"""

import os
import re
import sys
import urllib.parse

FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
REFDEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""")
CODESPAN = re.compile(r"(`+)(?:(?!\1).)*?\1")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def doc_files(repo):
    files = [os.path.join(repo, "README.md"),
             os.path.join(repo, "CONTRIBUTING.md")]
    docs = os.path.join(repo, "docs")
    if os.path.isdir(docs):
        files += sorted(os.path.join(docs, f) for f in os.listdir(docs)
                        if f.endswith(".md"))
    return files


def prose_lines(text):
    """(line number, line) outside fenced code blocks."""
    fence = None
    for n, line in enumerate(text.split("\n"), 1):
        m = FENCE.match(line)
        if fence:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            continue
        if m:
            fence = m.group(1)
            continue
        yield n, line


def heading_text(raw):
    """A heading's text as GitHub renders it: code spans, links and
    emphasis reduced to their text."""
    t = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", raw)
    t = re.sub(r"(`+)(.*?)\1", r"\2", t)
    t = re.sub(r"<[^>]+>", "", t)
    t = re.sub(r"(\*\*|__|\*|_)(\S(?:.*?\S)?)\1", r"\2", t)
    return t


def slug(raw):
    t = heading_text(raw).strip().lower()
    t = "".join(c for c in t if c.isalnum() or c in " -_")
    return t.replace(" ", "-")


def anchors(path, cache={}):
    if path not in cache:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        seen, out = {}, set()
        for _, line in prose_lines(text):
            m = HEADING.match(line)
            if not m:
                continue
            s = slug(m.group(2))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else "%s-%d" % (s, n))
        out |= set(re.findall(r"""<a\s+(?:name|id)=["']([^"']+)["']""", text))
        cache[path] = out
    return cache[path]


def links(text):
    """(line number, target) of every link outside code."""
    for n, line in prose_lines(text):
        m = REFDEF.match(line)
        if m:
            yield n, m.group(1)
            continue
        line = CODESPAN.sub("", line)
        for m in INLINE.finditer(line):
            yield n, m.group(1)
        for m in HTML.finditer(line):
            yield n, m.group(1)


def check_link(repo, src, target):
    """None, or what is wrong with `target` in file `src`."""
    target = target.strip("<>")
    if SCHEME.match(target) or target.startswith("//"):
        return None
    path, _, frag = target.partition("#")
    path = urllib.parse.unquote(path)
    frag = urllib.parse.unquote(frag)
    if path.startswith("/"):
        return "absolute link %s: use a relative one" % target
    dest = os.path.normpath(os.path.join(os.path.dirname(src), path)) if path else src
    if os.path.relpath(dest, repo).startswith(".."):
        return "link %s leaves the repository" % target
    if not os.path.exists(dest):
        return "link %s: no such file %s" % (target, os.path.relpath(dest, repo))
    if frag:
        if not dest.endswith(".md") or os.path.isdir(dest):
            return "link %s: an anchor in something that is not a Markdown file" % target
        if frag not in anchors(dest):
            return "link %s: no heading with anchor #%s in %s" % (
                target, frag, os.path.relpath(dest, repo))
    return None


def check_readme_start(repo):
    """The README's first code block, before any section, runs the
    quickstart and the test suite, and .ci/run runs the same test command."""
    problems = []
    readme = os.path.join(repo, "README.md")
    with open(readme, encoding="utf-8") as f:
        lines = f.read().split("\n")
    block, inside = None, False
    for line in lines:
        if not inside and line.startswith("## "):
            break
        if FENCE.match(line):
            if inside:
                break
            inside, block = True, []
            continue
        if inside:
            block.append(line.strip())
    commands = [c for c in (block or []) if c and not c.startswith("#")]
    if commands != ["tests/quickstart", "tests/run-all"]:
        problems.append("README.md: the first code block, before any section, "
                        "must run exactly tests/quickstart and tests/run-all "
                        "(found %r)" % commands)
    for cmd in ("tests/quickstart", "tests/run-all"):
        p = os.path.join(repo, cmd)
        if not (os.path.isfile(p) and os.access(p, os.X_OK)):
            problems.append("README.md: %s is not an executable file" % cmd)
    ci = os.path.join(repo, ".ci", "run")
    if os.path.exists(ci):
        with open(ci, encoding="utf-8") as f:
            if "tests/run-all" not in f.read():
                problems.append(".ci/run does not run tests/run-all, the "
                                "README's test command")
    return problems


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.abspath(argv[1] if len(argv) > 1 else os.path.join(here, "..", ".."))
    problems, count = [], 0
    for src in doc_files(repo):
        rel = os.path.relpath(src, repo)
        if not os.path.exists(src):
            problems.append("%s: missing" % rel)
            continue
        with open(src, encoding="utf-8") as f:
            text = f.read()
        for n, target in links(text):
            count += 1
            why = check_link(repo, src, target)
            if why:
                problems.append("%s:%d: %s" % (rel, n, why))
    problems += check_readme_start(repo)
    for p in problems:
        print(p)
    print("check_links: %d links in %d files, %d problems"
          % (count, len(doc_files(repo)), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
