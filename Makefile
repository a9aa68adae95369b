# Two entry points, each creating (once) and reusing the project's virtual environment in .venv.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-ci lint ui clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## the suite's main job
	$(PY) -m benchmarks train --dataset cifar10 --model resnet18 --method bp --profile quick

test: $(STAMP)  ## the whole default test suite: lint, format check, unit tests
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest

test-ci: $(STAMP)  ## the slow tests CI runs after `make test` (a server's faults, kill -9 chaos: ~16-22 min)
	$(PY) -m pytest -m ci

lint: $(STAMP)
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

ui: $(STAMP)  ## the MLflow UI on 127.0.0.1:5000 over the suite's store
	$(VENV)/bin/python -m benchmarks ui  # prints a link to each table's runs, then serves the UI

clean-venv:
	rm -rf $(VENV)
