#!/usr/bin/env python3
"""Every relative link in the Markdown files leads somewhere, and the README names the two
commands.

For each tracked Markdown file (`git ls-files '*.md'`, node_modules skipped) it reads every
inline link or image `[text](target)`, every autolink `<https://…>` and every
reference-style definition `[label]: target`, outside fenced code blocks and inline code:

- a relative target must exist, relative to the file (a directory is fine; `/path` is
  relative to the root), stay inside the root and, in a git checkout, be tracked: a link to
  an ignored or uncommitted file works here and is broken on GitHub;
- an anchor (`file.md#anchor`, `#anchor`) must be a heading of that file, slugified as
  GitHub does, or an explicit `<a name>`/`id`; anchors into other kinds of file (a YAML
  file's `#L12`) are not checked;
- `http(s)://` and `mailto:` links (and any other scheme) are counted, never fetched.

`--root DIR` checks every `*.md` under DIR instead, without git: the tests use it on a tree
they build. Problems go to stderr as `file:line: target (reason)` and the exit status is 1;
otherwise one summary line and 0.
"""

import argparse
import re
import subprocess
import sys
import unicodedata
from pathlib import Path
from urllib.parse import unquote

REPO_ROOT = Path(__file__).resolve().parent.parent
# The README is the front door: whatever else moves, these stay on it.
README_MUST_NAME = ("make dev", "make test")

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
# A target is either <…> or has no spaces, with at most one level of balanced parentheses.
TARGET = r"(<[^<>\n]*>|(?:[^()\s]|\([^()\s]*\))*)"
INLINE_LINK = re.compile(r"(?<!\\)\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*" + TARGET + r'(?:\s+(?:"[^"]*"|\'[^\']*\'|\([^)]*\)))?\s*\)')
AUTOLINK = re.compile(r"<((?:https?://|mailto:)[^<>\s]+)>")
DEFINITION = re.compile(r"^ {0,3}\[((?:[^\[\]]|\\.)+)\]:[ \t]*(<[^<>\n]*>|\S+)", re.M)
HTML_ANCHOR = re.compile(r"<a\s[^>]*\b(?:name|id)\s*=\s*[\"']([^\"']+)[\"']", re.I)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def blank(text: str) -> str:
    """The same text with everything but newlines turned into spaces, so offsets and line
    numbers still match the file."""
    return re.sub(r"[^\n]", " ", text)


def strip_code(text: str) -> str:
    """Blanks fenced code blocks and inline code spans. A code span may run over a line break
    but never past a blank line, and a backtick run with no closing run of the same length
    is literal text (CommonMark)."""
    lines = text.split("\n")
    fence = None
    for i, line in enumerate(lines):
        m = FENCE.match(line)
        if fence is None:
            if m and not (m.group(1)[0] == "`" and "`" in line[m.end():]):
                fence = m.group(1)
                lines[i] = blank(line)
        else:
            lines[i] = blank(line)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line[m.end():].strip():
                fence = None
    text = "\n".join(lines)

    out = []
    for block in re.split(r"(\n[ \t]*\n)", text):
        pos = 0
        chunks = []
        for run in re.finditer(r"(?<!\\)`+", block):
            if run.start() < pos:
                continue
            closing = re.compile(r"(?<!`)" + "`" * len(run.group()) + r"(?!`)")
            end = closing.search(block, run.end())
            if end is None:
                continue
            chunks.append(block[pos:run.start()])
            chunks.append(blank(block[run.start():end.end()]))
            pos = end.end()
        chunks.append(block[pos:])
        out.append("".join(chunks))
    return "".join(out)


def heading_text(raw: str) -> str:
    """A heading's text as GitHub renders it: code spans keep their text, links and images
    keep their text, emphasis markers and HTML tags go."""
    text = re.sub(r"(`+)(.+?)\1", lambda m: m.group(2).strip(), raw)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"(?<!\w)_(.+?)_(?!\w)", r"\1", text)
    return text.strip()


