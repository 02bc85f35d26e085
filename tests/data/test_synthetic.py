"""The SYNTHETIC session source (core/data/sources/synthetic.py): seeded, shaped as asked, titled, marked synthetic
wherever it is shown, and with transition structure a first-order model can learn."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from core import store
from core.baselines import make, training_sequences
from core.cli import main
from core.data import catalog
from core.data.errors import DataError
from core.data.sources import all_sources
from core.data.sources.synthetic import (
    DESCRIPTION,
    SyntheticConfig,
    build,
    generate,
    ingest,
)
from core.evaluate import evaluate
from core.paths import dataset_dir


def small(**changes) -> SyntheticConfig:
    return SyntheticConfig(**{"n_sessions": 600, "n_items": 200, "seed": 0, **changes})


def test_the_same_seed_gives_the_same_dataset_and_another_seed_another():
    first, again, other = generate(small()), generate(small()), generate(small(seed=1))
    pd.testing.assert_frame_equal(first.log, again.log)
    pd.testing.assert_frame_equal(first.items, again.items)
    assert not first.log["item_id"].equals(other.log["item_id"])
    built = [build(n_sessions=600, n_items=200, seed=3) for _ in range(2)]
    pd.testing.assert_frame_equal(built[0].sessions, built[1].sessions)


def test_shape_vocabulary_and_titles():
    config = small(n_sessions=2000, n_items=300, max_length=8)
    dataset = ingest(generate(config), config)
    stats = dataset.stats()
    assert dataset.n_items == 300                                           # the whole catalogue, used or not
    assert dataset.items["item_id"].tolist() == list(range(1, 301))
    assert 0.9 * 2000 <= stats.n_sessions <= 2000                           # a few sessions lose repeats
    n = stats.n_sessions
    assert (stats.n_train, stats.n_valid) == (int(0.6 * n), int(0.8 * n) - int(0.6 * n))
    lengths = dataset.sessions["items"].map(len) + 1
    assert lengths.min() >= 2 and lengths.max() <= 8 and 3 < lengths.mean() < 7
    used = np.concatenate([np.concatenate(dataset.sessions["items"].map(np.asarray).to_numpy()),
                           dataset.sessions["label"].to_numpy()])
    assert used.min() >= 1 and used.max() <= 300
    assert all(len(set(seq + [label])) == len(seq) + 1                      # no item twice in one session
               for seq, label in zip(dataset.sessions["items"], dataset.sessions["label"]))
    titles = dataset.titles()[1:]
    assert all(re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+ \([A-Z][a-z]+ \d+\)", title) for title in titles)
    assert (dataset.items["genres"].to_numpy() == [t[t.index("(") + 1:-1] for t in titles]).all()


def test_popularity_is_heavy_tailed():
    generated = generate(small(n_sessions=5000, n_items=1000))
    counts = np.sort(np.bincount(generated.log["item_id"], minlength=1001)[1:])[::-1]
    assert counts[:10].sum() / counts.sum() > 0.1                           # the top 1% of items: > 10% of clicks
    assert (counts == 0).sum() > 0 or counts[-100:].sum() / counts.sum() < 0.05


def test_transitions_are_learnable_a_markov_baseline_beats_popularity():
    config = small(n_sessions=4000, n_items=300)
    dataset = ingest(generate(config), config)
    test = dataset.split("test", max_len=10)
    scores = {name: evaluate(make(name).fit(training_sequences(dataset), dataset.n_items), test).metrics["ndcg@10"]
              for name in ("popular", "transitions")}
    assert scores["transitions"] > 2 * scores["popular"], scores


def test_fetch_marks_the_dataset_synthetic_on_its_card_and_in_the_store(isolated_home):
    result = CliRunner().invoke(main, ["data", "fetch", "synthetic", "-o", "n_sessions=300", "-o", "n_items=40",
                                       "-o", "seed=2"])
    assert result.exit_code == 0, result.output
    card = json.loads((dataset_dir("synthetic") / "meta.json").read_text())
    assert card["name"] == "synthetic" and card["source"] == "synthetic" and card["synthetic"] is True
    assert card["description"] == DESCRIPTION and DESCRIPTION.startswith("SYNTHETIC")
    assert "not real data" in card["origin"] and card["generator"]["n_sessions"] == 300
    assert catalog.load("synthetic").meta["synthetic"] is True
    assert "SYNTHETIC" in all_sources()["synthetic"].description
    meta = json.loads(store.query("SELECT meta FROM datasets WHERE name = 'synthetic'")["meta"].iloc[0])
    assert meta["synthetic"] is True and meta["description"].startswith("SYNTHETIC")


def test_a_name_without_synthetic_is_refused_and_nothing_is_written(isolated_home):
    result = CliRunner().invoke(main, ["data", "fetch", "synthetic", "--name", "shop", "-o", "n_sessions=300",
                                       "-o", "n_items=40"])
    assert result.exit_code != 0 and "does not say the dataset is synthetic" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not dataset_dir("shop").exists()
    ok = CliRunner().invoke(main, ["data", "fetch", "synthetic", "--name", "synthetic-small", "-o", "n_sessions=300",
                                   "-o", "n_items=40"])
    assert ok.exit_code == 0, ok.output


@pytest.mark.parametrize("options, message", [
    ({"dataset_name": "shop"}, "does not say it is synthetic"),
    ({"n_sessions": "many"}, "n_sessions must be an integer"),
    ({"n_items": 1}, "n_items must be at least 2"),
])
def test_bad_options_are_one_line_errors(options, message):
    with pytest.raises(DataError, match=message):
        build(**options)


def test_it_reads_no_files(tmp_path):
    with pytest.raises(DataError, match="reads no files"):
        build(tmp_path)
