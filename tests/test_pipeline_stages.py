"""The pipeline's stages (core/stages.py) one at a time on a tiny dataset, and fixed small runs whose results must not
move when the pipeline is refactored (compared to 1e-9)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tiny_data import make_dataset

from core.data.dataset import save_dataset
from core.distill.common import top_k
from core.evaluate import evaluate
from core.paths import dataset_dir
from core.pipeline import RunConfig, RunFacts, run_pipeline
from core.stages import (
    BASELINE_STAGES,
    STAGES,
    Clock,
    DifficultyCache,
    NoUsableRankings,
    candidate_sets,
    categorise,
    difficulty,
    distill_context,
    evaluate_model,
    load,
    load_models,
    make_provider,
    pool_consistency,
    pretrain,
    query,
    select_sessions,
    under,
    weights_digest,
)
from core.train import model_scorer

#: pre-training cut to one epoch, so that distillation moves the student on this data
PRETRAIN = {"max_epochs": 1}
EPOCHS = {"max_epochs": 3}
RUNS = {
    "student": {"method": "student"},
    "teacher": {"method": "teacher"},
    "tr": {"method": "tr", "options": EPOCHS},
    "alkdrec": {"method": "alkdrec", "teacher": "simulated", "budget": 8, "hit_rate": 0.5, "options": EPOCHS},
    "alkdrec-teacherkey": {"method": "alkdrec", "teacher": "simulated", "budget": 8, "hit_rate": 0.5,
                           "difficulty": "teacher", "options": EPOCHS},
    # authors-code mode now pre-trains the authors' FPMC variant (window basket) unless the run sets the basket:
    # setting ours ("last") keeps the model these numbers were taken with
    "random-forced-authors": {"method": "random", "teacher": "simulated", "budget": 6, "mode": "authors-code",
                              "options": EPOCHS, "pretrain": PRETRAIN | {"basket": "last"}},
    "llmd4rec": {"method": "llmd4rec", "teacher": "simulated", "budget": 8, "hit_rate": 0.0,
                 "options": {"max_epochs": 2, "rounds": 2}},
    "sknn": {"method": "sknn"},
    "transitions": {"method": "transitions"},
    "alkdrec-sasrec": {"method": "alkdrec", "backbone": "sasrec", "teacher": "simulated", "budget": 8,
                       "hit_rate": 0.5, "options": EPOCHS},
}
# Obtained by running these configs (dataset below, pretrain=PRETRAIN, device cpu) with core/pipeline.py as it was
# before the split into stages (commit c067f80), one process, torch single-threaded: test metrics, valid NDCG@10,
# n_labelled, picked session ids in pick order. alkdrec-sasrec was run alone in a fresh process: in one process after
# an FPMC run with other pretrain settings, the old memo (keyed by dataset, seed and device only) handed it that
# run's difficulty values (test NDCG@10 0.2000041801016436); the stage's cache keys by the key model's weights.
EXPECTED = {
    "student": ({"recall@5": 0.125, "ndcg@5": 0.08804779266587295, "recall@10": 0.1875, "ndcg@10": 0.1088811259992063, "recall@20": 0.6875, "ndcg@20": 0.23242685484217318, "mrr@20": 0.11792833580033657}, 0.10776434746498101, 0, None),
    "teacher": ({"recall@5": 0.15625, "ndcg@5": 0.06181524334411124, "recall@10": 0.625, "ndcg@10": 0.21555228644433402, "recall@20": 0.875, "ndcg@20": 0.2772662946864527, "mrr@20": 0.11373613365800866}, 0.095683517212892, 0, None),
    "tr": ({"recall@5": 0.125, "ndcg@5": 0.08804779266587295, "recall@10": 0.1875, "ndcg@10": 0.1088811259992063, "recall@20": 0.65625, "ndcg@20": 0.22531215957039338, "mrr@20": 0.11636583580033658}, 0.10776434746498101, 0, None),
    "alkdrec": ({"recall@5": 0.125, "ndcg@5": 0.08804779266587295, "recall@10": 0.1875, "ndcg@10": 0.10959593392966532, "recall@20": 0.6875, "ndcg@20": 0.23332785104793893, "mrr@20": 0.11882119294319371}, 0.10847915539544004, 8, [49, 61, 7, 48, 15, 45, 35, 95]),
    "alkdrec-teacherkey": ({"recall@5": 0.125, "ndcg@5": 0.08804779266587295, "recall@10": 0.1875, "ndcg@10": 0.10959593392966532, "recall@20": 0.6875, "ndcg@20": 0.23372903250449723, "mrr@20": 0.11911681557821263}, 0.10847915539544004, 8, [32, 75, 73, 67, 8, 35, 48, 81]),
    "random-forced-authors": ({"recall@5": 0.125, "ndcg@5": 0.08804779266587295, "recall@10": 0.1875, "ndcg@10": 0.1088811259992063, "recall@20": 0.6875, "ndcg@20": 0.23242685484217318, "mrr@20": 0.11792833580033657, "compat_ndcg@5": 0.07595864243979353, "compat_ndcg@10": 0.11388669135785884, "compat_ndcg@20": 0.2905600946930263}, 0.10776434746498101, 6, [26, 84, 87, 46, 81, 25]),
    "llmd4rec": ({"recall@5": 0.15625, "ndcg@5": 0.10230330045215885, "recall@10": 0.25, "ndcg@10": 0.13153434184782434, "recall@20": 0.71875, "ndcg@20": 0.2463802396851394, "mrr@20": 0.12637074545573965}, 0.1382800622474753, 4, [25, 48, 79, 59]),
    "sknn": ({"recall@5": 1.0, "ndcg@5": 0.8493239931919725, "recall@10": 1.0, "ndcg@10": 0.8493239931919725, "recall@20": 1.0, "ndcg@20": 0.8493239931919725, "mrr@20": 0.796875}, 0.7363574972679918, 0, None),
    "transitions": ({"recall@5": 1.0, "ndcg@5": 1.0, "recall@10": 1.0, "ndcg@10": 1.0, "recall@20": 1.0, "ndcg@20": 1.0, "mrr@20": 1.0}, 1.0, 0, None),
    "alkdrec-sasrec": ({"recall@5": 0.21875, "ndcg@5": 0.1171314351056665, "recall@10": 0.46875, "ndcg@10": 0.19628653684460098, "recall@20": 0.78125, "ndcg@20": 0.27449093077509346, "mrr@20": 0.13709695635247104}, 0.1630179390041599, 8, [41, 88, 79, 87, 15, 7, 93, 45]),
}
#: the stored extra of an LLM run, in order (the dashboard reads config.extra.* from DuckDB)
LLM_FACTS = ["kind", "teacher_cached", "student_cached", "hints", "strategy", "pool_size", "k_star", "support",
             "difficulty_key", "planned_ratio", "achieved_ratio", "category_counts", "teacher_model", "force_label",
             "responses", "warnings", "label_leak", "distill", "usd", "calls"]


@pytest.fixture
def tiny_fetched():
    data = make_dataset(n_sessions=160, n_items=30, seed=3)
    save_dataset(data, dataset_dir(data.name))
    return data


@pytest.fixture
def single_thread():
    """The fixed numbers were taken single-threaded (float sums may differ in their last bits across thread
    counts)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def config(**fields) -> RunConfig:
    return RunConfig(**({"dataset": "tiny", "pretrain": PRETRAIN, "device": "cpu"} | fields))


