# Every target does its own set-up on a fresh clone: a local .venv, installed from
# pyproject.toml (again only when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test benchmark ui figures results clean-venv

run: $(INSTALLED)
	$(VENV)/bin/mlpsuite run experiments/quickstart.yaml

test: $(INSTALLED)
	$(VENV_PYTHON) -m pytest

benchmark: $(INSTALLED)
	$(VENV_PYTHON) benchmarks/trial_cost.py
	$(VENV_PYTHON) benchmarks/backends.py
	$(VENV_PYTHON) benchmarks/switches.py
	$(VENV_PYTHON) benchmarks/startup.py
	$(VENV_PYTHON) benchmarks/tracking.py
	$(VENV_PYTHON) benchmarks/memory.py
	$(VENV_PYTHON) benchmarks/report.py
	$(VENV_PYTHON) benchmarks/diagnostics.py
	$(VENV_PYTHON) benchmarks/scaleout.py
	$(VENV_PYTHON) benchmarks/ray_tasks.py

ui: $(INSTALLED)
	$(VENV)/bin/mlpsuite ui

# The lecture's figures the README shows (docs/figures/*.png, committed).
figures: $(INSTALLED)
	$(VENV)/bin/mlpsuite figures activations gradients scalers optimizers --out docs/figures

# Runs the ready ablations (about 15 minutes on 2 cores; FINISHED trials are reused) and
# rewrites the README's Results section from their comparisons.
results: $(INSTALLED)
	$(VENV_PYTHON) experiments/results.py

$(INSTALLED): pyproject.toml
	test -x $(VENV_PYTHON) || $(PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install --quiet --upgrade pip
	$(VENV_PYTHON) -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

clean-venv:
	rm -rf $(VENV)
