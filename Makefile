# protectnet.epns — every entry point a person or CI needs.
# `make demo` and `make test` do all set-up themselves on a fresh Debian 12 machine (as root).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
COLLECTIONS := $(CURDIR)/.build/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/protectnet/epns
PYTEST_ARGS ?=
PYTHON_VERSION = $(shell $(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
# Test workers, each a Python in its own network, mount and PID namespaces with its own lab (see
# tests/tools/sandboxed-python): test files are spread over them, so lab tests run in parallel.
TEST_WORKERS ?= 2
PYTEST_PARALLEL = --dist loadfile --tx "$(TEST_WORKERS)*popen//python=$(CURDIR)/tests/tools/sandboxed-python"
# `make molecule MOLECULE_ARGS="-s epns_firewall"` runs one scenario; the default runs every one, one after the other
# (each builds and removes its own lab, and there is one lab per machine).
MOLECULE_ARGS ?= --all
WHEELS := $(CURDIR)/.build/wheels

export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH := false
export PATH := $(BIN):$(PATH)

.PHONY: all deps test unit lab-test core216-venv core216-test python-floor molecule demo bench build lint sanity sanity-tree ansible-test-units docs ee lab-up lab-down clean

all: test

deps: .build/apt.stamp $(VENV)/.stamp $(COLLECTION_LINK) $(WHEELS)/.stamp

# Debian packages: installed only when one is missing, so a warm machine skips apt entirely. A policy-rc.d that
# answers 101 keeps the packages' daemons (squid, apache2, mosquitto...) from starting in the root namespace: the lab
# starts its own copies inside its namespaces.
.build/apt.stamp: tests/debian-packages.txt
	@mkdir -p .build
	@pkgs="$$(grep -v '^#' $< | xargs)"; want=$$(echo $$pkgs | wc -w); \
	have=$$(dpkg-query -W -f='$${Status}\n' $$pkgs 2>/dev/null | grep -c 'install ok installed' || true); \
	if [ "$$have" -ne "$$want" ]; then \
	  echo "Installing Debian packages: $$pkgs"; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then trap 'rm -f /usr/sbin/policy-rc.d' EXIT; printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$pkgs >/dev/null; \
	fi
	@touch $@

$(VENV)/.stamp: requirements.txt tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r tests/requirements.txt
	@touch $@

# The controller requirements as wheels: the release test builds a fresh virtualenv from them with --no-index, so it
# needs no registry while it runs (it shares the network namespace of the lab it tests against).
$(WHEELS)/.stamp: requirements.txt $(VENV)/.stamp
	$(BIN)/pip download -q --disable-pip-version-check -r requirements.txt -d $(WHEELS)
	@touch $@

# The oldest ansible-core that meta/runtime.yml claims (2.16), in a virtualenv of its own, never the shared one:
# tests/requirements-core216.txt is the controller requirements with ansible-core narrowed to 2.16.x.
CORE216_VENV ?= .venv-core216
CORE216_BIN := $(CURDIR)/$(CORE216_VENV)/bin
$(CORE216_VENV)/.stamp: requirements.txt tests/requirements-core216.txt
	$(PYTHON) -m venv $(CORE216_VENV)
	$(CORE216_BIN)/pip install -q --disable-pip-version-check -r tests/requirements-core216.txt
	@touch $@

core216-venv: $(CORE216_VENV)/.stamp

# Ansible finds the collection under its namespace/name; a link keeps the checkout the single source.
$(COLLECTION_LINK):
	@mkdir -p $(dir $@)
	@ln -sfn ../../../.. $@

# Four lanes at once on the two cores: pytest on its sandboxed workers; beside it the quality gates followed by
# molecule (in a sandbox of its own, so its labs meet none of the workers'); and the oldest claimed ansible-core
# (core216-test, in a sandbox of its own too). Their logs follow pytest's output, and pytest's summary line is
# repeated last. Any lane failing fails the target; the side lanes run on after a failing gate (set +e: .SHELLFLAGS
# has -e), so one run reports every lane.
LOGS := $(CURDIR)/.build/logs
test: deps $(CORE216_VENV)/.stamp
	@mkdir -p $(LOGS) && rm -f $(LOGS)/*
	@( set +e; $(MAKE) --no-print-directory lint > $(LOGS)/lint.log 2>&1; echo $$? > $(LOGS)/lint.rc; \
	   tests/tools/sandbox $(MAKE) --no-print-directory molecule > $(LOGS)/molecule.log 2>&1; \
	   echo $$? > $(LOGS)/molecule.rc ) & side=$$!; \
	( set +e; $(MAKE) --no-print-directory core216-test > $(LOGS)/core216.log 2>&1; \
	   echo $$? > $(LOGS)/core216.rc ) & core216=$$!; \
	set +e; \
	$(BIN)/python -m pytest tests/unit tests/integration -ra --durations=15 $(PYTEST_PARALLEL) $(PYTEST_ARGS) \
	  2>&1 | tee $(LOGS)/pytest.log; rc=$${PIPESTATUS[0]}; \
	wait $$side; wait $$core216; \
	echo "== make lint (rc $$(cat $(LOGS)/lint.rc))"; cat $(LOGS)/lint.log; \
	echo "== make molecule (rc $$(cat $(LOGS)/molecule.rc))"; tail -n 60 $(LOGS)/molecule.log; \
	echo "== make core216-test (rc $$(cat $(LOGS)/core216.rc))"; tail -n 30 $(LOGS)/core216.log; \
	echo "== pytest (rc $$rc)"; tail -n 1 $(LOGS)/pytest.log; \
	[ "$$rc" -eq 0 ] && [ "$$(cat $(LOGS)/lint.rc)" -eq 0 ] && [ "$$(cat $(LOGS)/molecule.rc)" -eq 0 ] \
	  && [ "$$(cat $(LOGS)/core216.rc)" -eq 0 ]

unit: deps
	$(BIN)/python -m pytest tests/unit -ra $(PYTEST_ARGS)

lab-test: deps
	$(BIN)/python -m pytest tests/integration -ra $(PYTEST_PARALLEL) $(PYTEST_ARGS)

# The unit tests and one lab smoke test (epns_probe and epns_firewall on one agent through ansible-playbook,
# tests/integration/test_oldest_ansible_core.py) under ansible-core 2.16, in a sandbox with a one-agent lab:
# tests/integration/_ansible.py runs the ansible-playbook beside the Python that runs pytest, here 2.16's.
core216-test: deps $(CORE216_VENV)/.stamp
	PATH=$(CORE216_BIN):$$PATH PNLAB_AGENTS=1 PNLAB_WOL=0 tests/tools/sandbox $(CORE216_BIN)/python -m pytest \
	  tests/unit tests/integration/test_oldest_ansible_core.py -ra -p no:cacheprovider $(PYTEST_ARGS)

# Molecule scenarios in extensions/molecule/ (collection layout): syntax, create (lab up), prepare, converge,
# idempotence, check, verify, destroy (lab down; also after a failure). Needs root, like the lab.
molecule: deps
	$(BIN)/molecule test $(MOLECULE_ARGS)

demo: deps
	$(BIN)/python tests/demo/run_demo.py

bench: deps
	$(BIN)/python tests/bench/run_bench.py

build: deps
	@mkdir -p .build/dist
	$(BIN)/ansible-galaxy collection build --force --output-path .build/dist .

# Quality gates: ruff and mypy, the managed-host Python floor, ansible-lint (production profile, settings in
# .ansible-lint), ansible-test sanity.
lint: deps
	$(BIN)/ruff check plugins tests
	$(BIN)/mypy plugins
	$(MAKE) --no-print-directory python-floor
	$(BIN)/ansible-lint $(ANSIBLE_LINT_TARGETS)
	$(MAKE) --no-print-directory sanity

# What runs on managed hosts needs no Python newer than the floor, 3.8 (docs/supported-versions.md), and the module
# files and the floor check parse on 3.6 (and the check on 2.7), so that an old Python reaches the check and its
# message. Module files evaluate their annotations: 3.6 cannot parse `from __future__ import annotations`.
# union-types is vermin's heuristic for `X | Y`: module_utils write t.Optional (the collection's typing dialect), so a
# `X | None` there, postponed or not, is a slip towards code that breaks on 3.8.
VERMIN := $(BIN)/vermin --no-tips --violations
python-floor: deps
	$(VERMIN) --target=3.8- plugins/module_utils plugins/modules
	$(VERMIN) --feature union-types --eval-annotations --target=3.8- plugins/module_utils
	$(VERMIN) --feature union-types --eval-annotations --target=3.6- plugins/modules plugins/module_utils/_python_floor.py
	$(VERMIN) --target=2.7- --target=3.6- plugins/module_utils/_python_floor.py

# ansible-test needs the collection at .../ansible_collections/protectnet/epns and resolves symlinks, so it runs in a
# copy of the files git knows (tracked, or new and not ignored), with an empty git repository of its own so that
# ansible-test lists them. It builds one virtualenv per sanity test (cached in ~/.ansible/test/venv); the get-pip.py
# it would download for that is replaced by tests/sanity/get_pip_offline.py (pip from ensurepip, then the index).
# SANITY_TARGETS: the content the collection ships to users; tests/ holds the pytest harness (lab, emulator), which
# ruff checks instead.
SANITY_TREE := $(CURDIR)/.build/sanity/ansible_collections/protectnet/epns
SANITY_TARGETS ?= plugins/ roles/ playbooks/ meta/ changelogs/ tests/sanity/ tests/unit/test_awx_assets.py tests/unit/test_docs.py
SANITY_ARGS ?=
ANSIBLE_LINT_TARGETS ?= roles playbooks

sanity-tree: deps
	@rm -rf $(SANITY_TREE) && mkdir -p $(SANITY_TREE)
	@git ls-files -z --cached --others --exclude-standard \
	  | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -C $(SANITY_TREE) -xf -
	@git -C $(SANITY_TREE) init -q .
	@pip=$$($(BIN)/python tests/sanity/get_pip_offline.py --ansible-test-pip-version); \
	  cache=$$HOME/.ansible/test/cache/get_pip_$${pip//./_}.py; \
	  if [ ! -s "$$cache" ]; then mkdir -p "$${cache%/*}" && cp tests/sanity/get_pip_offline.py "$$cache"; fi

sanity: sanity-tree
	cd $(SANITY_TREE) && $(BIN)/ansible-test sanity --local --python $(PYTHON_VERSION) --color no $(SANITY_ARGS) \
	  $(SANITY_TARGETS)

# The unit tests through ansible-test (its pytest configuration and collection loader); `make unit` runs the same
# tests with plain pytest, and `make test` runs them once, that way.
ansible-test-units: sanity-tree
	cd $(SANITY_TREE) && $(BIN)/ansible-test units --local --python $(PYTHON_VERSION) --color no

# The documentation site: antsibull-docs renders the module, plugin and role documentation, Sphinx builds it with
# the hand-written pages of docs/ into docs/_build/html. The changelog is generated into the site, not committed.
docs: deps $(VENV)/.docs.stamp
	$(BIN)/python docs/build_docs.py

$(VENV)/.docs.stamp: docs/requirements.txt $(VENV)/.stamp
	$(BIN)/pip install -q --disable-pip-version-check -r docs/requirements.txt
	@touch $@

# The execution environment's build context (ansible-builder v3) in .build/ee, with this collection built into it;
# `cd .build/ee && podman build -f Containerfile -t protectnet-epns-ee .` builds the image where podman exists.
ee: build
	@mkdir -p .build/ee-src/collections
	@cp .build/dist/protectnet-epns-$$(sed -n 's/^version: *//p' galaxy.yml).tar.gz .build/ee-src/collections/protectnet-epns.tar.gz
	@cp extensions/ee/execution-environment.yml extensions/ee/requirements.yml .build/ee-src/
	$(BIN)/ansible-builder create -f .build/ee-src/execution-environment.yml --context .build/ee --output-filename Containerfile

lab-up: deps
	$(BIN)/python tests/lab/lab.py up

lab-down:
	$(PYTHON) tests/lab/lab.py down

clean: lab-down
	rm -rf .build $(VENV) $(CORE216_VENV) .pytest_cache .mypy_cache .ruff_cache
