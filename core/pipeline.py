"""One distillation run end to end, persisting nothing (the CLI `alkd run` stores what comes back).

    result = run_pipeline(RunConfig(dataset="alkdrec-ml", backbone="fpmc", method="alkdrec", teacher="replay"),
                          progress=lambda stage, step, total, message: ...)

run_pipeline chains the stages of core.stages (each a function with a typed result, testable alone):
load -> pretrain (teacher, student) -> [an LLM method: difficulty -> select -> candidates -> query -> categories]
-> distill -> evaluate; a reference baseline is load -> fit -> evaluate, the student/teacher rows load -> pretrain ->
evaluate. Progress events and timings name the same stages (core.stages.STAGES). Checkpoints come from core.train's
cache; the difficulty of a pool is memoised per process (core.stages.DifficultyCache). What a run learnt besides its
metrics is a RunFacts record, stored as the run config's `extra` JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict

from core import baselines
from core.data.dataset import SessionDataset
from core.distill import DistillContext, MethodSpec, get_method
from core.evaluate import EvalResult
from core.experiment import evaluate_baseline
from core.models.base import SessionModel
from core.run_spec import RunConfig
from core.stages import (
    BASELINE_STAGES,
    DIFFICULTY_CACHE,
    REPLAY_PREFIX,
    STAGES,
    Answers,
    Clock,
    DifficultyCache,
    Loaded,
    NoUsableRankings,
    Pretrained,
    Progress,
    asked_calls,
    asker,
    build_requests,
    candidate_sets,
    categorise,
    difficulty,
    distill_context,
    evaluate_model,
    first_round_sessions,
    load,
    load_models,
    make_provider,
    no_progress,
    pool_consistency,
    pretrain,
    prompt_options,
    query,
    replay_source_dir,
    select_sessions,
    under,
)
from core.teachers.hints import hints_record
from core.train import window


class RunFacts(BaseModel):
    """What a run records besides its metrics: stored as the run config's `extra` JSON (the dashboard reads
    `config.extra.*`). Only the facts a run set are stored, in this field order, so the stored shape is what it
    always was: a baseline {kind, baseline}; student/teacher {kind, teacher_cached, student_cached}; a method without
    the LLM adds distill; an LLM method adds the selection, categories, teacher and money facts below.

    Reads like the dict it replaced (`facts["calls"]`, `facts.get("warnings")`, `"achieved_ratio" in facts`,
    `dict(facts)`) as well as by attribute; `as_json()` is the stored dict."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, protected_namespaces=())

    kind: str | None = None                      # baseline | reference | teacher | llm (core.distill method kind)
    baseline: dict[str, Any] | None = None       # a reference baseline's settings (name, max_len, exclude_seen)
    teacher_cached: bool | None = None           # the teacher recommender came from the checkpoint cache
    student_cached: bool | None = None
    hints: dict[str, Any] | None = None          # the hint block sent (core.teachers.hints.hints_record)
    strategy: str | None = None                  # the selection strategy used
    pool_size: int | None = None                 # sessions the selection could pick from
    k_star: int | None = None                    # the policy's k* and support (alkdrec, rad-bc), else None
    support: int | None = None
    difficulty_key: str | None = None            # student-fpmc | teacher
    planned_ratio: dict[str, float] | None = None    # category -> share, planned and achieved (each sums to 1)
    achieved_ratio: dict[str, float] | None = None
    category_counts: dict[str, int] | None = None
    teacher_model: str | None = None             # the LLM teacher's model name
    force_label: bool | None = None              # the true next item was forced into the prompts' candidates
    responses: dict[str, Any] | None = None      # core.teachers.totals of the responses (ok, failed, usd_spent, ...)
    warnings: list[str] | None = None            # lines the CLI prints (too few usable rankings, ...)
    label_leak: str | None = None                # forced | filtered | none (label_leak)
    distill: dict[str, Any] | None = None        # the method's facts (best_epoch, valid_start, valid_best,
    #                                              returned_start, history, ...; core.distill.DistillResult.extra)
    usd: dict[str, Any] | None = None            # the run's cap report (core.teachers.budget.CapReport + message)
    calls: int | None = None                     # requests sent to the teacher or its cache (asked_calls)
    launch_usd: dict[str, Any] | None = None     # the launch's cap report (set by `alkd run --launch-usd-cap`)
    model_path: str | None = None                # the saved model (set when the run is stored)
    resumed: dict[str, Any] | None = None        # attempt facts of a resumed run (core.resume adds them when storing)

    def keys(self) -> list[str]:
        """The facts set, in field order."""
        return [name for name in type(self).model_fields if name in self.model_fields_set]

    def as_json(self) -> dict[str, Any]:
        """The stored `extra` dict: the facts set, in field order."""
        return {name: getattr(self, name) for name in self.keys()}

    def __getitem__(self, name: str) -> Any:
        if name not in self.model_fields_set:
            raise KeyError(name)
        return getattr(self, name)

    def __setitem__(self, name: str, value: Any) -> None:
        setattr(self, name, value)

    def __contains__(self, name: object) -> bool:
        return name in self.model_fields_set

    def __len__(self) -> int:
        return len(self.model_fields_set)

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self, name) if name in self.model_fields_set else default

    def items(self) -> list[tuple[str, Any]]:
        return list(self.as_json().items())

    @property
    def returned_start(self) -> bool:
        """Whether distillation handed back the starting model (nothing beat it on validation)."""
        return bool((self.distill or {}).get("returned_start"))

    @property
    def valid_start(self) -> float | None:
        """Validation metric of the starting model (None where the method records none)."""
        return (self.distill or {}).get("valid_start")

    @property
    def valid_best(self) -> float | None:
        """Validation metric of the model distillation returned."""
        return (self.distill or {}).get("valid_best")


