# Set-up-and-go targets: `make run` (the offline demo study), `make test`, `make lint`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test lint clean

# Exact versions from constraints.txt; pyproject.toml holds the ranges.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,lite]'
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/failmodes run --preset demo --out runs/demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(PY) -m ruff check failmodes tests bench
	$(PY) -m mypy

clean:
	rm -rf $(VENV) runs
