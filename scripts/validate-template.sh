#!/usr/bin/env bash
# Offline checks of template.yaml: the SAM transform, cfn-lint (no warnings allowed) with and
# without the serverless rules, checkov, and the property tests in tests/template.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

log "sam validate"
sam validate --template template.yaml --region "$AWS_DEFAULT_REGION"
log "sam validate --lint"
sam validate --lint --template template.yaml --region "$AWS_DEFAULT_REGION"
log "cfn-lint"
cfn-lint template.yaml
log "cfn-lint with the serverless rules"
cfn-lint template.yaml -a cfn_lint_serverless.rules
log "checkov (offline)"
# Offline: no policy download, no platform mapping. Every skipped check carries its reason in
# the template, beside the resource (tests/template checks that it does).
BC_SKIP_MAPPING=TRUE "$TOOLS_DIR/checkov/bin/checkov" -f template.yaml --framework cloudformation \
    --skip-download --compact --quiet
log "template property tests"
python -m pytest -q -p no:cacheprovider tests/template
