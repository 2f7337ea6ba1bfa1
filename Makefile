# make demo: set up .venv and run the whole pipeline on the embedded default (tiny model, synthetic data).
# make test: set up .venv and run the test suite.
# make setup: only the venv. torch==2.13.0 goes in first: pip finds the local CPU wheel, while a plain
# torch requirement resolved by pip would pull the CUDA build and several GB of nvidia packages.
# bfcl-eval (BFCL's own AST checker, for tests/unit/test_bfcl_agreement.py) goes in with --no-deps: its
# requirements pin numpy 1.26.4 and pull every API client; the checker itself imports only filelock, which torch brings.
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.fcdist-installed

.PHONY: setup demo test
setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q torch==2.13.0
	$(VENV)/bin/pip install -q -e ".[dev]"
	$(VENV)/bin/pip install -q --no-deps bfcl-eval==2026.3.23
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/fcdist demo

test: $(STAMP)
	$(VENV)/bin/pytest -q