@dataclass
class RunResult:
    """What a run produced. selection: the pool frame (FRAME_COLUMNS + category, call_key, hit_position,
    student_rank, n_valid) or None; candidates: session id -> candidate ids sent; responses: RankResponses."""

    config: RunConfig
    test: EvalResult
    valid: EvalResult
    curve: pd.DataFrame | None
    timings: dict[str, float]
    selection: pd.DataFrame | None = None
    candidates: dict[int, tuple[int, ...]] = field(default_factory=dict)
    responses: list[Any] = field(default_factory=list)
    usd_spent: float = 0.0
    n_labelled: int = 0
    extra: RunFacts = field(default_factory=RunFacts)
    model: SessionModel | None = None    # the evaluated model (None for reference baselines)


def run_pipeline(config: RunConfig, progress: Progress | None = None, *, db: Path | str | None = None,
                 budget: Any = None, cache: DifficultyCache = DIFFICULTY_CACHE) -> RunResult:
    """Run one (method, seed); returns everything, persists nothing (the teacher's call cache aside).

    budget: a core.teachers.Budget over the whole launch (its USD cap and stop bind this run's LLM calls, which get
    their own Budget(config.budget, config.usd_cap) under it). The run's cap report is extra.usd (CapReport
    fields + message); extra.warnings lists what the CLI must say. No usable ranking at all raises NoUsableRankings.
    cache: where pool difficulties are memoised (default: this process's)."""
    emit = progress or no_progress
    clock = Clock()
    spec = get_method(config.method)
    loaded = load(config, emit)
    clock.lap("load")

    if spec.kind == "baseline":
        emit("fit", 0, 1, f"fitting baseline {spec.name}")
        outcome = evaluate_baseline(loaded.dataset, spec.name, max_len=loaded.max_len)
        clock.timings.update(outcome.timings)
        emit("evaluate", 1, 1, "done")
        return RunResult(config, outcome.test, outcome.valid, None, clock.timings,
                         extra=RunFacts(kind="baseline", baseline=outcome.config))

    # looked up here, not bound at import: tests substitute core.pipeline.load_models
    models = pretrain(config, loaded, emit, loader=load_models, clock=clock)
    facts = RunFacts(kind=spec.kind, teacher_cached=models.teacher.cached, student_cached=models.student.cached)
    if spec.kind == "reference":
        model = models.student.model if spec.name == "student" else models.teacher.model
        return _evaluated(config, model, loaded, None, clock, emit, facts)

    ctx = distill_context(config, loaded, models, emit)
    llm = _ask_teacher(config, spec, loaded, models, ctx, clock, emit, facts, db=db, budget=budget, cache=cache) \
        if spec.kind == "llm" else None

    emit("distill", 0, 1, f"{spec.name}")
    distilled = spec.distill(ctx)
    facts.distill = distilled.extra
    usd, n_labelled = 0.0, 0
    if llm is not None:
        # LLMD4Rec's rounds may have asked again: their calls are in llm.answers.responses too
        responses = llm.answers.responses
        usd = float(sum(r.usd for r in responses if not r.cached)) if ctx.ask is not None else llm.answers.usd
        facts.usd = llm.answers.budget.report().as_dict()
        # labelled = distinct sessions with a usable ranking, calls counted apart
        n_labelled = len({int(r.session_id) for r in responses if r.ok})
        facts.calls = asked_calls(responses)
    clock.lap("distill")
    result = _evaluated(config, distilled.model, loaded, distilled.curve, clock, emit, facts)
    if llm is not None:
        result.selection, result.candidates = llm.frame, llm.candidates
        result.responses = llm.answers.responses
    result.usd_spent, result.n_labelled = usd, n_labelled
    return result


@dataclass
class _Asked:
    """What the LLM stages of a run produced (for run_pipeline)."""

    frame: pd.DataFrame
    candidates: dict[int, tuple[int, ...]]
    answers: Answers