def slug(text: str) -> str:
    """GitHub's anchor for a heading (github-slugger): lower case; letters, marks, numbers,
    `_`, `-` and spaces kept, every other character dropped; each space becomes `-`."""
    kept = []
    for ch in text.lower():
        category = unicodedata.category(ch)
        if ch in " -_" or category[0] in "LMN" or category == "Pc":
            kept.append(ch)
    return "".join(kept).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a file offers: its headings' slugs, with GitHub's `-1`, `-2` for
    duplicates, and explicit HTML anchors."""
    code_free = strip_code(text)
    lines = text.split("\n")
    stripped = code_free.split("\n")
    found: set[str] = set()

    def add(heading: str) -> None:
        base = slug(heading_text(heading))
        candidate, n = base, 0
        while candidate in found:
            n += 1
            candidate = f"{base}-{n}"
        found.add(candidate)

    for i, line in enumerate(lines):
        if not stripped[i].strip():
            continue  # blank, or inside a fenced block
        m = ATX_HEADING.match(line)
        if m:
            add(m.group(2) or "")
            continue
        # Setext: a paragraph line underlined with === or ---; a table row or a list item
        # above a --- is not a heading.
        u = SETEXT_UNDERLINE.match(line)
        if u and i > 0 and stripped[i - 1].strip():
            above = lines[i - 1]
            if not (ATX_HEADING.match(above) or above.lstrip().startswith(("|", "- ", "* ", "+ ", ">"))
                    or SETEXT_UNDERLINE.match(above)):
                add(above.strip())
    found.update(HTML_ANCHOR.findall(code_free))
    return found


def links(text: str):
    """(line, target) for every link of the text outside code."""
    code_free = strip_code(text)
    found = []
    for pattern in (INLINE_LINK, AUTOLINK, DEFINITION):
        for m in pattern.finditer(code_free):
            group = m.lastindex
            target = m.group(group).strip()
            if target.startswith("<") and target.endswith(">"):
                target = target[1:-1].strip()
            found.append((code_free.count("\n", 0, m.start(group)) + 1, target))
    return sorted(found)


class Checker:
    def __init__(self, root: Path, tracked: set[str] | None):
        self.root = root.resolve()
        # Paths git knows, and the directories holding them; None: no git, existence only.
        self.tracked = tracked
        self.tracked_dirs = None
        if tracked is not None:
            self.tracked_dirs = {str(Path(p).parent) for p in tracked}
            for d in list(self.tracked_dirs):
                parts = Path(d).parts
                self.tracked_dirs.update(str(Path(*parts[:k])) for k in range(1, len(parts)))
        self._anchors: dict[Path, set[str]] = {}
        self.checked = 0
        self.external = 0
        self.problems: list[str] = []

    def anchors_of(self, path: Path) -> set[str]:
        if path not in self._anchors:
            self._anchors[path] = anchors(path.read_text(encoding="utf-8"))
        return self._anchors[path]

    def report(self, file: Path, line: int, target: str, reason: str) -> None:
        self.problems.append(f"{file.relative_to(self.root)}:{line}: {target} ({reason})")

    def check_file(self, file: Path) -> None:
        for line, target in links(file.read_text(encoding="utf-8")):
            self.checked += 1
            if SCHEME.match(target):
                self.external += 1
                continue
            path_part, _, anchor = target.partition("#")
            anchor = unquote(anchor)
            if not path_part:
                if not anchor:
                    self.report(file, line, target, "empty link")
                elif anchor not in self.anchors_of(file):
                    self.report(file, line, target, f"no heading #{anchor} in this file")
                continue
            path_part = unquote(path_part.split("?", 1)[0])
            base = self.root if path_part.startswith("/") else file.parent
            dest = (base / path_part.lstrip("/")).resolve()
            try:
                rel = dest.relative_to(self.root)
            except ValueError:
                self.report(file, line, target, "outside the repository")
                continue
            if not dest.exists():
                self.report(file, line, target, "no such file or directory")
                continue
            if self.tracked is not None and rel.parts:
                known = self.tracked_dirs if dest.is_dir() else self.tracked
                if str(rel) not in known:
                    self.report(file, line, target, "exists but git does not track it")
                    continue
            if anchor and dest.is_file() and dest.suffix.lower() in (".md", ".markdown"):
                if anchor not in self.anchors_of(dest):
                    self.report(file, line, target, f"no heading #{anchor} in {rel}")

    def check_readme(self) -> None:
        readme = self.root / "README.md"
        if not readme.is_file():
            self.problems.append("README.md: missing (it must name " + " and ".join(README_MUST_NAME) + ")")
            return
        text = readme.read_text(encoding="utf-8")
        for phrase in README_MUST_NAME:
            if phrase not in text:
                self.problems.append(f"README.md: does not say `{phrase}` (the front door names both commands)")


def git_files(root: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, check=True, capture_output=True, text=True).stdout
    return [p for p in out.split("\0") if p]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, help="check every *.md under DIR, without git")
    args = parser.parse_args()

    if args.root is None:
        root = REPO_ROOT
        tracked = set(git_files(root))
        files = sorted(p for p in tracked if p.endswith(".md"))
    else:
        root = args.root
        if not root.is_dir():
            parser.error(f"{root} is not a directory")
        tracked = None
        files = sorted(str(p.relative_to(root)) for p in root.rglob("*.md") if ".git" not in p.relative_to(root).parts)
    files = [f for f in files if "node_modules" not in Path(f).parts]

    checker = Checker(root, tracked)
    for name in files:
        if (root / name).is_file():  # git may list a file deleted from the work tree
            checker.check_file(root / name)
    checker.check_readme()

    if checker.problems:
        print(*checker.problems, sep="\n", file=sys.stderr)
        print(f"doc links: {len(checker.problems)} broken", file=sys.stderr)
        return 1
    print(f"doc links: {len(files)} files, {checker.checked} links checked "
          f"({checker.external} external, not fetched); README.md names "
          + " and ".join(README_MUST_NAME))
    return 0


if __name__ == "__main__":
    sys.exit(main())
