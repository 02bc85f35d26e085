"""Model files: every backbone round-trips exactly, bad files are refused by name, recommendations are sane; run ids
never name a path outside data/models; checkpoints (core.train) share the atomic writer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.model_files import load_model, model_path, recommend, save_model
from core.models import backbone_names, create


@pytest.mark.parametrize("backbone", backbone_names())
def test_every_backbone_round_trips_to_the_same_scores(backbone):
    torch.manual_seed(0)
    model = create(backbone, 30, 6, 5).eval()
    path = save_model(model, model_path(f"run-{backbone}"), {"run_id": f"run-{backbone}", "dataset": "tiny"})
    loaded, meta = load_model(path)
    inputs, lengths = torch.tensor([[3, 7, 9, 0, 0], [1, 2, 3, 4, 5]]), torch.tensor([3, 5])
    with torch.no_grad():
        assert torch.allclose(model.score(inputs, lengths), loaded.score(inputs, lengths))
    assert meta == {"run_id": f"run-{backbone}", "dataset": "tiny"} and not loaded.training
    assert not path.with_suffix(".partial").exists()


def test_recommend_ranks_unseen_items_best_first():
    model = create("fpmc", 30, 6, 5).eval()
    ids, scores = recommend(model, [3, 7, 9], k=10)
    assert len(ids) == 10 and not {0, 3, 7, 9} & set(ids.tolist())
    assert np.all(np.diff(scores) <= 0)
    with torch.no_grad():
        full = model.score(torch.tensor([[3, 7, 9, 0, 0]]), torch.tensor([3]))[0]
    full[[0, 3, 7, 9]] = -torch.inf
    assert ids[0] == int(full.argmax())
    rest, _ = recommend(model, list(range(1, 28)), k=10)   # the whole session is excluded, not just the window
    assert sorted(rest.tolist()) == [28, 29, 30]
    assert recommend(model, [3], k=5, exclude_seen=False)[0].shape == (5,)


def test_bad_inputs_are_named(tmp_path):
    model = create("fpmc", 30, 6, 5)
    with pytest.raises(ValueError, match=r"outside this model's catalogue 1..30"):
        recommend(model, [3, 31])
    with pytest.raises(ValueError, match="at least one item"):
        recommend(model, [])
    with pytest.raises(FileNotFoundError, match="no such model file"):
        load_model(tmp_path / "missing.pt")
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match=r"other.pt: not an alkd model file"):
        load_model(other)


def test_a_run_id_that_is_not_a_plain_name_is_refused(isolated_home):
    from core.data.errors import DataError
    for bad in ("../x", "../../checkpoints/tiny", "/tmp/x", "", ".hidden", "a\\b\nc"):
        with pytest.raises(DataError, match="a run id may use letters"):
            model_path(bad)
    assert model_path("run-tiny-fpmc-s0-1a2b3c") == isolated_home / "models" / "run-tiny-fpmc-s0-1a2b3c.pt"


def test_concurrent_trainings_of_one_configuration_never_share_a_temporary_file(tiny, monkeypatch):
    from core import train as training
    config = training.TrainConfig(backbone="fpmc", dim=4, max_epochs=1, batch_size=32)
    real_save, written = torch.save, []

    def save(payload, target, *args, **kwargs):
        real_save(payload, target, *args, **kwargs)
        written.append(str(target))
        if len(written) == 1:   # a second training of the same configuration finishes while the first saves
            training.train(tiny, config, device="cpu", use_cache=False)

    monkeypatch.setattr(torch, "save", save)
    first = training.train(tiny, config, device="cpu", use_cache=False)
    assert len(written) == 2 and written[0] != written[1]
    assert [p.name for p in first.checkpoint.parent.iterdir()] == [first.checkpoint.name]
    cached = training.train(tiny, config, device="cpu")
    assert cached.cached and cached.best_epoch == first.best_epoch
