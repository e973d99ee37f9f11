#!/usr/bin/env bash
# The fault campaign (tests/tests/chaos.rs) for SECONDS seconds (default 600): the real
# handlers, many clients, DynamoDB Local behind a fault proxy, paused and restarted, with an
# operator rotating and revoking keys; then the invariant checker. `make test` runs it for
# 60 s with everything else. CHAOS_SEED=N replays a run's choices; CHAOS_CLIENTS sets the
# number of clients (default 12). The report: target/chaos/report.md, printed at the end
# (the run's own output, a metrics line per request, is shown only when it fails).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

export CHAOS_SECONDS="${1:-600}"
log "fault campaign for ${CHAOS_SECONDS}s (seed ${CHAOS_SEED:-from the clock})"
rm -f target/chaos/report.md
status=0
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run -p payments-tests --test chaos --failure-output final || status=$?
else
    cargo test -p payments-tests --test chaos || status=$?
fi
[ -f target/chaos/report.md ] && cat target/chaos/report.md
log "report: target/chaos/report.md"
exit "$status"