def _ask_teacher(config: RunConfig, spec: MethodSpec, loaded: Loaded, models: Pretrained, ctx: DistillContext,
                 clock: Clock, emit: Progress, facts: RunFacts, *, db: Path | str | None, budget: Any,
                 cache: DifficultyCache) -> _Asked:
    """The LLM stages: difficulty -> select -> candidates -> query -> categories; fills ctx (rankings, candidates,
    the re-asker for LLMD4Rec's rounds) and the run's facts."""
    from core.teachers import totals

    provider = make_provider(config, loaded.dataset)
    pool = difficulty(config, loaded, models, emit, loader=load_models, cache=cache)
    clock.lap("difficulty")
    selected = select_sessions(config, spec.name, spec.strategy, loaded, pool, provider, emit)
    clock.lap("select")
    sets = candidate_sets(config, ctx, selected.picked, emit)
    clock.lap("candidates")
    answers = query(config, loaded.dataset, provider, selected.picked, sets, emit, db=db, budget=budget)
    facts.hints = hints_record(answers.hints)
    ctx.rankings, ctx.candidates = answers.rankings, sets.candidates
    clock.lap("query")
    labelled = categorise(config, selected, sets, answers, models.student.model, loaded.device, emit)
    cats = labelled.categories
    facts.strategy, facts.pool_size = selected.strategy, selected.selection.pool_size
    facts.k_star, facts.support = selected.selection.k_star, selected.selection.support
    facts.difficulty_key = pool.key
    facts.planned_ratio, facts.achieved_ratio, facts.category_counts = (cats.planned_ratio, cats.achieved_ratio,
                                                                         cats.counts)
    facts.teacher_model, facts.force_label = provider.model, sets.options.force_label_in_candidates
    facts.responses = {k: v for k, v in totals(answers.responses).items()}
    facts.warnings = answers.warnings
    clock.lap("categories")
    # LLMD4Rec can re-ask a live/simulated teacher; the replay teacher has one recorded answer per session.
    # (its re-asks happen while distilling: reported under that stage)
    ctx.ask = None if provider.name == "replay" else asker(provider, loaded.dataset, sets.options, answers.budget, db,
                                                            answers.responses, under("distill", emit),
                                                            max_calls=config.budget)
    facts.label_leak = label_leak(config, loaded.dataset, sets.options.force_label_in_candidates)
    return _Asked(labelled.frame, sets.candidates, answers)


def _evaluated(config: RunConfig, model: SessionModel, loaded: Loaded, curve: pd.DataFrame | None, clock: Clock,
               emit: Progress, facts: RunFacts) -> RunResult:
    """Stage `evaluate`, then the RunResult."""
    scores = evaluate_model(config, model, loaded, emit)
    clock.lap("evaluate")
    return RunResult(config, scores.test, scores.valid, curve, clock.timings, extra=facts, model=model)


LEAK_TEXT = {"forced": "label forced: the lists were made with the true next item forced into the LLM's candidates, "
                       "so they overstate what a deployed LLM can do",
             "filtered": "no-leak replay: recorded lists made with the label forced in, cut to our label-free "
                         "candidates", "none": ""}


def label_leak(config: RunConfig, dataset: SessionDataset, forced_in_prompts: bool) -> str:
    """How the true next item could reach the lists a run distils: `forced` (the lists were made with it forced into
    the candidates: our prompts with force_label, or the authors' recorded GPT-4 lists, which were all made that
    way), `filtered` (such lists, ids outside our label-free candidates dropped: option lists=in-candidates), or
    `none`."""
    return _leak(_authors_lists(config.teacher, dataset.name, config.replay_path), forced_in_prompts,
                 config.options.get("lists"))


def stored_label_leak(teacher: str, dataset: str, config: dict[str, Any]) -> str:
    """label_leak of a stored LLM run from its runs row; runs stored before it was recorded are judged the same way."""
    extra = config.get("extra") or {}
    if extra.get("label_leak"):
        return str(extra["label_leak"])
    forced = bool(extra.get("force_label") or config.get("force_label"))
    return _leak(_authors_lists(teacher, dataset, config.get("replay_path")), forced,
                 (config.get("options") or {}).get("lists"))


def _authors_lists(teacher: str, dataset: str, replay_path: str | None) -> bool:
    """Whether a run replays the authors' recorded GPT-4 lists (their folder or *.data file, not a JSONL export)."""
    return teacher == "replay" and dataset in REPLAY_PREFIX and not str(replay_path or "").endswith(".jsonl")


def _leak(authors_replay: bool, forced_in_prompts: bool, lists: str | None) -> str:
    if not (authors_replay or forced_in_prompts):
        return "none"
    return "filtered" if lists == "in-candidates" and not forced_in_prompts else "forced"


__all__ = [
    "BASELINE_STAGES",
    "LEAK_TEXT",
    "REPLAY_PREFIX",
    "STAGES",
    "NoUsableRankings",
    "RunConfig",
    "RunFacts",
    "RunResult",
    "asked_calls",
    "baselines",
    "build_requests",
    "first_round_sessions",
    "label_leak",
    "load_models",
    "make_provider",
    "pool_consistency",
    "prompt_options",
    "replay_source_dir",
    "run_pipeline",
    "stored_label_leak",
    "window",
]
