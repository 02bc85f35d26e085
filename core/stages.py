"""The stages of one distillation run, each a small function with a typed result, testable alone on a tiny dataset;
core.pipeline.run_pipeline chains them:

    load -> pretrain (teacher, student) -> difficulty -> select -> candidates -> query -> categories -> distill
    -> evaluate

- load: the dataset, its window, the device, the valid/test batches (Loaded).
- pretrain: the cached (or newly trained) d=100 teacher recommender and d=10 student (Pretrained).
- difficulty: consistency c_s of every training session under the key model: the pretrained FPMC student (spec
  alkdrec.md §11 #1) or, with `difficulty="teacher"`, this backbone's teacher (Difficulty); memoised per process in a
  DifficultyCache keyed by the dataset's fingerprint and the key model's weights.
- select: core.selection.select over the training sessions (with the replay teacher only the recorded ones; in
  authors-code mode the authors' recorded picks) (Selected).
- candidates: the teacher recommender's top-50 of each picked session, window excluded, and the prompt options (the
  label forced in only with `force_label` / authors-code mode) (CandidateSets).
- query: the LLM teacher under Budget(max_sessions=budget, max_usd=usd_cap) and the DuckDB call cache (Answers);
  no usable ranking at all raises NoUsableRankings.
- categories: effective / similar / incorrect of each answered session against the student's rank (Categorised).
- distill: the method (core.distill) on a DistillContext (core.distill.DistillResult).
- evaluate: full ranking on valid and test (Evaluated).

Progress events name the stages as STAGES lists them (pretraining reports as `teacher` then `student`, the roles
core.train reports its epochs under; a reference baseline reports BASELINE_STAGES); timings use the same names.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from core.data import catalog
from core.data.dataset import SessionBatch, SessionDataset
from core.data.domain import domain_of
from core.data.sources.alkdrec import PREFIX as REPLAY_PREFIX  # dataset -> the authors' folder of its recorded lists
from core.distill import DEFAULTS as DISTILL_DEFAULTS
from core.distill import DistillContext
from core.distill.common import top_k
from core.evaluate import EvalResult, evaluate, target_ranks
from core.experiment import ROLE_DIMS
from core.models.base import SessionModel
from core.selection import categorize, consistency, select
from core.selection.authors_files import BASE_FILES, recorded_picks, with_recorded_picks
from core.teachers.hints import run_hints
from core.train import (
    TrainConfig,
    TrainResult,
    fingerprint,
    model_scorer,
    pretrain_settings,
    resolve_device,
    train,
)

if TYPE_CHECKING:
    from core.run_spec import RunConfig
    from core.selection import Selection
    from core.selection.categories import CategoryResult
    from core.teachers import Budget, PromptOptions, RankResponse
    from core.teachers.types import Hints

Progress = Callable[[str, int, int, str], None]
#: progress stage names of a run, in order (a method without the LLM skips difficulty..categories)
STAGES = ("load", "teacher", "student", "difficulty", "select", "candidates", "query", "categories", "distill",
          "evaluate")
#: those of a reference baseline (popular, transitions, sknn, vsknn)
BASELINE_STAGES = ("load", "fit", "evaluate")
#: candidates the teacher recommender proposes per session (kappa)
N_CANDIDATES = 50


def no_progress(stage: str, step: int, total: int, message: str = "") -> None:
    """A Progress that reports nothing."""


def under(stage: str, emit: Progress) -> Progress:
    """`emit` with every event reported under `stage` (a sub-step's own name, e.g. core.train's `train` or LLMD4Rec's
    `distill round 2`, goes to the front of the message), so a run's events name only STAGES."""

    def report(name: str, step: int, total: int, message: str = "") -> None:
        emit(stage, step, total, message if name == stage else f"{name}: {message}".rstrip(": "))
    return report


