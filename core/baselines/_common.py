"""Shared pieces of the reference baselines: training sequences, sparse session-item matrices, window items."""

from __future__ import annotations

from typing import Iterable, Sequence, Union

import numpy as np
import scipy.sparse as sp

from core.data.dataset import SessionBatch, SessionDataset

TrainData = Union[SessionDataset, SessionBatch, Sequence[Sequence[int]], Iterable[np.ndarray]]

# Score given to the padding column (id 0): never a candidate. evaluate() masks it anyway.
PAD_SCORE = -np.inf


def training_sequences(dataset: SessionDataset) -> list[np.ndarray]:
    """Full sequences of the TRAINING sessions, in the dataset's session order (oldest first):
    each is the session's input items followed by its label, as an int64 array."""
    part = dataset.sessions[dataset.sessions["split"] == "train"]
    return [np.append(np.asarray(items, dtype=np.int64), np.int64(label))
            for items, label in zip(part["items"], part["label"])]


def as_sequences(train: TrainData, n_items: int) -> list[np.ndarray]:
    """Normalise what `fit` accepts into a list of int64 sequences with ids in 1..n_items.

    train: a SessionDataset (its training split, via `training_sequences`), a SessionBatch (each row's window
    followed by its label; note the window may be truncated), or an iterable of id sequences (already full).
    """
    if isinstance(train, SessionDataset):
        seqs = training_sequences(train)
    elif isinstance(train, SessionBatch):
        seqs = [np.append(train.inputs[i, : train.lengths[i]], train.labels[i]).astype(np.int64)
                for i in range(len(train))]
    else:
        seqs = [np.asarray(s, dtype=np.int64).reshape(-1) for s in train]
    for row, seq in enumerate(seqs):
        if len(seq) and (seq.min() < 1 or seq.max() > n_items):
            raise ValueError(f"training sequence {row} has item ids outside 1..{n_items}: {seq.tolist()}")
    return seqs


def item_counts(seqs: Sequence[np.ndarray], n_items: int) -> np.ndarray:
    """(n_items + 1,) float64 number of occurrences of each item over `seqs` (index 0 = padding = 0)."""
    flat = np.concatenate(seqs) if seqs else np.zeros(0, dtype=np.int64)
    return np.bincount(flat, minlength=n_items + 1).astype(np.float64)


def popularity_tiebreak(counts: np.ndarray) -> np.ndarray:
    """counts scaled into [0, 1): adding it to integer scores breaks their ties by popularity and never reorders
    two different integer scores."""
    return counts / (counts.max() + 1.0) if len(counts) else counts


def session_item_matrix(seqs: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
    """(len(seqs), n_items + 1) binary CSR: row s has a 1 at every distinct item of sequence s."""
    rows = np.repeat(np.arange(len(seqs)), [len(s) for s in seqs])
    cols = np.concatenate(seqs) if seqs else np.zeros(0, dtype=np.int64)
    matrix = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(seqs), n_items + 1))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def window_items(batch: SessionBatch, n_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real (non-padding) items of each input window: (rows, items, positions), positions 1-based in time order."""
    inputs = np.asarray(batch.inputs)
    lengths = np.asarray(batch.lengths)
    mask = np.arange(inputs.shape[1])[None, :] < lengths[:, None]
    rows, cols = np.nonzero(mask)
    items = inputs[rows, cols]
    if len(items) and (items.min() < 1 or items.max() > n_items):
        raise ValueError(f"batch has item ids outside 1..{n_items} (the ids the baseline was fitted on)")
    return rows, items, cols + 1


def dense_scores(sparse: sp.spmatrix, base: np.ndarray | None, *, add: bool) -> np.ndarray:
    """(n, m) float32 from a sparse (n, m) score matrix laid over a per-item row `base` ((m,), None = zeros):
    add=True gives base + sparse; add=False puts the sparse non-zeros in place of base. Float64 arithmetic on the
    non-zeros, one float32 cast; avoids building a float64 dense matrix."""
    n, m = sparse.shape
    out = np.zeros((n, m), dtype=np.float32) if base is None else np.tile(base.astype(np.float32), (n, 1))
    coo = sparse.tocoo()
    values = coo.data.astype(np.float64)
    if add and base is not None:
        values = values + base[coo.col]
    out[coo.row, coo.col] = values.astype(np.float32)
    return out


def group_rank(groups: np.ndarray) -> np.ndarray:
    """For an array sorted by group: each element's 0-based position within its group."""
    starts = np.searchsorted(groups, groups, side="left")
    return np.arange(len(groups)) - starts


class Baseline:
    """Shared interface: `fit(train, n_items) -> self`, `score(batch) -> (len(batch), n_items + 1) float32`.

    Higher is better; column 0 (padding) is -inf. An instance is itself a valid `score_fn` for
    `core.evaluate.evaluate` (calling it is `score`).
    """

    name = "baseline"
    n_items: int | None = None

    def fit(self, train: TrainData, n_items: int) -> "Baseline":
        raise NotImplementedError

    def score(self, batch: SessionBatch) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, batch: SessionBatch) -> np.ndarray:
        return self.score(batch)

    def _check_fitted(self) -> int:
        if self.n_items is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(train, n_items) first")
        return self.n_items

    def _finish(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float32)
        scores[:, 0] = PAD_SCORE
        return scores

    def get_params(self) -> dict:
        return {}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
