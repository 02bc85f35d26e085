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
from core.registry import Registry

#: every reference baseline by name (core.registry); `alkd run` also lists each as a method of kind "baseline"
BASELINES: Registry[type[Baseline]] = Registry("baseline")
BASELINES.register("popular", Popular, description="most-popular: item frequency over the training sequences")
BASELINES.register("transitions", Transitions,
                   description="last-item transitions: first-order Markov counts, popularity tie-break")
BASELINES.register("sknn", SKNN, description="session kNN: cosine on binary item sets, k=100 of the 500 most recent "
                                             "sessions sharing an item")
BASELINES.register("vsknn", VSKNN, description="vector-multiplication session kNN: position-weighted current session "
                                               "(last item = 1)")
#: name -> description (the registry's; kept for older callers)
DESCRIPTIONS: dict[str, str] = BASELINES.describe()


def available() -> list[str]:
    return BASELINES.names()


def make(name: str, **params: Any) -> Baseline:
    """A fresh, unfitted baseline by registry name (UnknownName, a KeyError, naming the known ones)."""
    return BASELINES.get(name)(**params)


__all__ = ["BASELINES", "DESCRIPTIONS", "Baseline", "Popular", "SKNN", "Transitions", "VSKNN", "as_sequences",
           "available", "make", "training_sequences"]
