"""The `llm_calls` table as a cache and ledger: every call is stored as soon as it completes, keyed by call_key.

call_key = sha256 of (provider, model, prompt, options); the options name the server by `endpoint_key` (host and
path, no scheme or port; any loopback address reads "localhost"), so the same server on another port is the same
cache. A row whose status is "ok" or "failed" (a reply came back but held no usable ranking, after the repair retry)
is reused by later runs, so the same prompt is never paid twice; "error" rows (transport/API failures, nothing to
reuse) are retried and overwritten.

Before each paid request the runner writes a "pending" row (this process's pid, the reserved worst case in
reserved_usd). A kill leaves it behind: a later run that finds a pending row of a dead process marks it
"interrupted" (interrupted_usd += what it may have been billed) and counts that against its cap; a pending row of a
live process is a call in flight elsewhere and is not made again. Writes use the store's short-lived connections
(retried on file locks), from the thread that got the reply.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import urlparse

from core import store
from core.teachers.keys import scrub
from core.teachers.pricing import is_local_url

log = logging.getLogger(__name__)

REUSABLE = ("ok", "failed")
PENDING, INTERRUPTED = "pending", "interrupted"


def endpoint_key(base_url: str | None, vendor: str) -> str:
    """The server part of a cache key: `vendor` for its own API (None or api.VENDOR.com), else host + path without
    scheme or port; every loopback address is "localhost"."""
    if not base_url:
        return vendor
    parsed = urlparse(base_url if "//" in base_url else f"//{base_url}")
    host = (parsed.hostname or "").lower()
    if host == f"api.{vendor}.com":
        return vendor
    if is_local_url(base_url):
        host = "localhost"
    return host + parsed.path.rstrip("/")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def call_key(provider: str, model: str, prompt_text: str, options: Mapping[str, Any]) -> str:
    """The cache key of one call: hash of provider + model + prompt + call options (JSON, sorted keys)."""
    payload = json.dumps({"provider": provider, "model": model, "prompt": prompt_text, "options": options},
                         sort_keys=True, default=str, ensure_ascii=False)
    return sha256(payload)


@dataclass(frozen=True)
class CallRecord:
    """One row of llm_calls. usd in USD (reported by the server, over all attempts), latency_s in seconds; ranking
    cleaned, raw_ranking as returned. pid: the process that wrote it; reserved_usd: the worst case reserved for the
    attempt in flight (pending rows); interrupted_usd: what attempts of killed processes may have been billed."""

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
    pid: int | None = None
    reserved_usd: float = 0.0
    interrupted_usd: float = 0.0


_COLUMNS = ("call_key", "provider", "model", "prompt_hash", "prompt", "raw_reply", "ranking", "rationale", "n_valid",
            "input_tokens", "output_tokens", "usd", "latency_s", "error", "simulated", "session_id", "dataset",
            "label", "raw_ranking", "status", "attempts", "mode", "cache_read_tokens", "cache_write_tokens", "pid",
            "reserved_usd", "interrupted_usd")


def _values(rec: CallRecord) -> list[Any]:
    values = [getattr(rec, c) for c in _COLUMNS]
    values[_COLUMNS.index("raw_reply")] = scrub(rec.raw_reply)
    values[_COLUMNS.index("prompt")] = scrub(rec.prompt, patterns=False)  # data: remove only known keys
    values[_COLUMNS.index("error")] = None if rec.error is None else scrub(rec.error)
    values[_COLUMNS.index("rationale")] = scrub(rec.rationale)
    values[_COLUMNS.index("ranking")] = [int(i) for i in rec.ranking]
    values[_COLUMNS.index("raw_ranking")] = [int(i) for i in rec.raw_ranking]
    values[_COLUMNS.index("pid")] = os.getpid() if rec.pid is None else int(rec.pid)
    return values + [store.now()]


def _arrow(rows: list[list[Any]]) -> Any:
    import pyarrow as pa

    lists = {"ranking", "raw_ranking"}
    ints = {"n_valid", "input_tokens", "output_tokens", "session_id", "label", "attempts", "cache_read_tokens",
            "cache_write_tokens", "pid"}
    floats = {"usd", "latency_s", "reserved_usd", "interrupted_usd"}
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
    """Insert or replace call rows in one transaction; False (and a warning) if the store could not be written.
    A row's pid defaults to this process."""
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


def withdraw_pending(rec: CallRecord, db: Path | str | None = None) -> None:
    """Undo this process's pending row of a request that was not sent after all: deleted, or kept as "interrupted"
    when it carries what earlier killed attempts may have cost (that history is never dropped)."""
    try:
        if rec.interrupted_usd > 0:
            record(CallRecord(**{**rec.__dict__, "status": INTERRUPTED, "reserved_usd": 0.0}), db)
            return
        with store.write(db) as con:
            con.execute("DELETE FROM llm_calls WHERE call_key = ? AND status = ? AND pid = ?",
                        [rec.call_key, PENDING, os.getpid()])
    except Exception as error:  # a pending row left behind only over-counts a possible charge later
        log.warning("could not withdraw a pending LLM call row: %s", scrub(error))


def mark_interrupted(keys: Iterable[str], db: Path | str | None = None) -> dict[str, float]:
    """Turn the pending rows of `keys` into "interrupted" ones: interrupted_usd += reserved_usd + usd (the attempt
    left in flight may have been billed; earlier attempts' cost was). Returns call_key -> the USD added."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    with store.write(db) as con:
        rows = con.execute("SELECT call_key, coalesce(reserved_usd, 0) + coalesce(usd, 0), pid FROM llm_calls "
                           "WHERE status = ? AND call_key IN (SELECT unnest(?::VARCHAR[]))",
                           [PENDING, wanted]).fetchall()
        for key, added, pid in rows:
            con.execute("UPDATE llm_calls SET status = ?, interrupted_usd = coalesce(interrupted_usd, 0) + ?, "
                        "error = ? WHERE call_key = ?",
                        [INTERRUPTED, added, f"process {pid} ended during this call: it may have been billed up to "
                                             f"${added:.6f}", key])
    return {key: float(added) for key, added, _ in rows}


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
