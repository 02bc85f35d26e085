"""run_pipeline: returns everything and persists nothing; progress at every stage; the replay teacher restricts the
selection to recorded sessions (integration, on ../shared data)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from tiny_data import make_dataset

from core import store
from core.data import catalog
from core.data.dataset import save_dataset
from core.paths import dataset_dir
from core.pipeline import RunConfig, run_pipeline


@pytest.fixture
def tiny_fetched():
    data = make_dataset(n_sessions=100, n_items=20, seed=3)
    save_dataset(data, dataset_dir(data.name))
    return data


def test_pipeline_returns_everything_and_persists_nothing(tiny_fetched):
    events = []
    config = RunConfig(dataset="tiny", method="alkdrec", teacher="simulated", budget=8, hit_rate=1.0,
                       options={"max_epochs": 3})
    result = run_pipeline(config, lambda *event: events.append(event))
    stages = [e[0] for e in events]
    for stage in ("load", "teacher", "student", "difficulty", "select", "candidates", "query", "categories",
                  "distill", "evaluate"):
        assert stage in stages
    assert set(result.timings) >= {"load", "teacher", "student", "difficulty", "select", "query", "distill",
                                   "evaluate"}
    assert result.n_labelled == 8 and len(result.responses) == 8 and len(result.candidates) == 8
    picked = result.selection[result.selection["picked"]]
    assert len(picked) == 8 and picked["category"].notna().all()
    # hit rate 1 with the label among the candidates only when forced: categories are still well defined
    assert set(result.extra["achieved_ratio"]) == {"effective", "similar", "incorrect"}
    assert "ndcg@10" in result.test.metrics
    assert len(result.test.ranks) == (tiny_fetched.sessions["split"] == "test").sum()
    assert store.query("SELECT * FROM runs").empty and store.query("SELECT * FROM metrics").empty


def test_forced_label_reaches_the_candidates(tiny_fetched):
    config = RunConfig(dataset="tiny", method="random", teacher="simulated", budget=6, force_label=True,
                       hit_rate=1.0, options={"max_epochs": 1})
    result = run_pipeline(config)
    labels = tiny_fetched.sessions.set_index("session_id")["label"]
    sent = {r.session_id for r in result.responses}
    assert sent and result.extra["force_label"] is True
    # the candidates stored are the teacher's; the forced label is what the LLM saw (hit rate 1 => in its answer)
    for response in result.responses:
        assert response.ok
        assert int(labels[response.session_id]) in response.ranking


def test_llmd4rec_rounds_share_one_budget(tiny_fetched):
    """budget 8, 2 rounds, a teacher that can be asked again: 4 sessions first, re-asks from what is left, never more
    than 8 calls; n_labelled counts distinct sessions, the calls are counted apart."""
    config = RunConfig(dataset="tiny", method="llmd4rec", teacher="simulated", budget=8, hit_rate=0.0,
                       options={"max_epochs": 2, "rounds": 2})
    result = run_pipeline(config)
    asked = [r for r in result.responses if r.status not in ("skipped", "unavailable")]
    assert result.extra["calls"] == len(asked) <= 8
    assert result.selection["picked"].sum() == 4
    assert result.n_labelled == len({r.session_id for r in result.responses if r.ok}) <= 4
    history = result.extra["distill"]["history"]
    assert result.extra["calls"] == 4 + history[0].get("asked_again", 0)


@pytest.mark.parametrize("teacher, force, options, expected", [
    ("simulated", False, {}, "none"), ("simulated", True, {}, "forced"),
    ("replay", False, {}, "forced"), ("replay", False, {"lists": "in-candidates"}, "filtered")])
def test_label_leak_is_recorded(teacher, force, options, expected):
    from core.pipeline import label_leak
    config = RunConfig(dataset="alkdrec-ml", teacher=teacher, force_label=force, options=options)
    dataset = SimpleNamespace(name="alkdrec-ml")
    assert label_leak(config, dataset, forced_in_prompts=force) == expected


@pytest.mark.parametrize("teacher, dataset, config, expected", [
    ("replay", "alkdrec-ml", {"options": {}}, "forced"),                         # stored before label_leak existed
    ("replay", "alkdrec-games", {"options": {"lists": "in-candidates"}}, "filtered"),
    ("replay", "alkdrec-ml", {"replay_path": "mine.jsonl"}, "none"),
    ("replay", "alkdrec-ml", {"replay_path": "/data/alkdrec"}, "forced"),               # the authors' folder
    ("simulated", "tiny", {"extra": {"force_label": True}}, "forced"),
    ("openai", "tiny", {"extra": {"label_leak": "none"}}, "none")])
def test_stored_label_leak(teacher, dataset, config, expected):
    from core.pipeline import stored_label_leak
    assert stored_label_leak(teacher, dataset, config) == expected


@pytest.mark.integration
def test_replay_selection_is_restricted_to_recorded_sessions(alkdrec_dir, monkeypatch):
    import core.pipeline as pipeline
    from core.models import create
    from core.teachers.providers.replay import ReplayProvider

    data = catalog.fetch("alkdrec-ml", alkdrec_dir)

    def fake_models(dataset, backbone, seed, device, progress, role, pretrain=None):
        import torch
        torch.manual_seed(0)
        dim = 10 if role == "student" else 16
        return SimpleNamespace(model=create(backbone, dataset.n_items, dim, 10), cached=True,
                               config={"backbone": backbone, "dim": dim, "seed": seed})

    monkeypatch.setattr(pipeline, "load_models", fake_models)
    config = RunConfig(dataset="alkdrec-ml", method="alkdrec", teacher="replay", budget=50,
                       options={"max_epochs": 1})
    result = run_pipeline(config)
    records = ReplayProvider.from_alkdrec(alkdrec_dir, "ML").records
    train_ids = data.sessions[data.sessions["split"] == "train"]["session_id"]
    recorded = int(np.isin(train_ids, list(records)).sum())
    assert result.extra["pool_size"] == recorded < len(train_ids)
    assert set(result.selection["session_id"]) <= set(records)
    picked = result.selection[result.selection["picked"]]
    assert len(picked) == 50 and result.n_labelled == 50
    assert result.extra["label_leak"] == "forced"      # the authors made every recorded list with the label forced in
    assert all(r.status in ("ok", "failed") for r in result.responses)


@pytest.mark.integration
def test_authors_code_replay_uses_the_authors_recorded_picks(alkdrec_dir, monkeypatch):
    import core.pipeline as pipeline
    from core.models import create

    catalog.fetch("alkdrec-ml", alkdrec_dir)

    def fake_models(dataset, backbone, seed, device, progress, role, pretrain=None):
        import torch
        torch.manual_seed(0)
        dim = 10 if role == "student" else 16
        return SimpleNamespace(model=create(backbone, dataset.n_items, dim, 10), cached=True,
                               config={"backbone": backbone, "dim": dim, "seed": seed})

    monkeypatch.setattr(pipeline, "load_models", fake_models)
    config = RunConfig(dataset="alkdrec-ml", method="hardest", teacher="replay", budget=40, mode="authors-code",
                       options={"max_epochs": 1})
    result = run_pipeline(config)
    recorded = [int(x) for x in (alkdrec_dir / "ML" / "ML_hardest.base").read_text().split()[:40]]
    picked = result.selection[result.selection["picked"]].sort_values("pick_order")
    assert picked["session_id"].tolist() == recorded
