# The two commands that matter: `make demo` (the whole local flow) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA ?=

.PHONY: setup up demo test unit lint bench bench-host bench-quality bench-drop bench-scoring bench-batch clean

# Set-up is stamped, so every target stays quick once it has run.
$(VENV)/.installed: requirements.txt requirements-local.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed node_modules/.installed

up: setup
	$(PY) -m devhost

demo: setup
	$(PY) -m cli demo $(if $(DATA),--data "$(DATA)")

lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

test: lint
	$(PY) -m pytest

unit: setup
	$(PY) -m pytest tests/unit

bench: bench-host bench-quality bench-drop bench-scoring bench-batch

bench-host: setup
	$(PY) -m benchmarks.host_latency

bench-quality: setup
	$(PY) -m benchmarks.automl_quality

bench-drop: setup
	$(PY) -m benchmarks.drop_to_serving

bench-scoring: setup
	$(PY) -m benchmarks.scoring_latency

bench-batch: setup
	$(PY) -m benchmarks.batch_scoring

clean:
	rm -rf .devhost .localstack .pytest_cache .mypy_cache .ruff_cache
