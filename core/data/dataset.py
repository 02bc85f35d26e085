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
from itertools import chain
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

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
        lengths = lengths_of(self.sessions["items"]) + 1
        counts = self.sessions["split"].value_counts()
        return DatasetStats(
            n_sessions=len(self.sessions), n_items=self.n_items, n_interactions=int(lengths.sum()),
            n_train=int(counts.get("train", 0)), n_valid=int(counts.get("valid", 0)),
            n_test=int(counts.get("test", 0)), mean_length=float(lengths.mean()) if len(lengths) else 0.0,
            max_length=int(lengths.max()) if len(lengths) else 0)


def lengths_of(sequences: Iterable[Sequence[Any]]) -> np.ndarray:
    """(n,) int64 length of each sequence (a list column, a list of lists or arrays)."""
    return np.fromiter(map(len, sequences), dtype=np.int64)


def flatten(sequences: Iterable[Sequence[Any]], dtype: Any = object) -> tuple[np.ndarray, np.ndarray]:
    """Ragged sequences as (values, offsets): values (total,) of `dtype`, all items in order; offsets (n + 1,) int64,
    sequence i is values[offsets[i]:offsets[i + 1]]. One pass in C (no per-row Python)."""
    sequences = sequences if isinstance(sequences, (list, pd.Series, np.ndarray)) else list(sequences)
    lengths = lengths_of(sequences)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.fromiter(chain.from_iterable(sequences), dtype=dtype, count=int(offsets[-1]))
    return values, offsets