# ------------------------------------------------------------------------------------------- fixed runs (1e-9)

@pytest.mark.parametrize("name", list(RUNS))
def test_fixed_run_matches_the_numbers_before_the_refactor(name, tiny_fetched, single_thread):
    events = []
    result = run_pipeline(config(**RUNS[name]), lambda *e: events.append(e), cache=DifficultyCache())
    test, valid_ndcg, n_labelled, picked = EXPECTED[name]
    assert set(result.test.metrics) == set(test)
    for metric, value in test.items():
        assert result.test.metrics[metric] == pytest.approx(value, abs=1e-9, rel=0), metric
    assert result.valid.metrics["ndcg@10"] == pytest.approx(valid_ndcg, abs=1e-9, rel=0)
    assert result.n_labelled == n_labelled and result.usd_spent == 0.0
    if picked is not None:
        frame = result.selection[result.selection["picked"]].sort_values("pick_order")
        assert frame["session_id"].tolist() == picked
        assert result.extra.keys() == LLM_FACTS
    stages = BASELINE_STAGES if name in ("sknn", "transitions") else STAGES
    order = [stages.index(e[0]) for e in events]
    assert order == sorted(order), "progress events leave the stage order"


# ------------------------------------------------------------------------------------------------ stage by stage

def test_load(tiny_fetched):
    events = []
    loaded = load(config(), lambda *e: events.append(e))
    assert loaded.dataset.n_items == tiny_fetched.n_items and loaded.max_len == 5 and loaded.device.type == "cpu"
    assert len(loaded.valid.session_ids) == (tiny_fetched.sessions["split"] == "valid").sum() == 32
    assert len(loaded.test.session_ids) == (tiny_fetched.sessions["split"] == "test").sum()
    assert [e[:3] for e in events] == [("load", 0, 1), ("load", 1, 1)]


