# Two commands for a newcomer: `make demo` (set up, run the main job) and `make test`
# (set up, run every test). Both create .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# torch 2.14.1 / torchvision 0.29.1 are the builds our machines hold locally for Python 3.11.
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: demo test bench lint clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(PY) -m lejepa_viz.cli demo

test: $(VENV)/.installed
	$(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) benchmarks/sigreg.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check lejepa_viz tests benchmarks
	$(VENV)/bin/ruff format --check lejepa_viz tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
