"""Every distillation method runs on a tiny dataset and never ends worse on validation than the pretrained student
(early stopping keeps the best epoch, epoch 0 included); a perfect teacher's lists improve ALKDRec."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from core.distill import DistillContext, get_method, method_names
from core.evaluate import evaluate
from core.train import TrainConfig, model_scorer, train
from tiny_data import make_dataset


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    import os
    previous = os.environ.get("ALKD_HOME")
    os.environ["ALKD_HOME"] = str(tmp_path_factory.mktemp("home"))
    try:
        data = make_dataset(n_sessions=120, n_items=20, seed=1)
        student = train(data, TrainConfig(backbone="fpmc", dim=4, seed=0, max_epochs=3)).model
        teacher = train(data, TrainConfig(backbone="fpmc", dim=16, seed=0, max_epochs=20)).model
    finally:
        if previous is None:
            os.environ.pop("ALKD_HOME", None)
        else:
            os.environ["ALKD_HOME"] = previous
    return data, student, teacher


def perfect_lists(data) -> dict[int, tuple[int, ...]]:
    train_rows = data.sessions[data.sessions["split"] == "train"]
    return {int(s): (int(label),) + tuple(i for i in range(1, 8) if i != int(label))
            for s, label in zip(train_rows["session_id"], train_rows["label"])}


def context(data, student, teacher, mode="paper", **params) -> DistillContext:
    lists = perfect_lists(data)
    return DistillContext(dataset=data, backbone="fpmc", student=copy.deepcopy(student), teacher=teacher,
                          device=torch.device("cpu"), seed=0, mode=mode, max_len=5, valid=data.split("valid", 5),
                          rankings=lists, candidates={s: tuple(range(1, 21)) for s in lists},
                          params={"max_epochs": 15, "patience": 3, "batch_size": 64, **params})


def valid_ndcg(model, data) -> float:
    return evaluate(model_scorer(model, torch.device("cpu")), data.split("valid", 5)).metrics["ndcg@10"]


def test_registry_has_every_method():
    names = method_names()
    for name in ("alkdrec", "random", "easiest", "hardest", "rad-bc", "tr", "dllm2rec", "llmd4rec", "student",
                 "teacher", "popular", "transitions", "sknn", "vsknn"):
        assert name in names
    assert get_method("alkdrec").strategy == "alkdrec" and get_method("rad-bc").strategy == "rad-bc"
    assert get_method("student").distill is None


@pytest.mark.parametrize("method,mode", [("alkdrec", "paper"), ("alkdrec", "authors-code"), ("tr", "paper"),
                                         ("dllm2rec", "paper"), ("llmd4rec", "paper")])
def test_method_runs_and_never_degrades_validation(pretrained, method, mode):
    data, student, teacher = pretrained
    before = valid_ndcg(student, data)
    result = get_method(method).distill(context(data, student, teacher, mode))
    after = valid_ndcg(result.model, data)
    assert after >= before - 1e-9
    assert result.curve is not None and len(result.curve) >= 2


def test_alkdrec_with_a_perfect_teacher_improves(pretrained):
    data, student, teacher = pretrained
    result = get_method("alkdrec").distill(context(data, student, teacher))
    assert valid_ndcg(result.model, data) > valid_ndcg(student, data)
    assert result.extra["rows"] == sum(min(len(v), 25) for v in perfect_lists(data).values())


@pytest.mark.parametrize("objective", ["ce", "bpr-inbatch"])
def test_alkdrec_objectives_improve_with_a_perfect_teacher(pretrained, objective):
    data, student, teacher = pretrained
    result = get_method("alkdrec").distill(context(data, student, teacher, objective=objective))
    assert valid_ndcg(result.model, data) > valid_ndcg(student, data)
    assert result.extra["loss"] == objective


def test_long_epochs_are_validated_every_valid_every_steps(pretrained):
    data, student, teacher = pretrained
    tr = get_method("tr").distill(context(data, student, teacher, valid_every=2))   # ~900 rows: 15 steps/epoch
    assert tr.extra["valid_every"] == 2 and set(tr.curve["step"].diff().dropna()) <= {2}
    short = get_method("alkdrec").distill(context(data, student, teacher, valid_every=1000))
    steps = -(-short.extra["rows"] // 64)
    assert short.extra["valid_every"] == steps and set(short.curve["step"].diff().dropna()) == {steps}


def test_unknown_objective_is_an_error(pretrained):
    data, student, teacher = pretrained
    with pytest.raises(ValueError, match="objective must be"):
        get_method("alkdrec").distill(context(data, student, teacher, objective="hinge"))


def test_llmd4rec_reasks_a_live_teacher(pretrained):
    data, student, teacher = pretrained
    ctx = context(data, student, teacher, rounds=2)
    asked = []

    def ask(session_ids, candidates, predictions):
        asked.append((list(session_ids), candidates, predictions))
        return perfect_lists(data)

    ctx.ask = ask
    result = get_method("llmd4rec").distill(ctx)
    assert result.extra["rounds_planned"] == 2
    if result.extra["rounds_run"] == 2 or asked:
        assert len(asked) == 1 and all(len(c) <= 50 for c in asked[0][1].values())
    assert np.isfinite(valid_ndcg(result.model, data))
