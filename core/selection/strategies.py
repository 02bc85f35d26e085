"""Selection strategies by name (spec 5.6 and 8): alkdrec, random, easiest, hardest, rad-bc.

`select(strategy, session_ids, consistency, tau, ...)` ranks the pool ascending by consistency (hardest first,
ties by session id), lets the strategy pick tau positions, and returns a `Selection` whose DataFrame has one row
per pool session. Strategies are plain functions registered with `@register_strategy(name)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from core.registry import Registry
from core.selection.alkdrec import (
    _check_mode,
    _check_tau,
    max_min_policy,
    rad_bc_policy,
    sample_authors_code,
    sample_paper,
)
from core.selection.difficulty import hardest_first_order
from core.selection.gains import DEFAULT_MU, DEFAULT_RATIOS, Ratios, log_effective_gain, normalise_ratios, validate_mu

FRAME_COLUMNS: tuple[str, ...] = ("session_id", "consistency", "difficulty", "position", "gain", "probability",
                                  "picked", "pick_order")


@dataclass(frozen=True, eq=False)
class StrategyContext:
    """What a strategy sees: the pool in position order (hardest first) and the parameters.

    session_ids: (N,) int64, pool ids by position (index 0 = position 1 = hardest).
    """

    session_ids: np.ndarray
    mu: float
    ratios: Ratios
    seed: int
    mode: str


@dataclass(frozen=True, eq=False)
class Picks:
    """A strategy's answer. order: (tau,) int64 0-based positions in pick order. probability: (N,) float64, the
    first-draw distribution over positions (sums to 1). k_star / support: the policy's, if it has one."""

    order: np.ndarray
    probability: np.ndarray
    k_star: int | None = None
    support: int | None = None


StrategyFn = Callable[[int, StrategyContext], Picks]
STRATEGIES: Registry[StrategyFn] = Registry("strategy")


def register_strategy(name: str, description: str = "") -> Callable[[StrategyFn], StrategyFn]:
    """Decorator: register `fn(tau, ctx) -> Picks` under `name` (ValueError if the name is taken); described by
    `description`, else the first line of its docstring."""
    def deco(fn: StrategyFn) -> StrategyFn:
        return STRATEGIES.register(name, fn, description=description or (fn.__doc__ or "").strip().split("\n")[0])
    return deco


def available_strategies() -> tuple[str, ...]:
    """Registered strategy names, sorted."""
    return tuple(sorted(STRATEGIES.names()))


@dataclass(frozen=True, eq=False)
class Selection:
    """Result of `select`. frame: one row per pool session, sorted by position, columns FRAME_COLUMNS
    (position is 1-based hardest first; gain is g^ef; probability the first-draw probability; pick_order is
    0-based, -1 when not picked). k_star / support: the policy's (alkdrec, rad-bc), else None."""

    strategy: str
    frame: pd.DataFrame
    tau: int
    pool_size: int
    k_star: int | None
    support: int | None
    mu: float
    ratios: Ratios
    seed: int
    mode: str
    params: dict = field(default_factory=dict)

    @property
    def picked_ids(self) -> np.ndarray:
        """(tau,) int64 session ids in pick order."""
        picked = self.frame[self.frame["picked"]].sort_values("pick_order")
        return picked["session_id"].to_numpy(dtype=np.int64)


def _one_hot(n: int, i: int) -> np.ndarray:
    p = np.zeros(n)
    p[i] = 1.0
    return p


def _policy_picks(tau: int, ctx: StrategyContext, policy, rule: str) -> Picks:
    """`paper`: Algorithm 1 on a fixed policy; `authors-code`: the notebook's sequential sampler."""
    n = len(ctx.session_ids)
    pol = policy(n, ctx.mu, ctx.ratios, mode=ctx.mode)
    order = (sample_paper(pol, tau, ctx.seed) if ctx.mode == "paper"
             else sample_authors_code(n, tau, ctx.mu, ctx.ratios, seed=ctx.seed, rule=rule))
    return Picks(order, pol.probabilities, pol.k_star, pol.support)


@register_strategy("alkdrec")
def _alkdrec(tau: int, ctx: StrategyContext) -> Picks:
    """Max-min policy p* over effective/similar/incorrect gains."""
    return _policy_picks(tau, ctx, max_min_policy, "alkdrec")


@register_strategy("rad-bc")
def _rad_bc(tau: int, ctx: StrategyContext) -> Picks:
    """Binary robust active distillation (spec 8): correct share k^ef + k^si, l = g/2."""
    return _policy_picks(tau, ctx, rad_bc_policy, "rad-bc")


@register_strategy("random")
def _random(tau: int, ctx: StrategyContext) -> Picks:
    """Uniform without replacement over the pool taken in session-id order.

    `paper`: `default_rng(seed).choice(N, tau, replace=False)`. `authors-code`: the notebook's sequential
    `DataFrame.sample(1)`, i.e. `RandomState(seed).permutation(m)[0]` on the shrinking id-ordered pool
    (O(tau * N) random numbers)."""
    n = len(ctx.session_ids)
    by_id = np.argsort(ctx.session_ids, kind="stable")
    if ctx.mode == "paper":
        idx = np.random.default_rng(ctx.seed).choice(n, size=tau, replace=False)
    else:
        rs, pool, idx = np.random.RandomState(ctx.seed), list(range(n)), []
        for _ in range(tau):
            idx.append(pool.pop(int(rs.permutation(len(pool))[0])))
    return Picks(by_id[np.asarray(idx, dtype=np.int64)], np.full(n, 1.0 / n))


