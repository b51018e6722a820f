# The two commands that matter: `make demo` (the whole local flow) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
INFRA_VENV := .venv-infra
BENCH_VENV := .venv-bench
PY := $(VENV)/bin/python
DATA ?=

.PHONY: setup up demo test unit lint infra-check plan bench bench-host bench-quality bench-drop bench-scoring bench-batch bench-soak bench-explain bench-profile bench-request-cost bench-scale bench-forecast clean

# Set-up is stamped, so every target stays quick once it has run.
$(VENV)/.installed: requirements.txt requirements-local.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(INFRA_VENV)/.installed: requirements-infra.txt
	test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-infra.txt
	touch $@

# The forecasting benchmark's statistical peers: statsforecast needs pandas < 3, so they have a venv of their own.
$(BENCH_VENV)/.installed: requirements-bench.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	touch $@

setup: $(VENV)/.installed node_modules/.installed

up: setup
	$(PY) -m devhost

demo: setup
	$(PY) -m cli demo $(if $(DATA),--data "$(DATA)") $(if $(MODEL),--model "$(MODEL)") \
		$(if $(TARGET),--target "$(TARGET)") $(if $(TASK),--task "$(TASK)")

lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m tests.import_cycles

# Bicep static analysis: zero failed checks, every file parsed (checkov alone exits 0 on a parse error);
# each skipped check carries its reason in the .bicep file.
infra-check: $(INFRA_VENV)/.installed
	@out="$$($(INFRA_VENV)/bin/checkov --directory infra --framework bicep --compact --quiet --skip-download)"; \
	status=$$?; echo "$$out"; \
	if echo "$$out" | grep -q "Parsing errors"; then echo "infra-check: a .bicep file does not parse" >&2; exit 1; fi; \
	exit $$status

test: lint infra-check
	$(PY) -m pytest -n auto --maxprocesses 4 --dist loadfile --durations=15

plan: setup
	$(PY) -m cli plan --data "$(or $(DATA),$(error set DATA=path/to/file.csv))"

unit: setup
	$(PY) -m pytest tests/unit

bench: bench-host bench-quality bench-drop bench-scoring bench-request-cost bench-batch bench-soak bench-explain bench-scale bench-forecast

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

bench-soak: setup
	$(PY) -m benchmarks.scoring_soak

bench-explain: setup
	$(PY) -m benchmarks.explain_cost

bench-profile: setup
	$(PY) -m benchmarks.scoring_profile

bench-request-cost: setup
	$(PY) -m benchmarks.request_cost

bench-forecast: setup $(BENCH_VENV)/.installed
	$(PY) -m benchmarks.forecast

bench-scale: setup
	$(PY) -m benchmarks.ingest_scale
	ROWS=5000000 MODES=floor,arrow,ingest-file,azure-ingest $(PY) -m benchmarks.ingest_scale
	$(PY) -m benchmarks.scale_stack

clean:
	rm -rf .devhost .localstack .pytest_cache .mypy_cache .ruff_cache
