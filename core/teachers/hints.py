"""Hint blocks for the recommendation prompt: the paper's published defaults and versioned hints in DuckDB.

The paper pasted four LLM-summarised hints per dataset into every recommendation prompt (spec 3.2). Hints made by
`core.teachers.prompts.summarize_hints` are stored in the `hints` table (dataset, version, text, provider, model,
created_at); each save is a new version, the latest is used unless a version is named. `run_hints` is what an
`alkd run` sends (and `alkd hints --show` prints): the dataset's newest stored version made by an LLM (the simulated
teacher's placeholders are stored but never sent), else the paper's defaults for its domain; the run records which
in its config (extra.hints).
"""

from __future__ import annotations

import re
from pathlib import Path

from core import store
from core.data.domain import domain_of
from core.teachers.types import Hints

PAPER_HINTS: dict[str, tuple[str, ...]] = {
    "movies": (
        "Sequel and franchise continuity: the system suggests sequels or other films of the same franchise after "
        "an earlier instalment.",
        "Genre affinity: it recommends films of the same or similar genres.",
        "Casting and crew commonality: recommendations share directors, actors, era or release year, or production "
        "companies with films the user liked.",
        "Disregard diversity in genres or series: even if the user already owns the film, they may still want it "
        "again, e.g. a special version.",
    ),
    "games": (
        "Platform and accessory compatibility: the system weighs the user's current gaming platform heavily and "
        "recommends games and accessories compatible with it.",
        "Series and genre loyalty: titles from series the user already played, and games of the same or similar "
        "genres.",
        "Special editions and bundles: special or collector's editions and bundled offers.",
        "Disregard diversity in game genres or series: even if the user already owns the game, they may still want "
        "it again, e.g. a special version.",
    ),
}


def paper_hints(domain_or_dataset: str) -> Hints:
    """The paper's published hints: games hints for game datasets, movie hints otherwise."""
    domain = domain_or_dataset if domain_or_dataset in PAPER_HINTS else domain_of(domain_or_dataset)
    return Hints(dataset=domain_or_dataset, lines=PAPER_HINTS[domain], source="paper", provider="paper",
                 model="gpt-4-turbo-2024-04-09")


_NUMBERED = re.compile(r"^\s*(?:[-*\u2022]|\(?\d+[.):]|#+)\s*")


def split_hint_lines(text: str) -> tuple[str, ...]:
    """Turn an LLM's numbered/bulleted hint list into clean lines (numbering, bullets and blank lines removed)."""
    lines = []
    for line in text.replace("\r", "").split("\n"):
        clean = _NUMBERED.sub("", line).strip().strip("*").strip()
        if clean:
            lines.append(clean)
    return tuple(lines)


def save_hints(hints: Hints, db: Path | str | None = None) -> Hints:
    """Store hints as the next version for `hints.dataset`; returns them with `version` set."""
    with store.write(db) as con:
        current = con.execute("SELECT coalesce(max(version), 0) FROM hints WHERE dataset = ?",
                              [hints.dataset]).fetchone()[0]
        version = int(current) + 1
        con.execute("INSERT INTO hints (dataset, version, text, provider, model, created_at, source, simulated)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [hints.dataset, version, hints.text, hints.provider, hints.model, store.now(), hints.source,
                     hints.simulated])
    return Hints(dataset=hints.dataset, lines=hints.lines, source=hints.source, version=version,
                 provider=hints.provider, model=hints.model, simulated=hints.simulated)


def load_hints(dataset: str, version: int | None = None, db: Path | str | None = None,
               real_only: bool = False) -> Hints | None:
    """Stored hints for `dataset` (the latest version unless `version` is given), or None. real_only: skip the
    simulated teacher's placeholder hints."""
    sql = "SELECT * FROM hints WHERE dataset = ?" + (" AND version = ?" if version is not None else "")
    sql += " AND NOT coalesce(simulated, false)" if real_only else ""
    frame = store.query(sql + " ORDER BY version DESC LIMIT 1",
                        [dataset] + ([version] if version is not None else []), db)
    if frame.empty:
        return None
    row = frame.iloc[0]
    return Hints(dataset=dataset, lines=split_hint_lines(str(row["text"])), source=str(row["source"] or "custom"),
                 version=int(row["version"]), provider=str(row["provider"] or ""), model=str(row["model"] or ""),
                 simulated=bool(row["simulated"]))


def hints_for(dataset: str, db: Path | str | None = None, version: int | None = None) -> Hints:
    """The stored `version` asked for (KeyError when absent), else the hints a run uses now (`run_hints`)."""
    if version is None:
        return run_hints(dataset, db=db)
    stored = load_hints(dataset, version, db)
    if stored is None:
        raise KeyError(f"no hints version {version} stored for dataset {dataset!r}")
    return stored


def run_hints(dataset: str, domain: str | None = None, db: Path | str | None = None) -> Hints:
    """The hints an `alkd run` on `dataset` uses now: its newest stored version written by an LLM (`alkd hints`; the
    simulated teacher's placeholder hints are never sent), else the paper's hints for `domain` (default: from the
    dataset's name). version 0 = the paper's defaults."""
    stored = load_hints(dataset, db=db, real_only=True)
    return stored if stored is not None else paper_hints(domain or domain_of(dataset))


def hints_record(hints: Hints) -> dict[str, object]:
    """What a run stores about the hints it used (its config's extra.hints)."""
    return {"source": hints.source, "version": hints.version, "provider": hints.provider, "model": hints.model,
            "simulated": hints.simulated}
