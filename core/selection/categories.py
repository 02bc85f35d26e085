"""Label selected sessions once the LLM has answered (spec 6, the recommended operational definition).

correct    <=> label in the LLM's top-25 (its first 25 listed ids)
similar    <=> correct and label in the student's top-25
effective  <=> correct and label not in the student's top-25
incorrect  <=> label not in the LLM's top-25 (a failed answer, -1 / None / empty list, counts as incorrect)

Used for analysis only: the policy never labels instances; the planned ratio enters it only through k^ef, k^si.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain, compress, repeat
from typing import Sequence

import numpy as np

from core.selection.gains import DEFAULT_RATIOS, normalise_ratios

CATEGORIES: tuple[str, ...] = ("effective", "similar", "incorrect")


@dataclass(frozen=True, eq=False)
class CategoryResult:
    """categories: (n,) object array of 'effective' / 'similar' / 'incorrect'. failed: (n,) bool, the LLM gave
    no usable list. achieved_ratio / planned_ratio: shares per category (each sums to 1; achieved is all-zero
    shares when n = 0). counts: sessions per category."""

    categories: np.ndarray
    failed: np.ndarray
    counts: dict[str, int]
    achieved_ratio: dict[str, float]
    planned_ratio: dict[str, float]


def _is_failed(ranking: object) -> bool:
    if ranking is None:
        return True
    if isinstance(ranking, (int, np.integer)) and not isinstance(ranking, bool):
        if ranking == -1:
            return True
        raise ValueError(f"an LLM ranking must be a list of item ids, or -1 / None for a failed answer; "
                         f"got the integer {ranking}")
    return len(ranking) == 0  # type: ignore[arg-type]


def _llm_hits(llm_rankings: Sequence[object], labels: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """(correct, failed), each (n,) bool: label among the first `top_k` listed ids; no usable answer.

    Vectorised: the lists are read into one int64 array in C and matched against their labels with numpy; only
    answers that are not lists (None, -1) are looked at one by one."""
    if (isinstance(llm_rankings, np.ndarray) and llm_rankings.ndim == 2
            and np.issubdtype(llm_rankings.dtype, np.integer)):
        failed = np.full(len(llm_rankings), llm_rankings.shape[1] == 0)    # a matrix of answers: rows of ids
        label_ids = np.asarray(labels).astype(np.int64)
        return (llm_rankings[:, :top_k] == label_ids[:, None]).any(axis=1) & ~failed, failed
    rankings = list(llm_rankings)
    n = len(rankings)
    listed = np.fromiter(map(hasattr, rankings, repeat("__len__")), dtype=bool, count=n)
    failed = np.zeros(n, dtype=bool)
    for row in np.flatnonzero(~listed):
        failed[row] = _is_failed(rankings[row])
    lists = rankings if listed.all() else list(compress(rankings, listed))
    lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    rows = np.flatnonzero(listed)
    failed[rows[lengths == 0]] = True
    total = int(lengths.sum())
    try:   # int() of each listed id, in C
        values = np.fromiter(chain.from_iterable(lists), dtype=np.int64, count=total)
    except (TypeError, ValueError, OverflowError):   # something past the top_k that is no id: convert the top only
        values = None
    labels = np.asarray(labels)
    label_ids = (labels[rows] if np.issubdtype(labels.dtype, np.integer)
                 else labels.astype(object)[rows]).astype(np.int64)
    correct = np.zeros(n, dtype=bool)
    width = int(lengths[0]) if lengths.size else 0
    if values is not None and width > 0 and (lengths == width).all():   # the usual answer: lists of one length
        correct[rows] = (values.reshape(-1, width)[:, :top_k] == label_ids[:, None]).any(axis=1)
        return correct & ~failed, failed
    owner = np.repeat(np.arange(len(lists)), lengths)
    top = np.arange(total) - (np.cumsum(lengths) - lengths)[owner] < top_k
    ids = (values[top] if values is not None
           else np.fromiter(chain.from_iterable(lists), dtype=object, count=total)[top].astype(np.int64))
    hit_rows = owner[top][ids == label_ids[owner[top]]]
    correct[rows[np.unique(hit_rows)]] = True
    return correct & ~failed, failed


def categorize(llm_rankings: Sequence[Sequence[int] | int | None], labels: Sequence[int],
               student_label_ranks: Sequence[int], *, top_k: int = 25,
               planned_ratios: Sequence[float] = DEFAULT_RATIOS) -> CategoryResult:
    """Categorise n answered sessions.

    llm_rankings: length-n sequence; each a ranked list of item ids (top first), or -1 / None / [] if the LLM
    call or parse failed. labels: (n,) int, the true next item. student_label_ranks: (n,) int, the 0-based rank
    of the label in the student's full ranking (label in student top-k <=> rank < top_k).
    planned_ratios: the (effective, similar, incorrect) ratio the policy assumed, reported beside the achieved one.
    """
    labels_arr = np.asarray(labels)
    ranks = np.asarray(student_label_ranks)
    n = len(llm_rankings)
    if labels_arr.shape != (n,) or ranks.shape != (n,):
        raise ValueError(f"llm_rankings, labels and student_label_ranks must have the same length n={n}; got "
                         f"labels {labels_arr.shape}, student_label_ranks {ranks.shape}")
    if n and (not np.issubdtype(ranks.dtype, np.integer) or ranks.min() < 0):
        raise ValueError("student_label_ranks must be non-negative integers (0-based rank of the label)")
    if not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"top_k must be an integer >= 1, got {top_k!r}")
    planned = normalise_ratios(planned_ratios)
    correct, failed = _llm_hits(llm_rankings, labels_arr, int(top_k))
    student_hit = ranks < top_k
    cats = np.where(~correct, "incorrect", np.where(student_hit, "similar", "effective")).astype(object)
    counts = {c: int((cats == c).sum()) for c in CATEGORIES}
    achieved = {c: (counts[c] / n if n else 0.0) for c in CATEGORIES}
    return CategoryResult(categories=cats, failed=failed, counts=counts, achieved_ratio=achieved,
                          planned_ratio=dict(zip(CATEGORIES, planned)))
