"""The run store: one DuckDB file (default `data/runs.duckdb`, `ALKD_DB` overrides).

Connections are short-lived (open, one transaction, close) and retried on DuckDB's cross-process file lock, so a
dashboard reading and a CLI writing never fail on each other and nothing holds the file across training. The engine
returns results; only the edges (CLI, pipeline driver) call the write functions here.
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

import duckdb
import pandas as pd

from core.paths import check_name, db_path

LOCK_RETRY_SECONDS = 60.0

# Forward-only migrations: index i brings the schema from version i to i + 1. Never edit a shipped entry; append.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE datasets (
        name VARCHAR PRIMARY KEY, source VARCHAR, path VARCHAR, n_sessions BIGINT, n_items BIGINT,
        n_interactions BIGINT, n_train BIGINT, n_valid BIGINT, n_test BIGINT, mean_length DOUBLE,
        max_length BIGINT, meta JSON, registered_at TIMESTAMPTZ);
    CREATE TABLE runs (
        run_id VARCHAR PRIMARY KEY, kind VARCHAR, status VARCHAR, dataset VARCHAR, backbone VARCHAR, role VARCHAR,
        method VARCHAR, teacher VARCHAR, seed BIGINT, config JSON, versions JSON, timings JSON, message VARCHAR,
        stage VARCHAR, step BIGINT, total BIGINT, pid BIGINT, tags VARCHAR[], created_at TIMESTAMPTZ,
        started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, updated_at TIMESTAMPTZ);
    CREATE TABLE metrics (run_id VARCHAR, split VARCHAR, metric VARCHAR, k BIGINT, value DOUBLE);
    CREATE TABLE session_results (run_id VARCHAR, split VARCHAR, session_id BIGINT, target BIGINT, rank BIGINT);
    CREATE TABLE training_curves (run_id VARCHAR, step BIGINT, epoch BIGINT, train_loss DOUBLE,
        valid_metric VARCHAR, valid_value DOUBLE, seconds DOUBLE);
    CREATE TABLE llm_calls (
        call_key VARCHAR PRIMARY KEY, provider VARCHAR, model VARCHAR, prompt_hash VARCHAR, prompt VARCHAR,
        raw_reply VARCHAR, ranking BIGINT[], rationale VARCHAR, n_valid BIGINT, input_tokens BIGINT,
        output_tokens BIGINT, usd DOUBLE, latency_s DOUBLE, error VARCHAR, simulated BOOLEAN, created_at TIMESTAMPTZ);
    """,
    # LLM teachers (core/teachers): per-call session context and accounting; versioned prompt hints.
    """
    ALTER TABLE llm_calls ADD COLUMN session_id BIGINT;
    ALTER TABLE llm_calls ADD COLUMN dataset VARCHAR;
    ALTER TABLE llm_calls ADD COLUMN label BIGINT;
    ALTER TABLE llm_calls ADD COLUMN raw_ranking BIGINT[];
    ALTER TABLE llm_calls ADD COLUMN status VARCHAR;
    ALTER TABLE llm_calls ADD COLUMN attempts BIGINT;
    ALTER TABLE llm_calls ADD COLUMN mode VARCHAR;
    ALTER TABLE llm_calls ADD COLUMN cache_read_tokens BIGINT;
    ALTER TABLE llm_calls ADD COLUMN cache_write_tokens BIGINT;
    CREATE TABLE hints (
        dataset VARCHAR, version BIGINT, text VARCHAR, provider VARCHAR, model VARCHAR, created_at TIMESTAMPTZ,
        source VARCHAR, simulated BOOLEAN, PRIMARY KEY (dataset, version));
    """,
    # Distillation runs (alkd run): the selection over the pool, what the teacher answered, the category, and
    # per-run LLM accounting for the dashboard.
    """
    CREATE TABLE selections (
        run_id VARCHAR, session_id BIGINT, consistency DOUBLE, difficulty DOUBLE, position BIGINT, gain DOUBLE,
        probability DOUBLE, picked BOOLEAN, pick_order BIGINT, category VARCHAR, call_key VARCHAR,
        hit_position BIGINT, student_rank BIGINT, n_valid BIGINT);
    CREATE TABLE run_candidates (run_id VARCHAR, session_id BIGINT, candidates BIGINT[]);
    ALTER TABLE runs ADD COLUMN budget BIGINT;
    ALTER TABLE runs ADD COLUMN usd_cap DOUBLE;
    ALTER TABLE runs ADD COLUMN usd_spent DOUBLE DEFAULT 0;
    ALTER TABLE runs ADD COLUMN n_labelled BIGINT DEFAULT 0;
    ALTER TABLE runs ADD COLUMN groups VARCHAR;
    """,
    # The LLM ledger as a trace of money (core/teachers/cache.py): a 'pending' row (this pid, the reserved worst
    # case) before each request, so a killed process leaves what it may have been billed; interrupted_usd carries it.
    """
    ALTER TABLE llm_calls ADD COLUMN pid BIGINT;
    ALTER TABLE llm_calls ADD COLUMN reserved_usd DOUBLE;
    ALTER TABLE llm_calls ADD COLUMN interrupted_usd DOUBLE;
    """,
    # The process of a running run: its start time (Linux clock ticks since boot, /proc/PID/stat field 22) and host,
    # so a pid the kernel has since given to another process is never taken for the run's (reap_dead_runs, cancel).
    """
    ALTER TABLE runs ADD COLUMN pid_started BIGINT;
    ALTER TABLE runs ADD COLUMN host VARCHAR;
    """,
    # Resumable runs (core/resume.py): how many times a run was started, and the USD its earlier (killed or failed)
    # attempts paid, so a resumed run's usd_spent and USD cap cover every attempt.
    """
    ALTER TABLE runs ADD COLUMN attempts BIGINT DEFAULT 1;
    ALTER TABLE runs ADD COLUMN prior_usd DOUBLE DEFAULT 0;
    """,
    # Every LLM call a run's teacher answered from, each round's (LLMD4Rec re-asks sessions: those calls are not the
    # ones its selections point to), so `alkd runs export` carries all of a run's calls.
    """
    CREATE TABLE run_calls (run_id VARCHAR, call_key VARCHAR);
    """,
]


