"""Every distillation method on a tiny dataset: it returns the best validation check of its curve (the start only where
the recipe lets it compete), knowledge passes (KD pulls the student towards the teacher; a perfect teacher's lists
improve ALKDRec), the list controls and scratch init do what they say, LLMD4Rec re-asks where the student is right."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from tiny_data import make_dataset

from core.baselines.sknn import VSKNN
from core.data.dataset import SessionBatch
from core.distill import DistillContext, get_method, method_names
from core.distill.common import distillation_lists, instance_sessions, kd_teacher_scores, teacher_pca_items, top_k
from core.distill.losses import soft_target_kd
from core.evaluate import evaluate
from core.train import TrainConfig, model_scorer, train, training_instances


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
    for name in ("alkdrec", "random", "easiest", "hardest", "rad-bc", "tr", "rd", "dllm2rec", "llmd4rec", "student",
                 "teacher", "popular", "transitions", "sknn", "vsknn"):
        assert name in names
    assert get_method("alkdrec").strategy == "alkdrec" and get_method("rad-bc").strategy == "rad-bc"
    assert get_method("student").distill is None


@pytest.mark.parametrize("method,mode,recipe", [
    ("alkdrec", "paper", "joint"), ("alkdrec", "paper", "finetune"), ("alkdrec", "authors-code", "finetune"),
    ("tr", "paper", "joint"), ("tr", "paper", "finetune"), ("rd", "paper", "joint"), ("dllm2rec", "paper", "joint"),
    ("llmd4rec", "paper", "joint")])
def test_method_returns_its_best_validation_check(pretrained, method, mode, recipe):
    """The returned model scores what the curve's best eligible check scored: with the joint recipe the start never
    competes (best check >= 1), with finetune it does (check 0 included)."""
    data, student, teacher = pretrained
    result = get_method(method).distill(context(data, student, teacher, mode, recipe=recipe))
    curve = result.curve
    eligible = curve["valid_value"] if recipe == "finetune" else curve["valid_value"].iloc[1:]
    assert valid_ndcg(result.model, data) == pytest.approx(eligible.max(), abs=1e-9)
    assert result.extra["recipe"] == recipe and result.extra["valid_start"] == pytest.approx(valid_ndcg(student, data))
    assert result.extra["returned_start"] == (result.extra["best_epoch"] == 0)
    if recipe == "joint":
        assert result.extra["best_epoch"] >= 1 and not result.extra["returned_start"]


def test_the_start_competes_only_under_finetune(pretrained):
    """Lists that never hold the true item, weighted heavily: every trained check is worse than the start, so finetune
    returns the start while joint returns its best trained check and says the start was better on validation."""
    data, student, teacher = pretrained
    labels = data.sessions.set_index("session_id")["label"]
    runs = {}
    for recipe in ("joint", "finetune"):
        ctx = context(data, student, teacher, recipe=recipe, loss="pairwise", lr=0.5, max_epochs=4, patience=2,
                      **{"lambda": 1000.0})
        ctx.rankings = {s: tuple(i for i in range(20, 0, -1) if i != labels[s])[:10] for s in ctx.rankings}
        runs[recipe] = get_method("alkdrec").distill(ctx)
    assert runs["finetune"].extra["returned_start"] and runs["finetune"].extra["best_epoch"] == 0
    assert not runs["joint"].extra["returned_start"] and runs["joint"].extra["best_epoch"] >= 1
    assert runs["joint"].extra["valid_best"] < runs["joint"].extra["valid_start"]


def teacher_student_kl(student_model, teacher_model, data) -> float:
    batch = data.split("valid", 5)
    x, n = torch.as_tensor(batch.inputs), torch.as_tensor(batch.lengths)
    with torch.no_grad():
        return float(soft_target_kd(student_model.eval().score(x, n), teacher_model.eval().score(x, n), 2.0).mean())


def test_tr_kd_pulls_the_student_towards_the_teacher(pretrained):
    data, student, teacher = pretrained
    kd = get_method("tr").distill(context(data, student, teacher, valid_every=5, **{"lambda": 5.0}))
    plain = get_method("tr").distill(context(data, student, teacher, valid_every=5, **{"lambda": 0.0}))
    assert kd.extra["loss"] == "kd" and kd.extra["lambda"] == 5.0
    assert teacher_student_kl(kd.model, teacher, data) < 0.8 * teacher_student_kl(plain.model, teacher, data)


def test_tr_kd_temperature_is_fitted_to_the_teacher_unless_set(pretrained):
    data, student, teacher = pretrained
    fitted = get_method("tr").distill(context(data, student, teacher, max_epochs=1))
    t = fitted.extra["kd_temperature"]
    assert fitted.extra["kd_temperature_fitted"] and fitted.extra["lambda"] == pytest.approx(1 / t ** 2)
    rows = training_instances(data, 5, augment_prefixes=True)
    with torch.no_grad():
        logits = teacher.eval().score(torch.as_tensor(rows.inputs), torch.as_tensor(rows.lengths))[:, 1:]
    p = torch.softmax(logits.double() / t, 1)
    assert float(torch.exp(-(p * p.log()).sum(1)).mean()) == pytest.approx(10.0, rel=0.3)   # sample vs all rows
    fixed = get_method("tr").distill(context(data, student, teacher, max_epochs=1, kd_temperature=2.0))
    assert fixed.extra["kd_temperature"] == 2.0 and not fixed.extra["kd_temperature_fitted"]
    assert fixed.extra["lambda"] == pytest.approx(0.25)


def test_listwise_student_temperature_is_an_option(pretrained):
    data, student, teacher = pretrained
    plain = get_method("alkdrec").distill(context(data, student, teacher, max_epochs=1))
    hot = get_method("alkdrec").distill(context(data, student, teacher, max_epochs=1, list_temperature=0.05))
    assert plain.extra["list_temperature"] == 1.0 and hot.extra["list_temperature"] == 0.05
    assert plain.curve["train_loss"].iloc[1] != pytest.approx(hot.curve["train_loss"].iloc[1])


def test_kd_lambda_adds_the_teacher_recommenders_kd_to_an_llm_method(pretrained):
    data, student, teacher = pretrained
    plain = get_method("alkdrec").distill(context(data, student, teacher, valid_every=5))
    both = get_method("alkdrec").distill(context(data, student, teacher, valid_every=5, kd_lambda=5.0))
    t = both.extra["kd_temperature"]
    assert "kd_lambda" not in plain.extra and both.extra["kd_lambda"] == pytest.approx(5.0 / t ** 2)
    assert teacher_student_kl(both.model, teacher, data) < teacher_student_kl(plain.model, teacher, data)
    tr = get_method("tr").distill(context(data, student, teacher, max_epochs=1, kd_lambda=5.0))
    assert "kd_lambda" not in tr.extra                      # TR is KD already: never added twice


def test_scratch_init_trains_a_fresh_student_with_the_pretraining_settings(pretrained):
    data, student, teacher = pretrained
    result = get_method("tr").distill(context(data, student, teacher, init="scratch", max_epochs=2,
                                              batch_size=1024))
    assert result.extra["init"] == "scratch" and not result.extra["start_competes"]
    config = result.extra["train_config"]
    assert config["lr"] == TrainConfig(backbone="fpmc", dim=4).lr and config["batch_size"] == 1024   # explicit wins
    same_start = [torch.equal(a, b) for a, b in zip(result.model.state_dict().values(), student.state_dict().values())]
    assert not all(same_start) and result.extra["valid_start"] != pytest.approx(valid_ndcg(student, data))
    steps = -(-len(training_instances(data, 5, augment_prefixes=True)) // 1024)
    assert result.extra["valid_every"] == steps                       # checked once an epoch, as in pre-training


def test_teacher_pca_items_keep_the_teachers_item_geometry():
    torch.manual_seed(0)
    basis = torch.randn(3, 12)
    teacher = torch.cat([torch.zeros(1, 12), torch.randn(30, 3) @ basis])      # rank 3: a d=3 table loses nothing
    random = torch.randn(31, 3) * 0.5
    items = teacher_pca_items(teacher, random)
    assert items.shape == (31, 3) and torch.equal(items[0], torch.zeros(3))
    assert items[1:].norm(dim=1).mean() == pytest.approx(float(random[1:].norm(dim=1).mean()), rel=1e-5)
    similarities, theirs = items[1:] @ items[1:].T, teacher[1:] @ teacher[1:].T
    assert torch.allclose(similarities / similarities.abs().max(), theirs / theirs.abs().max(), atol=1e-4)


def test_teacher_pca_init_starts_from_the_teachers_items_and_trains(pretrained):
    data, student, teacher = pretrained
    result = get_method("tr").distill(context(data, student, teacher, init="teacher-pca", max_epochs=1, lr=1e-12))
    assert result.extra["init"] == "teacher-pca" and not result.extra["start_competes"]
    start = result.model.item_embeddings().detach()
    expected = teacher_pca_items(teacher.item_embeddings().detach(), start)
    assert torch.allclose(start, expected, atol=1e-5)                 # no real step: the table is the projection
    trained = get_method("tr").distill(context(data, student, teacher, init="teacher-pca", max_epochs=2))
    assert not torch.allclose(trained.model.item_embeddings().detach(), expected)


def test_list_controls(pretrained):
    data, student, teacher = pretrained
    ctx = context(data, student, teacher)
    sid = next(iter(ctx.rankings))
    ctx.candidates = {s: tuple(range(3, 21)) for s in ctx.rankings}            # ids 1 and 2 were never shown
    ctx.params["lists"] = "in-candidates"
    assert distillation_lists(ctx)[sid] == tuple(i for i in ctx.rankings[sid] if i >= 3)
    ctx.params["lists"] = "shuffled"
    shuffled = distillation_lists(ctx)
    assert all(sorted(shuffled[s]) == sorted(ctx.rankings[s]) for s in ctx.rankings)
    assert any(shuffled[s] != ctx.rankings[s] for s in ctx.rankings)
    ctx.params["lists"] = "teacher"
    own = distillation_lists(ctx)
    inputs, lengths, _ = ctx.session_inputs([sid])
    assert set(own) == set(ctx.rankings) and own[sid] == tuple(top_k(teacher, inputs, lengths, 25, ctx.device)[0])


@pytest.mark.parametrize("recipe,loss", [("joint", "listwise"), ("joint", "pairwise"), ("finetune", "pairwise")])
def test_alkdrec_with_a_perfect_teacher_improves(pretrained, recipe, loss):
    data, student, teacher = pretrained
    result = get_method("alkdrec").distill(context(data, student, teacher, recipe=recipe, loss=loss))
    assert valid_ndcg(result.model, data) > valid_ndcg(student, data)
    assert result.extra["loss"] == loss and result.extra["sessions"] == len(perfect_lists(data))
    if loss == "pairwise":
        assert result.extra["rows"] == sum(min(len(v), 25) for v in perfect_lists(data).values())


@pytest.mark.parametrize("objective", ["ce", "bpr-inbatch"])
def test_alkdrec_objectives_improve_with_a_perfect_teacher(pretrained, objective):
    data, student, teacher = pretrained
    result = get_method("alkdrec").distill(context(data, student, teacher, objective=objective, loss="pairwise"))
    assert valid_ndcg(result.model, data) > valid_ndcg(student, data)
    assert result.extra["objective"] == objective


def test_long_epochs_are_validated_every_valid_every_steps(pretrained):
    data, student, teacher = pretrained
    tr = get_method("tr").distill(context(data, student, teacher, valid_every=2, recipe="finetune"))   # 15 steps/epoch
    assert tr.extra["valid_every"] == 2 and set(tr.curve["step"].diff().dropna()) <= {2}
    short = get_method("alkdrec").distill(context(data, student, teacher, valid_every=1000, recipe="finetune"))
    steps = -(-short.extra["rows"] // 64)
    assert short.extra["valid_every"] == steps and set(short.curve["step"].diff().dropna()) == {steps}


def test_unknown_objective_is_an_error(pretrained):
    data, student, teacher = pretrained
    with pytest.raises(ValueError, match="objective must be"):
        get_method("alkdrec").distill(context(data, student, teacher, objective="hinge", loss="pairwise"))


def test_llmd4rec_reasks_where_the_student_ranks_the_truth_better(pretrained):
    data, student, teacher = pretrained
    ctx = context(data, student, teacher, rounds=2)
    # the LLM lists never contain the true item, so the student (truth somewhere in the 20 candidates) ranks it better
    ctx.rankings = {s: tuple(i for i in r if i != label)[:5] for (s, r), label in
                    zip(ctx.rankings.items(), data.sessions.set_index("session_id").loc[list(ctx.rankings), "label"])}
    asked = []

    def ask(session_ids, candidates, predictions):
        asked.append((list(session_ids), candidates, predictions))
        return {s: perfect_lists(data)[s] for s in session_ids}

    ctx.ask = ask
    result = get_method("llmd4rec").distill(ctx)
    assert result.extra["rounds_planned"] == 2 and len(asked) == 1
    session_ids, candidates, predictions = asked[0]
    assert set(session_ids) <= set(ctx.rankings) and len(session_ids) >= 1
    assert all(len(c) <= 50 for c in candidates.values()) and all(len(p) == 5 for p in predictions.values())
    assert result.extra["history"][0]["asked_again"] == len(session_ids)
    assert result.extra["weight"] == "rank"


def test_llmd4rec_with_replay_is_one_round(pretrained):
    data, student, teacher = pretrained
    result = get_method("llmd4rec").distill(context(data, student, teacher, rounds=3))
    assert result.extra["rounds_run"] == 1 and "one round" in result.extra["note"]


def test_instance_sessions_follow_the_training_instances(pretrained):
    """Each training instance's inputs and target lie in the session instance_sessions names for it."""
    data, _, _ = pretrained
    rows = training_instances(data, 5, augment_prefixes=True)
    origin = instance_sessions(data)
    sessions = data.sessions[data.sessions["split"] == "train"]
    full = [list(items) + [int(label)] for items, label in zip(sessions["items"], sessions["label"])]
    assert len(origin) == len(rows)
    for i in range(len(rows)):
        seq = full[origin[i]]
        window = rows.inputs[i, :rows.lengths[i]].tolist()
        end = next(e for e in range(1, len(seq)) if seq[max(0, e - 5):e] == window and seq[e] == rows.targets[i])
        assert end >= 1


