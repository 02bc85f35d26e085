import math

import numpy as np
import pytest
import torch

from core.data.dataset import to_batch
from core.evaluate import (
    detectable_difference,
    evaluate,
    mean_ci,
    mean_std,
    metrics_from_ranks,
    paired_ttest,
    per_session,
    target_ranks,
)


def batch():
    # items 1..5; session 0 saw [1, 2] and wants 3; session 1 saw [4] and wants 1
    return to_batch(np.array([10, 11]), [[1, 2], [4]], np.array([3, 1]), max_len=3)


def scores():
    # column 0 is padding; higher is better
    return torch.tensor([[9.0, 5.0, 4.0, 1.0, 2.0, 3.0],
                         [9.0, 1.0, 1.0, 0.5, 8.0, 1.0]])


def test_ranks_exclude_seen_items_padding_and_break_ties_by_id():
    ranks = target_ranks(scores(), batch())
    # session 0: candidates 3,4,5 (1,2 seen, 0 padding): 5 (3.0) and 4 (2.0) beat 3 (1.0) -> rank 2
    # session 1: candidates 1,2,3,5: item 1 ties with 2 and 5 at 1.0 but has the lowest id -> rank 0
    assert ranks.tolist() == [2, 0]


def test_ranks_can_keep_seen_items():
    assert target_ranks(scores(), batch(), exclude_seen=False).tolist() == [4, 1]


def test_metrics_by_hand():
    metrics = metrics_from_ranks(np.array([0, 2, 7, 30]), ks=(5, 10))
    assert metrics["recall@5"] == pytest.approx(2 / 4)
    assert metrics["recall@10"] == pytest.approx(3 / 4)
    assert metrics["ndcg@5"] == pytest.approx((1 + 1 / math.log2(4)) / 4)
    assert metrics["ndcg@10"] == pytest.approx((1 + 1 / math.log2(4) + 1 / math.log2(9)) / 4)
    assert metrics["mrr@10"] == pytest.approx((1 + 1 / 3 + 1 / 8) / 4)


def test_evaluate_chunks_give_the_same_ranks():
    b = to_batch(np.arange(50), [[i % 7 + 1] for i in range(50)], np.array([(i + 1) % 7 + 1 for i in range(50)]), 2)
    rng = np.random.default_rng(0)
    table = rng.normal(size=(50, 8)).astype(np.float32)

    def score(part):
        return table[part.session_ids]
    assert np.array_equal(evaluate(score, b, chunk=7).ranks, evaluate(score, b, chunk=1000).ranks)


def test_per_session_and_stats():
    ranks = np.array([0, 3, 12])
    assert per_session(ranks, "recall@10").tolist() == [1.0, 1.0, 0.0]
    assert per_session(ranks, "mrr@20").tolist() == pytest.approx([1.0, 0.25, 1 / 13])
    assert mean_std([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert mean_std([4.0]) == (4.0, 0.0)
    test = paired_ttest([0.3, 0.4, 0.5, 0.45], [0.1, 0.2, 0.25, 0.3])
    assert test.p_value < 0.01 and test.mean_difference == pytest.approx(0.2)
    with pytest.raises(ValueError):
        paired_ttest([1.0, 2.0], [1.0])


def test_mean_ci_is_students_t_interval_over_seeds():
    # three seeds 1, 2, 3: mean 2, std 1, t(0.975, 2) = 4.3027 -> half-width 4.3027 / sqrt(3)
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert mean_ci([1.0, 2.0, 3.0], level=0.9)[1] == pytest.approx(2.919986 / math.sqrt(3), rel=1e-6)
    one = mean_ci([0.25])
    assert one[0] == 0.25 and math.isnan(one[1])
    assert math.isnan(mean_ci([])[0])


def test_compat_ndcg_uses_the_authors_set_order():
    # our ids 3, 10, 6 rank first, second, third; the label is 10 (true rank 1 -> ndcg 1/log2(3))
    scores = torch.full((1, 12), -1.0)
    scores[0, 3], scores[0, 10], scores[0, 6] = 0.9, 0.8, 0.7
    b = to_batch(np.array([0]), [[1]], np.array([10]), max_len=2)
    result = evaluate(lambda part: scores, b, ks=(3,), compat=True)
    assert result.metrics["ndcg@3"] == pytest.approx(1 / math.log2(3))
    # the authors' 0-based ids {2, 9, 5} iterate as 9, 2, 5 in a Python set (slots 9 % 8, 2, 5): position 0
    assert result.metrics["compat_ndcg@3"] == pytest.approx(1.0)
    assert "compat_ndcg@3" not in evaluate(lambda part: scores, b, ks=(3,)).metrics


def test_a_nan_scored_label_never_ranks_first():
    # NaN compares False with everything, which read as "nothing beats the label" (rank 0, every metric 1.0); a
    # NaN now counts as the lowest score
    mixed = scores().clone()
    mixed[0, 3] = float("nan")                      # session 0's label
    mixed[1, 1] = float("nan")                      # session 1's label
    ranks = target_ranks(mixed, batch())
    assert ranks.tolist() == [2, 3]                 # behind every scored candidate: 4, 5 / 2, 3, 5
    mixed[0, 3], mixed[0, 5] = 1.0, float("nan")    # a NaN candidate never beats a scored label either
    assert target_ranks(mixed, batch()).tolist()[0] == 1


def test_evaluate_refuses_nan_or_inf_scores_of_real_items():
    from core.evaluate import NonFiniteScores
    b = batch()
    for bad in (float("nan"), float("inf")):
        table = scores().clone()
        table[1, 4] = bad
        with pytest.raises(NonFiniteScores, match="1 of 2 sessions \\(first: session 11\\)"):
            evaluate(lambda part, table=table: table, b)
    table = scores().clone()
    table[:, 0] = float("nan")                      # padding is never a candidate
    table[0, 2] = -float("inf")                     # an item ruled out is allowed
    assert evaluate(lambda part: table, b).ranks.tolist() == [2, 0]


def test_detectable_difference_is_found_with_the_stated_power():
    # hand value: sd(diffs) 1 over 100 pairs -> (t(0.975, 99) + t(0.8, 99)) / 10
    diffs = np.random.default_rng(0).standard_normal(100)
    diffs = (diffs - diffs.mean()) / diffs.std(ddof=1)
    assert detectable_difference(diffs, np.zeros(100)) == pytest.approx((1.984217 + 0.845267) / 10, rel=1e-6)
    assert math.isnan(detectable_difference([1.0], [0.0]))
    # a true difference of that size is found in ~80% of 4,000 simulated paired samples (binomial sd 0.6%)
    from scipy import stats
    mde = detectable_difference(diffs, np.zeros(100))
    samples = np.random.default_rng(1).normal(mde, 1.0, (4000, 100))
    found = (stats.ttest_1samp(samples, 0.0, axis=1).pvalue < 0.05).mean()
    assert found == pytest.approx(0.80, abs=0.02)
