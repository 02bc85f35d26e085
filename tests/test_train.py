import numpy as np
import pytest
import torch

from core.evaluate import evaluate
from core.models import create
from core.models.registry import MODELS, backbone_names
from core.train import GENERAL_DEFAULTS, TrainConfig, fit, model_scorer, resolve_device, train, training_instances


def test_training_instances_with_and_without_prefixes(tiny):
    plain = training_instances(tiny, max_len=5, augment_prefixes=False)
    augmented = training_instances(tiny, max_len=5, augment_prefixes=True)
    train = tiny.sessions[tiny.sessions["split"] == "train"]
    assert len(plain) == len(train)
    assert len(augmented) == int(train["items"].map(len).sum())
    assert plain.targets.tolist() == train["label"].tolist()
    assert (augmented.lengths >= 1).all() and (augmented.lengths <= 5).all()


def test_train_learns_transitions_is_deterministic_and_cached(tiny):
    config = TrainConfig(backbone="fpmc", dim=8, seed=3, lr=0.05, batch_size=16, max_epochs=30, patience=30)
    first = train(tiny, config, device="cpu")
    assert not first.cached and first.checkpoint.exists()
    test = evaluate(model_scorer(first.model, resolve_device("cpu")), tiny.split("test"))
    assert test.metrics["recall@5"] >= 0.9          # i -> i+1 is learnable, random would be ~5/12
    again = train(tiny, config, device="cpu", use_cache=False)
    assert np.array_equal(again.valid.ranks, first.valid.ranks)
    cached = train(tiny, config, device="cpu")
    assert cached.cached and cached.best_epoch == first.best_epoch
    assert np.array_equal(cached.valid.ranks, first.valid.ranks)
    assert list(first.curve.columns) == ["epoch", "step", "train_loss", "valid_metric", "valid_value", "seconds"]


def test_config_is_validated():
    with pytest.raises(ValueError):
        TrainConfig(dim=0)
    with pytest.raises(ValueError):
        TrainConfig(loss="hinge")
    with pytest.raises(ValueError):
        TrainConfig(learning_rate=0.1)


def test_unset_settings_come_from_the_backbone_then_the_general_defaults():
    fpmc = TrainConfig(backbone="fpmc")
    assert fpmc.model_dump(include=set(GENERAL_DEFAULTS)) == MODELS["fpmc"].train_defaults != GENERAL_DEFAULTS
    assert TrainConfig(backbone="stamp").model_dump(include=set(GENERAL_DEFAULTS)) == GENERAL_DEFAULTS
    assert TrainConfig(backbone="fpmc", lr=0.5, patience=1).model_dump(include={"lr", "patience", "loss"}) == {
        "lr": 0.5, "patience": 1, "loss": "bpr-inbatch"}
    # a resolved config round-trips unchanged (checkpoints store the resolved values)
    assert TrainConfig(**fpmc.model_dump()) == fpmc


@pytest.mark.parametrize("backbone", backbone_names())
def test_backbone_train_defaults_are_valid_settings(backbone):
    tuned = MODELS[backbone].train_defaults
    assert set(tuned) <= set(GENERAL_DEFAULTS), f"{backbone}: train_defaults may only set {sorted(GENERAL_DEFAULTS)}"
    TrainConfig(backbone=backbone, **tuned)      # the values pass TrainConfig's own validation


def test_cuda_request_without_cuda_is_a_clear_error():
    import torch
    if torch.cuda.is_available():
        pytest.skip("has CUDA")
    with pytest.raises(RuntimeError, match="no CUDA"):
        resolve_device("cuda")


