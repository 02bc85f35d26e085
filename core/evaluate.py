"""Full-ranking evaluation: every item is a candidate, no sampled negatives; one held-out target per session.

Metrics from the target's 0-based rank r (K in `ks`): recall@K = HR@K = [r < K]; ndcg@K = [r < K] / log2(r + 2)
(standard NDCG for one relevant item — not the authors' set-order "compat" variant); mrr@K = [r < K] / (r + 1).
Ties are broken by item id (lower id first), so ranks are deterministic. Padding (id 0) is never a candidate; by
default the items of the session's input window are excluded too, as the paper's evaluation does
(`exclude_seen=False` keeps them).

Non-finite scores are a diverged model, never a ranking: `evaluate` raises NonFiniteScores when a real item scores NaN
or +inf, and `target_ranks` ranks a NaN-scored label behind every candidate with a score (a NaN compares False with
everything, which would otherwise read as "nothing beats the label": rank 0 and every metric 1.0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from core.data.dataset import SessionBatch

DEFAULT_KS = (5, 10, 20)
ScoreFn = Callable[[SessionBatch], "np.ndarray | torch.Tensor"]


class NonFiniteScores(ValueError):
    """A model scored real items NaN or +inf (it diverged); the message names how many sessions and the first."""


@dataclass(frozen=True)
class EvalResult:
    """metrics: {'recall@5': .., 'ndcg@10': .., 'mrr@20': ..}; ranks: (n_sessions,) int64 0-based target ranks."""

    metrics: dict[str, float]
    ranks: np.ndarray
    session_ids: np.ndarray
    targets: np.ndarray


def masked_scores(scores: torch.Tensor, batch: SessionBatch, exclude_seen: bool = True) -> torch.Tensor:
    """scores: (n, n_items + 1); a copy with padding (and, if asked, the window items but never the label) at -inf.
    NaN reads as -inf (the lowest score): a NaN never outranks anything."""
    scores = scores.float().clone()
    scores = torch.where(torch.isnan(scores), -torch.inf, scores)
    scores[:, 0] = -torch.inf
    inputs = torch.as_tensor(batch.inputs)
    labels = torch.as_tensor(batch.labels)
    if exclude_seen:
        seen = scores.scatter(1, inputs, -torch.inf)
        # never exclude the label itself, even if it also occurs in the window
        target_score = scores.gather(1, labels[:, None])
        scores = seen.scatter(1, labels[:, None], target_score)
    return scores


def candidate_mask(batch: SessionBatch, n_columns: int, exclude_seen: bool = True) -> torch.Tensor:
    """(n, n_columns) bool: the items a label competes with - every real item, minus the window when exclude_seen,
    and always the label itself."""
    inputs = torch.as_tensor(batch.inputs)
    labels = torch.as_tensor(batch.labels)
    mask = torch.ones(len(labels), n_columns, dtype=torch.bool)
    if exclude_seen:
        mask.scatter_(1, inputs, False)
    mask[:, 0] = False
    mask.scatter_(1, labels[:, None], True)
    return mask


def target_ranks(scores: torch.Tensor, batch: SessionBatch, exclude_seen: bool = True) -> torch.Tensor:
    """scores: (n, n_items + 1) float; returns (n,) int64 0-based rank of each label among its candidates
    (`candidate_mask`). A NaN score counts as the lowest: a NaN-scored label ranks behind every scored candidate.

    rank = #{candidates scoring above the label} + #{candidates tied with it and of a lower id}. Counted on the raw
    scores in two passes over the (n, n_items + 1) matrix, then corrected for the (few) window items a candidate
    set leaves out: the same numbers as counting over `masked_scores` with `candidate_mask`
    (tests/test_evaluate_ranks.py), without copying the matrix (10^5 items: ~8x less CPU)."""
    scores = scores.float()
    device = scores.device
    n = scores.shape[0]
    labels = torch.as_tensor(batch.labels).to(device)
    rows = torch.arange(n, device=device)
    # the label's score as masked_scores leaves it: NaN -> -inf, and the padding column is -inf
    target = torch.nan_to_num(scores[rows, labels], nan=-torch.inf, posinf=torch.inf, neginf=-torch.inf)
    target = torch.where(labels == 0, torch.full_like(target, -torch.inf), target)
    real = scores[:, 1:]
    better = _row_counts(real > target[:, None])                  # NaN > t is False, as -inf > t
    equal = _row_counts(real == target[:, None])
    # the label itself is one of the `equal` (unless it is padding or NaN): other ties are rare, list those rows
    own = ((scores[rows, labels] == target) & (labels != 0)).to(equal.dtype)
    shared = torch.nonzero(equal > own).flatten()
    equal_at = (real[shared] == target[shared, None]).nonzero()
    equal_at[:, 0] = shared[equal_at[:, 0]]
    tied = _count_below_label(equal_at, labels, n)
    lowest = torch.nonzero(target == -torch.inf).flatten()
    if len(lowest):                                                # a NaN reads -inf: it ties with a -inf label
        nan_at = torch.isnan(real[lowest]).nonzero()
        nan_at[:, 0] = lowest[nan_at[:, 0]]
        tied = tied + _count_below_label(nan_at, labels, n)
    if exclude_seen:                                               # take out the window items that were counted
        window = torch.as_tensor(batch.inputs).to(device)
        ordered = window.sort(dim=1).values
        distinct = torch.ones_like(ordered, dtype=torch.bool)
        distinct[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
        left_out = distinct & (ordered != 0) & (ordered != labels[:, None])
        value = torch.nan_to_num(scores.gather(1, ordered), nan=-torch.inf, posinf=torch.inf, neginf=-torch.inf)
        better = better - (left_out & (value > target[:, None])).sum(1)
        tied = tied - (left_out & (value == target[:, None]) & (ordered < labels[:, None])).sum(1)
    return better + tied


def _row_counts(mask: torch.Tensor) -> torch.Tensor:
    """(n,) int64 number of True per row of an (n, m) bool matrix (numpy's count on the CPU: ~4x torch's sum)."""
    if mask.device.type == "cpu":
        return torch.from_numpy(np.count_nonzero(mask.numpy(), axis=1).astype(np.int64))
    return mask.sum(1)


def _count_below_label(positions: torch.Tensor, labels: torch.Tensor, n: int) -> torch.Tensor:
    """positions: (k, 2) (row, column - 1) pairs of `real = scores[:, 1:]`; (n,) int64 count per row of those whose
    item id (column) is below the row's label."""
    row, item = positions[:, 0], positions[:, 1] + 1
    below = row[item < labels[row]]
    return torch.bincount(below, minlength=n).to(torch.int64)


