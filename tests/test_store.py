import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd

from core import store


def test_migrations_are_forward_and_idempotent(tmp_path):
    db = tmp_path / "runs.duckdb"
    assert store.migrate(db) == len(store.MIGRATIONS)
    assert store.migrate(db) == len(store.MIGRATIONS)
    versions = store.query("SELECT version FROM schema_version ORDER BY version", path=db)["version"].tolist()
    assert versions == list(range(1, len(store.MIGRATIONS) + 1))
    tables = set(store.query("SELECT table_name FROM information_schema.tables", path=db)["table_name"])
    assert {"datasets", "runs", "metrics", "session_results", "training_curves", "llm_calls"} <= tables


def test_run_lifecycle_round_trips(tmp_path):
    db = tmp_path / "runs.duckdb"
    store.create_run("r1", kind="train", dataset="tiny", backbone="fpmc", role="teacher", method="teacher", seed=0,
                     config={"dim": 100}, versions={"alkd": "0"}, db=db)
    store.update_progress("r1", "train", 3, 10, "epoch 3", db=db)
    store.save_metrics("r1", "test", {"ndcg@10": 0.25, "recall@10": 0.5, "mrr@20": 0.1}, db=db)
    store.save_session_results("r1", "test", np.array([1, 2]), np.array([5, 6]), np.array([0, 40]), db=db)
    store.save_curve("r1", pd.DataFrame({"step": [1], "epoch": [1], "train_loss": [0.5], "valid_metric": ["ndcg@10"],
                                         "valid_value": [0.2], "seconds": [1.0]}), db=db)
    store.finish_run("r1", "done", timings={"train": 1.5}, db=db)
    run = store.query("SELECT * FROM runs", path=db).iloc[0]
    assert run["status"] == "done" and run["stage"] == "done" and json.loads(run["timings"]) == {"train": 1.5}
    store.create_run("r2", kind="evaluate", dataset="tiny", backbone="popular", role="baseline", method="popular",
                     config={}, versions={}, db=db)
    store.save_metrics("r2", "test", {"ndcg@10": 0.05}, db=db)
    wide = store.run_metrics(db=db).set_index("run_id")
    assert len(wide) == 2                                     # one row per run, whatever is None
    assert wide.loc["r1", "ndcg@10"] == 0.25 and wide.loc["r1", "mrr@20"] == 0.1
    assert wide.loc["r2", "ndcg@10"] == 0.05 and wide.loc["r2", "backbone"] == "popular"
    ranks = store.query("SELECT rank FROM session_results ORDER BY session_id", path=db)["rank"].tolist()
    assert ranks == [0, 40]
    # saving again replaces, never duplicates
    store.save_metrics("r1", "test", {"ndcg@10": 0.3}, db=db)
    assert store.query("SELECT count(*) AS n FROM metrics WHERE run_id = 'r1'", path=db)["n"][0] == 1


def test_a_failed_write_rolls_back(tmp_path):
    db = tmp_path / "runs.duckdb"
    store.save_metrics("r1", "test", {"ndcg@10": 0.25}, db=db)
    try:
        with store.write(db) as con:
            con.execute("DELETE FROM metrics")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert store.query("SELECT count(*) AS n FROM metrics", path=db)["n"][0] == 1


WRITER = textwrap.dedent("""
    import sys
    from core import store
    db = sys.argv[1]
    for i in range(60):
        store.create_run(f"run-{i}", kind="train", dataset="d", config={}, versions={}, db=db)
        store.save_metrics(f"run-{i}", "test", {"ndcg@10": i / 100}, db=db)
        store.finish_run(f"run-{i}", "done", db=db)
    print("writer ok")
""")
READER = textwrap.dedent("""
    import sys, time
    from core import store
    db = sys.argv[1]
    seen = 0
    deadline = time.time() + 120
    while seen < 60 and time.time() < deadline:
        seen = int(store.query("SELECT count(*) AS n FROM runs WHERE status = 'done'", path=db)["n"][0])
    print("reader ok", seen)
""")


def test_a_writer_and_a_reader_process_share_the_file(tmp_path):
    db = tmp_path / "shared.duckdb"
    store.migrate(db)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    w_out, w_err = writer.communicate(timeout=300)
    r_out, r_err = reader.communicate(timeout=300)
    assert writer.returncode == 0, w_err
    assert reader.returncode == 0, r_err
    assert "writer ok" in w_out
    assert r_out.strip() == "reader ok 60"


def test_runs_export_and_import_between_stores(tmp_path):
    first, second = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    for run_id, value in (("keep", 0.2), ("other", 0.1)):
        store.create_run(run_id, kind="run", dataset="d", config={}, versions={}, db=first)
        store.save_metrics(run_id, "test", {"ndcg@10": value}, db=first)
        store.save_session_results(run_id, "test", np.array([1, 2]), np.array([3, 4]), np.array([0, 9]), db=first)
    counts = store.export_runs(["keep"], tmp_path / "export", db=first)
    assert counts["runs"] == 1 and counts["metrics"] == 1 and counts["session_results"] == 2
    assert store.import_runs(tmp_path / "export", db=second) == 1
    assert store.import_runs(tmp_path / "export", db=second) == 0          # idempotent: nothing doubled
    assert store.query("SELECT count(*) AS n FROM session_results", path=second)["n"][0] == 2
    assert store.run_metrics(db=second)["ndcg@10"].tolist() == [0.2]
