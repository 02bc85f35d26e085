"""Replay recorded rankings: the authors' GPT-4-turbo files or this project's JSONL exports. Zero cost.

`*_LLM_Database.data` (spec 2.1): tab-separated session id, a Python-literal list of 0-based item ids, hit position
(index of the label in that list, 25 = absent). Ids are mapped +1 to ours. A JSONL export (core.teachers.export) holds
our ids already. Sessions without a record are "unavailable"; `available(session_ids)` gives the mask so a replay run
selects only among recorded sessions. `raw_ranking` is the recorded list as is (duplicates, non-candidates and all),
so `response.hit_position(label)` reproduces the recorded hit position exactly; `ranking` is the cleaned list.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from core.teachers.budget import Budget
from core.teachers.prompts import effective_candidates
from core.teachers.providers import register
from core.teachers.providers.base import Provider
from core.teachers.types import Completion, Prompt, RankRequest, RankResponse, Turn

AUTHORS_MODEL = "gpt-4-turbo-2024-04-09"


@dataclass(frozen=True)
class ReplayRecord:
    """raw: the recorded list in our ids; hit_position: the recorded position (None if the source had none)."""

    session_id: int
    raw: tuple[int, ...]
    hit_position: int | None = None
    rationale: str = ""
    label: int | None = None


def read_authors_file(path: Path | str, id_offset: int = 1) -> dict[int, ReplayRecord]:
    """Parse an `*_LLM_Database.data` file; ids shifted by id_offset (authors' 0-based + 1 = ours)."""
    records: dict[int, ReplayRecord] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(f"{path}:{number}: expected 3 tab-separated fields, got {len(fields)}")
        items = ast.literal_eval(fields[1].strip())
        records[int(fields[0])] = ReplayRecord(int(fields[0]), tuple(int(i) + id_offset for i in items),
                                               int(fields[2]))
    return records


def read_jsonl(path: Path | str) -> tuple[dict[int, ReplayRecord], str | None]:
    """Parse one of our JSONL exports (last line per session wins); returns the records and the recorded model."""
    records: dict[int, ReplayRecord] = {}
    model = None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        raw = row.get("raw_ranking") or row.get("ranking") or []
        sid = int(row["session_id"])
        records[sid] = ReplayRecord(sid, tuple(int(i) for i in raw), row.get("hit_position"),
                                    row.get("rationale") or "", row.get("label"))
        model = model or row.get("model")
    return records, model


@register("replay", default_model="replay",
          description="recorded rankings: the authors' GPT-4-turbo files or this project's JSONL exports (free)")
class ReplayProvider(Provider):
    """paths: authors' `.data` files and/or our `.jsonl` exports (later files win per session).
    n_items: drop recorded ids outside 1..n_items from the cleaned ranking. restrict_to_candidates: also drop ids
    outside the request's candidate set (off by default: the authors' candidate sets were not published)."""

    name = "replay"
    records_calls = False
    instant = True

    def __init__(self, *paths: Path | str, model: str | None = None, n_items: int | None = None,
                 restrict_to_candidates: bool = False, db: Any = None, **_: Any) -> None:
        self.records: dict[int, ReplayRecord] = {}
        recorded_model = None
        for path in paths:
            if str(path).endswith(".jsonl"):
                records, recorded_model = read_jsonl(path)
            else:
                records, recorded_model = read_authors_file(path), AUTHORS_MODEL
            self.records.update(records)
        super().__init__(model or f"replay:{recorded_model or 'unknown'}", price=(0.0, 0.0), db=db)
        self.n_items = n_items
        self.restrict_to_candidates = restrict_to_candidates

    @classmethod
    def from_alkdrec(cls, data_dir: Path | str, dataset: str = "ML", **options: Any) -> "ReplayProvider":
        """The authors' recorded GPT-4-turbo rankings of dataset "ML" or "Games" in an ALKDRec data folder, read only
        after the file matched its pinned SHA-256 (core.data.sources.alkdrec): an edited or missing record file is
        a DataError naming the file and the fix, never used silently."""
        from core.data.sources.alkdrec import verified_file
        return cls(verified_file(Path(data_dir), f"{dataset}/{dataset}_LLM_Database.data"), **options)

    def available(self, session_ids: Iterable[int]) -> np.ndarray:
        """Boolean mask: True where a session has a recorded ranking."""
        return np.array([int(s) in self.records for s in session_ids], dtype=bool)

    def generate(self, prompt: Prompt, turns: Sequence[Turn], request: RankRequest | None,
                 max_tokens: int) -> Completion:
        raise NotImplementedError("replay answers only recorded sessions through rank(); it cannot summarise")

    def _clean(self, record: ReplayRecord, request: RankRequest) -> tuple[tuple[int, ...], int]:
        session = {int(i) for i in request.session_items}
        allowed = set(effective_candidates(request)[0]) if self.restrict_to_candidates and request.candidates \
            else None
        clean: list[int] = []
        for item in record.raw:
            if item in clean or item in session or item < 1 or (self.n_items is not None and item > self.n_items):
                continue
            if allowed is not None and item not in allowed:
                continue
            clean.append(item)
        return tuple(clean[:request.options.n_out]), len(clean)

    def rank(self, requests: Sequence[RankRequest], *, budget: Budget | None = None, db: Any = None,
             concurrency: int | None = None, use_cache: bool = True, batch: bool = False,
             poll_interval_s: float = 30.0, max_wait_s: float = 0.0,
             on_response: Callable[[RankResponse], None] | None = None) -> list[RankResponse]:
        """Recorded rankings for the requests; unrecorded sessions come back status "unavailable" (no budget used)."""
        out = []
        for request in requests:
            record = self.records.get(int(request.session_id))
            base = dict(session_id=int(request.session_id), provider=self.name, model=self.model)
            if record is None:
                response = RankResponse(**base, status="unavailable", error="no recorded ranking for this session")
            elif budget is not None and not budget.take_session():
                response = RankResponse(**base, status="skipped", error="skipped: instance budget used up")
            else:
                ranking, n_valid = self._clean(record, request)
                response = RankResponse(**base, ranking=ranking, raw_ranking=record.raw, rationale=record.rationale,
                                        n_valid=n_valid, status="ok" if ranking else "failed",
                                        error=None if ranking else "recorded reply had no usable ranking",
                                        attempts=1)
            out.append(response)
            if on_response:
                on_response(response)
        return out
