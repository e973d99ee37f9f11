#!/usr/bin/env python3
"""The layers of `shared/src` import one way, and no files import each other in a circle.

Layers: domain <- store <- http <- config (and telemetry, testing beside them, telemetry
reading only domain); json, the line writer, below http and telemetry. Each file's
imports are read from its `crate::`, `super::` and `self::` paths and its `use` items, groups
included (`use super::{a::X, b::{c, d}}`); unit-test modules (`#[cfg(test)] mod tests`) are
left out, since tests may import anything. A name imported through a re-export
(`use super::ApiError`, which http/mod.rs takes from `error`) counts as an import of the
file that defines it: a folder's mod.rs naming its own children is not an import, so a
circle closed through one would otherwise pass. Fails when a top-level module imports a
layer it may not, or when any files (not only top-level modules) import each other in a
circle, naming the files in it. `make check` and `make test` run it.

usage: check-layers.py [--src DIR]   (default: shared/src)
"""

import argparse
import re
import sys
from pathlib import Path

DEFAULT_SRC = Path(__file__).resolve().parent.parent / "shared" / "src"
# Each top-level module and the modules it may import.
ALLOWED = {
    "string_enum": set(),
    "json": set(),
    "domain": set(),
    "store": {"domain"},
    "http": {"domain", "store", "json"},
    "config": {"domain", "store", "http"},
    "telemetry": {"domain", "json"},
    "testing": {"domain", "store", "http"},
}

IDENT = r"[a-z_][a-z0-9_]*"
# A path's items as well as its modules: a name a module re-exports is followed on.
NAME = r"[A-Za-z_][A-Za-z0-9_]*"


def module_path(path: Path, src: Path) -> tuple[str, ...]:
    """`http/error.rs` -> ("http", "error"); `store/mod.rs` -> ("store",)."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    return tuple(parts)


def code_of(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    text = re.split(r"#\[cfg\(test\)\]\s*mod tests\b", text)[0]
    text = re.sub(r"//[^\n]*", "", text)  # comments (doc links mention paths too)
    return text


def expand_groups(text: str) -> str:
    """`crate::{a::X, b::{c, d}}` -> `crate::a::X crate::b::c crate::b::d`."""
    group = re.compile(r"\b((?:crate|super|self)(?:::" + IDENT + r")*)::\{")
    while True:
        match = group.search(text)
        if not match:
            return text
        depth, end = 1, match.end()
        while depth and end < len(text):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            end += 1
        body = text[match.end():end - 1]
        items, depth, item = [], 0, ""
        for ch in body + ",":
            if ch == "," and depth == 0:
                if item.strip():
                    items.append(item.strip())
                item = ""
                continue
            depth += {"{": 1, "}": -1}.get(ch, 0)
            item += ch
        prefix = match.group(1)
        expanded = " ".join(
            prefix if item == "self" else f"{prefix}::{item}" for item in items
        )
        text = text[:match.start()] + expanded + text[end:]


def referenced(here: tuple[str, ...], text: str) -> set[tuple[str, ...]]:
    """The module paths a file's code names, resolved against its own place."""
    paths = set()
    for head, rest in re.findall(r"\b(crate|super|self)((?:::" + NAME + r")+)", text):
        parts = rest.split("::")[1:]
        if head == "crate":
            base: tuple[str, ...] = ()
        else:
            # `self` is the file's own module (foo for foo/mod.rs, foo::bar for
            # foo/bar.rs), `super` its parent.
            base = here if head == "self" else here[:-1]
            while parts and parts[0] == "super":
                base, parts = base[:-1], parts[1:]
        paths.add(base + tuple(parts))
    return paths


