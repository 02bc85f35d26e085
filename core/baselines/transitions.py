"""Last-item transitions: a first-order Markov chain counted on the training sequences."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from core.baselines._common import Baseline, TrainData, as_sequences, dense_scores, item_counts, popularity_tiebreak
from core.data.dataset import SessionBatch


class Transitions(Baseline):
    """score(b) = #times item b directly follows the session's last item a in a training sequence
    (+ popularity / (max popularity + 1) when `tie_break`, a term in [0, 1) that only orders items with equal
    transition counts, so unseen transitions rank by popularity)."""

    name = "transitions"

    def __init__(self, tie_break: bool = True):
        self.tie_break = tie_break

    def get_params(self) -> dict:
        return {"tie_break": self.tie_break}

    def fit(self, train: TrainData, n_items: int) -> "Transitions":
        seqs = as_sequences(train, n_items)
        src = np.concatenate([s[:-1] for s in seqs]) if seqs else np.zeros(0, dtype=np.int64)
        dst = np.concatenate([s[1:] for s in seqs]) if seqs else np.zeros(0, dtype=np.int64)
        self.counts_ = sp.csr_matrix((np.ones(len(src)), (src, dst)), shape=(n_items + 1, n_items + 1))
        self.counts_.sum_duplicates()
        self.popularity_ = item_counts(seqs, n_items)
        self.n_items = int(n_items)
        return self

    def score(self, batch: SessionBatch) -> np.ndarray:
        self._check_fitted()
        lengths = np.asarray(batch.lengths)
        last = np.asarray(batch.inputs)[np.arange(len(batch)), np.maximum(lengths - 1, 0)]
        if len(last) and (last.min() < 1 or last.max() > self.n_items):
            raise ValueError(f"batch has last items outside 1..{self.n_items}")
        base = popularity_tiebreak(self.popularity_) if self.tie_break else None
        return self._finish(dense_scores(self.counts_[last], base, add=True))