class Clock:
    """Seconds spent per stage name; `lap(name)` adds the time since the previous lap (or since creation)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self._last
        self._last = now


class NoUsableRankings(RuntimeError):
    """Every LLM call of a run failed or was not made: the run fails (one line saying why) instead of finishing with
    the student's metrics. usd_spent: what its calls cost all the same."""

    def __init__(self, message: str, usd_spent: float = 0.0) -> None:
        super().__init__(message)
        self.usd_spent = usd_spent


# ---------------------------------------------------------------------------------------------------------- load

@dataclass
class Loaded:
    """A run's data: the dataset, its input window (max_len), the torch device, the valid and test batches."""

    dataset: SessionDataset
    max_len: int
    device: torch.device
    valid: SessionBatch
    test: SessionBatch


def load(config: RunConfig, emit: Progress = no_progress) -> Loaded:
    """Stage `load`: the fetched dataset `config.dataset` and its valid/test batches on `config.device`."""
    emit("load", 0, 1, f"loading {config.dataset}")
    dataset = catalog.load(config.dataset)
    max_len = int(dataset.meta.get("max_len", 50))
    device = resolve_device(config.device)
    valid, test = dataset.split("valid", max_len), dataset.split("test", max_len)
    emit("load", 1, 1, f"{dataset.n_items} items")
    return Loaded(dataset, max_len, device, valid, test)


# ------------------------------------------------------------------------------------------------------ pretrain

def load_models(dataset: SessionDataset, backbone: str, seed: int, device: str, progress: Progress | None,
                role: str, pretrain: dict[str, Any] | None = None) -> TrainResult:
    """The cached (or newly trained) teacher/student of a backbone; progress events under stage `role`.
    pretrain: TrainConfig settings for both (e.g. {"loss": "ce"})."""
    config = TrainConfig(backbone=backbone, dim=ROLE_DIMS[role], seed=seed, **(pretrain or {}))
    return train(dataset, config, device=device, progress=under(role, progress) if progress else None)


Loader = Callable[..., TrainResult]   # load_models' signature (tests substitute untrained models)


@dataclass
class Pretrained:
    """The teacher recommender (d=100) and the student (d=10), each a core.train.TrainResult (model, config,
    cached, ...)."""

    teacher: TrainResult
    student: TrainResult


def pretrain(config: RunConfig, loaded: Loaded, emit: Progress = no_progress, *, loader: Loader = load_models,
             clock: Clock | None = None) -> Pretrained:
    """Stages `teacher` then `student`: both models of `config.backbone` with `config.pretrain`'s settings (in mode
    authors-code the backbone's authors' variant where the run does not set it: FPMC's window basket)."""
    settings = pretrain_settings(config.backbone, config.pretrain, config.mode)
    teacher = loader(loaded.dataset, config.backbone, config.seed, config.device, emit, "teacher", settings)
    emit("teacher", 1, 1, "teacher ready" + (" (cached)" if teacher.cached else ""))
    if clock is not None:
        clock.lap("teacher")
    student = loader(loaded.dataset, config.backbone, config.seed, config.device, emit, "student", settings)
    emit("student", 1, 1, "student ready" + (" (cached)" if student.cached else ""))
    if clock is not None:
        clock.lap("student")
    return Pretrained(teacher, student)


def distill_context(config: RunConfig, loaded: Loaded, models: Pretrained, emit: Progress = no_progress
                    ) -> DistillContext:
    """What a distillation method reads (core.distill.DistillContext); the LLM stages add rankings, candidates and
    the re-asker."""
    return DistillContext(dataset=loaded.dataset, backbone=config.backbone, student=models.student.model,
                          teacher=models.teacher.model, device=loaded.device, seed=config.seed, mode=config.mode,
                          max_len=loaded.max_len, valid=loaded.valid, params=dict(config.options),
                          progress=under("distill", emit), pretrain=models.student.config)


# ---------------------------------------------------------------------------------------------------- difficulty