def now() -> datetime:
    return datetime.now(timezone.utc)


def _is_lock_error(error: Exception) -> bool:
    text = str(error)
    return "Could not set lock" in text or "Conflicting lock" in text or "different configuration" in text


@contextmanager
def connect(path: Path | str | None = None, *, read_only: bool = False,
            timeout: float = LOCK_RETRY_SECONDS) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection; retries every ~50 ms while another process holds the file lock."""
    target = Path(path) if path is not None else db_path()
    if not read_only:
        target.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        try:
            con = duckdb.connect(str(target), read_only=read_only)
            break
        except (duckdb.IOException, duckdb.ConnectionException) as error:
            if not _is_lock_error(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.03 + random.random() * 0.04)
    try:
        yield con
    finally:
        con.close()


_locks: dict[str, threading.RLock] = {}
_locks_guard = threading.Lock()


def _lock(target: Path | str) -> threading.RLock:
    """The in-process lock of one store file. DuckDB's file lock keeps other processes out, but threads of one process
    share one database instance and their transactions conflict ("Catalog write-write conflict"), e.g. the first LLM
    calls recorded from several teacher threads on a fresh store; writers of a process take turns on this lock."""
    key = str(Path(target).resolve())
    with _locks_guard:
        return _locks.setdefault(key, threading.RLock())


def migrate(path: Path | str | None = None, *, attempts: int = 20) -> int:
    """Apply pending migrations, all in one transaction; returns the schema version. Serialised per store within the
    process (`_lock`) and retried when another connection won a write-write conflict, so the first concurrent writers
    on a fresh store all find it migrated and none loses its rows."""
    target = Path(path) if path is not None else db_path()
    with _lock(target):
        for attempt in range(attempts):
            try:
                return _migrate_once(target)
            except duckdb.TransactionException as error:
                if "conflict" not in str(error).lower() or attempt == attempts - 1:
                    raise
                time.sleep(0.02 + random.random() * 0.05)
    raise AssertionError("unreachable")


def _migrate_once(target: Path) -> int:
    with connect(target) as con:
        con.execute("BEGIN")
        try:
            con.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT, applied_at TIMESTAMPTZ)")
            current = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
            for version in range(current, len(MIGRATIONS)):
                con.execute(MIGRATIONS[version])
                con.execute("INSERT INTO schema_version VALUES (?, ?)", [version + 1, now()])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return len(MIGRATIONS)


_migrated: set[str] = set()


@contextmanager
def write(path: Path | str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection on a migrated store, inside one transaction. Writers of one process take turns
    (`_lock`); other processes wait on DuckDB's file lock (`connect`)."""
    target = str(Path(path) if path is not None else db_path())
    with _lock(target):
        if target not in _migrated:
            migrate(target)
            _migrated.add(target)
        with connect(target) as con:
            con.execute("BEGIN")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise


