# Two set-up commands for users: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help venv deps test-deps lab-deps lab-up lab-down lab-status demo test unit integration sanity lint bench clean ee-context

help:
	@echo "make demo        start the lab, a regional failover and failback under live clients, a backup and restore, stop the lab"
	@echo "make test        install what is needed and run every test (unit, sanity, lint, integration)"
	@echo "make lab-up | lab-down | lab-status    the local lab (real servers on loopback)"
	@echo "make lint        ansible-lint (production profile) and ansible-test sanity"
	@echo "make bench       switchover and failover benchmarks, JSON under bench/results/"
	@echo "make ee-context  the execution environment's build context (offline) in build/ee/context (docs/awx.md)"

# Debian packages (only where root; otherwise they must already be there).
lab-deps:
	@bash lab/install-deps.sh

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@bash lab/install-python.sh "$(PYTHON)" "$(VENV)"
	@bash lab/install-promtool.sh "$(VENV)" || echo "promtool not installed: the unit test of the alert rules is skipped"
	@touch $@

venv: $(VENV)/.installed

deps: lab-deps venv

lab-up: deps
	$(PY) -m lab up

lab-down:
	@if [ -x $(PY) ]; then $(PY) -m lab down; else echo "no virtualenv: nothing was started"; fi

lab-status: venv
	$(PY) -m lab status

demo: deps
	$(PY) -m lab.demo
	$(PY) -m lab.demo_backup

unit: venv
	$(PY) -m pytest tests/unit -q

integration: deps
	$(PY) -m pytest tests/integration -q

sanity: venv
	@bash tests/sanity/run-sanity.sh

lint: venv sanity
	$(VENV)/bin/ansible-lint

test-deps:
	@FAILSAFE_TEST_TOOLS=1 bash lab/install-deps.sh

test: test-deps venv
	@bash tests/run-all.sh

bench: deps
	$(PY) -m bench

# The AWX execution environment's build context (execution-environment.yml, docs/awx.md): the
# collection tarball, then `ansible-builder create` (offline). Build the image from it with
# podman or docker: podman build -f build/ee/context/Containerfile -t IMAGE build/ee/context
ee-context: venv
	@bash extras/awx/ee-context.sh build/ee

clean: lab-down
	rm -rf tests/output .pytest_cache build