def test_pretrain_trains_then_reads_the_cache(tiny_fetched):
    loaded = load(config())
    clock, events = Clock(), []
    models = pretrain(config(), loaded, lambda *e: events.append(e), clock=clock)
    assert models.teacher.model.dim == 100 and models.student.model.dim == 10
    assert not models.teacher.cached and not models.student.cached
    assert set(clock.timings) == {"teacher", "student"}
    # core.train's epochs are reported under the role, so every event names a stage
    names = [e[0] for e in events]
    assert set(names) == {"teacher", "student"} and names == sorted(names, key=["teacher", "student"].index)
    assert any(e[3].startswith("train: epoch 1") for e in events) and events[-1][3] == "student ready"
    again = pretrain(config(), loaded)
    assert again.teacher.cached and again.student.cached
    assert weights_digest(again.student.model) == weights_digest(models.student.model)


def test_difficulty_is_memoised_by_the_key_models_weights(tiny_fetched):
    loaded = load(config())
    models = pretrain(config(), loaded)
    cache = DifficultyCache()
    pool = difficulty(config(), loaded, models, cache=cache)
    ids, values = pool_consistency(loaded.dataset, models.student.model, loaded.device)
    assert pool.key == "student-fpmc" and np.array_equal(pool.session_ids, ids) and np.allclose(pool.consistency,
                                                                                                values)
    assert len(pool.session_ids) == (tiny_fetched.sessions["split"] == "train").sum() and len(cache) == 1
    # the same weights loaded again: a hit (the cached arrays themselves)
    assert difficulty(config(), loaded, pretrain(config(), loaded), cache=cache).consistency is pool.consistency
    # a student pre-trained otherwise is another key (the old memo returned the first one's values)
    other = pretrain(config().model_copy(update={"pretrain": {"max_epochs": 2}}), loaded)
    fresh = difficulty(config(), loaded, other, cache=cache)
    assert len(cache) == 2 and not np.allclose(fresh.consistency, pool.consistency)
    assert difficulty(config(difficulty="teacher"), loaded, models, cache=cache).key == "teacher"
    with pytest.raises(ValueError, match="difficulty must be"):
        difficulty(config(difficulty="nope"), loaded, models, cache=cache)