def check_finite(scores: torch.Tensor, batch: SessionBatch) -> None:
    """NonFiniteScores if a real item (column 1..) scores NaN or +inf; -inf (an item ruled out) is allowed."""
    real = scores[:, 1:]
    if bool((real < torch.inf).all()):                             # one pass: False exactly for NaN and +inf
        return
    bad = (torch.isnan(real) | torch.isposinf(real)).any(dim=1)
    rows = torch.nonzero(bad).flatten()
    first = int(batch.session_ids[int(rows[0])])
    kind = "NaN" if bool(torch.isnan(real[rows[0]]).any()) else "+inf"
    raise NonFiniteScores(f"the model scores items {kind} for {len(rows)} of {len(batch)} sessions (first: "
                          f"session {first}): it has diverged, so it has no ranking to evaluate")


def compat_ndcg_sums(scores: torch.Tensor, batch: SessionBatch, ks: Sequence[int]) -> dict[str, float]:
    """Sums over sessions of the ALKDRec authors' "ndcg@K" (spec alkdrec.md §9): the top-K item ids are put in a
    Python set of the authors' 0-based ids, and the label's place in the set's iteration order (hash order, not
    rank) is used as its position in 1/log2(pos + 2). For comparison with the paper's ndcg columns only."""
    top = masked_scores(scores, batch).topk(max(ks), dim=1).indices.numpy() - 1      # authors' ids = ours - 1
    sums = {f"compat_ndcg@{k}": 0.0 for k in ks}
    for row, label in zip(top, batch.labels - 1):
        for k in ks:
            order = list(set(row[:k].tolist()))
            if label in order:
                sums[f"compat_ndcg@{k}"] += 1.0 / np.log2(order.index(label) + 2.0)
    return sums


