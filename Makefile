# cnnlab: the everyday commands. `make train` and `make test` work on a fresh clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: install train sweep test test-all bench lint format typecheck clean

# Create the virtual environment and install cnnlab with the exact tested versions
# (postgres: the PostgreSQL driver, which the storage tests use on a pgserver database).
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e '.[dev,interpret,tensorboard,postgres,cluster,dashboard,mlflow]'
	touch $(STAMP)

install: $(STAMP)

# Train LeNet-5 on the embedded handwritten digits (the default config).
train: install
	$(VENV)/bin/cnnlab train

# A small example sweep on digits: TPE with Hyperband pruning, 12 short trials, into the
# study in outputs/optuna.db (re-running resumes it); the report lands in the sweep folder.
sweep: install
	$(VENV)/bin/cnnlab train -m hparams_search=tpe_hyperband trainer.max_epochs=6 hydra.sweeper.n_trials=12

# The fast suite; `make test-all` adds the slow tests.
test: install
	$(VENV)/bin/pytest -q

test-all: install
	$(VENV)/bin/pytest -q -m ''

bench: install
	$(PY) benchmarks/run.py

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: install
	$(VENV)/bin/ruff check --fix src tests benchmarks
	$(VENV)/bin/ruff format src tests benchmarks

typecheck: install
	$(VENV)/bin/mypy

clean:
	rm -rf outputs/runs outputs/multiruns build dist .pytest_cache .ruff_cache .mypy_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
