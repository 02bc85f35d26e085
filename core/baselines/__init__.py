"""Reference baselines shown beside every comparison: most-popular, last-item transitions, SKNN and V-SKNN.

Shared interface (see `Baseline`):

    model = make("sknn", k=100).fit(training_sequences(dataset), dataset.n_items)
    scores = model.score(batch)        # (len(batch), n_items + 1) float32, higher = better, column 0 = -inf
    evaluate(model, dataset.split("test", max_len=10))   # an instance is a score_fn

`fit` takes the TRAINING sessions only, each as its full sequence (input items followed by the label):
`training_sequences(dataset)` builds that list (a SessionDataset passed to `fit` is converted the same way).
"""

from __future__ import annotations

from typing import Any

from core.baselines._common import Baseline, as_sequences, training_sequences
from core.baselines.popular import Popular
from core.baselines.sknn import SKNN, VSKNN
from core.baselines.transitions import Transitions

BASELINES: dict[str, type[Baseline]] = {
    "popular": Popular,
    "transitions": Transitions,
    "sknn": SKNN,
    "vsknn": VSKNN,
}

DESCRIPTIONS: dict[str, str] = {
    "popular": "most-popular: item frequency over the training sequences",
    "transitions": "last-item transitions: first-order Markov counts, popularity tie-break",
    "sknn": "session kNN: cosine on binary item sets, k=100 of the 500 most recent sessions sharing an item",
    "vsknn": "vector-multiplication session kNN: position-weighted current session (last item = 1)",
}


def available() -> list[str]:
    return list(BASELINES)


def make(name: str, **params: Any) -> Baseline:
    """A fresh, unfitted baseline by registry name."""
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    return BASELINES[name](**params)


__all__ = ["BASELINES", "DESCRIPTIONS", "Baseline", "Popular", "SKNN", "Transitions", "VSKNN", "as_sequences",
           "available", "make", "training_sequences"]
