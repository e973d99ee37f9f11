#!/usr/bin/env bash
# `make bench`: benchmarks five functions (create-account, create-payment, get-payment,
# list-payments and create-key) the way Lambda runs them (release binaries
# against a Runtime API emulator, DynamoDB Local behind TLS on loopback), against baselines
# and a peer measured in the same run: a bare lambda_runtime function, the raw DynamoDB calls,
# create-payment built with ring, and create-payment on Node.js 20 (tools/bench/node-peer).
#
#   scripts/bench.sh            full run (20 cold starts, 2000 warm invocations per subject)
#   scripts/bench.sh --smoke    tiny counts for CI: fails only if something breaks; runs the
#                               debug binaries in target/debug (no release build, no sam build),
#                               and first the peer's parity check (tools/bench/peer_parity.py)
#   scripts/bench.sh --enforce  full run that exits 3 when a target is missed
#   scripts/bench.sh --profile  where a warm invocation's instructions go: callgrind's
#                               per-function counts for create-payment, hello-world and the
#                               raw calls, built with line tables (target/profiling), written
#                               to target/bench/profile.md
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
        --profile) mode=profile ;;
        --enforce) enforce=(--enforce) ;;
        -h | --help)
            sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument $arg (expected --smoke, --enforce or --profile)" ;;
    esac
done

started=$SECONDS
PYTHON="$TOOLS_DIR/venv/bin/python"
[ -x "$PYTHON" ] || die "$PYTHON is missing; run 'make tools'"
"$PYTHON" -c 'import matplotlib' 2>/dev/null || die "matplotlib is missing from .tools/venv; run 'make tools'"
for tool in valgrind openssl node; do
    command -v "$tool" >/dev/null || die "$tool is missing; run 'make system-deps' (node: see README)"
done
[ -d tools/bench/node-peer/node_modules ] || die "the peer's packages are missing; run 'make tools'"

export CARGO_TARGET_DIR="$REPO_ROOT/target"
out="$REPO_ROOT/target/bench"
variants="$out/variants"
mkdir -p "$out" "$variants"
rm -rf "$out/logs" "$out/parity" "$out/zips" "$out/ca" "$out/results.json" "$out/results.md" "$out/latency.png" \
    "$out/profile.md"
mkdir -p "$out/zips"

# The ring builds of create-payment and of the raw baseline first, copied aside: the default
# builds that follow put the binaries the rest of the run uses back in place (the compiled
# dependencies of both feature sets stay in the target dir, so switching is a relink).
ring=(-p create-payment -p bench-raw-dynamodb --no-default-features --features tls-ring)
if [ "$mode" = profile ]; then
    # The release profile with line tables and symbols, in a target dir of its own so that
    # the release binaries the full run measures stay as they are.
    profile=release
    export CARGO_TARGET_DIR="$REPO_ROOT/target/profiling"
    export CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_PROFILE_RELEASE_STRIP=false
    log "cargo build --release with line tables: create-payment, the baselines and tools"
    cargo build --release --quiet -p create-account -p create-payment
    cargo build --release --quiet -p bench-raw-dynamodb
    cargo build --release --quiet -p bench-hello-lambda
    cargo build --release --quiet -p bench-runtime-api -p bench-tls-front
    unset CARGO_PROFILE_RELEASE_DEBUG CARGO_PROFILE_RELEASE_STRIP
    export CARGO_TARGET_DIR="$REPO_ROOT/target"
    cargo build --quiet -p payments-admin
elif [ "$mode" = smoke ]; then
    # The smoke run's numbers are never judged, so it runs the debug binaries, built by the
    # very command scripts/test.sh runs before the tests (so that build is a no-op here).
    profile=debug
    log "cargo build (debug): the ring variants, then --workspace --bins"
    cargo build --quiet "${ring[@]}"
    cp target/debug/create-payment "$variants/create-payment-ring"
    cp target/debug/bench-raw-dynamodb "$variants/bench-raw-dynamodb-ring"
    cargo build --quiet --workspace --bins
