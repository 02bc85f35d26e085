"""The canonical processed dataset every source ends as.

Item ids are internal integers 1..n_items; 0 is padding only (the authors' code let item 0 collide with padding,
see the spec: we shift by one). A session is its ordered input items plus the held-out next item (`label`, the
session's last item), and belongs to exactly one of the splits train/valid/test.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from core.data.errors import DataError

SPLITS = ("train", "valid", "test")
PAD = 0


@dataclass(frozen=True)
class SessionBatch:
    """One split as padded arrays, ready for models and evaluation.

    session_ids: (n,) int64; inputs: (n, max_len) int64, the last `max_len` input items in time order, right-padded
    with 0; lengths: (n,) int64 number of real items in `inputs` (>= 1); labels: (n,) int64 target item ids.
    """

    session_ids: np.ndarray
    inputs: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.session_ids)

    def subset(self, index: np.ndarray) -> "SessionBatch":
        return SessionBatch(self.session_ids[index], self.inputs[index], self.lengths[index], self.labels[index])


@dataclass(frozen=True)
class DatasetStats:
    n_sessions: int
    n_items: int
    n_interactions: int
    n_train: int
    n_valid: int
    n_test: int
    mean_length: float
    max_length: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class SessionDataset:
    """items: item_id (1..n), raw_id, title, genres, year.  sessions: session_id, items (list of ids), label, split."""

    name: str
    source: str
    items: pd.DataFrame
    sessions: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        """Number of real items; valid ids are 1..n_items, arrays indexed by id have n_items + 1 rows."""
        return int(len(self.items))

    def split(self, name: str, max_len: int | None = None) -> SessionBatch:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        part = self.sessions[self.sessions["split"] == name]
        return to_batch(part["session_id"].to_numpy(), list(part["items"]), part["label"].to_numpy(),
                        max_len or int(self.meta.get("max_len", 50)))

    def titles(self) -> np.ndarray:
        """(n_items + 1,) object array of titles indexed by item id (index 0 = padding)."""
        return np.concatenate([["<pad>"], self.items["title"].astype(str).to_numpy()])

    def stats(self) -> DatasetStats:
        lengths = self.sessions["items"].map(len).to_numpy() + 1
        counts = self.sessions["split"].value_counts()
        return DatasetStats(
            n_sessions=len(self.sessions), n_items=self.n_items, n_interactions=int(lengths.sum()),
            n_train=int(counts.get("train", 0)), n_valid=int(counts.get("valid", 0)),
            n_test=int(counts.get("test", 0)), mean_length=float(lengths.mean()) if len(lengths) else 0.0,
            max_length=int(lengths.max()) if len(lengths) else 0)


def to_batch(session_ids: np.ndarray, inputs: Sequence[Sequence[int]], labels: np.ndarray, max_len: int) -> SessionBatch:
    n = len(inputs)
    padded = np.zeros((n, max_len), dtype=np.int64)
    lengths = np.zeros(n, dtype=np.int64)
    for row, seq in enumerate(inputs):
        window = np.asarray(seq, dtype=np.int64)[-max_len:]
        padded[row, : len(window)] = window
        lengths[row] = len(window)
    return SessionBatch(np.asarray(session_ids, dtype=np.int64), padded, lengths, np.asarray(labels, dtype=np.int64))


def from_raw(name: str, source: str, items: pd.DataFrame, sessions: pd.DataFrame, *, file: str | Path,
             meta: dict[str, Any] | None = None, drop_unknown: bool = False) -> SessionDataset:
    """Map raw item ids to internal ids and validate.

    items: raw_id (unique) and title, optional genres/year; row i becomes item id i + 1.
    sessions: session_id, items (list of raw ids, in order), label (raw id), split.
    drop_unknown: drop session items missing from `items` (and sessions whose label is missing or whose input ends
    empty), as the ALKDRec authors' mapping does; otherwise an unknown id is an error naming `file`.
    """
    items = items.reset_index(drop=True).copy()
    items["raw_id"] = items["raw_id"].astype(str)
    duplicated = items["raw_id"].duplicated()
    if duplicated.any():
        raise DataError(f"duplicate item id {items['raw_id'][duplicated].iloc[0]!r}", file=file, field="item_id",
                        line=int(np.flatnonzero(duplicated.to_numpy())[0]) + 2, fix="keep one row per item id")
    index = {raw: i + 1 for i, raw in enumerate(items["raw_id"])}
    mapped_inputs, mapped_labels, keep = [], [], []
    for row, (seq, label) in enumerate(zip(sessions["items"], sessions["label"])):
        ids = [index.get(str(raw)) for raw in seq]
        label_id = index.get(str(label))
        if not drop_unknown and (label_id is None or None in ids):
            missing = str(label) if label_id is None else str(seq[ids.index(None)])
            raise DataError(f"session {sessions['session_id'].iloc[row]!r} uses item {missing!r}, which is not in the "
                            "items table", file=file, field="item_id", fix="add the item to the items file or drop it")
        ids = [i for i in ids if i is not None]
        if not drop_unknown and not ids:
            raise DataError(f"session {sessions['session_id'].iloc[row]!r} has fewer than 2 items", file=file,
                            field="items", fix="sessions need at least one input item plus the next item")
        if label_id is None or not ids:
            continue
        mapped_inputs.append(ids)
        mapped_labels.append(label_id)
        keep.append(row)
    kept = sessions.iloc[keep]
    out = pd.DataFrame({"session_id": kept["session_id"].to_numpy(dtype=np.int64), "items": mapped_inputs,
                        "label": np.asarray(mapped_labels, dtype=np.int64), "split": kept["split"].to_numpy()})
    item_table = pd.DataFrame({
        "item_id": np.arange(1, len(items) + 1, dtype=np.int64),
        "raw_id": items["raw_id"].to_numpy(),
        "title": items["title"].fillna("").astype(str).to_numpy() if "title" in items else items["raw_id"].to_numpy(),
        "genres": items["genres"].astype("string").to_numpy() if "genres" in items else pd.array([pd.NA] * len(items), dtype="string"),
        "year": pd.array(items["year"], dtype="Int64") if "year" in items else pd.array([pd.NA] * len(items), dtype="Int64"),
    })
    dataset = SessionDataset(name, source, item_table, out, dict(meta or {}))
    validate(dataset, file=file)
    return dataset


def validate(dataset: SessionDataset, *, file: str | Path) -> None:
    sessions = dataset.sessions
    if sessions.empty:
        raise DataError("no sessions left after filtering", file=file,
                        fix="check the minimum session length and the item ids")
    if sessions["session_id"].duplicated().any():
        dup = sessions["session_id"][sessions["session_id"].duplicated()].iloc[0]
        raise DataError(f"duplicate session id {dup!r}", file=file, field="session_id")
    bad_split = ~sessions["split"].isin(SPLITS)
    if bad_split.any():
        raise DataError(f"unknown split {sessions['split'][bad_split].iloc[0]!r}", file=file, field="split")
    short = sessions["items"].map(len) < 1
    if short.any():
        raise DataError(f"session {sessions['session_id'][short].iloc[0]!r} has fewer than 2 items", file=file,
                        fix="sessions need at least one input item plus the next item")


def check_splits(dataset: SessionDataset) -> None:
    """Every split must hold sessions: train to learn from, valid to stop early on, test to report. DataError naming
    the dataset, the split counts and the fix otherwise (checked before a dataset is saved)."""
    counts = dataset.sessions["split"].value_counts()
    empty = [name for name in SPLITS if counts.get(name, 0) == 0]
    if empty:
        split = ", ".join(f"{name} {int(counts.get(name, 0))}" for name in SPLITS)
        files = dataset.meta.get("files")
        raise DataError(f"dataset {dataset.name!r} has no {' and no '.join(empty)} sessions (its {len(dataset.sessions)} "
                        f"session(s) split into {split})", file=files[0] if files else None,
                        fix="add sessions (the 6:2:2 split needs at least 3, better hundreds) or lower min_length")


def dataset_path(name: str, home: Path) -> Path:
    return home / name


def is_dataset_dir(directory: Path) -> bool:
    """Whether `directory` is a folder alkd wrote: a real folder (not a link) holding a meta.json with name/source."""
    meta = directory / "meta.json"
    if directory.is_symlink() or not directory.is_dir() or not meta.is_file():
        return False
    try:
        content = json.loads(meta.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and "name" in content and "source" in content


def save_dataset(dataset: SessionDataset, directory: Path) -> Path:
    """Write items/sessions Parquet + meta.json into `directory` atomically: a temp dir swapped in at the end.
    An existing `directory` is replaced only when alkd wrote it (`is_dataset_dir`); anything else there is a
    DataError and stays untouched. A dataset with an empty split is refused (`check_splits`)."""
    check_splits(dataset)
    if directory.exists() or directory.is_symlink():
        if not is_dataset_dir(directory):
            raise DataError("exists and is not an alkd dataset (no alkd meta.json); alkd replaces only datasets it "
                            "wrote", file=directory, fix="move that folder away or fetch under another --name")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    old: Path | None = None
    try:
        dataset.items.to_parquet(staging / "items.parquet", index=False)
        dataset.sessions.to_parquet(staging / "sessions.parquet", index=False)
        meta = {"name": dataset.name, "source": dataset.source, **dataset.meta, "stats": dataset.stats().as_dict()}
        (staging / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        if directory.exists():
            # an empty folder of our own to move the old copy onto: the only folder removed below is one we made
            old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old.", dir=directory.parent))
            os.replace(directory, old)
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None and not directory.exists() and old.exists():
            os.replace(old, directory)      # put the previous dataset back
        elif old is not None:
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return directory


def load_dataset_dir(directory: Path) -> SessionDataset:
    meta = json.loads((directory / "meta.json").read_text())
    items = pd.read_parquet(directory / "items.parquet")
    sessions = pd.read_parquet(directory / "sessions.parquet")
    sessions["items"] = sessions["items"].map(lambda a: np.asarray(a, dtype=np.int64).tolist())
    name, source = meta.pop("name"), meta.pop("source")
    meta.pop("stats", None)
    return SessionDataset(name, source, items, sessions, meta)
