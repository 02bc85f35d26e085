PY ?= python3
VENV ?= .venv
EXTRAS ?= dev
BIN := $(VENV)/bin

.PHONY: setup test demo bench clean

setup: $(BIN)/alkd

$(BIN)/alkd: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# torch first: the local CPU wheel; a bare `torch` requirement would pull a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	touch $@

test: setup
	$(BIN)/python -m pytest -q

demo: setup
	$(BIN)/alkd data fetch ml-100k
	$(BIN)/alkd demo --dataset ml-100k

bench: setup
	$(BIN)/python scripts/bench_engine.py

clean:
	rm -rf $(VENV) data/datasets data/checkpoints data/runs.duckdb
