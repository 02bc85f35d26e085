"""core.persist: a run's rows built as Arrow tables without DuckDB, written in one transaction or not at all."""

from __future__ import annotations

import json
import pickle
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from core import store
from core.evaluate import EvalResult
from core.models.registry import create
from core.paths import db_path
from core.persist import RESULT_TABLES, SCHEMAS, RunTables, result_tables, write_run
from core.pipeline import RunConfig, RunFacts, RunResult


def _result(n_test: int = 5, n_pool: int = 6) -> RunResult:
    test = EvalResult({"ndcg@10": 0.25, "recall@10": 0.5, "mrr@20": 0.125}, np.arange(n_test, dtype=np.int64),
                      np.arange(100, 100 + n_test), np.arange(1, n_test + 1))
    valid = EvalResult({"ndcg@10": 0.2}, np.zeros(2, np.int64), np.array([7, 8]), np.array([1, 2]))
    curve = pd.DataFrame({"step": [0, 3], "epoch": [0, 1], "train_loss": [float("nan"), 0.5],
                          "valid_metric": ["ndcg@10"] * 2, "valid_value": [0.1, 0.2], "seconds": [0.0, 1.5],
                          "round": [0, 0]})                     # a column the store does not keep
    picked = [True, False] * (n_pool // 2)
    selection = pd.DataFrame({"session_id": np.arange(n_pool), "consistency": np.linspace(0, 1, n_pool),
                              "difficulty": np.linspace(1, 0, n_pool), "gain": 0.5, "probability": 0.1,
                              "picked": picked, "pick_order": pd.array([1, None] * (n_pool // 2), dtype="Int64"),
                              "category": [["effective", None][i % 2] for i in range(n_pool)],
                              "call_key": [["k", None][i % 2] for i in range(n_pool)],
                              "hit_position": pd.array([3, None] * (n_pool // 2), dtype="Int64")})
    return RunResult(RunConfig(dataset="csv", method="alkdrec", teacher="simulated"), test, valid, curve,
                  {"query": 1.25}, selection, {0: (3, 4, 5), 2: (6, 7)},
                  # two rounds asked "k" (once stored); a skipped / replayed response has no call key
                  [SimpleNamespace(call_key="k"), SimpleNamespace(call_key="k2"), SimpleNamespace(call_key="k"),
                   SimpleNamespace(call_key=None)], usd_spent=0.0123, n_labelled=3,
                  extra=RunFacts(kind="llm", warnings=[]))


def _new_run(run_id: str) -> None:
    store.create_run(run_id, kind="distill", dataset="csv", config={}, versions={}, method="alkdrec")


def _counts(run_id: str) -> dict[str, int]:
    return {t: int(store.query(f"SELECT count(*) AS n FROM {t} WHERE run_id = ?", [run_id])["n"][0])
            for t in RESULT_TABLES}


def test_result_tables_builds_every_table_without_touching_the_store():
    tables = result_tables("r1", _result(), save_model=False)
    assert not db_path().exists()                                   # pure: no DuckDB file, no connection
    assert set(tables.tables) == set(RESULT_TABLES)
    for name, table in tables.tables.items():
        assert table.schema == SCHEMAS[name], name
        assert set(table["run_id"].to_pylist()) <= {"r1"}
    assert tables.rows() == {"metrics": 4, "session_results": 5, "training_curves": 2, "selections": 6,
                             "run_candidates": 2, "run_calls": 2}
    selections = tables.tables["selections"].to_pydict()
    assert selections["pick_order"] == [1, None] * 3 and selections["category"][1] is None
    assert selections["position"] == [None] * 6                    # a column the frame lacks is null
    assert tables.tables["run_candidates"].to_pydict()["candidates"] == [[3, 4, 5], [6, 7]]
    assert tables.usd_spent == pytest.approx(0.0123) and tables.n_labelled == 3
    config = json.loads(tables.config_json)
    assert config["method"] == "alkdrec" and config["extra"] == {"kind": "llm", "warnings": []}
    again = pickle.loads(pickle.dumps(tables))                     # a sweep worker sends it to the driver
    assert all(again.tables[n].equals(tables.tables[n]) for n in RESULT_TABLES)


def test_result_tables_saves_the_model_atomically_when_asked(isolated_home):
    result = _result()
    result.model = create("fpmc", 20, 4, 5)
    tables = result_tables("r-model", result, save_model=True)
    path = isolated_home / "models" / "r-model.pt"
    assert path.exists() and json.loads(tables.config_json)["extra"]["model_path"] == str(path)
    assert not list(path.parent.glob("*.partial"))
    assert not db_path().exists()
    assert "model_path" not in result.extra                         # the result itself is left as it was


def test_write_run_writes_every_row_and_marks_the_run_done():
    _new_run("r1")
    _new_run("other")
    write_run("other", result_tables("other", _result(), save_model=False))
    write_run("r1", result_tables("r1", _result(), save_model=False))
    assert _counts("r1") == {"metrics": 4, "session_results": 5, "training_curves": 2, "selections": 6,
                             "run_candidates": 2, "run_calls": 2}
    run = store.query("SELECT * FROM runs WHERE run_id = 'r1'").iloc[0]
    assert run["status"] == "done" and run["stage"] == "done" and run["message"] == ""
    assert run["usd_spent"] == pytest.approx(0.0123) and run["n_labelled"] == 3
    assert json.loads(run["timings"]) == {"query": 1.25} and json.loads(run["config"])["extra"]["kind"] == "llm"
    metrics = store.run_metrics(["r1"]).iloc[0]
    assert metrics["ndcg@10"] == 0.25 and metrics["mrr@20"] == 0.125
    stored = store.query("SELECT pick_order, category, hit_position FROM selections WHERE run_id = 'r1'"
                         " ORDER BY session_id")
    assert stored["pick_order"].isna().tolist() == [False, True] * 3 and stored["category"][0] == "effective"
    assert _counts("other") == _counts("r1")                       # another run's rows are its own


def test_write_run_replaces_what_an_earlier_attempt_left():
    _new_run("r1")
    store.save_metrics("r1", "test", {"ndcg@10": 0.9, "hr@99": 1.0})           # a killed attempt's partial rows
    store.save_selections("r1", pd.DataFrame({"session_id": [0, 1, 2]}))
    tables = result_tables("r1", _result(), save_model=False)
    write_run("r1", tables)
    write_run("r1", tables)                                                      # twice: still one set of rows
    assert _counts("r1") == tables.rows()
    assert store.query("SELECT value FROM metrics WHERE run_id = 'r1' AND metric = 'ndcg' AND split = 'test'"
                       )["value"].tolist() == [0.25]


def test_a_failure_inside_write_run_leaves_no_partial_rows():
    _new_run("r1")
    store.save_metrics("r1", "test", {"ndcg@10": 0.9})                           # what was there before
    tables = result_tables("r1", _result(), save_model=False)
    # run_candidates has a column the store does not have: metrics, ranks, curve, selections are already
    # inserted and the earlier rows deleted when it fails
    bad = tables.tables["run_candidates"].append_column("bogus", pa.array([1, 2], pa.int64()))
    broken = RunTables("r1", {**tables.tables, "run_candidates": bad}, tables.usd_spent, tables.n_labelled,
                       tables.config_json, tables.timings)
    with pytest.raises(Exception, match="bogus"):
        write_run("r1", broken)
    assert _counts("r1") == {"metrics": 1, "session_results": 0, "training_curves": 0, "selections": 0,
                             "run_candidates": 0, "run_calls": 0}
    run = store.query("SELECT status, usd_spent, n_labelled FROM runs WHERE run_id = 'r1'").iloc[0]
    assert run["status"] == "running" and run["usd_spent"] == 0 and run["n_labelled"] == 0


def test_write_run_refuses_an_unknown_run_and_anothers_tables():
    with pytest.raises(KeyError, match="no run 'ghost'"):
        write_run("ghost", result_tables("ghost", _result(), save_model=False))
    assert sum(_counts("ghost").values()) == 0                  # the inserts were rolled back with the update
    _new_run("r1")
    with pytest.raises(ValueError, match="tables of run 'r2'"):
        write_run("r1", result_tables("r2", _result(), save_model=False))
    mixed = result_tables("r1", _result(), save_model=False)
    mixed.tables["metrics"] = result_tables("r2", _result(), save_model=False).tables["metrics"]
    with pytest.raises(ValueError, match="rows of another run"):
        write_run("r1", mixed)
    assert sum(_counts("r1").values()) == 0


def test_a_reference_run_without_selection_or_curve():
    result = _result()
    result.selection, result.candidates, result.curve, result.valid, result.responses = None, {}, None, None, []
    _new_run("ref")
    tables = result_tables("ref", result, save_model=False)
    write_run("ref", tables)
    assert _counts("ref") == {"metrics": 3, "session_results": 5, "training_curves": 0, "selections": 0,
                              "run_candidates": 0, "run_calls": 0}


def test_the_arrow_schemas_are_the_store_tables():
    store.migrate()
    for name, schema in SCHEMAS.items():
        columns = store.query("SELECT column_name FROM information_schema.columns WHERE table_name = ?"
                              " ORDER BY ordinal_position", [name])["column_name"].tolist()
        assert columns == schema.names, name
