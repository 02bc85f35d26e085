"""Tolerant parsing of a teacher's reply into a ranking.

Accepted shapes, in order of preference: a JSON object {"ranking": [...], "rationale": "..."} (also inside ```json
fences, or with prose around it), a JSON list, then the paper's `<ID_12>` / `ID_12` tokens, then bare integers.
Each id may be an int, "12", "ID_12" or "<ID_12>". Only ids from the candidate set are kept, duplicates dropped,
order kept, cut to n_out. A reply with no usable id is "no usable ranking" (the caller retries once, then fails).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Collection

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_ID_TOKEN = re.compile(r"ID_(\d+)")
_BARE_INT = re.compile(r"(?<![\w.])(\d+)(?![\w.])")
_ID_IN_STRING = re.compile(r"^\s*<?\s*(?:ID_)?(\d+)\s*>?\s*$")
_ANY_ID = re.compile(r"(?<![\w.])(?:ID_)?(\d+)(?![\w.])")
_RANKING_KEYS = ("ranking", "recommendations", "ids", "items", "rank")


@dataclass(frozen=True)
class ParsedReply:
    """ranking: cleaned ids (<= n_out). raw_ids: every id found, as returned. n_valid: distinct candidate ids found.
    fmt: which shape matched ("json", "json_broken", "id_tokens", "ints" or "none")."""

    ranking: tuple[int, ...]
    raw_ids: tuple[int, ...]
    rationale: str
    n_valid: int
    fmt: str

    @property
    def usable(self) -> bool:
        return bool(self.ranking)


def _to_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        match = _ID_IN_STRING.match(value)
        return int(match.group(1)) if match else None
    if isinstance(value, dict):
        for key in ("id", "item_id", "item"):
            if key in value:
                return _to_id(value[key])
    return None


def _json_candidates(text: str) -> list[str]:
    """Substrings that may be the JSON answer: fenced blocks, the whole text, the outermost {...} and [...]."""
    found = [m.group(1) for m in _FENCE.finditer(text)]
    found.append(text)
    for open_, close in (("{", "}"), ("[", "]")):
        start, end = text.find(open_), text.rfind(close)
        if 0 <= start < end:
            found.append(text[start:end + 1])
    return found


def _from_json(text: str) -> tuple[list[int], str] | None:
    for chunk in _json_candidates(text):
        try:
            data = json.loads(chunk)
        except (ValueError, TypeError):
            continue
        if isinstance(data, dict):
            values = next((data[k] for k in _RANKING_KEYS if isinstance(data.get(k), list)), None)
            if values is None:
                continue
            rationale = data.get("rationale") or data.get("reason") or ""
            ids = [i for i in (_to_id(v) for v in values) if i is not None]
            return ids, rationale if isinstance(rationale, str) else json.dumps(rationale)
        if isinstance(data, list):
            return [i for i in (_to_id(v) for v in data) if i is not None], _rationale_guess(text)
    return None


def _rationale_guess(text: str) -> str:
    match = re.search(r'"rationale"\s*:\s*"((?:[^"\\]|\\.)*)', text)
    return match.group(1) if match else ""


def parse_reply(text: str | None, candidates: Collection[int] | None, n_out: int | None = 25) -> ParsedReply:
    """Parse a reply. candidates=None keeps every id (used where no candidate set is known)."""
    text = text or ""
    fmt = "json"
    parsed = _from_json(text)
    if parsed is not None:
        raw, rationale = parsed
    else:
        rationale = _rationale_guess(text)
        # Broken JSON (truncated, unquoted <ID_n> tokens): inside the "ranking" list every integer is an id, so
        # numbers in a rationale are never taken; elsewhere the paper's ID_n tokens, then bare integers.
        raw, fmt = [], "none"
        if '"ranking"' in text:
            head = text[text.index('"ranking"'):]
            head = head[:head.index("]")] if "]" in head else head.split('"rationale"')[0]
            raw, fmt = [int(x) for x in _ANY_ID.findall(head)], "json_broken"
        if not raw:
            raw, fmt = [int(x) for x in _ID_TOKEN.findall(text)], "id_tokens"
        if not raw:
            raw, fmt = [int(x) for x in _BARE_INT.findall(text)], "ints"
    allowed = None if candidates is None else {int(c) for c in candidates}
    clean: list[int] = []
    seen: set[int] = set()
    for item in raw:
        if item in seen or (allowed is not None and item not in allowed):
            continue
        seen.add(item)
        clean.append(item)
    ranking = tuple(clean[:n_out] if n_out is not None else clean)
    return ParsedReply(ranking=ranking, raw_ids=tuple(raw), rationale=rationale.strip(), n_valid=len(clean),
                       fmt=fmt if raw else "none")
