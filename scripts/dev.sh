#!/usr/bin/env bash
# `make dev`: DynamoDB Local on 127.0.0.1:8000 (unless DYNAMODB_ENDPOINT is set), the tables,
# and every function behind `cargo lambda watch`, served on 127.0.0.1:9000 through
# tools/dev-gateway (which hands the functions repeated headers joined, as API Gateway does).
# Ctrl-C stops everything.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

: "${CLIENTS_TABLE:=payments-clients}"
: "${PAYMENTS_TABLE:=payments-payments}"
: "${AUDIT_TABLE:=payments-audit}"
: "${API_KEY_ENVIRONMENT:=test}"
: "${DEFAULT_RATE_LIMIT:=100}"
: "${RUST_LOG:=info}"
: "${PORT:=9000}"
: "${DYNAMODB_PORT:=8000}"

stop() {
    [ -n "${GATEWAY_PID:-}" ] && kill "$GATEWAY_PID" 2>/dev/null || true
    stop_dynamodb
}
trap stop EXIT
if [ -z "${DYNAMODB_ENDPOINT:-}" ]; then
    # Data persists across restarts in .tools/dynamodb-data; delete that folder to start over.
    mkdir -p "$TOOLS_DIR/dynamodb-data"
    start_dynamodb "$DYNAMODB_PORT" -dbPath "$TOOLS_DIR/dynamodb-data"
    DYNAMODB_ENDPOINT="http://127.0.0.1:$DYNAMODB_PORT"
else
    log "using DynamoDB at $DYNAMODB_ENDPOINT"
fi
export DYNAMODB_ENDPOINT CLIENTS_TABLE PAYMENTS_TABLE AUDIT_TABLE

cargo run --quiet -p payments-admin -- tables create

port_in_use "$PORT" && die "port $PORT is already in use; set PORT to another"
watch_port="$(free_port)"
cargo build --quiet -p dev-gateway
"${CARGO_TARGET_DIR:-target}/debug/dev-gateway" "$PORT" "$watch_port" &
GATEWAY_PID=$!

log "API on http://127.0.0.1:$PORT  (POST /accounts, POST /payments, GET /payments, GET /payments/{id}, POST /keys, GET /keys, GET /keys/{id}, POST /keys/{id}/roll, DELETE /keys/{id}); Ctrl-C stops it"
cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$watch_port" \
    --env-vars "CLIENTS_TABLE=$CLIENTS_TABLE,PAYMENTS_TABLE=$PAYMENTS_TABLE,AUDIT_TABLE=$AUDIT_TABLE,API_KEY_ENVIRONMENT=$API_KEY_ENVIRONMENT,DEFAULT_RATE_LIMIT=$DEFAULT_RATE_LIMIT,DYNAMODB_ENDPOINT=$DYNAMODB_ENDPOINT,RUST_LOG=$RUST_LOG"