def use_items(text: str) -> list[tuple[tuple[str, ...], str]]:
    """Each name a file's `use` declarations bring in, with the path it was written with:
    `pub use error::{Entity, StoreError as E};` -> (("error", "Entity"), "Entity"),
    (("error", "StoreError"), "E"). Globs (`*`) name nothing and are skipped."""
    items = []

    def leaves(tree: str, prefix: tuple[str, ...]):
        tree = tree.strip().removeprefix("::")
        depth = 0
        for i, ch in enumerate(tree):
            if ch == "{" and depth == 0:
                head = tuple(p for p in tree[:i].strip().rstrip(":").split("::") if p)
                body, depth, item = tree[i + 1:tree.rindex("}")], 0, ""
                for c in body + ",":
                    if c == "," and depth == 0:
                        if item.strip():
                            leaves(item, prefix + head)
                        item = ""
                        continue
                    depth += {"{": 1, "}": -1}.get(c, 0)
                    item += c
                return
            depth += {"{": 1, "}": -1}.get(ch, 0)
        alias = re.fullmatch(r"(.*?)\s+as\s+(" + NAME + r")", tree, re.S)
        path, name = (alias.group(1), alias.group(2)) if alias else (tree, None)
        parts = prefix + tuple(p.strip() for p in path.split("::") if p.strip())
        if parts and parts[-1] == "self":
            parts = parts[:-1]
        if not parts or parts[-1] == "*" or name == "_":
            return
        items.append((parts, name or parts[-1]))

    for tree in re.findall(r"\buse\s+([^;]+);", text):
        leaves(tree, ())
    return items


def absolute(
    here: tuple[str, ...], parts: tuple[str, ...], known: set[tuple[str, ...]]
) -> tuple[str, ...] | None:
    """A `use` path as a path from the crate root; None for another crate's (`std::`)."""
    head, rest = parts[0], parts[1:]
    if head == "crate":
        return rest
    if head in ("self", "super"):
        base = here if head == "self" else here[:-1]
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
        return base + rest
    if here + (head,) in known:  # a child module, named from its parent
        return here + parts
    return None


def resolve(path: tuple[str, ...], known: set[tuple[str, ...]]) -> tuple[str, ...] | None:
    """The longest known module a path starts with."""
    for i in range(len(path), 0, -1):
        if path[:i] in known:
            return path[:i]
    return None


def modules_of(
    path: tuple[str, ...],
    known: set[tuple[str, ...]],
    names: dict[tuple[str, ...], dict[str, tuple[str, ...]]],
) -> set[tuple[str, ...]]:
    """The module a path names and, when the name it takes from there was brought in by a
    `use`, the module that `use` names, and so on to the file that defines it."""
    found: set[tuple[str, ...]] = set()
    while (module := resolve(path, known)) is not None and module not in found:
        found.add(module)
        rest = path[len(module):]
        if not rest or rest[0] not in names.get(module, {}):
            break
        path = names[module][rest[0]] + rest[1:]
    return found


def cycles(graph: dict[tuple[str, ...], set[tuple[str, ...]]]) -> list[list[tuple[str, ...]]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict = {}
    low: dict = {}
    stack: list = []
    on: set = set()
    found: list = []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def check(src: Path) -> list[str]:
    files = {module_path(p, src): p for p in sorted(src.rglob("*.rs"))}
    files.pop(("lib",), None)
    files.pop(("main",), None)
    known = set(files)
    code = {module: code_of(path) for module, path in files.items()}
    # What each module's `use` declarations name: another file's `super::X` or
    # `crate::a::X` goes on to the file that defines X.
    names: dict[tuple[str, ...], dict[str, tuple[str, ...]]] = {}
    imports: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for module, text in code.items():
        names[module], imports[module] = {}, referenced(module, expand_groups(text))
        for parts, name in use_items(text):
            target = absolute(module, parts, known)
            if target is not None:
                names[module][name] = target
                imports[module].add(target)
    graph: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    problems = []
    for module, path in files.items():
        rel = path.relative_to(src)
        top = module[0]
        if top not in ALLOWED:
            problems.append(f"{rel}: module {top!r} has no place in the layers")
            continue
        is_dir = path.name == "mod.rs"
        deps = set()
        for target in imports[module]:
            for dep in modules_of(target, known, names):
                if dep == module:
                    continue
                # A folder's mod.rs naming its own children declares or re-exports them;
                # who imports through it is led on to the child (modules_of).
                if is_dir and dep[: len(module)] == module:
                    continue
                deps.add(dep)
        problems += [
            f"{rel}: {top} imports crate::{'::'.join(dep)}"
            for dep in sorted(deps)
            if dep[0] != top and dep[0] not in ALLOWED[top]
        ]
        graph[module] = deps
    for component in cycles(graph):
        names_in = [str(files[m].relative_to(src)) for m in component]
        problems.append("import circle between " + ", ".join(names_in))
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC)
    args = parser.parse_args()
    problems = check(args.src)
    if problems:
        print("layering:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    count = sum(1 for _ in args.src.rglob("*.rs"))
    print(f"layering: {count} files import one way, no import circle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
