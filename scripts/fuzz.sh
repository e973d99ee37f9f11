#!/usr/bin/env bash
# Fuzzes the parsers (request bodies, API keys, idempotency keys) with cargo-fuzz on the
# nightly toolchain for SECONDS per target (default 20: the short run `make test` does).
# A longer run: scripts/fuzz.sh 1800
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

seconds="${1:-20}"
export PATH="$TOOLS_DIR/cargo/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz into .tools/cargo"
    cargo install --quiet --locked --root "$TOOLS_DIR/cargo" cargo-fuzz
fi
rustup toolchain list | grep -q '^nightly' || die "the nightly toolchain is needed for cargo-fuzz (rustup toolchain install nightly)"

mkdir -p fuzz/target
for target in request_body api_key; do
    log "fuzzing $target for ${seconds}s"
    # The committed seeds are read-only input; new corpus entries stay under fuzz/target.
    mkdir -p "fuzz/target/corpus/$target"
    output="fuzz/target/$target.log"
    if ! cargo +nightly fuzz run --fuzz-dir fuzz "$target" "fuzz/target/corpus/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 -print_final_stats=1 >"$output" 2>&1; then
        tail -n 60 "$output" >&2
        die "fuzz target $target failed (full output: $output; failing inputs: fuzz/artifacts/$target/)"
    fi
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|DONE' "$output" || true
done
