PY ?= python3
VENV ?= .venv
EXTRAS ?= dev
BIN := $(VENV)/bin

.PHONY: setup test lint demo bench clean

setup: $(BIN)/alkd

$(BIN)/alkd: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# torch first: the local CPU wheel; a bare `torch` requirement would pull a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	touch $@

test: setup
	$(BIN)/python -m pytest -q

# style (ruff) and the import layers declared in pyproject.toml (import-linter)
lint: setup
	$(BIN)/ruff check core dashboard scripts tests
	$(BIN)/lint-imports --no-cache

demo: setup
	$(BIN)/alkd data fetch ml-100k
	$(BIN)/alkd run --dataset ml-100k --backbone fpmc --method student,teacher,random,alkdrec --teacher simulated \
		--budget 100 --seeds 0 --group demo --tag demo
	$(BIN)/streamlit run dashboard/app.py --server.headless true --server.address 127.0.0.1 --server.port 8501 \
		--browser.gatherUsageStats false --server.fileWatcherType none

bench: setup
	$(BIN)/python scripts/bench_engine.py

clean:
	rm -rf $(VENV) data/datasets data/checkpoints data/runs.duckdb
