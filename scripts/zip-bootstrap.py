#!/usr/bin/env python3
"""Zips a Lambda `bootstrap` binary the way it is deployed: one entry named `bootstrap`, a
regular file with mode 0755, deflate level 9.

    scripts/zip-bootstrap.py SRC_BINARY DEST_ZIP

The entry's timestamp is fixed (1980-01-01 00:00:00, the earliest a zip can hold) and
nothing else in the archive depends on the file system or the clock, so the same binary
always gives the same zip, byte for byte. scripts/package.sh runs this for the deploy
artifacts; tools/bench/harness.py imports it (by path) and calls `zip_bootstrap`.
Standard library only.
"""

from __future__ import annotations

import os
import stat
import sys
import zipfile
from pathlib import Path

ENTRY_NAME = "bootstrap"
ENTRY_MODE = 0o755
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
COMPRESS_LEVEL = 9


def zip_bootstrap(source: str | os.PathLike, dest: str | os.PathLike, level: int = COMPRESS_LEVEL) -> int:
    """Writes `dest` (replacing it) with `source` as its one `bootstrap` entry; returns the
    zip's size in bytes. `level` is for callers that only exercise the path (the benchmark's
    smoke run zips 180 MB debug binaries); deploy zips use the default."""
    source, dest = Path(source), Path(dest)
    data = source.read_bytes()
    info = zipfile.ZipInfo(ENTRY_NAME, date_time=FIXED_DATE_TIME)
    info.create_system = 3  # Unix, so that the mode below is read
    info.external_attr = (stat.S_IFREG | ENTRY_MODE) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    partial = dest.with_name(dest.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        archive.writestr(info, data, compresslevel=level)
    os.replace(partial, dest)
    return dest.stat().st_size


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print(f"usage: {argv[0]} SRC_BINARY DEST_ZIP", file=sys.stderr)
        return 0 if len(argv) == 2 and argv[1] in ("-h", "--help") else 2
    source = Path(argv[1])
    if not source.is_file():
        print(f"error: {source} is not a file", file=sys.stderr)
        return 1
    zip_bootstrap(source, argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
