#!/usr/bin/env bash
# Contract tests: docs/openapi.yaml against a real local stack (DynamoDB Local and
# `cargo lambda watch` on free loopback ports, started and stopped by the tests) with
# schemathesis, and against the code (routes, error codes, limits). See tests/contract.
# Needs `make tools` and schemathesis in .tools/venv. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

python -c 'import schemathesis' 2>/dev/null \
    || die "schemathesis is not installed in .tools/venv (pip install schemathesis==4.32.5)"
log "contract tests (docs/openapi.yaml against the local stack)"
python -m pytest -q -p no:cacheprovider tests/contract "$@"
