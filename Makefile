PY ?= python3
VENV ?= .venv
EXTRAS ?= dev
BIN := $(VENV)/bin

.PHONY: setup test lint demo bench peers clean

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

# alkd against RecBole 1.2.1 (issue 14): RecBole's own venv under $$ALKD_HOME/peers, then every row not yet in
# docs/peers/results.jsonl (hours of quiet CPU; rerun to resume), then docs/peers.md. Not part of `make test`.
peers: setup
	$(BIN)/python scripts/bench_peers.py setup
	OMP_NUM_THREADS=1 $(BIN)/python scripts/bench_peers.py run

clean:
	rm -rf $(VENV) data/datasets data/checkpoints data/runs.duckdb
