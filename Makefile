# Two entry points for a fresh clone; each builds the virtual environment it needs.
#   make example   run the fan-out eager workflow on the embedded dev backend
#   make test      lint, unit tests, dev-backend tests and the integration suite

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: example test lint unit integration benchmark browser

$(STAMP): dev-requirements.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r dev-requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

example: $(STAMP)
	$(BIN)/python examples/run_demo.py --n 20

test: $(STAMP) browser lint
	$(BIN)/python -m pytest tests integration

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

unit: $(STAMP)
	$(BIN)/python -m pytest tests

integration: $(STAMP)
	$(BIN)/python -m pytest integration

benchmark: $(STAMP)
	$(BIN)/python benchmarks/run.py

# The console's browser test needs Debian's chromium; install it where we may.
browser:
	@scripts/ensure-chromium
