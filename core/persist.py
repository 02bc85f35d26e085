"""A finished run's rows: built as Arrow tables anywhere (a sweep's worker), written in one transaction (the driver).

    tables = result_tables(run_id, result, save_model=True)   # pure: no DuckDB (writes data/models/RUN_ID.pt)
    write_run(run_id, tables)                                 # one transaction: every row of the run, then 'done'

`write_run` deletes whatever rows an earlier, killed attempt of the same run may have left in the result tables,
inserts every table through Arrow (no per-row Python) and sets the run's fields and status `done`, all in one DuckDB
transaction: a reader sees the run's rows complete or not at all, and a process killed while writing leaves the
store as it was (DuckDB rolls the open transaction back).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core import store

# The columns of the result tables, in the store's schema (core/store.py MIGRATIONS), as Arrow types.
SCHEMAS: dict[str, pa.Schema] = {
    "metrics": pa.schema([("run_id", pa.string()), ("split", pa.string()), ("metric", pa.string()),
                          ("k", pa.int64()), ("value", pa.float64())]),
    "session_results": pa.schema([("run_id", pa.string()), ("split", pa.string()), ("session_id", pa.int64()),
                                  ("target", pa.int64()), ("rank", pa.int64())]),
    "training_curves": pa.schema([("run_id", pa.string()), ("step", pa.int64()), ("epoch", pa.int64()),
                                  ("train_loss", pa.float64()), ("valid_metric", pa.string()),
                                  ("valid_value", pa.float64()), ("seconds", pa.float64())]),
    "selections": pa.schema([("run_id", pa.string()), ("session_id", pa.int64()), ("consistency", pa.float64()),
                             ("difficulty", pa.float64()), ("position", pa.int64()), ("gain", pa.float64()),
                             ("probability", pa.float64()), ("picked", pa.bool_()), ("pick_order", pa.int64()),
                             ("category", pa.string()), ("call_key", pa.string()), ("hit_position", pa.int64()),
                             ("student_rank", pa.int64()), ("n_valid", pa.int64())]),
    "run_candidates": pa.schema([("run_id", pa.string()), ("session_id", pa.int64()),
                                 ("candidates", pa.list_(pa.int64()))]),
    "run_calls": pa.schema([("run_id", pa.string()), ("call_key", pa.string())]),
}
RESULT_TABLES = tuple(SCHEMAS)


@dataclass
class RunTables:
    """Every row a finished run adds to the store, picklable (a Ray task or a process pool returns it).

    tables: table name (RESULT_TABLES) -> pyarrow.Table with SCHEMAS' columns, every row's run_id the run's.
    usd_spent: USD its LLM calls cost; n_labelled: sessions with a usable ranking; config_json: runs.config (the
    RunConfig fields plus "extra"); timings: stage -> seconds."""

    run_id: str
    tables: dict[str, pa.Table]
    usd_spent: float = 0.0
    n_labelled: int = 0
    config_json: str = "{}"
    timings: dict[str, float] = field(default_factory=dict)

    def rows(self) -> dict[str, int]:
        """Rows per table."""
        return {name: table.num_rows for name, table in self.tables.items()}


def _table(name: str, columns: Mapping[str, Any]) -> pa.Table:
    """An Arrow table of SCHEMAS[name] from column arrays (numpy, lists or pandas; pandas NA reads as null)."""
    schema = SCHEMAS[name]
    arrays = []
    for column in schema:
        values = columns[column.name]
        if isinstance(values, pd.Series):
            values = values.astype(object).where(values.notna(), None).tolist()
        arrays.append(pa.array(values, type=column.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=schema)


def _metric_columns(run_id: str, split: str, metrics: Mapping[str, float]) -> dict[str, list[Any]]:
    """{'ndcg@10': 0.1, 'mrr@20': ...} -> (metric, k, value) columns."""
    names, ks, values = [], [], []
    for key, value in metrics.items():
        name, _, k = key.partition("@")
        names.append(name)
        ks.append(int(k) if k else None)
        values.append(float(value))
    return {"run_id": [run_id] * len(names), "split": [split] * len(names), "metric": names, "k": ks,
            "value": values}


def metrics_table(run_id: str, splits: Mapping[str, Mapping[str, float] | None]) -> pa.Table:
    """split -> {metric@k: value} (a None split is left out) as metrics rows."""
    parts = [_metric_columns(run_id, split, metrics) for split, metrics in splits.items() if metrics is not None]
    merged = {c: [v for part in parts for v in part[c]] for c in SCHEMAS["metrics"].names}
    return _table("metrics", merged)


def session_results_table(run_id: str, split: str, session_ids: Sequence[int], targets: Sequence[int],
                          ranks: Sequence[int]) -> pa.Table:
    n = len(session_ids)
    return _table("session_results", {"run_id": pa.array([run_id] * n, pa.string()),
                                      "split": pa.array([split] * n, pa.string()),
                                      "session_id": np.asarray(session_ids, dtype=np.int64),
                                      "target": np.asarray(targets, dtype=np.int64),
                                      "rank": np.asarray(ranks, dtype=np.int64)})


def curve_table(run_id: str, curve: pd.DataFrame | None) -> pa.Table:
    """The training curve (store.CURVE_COLUMNS; other columns, e.g. a round, are not stored)."""
    frame = curve if curve is not None else pd.DataFrame(columns=list(store.CURVE_COLUMNS))
    columns: dict[str, Any] = {c: frame[c] for c in store.CURVE_COLUMNS}
    columns["run_id"] = [run_id] * len(frame)
    return _table("training_curves", columns)


def selections_table(run_id: str, frame: pd.DataFrame | None) -> pa.Table:
    """One row per pool session of a run's selection (store.SELECTION_COLUMNS; missing ones null)."""
    frame = frame if frame is not None else pd.DataFrame(columns=list(store.SELECTION_COLUMNS))
    n = len(frame)
    columns: dict[str, Any] = {c: frame[c] if c in frame else [None] * n for c in store.SELECTION_COLUMNS}
    columns["run_id"] = [run_id] * n
    return _table("selections", columns)


