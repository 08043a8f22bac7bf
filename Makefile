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

export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH := false
export PATH := $(BIN):$(PATH)

.PHONY: all deps test unit lab-test demo bench build lint docs lab-up lab-down clean

all: test

deps: .build/apt.stamp $(VENV)/.stamp $(COLLECTION_LINK)

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

# Ansible finds the collection under its namespace/name; a link keeps the checkout the single source.
$(COLLECTION_LINK):
	@mkdir -p $(dir $@)
	@ln -sfn ../../../.. $@

test: deps
	$(BIN)/python -m pytest tests/unit tests/integration -ra --durations=15 $(PYTEST_ARGS)

unit: deps
	$(BIN)/python -m pytest tests/unit -ra $(PYTEST_ARGS)

lab-test: deps
	$(BIN)/python -m pytest tests/integration -ra $(PYTEST_ARGS)

demo: deps
	$(BIN)/python tests/demo/run_demo.py

bench: deps
	$(BIN)/python tests/bench/run_bench.py

build: deps
	@mkdir -p .build/dist
	$(BIN)/ansible-galaxy collection build --force --output-path .build/dist .

lint: deps
	$(BIN)/ruff check plugins tests
	$(BIN)/mypy plugins

lab-up: deps
	$(BIN)/python tests/lab/lab.py up

lab-down:
	$(PYTHON) tests/lab/lab.py down

clean: lab-down
	rm -rf .build $(VENV) .pytest_cache .mypy_cache .ruff_cache
