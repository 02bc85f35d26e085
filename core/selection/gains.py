"""Gains and category counts of the max-min policy (spec 5.2 and 5.3).

Positions s = 1..N rank the pool ascending by consistency, so s = 1 is the hardest session.
g^ef_s = 1 / s^mu, g^si_s = g^in_s = g^ef_s / 2. The counts k^ef, k^si, k^in are fractions of the pool size N
given by the normalised ratios (default 1:5:4, i.e. 0.1N, 0.5N, 0.4N).
"""

from __future__ import annotations

import math
from numbers import Real
from typing import NamedTuple, Sequence

import numpy as np

DEFAULT_MU: float = 10.0
DEFAULT_RATIOS: tuple[int, int, int] = (1, 5, 4)


class Ratios(NamedTuple):
    """Normalised shares of effective, similar and incorrect instances (sum to 1)."""

    effective: float
    similar: float
    incorrect: float


class Counts(NamedTuple):
    """k^ef, k^si, k^in as real numbers (fractions of the pool size N, not rounded)."""

    effective: float
    similar: float
    incorrect: float


class Gains(NamedTuple):
    """Per-position gains, each (N,) float64: g^ef, g^si, g^in."""

    effective: np.ndarray
    similar: np.ndarray
    incorrect: np.ndarray


def _is_number(x: object) -> bool:
    return isinstance(x, (Real, np.number)) and not isinstance(x, (bool, np.bool_))


def validate_mu(mu: float) -> float:
    """Return mu as float; ValueError unless mu is a finite number > 0."""
    if not _is_number(mu) or not math.isfinite(float(mu)) or float(mu) <= 0:
        raise ValueError(f"mu must be a finite number > 0 (the gain exponent, paper default 10), got {mu!r}")
    return float(mu)


def normalise_ratios(ratios: Sequence[float]) -> Ratios:
    """Normalise (effective, similar, incorrect) ratios to shares summing to 1.

    ValueError unless `ratios` is three finite non-negative numbers, not all zero (e.g. (1, 5, 4)).
    """
    if isinstance(ratios, (str, bytes)) or not hasattr(ratios, "__len__") or len(ratios) != 3:
        raise ValueError(f"ratios must be three numbers (effective, similar, incorrect), e.g. (1, 5, 4); "
                         f"got {ratios!r}")
    values = list(ratios)
    if not all(_is_number(v) and math.isfinite(float(v)) for v in values):
        raise ValueError(f"ratios must be finite numbers, e.g. (1, 5, 4); got {ratios!r}")
    if any(float(v) < 0 for v in values):
        raise ValueError(f"ratios must be non-negative, e.g. (1, 5, 4); got {ratios!r}")
    total = float(sum(float(v) for v in values))
    if total <= 0:
        raise ValueError(f"ratios must not all be zero, e.g. (1, 5, 4); got {ratios!r}")
    return Ratios(*(float(v) / total for v in values))


def _check_n(n: int) -> int:
    if not isinstance(n, (int, np.integer)) or isinstance(n, (bool, np.bool_)) or n < 1:
        raise ValueError(f"n (the pool size) must be an integer >= 1, got {n!r}")
    return int(n)


def log_effective_gain(n: int, mu: float) -> np.ndarray:
    """log g^ef_s = -mu * log s for s = 1..n; returns (n,) float64 (never overflows)."""
    n, mu = _check_n(n), validate_mu(mu)
    return -mu * np.log(np.arange(1, n + 1, dtype=np.float64))


def gains(n: int, mu: float = DEFAULT_MU) -> Gains:
    """Gains for positions 1..n (hardest first): g^ef = 1/s^mu, g^si = g^in = g^ef/2; each (n,) float64.

    Very small gains underflow to 0.0 (for mu * log n > ~708); use `log_effective_gain` when that matters.
    """
    g = np.exp(log_effective_gain(n, mu))
    return Gains(effective=g, similar=g / 2, incorrect=g / 2)


def category_counts(n: int, ratios: Sequence[float] = DEFAULT_RATIOS) -> Counts:
    """k^ef, k^si, k^in = share * n (unrounded floats) for a pool of n sessions."""
    n, r = _check_n(n), normalise_ratios(ratios)
    return Counts(effective=r.effective * n, similar=r.similar * n, incorrect=r.incorrect * n)
