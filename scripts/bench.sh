#!/usr/bin/env bash
# `make bench`: benchmarks the four functions the way Lambda runs them (release binaries
# against a Runtime API emulator, DynamoDB Local behind a counting proxy), against baselines
# measured in the same run: a bare lambda_runtime function and raw DynamoDB calls.
#
#   scripts/bench.sh            full run (20 cold starts, 2000 warm invocations per function)
#   scripts/bench.sh --smoke    tiny counts for CI: fails only if something breaks; runs the
#                               debug binaries in target/debug (no release build)
#   scripts/bench.sh --enforce  full run that exits 3 when a target is missed
#
# Writes target/bench/results.json, results.md and latency.png. See tools/bench/harness.py.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"


mode=full
enforce=()
for arg in "$@"; do
    case "$arg" in
        --smoke) mode=smoke ;;
        --enforce) enforce=(--enforce) ;;
        -h | --help)
            sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument $arg (expected --smoke or --enforce)" ;;
    esac
done

started=$SECONDS
PYTHON="$TOOLS_DIR/venv/bin/python"
[ -x "$PYTHON" ] || die "$PYTHON is missing; run 'make tools'"
"$PYTHON" -c 'import matplotlib' 2>/dev/null || die "matplotlib is missing from .tools/venv; run 'make tools'"

export CARGO_TARGET_DIR="$REPO_ROOT/target"
if [ "$mode" = smoke ]; then
    # The smoke run's numbers are never judged, so it runs the debug binaries, built by the
    # very command scripts/test.sh runs before the tests: after that build this one is a
    # no-op, and run on its own it still never runs stale binaries. (A `-p` build of just
    # these packages would not be a no-op: it unifies a different feature set, so it would
    # recompile part of the dependency tree.) Unlike the release build's separate
    # invocations below, features are unified across the whole workspace here.
    profile=debug
    log "cargo build --workspace --bins (debug; the smoke run builds no release binaries)"
    cargo build --quiet --workspace --bins
else
    # Separate cargo invocations on purpose: building the baselines in the same invocation
    # would unify features (lambda_runtime's default `tracing`) into the functions' binaries.
    profile=release
    log "cargo build --release (functions, then baselines and the Runtime API emulator)"
    cargo build --release --quiet -p create-account -p create-payment -p get-payment -p list-payments
    cargo build --release --quiet -p bench-raw-dynamodb
    cargo build --release --quiet -p bench-hello-lambda
    cargo build --release --quiet -p bench-runtime-api
    cargo build --quiet -p payments-admin
fi

out="$REPO_ROOT/target/bench"
mkdir -p "$out"
rm -rf "$out/logs" "$out/zips" "$out/results.json" "$out/results.md" "$out/latency.png"

harness_pid=""
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [ -n "$harness_pid" ] && kill -0 "$harness_pid" 2>/dev/null; then
        kill -TERM "$harness_pid" 2>/dev/null || true
        wait "$harness_pid" 2>/dev/null || true
    fi
    stop_dynamodb
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ddb_port="$(free_port)"
start_dynamodb "$ddb_port" -inMemory
clients_table=bench-clients
payments_table=bench-payments
audit_table=bench-audit
target/debug/payments-admin --endpoint-url "http://127.0.0.1:$ddb_port" \
    --clients-table "$clients_table" --payments-table "$payments_table" \
    --audit-table "$audit_table" tables create >&2

log "harness ($mode, $profile binaries)"
"$PYTHON" tools/bench/harness.py --mode "$mode" ${enforce[@]+"${enforce[@]}"} \
    --repo "$REPO_ROOT" --out "$out" --bin-dir "$REPO_ROOT/target/$profile" --profile "$profile" \
    --dynamodb-port "$ddb_port" --clients-table "$clients_table" \
    --payments-table "$payments_table" --audit-table "$audit_table" &
harness_pid=$!
status=0
wait "$harness_pid" || status=$?
harness_pid=""
[ "$status" -eq 0 ] || die "benchmark harness failed (exit $status); logs in $out/logs"

for file in results.json results.md latency.png; do
    [ -s "$out/$file" ] || die "$out/$file was not written"
done
log "bench ($mode) done in $((SECONDS - started)) s: $out/results.md"
