"""The `llm_calls` table as a cache and ledger: every call is stored as soon as it completes, keyed by call_key.

call_key = sha256 of (provider, model, prompt, options). A row whose status is "ok" or "failed" (a reply came back but
held no usable ranking, after the repair retry) is reused by later runs, so the same prompt is never paid twice;
"error" rows (transport/API failures, nothing to reuse) are retried and overwritten. Writes use the store's
short-lived connections (retried on file locks), from the thread that got the reply.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from core import store
from core.teachers.keys import scrub

log = logging.getLogger(__name__)

REUSABLE = ("ok", "failed")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def call_key(provider: str, model: str, prompt_text: str, options: Mapping[str, Any]) -> str:
    """The cache key of one call: hash of provider + model + prompt + call options (JSON, sorted keys)."""
    payload = json.dumps({"provider": provider, "model": model, "prompt": prompt_text, "options": options},
                         sort_keys=True, default=str, ensure_ascii=False)
    return sha256(payload)


@dataclass(frozen=True)
class CallRecord:
    """One row of llm_calls. usd in USD, latency_s in seconds; ranking cleaned, raw_ranking as returned."""

    call_key: str
    provider: str
    model: str
    prompt_hash: str
    prompt: str
    raw_reply: str
    ranking: Sequence[int]
    rationale: str
    n_valid: int
    input_tokens: int
    output_tokens: int
    usd: float
    latency_s: float
    error: str | None
    simulated: bool
    session_id: int | None = None
    dataset: str = ""
    label: int | None = None
    raw_ranking: Sequence[int] = ()
    status: str = "ok"
    attempts: int = 1
    mode: str = "sync"
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


_COLUMNS = ("call_key", "provider", "model", "prompt_hash", "prompt", "raw_reply", "ranking", "rationale", "n_valid",
            "input_tokens", "output_tokens", "usd", "latency_s", "error", "simulated", "session_id", "dataset",
            "label", "raw_ranking", "status", "attempts", "mode", "cache_read_tokens", "cache_write_tokens")


def _values(rec: CallRecord) -> list[Any]:
    values = [getattr(rec, c) for c in _COLUMNS]
    values[_COLUMNS.index("raw_reply")] = scrub(rec.raw_reply)
    values[_COLUMNS.index("prompt")] = scrub(rec.prompt, patterns=False)  # data: remove only known keys
    values[_COLUMNS.index("error")] = None if rec.error is None else scrub(rec.error)
    values[_COLUMNS.index("rationale")] = scrub(rec.rationale)
    values[_COLUMNS.index("ranking")] = [int(i) for i in rec.ranking]
    values[_COLUMNS.index("raw_ranking")] = [int(i) for i in rec.raw_ranking]
    return values + [store.now()]


def _arrow(rows: list[list[Any]]) -> Any:
    import pyarrow as pa

    lists = {"ranking", "raw_ranking"}
    ints = {"n_valid", "input_tokens", "output_tokens", "session_id", "label", "attempts", "cache_read_tokens",
            "cache_write_tokens"}
    floats = {"usd", "latency_s"}
    fields = []
    for name in (*_COLUMNS, "created_at"):
        kind = (pa.list_(pa.int64()) if name in lists else pa.int64() if name in ints else pa.float64()
                if name in floats else pa.bool_() if name == "simulated" else pa.timestamp("us", tz="UTC")
                if name == "created_at" else pa.string())
        fields.append(pa.field(name, kind))
    columns = list(zip(*rows))
    return pa.table([pa.array(list(col), type=f.type) for col, f in zip(columns, fields)],
                    schema=pa.schema(fields))


_INSERT = (f"INSERT OR REPLACE INTO llm_calls ({', '.join(_COLUMNS)}, created_at) "
           f"VALUES ({', '.join('?' for _ in _COLUMNS)}, ?)")


def record(rec: CallRecord, db: Path | str | None = None) -> bool:
    """Insert or replace one call row; False (and a warning) if the store could not be written."""
    return record_many([rec], db)


def record_many(records: Sequence[CallRecord], db: Path | str | None = None) -> bool:
    """Insert or replace call rows in one transaction; False (and a warning) if the store could not be written."""
    if not records:
        return True
    try:
        rows = [_values(rec) for rec in records]
        with store.write(db) as con:
            if len(rows) == 1:
                con.execute(_INSERT, rows[0])
            else:  # one columnar insert: executemany costs ~8 ms a row
                con.register("_llm_rows", _arrow(rows))
                columns = ", ".join((*_COLUMNS, "created_at"))
                con.execute(f"INSERT OR REPLACE INTO llm_calls ({columns}) SELECT {columns} FROM _llm_rows")
                con.unregister("_llm_rows")
        return True
    except Exception as error:  # never fail a run on the ledger; the reply is still returned
        log.warning("could not record %d LLM call(s): %s", len(records), scrub(error))
        return False


def lookup(keys: Iterable[str], db: Path | str | None = None, reusable_only: bool = True) -> dict[str, dict[str, Any]]:
    """Rows of llm_calls by call_key, as dicts (one query for all keys)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    with store.write(db) as con:
        cursor = con.execute(f"SELECT {', '.join(_COLUMNS)} FROM llm_calls WHERE call_key IN "
                             "(SELECT unnest(?::VARCHAR[]))", [wanted])
        rows = cursor.fetchall()
    out = {}
    for row in rows:
        data = dict(zip(_COLUMNS, row))
        if reusable_only and data["status"] not in REUSABLE:
            continue
        out[data["call_key"]] = data
    return out


def calls(db: Path | str | None = None, provider: str | None = None, model: str | None = None,
          dataset: str | None = None) -> "Any":
    """The ledger as a DataFrame (newest last), optionally filtered."""
    where, params = [], []
    for column, value in (("provider", provider), ("model", model), ("dataset", dataset)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = "SELECT * FROM llm_calls" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY created_at"
    return store.query(sql, params, db)