def test_vsknn_leaves_out_the_excluded_session():
    data = make_dataset(n_sessions=60, n_items=12, seed=3)
    knn = VSKNN().fit(data, data.n_items)
    rows = training_instances(data, 5, augment_prefixes=True)
    origin = instance_sessions(data)
    batch = SessionBatch(np.arange(len(rows)), rows.inputs, rows.lengths, rows.targets)
    kept = knn.neighbours(batch, exclude=origin).toarray()
    assert (kept[np.arange(len(rows)), origin] == 0).all()
    assert (knn.neighbours(batch).toarray()[np.arange(len(rows)), origin] > 0).all()   # else nothing was tested


def test_tr_kd_from_vsknn_pulls_the_student_towards_vsknn(pretrained):
    """kd_teacher=vsknn: the student moves towards V-SKNN's leave-own-session-out soft targets on the training
    instances (what KD trains on), which the teacher recommender's KD does not aim at."""
    data, student, teacher = pretrained
    runs = {kind: get_method("tr").distill(context(data, student, teacher, valid_every=5, kd_teacher=kind,
                                                   lr=0.01, patience=20, **{"lambda": 5.0}))
            for kind in ("vsknn", "model")}
    ctx = context(data, student, teacher, kd_teacher="vsknn")
    rows = ctx.training_rows
    targets = kd_teacher_scores(ctx)(torch.arange(len(rows)))
    x, n = torch.as_tensor(rows.inputs), torch.as_tensor(rows.lengths)

    def kl(result) -> float:
        with torch.no_grad():
            return float(soft_target_kd(result.model.eval().score(x, n), targets,
                                        runs["vsknn"].extra["kd_temperature"]).mean())
    assert runs["vsknn"].extra["kd_teacher"] == "vsknn" and runs["vsknn"].extra["kd_temperature_fitted"]
    assert kl(runs["vsknn"]) < 0.8 * kl(runs["model"])
