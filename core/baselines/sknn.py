"""Session-based kNN (SKNN) and vector-multiplication session kNN (V-SKNN).

Jannach & Ludewig, "When recurrent neural networks meet the neighborhood for session-based recommendation",
RecSys 2017 (SKNN); Ludewig & Jannach, "Evaluation of session-based recommendation algorithms", UMUAI 2018
(V-SKNN). For a current session s (its input window):

1. candidates: the training sessions that contain at least one item of s; keep the `sample_size` most recent
   (training session order is the recency: a later session is more recent);
2. similarity to each candidate n (n = the set of items of the full training sequence, inputs + label):
   - SKNN: cosine of binary item sets, |s ∩ n| / sqrt(|s| |n|);
   - V-SKNN: the current session is a real-valued vector w whose last item weighs 1 and earlier items less
     (`weighting="div"`: the item at 1-based position p of L weighs p / L, a linear decay — session-rec's default;
     `"linear"`: 1 - 0.1 (L - p), floored at 0); similarity = w · 1_n / L (`"dot"`, session-rec's `vec`) or the
     cosine w · 1_n / (||w|| sqrt(|n|)) (`"cosine"`);
3. neighbours: the k most similar candidates (ties: the more recent first);
4. score(i) = sum of the similarities of the neighbours that contain i.

With `fallback="popularity"` an item no neighbour contains scores (popularity / (max + 1)) - 1, i.e. below every
neighbour-supported item and ordered by popularity; with None it scores 0. Items of the current session are not
removed here (evaluate's exclude_seen does that).

Everything is vectorised over the batch with scipy.sparse: the (batch x train) overlap matrix is one sparse
product, sampling and top-k are lexsorts over its non-zeros, and the scores are one more sparse product.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from core.baselines._common import (
    Baseline,
    TrainData,
    as_sequences,
    dense_scores,
    group_rank,
    item_counts,
    popularity_tiebreak,
    session_item_matrix,
    window_items,
)
from core.data.dataset import SessionBatch

WEIGHTINGS = ("div", "linear")
SIMILARITIES = ("cosine", "dot")
FALLBACKS = ("popularity", None)


class SKNN(Baseline):
    name = "sknn"

    def __init__(self, k: int = 100, sample_size: int = 500, fallback: str | None = "popularity"):
        if k < 1 or sample_size < 1:
            raise ValueError(f"k and sample_size must be >= 1, got k={k}, sample_size={sample_size}")
        if fallback not in FALLBACKS:
            raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
        self.k = int(k)
        self.sample_size = int(sample_size)
        self.fallback = fallback

    def get_params(self) -> dict:
        return {"k": self.k, "sample_size": self.sample_size, "fallback": self.fallback}

    def fit(self, train: TrainData, n_items: int) -> "SKNN":
        seqs = as_sequences(train, n_items)
        self.sessions_ = session_item_matrix(seqs, n_items)          # (n_train, n_items + 1) binary
        self.sessions_t_ = self.sessions_.T.tocsr()                  # item -> sessions
        self.session_sizes_ = np.diff(self.sessions_.indptr).astype(np.float64)  # distinct items per session
        self.popularity_ = item_counts(seqs, n_items)
        self.n_items = int(n_items)
        return self

    # --- the current sessions as (n, n_items + 1) sparse vectors -------------------------------------------
    def _query(self, batch: SessionBatch) -> sp.csr_matrix:
        """Binary item set of each input window (duplicates count once)."""
        rows, items, _ = window_items(batch, self.n_items)
        query = sp.csr_matrix((np.ones(len(items)), (rows, items)), shape=(len(batch), self.n_items + 1))
        query.sum_duplicates()
        query.data[:] = 1.0
        return query

    def _similarity(self, dot: np.ndarray, rows: np.ndarray, cols: np.ndarray, query: sp.csr_matrix) -> np.ndarray:
        """Cosine of binary sets: dot = |s ∩ n|."""
        query_sizes = np.diff(query.indptr).astype(np.float64)
        return dot / np.sqrt(query_sizes[rows] * self.session_sizes_[cols])

    # --- neighbours -----------------------------------------------------------------------------------------
    def neighbours(self, batch: SessionBatch, exclude: np.ndarray | None = None) -> sp.csr_matrix:
        """(len(batch), n_train) CSR: similarity of each session to each of its (at most k) neighbours.
        exclude: (len(batch),) index of a training session that may not be a row's neighbour (-1: none), e.g. the
        session a training prefix was cut from, whose later items include the prefix's own target."""
        self._check_fitted()
        n_train = self.sessions_.shape[0]
        query = self._query(batch)
        dot = (query @ self.sessions_t_).tocoo()                     # (n, n_train): w · 1_n over shared items
        rows, cols, vals = dot.row, dot.col, dot.data
        keep = vals > 0
        if exclude is not None:
            keep &= cols != np.asarray(exclude)[rows]
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
        # sample: the `sample_size` most recent candidate sessions (largest training index) per row
        order = np.lexsort((-cols, rows))
        rows, cols, vals = rows[order], cols[order], vals[order]
        keep = group_rank(rows) < self.sample_size
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
        sims = self._similarity(vals, rows, cols, query)
        # top-k by similarity per row, ties (equal to 12 decimals, so float summation order cannot split an exact
        # tie) go to the more recent session
        order = np.lexsort((-cols, -np.round(sims, 12), rows))
        rows, cols, sims = rows[order], cols[order], sims[order]
        keep = (group_rank(rows) < self.k) & (sims > 0)
        return sp.csr_matrix((sims[keep], (rows[keep], cols[keep])), shape=(len(batch), n_train))

    def score(self, batch: SessionBatch, exclude: np.ndarray | None = None) -> np.ndarray:
        """(len(batch), n_items + 1) float32; exclude: as in `neighbours`."""
        self._check_fitted()
        scores = (self.neighbours(batch, exclude) @ self.sessions_).tocsr()
        scores.eliminate_zeros()
        base = popularity_tiebreak(self.popularity_) - 1.0 if self.fallback == "popularity" else None
        return self._finish(dense_scores(scores, base, add=False))


