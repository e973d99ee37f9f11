# Shared helpers for scripts/dev.sh and scripts/test.sh. Sourced, not executed.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="$REPO_ROOT/.tools"
export PATH="$TOOLS_DIR/venv/bin:$PATH"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# A free TCP port on the loopback interface.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until something accepts connections on 127.0.0.1:$1, or fails after $2 seconds, or
# as soon as process $3 (if given) has exited.
wait_for_port() {
    local port=$1 timeout=${2:-60} pid=${3:-} waited=0
    until python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(s.connect_ex(('127.0.0.1', $port)))" 2>/dev/null; do
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.2
        waited=$((waited + 1))
        if [ "$waited" -ge $((timeout * 5)) ]; then
            return 1
        fi
    done
}

port_in_use() {
    python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(0 if s.connect_ex(('127.0.0.1', $1)) == 0 else 1)" 2>/dev/null
}

# Starts DynamoDB Local on 127.0.0.1:$1 in the background with scripts/dynamodb-local (extra
# arguments go to DynamoDB Local, e.g. -inMemory or -dbPath DIR). Sets DYNAMODB_PID, the
# JVM's own pid (the script execs java). Always -sharedDb, so every client sees the same
# tables whatever credentials and region it signs with.
start_dynamodb() {
    local port=$1
    shift
    if port_in_use "$port"; then
        die "port $port is already in use (another DynamoDB Local?). Stop it, or set DYNAMODB_ENDPOINT to use it."
    fi
    local log_file="$TOOLS_DIR/dynamodb-local-$port.log"
    "$REPO_ROOT/scripts/dynamodb-local" "$port" "$@" >"$log_file" 2>&1 &
    DYNAMODB_PID=$!
    if ! wait_for_port "$port" 60 "$DYNAMODB_PID"; then
        cat "$log_file" >&2
        die "DynamoDB Local did not start on 127.0.0.1:$port"
    fi
    log "DynamoDB Local on http://127.0.0.1:$port (pid $DYNAMODB_PID, log $log_file)"
}

stop_dynamodb() {
    if [ -n "${DYNAMODB_PID:-}" ] && kill -0 "$DYNAMODB_PID" 2>/dev/null; then
        kill "$DYNAMODB_PID" 2>/dev/null || true
        wait "$DYNAMODB_PID" 2>/dev/null || true
    fi
}
