"""Max-min policy p*, k*, Gamma (spec 5.4) and the samplers (spec 5.6), checked against hand computations."""

from __future__ import annotations

import time
from fractions import Fraction as Fr

import numpy as np
import pytest

from core.selection.alkdrec import (
    max_min_policy,
    rad_bc_policy,
    sample_authors_code,
    sample_paper,
    segment_cut,
)
from core.selection.gains import category_counts, gains, normalise_ratios, validate_mu


def as_float(values: list[Fr]) -> np.ndarray:
    return np.array([float(v) for v in values])


# ---------------------------------------------------------------- hand computations, N = 10, ratios 1:5:4
# k_ef = 1, k_si = 5, k_in = 4, so Gamma(k) = (G_k - 4) / H_k and segment A is s <= k_si + k_in = 9.
# Segment A: c_s = s^mu, a_s = 1/2.  Segment B (s = 10): c_s = s^mu / 1.5, a_s = 2/3.

def test_hand_mu1_paper() -> None:
    # mu = 1: c = 1..9, c_10 = 10/1.5 = 20/3.  H_k = k(k+1)/2 for k <= 9, H_10 = 45 + 20/3 = 155/3.
    # G_k = k/2 for k <= 9, G_10 = 9/2 + 2/3 = 31/6.
    gamma = [Fr(-7, 2), Fr(-1), Fr(-5, 12), Fr(-1, 5), Fr(-1, 10), Fr(-1, 21), Fr(-1, 56), Fr(0), Fr(1, 90),
             Fr(7, 310)]
    # Gamma(10) = (31/6 - 4) / (155/3) = 7/310 is the largest, so k* = 10 and p*_s = c_s / (155/3).
    p = [Fr(3 * s, 155) for s in range(1, 10)] + [Fr(20, 155)]
    res = max_min_policy(10, mu=1, ratios=(1, 5, 4))
    assert res.cut == 9 and res.k_star == 10 and res.support == 10
    np.testing.assert_allclose(res.gamma, as_float(gamma), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(res.probabilities, as_float(p), rtol=1e-12)
    np.testing.assert_allclose(res.g_cum, [0.5 * k for k in range(1, 10)] + [31 / 6])
    np.testing.assert_allclose(np.exp(res.log_h), [k * (k + 1) / 2 for k in range(1, 10)] + [155 / 3])


def test_hand_mu1_authors_code_support_is_kstar_minus_one() -> None:
    # Same k* = 10 (0-based 9); the notebook zeroes p from index 9 on, so p_s = s / H_9 = s / 45, s <= 9.
    res = max_min_policy(10, mu=1, ratios=(1, 5, 4), mode="authors-code")
    assert res.k_star == 10 and res.support == 9
    np.testing.assert_allclose(res.probabilities, as_float([Fr(s, 45) for s in range(1, 10)] + [Fr(0)]),
                               rtol=1e-12)


def test_hand_mu2_paper() -> None:
    # mu = 2: H_k = k(k+1)(2k+1)/6 for k <= 9 (H_9 = 285), H_10 = 285 + 100/1.5 = 1055/3.
    # Gamma(8) = 0, Gamma(9) = (9/2 - 4)/285 = 1/570, Gamma(10) = (7/6)/(1055/3) = 7/2110 > 1/570 -> k* = 10.
    res = max_min_policy(10, mu=2)
    assert res.k_star == 10
    assert res.gamma[8] == pytest.approx(1 / 570, rel=1e-12) and res.gamma[9] == pytest.approx(7 / 2110, rel=1e-12)
    p = [Fr(3 * s * s, 1055) for s in range(1, 10)] + [Fr(200, 1055)]
    np.testing.assert_allclose(res.probabilities, as_float(p), rtol=1e-12)


def test_hand_mu10_kstar_below_n() -> None:
    # s^10 for s = 1..10 (integers), H_9 = 4,914,341,925, H_8 = 1,427,557,524.
    w = [1, 1024, 59049, 1048576, 9765625, 60466176, 282475249, 1073741824, 3486784401, 10000000000]
    h9, h8 = 4914341925, 1427557524
    # Gamma(9) = (1/2)/H_9 = 1/9828683850; Gamma(10) = (7/6)/(H_9 + 10^10/1.5) = 7/69486051550 (smaller).
    assert Fr(1, 9828683850) > Fr(7, 69486051550)
    res = max_min_policy(10, mu=10)
    assert res.k_star == 9 and res.support == 9
    assert res.gamma[8] == pytest.approx(1 / 9828683850, rel=1e-12)
    assert res.gamma[9] == pytest.approx(7 / 69486051550, rel=1e-12)
    np.testing.assert_allclose(res.probabilities, as_float([Fr(x, h9) for x in w[:9]] + [Fr(0)]), rtol=1e-12)
    ac = max_min_policy(10, mu=10, mode="authors-code")
    np.testing.assert_allclose(ac.probabilities, as_float([Fr(x, h8) for x in w[:8]] + [Fr(0), Fr(0)]), rtol=1e-12)


def test_hand_rad_bc() -> None:
    # RAD-BC: c_s = 1/(g + g/2) = s^mu / 1.5 and a_s = 2/3 everywhere, k_c = 0.6, Gamma = (2k/3 - 4) / H_k.
    # mu = 1: H_k = k(k+1)/3, Gamma = (2k - 12)/(k(k+1)): k=9: 6/90, k=10: 8/110 (max) -> k* = 10, p_s = s/55.
    r1 = rad_bc_policy(10, mu=1)
    assert r1.cut == 0 and r1.k_star == 10
    assert r1.gamma[8] == pytest.approx(6 / 90) and r1.gamma[9] == pytest.approx(8 / 110)
    np.testing.assert_allclose(r1.probabilities, [s / 55 for s in range(1, 11)], rtol=1e-12)
    # mu = 2: H_k = k(k+1)(2k+1)/9, Gamma = (6k - 36)/(k(k+1)(2k+1)): k=9: 18/1710, k=10: 24/2310 -> k* = 9.
    r2 = rad_bc_policy(10, mu=2)
    assert r2.k_star == 9
    assert r2.gamma[8] == pytest.approx(18 / 1710) and r2.gamma[9] == pytest.approx(24 / 2310)
    np.testing.assert_allclose(r2.probabilities, [s * s / 285 for s in range(1, 10)] + [0.0], rtol=1e-12)


# ---------------------------------------------------------------- a direct float64 reference (safe sizes only)

def direct_policy(n: int, mu: float, ratios: tuple[float, float, float], mode: str = "paper",
                  rad_bc: bool = False) -> tuple[int, np.ndarray, np.ndarray]:
    """Spec 5.7 pseudocode, written out in plain float64 (no logs): (1-based k*, p, Gamma)."""
    r = np.asarray(ratios, float) / sum(ratios)
    s = np.arange(1, n + 1, dtype=np.float64)
    cut = 0 if rad_bc else int(np.floor(n * (1 - r[0]) if mode == "authors-code" else n * (r[1] + r[2]) + 1e-9))
    seg_a = s <= cut
    c = np.where(seg_a, s**mu, s**mu / 1.5)
    a = np.where(seg_a, 0.5, 2 / 3)
    gamma = (np.cumsum(a) + n * (r[0] + r[1] - 1)) / np.cumsum(c)
    k = int(np.argmax(gamma)) + 1
    support = k if mode == "paper" else max(k - 1, 1)
    p = np.where(s <= support, c, 0.0)
    return k, p / p.sum(), gamma


@pytest.mark.parametrize("mode", ["paper", "authors-code"])
@pytest.mark.parametrize("rad_bc", [False, True])
def test_log_space_equals_direct_float64(mode: str, rad_bc: bool) -> None:
    rng = np.random.default_rng(0)
    for _ in range(25):
        n = int(rng.integers(2, 3000))
        mu = float(rng.choice([0.5, 1, 2, 3.7, 10]))
        ratios = tuple(float(x) for x in rng.integers(0, 10, size=3) + np.array([1, 0, 0]))
        k, p, gamma = direct_policy(n, mu, ratios, mode, rad_bc)
        fn = rad_bc_policy if rad_bc else max_min_policy
        res = fn(n, mu, ratios, mode=mode)
        assert res.k_star == k, (n, mu, ratios)
        np.testing.assert_allclose(res.probabilities, p, rtol=1e-9, atol=1e-300)
        # where the numerator G_k + k_ef + k_si - N is exactly 0 in exact arithmetic, both sides hold float
        # noise (~1e-13 / H_k); compare Gamma where the numerator is clearly non-zero
        clear = np.abs(gamma * np.exp(res.log_h)) > 1e-9 * n
        np.testing.assert_allclose(res.gamma[clear], gamma[clear], rtol=1e-9, atol=1e-300)
        assert (np.abs(res.gamma[~clear]) <= 1e-8 * n * np.exp(-res.log_h[~clear])).all()


def test_invariants_on_random_settings() -> None:
    rng = np.random.default_rng(1)
    for _ in range(40):
        n = int(rng.integers(1, 20000))
        mu = float(rng.uniform(0.1, 20))
        ratios = tuple(rng.uniform(0, 5, size=3) + np.array([0.01, 0, 0]))
        for mode in ("paper", "authors-code"):
            res = max_min_policy(n, mu, ratios, mode=mode)
            p = res.probabilities
            assert p.shape == (n,) and p.dtype == np.float64 and np.isfinite(p).all()
            assert p.sum() == pytest.approx(1.0, abs=1e-12)
            assert 1 <= res.k_star <= n and (p[res.support:] == 0).all() and (p[:res.support] > 0).all()
            # p is proportional to c_s: non-decreasing within each segment up to the support ...
            a_end = min(res.cut, res.support)
            assert (np.diff(p[:a_end]) >= 0).all() and (np.diff(p[a_end:res.support]) >= 0).all()
            # ... and at the cut it jumps by ((cut+1)/cut)^mu / 1.5, which is < 1 when mu/cut is small.
            if 0 < res.cut < res.support:
                ratio = p[res.cut] / p[res.cut - 1]
                assert ratio == pytest.approx(((res.cut + 1) / res.cut) ** mu / 1.5, rel=1e-9)


def test_kstar_is_argmax_of_reported_gamma() -> None:
    for n, mu in [(50, 1.0), (500, 3.0), (5000, 10.0)]:
        res = max_min_policy(n, mu)
        assert res.gamma[res.k_star - 1] == res.gamma.max()


def test_huge_pool_no_overflow_and_fast() -> None:
    start = time.perf_counter()
    res = max_min_policy(10**6, mu=10)
    assert time.perf_counter() - start < 1.0
    for arr in (res.probabilities, res.gamma, res.log_h):
        assert np.isfinite(arr).all()
    assert res.probabilities.sum() == pytest.approx(1.0, abs=1e-12)
    assert res.k_star / 10**6 == pytest.approx(0.937, abs=1e-3)
    assert (res.gamma[res.k_star - 1] > 0) and np.isfinite(res.log_probabilities[: res.k_star]).all()
    # ordering is kept even where s^10 / H would underflow a float32: log p strictly increases in segment A
    assert (np.diff(res.log_probabilities[: res.cut]) > 0).all()
    # extreme mu: p* concentrates near k*, still no NaN
    extreme = max_min_policy(10**5, mu=200)
    assert np.isfinite(extreme.probabilities).all() and extreme.probabilities.sum() == pytest.approx(1.0)


# ---------------------------------------------------------------- spec table 5.4 / section 8

def test_spec_table_ml_and_games() -> None:
    ml = max_min_policy(7393, mode="authors-code")
    assert ml.cut == 6653 and ml.k_star - 1 == 6929 and ml.support == 6929  # the notebook's 0-based k*
    assert ml.k_star / 7393 == pytest.approx(0.937, abs=5e-4)
    assert ml.probabilities[ml.cut:].sum() == pytest.approx(0.273, abs=1e-3)  # p mass in segment B
    games = max_min_policy(12054, mode="authors-code")
    assert games.cut == 10848 and games.k_star - 1 == 11299
    assert games.probabilities[games.cut:].sum() == pytest.approx(0.274, abs=1e-3)
    paper = max_min_policy(7393)
    assert paper.k_star == 6930 and paper.support == 6930
    rad = rad_bc_policy(7393)
    assert rad.k_star / 7393 == pytest.approx(0.66, abs=5e-3)


def test_spec_sampled_position_quantiles() -> None:
    # spec 5.4: sampled positions (0-based, relative) have quantiles about 0.751 / 0.870 / 0.925
    res = max_min_policy(7393, mode="authors-code")
    cdf = np.cumsum(res.probabilities)
    q = [int(np.searchsorted(cdf, x)) / 7393 for x in (0.1, 0.5, 0.9)]
    np.testing.assert_allclose(q, [0.751, 0.870, 0.925], atol=2e-3)


# ---------------------------------------------------------------- samplers

def literal_authors_loop(n: int, tau: int, seed: int, mu: float = 10.0, rad_bc: bool = False) -> list[int]:
    """The notebook loop of spec 5.7, with numpy's own RandomState.choice(m, 1, p=p, replace=False)."""
    rs, pool, out = np.random.RandomState(seed), list(range(n)), []
    for _ in range(tau):
        m = len(pool)
        _, p, _ = direct_policy(m, mu, (1, 5, 4), "authors-code", rad_bc)
        out.append(pool.pop(int(rs.choice(m, size=1, p=p, replace=False)[0])))
    return out


@pytest.mark.parametrize("rad_bc", [False, True])
def test_authors_code_sampler_matches_literal_loop(rad_bc: bool) -> None:
    rule = "rad-bc" if rad_bc else "alkdrec"
    for seed in (0, 7):
        got = sample_authors_code(300, 80, seed=seed, rule=rule)
        assert got.tolist() == literal_authors_loop(300, 80, seed, rad_bc=rad_bc)


def test_paper_sampler_deterministic_distinct_within_support() -> None:
    pol = max_min_policy(2000)
    a, b = sample_paper(pol, 300, seed=3), sample_paper(pol, 300, seed=3)
    assert a.dtype == np.int64 and (a == b).all()
    assert len(set(a.tolist())) == 300 and a.max() < pol.support
    assert not (sample_paper(pol, 300, seed=4) == a).all()
    with pytest.raises(ValueError, match="support"):
        sample_paper(pol, pol.support + 1, seed=0)


def test_paper_sampler_follows_p_star() -> None:
    # first pick ~ p*; second pick ~ p* renormalised without the first (draw-and-reject law)
    pol = max_min_policy(10, mu=1)  # p = (3, 6, ..., 27, 20) / 155
    draws = np.array([sample_paper(pol, 2, seed=s) for s in range(6000)])
    freq = np.bincount(draws[:, 0], minlength=10) / len(draws)
    np.testing.assert_allclose(freq, pol.probabilities, atol=0.02)
    p = pol.probabilities
    second_given_9 = draws[draws[:, 0] == 8, 1]  # first = position 9 (p = 27/155)
    expect = np.delete(p, 8) / (1 - p[8])
    got = np.bincount(second_given_9, minlength=10)[np.arange(10) != 8] / len(second_given_9)
    np.testing.assert_allclose(got, expect, atol=0.05)


def test_authors_code_sampler_determinism_and_errors() -> None:
    assert (sample_authors_code(1000, 50, seed=1) == sample_authors_code(1000, 50, seed=1)).all()
    assert len(set(sample_authors_code(100, 100, seed=0).tolist())) == 100  # can exhaust the pool
    with pytest.raises(ValueError, match="tau"):
        sample_authors_code(10, 11)
    with pytest.raises(ValueError, match="rule"):
        sample_authors_code(10, 1, rule="bogus")


# ---------------------------------------------------------------- gains, counts, validation

def test_gains_and_counts() -> None:
    g = gains(4, mu=2)
    np.testing.assert_allclose(g.effective, [1, 1 / 4, 1 / 9, 1 / 16])
    np.testing.assert_allclose(g.similar, g.effective / 2)
    np.testing.assert_allclose(g.incorrect, g.effective / 2)
    assert category_counts(7393) == pytest.approx((739.3, 3696.5, 2957.2))
    assert normalise_ratios((2, 10, 8)) == pytest.approx((0.1, 0.5, 0.4))
    assert segment_cut(7393) == 6653 and segment_cut(7393, mode="authors-code") == 6653
    assert segment_cut(10, (0.1, 0.5, 0.4)) == 9  # 0.5 + 0.4 float noise does not lose a position


@pytest.mark.parametrize("mu", [0, -1, float("nan"), float("inf"), "10", None, True])
def test_bad_mu(mu: object) -> None:
    with pytest.raises(ValueError, match="mu"):
        validate_mu(mu)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mu"):
        max_min_policy(10, mu=mu)  # type: ignore[arg-type]


@pytest.mark.parametrize("ratios", [(0, 0, 0), (1, -5, 4), (1, 5), (1, 5, 4, 1), "154", (1, float("nan"), 4),
                                    (1, "5", 4), None])
def test_bad_ratios(ratios: object) -> None:
    with pytest.raises(ValueError, match="ratios"):
        max_min_policy(10, ratios=ratios)  # type: ignore[arg-type]


def test_bad_n_and_mode() -> None:
    with pytest.raises(ValueError, match="n"):
        max_min_policy(0)
    with pytest.raises(ValueError, match="mode"):
        max_min_policy(10, mode="notebook")


def test_edge_sizes() -> None:
    one = max_min_policy(1)
    assert one.k_star == 1 and one.probabilities.tolist() == [1.0]
    assert max_min_policy(1, mode="authors-code").support == 1  # at least one position, unlike the notebook
    # every session "incorrect": Gamma < 0 everywhere, the least negative wins and p is still a distribution
    allin = max_min_policy(50, mu=2, ratios=(0, 0, 1))
    assert (allin.gamma < 0).all() and allin.probabilities.sum() == pytest.approx(1.0)
