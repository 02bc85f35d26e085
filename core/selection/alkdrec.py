"""The max-min policy of ALKDRec (spec 5.4, Theorems 1-3) and its samplers (spec 5.6, 5.7), in log space.

Positions s = 1..N rank the pool hardest first. With g^si = g^in = g^ef / 2 the two segments are

    segment A (s <= cut = floor(k^si + k^in)):  c_s = 1/(g^si+g^in) = s^mu,        a_s = 1/2
    segment B (s >  cut):                        c_s = 1/(g^ef+g^in) = s^mu / 1.5,  a_s = 2/3

H_k = sum_{s<=k} c_s, G_k = sum_{s<=k} a_s, Gamma(k) = (G_k + k^ef + k^si - N) / H_k, k* = argmax_k Gamma(k) and
p*_s = c_s / H_{k*} for s <= k*, else 0. RAD-BC (spec 8) is the same computation with cut = 0 (every position uses
c_s = s^mu/1.5 and a_s = 2/3) and the correct share k_c = k^ef + k^si.

Everything is computed from L_k = log sum_{s<=k} s^mu (a log-cumulative-sum), so mu = 10 over N = 10^6 neither
overflows nor loses the ordering of Gamma. With segment B: log H_k = logaddexp(L_k + log(2/3), L_cut + log(1/3)).

Modes: `paper` (support s <= k*, the default) and `authors-code` (the notebook's off-by-one support s <= k*-1,
its cut = floor(N (1 - k1)), and its sequential sampler).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from core.selection.gains import (
    DEFAULT_MU,
    DEFAULT_RATIOS,
    Counts,
    Ratios,
    _check_n,
    category_counts,
    normalise_ratios,
    validate_mu,
)

MODES: tuple[str, ...] = ("paper", "authors-code")
RULES: tuple[str, ...] = ("alkdrec", "rad-bc")

_LOG_B = math.log(2.0 / 3.0)       # segment B: c_s = s^mu / 1.5
_LOG_B_REST = math.log(1.0 / 3.0)  # H_k = (2/3) S_k + (1/3) S_cut for k > cut
_A_SHARE = 0.5                     # a_s in segment A: g^si / (g^si + g^in)
_B_SHARE = 2.0 / 3.0               # a_s in segment B: g^ef / (g^ef + g^in)


@dataclass(frozen=True, eq=False)
class PolicyResult:
    """The max-min policy for a pool of n positions (hardest first).

    k_star: 1-based argmax of Gamma (identical in both modes; the authors' 0-based index is k_star - 1).
    support: number of positions with p > 0 (k_star in `paper` mode, k_star - 1 in `authors-code`, at least 1).
    probabilities / log_probabilities: (n,) float64, p*_s (sums to 1; zero / -inf beyond the support).
    gamma: (n,) float64, Gamma(k) for k = 1..n (may underflow to +-0.0 for huge mu*log n; k* is taken in log space).
    log_h, g_cum: (n,) float64, log H_k and G_k. cut: size of segment A (0 for RAD-BC). counts: k^ef, k^si, k^in.
    """

    n: int
    mu: float
    ratios: Ratios
    mode: str
    rule: str
    cut: int
    counts: Counts
    k_star: int
    support: int
    probabilities: np.ndarray
    log_probabilities: np.ndarray
    gamma: np.ndarray
    log_h: np.ndarray
    g_cum: np.ndarray


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES} ('paper' is the default; 'authors-code' reproduces the "
                         f"notebooks), got {mode!r}")
    return mode


def _check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    return rule


def segment_cut(n: int, ratios: Sequence[float] = DEFAULT_RATIOS, *, mode: str = "paper",
                rule: str = "alkdrec") -> int:
    """Size of segment A: floor(k^si + k^in) (paper) or floor(N (1 - k1)) as the notebook writes it; 0 for RAD-BC."""
    n, r = _check_n(n), normalise_ratios(ratios)
    if _check_rule(rule) == "rad-bc":
        return 0
    x = n * (1.0 - r.effective) if _check_mode(mode) == "authors-code" else n * (r.similar + r.incorrect)
    if mode == "paper":  # tolerate float noise such as 0.5 + 0.4 = 0.9000000000000001 falling below an integer
        x += 1e-9 * max(1.0, x)
    return min(n, max(0, int(math.floor(x))))


def _offset(n: int, r: Ratios) -> float:
    """k^ef + k^si - N (the constant in Gamma's numerator); for RAD-BC the same as N (k_c - 1)."""
    return n * (r.effective + r.similar - 1.0)


def _log_prefix(n: int, mu: float) -> np.ndarray:
    """L_k = log sum_{s<=k} s^mu for k = 1..n, (n,) float64, by a log-add-exp accumulation."""
    return np.logaddexp.accumulate(mu * np.log(np.arange(1, n + 1, dtype=np.float64)))


def _log_h(prefix: np.ndarray, lo: int, hi: int, cut: int) -> np.ndarray:
    """log H_k for the 1-based positions k = lo..hi, (hi-lo+1,), given L = `prefix` and segment A size `cut`."""
    out = prefix[lo - 1:hi].copy()
    b = max(lo, cut + 1)
    if b <= hi:
        tail = prefix[b - 1:hi] + _LOG_B
        out[b - lo:] = tail if cut == 0 else np.logaddexp(tail, prefix[cut - 1] + _LOG_B_REST)
    return out


def _g_cum(lo: int, hi: int, cut: int) -> np.ndarray:
    """G_k for the 1-based positions k = lo..hi: k/2 in segment A, then +2/3 per position in segment B."""
    ks = np.arange(lo, hi + 1, dtype=np.float64)
    return np.where(ks <= cut, _A_SHARE * ks, _A_SHARE * cut + _B_SHARE * (ks - cut))


def _first_positive(n: int, cut: int, offset: float) -> int:
    """Smallest k in 1..n with G_k + offset > 0 (G is increasing), or n + 1 if there is none."""
    k = math.floor(-offset / _A_SHARE) + 1
    if k > cut:
        k = max(cut + 1, math.floor(cut - (_A_SHARE * cut + offset) / _B_SHARE) + 1)
    k = min(max(k, 1), n + 1)
    num = lambda j: float(_g_cum(j, j, cut)[0]) + offset  # noqa: E731 - fix float noise at the edge
    while k > 1 and num(k - 1) > 0:
        k -= 1
    while k <= n and num(k) <= 0:
        k += 1
    return k


def _k_star(prefix: np.ndarray, n: int, cut: int, offset: float, log_h: np.ndarray | None = None,
            g_cum: np.ndarray | None = None) -> int:
    """1-based argmax of Gamma(k) over k = 1..n, compared in log space (first maximum on ties). log_h / g_cum:
    log H_k and G_k for k = 1..n when the caller has them already (elementwise the same values, so the same k*)."""
    log_h_of = (lambda lo: _log_h(prefix, lo, n, cut)) if log_h is None else (lambda lo: log_h[lo - 1:n])
    g_cum_of = (lambda lo: _g_cum(lo, n, cut)) if g_cum is None else (lambda lo: g_cum[lo - 1:n])
    k0 = _first_positive(n, cut, offset)
    if k0 <= n:  # some Gamma > 0: maximise log(num) - log H over that suffix
        score = np.log(g_cum_of(k0) + offset) - log_h_of(k0)
        return k0 + int(np.argmax(score))
    num = g_cum_of(1) + offset  # every Gamma <= 0: a zero wins, otherwise the least negative
    if (num == 0).any():
        return 1 + int(np.argmax(num == 0))
    return 1 + int(np.argmin(np.log(-num) - log_h_of(1)))


def _support(k_star: int, mode: str) -> int:
    return k_star if mode == "paper" else max(k_star - 1, 1)


def _log_c(n: int, mu: float, cut: int) -> np.ndarray:
    """log c_s for s = 1..n: mu log s, minus log 1.5 in segment B."""
    ks = np.arange(1, n + 1)
    return mu * np.log(ks.astype(np.float64)) + np.where(ks > cut, _LOG_B, 0.0)


def _policy(n: int, mu: float, ratios: Sequence[float], mode: str, rule: str) -> PolicyResult:
    """Shared body of `max_min_policy` and `rad_bc_policy`."""
    n, mu, r = _check_n(n), validate_mu(mu), normalise_ratios(ratios)
    mode, rule = _check_mode(mode), _check_rule(rule)
    cut = segment_cut(n, r, mode=mode, rule=rule)
    prefix, offset = _log_prefix(n, mu), _offset(n, r)
    log_h, g_cum = _log_h(prefix, 1, n, cut), _g_cum(1, n, cut)
    num = g_cum + offset
    with np.errstate(divide="ignore"):
        gamma = np.sign(num) * np.exp(np.log(np.abs(num)) - log_h)
    k_star = _k_star(prefix, n, cut, offset, log_h, g_cum)
    support = _support(k_star, mode)
    log_p = np.full(n, -np.inf)
    log_p[:support] = _log_c(support, mu, cut) - log_h[support - 1]
    p = np.exp(log_p)
    total = p.sum()
    return PolicyResult(n=n, mu=mu, ratios=r, mode=mode, rule=rule, cut=cut, counts=category_counts(n, r),
                        k_star=k_star, support=support, probabilities=p / total,
                        log_probabilities=log_p - math.log(total), gamma=gamma, log_h=log_h, g_cum=g_cum)


def max_min_policy(n: int, mu: float = DEFAULT_MU, ratios: Sequence[float] = DEFAULT_RATIOS, *,
                   mode: str = "paper") -> PolicyResult:
    """ALKDRec's max-min policy p* over n positions (hardest first), spec 5.4. O(n); ~0.1 s for n = 10^6."""
    return _policy(n, mu, ratios, mode, "alkdrec")


def rad_bc_policy(n: int, mu: float = DEFAULT_MU, ratios: Sequence[float] = DEFAULT_RATIOS, *,
                  mode: str = "paper") -> PolicyResult:
    """RAD-BC's binary policy (spec 8): correct share k_c = k^ef + k^si, incorrect gain l = g/2, cut = 0."""
    return _policy(n, mu, ratios, mode, "rad-bc")


def _check_tau(tau: int, limit: int, what: str) -> int:
    if not isinstance(tau, (int, np.integer)) or isinstance(tau, (bool, np.bool_)) or tau < 1:
        raise ValueError(f"tau (the number of sessions to select) must be an integer >= 1, got {tau!r}")
    if tau > limit:
        raise ValueError(f"tau={tau} exceeds {what} ({limit}); lower tau or enlarge the pool")
    return int(tau)


def sample_paper(policy: PolicyResult, tau: int, seed: int = 0) -> np.ndarray:
    """Algorithm 1: tau distinct positions drawn from the fixed p*, without replacement, in draw order.

    Returns (tau,) int64 0-based positions (0 = hardest). Uses the Gumbel-top-k trick on log p* with
    `numpy.random.default_rng(seed)`: its order has exactly the law of "draw s ~ p*, keep it if new, repeat"
    and it needs no rejection loop and no underflow-prone p. ValueError if tau exceeds the support of p*.
    """
    tau = _check_tau(tau, policy.support, f"the support of p* (k*={policy.k_star}, mode={policy.mode!r}); "
                                          "p* gives zero probability beyond it")
    keys = policy.log_probabilities + np.random.default_rng(seed).gumbel(size=policy.n)
    top = np.argpartition(-keys, tau - 1)[:tau]
    return top[np.argsort(-keys[top], kind="stable")].astype(np.int64)


def _nth_remaining(r: int, removed_sorted: list[int]) -> int:
    """Original index of the r-th (0-based) element still present, given the sorted removed indices."""
    for x in removed_sorted:
        if x <= r:
            r += 1
        else:
            break
    return r


def _inverse_cdf(prefix: np.ndarray, cut: int, support: int, u: float) -> int:
    """0-based index of the first k with H_k / H_support > u (numpy's `cdf.searchsorted(u, 'right')`)."""
    log_h_sup = float(_log_h(prefix, support, support, cut)[0])
    with np.errstate(divide="ignore"):
        target = math.log(u) + log_h_sup if u > 0 else -math.inf
    a_end = min(cut, support)
    i = int(np.searchsorted(prefix[:a_end], target, side="right"))
    if i < a_end:
        return i
    j = int(np.searchsorted(_log_h(prefix, cut + 1, support, cut), target, side="right")) if support > cut else 0
    return min(a_end + j, support - 1)


def sample_authors_code(n: int, tau: int, mu: float = DEFAULT_MU, ratios: Sequence[float] = DEFAULT_RATIOS, *,
                        seed: int = 0, rule: str = "alkdrec") -> np.ndarray:
    """The notebooks' sequential sampler (spec 5.6/5.7): p is recomputed on the shrinking pool at every draw.

    Each draw: pool size m, authors-code cut and k* for m, support k*-1, one uniform from
    `numpy.random.RandomState(seed)` mapped by inverse CDF (as `RandomState.choice(m, 1, p=p, replace=False)`
    does), then that position leaves the pool. Returns (tau,) int64 0-based positions in the initial ordering,
    in draw order. O(tau * n) vectorised work; about 1-2 s for n = 10^6, tau = 500.
    """
    n, mu, r = _check_n(n), validate_mu(mu), normalise_ratios(ratios)
    tau, rule = _check_tau(tau, n, "the pool size n"), _check_rule(rule)
    prefix, rs = _log_prefix(n, mu), np.random.RandomState(seed)
    removed: list[int] = []
    picks = np.empty(tau, dtype=np.int64)
    for j in range(tau):
        m = n - j
        cut = segment_cut(m, r, mode="authors-code", rule=rule)
        support = _support(_k_star(prefix, m, cut, _offset(m, r)), "authors-code")
        idx = _nth_remaining(_inverse_cdf(prefix, cut, support, float(rs.random_sample())), removed)
        picks[j] = idx
        removed.insert(int(np.searchsorted(removed, idx)), idx)
    return picks
