"""Distillation weights by hand: ALKDRec's 3/2/1 thresholds in both modes, DLLM2Rec's weights, LLMD4Rec's
score-based weight and the ranks its rank-based weight reads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.distill import position_weight, position_weights
from core.distill.common import ranking_rows
from core.distill.dllm2rec import position_weights_dllm, rd_weights
from core.distill.llmd4rec import adaptive_weight


def test_paper_thresholds_are_one_based_ranks_1_5_15_25():
    weights = position_weights(27, "paper")
    assert weights[:5].tolist() == [3] * 5            # ranks 1-5
    assert weights[5:15].tolist() == [2] * 10         # ranks 6-15
    assert weights[15:25].tolist() == [1] * 10        # ranks 16-25
    assert weights[25:].tolist() == [0, 0]
    assert weights[:25].sum() == 5 * 3 + 10 * 2 + 10 * 1 == 45


def test_authors_code_thresholds_are_zero_based():
    weights = position_weights(27, "authors-code")
    assert weights[:6].tolist() == [3] * 6            # j = 0..5
    assert weights[6:16].tolist() == [2] * 10         # j = 6..15
    assert weights[16:26].tolist() == [1] * 10        # j = 16..25
    assert weights[26] == 0
    assert weights[:25].sum() == 47                   # the notebooks' 47 rows for a 25-item list


def test_unknown_mode_is_an_error():
    with pytest.raises(ValueError):
        position_weight(0, "other")


def test_ranking_rows_weights_and_invalid_ids():
    inputs = np.array([[1, 2, 0], [3, 0, 0]])
    lengths = np.array([2, 1])
    rows = ranking_rows(inputs, lengths, [[4, 99, 5], [6]], lambda j: position_weight(j, "paper"), n_items=10)
    assert rows.targets.tolist() == [4, 5, 6]          # 99 is outside 1..n_items
    assert rows.weights.tolist() == [3.0, 3.0, 3.0]
    assert rows.inputs.tolist() == [[1, 2, 0], [1, 2, 0], [3, 0, 0]]


def test_dllm2rec_weights_by_hand():
    wp = position_weights_dllm(10)
    assert wp[0] == pytest.approx(0.6321, abs=1e-4) and wp[1] == pytest.approx(0.2326, abs=1e-4)
    lists = torch.tensor([[5, 6, 7, 0]])
    valid = lists > 0
    # the student agrees on the third item only
    w = rd_weights(lists, valid, torch.tensor([[7, 9, 8]]))
    raw_p = np.exp(-np.arange(1, 4))
    raw_p /= raw_p.sum()
    expected = 0.3 * raw_p + 0.1 * (np.array([0, 0, 1]) + 1e-8)
    expected /= expected.sum()
    assert w[0, :3].numpy() == pytest.approx(expected, rel=1e-5)
    assert w[0, 3] == 0 and float(w.sum()) == pytest.approx(1.0)


def test_llmd4rec_score_weight_range():
    w = adaptive_weight(torch.tensor([1.0, -5.0, 3.0]), torch.tensor([1.0, 3.0, 3.0]))
    assert w.tolist()[0] == pytest.approx(1.0) and 0 <= w[1] < 0.01 and (w >= 0).all() and (w <= 1).all()