@register_strategy("easiest")
def _easiest(tau: int, ctx: StrategyContext) -> Picks:
    """The tau highest-consistency sessions, easiest first (last position first)."""
    n = len(ctx.session_ids)
    return Picks(np.arange(n - 1, n - 1 - tau, -1, dtype=np.int64), _one_hot(n, n - 1))


@register_strategy("hardest")
def _hardest(tau: int, ctx: StrategyContext) -> Picks:
    """The tau lowest-consistency sessions, hardest first."""
    n = len(ctx.session_ids)
    return Picks(np.arange(tau, dtype=np.int64), _one_hot(n, 0))


def _check_arrays(session_ids: np.ndarray, consistency: np.ndarray,
                  available: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate select()'s arrays; return (ids int64, consistency float64, pool mask bool), each (n,)."""
    ids, cons = np.asarray(session_ids), np.asarray(consistency)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"session_ids must be a 1-D integer array, got dtype {ids.dtype} shape {ids.shape}")
    if cons.shape != ids.shape or not np.issubdtype(cons.dtype, np.number):
        raise ValueError(f"consistency must be a numeric array of shape {ids.shape}, got {cons.dtype} "
                         f"{cons.shape}")
    if not np.isfinite(cons).all():
        raise ValueError("consistency contains NaN or inf; compute it for every candidate session")
    # ids usually arrive ascending: that proves uniqueness in O(n); sort only otherwise
    sorted_ids = ids if bool(np.all(ids[1:] > ids[:-1])) else np.sort(ids)
    if (sorted_ids[1:] == sorted_ids[:-1]).any():
        raise ValueError("session_ids must be unique (one row per candidate session)")
    mask = np.ones(ids.shape, bool) if available is None else np.asarray(available)
    if mask.shape != ids.shape or mask.dtype != np.bool_:
        raise ValueError(f"available must be a boolean mask of shape {ids.shape}, got {mask.dtype} {mask.shape}")
    return ids.astype(np.int64), cons.astype(np.float64), mask


def _check_seed(seed: int) -> int:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in 0..2**32-1, got {seed!r}")
    return int(seed)


def _frame(ids: np.ndarray, cons: np.ndarray, mu: float, picks: Picks) -> pd.DataFrame:
    """One row per pool session in position order (ids, cons already sorted hardest first)."""
    n = ids.size
    pick_order = np.full(n, -1, dtype=np.int64)
    pick_order[picks.order] = np.arange(picks.order.size)
    return pd.DataFrame({
        "session_id": ids, "consistency": cons, "difficulty": -cons,
        "position": np.arange(1, n + 1, dtype=np.int64), "gain": np.exp(log_effective_gain(n, mu)),
        "probability": picks.probability, "picked": pick_order >= 0, "pick_order": pick_order,
    })


def select(strategy: str, session_ids: np.ndarray, consistency: np.ndarray, tau: int, *, mu: float = DEFAULT_MU,
           ratios: Sequence[float] = DEFAULT_RATIOS, seed: int = 0, mode: str = "paper",
           available: np.ndarray | None = None) -> Selection:
    """Select tau sessions from the pool with a registered strategy.

    session_ids: (n,) int, unique. consistency: (n,) float, c_s (difficulty = -c_s). available: optional (n,)
    bool; the pool is only the rows where it is True (e.g. sessions a replay teacher has an answer for).
    Positions rank the pool ascending by consistency, ties by session id. mode: 'paper' (default) or
    'authors-code'. Deterministic for a given seed. ValueError on bad input or tau > pool size.
    """
    strategy_fn = STRATEGIES.get(strategy)   # UnknownName (a ValueError) naming the known strategies
    ids, cons, mask = _check_arrays(session_ids, consistency, available)
    mu, r, mode, seed = validate_mu(mu), normalise_ratios(ratios), _check_mode(mode), _check_seed(seed)
    pool_ids, pool_cons = ids[mask], cons[mask]
    tau = _check_tau(tau, pool_ids.size, "the pool size" + (" (sessions with available=True)"
                                                            if available is not None else ""))
    order = hardest_first_order(pool_cons, pool_ids)
    pool_ids, pool_cons = pool_ids[order], pool_cons[order]
    picks = strategy_fn(tau, StrategyContext(pool_ids, mu, r, seed, mode))
    params = {"strategy": strategy, "tau": tau, "mu": mu, "ratios": tuple(r), "seed": seed, "mode": mode,
              "pool_size": int(pool_ids.size)}
    return Selection(strategy=strategy, frame=_frame(pool_ids, pool_cons, mu, picks), tau=tau,
                     pool_size=int(pool_ids.size), k_star=picks.k_star, support=picks.support, mu=mu, ratios=r,
                     seed=seed, mode=mode, params=params)
