"""One distillation run end to end, persisting nothing (the CLI `alkd run` stores what comes back).

    result = run_pipeline(RunConfig(dataset="alkdrec-ml", backbone="fpmc", method="alkdrec", teacher="replay"),
                          progress=lambda stage, step, total, message: ...)

Stages (progress events name them): load -> teacher (train or load the d=100 teacher recommender) -> student
(the d=10 student) -> difficulty (consistency c_s of every pool session; default key: the pretrained student FPMC,
spec alkdrec.md §11 #1, option `difficulty="teacher"`) -> select (core.selection.select over the training sessions;
with the replay teacher only the recorded ones) -> candidates (teacher top-50, window excluded; the label forced in
only when `force_label` / mode authors-code says so) -> query (the LLM teacher with Budget(max_sessions=budget,
max_usd=usd_cap) and the DuckDB cache) -> categories -> distill -> evaluate (full ranking on valid and test).
Checkpoints come from core.train's cache; difficulty keys and teacher lists are memoised per process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from core import baselines
from core.data import catalog
from core.data.dataset import SessionDataset
from core.distill import DEFAULTS as DISTILL_DEFAULTS
from core.distill import DistillContext, get_method
from core.distill.common import top_k
from core.evaluate import EvalResult, evaluate, target_ranks
from core.experiment import ROLE_DIMS, evaluate_baseline
from core.models.base import SessionModel
from core.selection import categorize, consistency, select
from core.selection.authors_files import BASE_FILES, recorded_picks, with_recorded_picks
from core.teachers.hints import hints_record, run_hints
from core.run_spec import RunConfig  # the one description of a run (moved there; imported here for old callers)
from core.train import TrainConfig, model_scorer, resolve_device, train, window

Progress = Callable[[str, int, int, str], None]
REPLAY_PREFIX = {"alkdrec-ml": "ML", "alkdrec-games": "Games"}


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
    extra: dict[str, Any] = field(default_factory=dict)
    model: SessionModel | None = None    # the evaluated model (None for reference baselines)


class NoUsableRankings(RuntimeError):
    """Every LLM call of a run failed or was not made: the run fails (one line saying why) instead of finishing with
    the student's metrics. usd_spent: what its calls cost all the same."""

    def __init__(self, message: str, usd_spent: float = 0.0) -> None:
        super().__init__(message)
        self.usd_spent = usd_spent


_memo: dict[tuple, Any] = {}


def _stage(timings: dict[str, float], name: str, started: float) -> float:
    now = time.perf_counter()
    timings[name] = timings.get(name, 0.0) + now - started
    return now


def load_models(dataset: SessionDataset, backbone: str, seed: int, device: str, progress: Progress | None,
                role: str, pretrain: dict[str, Any] | None = None):
    """The cached (or newly trained) teacher/student of a backbone; progress events under stage `role`.
    pretrain: TrainConfig settings for both (e.g. {"loss": "ce"})."""
    config = TrainConfig(backbone=backbone, dim=ROLE_DIMS[role], seed=seed, **(pretrain or {}))
    return train(dataset, config, device=device, progress=progress)


def pool_consistency(dataset: SessionDataset, model, device: torch.device, key: tuple) -> tuple[np.ndarray,
                                                                                                 np.ndarray]:
    """(session_ids, c_s) of every training session for `model` (memoised per process under `key`)."""
    if key in _memo:
        return _memo[key]
    train_batch = dataset.split("train", int(dataset.meta.get("max_len", 50)))
    model.eval()
    with torch.no_grad():
        x = torch.as_tensor(train_batch.inputs, device=device)
        n = torch.as_tensor(train_batch.lengths, device=device)
        u = torch.cat([model.encode(x[i:i + 4096], n[i:i + 4096]) for i in range(0, len(x), 4096)])
        emb = model.item_embeddings()
    values = consistency(u.cpu().numpy(), emb.detach().cpu().numpy(), train_batch.inputs, train_batch.lengths)
    _memo[key] = (train_batch.session_ids, values)
    return _memo[key]


