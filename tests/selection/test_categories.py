"""Effective / similar / incorrect labels (spec 6)."""

from __future__ import annotations

import numpy as np
import pytest

from core.selection.categories import CATEGORIES, categorize


def test_categories_by_hand() -> None:
    top25 = list(range(100, 125))
    rankings = [
        top25,                      # label 100 at LLM rank 1, student rank 3    -> similar
        top25,                      # label 124 at LLM rank 25, student rank 25  -> effective (student misses)
        top25 + [7],                # label 7 is 26th: not in the LLM top-25     -> incorrect
        None,                       # failed call                                -> incorrect
        -1,                         # failed parse                               -> incorrect
        [],                         # empty list                                 -> incorrect
        [5, 5, 6],                  # short list with duplicates, label 6        -> effective
        [8],                        # label 8, student rank 24 (0-based)         -> similar
    ]
    labels = [100, 124, 7, 1, 1, 1, 6, 8]
    ranks = [3, 25, 0, 0, 0, 0, 100, 24]
    res = categorize(rankings, labels, ranks)
    assert res.categories.tolist() == ["similar", "effective", "incorrect", "incorrect", "incorrect", "incorrect",
                                       "effective", "similar"]
    assert res.failed.tolist() == [False, False, False, True, True, True, False, False]
    assert res.counts == {"effective": 2, "similar": 2, "incorrect": 4}
    assert res.achieved_ratio == {"effective": 0.25, "similar": 0.25, "incorrect": 0.5}
    assert res.planned_ratio == pytest.approx({"effective": 0.1, "similar": 0.5, "incorrect": 0.4})
    assert sum(res.achieved_ratio.values()) == pytest.approx(1.0) and tuple(res.counts) == CATEGORIES


def test_top_k_and_planned_ratio_parameters() -> None:
    res = categorize([[1, 2, 3]], [3], [2], top_k=2, planned_ratios=(2, 2, 1))
    assert res.categories.tolist() == ["incorrect"]
    assert res.planned_ratio == pytest.approx({"effective": 0.4, "similar": 0.4, "incorrect": 0.2})
    res = categorize([[1, 2, 3]], np.array([3]), np.array([2]), top_k=3)
    assert res.categories.tolist() == ["similar"]


def test_empty_input() -> None:
    res = categorize([], [], np.array([], dtype=np.int64))
    assert res.categories.size == 0 and res.achieved_ratio == {"effective": 0.0, "similar": 0.0, "incorrect": 0.0}


def test_errors() -> None:
    with pytest.raises(ValueError, match="same length"):
        categorize([[1]], [1, 2], [0])
    with pytest.raises(ValueError, match="student_label_ranks"):
        categorize([[1]], [1], [-1])
    with pytest.raises(ValueError, match="student_label_ranks"):
        categorize([[1]], [1], [0.5])
    with pytest.raises(ValueError, match="-1 / None"):
        categorize([3], [1], [0])
    with pytest.raises(ValueError, match="top_k"):
        categorize([[1]], [1], [0], top_k=0)
    with pytest.raises(ValueError, match="ratios"):
        categorize([[1]], [1], [0], planned_ratios=(0, 0, 0))
