# Edge Vision Kit — every entry point. `make demo` = the main job, `make test` = the tests.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.evk-installed
REQS := requirements.txt pyproject.toml
export YOLO_OFFLINE := 1
export YOLO_AUTOINSTALL := False
export YOLO_CONFIG_DIR := $(CURDIR)/.evk/ultralytics
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup browser demo test lint format bench slow demo-models lab dashboard dashboard local-up local-down local-status schemas clean

help:
	@echo "make demo      set up, start the local stack and run the main job on the local target"
	@echo "make test      set up and run the tests (what CI runs)"
	@echo "make setup     create/refresh $(VENV) from requirements.txt (idempotent)"
	@echo "make lint      ruff check + format check + import layers (lint-imports)"
	@echo "make bench     benchmarks (results in docs/benchmarks.md)"
	@echo "make slow      the slow tests (long training, soak)"
	@echo "make lab       JupyterLab on the notebooks"
	@echo "make dashboard the control-panel dashboard (Voila) on 127.0.0.1:$(DASHBOARD_PORT)"
	@echo "make demo-models  retrain the shipped demo models (models/demo/)"
	@echo "make local-up | local-down | local-status   the local AWS target"

# Reinstall only when requirements.txt or pyproject.toml changed since the last install.
setup: $(STAMP)
$(STAMP): $(REQS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip wheel
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	@sha256sum $(REQS) > $(STAMP)

demo: setup
	$(BIN)/kit demo

# Debian's Chromium for the dashboard's browser test (idempotent; needs root or sudo).
browser:
	@bash scripts/install-browser.sh || echo "make: no Chromium; the dashboard's browser test will be skipped"

# pytest's exit 5 (no test collected) is reported, not treated as a failure of the code.
test: setup browser
	@$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=20; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests"; exit 0; fi; exit $$rc

lint: setup
	$(BIN)/ruff check kit edge_app lambdas infra tests
	$(BIN)/ruff format --check kit edge_app lambdas infra tests
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff check --fix kit edge_app lambdas infra tests
	$(BIN)/ruff format kit edge_app lambdas infra tests

bench: setup
	$(BIN)/python -m pytest -q -m bench -p no:cacheprovider tests/benchmarks

slow: setup
	$(BIN)/python -m pytest -q -m slow

# Rebuild the shipped demo models in models/demo/ (about 10 minutes a model on 2 cores).
demo-models: setup
	$(BIN)/python -m kit.demo_models

lab: setup
	$(BIN)/jupyter lab notebooks/

DASHBOARD_PORT ?= 8866
dashboard: setup
	$(BIN)/python -m kit.dashboard.server --Voila.ip=127.0.0.1 --port=$(DASHBOARD_PORT)

local-up: setup
	$(BIN)/kit local up
local-down: setup
	$(BIN)/kit local down
local-status: setup
	$(BIN)/kit local status

schemas: setup
	$(BIN)/kit schemas

clean:
	-$(BIN)/kit local down
	rm -rf .evk .pytest_cache .ruff_cache