else
    # Separate cargo invocations on purpose: building the baselines in the same invocation
    # would unify features (lambda_runtime's default `tracing`) into the functions' binaries.
    profile=release
    log "cargo build --release: the ring variants, the functions, the baselines and tools"
    cargo build --release --quiet "${ring[@]}"
    cp target/release/create-payment "$variants/create-payment-ring"
    cp target/release/bench-raw-dynamodb "$variants/bench-raw-dynamodb-ring"
    cargo build --release --quiet -p create-account -p create-payment -p get-payment -p list-payments \
        -p create-key
    cargo build --release --quiet -p bench-raw-dynamodb
    cargo build --release --quiet -p bench-hello-lambda
    cargo build --release --quiet -p bench-runtime-api -p bench-tls-front
    cargo build --quiet -p payments-admin
    # The arm64 zips `sam deploy` would upload, and create-payment's ring build zipped the same
    # way, for the size rows.
    scripts/package.sh
    log "cargo lambda build --arm64: create-payment with ring"
    PATH="$TOOLS_DIR/venv/bin:$PATH" cargo lambda build --quiet --release --arm64 \
        -p create-payment --no-default-features --features tls-ring --lambda-dir "$variants/lambda"
    python3 scripts/zip-bootstrap.py "$variants/lambda/create-payment/bootstrap" \
        "$out/zips/create-payment-ring.zip"
    echo "create-payment-ring $(stat -c %s "$out/zips/create-payment-ring.zip")" >>"$out/zips/sizes.txt"
fi

if [ "$mode" != profile ]; then
    log "the peer: bundle and zip (tools/bench/node-peer/build.sh)"
    tools/bench/node-peer/build.sh "$out/zips" >"$out/zips/node-peer.txt"
    for zip in node-peer-bundled node-peer-handler-only; do
        echo "$zip $(stat -c %s "$out/zips/$zip.zip")" >>"$out/zips/sizes.txt"
    done
fi

log "a throwaway CA for TLS on loopback (tools/bench/make-ca.sh)"
tools/bench/make-ca.sh "$out/ca"

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

if [ "$mode" = smoke ]; then
    log "parity: the peer answers as create-payment does (tools/bench/peer_parity.py)"
    "$PYTHON" tools/bench/peer_parity.py --bin-dir "$REPO_ROOT/target/$profile" \
        --peer tools/bench/node-peer/dist/index.mjs --out "$out/parity" --ca-dir "$out/ca" \
        --dynamodb-port "$ddb_port" --clients-table "$clients_table" \
        --payments-table "$payments_table" --audit-table "$audit_table" &
    harness_pid=$!
    status=0
    wait "$harness_pid" || status=$?
    harness_pid=""
    [ "$status" -eq 0 ] || die "the peer does not answer as create-payment does (exit $status); logs in $out/parity/logs"
fi

bin_dir="$REPO_ROOT/target/$profile"
[ "$mode" = profile ] && bin_dir="$REPO_ROOT/target/profiling/release"
log "harness ($mode, $profile binaries)"
"$PYTHON" tools/bench/harness.py --mode "$mode" ${enforce[@]+"${enforce[@]}"} \
    --repo "$REPO_ROOT" --out "$out" --bin-dir "$bin_dir" --profile "$profile" \
    --variant-dir "$variants" --ca-dir "$out/ca" \
    --dynamodb-port "$ddb_port" --clients-table "$clients_table" \
    --payments-table "$payments_table" --audit-table "$audit_table" &
harness_pid=$!
status=0
wait "$harness_pid" || status=$?
harness_pid=""
[ "$status" -eq 0 ] || die "benchmark harness failed (exit $status); logs in $out/logs"

if [ "$mode" = profile ]; then
    [ -s "$out/profile.md" ] || die "$out/profile.md was not written"
    log "profile done in $((SECONDS - started)) s: $out/profile.md"
    exit 0
fi
for file in results.json results.md latency.png; do
    [ -s "$out/$file" ] || die "$out/$file was not written"
done
log "bench ($mode) done in $((SECONDS - started)) s: $out/results.md"