class VSKNN(SKNN):
    name = "vsknn"

    def __init__(self, k: int = 100, sample_size: int = 500, weighting: str = "div", similarity: str = "dot",
                 fallback: str | None = "popularity"):
        super().__init__(k=k, sample_size=sample_size, fallback=fallback)
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        if similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
        self.weighting = weighting
        self.similarity = similarity

    def get_params(self) -> dict:
        return {**super().get_params(), "weighting": self.weighting, "similarity": self.similarity}

    def _query(self, batch: SessionBatch) -> sp.csr_matrix:
        """Position-weighted window: the last item weighs 1; a repeated item keeps its latest (largest) weight."""
        rows, items, positions = window_items(batch, self.n_items)
        lengths = np.asarray(batch.lengths)[rows].astype(np.float64)
        if self.weighting == "div":
            weights = positions / lengths
        else:
            weights = np.maximum(1.0 - 0.1 * (lengths - positions), 0.0)
        # dedupe (row, item), keeping the latest occurrence
        order = np.lexsort((positions, items, rows))
        rows, items, weights = rows[order], items[order], weights[order]
        last = np.ones(len(rows), dtype=bool)
        last[:-1] = (rows[1:] != rows[:-1]) | (items[1:] != items[:-1])
        rows, items, weights = rows[last], items[last], weights[last]
        nonzero = weights > 0
        return sp.csr_matrix((weights[nonzero], (rows[nonzero], items[nonzero])),
                             shape=(len(batch), self.n_items + 1))

    def _similarity(self, dot: np.ndarray, rows: np.ndarray, cols: np.ndarray, query: sp.csr_matrix) -> np.ndarray:
        if self.similarity == "dot":
            # session-rec's `vec`: sum of the shared items' weights / number of distinct items in the session
            sizes = np.diff(query.indptr).astype(np.float64)
            return dot / sizes[rows]
        norms = np.sqrt(np.asarray(query.multiply(query).sum(axis=1)).ravel())
        return dot / (norms[rows] * np.sqrt(self.session_sizes_[cols]))
