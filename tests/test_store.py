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


def test_threads_writing_first_on_a_fresh_store_lose_nothing(tmp_path):
    # Threads of one process share DuckDB's instance: the first writers all used to migrate at once and all but one
    # failed with "Catalog write-write conflict" (the teacher's ledger threads lost their rows that way).
    import threading
    db = tmp_path / "fresh.duckdb"
    errors = []

    def writer(tag):
        try:
            for i in range(5):
                store.create_run(f"{tag}-{i}", kind="train", dataset="d", config={}, versions={}, db=db)
                store.save_metrics(f"{tag}-{i}", "test", {"ndcg@10": i / 10}, db=db)
        except Exception as error:  # noqa: BLE001 - collected for the assertion
            errors.append(repr(error))

    threads = [threading.Thread(target=writer, args=(f"t{k}",)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.query("SELECT count(*) AS n FROM runs", path=db)["n"][0] == 30
    assert store.query("SELECT count(*) AS n FROM metrics", path=db)["n"][0] == 30
    versions = store.query("SELECT version FROM schema_version ORDER BY version", path=db)["version"].tolist()
    assert versions == list(range(1, len(store.MIGRATIONS) + 1))


THREADED_WRITER = textwrap.dedent("""
    import sys, threading, time
    from core import store
    db, tag, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
    errors = []
    def write(k):
        try:
            for i in range(4):
                store.create_run(f"{tag}-{k}-{i}", kind="train", dataset="d", config={}, versions={}, db=db)
        except Exception as error:
            errors.append(repr(error))
    while time.time() < start:
        pass
    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    print("errors", errors)
    sys.exit(1 if errors else 0)
""")


def test_processes_with_threads_writing_first_on_a_fresh_store_lose_nothing(tmp_path):
    import time
    db = tmp_path / "fresh.duckdb"
    start = time.time() + 3     # all begin together, on a store nobody has migrated
    writers = [subprocess.Popen([sys.executable, "-c", THREADED_WRITER, str(db), f"p{p}", str(start)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for p in range(3)]
    outputs = [w.communicate(timeout=300) for w in writers]
    assert [w.returncode for w in writers] == [0, 0, 0], outputs
    assert store.query("SELECT count(*) AS n FROM runs", path=db)["n"][0] == 3 * 4 * 4


def test_a_run_id_never_names_a_path(tmp_path):
    import pytest

    from core.data.errors import DataError
    db = tmp_path / "runs.duckdb"
    with pytest.raises(DataError, match=r"run id '\.\./x': a run id may use letters"):
        store.create_run("../x", kind="train", dataset="d", config={}, versions={}, db=db)
    store.create_run("fine", kind="train", dataset="d", config={}, versions={}, db=db)
    store.export_runs(["fine"], tmp_path / "export", db=db)
    runs = pd.read_parquet(tmp_path / "export" / "runs.parquet")
    runs.loc[0, "run_id"] = "../../models/evil"
    runs.to_parquet(tmp_path / "export" / "runs.parquet", index=False)
    other = tmp_path / "other.duckdb"
    with pytest.raises(DataError) as error:
        store.import_runs(tmp_path / "export", db=other)
    assert str(error.value).startswith(f"{tmp_path / 'export' / 'runs.parquet'}: run_id '../../models/evil': a run id")
    assert store.query("SELECT count(*) AS n FROM runs", path=other)["n"][0] == 0


def test_a_running_run_whose_process_died_or_whose_pid_was_reused_is_failed(tmp_path):
    import os
    db = tmp_path / "runs.duckdb"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        store.create_run("alive", kind="train", dataset="d", config={}, versions={}, pid=os.getpid(), db=db)
        store.create_run("killed", kind="train", dataset="d", config={}, versions={}, pid=child.pid, db=db)
        store.create_run("reused", kind="train", dataset="d", config={}, versions={}, pid=os.getpid(), db=db)
        store.create_run("elsewhere", kind="train", dataset="d", config={}, versions={}, pid=child.pid, db=db)
        store.create_run("done", kind="train", dataset="d", config={}, versions={}, pid=child.pid, db=db)
        store.finish_run("done", "done", db=db)
        with store.write(db) as con:   # the pid now belongs to a process that started at another time
            con.execute("UPDATE runs SET pid_started = pid_started - 100 WHERE run_id = 'reused'")
            con.execute("UPDATE runs SET host = 'another-machine' WHERE run_id = 'elsewhere'")
        store.update_progress("killed", "train", 3, 30, "epoch 3", db=db)
        assert store.reap_dead_runs(db) == ["reused"]
        child.kill()
        child.wait()
        assert store.reap_dead_runs(db) == ["killed"]
        assert store.reap_dead_runs(db) == []
    finally:
        child.kill()
    runs = store.query("SELECT run_id, status, message FROM runs", path=db).set_index("run_id")
    assert runs["status"].to_dict() == {"alive": "running", "killed": "failed", "reused": "failed",
                                        "elsewhere": "running", "done": "done"}
    assert runs.loc["killed", "message"] == "process died: epoch 3" and runs.loc["reused", "message"] == "process died"


# ---- resumable runs (core/resume.py) ---------------------------------------------------------------------------

def test_claim_run_takes_over_only_a_failed_or_cancelled_run_once(tmp_path):
    import os
    from concurrent.futures import ThreadPoolExecutor
    db = tmp_path / "runs.duckdb"
    for run_id, status in (("failed", "failed"), ("cancelled", "cancelled"), ("done", "done"), ("running", None)):
        store.create_run(run_id, kind="distill", dataset="d", config={}, versions={}, pid=os.getpid(), db=db)
        if status:
            store.finish_run(run_id, status, db=db)
    with ThreadPoolExecutor(4) as pool:        # four resumers of one run: one gets it
        claims = list(pool.map(lambda _: store.claim_run("failed", os.getpid(), 0.25, db=db), range(4)))
    assert sorted(claims, key=str) == [2, None, None, None]
    assert store.claim_run("cancelled", os.getpid(), 0.0, db=db) == 2
    assert store.claim_run("done", os.getpid(), 0.0, db=db) is None
    assert store.claim_run("running", os.getpid(), 0.0, db=db) is None
    assert store.claim_run("unknown", os.getpid(), 0.0, db=db) is None
    runs = store.query("SELECT * FROM runs", path=db).set_index("run_id")
    assert runs.loc["failed", "status"] == "running" and runs.loc["failed", "attempts"] == 2
    assert runs.loc["failed", "prior_usd"] == 0.25 and runs.loc["failed", "usd_spent"] == 0.25
    assert pd.isna(runs.loc["failed", "finished_at"]) and runs.loc["failed", "pid_started"] is not None
    assert runs.loc["done", "status"] == "done" and runs.loc["done", "attempts"] == 1


def test_attempt_usd_counts_the_calls_of_the_runs_process_in_its_window(tmp_path):
    import os
    import time

    from core.teachers import cache
    db = tmp_path / "runs.duckdb"
    base = dict(provider="openai", model="m", prompt_hash="", prompt="", raw_reply="", ranking=(), rationale="",
                n_valid=0, input_tokens=0, output_tokens=0, latency_s=0.0, error=None, simulated=False)
    cache.record(cache.CallRecord(call_key="before", usd=1.0, pid=4242, **base), db)   # before the run started
    time.sleep(0.01)
    store.create_run("r", kind="distill", dataset="d", config={}, versions={}, pid=os.getpid(), db=db)
    store.set_run_fields("r", db=db)
    with store.write(db) as con:       # the run's process: pid 4242, as if it ran elsewhere and died
        con.execute("UPDATE runs SET pid = 4242 WHERE run_id = 'r'")
    cache.record_many([cache.CallRecord(call_key="ok", usd=0.5, pid=4242, **base),
                       cache.CallRecord(call_key="failed", usd=0.25, status="failed", pid=4242, **base),
                       cache.CallRecord(call_key="resolved", usd=0.0625, interrupted_usd=0.125, pid=4242, **base),
                       cache.CallRecord(call_key="pending", usd=0.0, reserved_usd=8.0, status="pending", pid=4242,
                                        **base),
                       cache.CallRecord(call_key="another process", usd=16.0, pid=4343, **base)], db)
    assert store.attempt_usd("r", db) == 0.5 + 0.25 + 0.0625 + 0.125
    store.finish_run("r", "failed", db=db)
    time.sleep(0.01)
    cache.record(cache.CallRecord(call_key="after", usd=32.0, pid=4242, **base), db)     # a later process, same pid
    assert store.attempt_usd("r", db) == 0.5 + 0.25 + 0.0625 + 0.125


def test_pause_point_does_nothing_unless_a_test_names_it(tmp_path, monkeypatch):
    import time
    marker = tmp_path / "marker"
    monkeypatch.setattr(store, "PAUSE_SECONDS", 0.0)
    monkeypatch.setattr(store, "_paused", set())
    monkeypatch.delenv(store.PAUSE_ENV, raising=False)
    store.pause_point("write_run")
    monkeypatch.setenv(store.PAUSE_ENV, f"progress:train={marker}")
    started = time.monotonic()
    store.pause_point("write_run")
    assert not marker.exists() and time.monotonic() - started < 0.5
    store.pause_point("progress:train")
    assert marker.read_text() == str(__import__("os").getpid())
