"""Reference baselines on tiny hand-made data; every expected score below is worked out by hand.

Training sequences (full: inputs + label), oldest first, n_items = 6 (item 6 never occurs):
    s0 = [1, 2, 3]   s1 = [2, 3, 4]   s2 = [1, 4]   s3 = [3, 5, 2]
Popularity: 1:2  2:3  3:3  4:2  5:1  6:0.
Transitions: 1->2, 2->3, 2->3, 3->4, 1->4, 3->5, 5->2, so T[1] = {2:1, 4:1}, T[2] = {3:2}, T[3] = {4:1, 5:1},
T[5] = {2:1}, T[4] = {}.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.baselines import BASELINES, SKNN, VSKNN, Popular, Transitions, available, make, training_sequences
from core.data.dataset import SessionBatch, SessionDataset, to_batch
from core.evaluate import evaluate

N_ITEMS = 6
TRAIN = [[1, 2, 3], [2, 3, 4], [1, 4], [3, 5, 2]]
INF = -np.inf
R6 = math.sqrt(6.0)


def batch(*windows: list[int], labels: list[int] | None = None, max_len: int = 4) -> SessionBatch:
    labels = labels if labels is not None else [6] * len(windows)
    return to_batch(np.arange(len(windows)), list(windows), np.asarray(labels), max_len)


def tiny_dataset() -> SessionDataset:
    items = pd.DataFrame({"item_id": np.arange(1, N_ITEMS + 1), "raw_id": [f"r{i}" for i in range(1, N_ITEMS + 1)],
                          "title": [f"item {i}" for i in range(1, N_ITEMS + 1)]})
    rows = [(0, [1, 2], 3, "train"), (1, [5, 6], 1, "valid"), (2, [2, 3], 4, "train"), (3, [1], 4, "train"),
            (4, [4, 4], 2, "test"), (5, [3, 5], 2, "train")]
    sessions = pd.DataFrame(rows, columns=["session_id", "items", "label", "split"])
    return SessionDataset("tiny", "test", items, sessions)


def fitted(model):
    return model.fit(TRAIN, N_ITEMS)


# --- helper and registry ----------------------------------------------------------------------------------------

def test_training_sequences_are_train_split_inputs_plus_label_in_order():
    seqs = training_sequences(tiny_dataset())
    assert [s.tolist() for s in seqs] == TRAIN
    assert all(s.dtype == np.int64 for s in seqs)


def test_fit_accepts_dataset_sequences_or_batch_alike():
    ds = tiny_dataset()
    query = batch([1, 3], [4])
    expected = fitted(SKNN()).score(query)
    np.testing.assert_array_equal(SKNN().fit(ds, N_ITEMS).score(query), expected)
    full = to_batch(np.arange(4), [s[:-1] for s in TRAIN], np.asarray([s[-1] for s in TRAIN]), 5)
    np.testing.assert_array_equal(SKNN().fit(full, N_ITEMS).score(query), expected)


def test_registry():
    assert available() == ["popular", "transitions", "sknn", "vsknn"]
    assert set(BASELINES) == set(available())
    model = make("vsknn", k=7, sample_size=9, similarity="cosine")
    assert isinstance(model, VSKNN) and (model.k, model.sample_size, model.similarity) == (7, 9, "cosine")
    assert "k=7" in repr(model)
    with pytest.raises(KeyError, match="unknown baseline"):
        make("gru4rec")
    with pytest.raises(ValueError):
        make("vsknn", weighting="exp")


def test_errors_unfitted_and_out_of_range_ids():
    with pytest.raises(RuntimeError, match="not fitted"):
        Popular().score(batch([1]))
    with pytest.raises(ValueError, match="outside 1..6"):
        Popular().fit([[1, 7]], N_ITEMS)
    with pytest.raises(ValueError, match="outside 1..6"):
        fitted(SKNN()).score(batch([1, 9]))
    with pytest.raises(ValueError, match="outside"):
        fitted(Transitions()).score(batch([9]))


@pytest.mark.parametrize("name", ["popular", "transitions", "sknn", "vsknn"])
def test_output_contract(name):
    query = batch([1, 3], [4], [2, 5, 6, 1])
    scores = make(name).fit(TRAIN, N_ITEMS).score(query)
    assert scores.shape == (3, N_ITEMS + 1) and scores.dtype == np.float32
    assert np.all(scores[:, 0] == INF) and np.all(np.isfinite(scores[:, 1:]))


# --- most popular -------------------------------------------------------------------------------------------------

def test_popular_counts():
    scores = fitted(Popular()).score(batch([1, 3], [4]))
    np.testing.assert_array_equal(scores, [[INF, 2, 3, 3, 2, 1, 0]] * 2)


def test_popular_ranks_through_evaluate():
    # Label 4 (count 2): items 2, 3 (count 3) rank above; 1 ties (count 2) and wins on the lower id -> rank 3;
    # with exclude_seen and window [1] -> 1 drops out -> rank 2.
    query = batch([1], [5], labels=[4, 4])
    result = evaluate(fitted(Popular()), query, ks=(1, 3))
    assert result.ranks.tolist() == [2, 3]


# --- last-item transitions ----------------------------------------------------------------------------------------

def test_transitions_counts_plus_popularity_tie_break():
    # tie-break = popularity / (max popularity + 1) = popularity / 4 -> [0, .5, .75, .75, .5, .25, 0]
    scores = fitted(Transitions()).score(batch([1, 3], [2], [5], [4]))
    np.testing.assert_allclose(scores, [
        [INF, 0.5, 0.75, 0.75, 1.5, 1.25, 0.0],    # last item 3: 4 and 5 once each
        [INF, 0.5, 0.75, 2.75, 0.5, 0.25, 0.0],    # last item 2: 3 twice
        [INF, 0.5, 1.75, 0.75, 0.5, 0.25, 0.0],    # last item 5: 2 once
        [INF, 0.5, 0.75, 0.75, 0.5, 0.25, 0.0],    # last item 4: never followed -> popularity
    ], rtol=1e-6)


def test_transitions_without_tie_break_and_rank_order():
    model = Transitions(tie_break=False).fit(TRAIN, N_ITEMS)
    np.testing.assert_array_equal(model.score(batch([3, 1])), [[INF, 0, 1, 0, 1, 0, 0]])
    # with the tie-break, last item 1: 2 (1 + .75) before 4 (1 + .5), then 3 (.75), then 5 (.25), then 6
    ranking = np.argsort(-fitted(Transitions()).score(batch([3, 1]))[0, 1:], kind="stable") + 1
    assert ranking.tolist() == [2, 4, 3, 1, 5, 6]


# --- SKNN -------------------------------------------------------------------------------------------------------
# Current window [1, 3], |s| = 2. Every training session shares an item:
#   s0 {1,2,3}: 2 / sqrt(2*3) = 2/√6 ≈ .816   s1 {2,3,4}: 1/√6 ≈ .408   s2 {1,4}: 1 / sqrt(2*2) = .5
#   s3 {2,3,5}: 1/√6 ≈ .408

def test_sknn_cosine_neighbour_sums_all_neighbours():
    scores = SKNN(fallback=None).fit(TRAIN, N_ITEMS).score(batch([1, 3]))
    expected = [INF, 2 / R6 + 0.5, 4 / R6, 4 / R6, 1 / R6 + 0.5, 1 / R6, 0.0]
    np.testing.assert_allclose(scores[0], expected, rtol=1e-6)


def test_sknn_top_k_and_recency_ties():
    # k=2: s0 (.816) and s2 (.5)
    scores = SKNN(k=2, fallback=None).fit(TRAIN, N_ITEMS).score(batch([1, 3]))
    np.testing.assert_allclose(scores[0], [INF, 2 / R6 + 0.5, 2 / R6, 2 / R6, 0.5, 0.0, 0.0], rtol=1e-6)
    # k=3: s1 and s3 tie at 1/√6; the more recent s3 wins -> item 5 gets 1/√6, item 4 only s2's .5
    scores = SKNN(k=3, fallback=None).fit(TRAIN, N_ITEMS).score(batch([1, 3]))
    np.testing.assert_allclose(scores[0], [INF, 2 / R6 + 0.5, 3 / R6, 3 / R6, 0.5, 1 / R6, 0.0], rtol=1e-6)
    neighbours = SKNN(k=3).fit(TRAIN, N_ITEMS).neighbours(batch([1, 3]))
    assert sorted(neighbours.indices.tolist()) == [0, 2, 3]


def test_sknn_samples_most_recent_candidates():
    # sample_size=2: only the 2 most recent candidates s3, s2
    scores = SKNN(sample_size=2, fallback=None).fit(TRAIN, N_ITEMS).score(batch([1, 3]))
    np.testing.assert_allclose(scores[0], [INF, 0.5, 1 / R6, 1 / R6, 0.5, 1 / R6, 0.0], rtol=1e-6)


def test_sknn_popularity_fallback_below_every_neighbour_item():
    # k=2 leaves 5 and 6 without support: popularity/4 - 1 -> 5: -.75, 6: -1
    scores = SKNN(k=2).fit(TRAIN, N_ITEMS).score(batch([1, 3], [6]))
    np.testing.assert_allclose(scores[0], [INF, 2 / R6 + 0.5, 2 / R6, 2 / R6, 0.5, -0.75, -1.0], rtol=1e-6)
    # window [6]: no training session contains 6 -> pure popularity order
    np.testing.assert_allclose(scores[1], [INF, -0.5, -0.25, -0.25, -0.5, -0.75, -1.0], rtol=1e-6)


def test_sknn_duplicates_and_padding_in_window():
    model = SKNN(fallback=None).fit(TRAIN, N_ITEMS)
    np.testing.assert_allclose(model.score(batch([3, 1, 3], max_len=5)), model.score(batch([1, 3])), rtol=1e-6)


# --- V-SKNN -----------------------------------------------------------------------------------------------------
# Window [1, 3], L = 2, weights ("div") 1: 1/2, 3: 1. Similarity "dot" = w·1_n / 2:
#   s0: (.5 + 1)/2 = .75   s1: 1/2 = .5   s2: .5/2 = .25   s3: 1/2 = .5

def test_vsknn_dot_all_neighbours():
    scores = VSKNN(fallback=None).fit(TRAIN, N_ITEMS).score(batch([1, 3]))
    np.testing.assert_allclose(scores[0], [INF, 1.0, 1.75, 1.75, 0.75, 0.5, 0.0], rtol=1e-6)


def test_vsknn_weighting_changes_the_neighbours():
    # k=2: s0 (.75), then s1/s3 tie at .5 -> s3 (more recent). Unweighted SKNN with k=2 picks s0 and s2 instead.
    scores = VSKNN(k=2, fallback=None).fit(TRAIN, N_ITEMS).score(batch([1, 3]))
    np.testing.assert_allclose(scores[0], [INF, 0.75, 1.25, 1.25, 0.0, 0.5, 0.0], rtol=1e-6)
    # order matters: window [3, 1] weighs 3: 1/2, 1: 1 -> s0 .75, s2 .5, s1 .25, s3 .25 -> k=2 picks s0, s2
    scores = VSKNN(k=2, fallback=None).fit(TRAIN, N_ITEMS).score(batch([3, 1]))
    np.testing.assert_allclose(scores[0], [INF, 1.25, 0.75, 0.75, 0.5, 0.0, 0.0], rtol=1e-6)


def test_vsknn_repeated_item_keeps_latest_weight():
    # window [3, 1, 3]: L = 3, 3 weighs max(1/3, 3/3) = 1, 1 weighs 2/3; dot divides by 2 distinct items:
    # s0 (1 + 2/3)/2 = 5/6, s1 1/2, s2 (2/3)/2 = 1/3, s3 1/2
    neighbours = VSKNN(fallback=None).fit(TRAIN, N_ITEMS).neighbours(batch([3, 1, 3], max_len=5)).toarray()
    np.testing.assert_allclose(neighbours[0], [5 / 6, 0.5, 1 / 3, 0.5], rtol=1e-6)


def test_vsknn_cosine_and_linear_weighting():
    # cosine: ||w|| = sqrt(1.25); s0 1.5/(√1.25 √3), s1 1/(√1.25 √3), s2 .5/(√1.25 √2), s3 1/(√1.25 √3)
    n = math.sqrt(1.25)
    neighbours = VSKNN(similarity="cosine").fit(TRAIN, N_ITEMS).neighbours(batch([1, 3])).toarray()
    np.testing.assert_allclose(neighbours[0], [1.5 / (n * math.sqrt(3)), 1 / (n * math.sqrt(3)),
                                               0.5 / (n * math.sqrt(2)), 1 / (n * math.sqrt(3))], rtol=1e-6)
    # linear: 1 - 0.1 (L - p) -> 1: .9, 3: 1; dot / 2: s0 .95, s1 .5, s2 .45, s3 .5
    neighbours = VSKNN(weighting="linear").fit(TRAIN, N_ITEMS).neighbours(batch([1, 3])).toarray()
    np.testing.assert_allclose(neighbours[0], [0.95, 0.5, 0.45, 0.5], rtol=1e-6)


# --- vectorised == a plain loop on random data ---------------------------------------------------------------------

def loop_knn(train, window, n_items, k, sample_size, weighted):
    size = len(window)
    weights = {}
    for position, item in enumerate(window, start=1):
        weights[item] = position / size if weighted else 1.0
    candidates = [i for i, seq in enumerate(train) if set(seq) & set(weights)]
    candidates = sorted(candidates, reverse=True)[:sample_size]
    sims = []
    for i in candidates:
        items = set(train[i])
        shared = sum(weights[x] for x in items if x in weights)
        sim = shared / len(weights) if weighted else shared / math.sqrt(len(weights) * len(items))
        sims.append((sim, i))
    sims.sort(key=lambda t: (-round(t[0], 12), -t[1]))
    scores = np.zeros(n_items + 1)
    for sim, i in sims[:k]:
        for item in set(train[i]):
            scores[item] += sim
    return scores


@pytest.mark.parametrize("cls,weighted", [(SKNN, False), (VSKNN, True)])
def test_vectorised_matches_loop(cls, weighted):
    rng = np.random.default_rng(0)
    n_items = 40
    train = [rng.choice(np.arange(1, n_items + 1), size=rng.integers(2, 8), replace=False).tolist()
             for _ in range(150)]
    windows = [rng.choice(np.arange(1, n_items + 1), size=rng.integers(1, 6), replace=False).tolist()
               for _ in range(30)]
    query = to_batch(np.arange(30), windows, np.ones(30, dtype=np.int64), 5)
    for k, sample_size in [(5, 20), (10, 1000), (1000, 7)]:
        got = cls(k=k, sample_size=sample_size, fallback=None).fit(train, n_items).score(query)
        want = np.stack([loop_knn(train, w, n_items, k, sample_size, weighted) for w in windows])
        np.testing.assert_allclose(got[:, 1:], want[:, 1:], rtol=1e-5, atol=1e-6)
