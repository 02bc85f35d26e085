"""Fixtures for the dashboard tests: a seeded store with a tiny dataset on disk, and an AppTest factory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core import store
from core.data.dataset import save_dataset
from core.paths import dataset_dir, db_path
from dashboard import data
from dashboard.demo_store import seed_store

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


def labels(dataset) -> dict[int, int]:
    """session id -> its true next item."""
    return dict(zip(dataset.sessions["session_id"].astype(int), dataset.sessions["label"].astype(int)))


@pytest.fixture
def seeded(isolated_home: Path, tiny) -> pd.DataFrame:
    """The tiny dataset fetched under ALKD_HOME and a store with group g1: student, random, alkdrec x seeds 0-2."""
    path = save_dataset(tiny, dataset_dir("tiny"))
    store.register_dataset("tiny", "test", path, tiny.stats().as_dict(), tiny.meta)
    pool = tiny.sessions.loc[tiny.sessions["split"] == "train", "session_id"].to_numpy()
    test = tiny.sessions.loc[tiny.sessions["split"] == "test", "session_id"].to_numpy()
    wide = seed_store(db_path(), methods=("student", "random", "alkdrec"), pool=pool, test_sessions=test,
                      budget=8, n_items=tiny.n_items, labels=labels(tiny))
    data.clear_cache()
    return wide


@pytest.fixture
def app():
    def open_page(page: str | None = None) -> AppTest:
        data.clear_cache()
        at = AppTest.from_file(APP, default_timeout=60)
        at.run()
        if page:
            at.switch_page(f"views/{page}.py")
            at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at
    return open_page


@pytest.fixture
def replayed(seeded, tiny, isolated_home: Path) -> Path:
    """The seeded store plus a newer group 'rp' of replay runs (alkdrec, random x seeds 0-1) written as the replay
    teacher writes them: empty call keys, no llm_calls row; their recorded rankings in a JSONL file. Returns it."""
    recorded = isolated_home / "recorded.jsonl"
    pool = tiny.sessions.loc[tiny.sessions["split"] == "train", "session_id"].to_numpy()
    test = tiny.sessions.loc[tiny.sessions["split"] == "test", "session_id"].to_numpy()
    seed_store(db_path(), groups=("rp",), methods=("alkdrec", "random"), seeds=(0, 1), pool=pool, test_sessions=test,
               budget=8, n_items=tiny.n_items, teacher="replay", model="gpt-4-turbo-2024-04-09",
               replay_path=recorded, base_time=pd.Timestamp("2026-02-01", tz="UTC"), labels=labels(tiny))
    data.clear_cache()
    return recorded
