"""Strategy registry and `select` (spec 5.6, 8), plus the difficulty key (spec 5.1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from shared_data import ALKDREC

from core.selection.difficulty import consistency, difficulty, hardest_first_order
from core.selection.strategies import FRAME_COLUMNS, available_strategies, register_strategy, select

STRATEGIES = ("alkdrec", "easiest", "hardest", "rad-bc", "random")
STOCHASTIC = ("alkdrec", "rad-bc", "random")
MODES = ("paper", "authors-code")
DATA = ALKDREC                            # $ALKD_SHARED/data/alkdrec (tests/shared_data.py)


def pool(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.permutation(np.arange(10_000, 10_000 + n)).astype(np.int64)
    return ids, rng.random(n)


def test_registry_lists_all() -> None:
    assert available_strategies() == STRATEGIES
    with pytest.raises(ValueError, match="already registered"):
        register_strategy("random")(lambda tau, ctx: None)  # type: ignore[arg-type, return-value]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("mode", MODES)
def test_frame_shape_and_determinism(strategy: str, mode: str) -> None:
    ids, cons = pool()
    a = select(strategy, ids, cons, 100, seed=5, mode=mode)
    b = select(strategy, ids, cons, 100, seed=5, mode=mode)
    f = a.frame
    assert tuple(f.columns) == FRAME_COLUMNS and len(f) == 2000 and a.pool_size == 2000
    assert f["position"].tolist() == list(range(1, 2001))
    assert (np.diff(f["consistency"]) >= 0).all() and (f["difficulty"] == -f["consistency"]).all()
    assert f["picked"].sum() == 100 and sorted(f.loc[f.picked, "pick_order"]) == list(range(100))
    assert (f.loc[~f.picked, "pick_order"] == -1).all()
    assert f["probability"].sum() == pytest.approx(1.0)
    np.testing.assert_allclose(f["gain"], 1.0 / np.arange(1, 2001, dtype=float) ** 10)
    assert (a.picked_ids == b.picked_ids).all() and len(set(a.picked_ids)) == 100
    assert set(a.picked_ids) <= set(ids.tolist())
    assert a.params == {"strategy": strategy, "tau": 100, "mu": 10.0, "ratios": (0.1, 0.5, 0.4), "seed": 5,
                        "mode": mode, "pool_size": 2000}
    if strategy in STOCHASTIC:
        assert not (select(strategy, ids, cons, 100, seed=6, mode=mode).picked_ids == a.picked_ids).all()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_input_row_order_does_not_matter(strategy: str) -> None:
    ids, cons = pool(500)
    perm = np.random.default_rng(9).permutation(500)
    a = select(strategy, ids, cons, 50, seed=2)
    b = select(strategy, ids[perm], cons[perm], 50, seed=2)
    assert (a.picked_ids == b.picked_ids).all()


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("mode", MODES)
def test_available_restricts_the_pool(strategy: str, mode: str) -> None:
    ids, cons = pool(1000)
    available = np.random.default_rng(3).random(1000) < 0.4
    sel = select(strategy, ids, cons, 60, seed=1, mode=mode, available=available)
    assert sel.pool_size == available.sum() == len(sel.frame)
    assert set(sel.frame["session_id"]) == set(ids[available].tolist())
    assert set(sel.picked_ids) <= set(ids[available].tolist())
    with pytest.raises(ValueError, match="available=True"):
        select(strategy, ids, cons, int(available.sum()) + 1, available=available)


def test_hardest_and_easiest_exact() -> None:
    ids = np.array([5, 3, 9, 1, 7], dtype=np.int64)
    cons = np.array([0.4, 0.1, 0.4, 0.9, 0.2])
    # ascending consistency, ties (0.4) by session id: 3, 7, 5, 9, 1
    assert select("hardest", ids, cons, 3).picked_ids.tolist() == [3, 7, 5]
    assert select("easiest", ids, cons, 3).picked_ids.tolist() == [1, 9, 5]
    assert hardest_first_order(cons, ids).tolist() == [1, 4, 0, 2, 3]


def test_ties_broken_by_session_id() -> None:
    ids = np.array([4, 2, 3, 1, 0], dtype=np.int64)
    sel = select("hardest", ids, np.zeros(5), 2)
    assert sel.frame["session_id"].tolist() == [0, 1, 2, 3, 4] and sel.picked_ids.tolist() == [0, 1]


def test_alkdrec_policy_fields_and_where_it_picks() -> None:
    ids, cons = pool(7393)
    sel = select("alkdrec", ids, cons, 500)
    assert sel.k_star == 6930 and sel.support == 6930
    pos = sel.frame.loc[sel.frame.picked, "position"].to_numpy()
    assert pos.max() <= 6930 and np.quantile(pos / 7393, 0.5) == pytest.approx(0.87, abs=0.02)
    rad = select("rad-bc", ids, cons, 500)
    assert rad.k_star / 7393 == pytest.approx(0.66, abs=5e-3)
    assert select("alkdrec", ids, cons, 10, mode="authors-code").support == 6929
    assert select("random", ids, cons, 10).k_star is None


def test_tau_beyond_support_in_paper_mode() -> None:
    ids, cons = pool(100)
    with pytest.raises(ValueError, match="support"):
        select("alkdrec", ids, cons, 99)
    assert select("alkdrec", ids, cons, 99, mode="authors-code").frame["picked"].sum() == 99


@pytest.mark.parametrize("kwargs, match", [
    ({"strategy": "bogus"}, "unknown strategy"),
    ({"tau": 0}, "tau"),
    ({"tau": 2001}, "pool size"),
    ({"tau": 2.5}, "tau"),
    ({"mode": "notebook"}, "mode"),
    ({"mu": 0}, "mu"),
    ({"ratios": (0, 0, 0)}, "ratios"),
    ({"seed": -1}, "seed"),
    ({"available": np.ones(3, bool)}, "available"),
    ({"available": np.ones(2000)}, "available"),
])
def test_validation_errors(kwargs: dict, match: str) -> None:
    ids, cons = pool()
    args = {"strategy": "alkdrec", "tau": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        select(args.pop("strategy"), ids, cons, args.pop("tau"), **args)


def test_bad_arrays() -> None:
    ids, cons = pool(10)
    with pytest.raises(ValueError, match="unique"):
        select("random", np.zeros(10, dtype=np.int64), cons, 1)
    with pytest.raises(ValueError, match="NaN"):
        select("random", ids, np.full(10, np.nan), 1)
    with pytest.raises(ValueError, match="consistency"):
        select("random", ids, cons[:5], 1)
    with pytest.raises(ValueError, match="session_ids"):
        select("random", ids.astype(float), cons, 1)


# ---------------------------------------------------------------- difficulty (spec 5.1)

def test_consistency_by_hand() -> None:
    u = np.array([[1.0, 0.0], [0.0, 2.0]])
    emb = np.array([[9.0, 9.0], [0.0, 0.0], [1.0, 1.0], [-1.0, 0.5]])  # row 0: item 0 (also the padding id)
    inputs = np.array([[2, 3, 0], [0, 2, 0]], dtype=np.int64)
    lengths = np.array([2, 2])
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    # session 0: u.e2 = 1, u.e3 = -1 -> (sig(1) + sig(-1))/2 = 0.5; its padding slot is ignored
    # session 1: item 0 is a real item here (length 2): u.e0 = 18, u.e2 = 2
    expected = np.array([(sig(1) + sig(-1)) / 2, (sig(18) + sig(2)) / 2])
    np.testing.assert_allclose(consistency(u, emb, inputs, lengths), expected, rtol=1e-12)
    np.testing.assert_allclose(difficulty(u, emb, inputs, lengths), -expected, rtol=1e-12)
    got = consistency(torch.tensor(u, dtype=torch.float32), torch.tensor(emb), torch.tensor(inputs),
                      torch.tensor(lengths), chunk_size=1)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_consistency_errors() -> None:
    u, emb = np.zeros((2, 3)), np.zeros((5, 3))
    inputs, lengths = np.zeros((2, 4), dtype=np.int64), np.array([1, 4])
    with pytest.raises(ValueError, match="lengths"):
        consistency(u, emb, inputs, np.array([0, 4]))
    with pytest.raises(ValueError, match="inputs"):
        consistency(u, emb, np.full((2, 4), 5, dtype=np.int64), lengths)
    with pytest.raises(ValueError, match="item_embeddings"):
        consistency(u, np.zeros((5, 2)), inputs, lengths)
    with pytest.raises(ValueError, match="inputs"):
        consistency(u, emb, inputs.astype(float), lengths)


# ---------------------------------------------------------------- integration: the authors' shipped .base files

@pytest.mark.integration
@pytest.mark.usefixtures("alkdrec_dir")   # skipped without the data, failed when ALKD_REQUIRE_SHARED=1
@pytest.mark.parametrize("dataset, n_train", [("ML", 7393), ("Games", 12054)])
def test_authors_code_random_reproduces_base_file(dataset: str, n_train: int) -> None:
    """Spec 5.8 [V]: the notebook's random strategy (seed 0, sequential DataFrame.sample(1)) gives the first
    500 lines of {ds}_random.base exactly; the consistency key plays no part in it."""
    base = [int(x) for x in (DATA / dataset / f"{dataset}_random.base").read_text().split()[:500]]
    ids = np.arange(n_train, dtype=np.int64)
    sel = select("random", ids, np.random.default_rng(0).random(n_train), 500, seed=0, mode="authors-code")
    assert sel.picked_ids.tolist() == base
