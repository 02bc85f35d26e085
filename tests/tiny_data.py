"""Tiny datasets built in code, shared by tests in every folder (`from tiny_data import ...`; pytest puts tests/ on
the path via `pythonpath` in pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.data.dataset import SessionDataset, from_raw


def make_dataset(n_sessions: int = 60, n_items: int = 12, seed: int = 0, max_len: int = 5) -> SessionDataset:
    """Sessions that walk item ids upward (i -> i+1 mod n_items) from a random start: learnable transitions."""
    rng = np.random.default_rng(seed)
    sequences = []
    for _ in range(n_sessions):
        start, length = int(rng.integers(0, n_items)), int(rng.integers(3, 7))
        sequences.append([f"i{(start + step) % n_items}" for step in range(length)])
    split = np.array(["train"] * n_sessions, dtype=object)
    split[int(0.6 * n_sessions):int(0.8 * n_sessions)] = "valid"
    split[int(0.8 * n_sessions):] = "test"
    sessions = pd.DataFrame({"session_id": range(n_sessions), "items": [s[:-1] for s in sequences],
                             "label": [s[-1] for s in sequences], "split": split})
    items = pd.DataFrame({"raw_id": [f"i{i}" for i in range(n_items)], "title": [f"Item {i}" for i in range(n_items)]})
    return from_raw("tiny", "test", items, sessions, file="<in-code>", meta={"max_len": max_len})


def write_sessions_csv(folder: Path, n_sessions: int = 40, n_items: int = 10, seed: int = 0,
                       lengths: tuple[int, int] = (3, 6), titles: bool = False) -> Path:
    """A `session_id,item_id,timestamp` CSV (plus `items.csv` with titles if asked) in `folder` whose sessions walk
    item ids upward from a random start, `lengths` = [low, high) items each; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = ["session_id,item_id,timestamp"]
    for session in range(n_sessions):
        start, length = int(rng.integers(0, n_items)), int(rng.integers(*lengths))
        lines += [f"s{session},item{(start + step) % n_items},{1_700_000_000 + session * 100 + step}"
                  for step in range(length)]
    (folder / "interactions.csv").write_text("\n".join(lines) + "\n")
    if titles:
        (folder / "items.csv").write_text("item_id,title\n" + "".join(f"item{i},Item {i}\n" for i in range(n_items)))
    return folder
