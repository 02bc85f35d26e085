"""The counting `target_ranks` equals counting over `masked_scores` with `candidate_mask` (the definition it
replaced), for ties, NaN, +-inf, labels inside their window, repeated window items, padding and float64 scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.data.dataset import SessionBatch
from core.evaluate import candidate_mask, masked_scores, target_ranks


def reference_ranks(scores: torch.Tensor, batch: SessionBatch, exclude_seen: bool) -> torch.Tensor:
    """The replaced implementation: mask a copy of the matrix, then count over the candidate set."""
    masked = masked_scores(scores, batch, exclude_seen)
    labels = torch.as_tensor(batch.labels)
    competing = candidate_mask(batch, masked.shape[1], exclude_seen)
    target = masked.gather(1, labels[:, None])
    ids = torch.arange(masked.shape[1])[None, :]
    return ((masked > target) & competing).sum(1) + ((masked == target) & (ids < labels[:, None]) & competing).sum(1)


def random_case(rng: np.random.Generator, trial: int) -> tuple[torch.Tensor, SessionBatch]:
    n, m, width = int(rng.integers(1, 30)), int(rng.integers(2, 40)), int(rng.integers(1, 6))
    inputs = rng.integers(0, m, (n, width))
    lengths = rng.integers(1, width + 1, n)
    inputs[np.arange(width)[None, :] >= lengths[:, None]] = 0
    labels = rng.integers(1, m, n)
    if trial % 3 == 0:
        inputs[:, 0] = np.where(rng.random(n) < 0.5, labels, inputs[:, 0])       # the label in its own window
    values = rng.integers(-2, 2, (n, m)).astype(np.float64)                       # many ties
    if trial % 4 >= 2:
        draw = rng.random((n, m))
        values[draw < 0.15], values[(draw >= 0.15) & (draw < 0.25)] = np.nan, -np.inf
        values[(draw >= 0.25) & (draw < 0.3)] = np.inf
    if trial % 4 == 1:
        values = rng.normal(size=(n, m))
    scores = torch.as_tensor(values if trial % 2 else values.astype(np.float32))
    return scores, SessionBatch(np.arange(n), inputs, lengths, labels)


@pytest.mark.parametrize("exclude_seen", [True, False])
def test_counted_ranks_equal_the_masked_definition(exclude_seen):
    rng = np.random.default_rng(0)
    for trial in range(300):
        scores, batch = random_case(rng, trial)
        got = target_ranks(scores, batch, exclude_seen)
        assert got.dtype == torch.int64
        assert torch.equal(got, reference_ranks(scores, batch, exclude_seen)), trial