def query(sql: str, params: Sequence[Any] | None = None, path: Path | str | None = None) -> pd.DataFrame:
    """Read as a DataFrame; an absent store reads as empty tables."""
    target = Path(path) if path is not None else db_path()
    if str(target) not in _migrated or not target.exists():
        migrate(target)
        _migrated.add(str(target))
    with connect(target, read_only=True) as con:
        return con.execute(sql, params or []).df()


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    """Append a DataFrame's rows to `table` (columns by name) on an open write connection."""
    if frame.empty:
        return
    con.register("_frame", frame)
    columns = ", ".join(frame.columns)
    con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _frame")
    con.unregister("_frame")


# ---- datasets -------------------------------------------------------------------------------------------------

def register_dataset(name: str, source: str, path: Path, stats: dict[str, Any], meta: dict[str, Any],
                     db: Path | str | None = None) -> None:
    with write(db) as con:
        con.execute("DELETE FROM datasets WHERE name = ?", [name])
        con.execute(
            "INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [name, source, str(path), stats["n_sessions"], stats["n_items"], stats["n_interactions"],
             stats["n_train"], stats["n_valid"], stats["n_test"], stats["mean_length"], stats["max_length"],
             json.dumps(meta, default=str), now()])


# ---- runs -----------------------------------------------------------------------------------------------------

def create_run(run_id: str, *, kind: str, dataset: str, config: dict[str, Any], versions: dict[str, str],
               backbone: str | None = None, role: str | None = None, method: str | None = None,
               teacher: str | None = None, seed: int | None = None, pid: int | None = None,
               tags: Sequence[str] = (), status: str = "running", db: Path | str | None = None) -> None:
    """A new run row. pid: the process doing the run (normally os.getpid()); its start time and this host are stored
    with it, so `reap_dead_runs` and the dashboard's Cancel recognise the process later, even if the pid is reused."""
    check_name(run_id, what="run id", field="run id", fix="make run ids with core.records.new_run_id")
    stamp = now()
    started = process_started(pid) if pid is not None else None
    host = socket.gethostname() if pid is not None else None
    with write(db) as con:
        con.execute(
            "INSERT INTO runs (run_id, kind, status, dataset, backbone, role, method, teacher, seed, config, versions,"
            " timings, message, stage, step, total, pid, pid_started, host, tags, created_at, started_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}', '', 'queued', 0, 0, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, kind, status, dataset, backbone, role, method, teacher, seed, json.dumps(config, default=str),
             json.dumps(versions), pid, started, host, list(tags), stamp, stamp, stamp])


# ---- the process of a running run ----------------------------------------------------------------------------

