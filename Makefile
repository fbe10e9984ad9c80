# Two commands for a newcomer: `make demo` (set up, run the main job) and `make test`
# (set up, run every test). Both create .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# torch 2.14.1 / torchvision 0.29.1 are the builds our machines hold locally for Python 3.11.
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: demo test bench lint clean
.DEFAULT_GOAL := demo

# Fashion-MNIST is Debian's package dataset-fashion-mnist; installed here when missing. Elsewhere
# the loader falls back to LEJEPA_VIZ_FASHION_MNIST or torchvision's download (needs a network).
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(FMNIST):
	@if command -v apt-get >/dev/null; then \
	  $(SUDO) apt-get install -y --no-install-recommends dataset-fashion-mnist || \
	  { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends dataset-fashion-mnist; }; \
	else echo "no apt-get: Fashion-MNIST will come from LEJEPA_VIZ_FASHION_MNIST or torchvision"; fi

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

# The main job: LeJEPA on Fashion-MNIST for 4 minutes (CPU or GPU), then a frozen linear probe.
demo: $(VENV)/.installed $(FMNIST)
	$(PY) -m lejepa_viz.cli train --dataset fashion-mnist --max-minutes 4 --out runs/demo

test: $(VENV)/.installed $(FMNIST)
	$(PY) -m pytest

bench: $(VENV)/.installed $(FMNIST)
	$(PY) benchmarks/sigreg.py
	$(PY) benchmarks/train_step.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check lejepa_viz tests benchmarks
	$(VENV)/bin/ruff format --check lejepa_viz tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache runs
