# depot: the two-command quick start is `make run` and `make test`.
# Everything the tests need is installed here (project-local venv, curl/wget), nothing by hand.

SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
PYTHON_GITLAB_VERSION := 8.6.0
LISTEN ?= 127.0.0.1:8080
DATA_DIR ?= ./data

.PHONY: run test fmt lint venv tools build bench

## run: the local registry on the embedded store (prints a token and a curl pair on first start)
run:
	$(CARGO) run --quiet --bin depot -- serve --listen $(LISTEN) --data-dir $(DATA_DIR)

## test: unit, HTTP conformance, safety and end-to-end client tests
test: venv tools
	$(CARGO) test --all-targets --no-fail-fast

## fmt: format the code
fmt:
	$(CARGO) fmt

## lint: formatting check and clippy with warnings denied
lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

build:
	$(CARGO) build --release --bin depot

## bench: footprint and latency of the local registry (never part of `make test`)
bench: build
	bash benches/local_footprint.sh

## venv: project-local Python with python-gitlab (used by the end-to-end tests)
venv: $(VENV)/.installed

$(VENV)/.installed:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check "python-gitlab==$(PYTHON_GITLAB_VERSION)"
	touch $@

## tools: curl and wget for the documented-command tests (Debian packages where missing)
tools:
	@for t in curl wget; do \
	  command -v $$t >/dev/null 2>&1 && continue; \
	  echo "installing $$t"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q $$t >/dev/null 2>&1 || { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q $$t; }; \
	done