def process_started(pid: int) -> int | None:
    """When process `pid` started: field 22 of /proc/PID/stat (clock ticks since boot), which differs for a later
    process given the same pid. None where there is no /proc (not Linux) or no such process."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _known(value: Any) -> bool:
    """Not None / NaN / NA (a stored value read back through pandas)."""
    return value is not None and not pd.isna(value)


def process_alive(pid: Any, started: Any = None, host: Any = None) -> bool:
    """Whether the run process (pid, pid_started, host as stored by create_run) still runs. A run of another host,
    or without a pid, cannot be judged here and counts as alive. Gone: no such pid, a zombie, or a process that
    started at another time (the pid was reused)."""
    if not _known(pid) or (_known(host) and str(host) != socket.gethostname()):
        return True
    pid = int(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass                     # exists, owned by someone else
    except OSError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state in ("Z", "X"):
            return False
    except (OSError, IndexError):
        pass                     # no /proc: existence is all we can tell
    if _known(started):
        now_started = process_started(pid)
        if now_started is not None and now_started != int(started):
            return False
    return True


def dead_runs(frame: pd.DataFrame) -> list[str]:
    """run_ids of the rows (run_id, status, pid, pid_started, host) that are 'running' with their process gone."""
    if frame.empty:
        return []
    running = frame[frame["status"] == "running"]
    return [row.run_id for row in running.itertuples(index=False)
            if not process_alive(row.pid, getattr(row, "pid_started", None), getattr(row, "host", None))]


def mark_dead(run_ids: Sequence[str], db: Path | str | None = None) -> int:
    """Mark runs that are still 'running' as failed ('process died', after their last progress message); a run
    that finished meanwhile is left alone. Returns how many were marked."""
    ids = list(run_ids)
    if not ids:
        return 0
    stamp = now()
    with write(db) as con:
        marked = con.execute(
            "UPDATE runs SET status = 'failed', finished_at = ?, updated_at = ?, message = 'process died'"
            " || CASE WHEN coalesce(message, '') = '' THEN '' ELSE ': ' || message END"
            " WHERE status = 'running' AND list_contains(?, run_id) RETURNING run_id", [stamp, stamp, ids]).fetchall()
    return len(marked)


def reap_dead_runs(db: Path | str | None = None) -> list[str]:
    """Find 'running' runs whose process is gone (killed, crashed, or its pid reused) and store them as failed;
    returns their run_ids. Called by `alkd runs list/show` and the dashboard."""
    frame = query("SELECT run_id, status, pid, pid_started, host FROM runs WHERE status = 'running'", path=db)
    dead = dead_runs(frame)
    mark_dead(dead, db)
    return dead


RESUMABLE = ("failed", "cancelled")


def attempt_usd(run_id: str, db: Path | str | None = None) -> float:
    """USD the run's current (last) attempt counted for calls that came back: llm_calls rows written by its process
    (runs.pid) between its start and its end (finished_at; now if unset), status ok/failed/error: their usd plus
    their interrupted_usd (what an earlier killed attempt's request for the same call may have been billed; the
    attempt that found it pending counted it). A process runs its runs one after another, so the window holds this
    run's calls only. A call still `pending` (left in flight by a kill) is not counted here: the next attempt counts
    it as possibly billed when it finds it (core.teachers.cache)."""
    frame = query(
        "SELECT coalesce(sum(coalesce(c.usd, 0) + coalesce(c.interrupted_usd, 0)), 0) AS usd"
        " FROM llm_calls c JOIN runs r ON c.pid = r.pid"
        " WHERE r.run_id = ? AND c.status IN ('ok', 'failed', 'error') AND c.created_at >= r.started_at"
        " AND c.created_at <= coalesce(r.finished_at, now())", [run_id], db)
    return float(frame["usd"].iloc[0])


def claim_run(run_id: str, pid: int, prior_usd: float, db: Path | str | None = None) -> int | None:
    """Take over a failed or cancelled run for another attempt by process `pid`: status running, this pid (start
    time, host), attempts + 1, prior_usd (what the earlier attempts paid, also its usd_spent until it finishes),
    started_at now, progress reset. Atomic: of two processes resuming one run, one gets it. Returns the attempt
    number, or None when the run was not resumable (done, running, or gone)."""
    stamp = now()
    with write(db) as con:
        row = con.execute(
            "UPDATE runs SET status = 'running', pid = ?, pid_started = ?, host = ?,"
            " attempts = coalesce(attempts, 1) + 1, prior_usd = ?, usd_spent = ?, started_at = ?, finished_at = NULL,"
            " updated_at = ?, stage = 'queued', step = 0, total = 0, message = 'resumed'"
            " WHERE run_id = ? AND list_contains(?, status) RETURNING attempts",
            [pid, process_started(pid), socket.gethostname(), float(prior_usd), float(prior_usd), stamp, stamp,
             run_id, list(RESUMABLE)]).fetchall()
    return int(row[0][0]) if row else None


def update_progress(run_id: str, stage: str, step: int, total: int, message: str = "",
                    db: Path | str | None = None) -> None:
    with write(db) as con:
        con.execute("UPDATE runs SET stage = ?, step = ?, total = ?, message = ?, updated_at = ? WHERE run_id = ?",
                    [stage, step, total, message, now(), run_id])
    pause_point(f"progress:{stage}")


PAUSE_ENV = "ALKD_TEST_PAUSE"
PAUSE_SECONDS = 120.0


def pause_point(point: str) -> None:
    """A place where tests kill a real process (tests/test_resume.py). Only when the environment holds
    ALKD_TEST_PAUSE=POINT=MARKER_FILE (POINT e.g. `progress:teacher`, `progress:distill`, `write_run`): the first time
    this process reaches POINT it writes its pid to MARKER_FILE and sleeps up to PAUSE_SECONDS, so the test can
    SIGKILL it exactly there. Unset (production) it does nothing; it never changes data either way."""
    spec = os.environ.get(PAUSE_ENV)
    if not spec:
        return
    name, _, marker = spec.partition("=")
    if name != point or not marker or point in _paused:
        return
    _paused.add(point)
    Path(marker).write_text(str(os.getpid()))
    time.sleep(PAUSE_SECONDS)


_paused: set[str] = set()


def finish_run(run_id: str, status: str, *, timings: dict[str, float] | None = None, message: str = "",
               db: Path | str | None = None) -> None:
    with write(db) as con:
        con.execute("UPDATE runs SET status = ?, timings = ?, message = ?, finished_at = ?, updated_at = ?,"
                    " stage = CASE WHEN ? = 'done' THEN 'done' ELSE stage END WHERE run_id = ?",
                    [status, json.dumps(timings or {}), message, now(), now(), status, run_id])


def save_metrics(run_id: str, split: str, metrics: dict[str, float], db: Path | str | None = None) -> None:
    """metrics: {'ndcg@10': 0.01, 'mrr@20': ...}; stored as (metric, k, value) rows."""
    rows = []
    for key, value in metrics.items():
        name, _, k = key.partition("@")
        rows.append({"run_id": run_id, "split": split, "metric": name, "k": int(k) if k else None,
                     "value": float(value)})
    with write(db) as con:
        con.execute("DELETE FROM metrics WHERE run_id = ? AND split = ?", [run_id, split])
        insert_frame(con, "metrics", pd.DataFrame(rows))


def save_session_results(run_id: str, split: str, session_ids, targets, ranks, db: Path | str | None = None) -> None:
    frame = pd.DataFrame({"run_id": run_id, "split": split, "session_id": session_ids, "target": targets,
                          "rank": ranks})
    with write(db) as con:
        con.execute("DELETE FROM session_results WHERE run_id = ? AND split = ?", [run_id, split])
        insert_frame(con, "session_results", frame)


CURVE_COLUMNS = ("step", "epoch", "train_loss", "valid_metric", "valid_value", "seconds")


def save_curve(run_id: str, curve: pd.DataFrame, db: Path | str | None = None) -> None:
    """curve columns: step, epoch, train_loss, valid_metric, valid_value, seconds (others, e.g. a round, are not
    stored)."""
    frame = curve[list(CURVE_COLUMNS)].assign(run_id=run_id)
    with write(db) as con:
        con.execute("DELETE FROM training_curves WHERE run_id = ?", [run_id])
        insert_frame(con, "training_curves", frame)


def run_metrics(run_ids: Sequence[str] | None = None, split: str = "test",
                db: Path | str | None = None) -> pd.DataFrame:
    """One row per run with columns like 'ndcg@10'."""
    sql = ("SELECT r.run_id, r.dataset, r.backbone, r.role, r.method, r.teacher, r.seed, m.metric || '@' || m.k AS key,"
           " m.value FROM metrics m JOIN runs r USING (run_id) WHERE m.split = ?")
    frame = query(sql, [split], db)
    if run_ids is not None:
        frame = frame[frame["run_id"].isin(list(run_ids))]
    if frame.empty:
        return frame
    wide = frame.pivot_table(index="run_id", columns="key", values="value").reset_index()
    info = frame.drop_duplicates("run_id")[["run_id", "dataset", "backbone", "role", "method", "teacher", "seed"]]
    wide.columns.name = None
    return info.merge(wide, on="run_id").reset_index(drop=True)


# ---- distillation runs (alkd run) ------------------------------------------------------------------------------

_RUN_FIELDS = {"budget", "usd_cap", "usd_spent", "n_labelled", "groups", "config", "message"}


def set_run_fields(run_id: str, db: Path | str | None = None, **fields: Any) -> None:
    """Update some of runs.(budget, usd_cap, usd_spent, n_labelled, groups, config, message); config is JSON-dumped."""
    unknown = set(fields) - _RUN_FIELDS
    if unknown:
        raise ValueError(f"cannot set runs columns {sorted(unknown)}")
    if not fields:
        return
    values = [json.dumps(v, default=str) if k == "config" else v for k, v in fields.items()]
    assignments = ", ".join(f"{k} = ?" for k in fields)
    with write(db) as con:
        con.execute(f"UPDATE runs SET {assignments}, updated_at = ? WHERE run_id = ?", [*values, now(), run_id])


SELECTION_COLUMNS = ("session_id", "consistency", "difficulty", "position", "gain", "probability", "picked",
                     "pick_order", "category", "call_key", "hit_position", "student_rank", "n_valid")


def save_selections(run_id: str, frame: pd.DataFrame, db: Path | str | None = None) -> None:
    """One row per pool session of a run's selection (columns SELECTION_COLUMNS; missing ones stored as NULL)."""
    out = pd.DataFrame({c: frame[c] if c in frame else None for c in SELECTION_COLUMNS})
    out.insert(0, "run_id", run_id)
    for column in ("position", "pick_order", "hit_position", "student_rank", "n_valid", "session_id"):
        out[column] = pd.array(out[column], dtype="Int64")
    out["category"] = out["category"].astype(object)
    out["call_key"] = out["call_key"].astype(object)
    with write(db) as con:
        con.execute("DELETE FROM selections WHERE run_id = ?", [run_id])
        insert_frame(con, "selections", out)


