#!/usr/bin/env bash
# `make test`: formatting and lints, template checks, the arm64 deploy artifacts, then every
# test (unit, integration against DynamoDB Local, end to end through `cargo lambda watch`,
# the artifacts under qemu) with a private DynamoDB Local on a free loopback port, stopped
# afterwards. Exits non-zero on any failure.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

# fmt, clippy, layering, the SDK-free build (`make check` without its unit tests, which
# run below with everything else).
"$REPO_ROOT/scripts/check.sh" --static

"$REPO_ROOT/scripts/validate-template.sh"
log "the checkers' own tests: each fails on what it must refuse (tests/scripts, tests/docs)"
python -m pytest -q -p no:cacheprovider tests/scripts tests/docs
"$REPO_ROOT/scripts/package.sh"

log "building binaries (the end-to-end test runs them through cargo lambda watch; the bench smoke run reuses them)"
cargo build --workspace --bins

# Logs and keys seen by this run, for the log hygiene check at the end.
rm -rf target/test-logs target/e2e-logs

trap stop_dynamodb EXIT
port="$(free_port)"
start_dynamodb "$port" -inMemory
export DYNAMODB_ENDPOINT="http://127.0.0.1:$port"

# The fault campaign (tests/tests/chaos.rs) runs 60 s with the rest, from one fixed seed
# so that a run here is repeatable; `make chaos` draws a new seed each time.
export CHAOS_SEED="${CHAOS_SEED:-1}"
if cargo nextest --version >/dev/null 2>&1; then
    log "cargo nextest run"
    cargo nextest run --workspace --no-fail-fast
else
    log "cargo test (cargo-nextest not installed)"
    cargo test --workspace --no-fail-fast
fi

log "contract tests: docs/openapi.yaml against the running stack (schemathesis)"
"$REPO_ROOT/scripts/contract-test.sh"

log "fuzzing the parsers (short run)"
"$REPO_ROOT/scripts/fuzz.sh" 10

log "benchmark harness smoke run (debug binaries; numbers are not judged here; see make bench)"
"$REPO_ROOT/scripts/bench.sh" --smoke

log "log hygiene: no key or digest in any log line of the run"
python3 scripts/check-log-hygiene.py