def to_lists(values: np.ndarray, offsets: np.ndarray) -> list[list[Any]]:
    """The inverse of `flatten`: Python lists of Python scalars (int, str, ...), built by Arrow in C where the values
    are of one Arrow type; mixed-type values (only hand-built tables have them) are sliced in Python."""
    try:
        column = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, OverflowError):
        flat = values.tolist()
        return [flat[start:end] for start, end in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    return pa.LargeListArray.from_arrays(pa.array(offsets, type=pa.int64()), column).to_pylist()


def window_arrays(values: np.ndarray, offsets: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """The last `max_len` items of each ragged sequence, right-padded with 0: ((n, max_len) int64, (n,) int64 kept
    lengths). values: (total,) int64; offsets: (n + 1,) int64."""
    kept = np.minimum(np.diff(offsets), max_len)
    return _fill_windows(values, offsets[1:] - kept, kept, max_len), kept.astype(np.int64)


def _fill_windows(values: np.ndarray, start: np.ndarray, kept: np.ndarray, max_len: int) -> np.ndarray:
    """(n, max_len) int64: row i holds values[start[i]:start[i] + kept[i]], right-padded with 0 (one scatter)."""
    padded = np.zeros((len(start), max_len), dtype=np.int64)
    rows = np.repeat(np.arange(len(start), dtype=np.int64), kept)
    within = np.arange(rows.size, dtype=np.int64) - np.repeat(np.cumsum(kept) - kept, kept)
    padded.reshape(-1)[rows * max_len + within] = values[np.repeat(start, kept) + within]
    return padded


def to_batch(session_ids: np.ndarray, inputs: Sequence[Sequence[int]], labels: np.ndarray,
             max_len: int) -> SessionBatch:
    """Padded arrays of sessions: inputs (n sequences of item ids) keep their last `max_len` items (SessionBatch)."""
    values, offsets = flatten(inputs, dtype=np.int64)
    padded, lengths = window_arrays(values, offsets, max_len)
    return SessionBatch(np.asarray(session_ids, dtype=np.int64), padded, lengths, np.asarray(labels, dtype=np.int64))


def prefix_instances(inputs: Sequence[Sequence[int]], labels: np.ndarray, max_len: int, augment_prefixes: bool
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training rows of sessions, as core.train builds them, without per-row Python.

    Each session (its inputs, then its label) gives (input -> label) and, with `augment_prefixes`, every prefix
    (first i items -> item i + 1), in session order then prefix length. Returns inputs (m, max_len) int64, the last
    `max_len` items of each prefix right-padded with 0; lengths (m,) int64; targets (m,) int64.
    """
    values, offsets = flatten(inputs, dtype=np.int64)
    n = len(offsets) - 1
    full_lengths = np.diff(offsets) + 1
    full_offsets = offsets + np.arange(n + 1)
    full = np.empty(int(full_offsets[-1]), dtype=np.int64)
    label_at = full_offsets[1:] - 1
    is_label = np.zeros(full.size, dtype=bool)
    is_label[label_at] = True
    full[is_label] = np.asarray(labels, dtype=np.int64)
    full[~is_label] = values
    first = np.ones(n, dtype=np.int64) if augment_prefixes else full_lengths - 1
    counts = full_lengths - first
    session = np.repeat(np.arange(n), counts)
    end = first[session] + np.arange(session.size) - np.repeat(np.cumsum(counts) - counts, counts)
    kept = np.minimum(end, max_len)
    start = full_offsets[session] + end - kept                    # first window item of each row in `full`
    return _fill_windows(full, start, kept, max_len), kept.astype(np.int64), full[full_offsets[session] + end]


def _map_ids(raw: np.ndarray, index: pd.Index) -> np.ndarray:
    """(n,) int64 internal id (position in `index` + 1) of each raw id, matched by str(raw); 0 where unknown.
    str() runs once per distinct raw id, not per row."""
    codes, uniques = pd.factorize(raw, use_na_sentinel=False)
    positions = index.get_indexer(pd.Index([str(value) for value in uniques], dtype=object))
    return (positions + 1).astype(np.int64)[codes] if len(codes) else np.zeros(0, dtype=np.int64)


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
    index = pd.Index(items["raw_id"].to_numpy(dtype=object), dtype=object)
    values, offsets = flatten(sessions["items"])
    lengths = np.diff(offsets)
    rows = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    ids = _map_ids(values, index)
    labels_raw = sessions["label"].to_numpy(dtype=object)
    label_ids = _map_ids(labels_raw, index)
    unknown_rows = np.zeros(len(lengths), dtype=bool)
    unknown_rows[rows[ids == 0]] = True
    if not drop_unknown:
        bad = np.flatnonzero((label_ids == 0) | unknown_rows | (lengths == 0))
        if bad.size:
            row = int(bad[0])
            session = sessions["session_id"].iloc[row]
            if label_ids[row] == 0 or unknown_rows[row]:
                first_unknown = offsets[row] + int(np.argmax(ids[offsets[row]:offsets[row + 1]] == 0))
                missing = str(labels_raw[row]) if label_ids[row] == 0 else str(values[first_unknown])
                raise DataError(f"session {session!r} uses item {missing!r}, which is not in the items table",
                                file=file, field="item_id", fix="add the item to the items file or drop it")
            raise DataError(f"session {session!r} has fewer than 2 items", file=file, field="items",
                            fix="sessions need at least one input item plus the next item")
    known = ids != 0
    known_lengths = np.bincount(rows[known], minlength=len(lengths)).astype(np.int64)
    keep = (label_ids != 0) & (known_lengths > 0)
    kept_values = ids[known & keep[rows]]
    kept_offsets = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
    np.cumsum(known_lengths[keep], out=kept_offsets[1:])
    kept = sessions.iloc[np.flatnonzero(keep)]
    out = pd.DataFrame({"session_id": kept["session_id"].to_numpy(dtype=np.int64),
                        "items": to_lists(kept_values, kept_offsets),
                        "label": label_ids[keep].astype(np.int64), "split": kept["split"].to_numpy()})
    item_table = pd.DataFrame({
        "item_id": np.arange(1, len(items) + 1, dtype=np.int64),
        "raw_id": items["raw_id"].to_numpy(),
        "title": items["title"].fillna("").astype(str).to_numpy() if "title" in items else items["raw_id"].to_numpy(),
        "genres": (items["genres"].astype("string").to_numpy() if "genres" in items
                   else pd.array([pd.NA] * len(items), dtype="string")),
        "year": (pd.array(items["year"], dtype="Int64") if "year" in items
                 else pd.array([pd.NA] * len(items), dtype="Int64")),
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
    short = pd.Series(lengths_of(sessions["items"]) < 1, index=sessions.index)
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
        raise DataError(f"dataset {dataset.name!r} has no {' and no '.join(empty)} sessions "
                        f"(its {len(dataset.sessions)} "
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
    table = pq.read_table(directory / "sessions.parquet")
    # the list column straight from Arrow to Python lists of ints (a per-row conversion in pandas took seconds)
    lists = table.column("items").cast(pa.large_list(pa.int64())).to_pylist()
    sessions = table.to_pandas()
    sessions["items"] = pd.Series(lists, index=sessions.index, dtype=object)
    name, source = meta.pop("name"), meta.pop("source")
    meta.pop("stats", None)
    return SessionDataset(name, source, items, sessions, meta)