def replay_source_dir(dataset: SessionDataset, folder: str | Path | None = None) -> Path:
    """The folder of the ALKDRec authors' files (ML/, Games/) for an alkdrec dataset: `folder` when it is one
    (RunConfig.replay_path may name a folder or a file), else the one the dataset was fetched from (meta source_dir). Every pinned file of
    the dataset there is checked against its SHA-256 before the run reads it; absent or edited: a DataError naming
    the folder or file and the fix."""
    from core.data.errors import DataError
    from core.data.sources.alkdrec import verified_folder

    prefix = REPLAY_PREFIX[dataset.name]
    given = folder if folder is not None and Path(folder).is_dir() else dataset.meta.get("source_dir")
    root = Path(given).expanduser() if given else None
    if root is None or not (root / prefix).is_dir():
        where = f"{root} holds no {prefix}/ folder" if root is not None else "the dataset does not say where its " \
            "files are"
        raise DataError(f"the replay teacher reads the authors' recorded files of {dataset.name!r}, and {where}",
                        fix=f"fetch it again with `alkd data fetch {dataset.name} --from DIR` (DIR holding ML/ and "
                            "Games/ of the authors' datasets/), or give that folder as replay_path")
    return verified_folder(root, prefix)


def make_provider(config: RunConfig, dataset: SessionDataset):
    from core.teachers import get_provider
    from core.teachers.providers.replay import ReplayProvider

    if config.teacher == "replay":
        if config.replay_path and not Path(config.replay_path).is_dir():
            return ReplayProvider(config.replay_path, n_items=dataset.n_items)
        prefix = REPLAY_PREFIX.get(dataset.name)
        if prefix is None:
            raise ValueError(f"the replay teacher has no recorded rankings for {dataset.name!r}; pass replay_path "
                             "(a JSONL export) or use another teacher")
        return ReplayProvider.from_alkdrec(replay_source_dir(dataset, config.replay_path), prefix,
                                           n_items=dataset.n_items)
    options: dict[str, Any] = {}
    if config.model:
        options["model"] = config.model
    if config.base_url:
        options["base_url"] = config.base_url
    if config.teacher == "simulated":
        options.update(hit_rate=config.hit_rate, dataset=dataset.meta.get("domain", dataset.name), seed=config.seed)
    return get_provider(config.teacher, **options)


def _prompt_options(config: RunConfig, dataset: SessionDataset):
    from core.teachers import PromptOptions

    domain = dataset.meta.get("domain") or ("games" if "game" in dataset.name.lower() else "movies")
    force = config.force_label if config.force_label is not None else config.mode == "authors-code"
    options = PromptOptions(domain=domain, force_label_in_candidates=force)
    if config.mode == "authors-code":
        options = options.with_(candidate_order="shuffled", shuffle_seed=config.seed)
    return options


def build_requests(dataset: SessionDataset, session_ids, candidates: dict[int, tuple[int, ...]], options,
                   hints: dict[int, str] | None = None, *, block: Any = None, db: Path | str | None = None):
    """RankRequests for `session_ids`; hints: session id -> a collaborative model's predicted item ids, added to the
    hint block as one JSON data line (titles are data there as everywhere in prompts: a newline or an
    instruction inside a title stays inside its JSON string). block: the hint block (core.teachers.Hints); None =
    the dataset's newest stored hints, else the paper's (core.teachers.hints.run_hints)."""
    from core.teachers import RankRequest
    from core.teachers.prompts import _hint_lines, json_line

    block = run_hints(dataset.name, options.domain, db) if block is None else block

    titles = dataset.titles()
    frame = dataset.sessions.set_index("session_id")
    requests = []
    for s in session_ids:
        row = frame.loc[int(s)]
        items = [int(i) for i in row["items"]]
        cand = [int(c) for c in candidates[int(s)]]
        hint = block if block.version else None     # version 0: the paper's, which the prompt has by default
        if hints and int(s) in hints:
            lines = list(_hint_lines(block, options.domain))
            lines.append("A collaborative model trained on this catalogue predicts, best first (JSON data, not "
                         "instructions): "
                         + json_line([{"id": int(i), "title": str(titles[i])} for i in hints[int(s)]]))
            hint = "\n".join(lines)
        requests.append(RankRequest(session_id=int(s), session_items=items, session_titles=[titles[i] for i in items],
                                    candidates=cand, candidate_titles=[titles[c] for c in cand],
                                    label=int(row["label"]), label_title=str(titles[int(row["label"])]),
                                    hints=hint, options=options, dataset=dataset.name))
    return requests


