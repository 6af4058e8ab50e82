# Set-up is two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.cfld-installed
# Keeps the local CPU torch build: any package asking for a newer torch would otherwise pull
# gigabytes of CUDA wheels.
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export HF_HUB_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: install test demo bench lint clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q --timeout=900

demo: $(STAMP)
	$(VENV)/bin/cfld demo --overwrite

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# ruff (rules and import order in pyproject.toml) and the size limits of src/.
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(PY) scripts/check_sizes.py src

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