def candidates_table(run_id: str, candidates: Mapping[int, Sequence[int]] | None) -> pa.Table:
    """session id -> the candidate ids sent to the LLM teacher."""
    candidates = candidates or {}
    return _table("run_candidates", {"run_id": [run_id] * len(candidates),
                                     "session_id": [int(s) for s in candidates],
                                     "candidates": [[int(c) for c in ids] for ids in candidates.values()]})


def calls_table(run_id: str, responses: Sequence[Any] | None) -> pa.Table:
    """The stored calls a run's teacher answered from, every round's, once each (responses: RankResponses; a replay
    or skipped response has no call key)."""
    keys = list(dict.fromkeys(str(r.call_key) for r in responses or () if getattr(r, "call_key", None)))
    return _table("run_calls", {"run_id": [run_id] * len(keys), "call_key": keys})


def result_tables(run_id: str, result: Any, save_model: bool) -> RunTables:
    """The rows of a finished run, touching no DuckDB. result: a core.pipeline.RunResult (or anything with its
    config/test/valid/curve/timings and, optionally, selection/candidates/usd_spent/n_labelled/extra/model).
    save_model: write result.model to data/models/RUN_ID.pt first (atomically: a temp file renamed), its path then
    in config["extra"]["model_path"]."""
    from core import model_files

    extra = dict(getattr(result, "extra", None) or {})
    config = result.config
    model = getattr(result, "model", None)
    if save_model and model is not None:
        path = model_files.save_model(model, model_files.model_path(run_id), {
            "run_id": run_id, "dataset": config.dataset, "method": config.method, "seed": config.seed,
            "teacher": config.teacher, "test": {k: float(v) for k, v in result.test.metrics.items()}})
        extra["model_path"] = str(path)
    fields = config.model_dump() if hasattr(config, "model_dump") else dict(config)
    test = result.test
    tables = {
        "metrics": metrics_table(run_id, {"test": test.metrics,
                                          "valid": result.valid.metrics if result.valid is not None else None}),
        "session_results": session_results_table(run_id, "test", test.session_ids, test.targets, test.ranks),
        "training_curves": curve_table(run_id, result.curve),
        "selections": selections_table(run_id, getattr(result, "selection", None)),
        "run_candidates": candidates_table(run_id, getattr(result, "candidates", None)),
        "run_calls": calls_table(run_id, getattr(result, "responses", None)),
    }
    return RunTables(run_id=run_id, tables=tables, usd_spent=float(getattr(result, "usd_spent", 0.0) or 0.0),
                     n_labelled=int(getattr(result, "n_labelled", 0) or 0),
                     config_json=json.dumps(fields | {"extra": extra}, default=str),
                     timings={k: float(v) for k, v in (result.timings or {}).items()})


def _check(run_id: str, tables: RunTables) -> None:
    """Refuse tables of another run, of an unknown table or of columns other than the store's (before writing)."""
    if tables.run_id != run_id:
        raise ValueError(f"write_run({run_id!r}) was given the tables of run {tables.run_id!r}")
    for name, table in tables.tables.items():
        if name not in SCHEMAS:
            raise ValueError(f"write_run: {name!r} is not a result table ({', '.join(RESULT_TABLES)})")
        if "run_id" not in table.column_names:
            raise ValueError(f"write_run: table {name!r} has no run_id column")
        if table.num_rows and not pc.all(pc.equal(table["run_id"], run_id)).as_py():
            raise ValueError(f"write_run: table {name!r} holds rows of another run than {run_id!r}")


def write_run(run_id: str, tables: RunTables, db: Path | str | None = None) -> None:
    """In ONE transaction: delete run_id's rows from every result table (an earlier attempt's), insert `tables`
    (Arrow, by column name), set runs.(usd_spent, n_labelled, config, timings), status and stage 'done', message ''.
    Raises (and writes nothing) when the run row does not exist or a table does not fit the store."""
    _check(run_id, tables)
    stamp = store.now()
    with store.write(db) as con:
        for name in RESULT_TABLES:
            con.execute(f"DELETE FROM {name} WHERE run_id = ?", [run_id])
        for name, table in tables.tables.items():
            if table.num_rows == 0:
                continue
            view = f"_rows_{name}"
            con.register(view, table)   # on failure the transaction is rolled back and the connection closed
            columns = ", ".join(f'"{c}"' for c in table.column_names)
            con.execute(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM {view}")
            con.unregister(view)
        updated = con.execute(
            "UPDATE runs SET usd_spent = ?, n_labelled = ?, config = ?, timings = ?, status = 'done', stage = 'done',"
            " message = '', finished_at = ?, updated_at = ? WHERE run_id = ? RETURNING run_id",
            [float(tables.usd_spent), int(tables.n_labelled), tables.config_json, json.dumps(tables.timings), stamp,
             stamp, run_id]).fetchall()
        if not updated:
            raise KeyError(f"no run {run_id!r} in the store (create_run first)")
        store.pause_point("write_run")


__all__ = ["RESULT_TABLES", "SCHEMAS", "RunTables", "result_tables", "write_run"]
