# The commands a user needs: `make demo` and `make test`. Each installs what it needs.
SHELL := /bin/bash
PY := .venv/bin/python
PULUMI_DIR = $(shell tools/pulumi.sh)

.PHONY: all deps venv pulumi renovate test test-fast demo demo-down bench schemas clean

all: test

deps: venv pulumi
	@tools/system-deps.sh

venv: .venv/.installed
.venv/.installed: requirements.txt
	@test -x $(PY) || python3 -m venv .venv
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

pulumi:
	@tools/pulumi.sh >/dev/null

# The pinned Renovate (tools/renovate/package-lock.json) for tests/teams/test_renovate.py.
renovate:
	@tools/renovate.sh >/dev/null

test: deps renovate
	PATH="$(PULUMI_DIR):$$PATH" $(PY) -m pytest -q tests

test-fast: venv
	$(PY) -m pytest -q tests -m "not engine"

demo: deps
	@PATH="$(PULUMI_DIR):$$PATH" $(PY) -m sim.demo up

demo-down: venv
	@$(PY) -m sim.demo down

bench: deps
	PATH="$(PULUMI_DIR):$$PATH" $(PY) -m bench

schemas: venv
	$(PY) -m homefleet.schemas

clean: demo-down
	rm -rf .tools .venv tools/renovate/node_modules