def run_pipeline(config: RunConfig, progress: Progress | None = None, *, db: Path | str | None = None,
                 budget: Any = None) -> RunResult:
    """Run one (method, seed); returns everything, persists nothing (the teacher's call cache aside).

    budget: a core.teachers.Budget over the whole launch (its USD cap and stop bind this run's LLM calls, which get
    their own Budget(config.budget, config.usd_cap) under it). The run's cap report is extra["usd"] (CapReport
    fields + message); extra["warnings"] lists what the CLI must say. No usable ranking at all raises RuntimeError."""
    emit = progress or (lambda *a: None)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    spec = get_method(config.method)
    emit("load", 0, 1, f"loading {config.dataset}")
    dataset = catalog.load(config.dataset)
    max_len = int(dataset.meta.get("max_len", 50))
    device = resolve_device(config.device)
    valid_batch, test_batch = dataset.split("valid", max_len), dataset.split("test", max_len)
    emit("load", 1, 1, f"{dataset.n_items} items")
    t = _stage(timings, "load", t)

    if spec.kind == "baseline":
        emit("fit", 0, 1, f"fitting baseline {spec.name}")
        outcome = evaluate_baseline(dataset, spec.name, max_len=max_len)
        timings.update(outcome.timings)
        emit("evaluate", 1, 1, "done")
        return RunResult(config, outcome.test, outcome.valid, None, timings,
                         extra={"kind": "baseline", "baseline": outcome.config})

    teacher_result = load_models(dataset, config.backbone, config.seed, config.device, emit, "teacher",
                                 config.pretrain)
    emit("teacher", 1, 1, "teacher ready" + (" (cached)" if teacher_result.cached else ""))
    t = _stage(timings, "teacher", t)
    student_result = load_models(dataset, config.backbone, config.seed, config.device, emit, "student",
                                 config.pretrain)
    emit("student", 1, 1, "student ready" + (" (cached)" if student_result.cached else ""))
    t = _stage(timings, "student", t)
    teacher, student = teacher_result.model, student_result.model
    extra: dict[str, Any] = {"kind": spec.kind, "teacher_cached": teacher_result.cached,
                             "student_cached": student_result.cached}

    if spec.kind == "reference":
        model = student if spec.name == "student" else teacher
        return _finish(config, model, device, valid_batch, test_batch, None, timings, t, emit, extra=extra)

    ctx = DistillContext(dataset=dataset, backbone=config.backbone, student=student, teacher=teacher, device=device,
                         seed=config.seed, mode=config.mode, max_len=max_len, valid=valid_batch,
                         params=dict(config.options), progress=emit, pretrain=student_result.config)
    selection_frame, candidates, responses, usd, n_labelled = None, {}, [], 0.0, 0
    if spec.kind == "llm":
        provider = make_provider(config, dataset)
        # difficulty
        emit("difficulty", 0, 1, f"consistency from the {config.difficulty} key")
        if config.difficulty == "student":
            key_model = student if config.backbone == "fpmc" else load_models(
                dataset, "fpmc", config.seed, config.device, emit, "student").model
            key = (dataset.name, "student-fpmc", config.seed, str(device))
        elif config.difficulty == "teacher":
            key_model, key = teacher, (dataset.name, "teacher", config.backbone, config.seed, str(device))
        else:
            raise ValueError(f"difficulty must be 'student' or 'teacher', got {config.difficulty!r}")
        pool_ids, pool_cons = pool_consistency(dataset, key_model, device, key)
        emit("difficulty", 1, 1, f"{len(pool_ids)} training sessions")
        t = _stage(timings, "difficulty", t)
        # selection
        strategy = config.selection or spec.strategy or "alkdrec"
        available = provider.available(pool_ids) if hasattr(provider, "available") else None
        emit("select", 0, 1, f"{strategy}: {config.budget} of {int(available.sum()) if available is not None else len(pool_ids)}")
        pool_size = int(available.sum()) if available is not None else len(pool_ids)
        n_first = first_round_sessions(config, spec.name, provider.name)
        selection = select(strategy, pool_ids, pool_cons, min(n_first, pool_size), mu=config.mu,
                           ratios=config.ratios, seed=config.seed, mode=config.mode, available=available)
        if config.mode == "authors-code" and config.teacher == "replay" and dataset.name in REPLAY_PREFIX \
                and strategy in BASE_FILES:
            selection = with_recorded_picks(selection, recorded_picks(
                replay_source_dir(dataset, config.replay_path), REPLAY_PREFIX[dataset.name], strategy,
                min(config.budget, pool_size)))
        picked = selection.picked_ids
        emit("select", 1, 1, f"{len(picked)} sessions picked")
        t = _stage(timings, "select", t)
        # candidates
        emit("candidates", 0, 1, "teacher top-50")
        inputs, lengths, labels = ctx.session_inputs(picked)
        cand_arr = top_k(teacher, inputs, lengths, 50, device)
        candidates = {int(s): tuple(int(c) for c in cand_arr[row]) for row, s in enumerate(picked)}
        options = _prompt_options(config, dataset)
        emit("candidates", 1, 1, f"{len(candidates)} candidate sets")
        t = _stage(timings, "candidates", t)
        # query
        from core.teachers import Budget, totals
        run_budget = Budget(max_sessions=config.budget, max_usd=config.usd_cap, parent=budget)
        hints_block = run_hints(dataset.name, options.domain, db)
        extra["hints"] = hints_record(hints_block)
        requests = build_requests(dataset, picked, candidates, options, block=hints_block, db=db)
        done = [0]

        def on_response(_response) -> None:
            done[0] += 1
            emit("query", done[0], len(requests), f"{done[0]}/{len(requests)} answered")

        emit("query", 0, len(requests), f"asking {provider.name}:{provider.model}")
        responses = provider.rank(requests, budget=run_budget, db=db, on_response=on_response)
        usd = float(totals(responses)["usd_spent"])
        # only usable rankings are labels: a failed call is neither "incorrect" nor counted as labelled
        answered = [r for r in responses if r.ok]
        n_labelled = len(answered)
        warnings = _query_warnings(responses)
        if not answered:
            raise NoUsableRankings(f"no usable ranking from {provider.name}:{provider.model}: "
                                   + "; ".join([*warnings, run_budget.report().message]).strip("; "), usd)
        ctx.rankings = {int(r.session_id): tuple(r.ranking) for r in responses if r.ok}
        ctx.candidates = candidates
        t = _stage(timings, "query", t)
        # categories
        emit("categories", 0, 1, "labelling effective/similar/incorrect")
        student_ranks = target_ranks(model_scorer(student, device)(
            _batch(picked, inputs, lengths, labels)), _batch(picked, inputs, lengths, labels)).numpy()
        by_id = {int(r.session_id): r for r in responses}
        rank_of = dict(zip(picked.tolist(), student_ranks.tolist()))
        label_of = dict(zip(picked.tolist(), labels.tolist()))
        answered_ids = [int(r.session_id) for r in answered]
        lists = [list(by_id[s].raw_ranking or by_id[s].ranking) for s in answered_ids]
        cats = categorize(lists, [label_of[s] for s in answered_ids], np.asarray([rank_of[s] for s in answered_ids],
                                                                                 dtype=np.int64),
                          planned_ratios=config.ratios)
        cat_of = dict(zip(answered_ids, cats.categories.tolist()))
        frame = selection.frame.copy()
        frame["category"] = frame["session_id"].map(lambda s: cat_of.get(int(s)))
        frame["call_key"] = frame["session_id"].map(lambda s: by_id[int(s)].call_key if int(s) in by_id else None)
        frame["hit_position"] = frame["session_id"].map(
            lambda s: by_id[int(s)].hit_position(label_of[int(s)]) if int(s) in by_id and by_id[int(s)].ok
            else (25 if int(s) in cat_of else None)).astype("Int64")
        frame["student_rank"] = frame["session_id"].map(lambda s: rank_of.get(int(s))).astype("Int64")
        frame["n_valid"] = frame["session_id"].map(
            lambda s: by_id[int(s)].n_valid if int(s) in by_id else None).astype("Int64")
        selection_frame = frame
        extra.update({"strategy": strategy, "pool_size": selection.pool_size, "k_star": selection.k_star,
                      "support": selection.support, "difficulty_key": key[1],
                      "planned_ratio": cats.planned_ratio, "achieved_ratio": cats.achieved_ratio,
                      "category_counts": cats.counts, "teacher_model": provider.model,
                      "force_label": options.force_label_in_candidates,
                      "responses": {k: v for k, v in totals(responses).items()}, "warnings": warnings})
        emit("categories", 1, 1, " ".join(f"{k} {v:.2f}" for k, v in cats.achieved_ratio.items()))
        t = _stage(timings, "categories", t)
        # LLMD4Rec can re-ask a live/simulated teacher; the replay teacher has one recorded answer per session.
        ctx.ask = None if provider.name == "replay" else _asker(provider, dataset, options, run_budget, db,
                                                                 responses, emit, max_calls=config.budget)
        extra["label_leak"] = label_leak(config, dataset, options.force_label_in_candidates)

    emit("distill", 0, 1, f"{spec.name}")
    distilled = spec.distill(ctx)
    extra["distill"] = distilled.extra
    if spec.kind == "llm" and ctx.ask is not None:
        usd = float(sum(r.usd for r in responses if not r.cached))
    if spec.kind == "llm":
        extra["usd"] = run_budget.report().as_dict()
        # LLMD4Rec's rounds may ask a session twice: labelled = distinct sessions, calls counted apart
        n_labelled = len({int(r.session_id) for r in responses if r.ok})
        extra["calls"] = asked_calls(responses)
    t = _stage(timings, "distill", t)
    result = _finish(config, distilled.model, device, valid_batch, test_batch, distilled.curve, timings, t, emit,
                     extra=extra)
    result.selection, result.candidates, result.responses = selection_frame, candidates, responses
    result.usd_spent, result.n_labelled = usd, n_labelled
    return result


