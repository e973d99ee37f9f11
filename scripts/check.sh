#!/usr/bin/env bash
# `make check`: the fast inner loop, Rust only (no Java, no DynamoDB Local, no pip or npm):
# formatting, lints, the one-way layering of shared/, the docs' links, the SDK-free build of
# the parsers the fuzzers use, and the unit tests of the library, the handlers and the
# operator CLI.
#   scripts/check.sh            all of it
#   scripts/check.sh --static   everything but the unit tests (make test runs those itself)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
log "layering of shared/src (one way between layers, no import circle between files)"
python3 scripts/check-layers.py
log "doc links (every relative link and anchor in the Markdown resolves)"
python3 scripts/check-doc-links.py
log "shared without default features (domain and body parsing: no AWS SDK, no Lambda runtime)"
cargo check --quiet -p shared --no-default-features
if cargo tree -p shared --no-default-features --edges normal | grep -qE 'aws-sdk|aws-config|lambda_http'; then
    die "shared without default features depends on the AWS SDK or the Lambda runtime"
fi

# Every function: one per folder of functions/.
functions=()
for dir in functions/*/; do
    functions+=("$(basename "$dir")")
done

# Test support (manual clock, in-memory store) must never reach the functions' binaries.
for function in "${functions[@]}"; do
    if cargo tree -p "$function" --edges normal -f '{p} [{f}]' | grep -E '^.*shared v' | grep -q test-support; then
        die "$function's build enables shared's test-support feature"
    fi
done

if [ "${1:-}" = "--static" ]; then
    exit 0
fi
log "unit tests (shared, the ${#functions[@]} functions, payments-admin)"
packages=(-p shared -p payments-admin)
for function in "${functions[@]}"; do
    packages+=(-p "$function")
done
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run "${packages[@]}" --lib --bins
else
    cargo test "${packages[@]}" --lib --bins
fi