def save_run_candidates(run_id: str, candidates: dict[int, Sequence[int]], db: Path | str | None = None) -> None:
    """session id -> the candidate ids sent to the LLM teacher."""
    frame = pd.DataFrame({"run_id": run_id, "session_id": list(candidates),
                          "candidates": [list(map(int, c)) for c in candidates.values()]})
    with write(db) as con:
        con.execute("DELETE FROM run_candidates WHERE run_id = ?", [run_id])
        insert_frame(con, "run_candidates", frame)


# ---- moving runs between stores (e.g. a reproduction accumulated over several machines) ------------------------

RUN_TABLES = ("runs", "metrics", "session_results", "training_curves", "selections", "run_candidates", "run_calls")


def export_runs(run_ids: Sequence[str], directory: Path | str, db: Path | str | None = None) -> dict[str, int]:
    """Write every row of the given runs, table by table, as `directory/TABLE.parquet`; returns rows per table."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    counts = {}
    for table in RUN_TABLES:
        frame = query(f"SELECT * FROM {table} WHERE list_contains(?, run_id)", [list(run_ids)], db)
        frame.to_parquet(target / f"{table}.parquet", index=False)
        counts[table] = len(frame)
    # every LLM call of the runs (shared cache rows, no run_id): each round's (run_calls) and, for runs stored before
    # run_calls existed, those their labelled sessions point to; a replay run makes none (its answers are the
    # recorded files)
    calls = query("SELECT * FROM llm_calls WHERE call_key IN (SELECT call_key FROM selections"
                  " WHERE list_contains(?, run_id) AND coalesce(call_key, '') <> ''"
                  " UNION SELECT call_key FROM run_calls WHERE list_contains(?, run_id))",
                  [list(run_ids), list(run_ids)], db)
    calls.to_parquet(target / "llm_calls.parquet", index=False)
    counts["llm_calls"] = len(calls)
    return counts


def delete_runs(run_ids: Sequence[str], db: Path | str | None = None) -> int:
    """Remove every row of the given runs (LLM calls stay: they are the shared cache). Returns runs removed."""
    ids = list(run_ids)
    if not ids:
        return 0
    present = query("SELECT count(*) AS n FROM runs WHERE list_contains(?, run_id)", [ids], db)["n"][0]
    with write(db) as con:
        for table in RUN_TABLES:
            con.execute(f"DELETE FROM {table} WHERE list_contains(?, run_id)", [ids])
    return int(present)


def import_runs(directory: Path | str, db: Path | str | None = None) -> int:
    """Load runs written by `export_runs`; runs already in the store are left as they are. Returns runs added."""
    source = Path(directory)
    runs = pd.read_parquet(source / "runs.parquet")
    for run_id in runs["run_id"]:   # a run id names files (data/models/RUN_ID.pt): only plain names come in
        check_name(run_id, what="run id", field=f"{source / 'runs.parquet'}: run_id",
                   fix="import only what `alkd runs export` wrote: its run ids are plain names")
    calls = _export_calls(source / "llm_calls.parquet", db)
    present = set(query("SELECT run_id FROM runs", path=db)["run_id"])
    new = set(runs["run_id"]) - present
    with write(db) as con:
        for table in RUN_TABLES:
            path = source / f"{table}.parquet"
            if path.exists():
                frame = pd.read_parquet(path)
                insert_frame(con, table, frame[frame["run_id"].isin(new)])
        if not calls.empty:   # the shared cache: a call already stored here is kept as it is
            known = set(con.execute("SELECT call_key FROM llm_calls").df()["call_key"])
            insert_frame(con, "llm_calls", calls[~calls["call_key"].isin(known)])
    return len(new)


def _export_calls(path: Path, db: Path | str | None) -> pd.DataFrame:
    """The llm_calls rows of an export folder (empty if it has none, e.g. an export older than this file); a file
    that is not readable Parquet of llm_calls columns is a DataError naming it, before anything is imported."""
    from core.data.errors import DataError
    if not path.exists():
        return pd.DataFrame()
    fix = "pass a folder written by `alkd runs export`, or export it again"
    try:
        calls = pd.read_parquet(path)
    except Exception as error:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise DataError(f"not a readable Parquet file ({error})", file=path, fix=fix) from None
    columns = set(query("SELECT * FROM llm_calls LIMIT 0", path=db).columns)
    unknown = [name for name in calls.columns if name not in columns]
    if "call_key" not in calls.columns or unknown:
        raise DataError("not llm_calls rows: " + (f"unknown columns {', '.join(unknown)}" if unknown
                                                  else "no call_key column"), file=path, fix=fix)
    return calls.drop_duplicates("call_key")
