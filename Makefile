# Two commands for a newcomer: `make demo` (set up, run the main job) and `make test`
# (set up, run every test). Both create .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# torch 2.14.1 / torchvision 0.29.1 are the builds our machines hold locally for Python 3.11.
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: demo test lab notebooks site gallery bench lint clean
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

# The browser test drives Debian's chromium (no browser download); installed here when missing.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if command -v apt-get >/dev/null; then \
	  $(SUDO) apt-get install -y --no-install-recommends chromium || \
	  { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium; }; \
	else echo "no apt-get: tests/test_browser.py will be skipped without chromium"; fi

# SIGReg's CPU kernel is C, compiled on first use (without a compiler SIGReg falls back to its
# slower torch kernel, and the kernel tests skip); a C compiler is installed here when missing.
CC_BIN := $(shell command -v cc || command -v gcc || echo /usr/bin/cc)
$(CC_BIN):
	@if command -v apt-get >/dev/null; then \
	  $(SUDO) apt-get install -y --no-install-recommends gcc libc6-dev || \
	  { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends gcc libc6-dev; }; \
	else echo "no apt-get: SIGReg will use its torch kernel without a C compiler"; fi

# The main job: the gallery. Trains a CNN on Fashion-MNIST (3 minutes, prints its linear probe)
# and a small ViT on the scene world (3 minutes), then draws every picture into eval/.
demo: $(VENV)/.installed $(FMNIST) $(CC_BIN)
	$(PY) -m lejepa_viz gallery --out eval --minutes 3

# Every test: unit tests, doctests, the notebooks (nbval, FAST settings) and the browser test.
test: $(VENV)/.installed $(FMNIST) $(CHROMIUM) $(CC_BIN)
	LEJEPA_VIZ_FAST=1 $(PY) -m pytest

# JupyterLab with the notebooks and working widgets.
lab: $(VENV)/.installed $(FMNIST)
	$(VENV)/bin/jupyter lab notebooks/

# The committed notebook outputs: every notebook executed in its full setting (each meant to
# stay under 15 minutes on 2 CPU cores; cached runs under runs/notebooks/ are reused), cleaned
# and size-checked.
notebooks: $(VENV)/.installed $(FMNIST) $(CHROMIUM)
	$(PY) tools/run_notebooks.py

# The course as a website in site/, from the committed notebooks (nothing re-executed; offline,
# seconds): serve it with `python -m http.server -d site` and open http://localhost:8000.
site: $(VENV)/.installed
	$(PY) tools/build_site.py --out site

bench: $(VENV)/.installed $(FMNIST) $(CC_BIN)
	$(PY) benchmarks/sigreg.py
	$(PY) benchmarks/train_step.py
	$(PY) benchmarks/animate.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check lejepa_viz tests benchmarks tools
	$(VENV)/bin/ruff format --check lejepa_viz tests benchmarks tools
	$(PY) tools/clean_notebook.py --check notebooks/*.ipynb

clean:
	rm -rf $(VENV) .pytest_cache runs site
