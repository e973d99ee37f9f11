#!/usr/bin/env bash
# `make package`: `sam build` of every function (one per folder of functions/) for arm64 (cargo-lambda cross-compiles with
# zig), then the zip that `sam deploy` would upload for each (scripts/zip-bootstrap.py: the
# same binary always gives the same zip), with its size.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
export SAM_CLI_TELEMETRY=0

export CARGO_TARGET_DIR="$REPO_ROOT/target"
# Each function's package (its folder's name) and its template resource (create-key:
# CreateKeyFunction).
packages=()
resources=()
for dir in functions/*/; do
    name="$(basename "$dir")"
    packages+=(-p "$name")
    resources+=("$(sed -E 's/(^|-)([a-z])/\U\2/g' <<<"$name")Function")
done
# One cargo-lambda build of every function first: cargo links them side by side in one
# target dir. `sam build` then runs cargo-lambda once per function, one after another, and
# finds each binary built. Never `--parallel`: several cargo-lambda processes in one target
# dir wait on cargo's lock and then race to move each other's binaries into target/lambda
# (one build in five failed that way).
log "cargo lambda build (arm64, release): ${#resources[@]} functions"
cargo lambda build --release --arm64 "${packages[@]}"
log "sam build (arm64, release)"
# No `--cached`: SAM's cache keys on each function's own folder and would serve a stale
# binary after a change in shared/. Cargo's incremental build in the one target dir is the
# cache, and it knows every dependency.
sam build --beta-features --build-dir .aws-sam/build

mkdir -p .aws-sam/artifacts
: >.aws-sam/artifacts/sizes.txt
for function in "${resources[@]}"; do
    bootstrap=".aws-sam/build/$function/bootstrap"
    [ -x "$bootstrap" ] || die "$bootstrap was not built"
    # ELF e_machine 183 is AArch64.
    python3 -c 'import sys; h = open(sys.argv[1], "rb").read(20); sys.exit(0 if h[:4] == b"\x7fELF" and int.from_bytes(h[18:20], "little") == 183 else 1)' "$bootstrap" \
        || die "$bootstrap is not an arm64 binary"
    zip_path=".aws-sam/artifacts/$function.zip"
    rm -f "$zip_path"
    python3 scripts/zip-bootstrap.py "$bootstrap" "$zip_path"
    printf '%-24s bootstrap %8d bytes   zipped %8d bytes\n' "$function" \
        "$(stat -c %s "$bootstrap")" "$(stat -c %s "$zip_path")" | tee -a .aws-sam/artifacts/sizes.txt
done
