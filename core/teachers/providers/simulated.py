"""A SIMULATED what-if teacher for offline demos and tests. Not an LLM: every response says simulated=True and the
model name reads `simulated-h0.53`.

For each session it puts the true next item in its top n_out with probability h (when the label is among the
candidates, as it always is with force_label_in_candidates), at a position drawn from the shape of the recorded
GPT-4-turbo hits (spec 2.1: rank 1 / top-5 / top-10 / top-25 = 5.2 / 15.2 / 25.3 / 52.9 % on ML); the other slots
follow the teacher recommender's candidate order perturbed by seeded Gaussian noise. Deterministic per
(seed, session_id). Default h: the recorded GPT-4 hit rate of the matching paper dataset (0.529 movies, 0.533 games).
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np

from core.data.domain import domain_of
from core.teachers.prompts import effective_candidates
from core.teachers.providers import register
from core.teachers.providers.base import Provider
from core.teachers.types import Completion, Prompt, RankRequest, Turn

RECORDED_HIT_RATE = {"movies": 0.529, "games": 0.533}
#: Cumulative shares of recorded hits at rank 1, top-5, top-10, top-25 (ML, spec 2.1), divided by the top-25 rate.
_CUMULATIVE = np.array([0.052, 0.152, 0.253, 0.529]) / 0.529
_BUCKETS = ((0, 1), (1, 5), (5, 10), (10, 25))
RATIONALE = ("[SIMULATED teacher, not an LLM] Ranked by the teacher recommender's candidate order with seeded noise; "
             "the true next item is placed in the top {n} with probability {h:.3f}.")


@register("simulated", default_model="simulated",
          description="SIMULATED what-if teacher for demos and tests: hits the true next item with probability h")
class SimulatedProvider(Provider):
    """hit_rate: h in [0, 1]; None = the recorded GPT-4 rate for `dataset`'s domain. noise: standard deviation of
    the Gaussian perturbation of teacher positions (in positions). seed: the run's seed."""

    name = "simulated"
    instant = True
    simulated = True

    def __init__(self, model: str | None = None, *, hit_rate: float | None = None, dataset: str = "ML",
                 seed: int = 0, noise: float = 5.0, concurrency: int = 1, db: Any = None, **_: Any) -> None:
        domain = domain_of(dataset)
        # a domain without a recorded rate (e.g. synthetic items) takes the movies one
        recorded = RECORDED_HIT_RATE.get(domain, RECORDED_HIT_RATE["movies"])
        self.hit_rate = float(recorded if hit_rate is None else hit_rate)
        if not 0.0 <= self.hit_rate <= 1.0:
            raise ValueError(f"hit_rate must be in [0, 1], got {self.hit_rate}")
        self.seed = int(seed)
        self.noise = float(noise)
        super().__init__(model or f"simulated-h{self.hit_rate:.2f}", price=(0.0, 0.0), concurrency=concurrency,
                         db=db)

    def key_options(self, request: RankRequest | None) -> dict[str, Any]:
        return {"h": self.hit_rate, "seed": self.seed, "noise": self.noise,
                "label": None if request is None or request.label is None else int(request.label),
                "session_id": None if request is None else int(request.session_id)}

    def _position(self, rng: np.random.Generator, n_out: int) -> int:
        bucket = int(np.searchsorted(_CUMULATIVE, rng.random() * _CUMULATIVE[-1], side="right"))
        low, high = _BUCKETS[min(bucket, len(_BUCKETS) - 1)]
        return min(int(rng.integers(low, high)), n_out - 1)

    def simulate(self, request: RankRequest) -> list[int]:
        """The simulated ranked list for one session (deterministic per (seed, session_id))."""
        rng = np.random.default_rng([self.seed, int(request.session_id) & 0xFFFFFFFF, 7])
        n_out = request.options.n_out
        candidates, _ = effective_candidates(request)
        hit = rng.random() < self.hit_rate
        scores = np.arange(len(candidates), dtype=float) + rng.normal(0.0, self.noise, len(candidates))
        ordered = [candidates[i] for i in np.argsort(scores, kind="stable")]
        label = None if request.label is None else int(request.label)
        if label is None or label not in candidates:
            return ordered[:n_out]
        others = [c for c in ordered if c != label]
        if hit:
            top = others[:n_out - 1]
            top.insert(min(self._position(rng, n_out), len(top)), label)
            return top
        return others[:n_out]

    def generate(self, prompt: Prompt, turns: Sequence[Turn], request: RankRequest | None,
                 max_tokens: int) -> Completion:
        if request is None:  # summarisation: templated hints, marked simulated
            text = "\n".join(f"{i}. [SIMULATED hint {i}] Recommend items close to the session in the teacher's order."
                             for i in range(1, 5))
            return Completion(text=text, usage_reported=False)
        ranking = self.simulate(request)
        reply = {"ranking": ranking, "rationale": RATIONALE.format(n=request.options.n_out, h=self.hit_rate)}
        return Completion(text=json.dumps(reply), usage_reported=False)
