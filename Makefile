# Every target does its own set-up on a fresh clone: a local .venv, installed from
# pyproject.toml (again only when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test test-fast check lint format test-shuffled benchmark ui figures results clean-venv docs docs-serve tutorial

# Says its own time at the end (the set-up's, when it ran, was said before the grid started).
run: $(INSTALLED)
	@start=$$(date +%s); $(VENV)/bin/mlpsuite run experiments/quickstart.yaml; status=$$?; \
	echo "make run: the grid took $$(( $$(date +%s) - start )) s"; exit $$status

# Two test streams (pytest-xdist hands each a whole test file at a time, so a module's fixtures
# are built once); the three backend workers (tests/conftest.py) run beside them.
STREAMS := -n 2 --dist loadfile --no-loadscope-reorder

# The whole suite once, under coverage.py, as CI runs it (the README's test command): measured
# in every Python process it starts (backend test workers, `mlpsuite run`, grid workers, Ray's
# workers); writes htmlcov/ and the table, and fails on a failed test, on no test collected
# (pytest's 5) and below pyproject.toml's fail_under.
test: $(INSTALLED)
	rm -f .coverage .coverage.*
	$(VENV)/bin/coverage run -m pytest $(STREAMS) -p no:cacheprovider --durations=30; status=$$?; \
	$(VENV)/bin/coverage combine --quiet && $(VENV)/bin/coverage html --quiet && \
	$(VENV)/bin/coverage report --skip-covered && exit $$status

# The same suite without coverage's overhead (about a third less time), for a contributor.
test-fast: $(INSTALLED)
	$(VENV_PYTHON) -m pytest $(STREAMS) --durations=30

# The edit loop's tier (tests marked `check`): pure units, one grid through the engine, the
# one-line errors, every module of mlpsuite touched.
check: $(INSTALLED)
	$(VENV_PYTHON) -m pytest -m check $(STREAMS)

# The habits the tools keep (pyproject.toml configures both): ruff's format and lint, pyright's
# basic type check, over mlpsuite/, tests/, benchmarks/, experiments/ and docs/tools/. CI runs it
# first.
LINTED := mlpsuite tests benchmarks experiments docs/tools
lint: $(INSTALLED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/pyright $(LINTED)

# What ruff can put right by itself: the format, the import order, the safe fixes.
format: $(INSTALLED)
	$(VENV)/bin/ruff format $(LINTED)
	$(VENV)/bin/ruff check --fix $(LINTED)

# The suite in a random order (pytest-randomly): no test may depend on another's leftovers.
# The seed is printed at the top; `make test-shuffled SEED=N` repeats that order.
test-shuffled: $(INSTALLED)
	$(VENV_PYTHON) -m pytest $(STREAMS) -p randomly $(if $(SEED),--randomly-seed=$(SEED))

benchmark: $(INSTALLED)
	$(VENV_PYTHON) benchmarks/trial_cost.py
	$(VENV_PYTHON) benchmarks/backends.py
	$(VENV_PYTHON) benchmarks/switches.py
	$(VENV_PYTHON) benchmarks/startup.py
	$(VENV_PYTHON) benchmarks/warm_workers.py
	$(VENV_PYTHON) benchmarks/tracking.py
	$(VENV_PYTHON) benchmarks/memory.py
	$(VENV_PYTHON) benchmarks/report.py
	$(VENV_PYTHON) benchmarks/diagnostics.py
	$(VENV_PYTHON) benchmarks/scaleout.py
	$(VENV_PYTHON) benchmarks/ray_tasks.py

ui: $(INSTALLED)
	$(VENV)/bin/mlpsuite ui

# The lecture's figures the site shows (docs/figures/*.png, committed).
figures: $(INSTALLED)
	$(VENV)/bin/mlpsuite figures activations gradients scalers optimizers --out docs/figures

# Runs the ready ablations (about 15 minutes on 2 cores; FINISHED trials are reused) and
# rewrites the site's Results page (docs/results.md) from their comparisons.
results: $(INSTALLED)
	$(VENV_PYTHON) experiments/results.py

$(INSTALLED): pyproject.toml
	@echo "set-up: installing mlpsuite and its dependencies into $(VENV)/ (minutes, once)"
	@start=$$(date +%s); \
	test -x $(VENV_PYTHON) || $(PYTHON) -m venv $(VENV) && \
	$(VENV_PYTHON) -m pip install --quiet --upgrade pip && \
	$(VENV_PYTHON) -m pip install --quiet -e '.[dev]' && \
	echo "set-up: took $$(( $$(date +%s) - start )) s" && touch $(INSTALLED)

clean-venv:
	rm -rf $(VENV)

# The documentation site (mkdocs.yml): built strictly into site/, or served with live reload.
docs: $(INSTALLED)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

docs-serve: $(INSTALLED)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

# The tutorial page's executed notebook (docs/tutorial/lecture.ipynb, committed): runs
# examples/lecture.ipynb in a kernel into a temporary store (a minute or two on 2 cores).
tutorial: $(INSTALLED)
	$(VENV_PYTHON) docs/tools/tutorial.py
