"""Export teacher rankings as JSONL (one session per line), readable by the replay provider.

Line fields: session_id, ranking (cleaned), raw_ranking (as returned), rationale, label, hit_position (0-based index
of the label in raw_ranking, 25 when absent; null when the label is unknown), n_valid, status, provider, model,
simulated, usd, input_tokens, output_tokens. Ids are the project's (1..n_items). No prompts, keys or headers.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from core.teachers import cache
from core.teachers.keys import scrub
from core.teachers.types import ABSENT_POSITION, RankResponse


def _hit(raw: list[int], label: int | None) -> int | None:
    if label is None:
        return None
    return raw.index(label) if label in raw else ABSENT_POSITION


def _num(value: Any) -> float:
    return 0.0 if value is None or pd.isna(value) else float(value)


def _write(path: Path | str, rows: Iterable[dict[str, Any]]) -> int:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".jsonl.tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    os.replace(tmp, target)
    return count


def export_responses(path: Path | str, responses: Iterable[RankResponse],
                     labels: Mapping[int, int] | None = None) -> int:
    """Write responses (skipped/unavailable/error ones left out); labels: session_id -> label for hit positions."""
    def rows() -> Iterable[dict[str, Any]]:
        for r in responses:
            if r.status not in ("ok", "failed"):
                continue
            label = None if labels is None else labels.get(r.session_id)
            yield {"session_id": r.session_id, "ranking": list(r.ranking), "raw_ranking": list(r.raw_ranking),
                   "rationale": scrub(r.rationale), "label": label, "hit_position": _hit(list(r.raw_ranking), label),
                   "n_valid": r.n_valid, "status": r.status, "provider": r.provider, "model": r.model,
                   "simulated": r.simulated, "usd": r.usd, "input_tokens": r.input_tokens,
                   "output_tokens": r.output_tokens}
    return _write(path, rows())


def export_calls(path: Path | str, *, db: Path | str | None = None, provider: str | None = None,
                 model: str | None = None, dataset: str | None = None) -> int:
    """Write the ledger's ranking calls (the latest per session) from DuckDB; returns the number of lines."""
    frame = cache.calls(db, provider=provider, model=model, dataset=dataset)
    if frame.empty:
        return _write(path, [])
    frame = frame[frame["session_id"].notna() & frame["status"].isin(["ok", "failed"])]
    frame = frame.drop_duplicates("session_id", keep="last")

    def rows() -> Iterable[dict[str, Any]]:
        for row in frame.itertuples(index=False):
            raw = [int(i) for i in (row.raw_ranking if row.raw_ranking is not None else [])]
            label = None if pd.isna(row.label) else int(row.label)
            yield {"session_id": int(row.session_id),
                   "ranking": [int(i) for i in (row.ranking if row.ranking is not None else [])],
                   "raw_ranking": raw, "rationale": scrub(row.rationale or ""), "label": label,
                   "hit_position": _hit(raw, label), "n_valid": int(_num(row.n_valid)), "status": row.status,
                   "provider": row.provider, "model": row.model, "simulated": bool(row.simulated),
                   "usd": _num(row.usd), "input_tokens": int(_num(row.input_tokens)),
                   "output_tokens": int(_num(row.output_tokens))}
    return _write(path, rows())
