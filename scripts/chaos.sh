#!/usr/bin/env bash
# The fault campaign (tests/tests/chaos.rs) for SECONDS seconds (default 600): the real
# handlers, many clients, DynamoDB Local behind a fault proxy, paused and restarted, with an
# operator rotating and revoking keys; then the invariant checker. `make test` runs it for
# 60 s with everything else. CHAOS_SEED=N replays a run's choices; CHAOS_CLIENTS sets the
# number of clients (default 12). The report: target/chaos/report.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

export CHAOS_SECONDS="${1:-600}"
log "fault campaign for ${CHAOS_SECONDS}s (seed ${CHAOS_SEED:-from the clock})"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run -p payments-tests --test chaos --no-capture
else
    cargo test -p payments-tests --test chaos -- --nocapture
fi
log "report: target/chaos/report.md"
