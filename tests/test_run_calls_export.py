"""`alkd runs export/import` carry every LLM call of a run: LLMD4Rec's re-asked sessions too, whose calls no
selection row points to (store.run_calls, written by core.persist)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from click.testing import CliRunner
from tiny_data import make_dataset

from core import store
from core.cli import main
from core.data.dataset import save_dataset
from core.paths import dataset_dir


def invoke(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_export_carries_every_round_of_llmd4rec_calls(isolated_home: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    data = make_dataset(n_sessions=100, n_items=20, seed=3)
    save_dataset(data, dataset_dir(data.name))
    # hit rate 0: the student always ranks the truth better than the LLM, so round 2 re-asks with new candidates
    invoke("run", "--dataset", "tiny", "--method", "llmd4rec", "--teacher", "simulated", "--budget", "8",
           "--hit-rate", "0", "-o", "rounds=2", "-o", "max_epochs=2", "--group", "g", "--device", "cpu")
    run_id = store.query("SELECT run_id FROM runs WHERE groups = 'g'")["run_id"][0]
    calls = store.query("SELECT call_key FROM llm_calls")["call_key"]
    linked = store.query("SELECT DISTINCT call_key FROM selections WHERE run_id = ? AND picked", [run_id])
    assert len(calls) > len(linked)           # later rounds asked calls no selection row points to
    assert set(store.query("SELECT call_key FROM run_calls WHERE run_id = ?", [run_id])["call_key"]) == set(calls)

    invoke("runs", "export", "--run", run_id, "--out", tmp_path / "export")
    exported = pd.read_parquet(tmp_path / "export" / "llm_calls.parquet")
    assert set(exported["call_key"]) == set(calls)

    other = tmp_path / "other.duckdb"
    assert store.import_runs(tmp_path / "export", db=other) == 1
    assert set(store.query("SELECT call_key FROM llm_calls", path=other)["call_key"]) == set(calls)
    assert len(store.query("SELECT * FROM run_calls", path=other)) == len(calls)
    invoke("runs", "delete", run_id, "--yes")
    assert store.query("SELECT * FROM run_calls").empty
