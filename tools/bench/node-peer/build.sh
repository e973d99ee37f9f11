#!/usr/bin/env bash
# Builds the Node.js peer of create-payment (see README.md) and its two deployable zips.
#
#   tools/bench/node-peer/build.sh OUT_DIR
#
# 1. dist/index.mjs (next to this script): index.mjs and the AWS SDK bundled by esbuild into
#    one minified ES module for Node 20. It runs on its own: `node dist/index.mjs`.
# 2. OUT_DIR/node-peer-bundled.zip: that bundle as `index.mjs`, what you deploy when you
#    bundle the SDK yourself.
#    OUT_DIR/node-peer-handler-only.zip: index.mjs alone, minified, with the SDK left as an
#    import, what you deploy relying on the SDK that AWS's managed nodejs20.x runtime ships.
#
# The zips are deterministic (fixed timestamps, fixed modes, deflate level 9, as
# scripts/zip-bootstrap.py makes the Rust ones), and each one's size in bytes is printed.
# Needs the dev dependencies: npm ci --prefix tools/bench/node-peer --no-audit --no-fund
set -euo pipefail

if [ "$#" -ne 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    echo "usage: $0 OUT_DIR" >&2
    [ "$#" -eq 1 ] && exit 0
    exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out_dir=$1
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
esbuild="$here/node_modules/.bin/esbuild"
if [ ! -x "$esbuild" ]; then
    echo "error: $esbuild is missing; run: npm ci --prefix tools/bench/node-peer --no-audit --no-fund" >&2
    exit 1
fi

mkdir -p "$here/dist"
build_dir="$(mktemp -d)"
trap 'rm -rf "$build_dir"' EXIT

# Shared options: one ES module for Node 20, minified, no source map, no build-time paths or
# dates in the output. `module` first, so the SDK's ES modules (dist-es) are what is bundled,
# the form tree shaking works on. The banner gives the CommonJS parts of the dependency tree
# a `require` for Node's built-in modules, which an ES module does not have.
common=(--bundle --format=esm --platform=node --target=node20 --minify --legal-comments=none
    --main-fields=module,main --log-level=warning
    "--banner:js=import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);")

"$esbuild" "$here/index.mjs" "${common[@]}" --outfile="$here/dist/index.mjs"
# What the managed runtime would import: the SDK from its own node_modules.
"$esbuild" "$here/index.mjs" "${common[@]}" --external:@aws-sdk/* --outfile="$build_dir/index.mjs"

python3 - "$here/dist/index.mjs" "$out_dir/node-peer-bundled.zip" \
    "$build_dir/index.mjs" "$out_dir/node-peer-handler-only.zip" <<'PY'
import os
import stat
import sys
import zipfile
from pathlib import Path

FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # as scripts/zip-bootstrap.py
COMPRESS_LEVEL = 9


def zip_one(source: Path, dest: Path) -> int:
    info = zipfile.ZipInfo("index.mjs", date_time=FIXED_DATE_TIME)
    info.create_system = 3  # Unix, so that the mode below is read
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    partial = dest.with_name(dest.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL) as archive:
        archive.writestr(info, source.read_bytes(), compresslevel=COMPRESS_LEVEL)
    os.replace(partial, dest)
    return dest.stat().st_size


args = sys.argv[1:]
for source, dest in zip(args[0::2], args[1::2]):
    source, dest = Path(source), Path(dest)
    print(f"{dest.name} index.mjs {source.stat().st_size} bytes zipped {zip_one(source, dest)} bytes")
PY