@dataclass(frozen=True)
class DifficultyKey:
    """What determines a pool's consistency values: the dataset (name and core.train.fingerprint), the key model
    (`student-fpmc` or `teacher`, and a SHA-256 of its weights: the same checkpoint loaded again hits, a model
    trained with other settings does not) and the device."""

    dataset: str
    fingerprint: str
    key: str
    weights: str
    device: str


def weights_digest(model: SessionModel) -> str:
    """SHA-256 (hex) of a model's parameters and buffers, in state_dict order (names, dtypes, shapes and bytes)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        value = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{value.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


class DifficultyCache:
    """Per-process memo of (session_ids, c_s) by DifficultyKey: the runs of one launch share a key model, so its
    consistency over the pool is computed once. Holds numpy arrays only; `clear()` empties it."""

    def __init__(self) -> None:
        self._values: dict[DifficultyKey, tuple[np.ndarray, np.ndarray]] = {}

    def get(self, key: DifficultyKey, compute: Callable[[], tuple[np.ndarray, np.ndarray]]
            ) -> tuple[np.ndarray, np.ndarray]:
        """The cached value of `key`, else `compute()` stored under it."""
        if key not in self._values:
            self._values[key] = compute()
        return self._values[key]

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._values)

    def clear(self) -> None:
        self._values.clear()


#: the cache run_pipeline uses unless given another
DIFFICULTY_CACHE = DifficultyCache()


def pool_consistency(dataset: SessionDataset, model: SessionModel, device: torch.device
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(session_ids (n,), c_s (n,)) of every training session under `model` (core.selection.consistency)."""
    train_batch = dataset.split("train", int(dataset.meta.get("max_len", 50)))
    model.eval()
    with torch.no_grad():
        x = torch.as_tensor(train_batch.inputs, device=device)
        n = torch.as_tensor(train_batch.lengths, device=device)
        u = torch.cat([model.encode(x[i:i + 4096], n[i:i + 4096]) for i in range(0, len(x), 4096)])
        emb = model.item_embeddings()
    values = consistency(u.cpu().numpy(), emb.detach().cpu().numpy(), train_batch.inputs, train_batch.lengths)
    return train_batch.session_ids, values


@dataclass
class Difficulty:
    """Consistency c_s (n,) of the training sessions `session_ids` (n,) under the key model named `key`
    ("student-fpmc" | "teacher", stored as extra.difficulty_key)."""

    session_ids: np.ndarray
    consistency: np.ndarray
    key: str


def difficulty(config: RunConfig, loaded: Loaded, models: Pretrained, emit: Progress = no_progress, *,
               loader: Loader = load_models, cache: DifficultyCache = DIFFICULTY_CACHE) -> Difficulty:
    """Stage `difficulty`: c_s of every training session under the key model (`config.difficulty`: the FPMC student,
    loaded with default settings (the authors' variant in authors-code mode) when the run's backbone is another, or
    this backbone's teacher)."""
    emit("difficulty", 0, 1, f"consistency from the {config.difficulty} key")
    if config.difficulty == "student":
        name = "student-fpmc"
        key_result = models.student if config.backbone == "fpmc" else loader(
            loaded.dataset, "fpmc", config.seed, config.device, under("difficulty", emit), "student",
            pretrain_settings("fpmc", None, config.mode))
    elif config.difficulty == "teacher":
        name, key_result = "teacher", models.teacher
    else:
        raise ValueError(f"difficulty must be 'student' or 'teacher', got {config.difficulty!r}")
    key = DifficultyKey(loaded.dataset.name, fingerprint(loaded.dataset), name, weights_digest(key_result.model),
                        str(loaded.device))
    ids, values = cache.get(key, lambda: pool_consistency(loaded.dataset, key_result.model, loaded.device))
    emit("difficulty", 1, 1, f"{len(ids)} training sessions")
    return Difficulty(ids, values, name)