def test_fit_validates_every_n_steps_when_asked(tiny):
    config = TrainConfig(backbone="fpmc", dim=8, seed=1, lr=0.05, batch_size=16, max_epochs=4, patience=100)
    rows = training_instances(tiny, max_len=5, augment_prefixes=True)
    steps_per_epoch = -(-len(rows) // 16)
    valid = tiny.split("valid", 5)
    device = resolve_device("cpu")

    def run(check_every):
        torch.manual_seed(0)
        model = create("fpmc", tiny.n_items, 8, 5)
        return fit(model, rows, valid, config, device, check_every=check_every)

    per_epoch, every_epoch_in_steps, every_3 = run(None), run(steps_per_epoch), run(3)
    assert per_epoch[0]["step"].tolist() == [i * steps_per_epoch for i in range(5)]
    # the same schedule expressed in steps trains and validates exactly the same
    assert per_epoch[0]["valid_value"].tolist() == every_epoch_in_steps[0]["valid_value"].tolist()
    steps = every_3[0]["step"].tolist()
    assert steps[-1] == 4 * steps_per_epoch                       # still at most max_epochs passes
    assert all(b - a == 3 for a, b in zip(steps[:-2], steps[1:-1])) and len(steps) == 1 + -(-steps[-1] // 3)


def test_a_model_code_version_bump_changes_the_checkpoint_key(tiny, monkeypatch):
    from core.models.registry import MODELS
    from core.train import checkpoint_path
    config = TrainConfig(backbone="stamp", dim=8)
    before = checkpoint_path(tiny, config)
    monkeypatch.setattr(MODELS["stamp"], "version", 2)
    assert checkpoint_path(tiny, config) != before
    monkeypatch.setattr(MODELS["stamp"], "version", 1)
    assert checkpoint_path(tiny, config) == before


def test_a_diverged_training_is_refused_never_selected_or_cached(tiny):
    from core.train import TrainingDiverged, checkpoint_path
    # lr 1e30 sends the weights to inf/NaN in the first epoch; NaN scores used to rank every label first, so the
    # diverged model "won" early stopping with every metric at 1.0 and was cached
    config = TrainConfig(backbone="fpmc", dim=8, seed=0, lr=1e30, batch_size=16, max_epochs=5, patience=5)
    with pytest.raises(TrainingDiverged) as error:
        train(tiny, config, device="cpu")
    message = str(error.value)
    assert message.startswith("training diverged at epoch 1 (") and "lr 1e+30" in message
    assert "fix: lower the learning rate" in message and "\n" not in message
    assert not checkpoint_path(tiny, config).exists()


def test_a_nan_loss_stops_fit_steps_at_once(tiny):
    from core.train import TrainingDiverged, batch_indices, fit_steps
    config = TrainConfig(backbone="fpmc", dim=8, seed=0, lr=0.01, batch_size=16, max_epochs=5, patience=5)
    rows = training_instances(tiny, max_len=5, augment_prefixes=True)
    model = create("fpmc", tiny.n_items, 8, 5)
    steps = -(-len(rows) // 16)
    batch = batch_indices(len(rows), 16)
    calls = []

    def step_loss(step_in_epoch, rng):
        index = batch(step_in_epoch, rng)
        calls.append(step_in_epoch)
        loss = model.loss(torch.as_tensor(rows.inputs[index]), torch.as_tensor(rows.lengths[index]),
                          torch.as_tensor(rows.targets[index]), "ce")
        return loss * float("nan") if len(calls) == steps + 2 else loss      # second step of epoch 2
    with pytest.raises(TrainingDiverged, match=r"^training diverged at epoch 2 \(loss nan\)"):
        fit_steps(model, step_loss, steps, tiny.split("valid", 5), config, resolve_device("cpu"))
    assert len(calls) == steps + 2                    # stopped at the first non-finite loss


def test_nan_validation_scores_stop_fit_steps(tiny):
    from core.train import TrainingDiverged, fit_steps
    config = TrainConfig(backbone="fpmc", dim=8, seed=0, lr=0.01, batch_size=16, max_epochs=5, patience=5)
    rows = training_instances(tiny, max_len=5, augment_prefixes=True)
    model = create("fpmc", tiny.n_items, 8, 5)

    def step_loss(step_in_epoch, rng):
        loss = model.loss(torch.as_tensor(rows.inputs[:16]), torch.as_tensor(rows.lengths[:16]),
                          torch.as_tensor(rows.targets[:16]), "ce")
        with torch.no_grad():                         # the loss is finite, the weights it leaves are not
            next(model.parameters()).fill_(float("nan"))
        return loss
    with pytest.raises(TrainingDiverged, match=r"epoch 1 \(non-finite validation scores\)"):
        fit_steps(model, step_loss, 1, tiny.split("valid", 5), config, resolve_device("cpu"))
