#!/usr/bin/env python3
"""After the test suite: no API key and no key digest appears in any log line.

Test processes write their logs (trace level, production format) to target/test-logs/*.jsonl
and every key they issued or presented to target/test-logs/*.keys; the end-to-end and
artifact tests leave the functions' own output in target/e2e-logs/. A key may appear only as
its 12-character display prefix, and its SHA-256 digest never.
"""

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOG_DIRS = [ROOT / "target" / "test-logs", ROOT / "target" / "e2e-logs"]
DISPLAY_PREFIX = 12


def main() -> int:
    keys = set()
    for path in (ROOT / "target" / "test-logs").glob("*.keys"):
        keys.update(line.strip() for line in path.read_text().splitlines())
    # Only well-formed keys (57 characters) are secrets worth checking; junk presented by the
    # negative tests ("garbage") could match ordinary log text by chance.
    keys = {k for k in keys if len(k) == 57 and k.startswith(("sk_test_", "sk_live_"))}
    needles = {}
    for key in keys:
        needles[key[DISPLAY_PREFIX:]] = "an API key"
        needles[hashlib.sha256(key.encode()).hexdigest()] = "a key digest"

    lines = 0
    leaks = []
    for directory in LOG_DIRS:
        for path in sorted(directory.glob("*")):
            if path.suffix == ".keys" or not path.is_file():
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                lines += 1
                for needle, what in needles.items():
                    if needle in line:
                        leaks.append(f"{path.relative_to(ROOT)}:{number}: {what}")

    if len(keys) < 20 or lines < 1000:
        print(f"log hygiene: too little to check ({len(keys)} keys, {lines} log lines); "
              "did the suite run with log capture?", file=sys.stderr)
        return 1
    if leaks:
        print("log hygiene: secrets found in logs:", *leaks[:50], sep="\n  ", file=sys.stderr)
        return 1
    print(f"log hygiene: {len(keys)} keys and their digests absent from {lines} log lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