# -------------------------------------------------------------------------------------------------------- select

def first_round_sessions(config: RunConfig, method: str, provider: str) -> int:
    """Sessions to select and ask first. One --budget bounds every call of a run: LLMD4Rec with a teacher that can be
    asked again keeps budget - budget // rounds calls for its later rounds."""
    if method == "llmd4rec" and provider != "replay":
        rounds = int(config.options.get("rounds", DISTILL_DEFAULTS["rounds"]))
        return max(1, config.budget // max(1, rounds))
    return config.budget


@dataclass
class Selected:
    """The selection over the pool (core.selection.Selection: frame, pool_size, k_star, support), the strategy that
    made it, and the picked session ids (n_picked,) in pick order."""

    strategy: str
    selection: Selection
    picked: np.ndarray


def select_sessions(config: RunConfig, method: str, method_strategy: str | None, loaded: Loaded, pool: Difficulty,
                    provider: Any, emit: Progress = no_progress) -> Selected:
    """Stage `select`: the first round's sessions (first_round_sessions) by `config.selection`, else the method's
    strategy, else alkdrec; only sessions the provider has (a replay teacher's recorded ones); in authors-code mode
    with the authors' replay, their recorded picks."""
    strategy = config.selection or method_strategy or "alkdrec"
    available = provider.available(pool.session_ids) if hasattr(provider, "available") else None
    pool_size = int(available.sum()) if available is not None else len(pool.session_ids)
    emit("select", 0, 1, f"{strategy}: {config.budget} of {pool_size}")
    n_first = first_round_sessions(config, method, provider.name)
    selection = select(strategy, pool.session_ids, pool.consistency, min(n_first, pool_size), mu=config.mu,
                       ratios=config.ratios, seed=config.seed, mode=config.mode, available=available)
    if config.mode == "authors-code" and config.teacher == "replay" and loaded.dataset.name in REPLAY_PREFIX \
            and strategy in BASE_FILES:
        selection = with_recorded_picks(selection, recorded_picks(
            replay_source_dir(loaded.dataset, config.replay_path), REPLAY_PREFIX[loaded.dataset.name], strategy,
            min(config.budget, pool_size)))
    picked = selection.picked_ids
    emit("select", 1, 1, f"{len(picked)} sessions picked")
    return Selected(strategy, selection, picked)


# ---------------------------------------------------------------------------------------------------- candidates

def prompt_options(config: RunConfig, dataset: SessionDataset) -> PromptOptions:
    """The prompt settings of a run: the dataset's domain, the label forced into the candidates when
    `config.force_label` says so (default: in authors-code mode only), shuffled candidates in authors-code mode."""
    from core.teachers import PromptOptions

    force = config.force_label if config.force_label is not None else config.mode == "authors-code"
    options = PromptOptions(domain=domain_of(dataset.name, dataset.meta), force_label_in_candidates=force)
    if config.mode == "authors-code":
        options = options.with_(candidate_order="shuffled", shuffle_seed=config.seed)
    return options


@dataclass
class CandidateSets:
    """Per picked session: the teacher recommender's top-50 (`candidates`: session id -> item ids); the sessions'
    inputs (n, L), lengths (n,) and labels (n,) in pick order; the prompt options."""

    candidates: dict[int, tuple[int, ...]]
    inputs: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    options: PromptOptions

    def batch(self, picked: np.ndarray) -> SessionBatch:
        """The picked sessions as a SessionBatch (ids in pick order)."""
        return SessionBatch(np.asarray(picked, dtype=np.int64), self.inputs, self.lengths, self.labels)


def candidate_sets(config: RunConfig, ctx: DistillContext, picked: np.ndarray, emit: Progress = no_progress
                   ) -> CandidateSets:
    """Stage `candidates`: the teacher recommender's (ctx.teacher) top-50 of each picked session, input window
    excluded."""
    emit("candidates", 0, 1, "teacher top-50")
    inputs, lengths, labels = ctx.session_inputs(picked)
    top = top_k(ctx.teacher, inputs, lengths, N_CANDIDATES, ctx.device)
    candidates = {int(s): tuple(int(c) for c in top[row]) for row, s in enumerate(picked)}
    options = prompt_options(config, ctx.dataset)
    emit("candidates", 1, 1, f"{len(candidates)} candidate sets")
    return CandidateSets(candidates, inputs, lengths, labels, options)


# --------------------------------------------------------------------------------------------------------- query

def replay_source_dir(dataset: SessionDataset, folder: str | Path | None = None) -> Path:
    """The folder of the ALKDRec authors' files (ML/, Games/) for an alkdrec dataset: `folder` when it is one
    (RunConfig.replay_path may name a folder or a file), else the one the dataset was fetched from (meta source_dir).
    Every pinned file of the dataset there is checked against its SHA-256 before the run reads it; absent or edited:
    a DataError naming the folder or file and the fix."""
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
    """The LLM teacher of a run (core.teachers provider): the replay of recorded rankings, the simulated teacher
    (hit rate, the dataset's domain, the run's seed) or a live one (model, base_url)."""
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
        options.update(hit_rate=config.hit_rate, dataset=domain_of(dataset.name, dataset.meta), seed=config.seed)
    return get_provider(config.teacher, **options)


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


def query_warnings(responses) -> list[str]:
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


def asked_calls(responses) -> int:
    """Requests that went to the teacher or its cache (not those skipped by a cap or unavailable in a replay)."""
    return sum(r.status not in ("skipped", "unavailable") for r in responses)


@dataclass
class Answers:
    """What the teacher answered: every RankResponse (LLMD4Rec's later rounds append theirs), the run's Budget
    (its cap report is extra.usd), the hint block sent, USD spent and the warnings the CLI prints."""

    responses: list[RankResponse]
    budget: Budget
    hints: Hints
    usd: float
    warnings: list[str] = field(default_factory=list)

    @property
    def answered(self) -> list[RankResponse]:
        """Responses with a usable ranking, in order (a failed call is neither 'incorrect' nor labelled)."""
        return [r for r in self.responses if r.ok]

    @property
    def rankings(self) -> dict[int, tuple[int, ...]]:
        """Session id -> the usable ranking."""
        return {int(r.session_id): tuple(r.ranking) for r in self.responses if r.ok}


def query(config: RunConfig, dataset: SessionDataset, provider: Any, picked: np.ndarray, sets: CandidateSets,
          emit: Progress = no_progress, *, db: Path | str | None = None, budget: Budget | None = None) -> Answers:
    """Stage `query`: ask `provider` to rank each picked session's candidates, under Budget(config.budget,
    config.usd_cap) (itself under the launch's `budget`) and the call cache in `db`. NoUsableRankings when no
    answer is usable."""
    from core.teachers import Budget, totals

    run_budget = Budget(max_sessions=config.budget, max_usd=config.usd_cap, parent=budget)
    block = run_hints(dataset.name, sets.options.domain, db)
    requests = build_requests(dataset, picked, sets.candidates, sets.options, block=block, db=db)
    done = [0]

    def on_response(_response) -> None:
        done[0] += 1
        emit("query", done[0], len(requests), f"{done[0]}/{len(requests)} answered")

    emit("query", 0, len(requests), f"asking {provider.name}:{provider.model}")
    responses = provider.rank(requests, budget=run_budget, db=db, on_response=on_response)
    answers = Answers(responses, run_budget, block, float(totals(responses)["usd_spent"]), query_warnings(responses))
    if not answers.answered:
        raise NoUsableRankings(f"no usable ranking from {provider.name}:{provider.model}: "
                               + "; ".join([*answers.warnings, run_budget.report().message]).strip("; "), answers.usd)
    return answers


def asker(provider, dataset: SessionDataset, options, run_budget, db, responses: list, emit: Progress,
          max_calls: int):
    """For LLMD4Rec rounds (DistillContext.ask): ask again with new candidates and per-session hints; appends to
    `responses`. Each round's calls are under the run's budget (its USD cap and the launch's), and all calls of the
    run together at most `max_calls` (the run's --budget): sessions beyond what is left are not asked."""
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


# ---------------------------------------------------------------------------------------------------- categories

@dataclass
class Categorised:
    """The pool frame (the selection's FRAME_COLUMNS + category, call_key, hit_position, student_rank, n_valid) and
    the categories of the answered sessions (core.selection.categories.CategoryResult: planned/achieved ratios,
    counts)."""

    frame: pd.DataFrame
    categories: CategoryResult


def categorise(config: RunConfig, selected: Selected, sets: CandidateSets, answers: Answers, student: SessionModel,
               device: torch.device, emit: Progress = no_progress) -> Categorised:
    """Stage `categories`: each answered session's category (effective / similar / incorrect) from the LLM's list
    and the student's rank of the true next item, written into the pool frame with the call facts."""
    emit("categories", 0, 1, "labelling effective/similar/incorrect")
    picked = selected.picked
    batch = sets.batch(picked)
    student_ranks = target_ranks(model_scorer(student, device)(batch), batch).numpy()
    by_id = {int(r.session_id): r for r in answers.responses}
    rank_of = dict(zip(picked.tolist(), student_ranks.tolist()))
    label_of = dict(zip(picked.tolist(), sets.labels.tolist()))
    answered_ids = [int(r.session_id) for r in answers.answered]
    lists = [list(by_id[s].raw_ranking or by_id[s].ranking) for s in answered_ids]
    cats = categorize(lists, [label_of[s] for s in answered_ids],
                      np.asarray([rank_of[s] for s in answered_ids], dtype=np.int64), planned_ratios=config.ratios)
    cat_of = dict(zip(answered_ids, cats.categories.tolist()))
    frame = selected.selection.frame.copy()
    frame["category"] = frame["session_id"].map(lambda s: cat_of.get(int(s)))
    frame["call_key"] = frame["session_id"].map(lambda s: by_id[int(s)].call_key if int(s) in by_id else None)
    frame["hit_position"] = frame["session_id"].map(
        lambda s: by_id[int(s)].hit_position(label_of[int(s)]) if int(s) in by_id and by_id[int(s)].ok
        else (25 if int(s) in cat_of else None)).astype("Int64")
    frame["student_rank"] = frame["session_id"].map(lambda s: rank_of.get(int(s))).astype("Int64")
    frame["n_valid"] = frame["session_id"].map(
        lambda s: by_id[int(s)].n_valid if int(s) in by_id else None).astype("Int64")
    emit("categories", 1, 1, " ".join(f"{k} {v:.2f}" for k, v in cats.achieved_ratio.items()))
    return Categorised(frame, cats)


# ------------------------------------------------------------------------------------------------------ evaluate

@dataclass
class Evaluated:
    """Full-ranking metrics of the evaluated model on the valid and test splits."""

    valid: EvalResult
    test: EvalResult


def evaluate_model(config: RunConfig, model: SessionModel, loaded: Loaded, emit: Progress = no_progress
                   ) -> Evaluated:
    """Stage `evaluate`: `model` on valid, then test (with the authors' compat ndcg in authors-code mode)."""
    emit("evaluate", 0, 2, "valid")
    scorer = model_scorer(model, loaded.device)
    valid = evaluate(scorer, loaded.valid)
    emit("evaluate", 1, 2, "test")
    test = evaluate(scorer, loaded.test, compat=config.mode == "authors-code")
    emit("evaluate", 2, 2, f"test ndcg@10 {test.metrics['ndcg@10']:.5f}")
    return Evaluated(valid, test)