def test_the_difficulty_key_of_another_backbone_is_the_authors_fpmc_in_authors_code_mode(tiny_fetched):
    """With a SASRec run the key model is an FPMC student loaded apart: in authors-code mode its authors' variant."""
    asked = []

    def loader(dataset, backbone, seed, device, progress, role, pretrain=None):
        asked.append((backbone, role, pretrain))
        return load_models(dataset, backbone, seed, device, None, role, pretrain)
    for mode in ("paper", "authors-code"):
        cfg = config(backbone="sasrec", mode=mode)
        loaded = load(cfg)
        difficulty(cfg, loaded, pretrain(cfg, loaded), loader=loader, cache=DifficultyCache())
    assert [a[2] for a in asked] == [{}, {"backbone_config": {"basket": "window"}}]
    assert all(a[:2] == ("fpmc", "student") for a in asked)


class Recorded:
    """A teacher that has rankings for some sessions only (what select_sessions asks of a replay provider)."""

    name = "replay"

    def __init__(self, have: set[int]) -> None:
        self.have = have

    def available(self, session_ids):
        return np.array([int(s) in self.have for s in session_ids], dtype=bool)


def test_select_sessions(tiny_fetched):
    cfg = config(method="alkdrec", teacher="simulated", budget=8)
    loaded = load(cfg)
    pool = difficulty(cfg, loaded, pretrain(cfg, loaded), cache=DifficultyCache())
    provider = make_provider(cfg, loaded.dataset)
    chosen = select_sessions(cfg, "alkdrec", "alkdrec", loaded, pool, provider)
    assert chosen.strategy == "alkdrec" and len(chosen.picked) == 8 and chosen.selection.pool_size == len(
        pool.session_ids)
    assert set(chosen.picked) <= set(pool.session_ids.tolist())
    # LLMD4Rec with a teacher it can ask again: half the budget in the first round (rounds=2)
    llmd = config(method="llmd4rec", teacher="simulated", budget=8, options={"rounds": 2})
    assert len(select_sessions(llmd, "llmd4rec", "random", loaded, pool, provider).picked) == 4
    # only the sessions the teacher has, and never more than it has
    have = set(pool.session_ids[:5].tolist())
    limited = select_sessions(cfg.model_copy(update={"selection": "random"}), "alkdrec", "alkdrec", loaded, pool,
                              Recorded(have))
    assert limited.strategy == "random" and limited.selection.pool_size == 5 and set(limited.picked) == have


def test_candidates_query_and_categories(tiny_fetched):
    cfg = config(method="random", teacher="simulated", budget=6, hit_rate=1.0, force_label=True)
    loaded = load(cfg)
    models = pretrain(cfg, loaded)
    ctx = distill_context(cfg, loaded, models)
    pool = difficulty(cfg, loaded, models, cache=DifficultyCache())
    provider = make_provider(cfg, loaded.dataset)
    chosen = select_sessions(cfg, "random", "random", loaded, pool, provider)
    events = []
    sets = candidate_sets(cfg, ctx, chosen.picked, lambda *e: events.append(e))
    assert list(sets.candidates) == chosen.picked.tolist() and sets.options.domain == "movies"
    assert sets.options.force_label_in_candidates and [e[0] for e in events] == ["candidates"] * 2
    teacher_top = top_k(models.teacher.model, sets.inputs, sets.lengths, 50, loaded.device)
    for row, session in enumerate(chosen.picked):
        assert sets.candidates[int(session)] == tuple(teacher_top[row].tolist())
        # a catalogue of 30 items has fewer than 50 unseen ones: the window items come last (scored -inf)
        window = set(sets.inputs[row].tolist()) - {0}
        assert not window & set(sets.candidates[int(session)][:30 - len(window) - 1])
    answers = query(cfg, loaded.dataset, provider, chosen.picked, sets)
    assert len(answers.responses) == 6 and len(answers.answered) == 6 and answers.usd == 0.0
    labels = dict(zip(chosen.picked.tolist(), sets.labels.tolist()))
    assert all(labels[s] in ranking for s, ranking in answers.rankings.items())   # hit rate 1, label forced in
    labelled = categorise(cfg, chosen, sets, answers, models.student.model, loaded.device)
    picked = labelled.frame[labelled.frame["picked"]]
    assert picked["category"].notna().all() and picked["hit_position"].notna().all()
    assert set(labelled.categories.counts) == {"effective", "similar", "incorrect"}
    assert labelled.frame[~labelled.frame["picked"]]["category"].isna().all()


