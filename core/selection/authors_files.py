"""The ALKDRec authors' recorded selections (`{ML,Games}_{strategy}.base`), for `--mode authors-code` replays.

Each `.base` file lists, one per line in pick order, the training session ids a strategy of the authors picked over
several runs; their distillation read only the first 500 lines (750 for Games-FPMC), spec alkdrec.md §2.2. With the
replay teacher, authors-code mode takes those picks instead of drawing its own, so the paper's rows can be compared
on the very sessions the authors used.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from core.data.errors import DataError
from core.selection.strategies import Selection

BASE_FILES = {"alkdrec": "ALKERec", "random": "random", "easiest": "easiest", "hardest": "hardest",
              "rad-bc": "RAD-BC"}


def recorded_picks(source_dir: Path, prefix: str, strategy: str, tau: int) -> np.ndarray:
    """(tau,) int64 the first tau session ids of `{prefix}/{prefix}_{BASE_FILES[strategy]}.base`."""
    if strategy not in BASE_FILES:
        raise ValueError(f"the authors recorded no selection for {strategy!r}; recorded: {', '.join(BASE_FILES)}")
    path = Path(source_dir) / prefix / f"{prefix}_{BASE_FILES[strategy]}.base"
    if not path.exists():
        raise DataError("file is missing", file=path, fix="fetch the alkdrec dataset from the authors' files again")
    ids = [int(line) for line in path.read_text().split() if line.strip()]
    if len(ids) < tau:
        raise DataError(f"holds {len(ids)} picks, fewer than the budget {tau}", file=path, fix="lower --budget")
    return np.asarray(ids[:tau], dtype=np.int64)


def with_recorded_picks(selection: Selection, picked_ids: np.ndarray) -> Selection:
    """The same pool frame (difficulty, gain, p*), with `picked` / `pick_order` replaced by the recorded picks."""
    frame = selection.frame.copy()
    order = {int(s): i for i, s in enumerate(picked_ids)}
    missing = set(order) - set(frame["session_id"].astype(int))
    if missing:
        raise ValueError(f"{len(missing)} recorded picks are not in the pool, e.g. session {min(missing)}")
    frame["pick_order"] = frame["session_id"].map(lambda s: order.get(int(s), -1)).astype(np.int64)
    frame["picked"] = frame["pick_order"] >= 0
    return replace(selection, frame=frame, tau=len(picked_ids), params={**selection.params, "picks": "authors' .base"})
