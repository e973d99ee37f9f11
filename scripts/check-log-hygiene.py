#!/usr/bin/env python3
"""After the test suite: no API key, no key digest and no key's IP list appears in any log
line.

Test processes write their logs (trace level, production format) to target/test-logs/*.jsonl
and every key they issued or presented to target/test-logs/*.keys; the end-to-end and
artifact tests leave the functions' own output in target/e2e-logs/. A key (secret `sk_` or
restricted `rk_`) may appear only as its 12-character display prefix, and its SHA-256 digest
never. A key's `allowed_ips` never appear either: the logs name no range in CIDR form (the
services log no address range of their own, so any is a key's). A run that recorded too few
keys or lines, or no restricted key, fails: it would prove nothing.
"""

import hashlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DISPLAY_PREFIX = 12
KEY_PREFIXES = ("sk_test_", "sk_live_", "rk_test_", "rk_live_")
# An IPv4 or IPv6 range in CIDR form, as a key's allowed_ips holds them.
CIDR = re.compile(
    r"(?<![\w.:])(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})/\d{1,3}(?![\w.])"
)


def leaks_in(line: str, needles: dict[str, str]) -> list[str]:
    """What of `needles` (a secret's text -> what it is), or which IP range, `line` shows."""
    found = [what for needle, what in needles.items() if needle in line]
    found.extend(f"an IP range ({match})" for match in CIDR.findall(line))
    return found


def main(root: Path = ROOT) -> int:
    log_dirs = [root / "target" / "test-logs", root / "target" / "e2e-logs"]
    keys = set()
    for path in (root / "target" / "test-logs").glob("*.keys"):
        keys.update(line.strip() for line in path.read_text().splitlines())
    # Only well-formed keys (57 characters) are secrets worth checking; junk presented by the
    # negative tests ("garbage") could match ordinary log text by chance.
    keys = {k for k in keys if len(k) == 57 and k.startswith(KEY_PREFIXES)}
    needles = {}
    for key in keys:
        needles[key[DISPLAY_PREFIX:]] = "an API key"
        needles[hashlib.sha256(key.encode()).hexdigest()] = "a key digest"

    lines = 0
    leaks = []
    for directory in log_dirs:
        for path in sorted(directory.glob("*")):
            if path.suffix == ".keys" or not path.is_file():
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                lines += 1
                for what in leaks_in(line, needles):
                    leaks.append(f"{path.relative_to(root)}:{number}: {what}")

    restricted = sum(key.startswith("rk_") for key in keys)
    if len(keys) < 20 or lines < 1000:
        print(f"log hygiene: too little to check ({len(keys)} keys, {lines} log lines); "
              "did the suite run with log capture?", file=sys.stderr)
        return 1
    # The suite creates restricted keys (the self-service and end-to-end tests): a run that
    # recorded none checked nothing of them.
    if restricted == 0:
        print(f"log hygiene: no restricted (rk_) key among the {len(keys)} recorded; "
              "did the self-service tests run and record their keys?", file=sys.stderr)
        return 1
    if leaks:
        print("log hygiene: secrets found in logs:", *leaks[:50], sep="\n  ", file=sys.stderr)
        return 1
    print(f"log hygiene: {len(keys)} keys ({restricted} restricted) and their digests, and any "
          f"IP range, absent from {lines} log lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
