# Every target creates .venv in the checkout if it is missing and installs the project into it.
PYTHON ?= python3
# the PyTorch training backend's tests need torch; a CPU build is enough (and ~1 GB instead of ~6 GB
# with CUDA). Elsewhere: make test TORCH="torch --index-url https://download.pytorch.org/whl/cpu"
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow fuzz lint bench bench-dask clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[extras,test,torch,keras,dask]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/rnngraph demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# differential fuzzing, long profile: 6 topologies x 400 random models, onnxruntime vs the oracle
fuzz: $(STAMP)
	RNNGRAPH_FUZZ=long $(BIN)/python -m pytest -q -p no:cacheprovider --hypothesis-show-statistics tests/test_fuzz.py

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet ruff mypy
	$(BIN)/ruff check rnngraph exporters runtime tests samples benchmarks
	$(BIN)/mypy --ignore-missing-imports rnngraph/__init__.py rnngraph/dsl rnngraph/compiler rnngraph/interop rnngraph/pytorch \
		rnngraph/scaleout rnngraph/train.py rnngraph/ridge.py rnngraph/progress.py rnngraph/files.py rnngraph/loading.py \
		rnngraph/draw.py rnngraph/verify.py rnngraph/bench exporters runtime

# the speed suite (~8 min on 2 cores): writes benchmarks/results/latest.md and latest.json
bench: $(STAMP)
	$(BIN)/python benchmarks/suite.py

# ESN harvest vs the previous one and ReservoirPy (installed here for the comparison only), then Dask vs one process
bench-dask: $(STAMP)
	$(BIN)/python -m pip install --quiet reservoirpy
	$(BIN)/python benchmarks/esn_harvest.py
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/python benchmarks/esn_dask.py  # 1 thread, as each Dask worker

clean:
	rm -rf $(VENV) build *.egg-info