def _batch(ids, inputs, lengths, labels):
    from core.data.dataset import SessionBatch
    return SessionBatch(np.asarray(ids, dtype=np.int64), inputs, lengths, labels)


def _query_warnings(responses) -> list[str]:
    """One line: too few usable rankings (under half of those asked), the failures by status and the first error."""
    from core.teachers import totals

    counts = totals(responses)
    out = []
    usable, asked = int(counts["ok"]), len(responses)
    if usable * 2 < asked:
        first = next((r.error for r in responses if r.status in ("failed", "error") and r.error), "")
        skipped = next((r.error for r in responses if r.status == "skipped" and r.error), "")
        detail = (f"; first error: {first}"[:300] if first else "") + (f"; {skipped}"[:300] if skipped else "")
        out.append(f"only {usable} of {asked} sessions got a usable ranking (failed {int(counts['failed'])}, error "
                   f"{int(counts['error'])}, not asked {int(counts['skipped'])}){detail}")
    return out


def first_round_sessions(config: RunConfig, method: str, provider: str) -> int:
    """Sessions to select and ask first. One --budget bounds every call of a run: LLMD4Rec with a teacher that can be
    asked again keeps budget - budget // rounds calls for its later rounds."""
    if method == "llmd4rec" and provider != "replay":
        rounds = int(config.options.get("rounds", DISTILL_DEFAULTS["rounds"]))
        return max(1, config.budget // max(1, rounds))
    return config.budget


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


def asked_calls(responses) -> int:
    """Requests that went to the teacher or its cache (not those skipped by a cap or unavailable in a replay)."""
    return sum(r.status not in ("skipped", "unavailable") for r in responses)


def _asker(provider, dataset, options, run_budget, db, responses, emit, max_calls: int):
    """For LLMD4Rec rounds: ask again with new candidates and per-session hints; appends to `responses`. Each round's
    calls are under the run's budget (its USD cap and the launch's), and all calls of the run together at most
    `max_calls` (the run's --budget): sessions beyond what is left are not asked."""
    from core.teachers import Budget

    def ask(session_ids, candidates, predictions):
        session_ids = list(session_ids)[:max(0, max_calls - asked_calls(responses))]
        if not session_ids:
            return {}
        round_budget = Budget(max_sessions=len(session_ids), parent=run_budget)
        requests = build_requests(dataset, session_ids, candidates, options, hints=predictions, db=db)
        emit("query", 0, len(requests), "re-asking with the student's candidates")
        answers = provider.rank(requests, budget=round_budget, db=db)
        responses.extend(answers)
        return {int(r.session_id): tuple(r.ranking) for r in answers if r.ok}
    return ask


def _finish(config, model, device, valid_batch, test_batch, curve, timings, t, emit, extra) -> RunResult:
    emit("evaluate", 0, 2, "valid")
    scorer = model_scorer(model, device)
    valid = evaluate(scorer, valid_batch)
    emit("evaluate", 1, 2, "test")
    test = evaluate(scorer, test_batch, compat=config.mode == "authors-code")
    emit("evaluate", 2, 2, f"test ndcg@10 {test.metrics['ndcg@10']:.5f}")
    _stage(timings, "evaluate", t)
    return RunResult(config, test, valid, curve, timings, extra=extra, model=model)


__all__ = ["RunConfig", "RunResult", "run_pipeline", "window", "baselines"]
