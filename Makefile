# cnnlab: the everyday commands. `make train` and `make test` work on a fresh clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
# Every extra `make install` installs (and `make lock` pins).
EXTRAS := dev,interpret,tensorboard,postgres,cluster,dashboard,mlflow

.PHONY: install lock train sweep experiments test test-all test-cluster cluster-up cluster-down bench bench-launchers bench-gpu lint format typecheck clean

# Create the virtual environment and install cnnlab with the exact tested versions
# (postgres: the PostgreSQL driver, which the storage tests use on a pgserver database).
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

# Rewrite constraints.txt as the complete lock of what `make install` installs: a fresh
# temporary venv, the same install (kept versions stay, anything new gets pinned), then
# `pip freeze` minus cnnlab. To move a package, edit or delete its line, then `make lock`.
# torch is written without its local label (+cpu): PyPI's CUDA build satisfies the pin too.
lock:
	set -euo pipefail; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	python3 -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/pip" install -q -c constraints.txt -e '.[$(EXTRAS)]'; \
	{ echo "# Exact versions of every package \`make install\` installs; regenerate with \`make lock\`."; \
	  echo "# Install with: pip install -c constraints.txt -e '.[$(EXTRAS)]'"; \
	  echo "# torch: the CPU build comes from torch's CPU index, PyPI's default build uses CUDA (README)."; \
	  "$$tmp/venv/bin/pip" freeze --exclude-editable | grep -iv '^cnnlab[=@ ]' | sed 's/^torch==\([^+]*\)+.*/torch==\1/' | LC_ALL=C sort -f; \
	} > "$$tmp/constraints.txt"; \
	mv "$$tmp/constraints.txt" constraints.txt

# Train LeNet-5 on the embedded handwritten digits (the default config).
train: install
	$(VENV)/bin/cnnlab train

# A small example sweep on digits: TPE with Hyperband pruning, 12 short trials, into the
# study in outputs/optuna.db (re-running resumes it); the report lands in the sweep folder.
sweep: install
	$(VENV)/bin/cnnlab train -m hparams_search=tpe_hyperband trainer.max_epochs=6 hydra.sweeper.n_trials=12

# The material's comparisons (norms, dropout, inits, augmentation, optimizers, grid vs random
# vs TPE) run for real into docs/experiments.md and docs/experiments/*.png: about 20-45 min on a
# quiet 2-core CPU; re-running resumes the studies in outputs/experiments/studies.db (and
# the search comparison's in outputs/compare_search/train/, shared with compare-search mode=train).
# QUICK=1: 1 epoch, 2 seeds, 3 batches, into outputs/experiments-quick/ (a smoke check).
experiments: install
	$(VENV)/bin/cnnlab experiments $(if $(QUICK),--quick)

# The fast suite; `make test-all` adds the slow tests.
test: install
	$(VENV)/bin/pytest -q

test-all: install
	$(VENV)/bin/pytest -q -m ''

# The tests that need a SLURM cluster (marker `cluster`): sweeps with hydra/launcher=slurm,
# scancel, a cluster without accounting, an sbatch array of workers. `make cluster-up` first;
# they skip where no cluster answers, and fail under CI=true.
test-cluster: install
	$(VENV)/bin/pytest -q -m cluster

# A one-node SLURM cluster on this machine (as root on Debian: installs slurm-wlm, munge,
# slurmdbd and mariadb-server if missing; tools/slurm/README.md), and its stop.
cluster-up:
	tools/slurm/slurm-up.sh

cluster-down:
	tools/slurm/slurm-down.sh

bench: install
	$(PY) benchmarks/run.py

# Section 9 of BENCHMARKS.md: per launcher (basic, joblib, submitit_local, slurm), seconds from
# a trial's submission to its first training step; the slurm row needs `make cluster-up`.
bench-launchers: install
	$(PY) benchmarks/launchers.py

# The GPU section of BENCHMARKS.md (cnnlab vs a plain GPU loop, the CIFAR-10 speed run);
# says so and exits 0 without CUDA. `python benchmarks/gpu.py --device cpu --quick` checks it on a CPU.
bench-gpu: install
	$(PY) benchmarks/gpu.py

lint: install
	$(VENV)/bin/lint-imports
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