def metrics_from_ranks(ranks: np.ndarray, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    ranks = np.asarray(ranks)
    out: dict[str, float] = {}
    for k in ks:
        hit = ranks < k
        out[f"recall@{k}"] = float(hit.mean()) if len(ranks) else 0.0
        out[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean()) if len(ranks) else 0.0
    top = max(ks)
    out[f"mrr@{top}"] = float(np.where(ranks < top, 1.0 / (ranks + 1.0), 0.0).mean()) if len(ranks) else 0.0
    return out


def evaluate(score_fn: ScoreFn, batch: SessionBatch, *, ks: Sequence[int] = DEFAULT_KS, exclude_seen: bool = True,
             chunk: int = 2048, compat: bool = False) -> EvalResult:
    """Rank every label among all items. score_fn(batch) -> (len(batch), n_items + 1) scores.
    compat: also report the authors' set-order `compat_ndcg@K` beside the true NDCG.
    NonFiniteScores when a real item scores NaN or +inf (a diverged model has no metrics)."""
    ranks, compat_sums = [], {}
    for start in range(0, len(batch), chunk):
        part = batch.subset(np.arange(start, min(start + chunk, len(batch))))
        scores = torch.as_tensor(score_fn(part))
        check_finite(scores, part)
        ranks.append(target_ranks(scores, part, exclude_seen).cpu().numpy())
        if compat:
            for key, value in compat_ndcg_sums(scores.cpu(), part, ks).items():
                compat_sums[key] = compat_sums.get(key, 0.0) + value
    all_ranks = np.concatenate(ranks) if ranks else np.zeros(0, dtype=np.int64)
    metrics = metrics_from_ranks(all_ranks, ks)
    metrics.update({key: value / max(len(batch), 1) for key, value in compat_sums.items()})
    return EvalResult(metrics, all_ranks.astype(np.int64), batch.session_ids, batch.labels)


def per_session(ranks: np.ndarray, metric: str) -> np.ndarray:
    """Per-session values of one metric ('ndcg@10', 'recall@5', 'mrr@20') from ranks: (n,) float64."""
    name, _, k_text = metric.partition("@")
    k = int(k_text)
    hit = ranks < k
    if name in ("recall", "hr"):
        return hit.astype(np.float64)
    if name == "ndcg":
        return np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)
    if name == "mrr":
        return np.where(hit, 1.0 / (ranks + 1.0), 0.0)
    raise ValueError(f"unknown metric {metric!r}")


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value) across seeds."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its `level` confidence interval across seeds (Student's t, ddof=1): the interval is
    mean ± half. NaN half-width for fewer than two values (one seed has no spread to estimate)."""
    array = np.asarray(values, dtype=np.float64)
    if len(array) == 0:
        return float("nan"), float("nan")
    if len(array) < 2:
        return float(array.mean()), float("nan")
    half = stats.t.ppf(0.5 + level / 2, len(array) - 1) * array.std(ddof=1) / np.sqrt(len(array))
    return float(array.mean()), float(half)


@dataclass(frozen=True)
class TTest:
    statistic: float
    p_value: float
    mean_difference: float
    n: int


def paired_ttest(a: Sequence[float], b: Sequence[float]) -> TTest:
    """Paired two-sided t-test of a against b (same sessions or same seeds, aligned). NaN p when all diffs are 0."""
    a_arr, b_arr = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"paired samples must align: {a_arr.shape} vs {b_arr.shape}")
    result = stats.ttest_rel(a_arr, b_arr)
    return TTest(float(result.statistic), float(result.pvalue), float((a_arr - b_arr).mean()), len(a_arr))


def detectable_difference(a: Sequence[float], b: Sequence[float], alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean difference that the paired two-sided t-test of a against b (at level `alpha`) finds
    with probability `power`, given the observed spread of the differences: (t[1 - alpha/2] + t[power]) * sd(a - b) /
    sqrt(n), Student's t with n - 1 degrees of freedom (the usual approximation of the noncentral t). Same units as
    a and b; NaN for fewer than two pairs. It says whether "not significant" means "no effect" or "too few sessions"."""
    diffs = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if len(diffs) < 2:
        return float("nan")
    dof = len(diffs) - 1
    return float((stats.t.ppf(1 - alpha / 2, dof) + stats.t.ppf(power, dof)) * diffs.std(ddof=1) / np.sqrt(len(diffs)))
