"""Most-popular: every session gets the same ranking, by item frequency over the training sequences."""

from __future__ import annotations

import numpy as np

from core.baselines._common import Baseline, TrainData, as_sequences, item_counts
from core.data.dataset import SessionBatch


class Popular(Baseline):
    """score(item) = number of occurrences of the item in the training sequences (inputs + label)."""

    name = "popular"

    def fit(self, train: TrainData, n_items: int) -> "Popular":
        seqs = as_sequences(train, n_items)
        self.counts_ = item_counts(seqs, n_items)
        self.n_items = int(n_items)
        return self

    def score(self, batch: SessionBatch) -> np.ndarray:
        self._check_fitted()
        return self._finish(np.tile(self.counts_.astype(np.float32), (len(batch), 1)))
