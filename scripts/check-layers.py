#!/usr/bin/env python3
"""The layers of `shared/src` import one way: domain <- store <- http <- (config, telemetry).

Reads each module's `crate::<module>` and `super::` paths (unit tests excluded: they may use
anything) and fails if a module imports a layer above it, or if modules import each other
in a cycle. `make check` and `make test` run it.
"""

import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "shared" / "src"
# Each top-level module and the modules it may import.
ALLOWED = {
    "domain": set(),
    "store": {"domain"},
    "http": {"domain", "store"},
    "config": {"domain", "store"},
    "telemetry": set(),
    "testing": {"domain", "store"},
}


def top_module(path: Path) -> str:
    first = path.relative_to(SRC).parts[0]
    return first.removesuffix(".rs")


def imports(path: Path) -> set[str]:
    text = path.read_text()
    text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
    return set(re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", text))


def main() -> int:
    graph: dict[str, set[str]] = {}
    problems = []
    for path in sorted(SRC.rglob("*.rs")):
        module = top_module(path)
        if module == "lib":
            continue
        if module not in ALLOWED:
            problems.append(f"{path.relative_to(SRC)}: module {module!r} has no place in the layers")
            continue
        used = imports(path) - {module}
        graph.setdefault(module, set()).update(used)
        for other in sorted(used - ALLOWED[module]):
            problems.append(f"{path.relative_to(SRC)}: {module} imports crate::{other}")

    # Cycles: a module that can reach itself.
    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    for module in sorted(graph):
        if reaches(module, module, {module}):
            problems.append(f"module cycle through {module}")
    if problems:
        print("layering:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print(f"layering: {len(graph)} modules import one way, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