def test_query_without_a_usable_ranking_fails_with_what_it_cost(tiny_fetched):
    from core.teachers import Budget

    cfg = config(method="random", teacher="simulated", budget=4)
    loaded = load(cfg)
    models = pretrain(cfg, loaded)
    provider = make_provider(cfg, loaded.dataset)
    picked = np.asarray(loaded.dataset.sessions.query("split == 'train'")["session_id"][:4])
    sets = candidate_sets(cfg, distill_context(cfg, loaded, models), picked)
    launch = Budget()
    launch.stop("stopped by the test")
    with pytest.raises(NoUsableRankings, match="no usable ranking from simulated") as error:
        query(cfg, loaded.dataset, provider, picked, sets, budget=launch)
    assert error.value.usd_spent == 0.0


def test_evaluate_model(tiny_fetched):
    loaded = load(config())
    student = pretrain(config(), loaded).student.model
    scores = evaluate_model(config(), student, loaded)
    direct = evaluate(model_scorer(student, loaded.device), loaded.test)
    assert scores.test.metrics == direct.metrics and "compat_ndcg@10" not in scores.test.metrics
    assert "compat_ndcg@10" in evaluate_model(config(mode="authors-code"), student, loaded).test.metrics


def test_under_reports_sub_steps_under_the_stage():
    events = []
    emit = under("distill", lambda *e: events.append(e))
    emit("distill round 2", 1, 3, "epoch 1")
    emit("distill", 2, 3, "epoch 2")
    emit("train", 3, 3, "")
    assert events == [("distill", 1, 3, "distill round 2: epoch 1"), ("distill", 2, 3, "epoch 2"),
                      ("distill", 3, 3, "train")]


# ------------------------------------------------------------------------------------------------------ RunFacts

def test_run_facts_store_only_what_was_set_in_the_historical_order():
    facts = RunFacts(kind="llm", teacher_cached=True, student_cached=False)
    facts.calls, facts.k_star, facts.strategy = 3, None, "alkdrec"
    facts["launch_usd"] = {"message": ""}
    assert facts.as_json() == {"kind": "llm", "teacher_cached": True, "student_cached": False, "strategy": "alkdrec",
                               "k_star": None, "calls": 3, "launch_usd": {"message": ""}}
    assert list(facts.as_json()) == ["kind", "teacher_cached", "student_cached", "strategy", "k_star", "calls",
                                     "launch_usd"]
    assert dict(facts) == facts.as_json() and json.loads(json.dumps(dict(facts))) == facts.as_json()
    assert "k_star" in facts and "usd" not in facts and facts.get("usd", 1) == 1 and facts["calls"] == 3
    with pytest.raises(KeyError):
        facts["usd"]
    with pytest.raises(ValueError):
        facts.unknown_fact = 1
    facts.distill = {"returned_start": True, "valid_start": 0.1, "valid_best": 0.1}
    assert facts.returned_start and facts.valid_best == 0.1 and not RunFacts().returned_start


def test_prompt_options_and_the_names_core_pipeline_keeps():
    from types import SimpleNamespace

    from core.pipeline import (  # noqa: F401 - the names callers import from core.pipeline
        REPLAY_PREFIX,
        NoUsableRankings,
        RunResult,
        first_round_sessions,
        label_leak,
        make_provider,
        stored_label_leak,
    )
    from core.stages import prompt_options

    games = SimpleNamespace(name="shop", meta={"domain": "games"})
    assert prompt_options(config(), games).domain == "games"
    authors = prompt_options(config(mode="authors-code", seed=3), SimpleNamespace(name="Games", meta={}))
    assert authors.domain == "games" and authors.force_label_in_candidates and authors.candidate_order == "shuffled"
    assert authors.shuffle_seed == 3
    assert not prompt_options(config(mode="authors-code", force_label=False), games).force_label_in_candidates
