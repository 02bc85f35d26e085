"""Shared pieces of the distillation methods: the context a method sees, the options, ALKDRec's position weights,
the list transformations (controls), and the two ways a method trains the student.

Recipes (option `recipe`):
- `joint` (default in `paper` mode): the student's own pre-training loss on EVERY training instance plus lambda times
  the method's distillation loss (core.distill.losses), Adam to early stopping on validation NDCG@10. The starting
  model never competes in model selection: the pretrained student was itself picked on the same validation split,
  so letting it compete favours it (a winner's-curse bar); the returned model is the best fine-tuned check, and the
  run records how it compares with the start (`valid_start`, `valid_best`, `returned_start`).
- `finetune` (default in `authors-code` mode, and what the paper describes): fine-tune on the distillation rows
  alone; the starting model competes at check 0 (so such runs may return it unchanged: `returned_start`).
Init (option `init`): `pretrained` (warm start from the cached d=10 student), `scratch` (random weights of the same
shape, trained with the student's pre-training settings and the joint loss to early stopping, as DLLM2Rec does) or
`teacher-pca` (as scratch, but the student's output item table E_s (N+1, d) starts as the teacher's table E_t
(N+1, D) projected on its top-d right singular vectors, E_s = c * E_t V_d, c matching the random table's mean row norm:
the teacher's item geometry, the best rank-d approximation of its item-item similarities, before any step).

Modes (spec alkdrec.md §13): `paper` — position thresholds on 1-based ranks [1,5]/(5,15]/(15,25], BPR of each ranked
item against uniformly sampled negatives; `authors-code` — the notebooks' behaviour (0-based thresholds j<=5/<=15/<=25,
i.e. 6/10/9 items get 3/2/1, BPR against in-batch negatives via the backbone's own 'bpr-inbatch' loss; lr 1e-4 for
Atten-Mixer).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from core.data.dataset import SessionBatch, SessionDataset, to_batch
from core.distill.losses import list_target, listwise_kl, sampled_pairwise, soft_target_kd, temperature_for_perplexity
from core.models import create
from core.models.base import SessionModel
from core.train import Instances, Progress, TrainConfig, batch_indices, fit_steps, training_instances

MODES = ("paper", "authors-code")
OBJECTIVES = ("bpr", "bpr-inbatch", "ce")
RECIPES = ("joint", "finetune")
INITS = ("pretrained", "scratch", "teacher-pca")
LOSSES = ("kd", "bpr-top50", "listwise", "pairwise")
LISTS = ("llm", "in-candidates", "shuffled", "teacher")
KD_TEACHERS = ("model", "vsknn")

#: Every distillation option (`alkd run --option KEY=VALUE`, the dashboard's Launch page): (default, type, meaning).
#: A default of None means "depends on the mode or the method".
OPTIONS: dict[str, tuple[Any, type, str]] = {
    "recipe": (None, str, "joint: the student's own loss on all training data + lambda x distillation loss (paper "
                          "mode default); finetune: distillation rows alone, the starting model competing "
                          "(authors-code)"),
    "init": ("pretrained", str, "pretrained: warm-start from the d=10 student; scratch: random weights, trained with "
                                "the pre-training settings and the joint loss; teacher-pca: scratch with the item "
                                "table from the teacher's top principal directions"),
    "loss": (None, str, "distillation loss: kd (soft targets over the catalogue, TR's default) or bpr-top50 (TR's "
                        "old pairwise top-50); listwise (LLM methods' default) or pairwise (ALKDRec's alpha-weighted)"),
    "lists": ("llm", str, "what LLM methods distil: llm; in-candidates (ids outside our label-free candidates "
                          "dropped: a no-leak replay); shuffled (each list shuffled: a control); teacher (the teacher "
                          "recommender's top-25 on the same sessions: a control)"),
    "lambda": (None, float, "weight of the distillation loss in the joint recipe (1.0; DLLM2Rec 0.8)"),
    "kd_temperature": (None, float, "temperature T of soft-target KD (loss scaled by T^2); default: fitted to the "
                                    "teacher's score scale (its soft targets' perplexity = kd_perplexity), with "
                                    "lambda 1/T^2 unless set"),
    "kd_lambda": (0.0, float, "add the teacher recommender's soft-target KD (weight kd_lambda / T^2) to any joint run "
                              "beside its own loss: 1 = TR's KD plus the method's (e.g. the LLM lists); 0 = off"),
    "kd_teacher": ("model", str, "whose soft targets KD distils: model (the teacher recommender, d=100) or vsknn "
                                 "(session kNN on the training sessions, each instance's own session left out)"),
    "kd_perplexity": (10.0, float, "perplexity (exp of the mean entropy) of the teacher's soft targets that fits the "
                                   "default KD temperature"),
    "tau": (5.0, float, "temperature of the listwise target softmax(-position/tau) (listwise, LLMD4Rec)"),
    "list_temperature": (1.0, float, "temperature of the student's softmax over the candidates (listwise, LLMD4Rec); "
                                     "fitting it to the student's score scale as KD's was not better "
                                     "(alkdrec-ml seed 0)"),
    "lr": (1e-3, float, "Adam learning rate (pretrained init; authors-code Atten-Mixer: 1e-4; scratch: the "
                        "pre-training lr)"),
    "batch_size": (1024, int, "rows per step (pretrained init; scratch: the pre-training batch)"),
    "max_epochs": (60, int, "most epochs (pretrained init; scratch: the pre-training limit)"),
    "patience": (5, int, "validations without a better metric before stopping"),
    "valid_metric": ("ndcg@10", str, "validation metric for early stopping"),
    "valid_every": (20, int, "validate at least every N steps, as the authors (an epoch of fewer steps is validated "
                             "at its end)"),
    "base_loss": (None, str, "the joint recipe's base loss on all training data: ce or bpr-inbatch (default: the "
                             "student's own pre-training loss)"),
    "distill_batch": (256, int, "distillation rows (sessions for listwise) per joint step"),
    "objective": (None, str, "pairwise rows: bpr (paper), bpr-inbatch (authors-code) or ce"),
    "negatives": (1, int, "uniform negatives per row of the sampled-BPR objective"),
    "n_out": (25, int, "LLM list positions distilled (ALKDRec and its ablations)"),
    "tr_k": (50, int, "teacher top-k distilled per training session (TR with bpr-top50)"),
    "rd_k": (10, int, "teacher top-K per training instance (RD)"),
    "rd_mu": (1.0, float, "RD position importance exp(-r/mu)"),
    "dllm_k": (10, int, "LLM list positions distilled (DLLM2Rec)"),
    "gamma_position": (0.3, float, "position-weight share (DLLM2Rec)"),
    "gamma_consistency": (0.1, float, "consistency-weight share (DLLM2Rec)"),
    "rounds": (2, int, "teacher/student rounds when the teacher can be asked again (LLMD4Rec); one --budget bounds "
                       "all rounds' calls together"),
    "tau_w": (1.0, float, "temperature of the score-based weight (LLMD4Rec weight=score)"),
    "llmd_weight": ("rank", str, "LLMD4Rec sample weight: rank (the paper's, from the true item's ranks) or score"),
}
DEFAULTS: dict[str, Any] = {name: default for name, (default, _, _) in OPTIONS.items()}


def validate_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Check --option KEY=VALUE settings against OPTIONS: unknown keys and values of the wrong type raise a
    ValueError naming the key (and the closest known one); whole numbers given for a float are cast."""
    checked: dict[str, Any] = {}
    for key, value in options.items():
        if key not in OPTIONS:
            close = difflib.get_close_matches(key, OPTIONS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(OPTIONS)}"
            raise ValueError(f"unknown distillation option {key!r}{hint}")
        kind = OPTIONS[key][1]
        if kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"option {key!r} must be a number, not {value!r}")
            if kind is int and float(value) != int(value):
                raise ValueError(f"option {key!r} must be a whole number, not {value!r}")
            value = kind(value)
        elif not isinstance(value, str):
            raise ValueError(f"option {key!r} must be text, not {value!r}")
        checked[key] = value
    for key, allowed in (("objective", OBJECTIVES), ("base_loss", ("ce", "bpr-inbatch")), ("recipe", RECIPES),
                         ("init", INITS), ("loss", LOSSES),
                         ("lists", LISTS), ("llmd_weight", ("rank", "score")), ("kd_teacher", KD_TEACHERS)):
        if checked.get(key) is not None and checked[key] not in allowed:
            raise ValueError(f"option {key!r} must be one of {', '.join(allowed)}, not {checked[key]!r}")
    for key, low in (("lambda", "at least 0"), ("kd_lambda", "at least 0"), ("kd_temperature", "above 0"),
                     ("kd_perplexity", "above 0"),
                     ("list_temperature", "above 0"),
                     ("tau", "above 0"),
                     ("tau_w", "above 0"), ("rd_mu", "above 0")):
        value = checked.get(key)
        if value is not None and not (np.isfinite(value) and (value > 0 or value == 0 and "lambda" in key)):
            raise ValueError(f"option {key!r} must be a finite number {low}, not {value}")
    if checked.get("valid_every", 1) < 1:
        raise ValueError(f"option 'valid_every' must be at least 1 step, not {checked['valid_every']}")
    return checked


@dataclass
class DistillContext:
    """What a distillation method sees.

    student: the pretrained student (d=10), a private copy the method may modify. teacher: the pretrained teacher
    recommender (d=100) of the same backbone. rankings: session id -> the LLM's cleaned ranked ids (top first) for
    the selected sessions with a usable answer (empty for methods without an LLM). ask: for live/simulated teachers,
    `ask(session_ids, candidates, hints) -> {sid: ranking}` queries the teacher again (LLMD4Rec rounds); None for
    replay. params: the method's options (OPTIONS' defaults plus --option overrides).
    """

    dataset: SessionDataset
    backbone: str
    student: SessionModel
    teacher: SessionModel
    device: torch.device
    seed: int
    mode: str
    max_len: int
    valid: SessionBatch
    rankings: dict[int, tuple[int, ...]] = field(default_factory=dict)
    candidates: dict[int, tuple[int, ...]] = field(default_factory=dict)
    ask: Callable[..., dict[int, tuple[int, ...]]] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    progress: Progress | None = None
    pretrain: dict[str, Any] = field(default_factory=dict)   # the student's pre-training TrainConfig (scratch init)

    def param(self, name: str) -> Any:
        """The option `name` of this run (its --option override, else OPTIONS' default)."""
        if name not in OPTIONS:
            raise KeyError(f"{name!r} is not a distillation option; add it to core.distill.common.OPTIONS")
        return self.params.get(name, DEFAULTS[name])

    def lam(self, default: float = 1.0) -> float:
        """The joint weight of the distillation loss (option `lambda`, else the method's default)."""
        value = self.param("lambda")
        return default if value is None else float(value)

    @cached_property
    def training_rows(self) -> Instances:
        """Every training instance (each training session's prefixes -> next item), as pre-training used."""
        return training_instances(self.dataset, self.max_len, augment_prefixes=True)

    @cached_property
    def kd_scores(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The KD teacher's scores of training instances (kd_teacher_scores), built once per run: fitting the
        temperature and the KD term read the same teacher (V-SKNN is fitted once)."""
        return kd_teacher_scores(self)

    @property
    def objective(self) -> str:
        """The pairwise rows' objective: option `objective`, else bpr (paper) / bpr-inbatch (authors-code)."""
        return str(self.param("objective") or ("bpr" if self.mode == "paper" else "bpr-inbatch"))

    @property
    def recipe(self) -> str:
        return str(self.param("recipe") or ("finetune" if self.mode == "authors-code" else "joint"))

    def student_pretrain_config(self) -> TrainConfig:
        """The student's own pre-training settings (its loss is the joint recipe's base loss)."""
        values = dict(self.pretrain) or dict(backbone=self.backbone, dim=self.student.dim, seed=self.seed)
        return TrainConfig(**values)

    def train_config(self, **changes: Any) -> TrainConfig:
        lr = self.param("lr")
        if self.mode == "authors-code" and self.backbone == "attmix" and "lr" not in self.params:
            lr = 1e-4  # spec §11 #20
        values = dict(backbone=self.backbone, dim=self.student.dim, seed=self.seed, lr=lr,
                      batch_size=int(self.param("batch_size")), max_epochs=int(self.param("max_epochs")),
                      patience=int(self.param("patience")), valid_metric=str(self.param("valid_metric")),
                      loss=self.param("base_loss") or self.student_pretrain_config().loss)
        if self.param("init") != "pretrained":
            # from random weights: the pre-training recipe (its lr, batch, epochs), unless set explicitly
            pre = self.student_pretrain_config()
            values.update({k: getattr(pre, k) for k in ("lr", "batch_size", "max_epochs", "patience")
                           if k not in self.params})
        values.update(changes)
        return TrainConfig(**values)

    def session_inputs(self, session_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(inputs (n, L), lengths (n,), labels (n,)) of the given sessions, padded to the model window."""
        frame = self.dataset.sessions.set_index("session_id").loc[list(session_ids)]
        batch = to_batch(np.asarray(session_ids), list(frame["items"]), frame["label"].to_numpy(), self.max_len)
        return batch.inputs, batch.lengths, np.array(batch.labels)


@dataclass
class DistillResult:
    model: SessionModel
    curve: pd.DataFrame | None
    extra: dict[str, Any] = field(default_factory=dict)


# ---- ALKDRec position weights ---------------------------------------------------------------------------------

def position_weight(j: int, mode: str = "paper") -> float:
    """alpha for the 0-based position j of an item in the LLM's list.

    paper: 1-based rank in [1,5] -> 3, (5,15] -> 2, (15,25] -> 1, beyond -> 0 (j < 5 / < 15 / < 25).
    authors-code: [j <= 5] + [j <= 15] + [j <= 25] (the notebooks' duplication count; 6/10/9(+1) items).
    """
    if mode == "paper":
        return 3.0 if j < 5 else 2.0 if j < 15 else 1.0 if j < 25 else 0.0
    if mode == "authors-code":
        return float((j <= 5) + (j <= 15) + (j <= 25))
    raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")


def position_weights(n: int, mode: str = "paper") -> np.ndarray:
    """(n,) float32 alpha for positions 0..n-1."""
    return np.array([position_weight(j, mode) for j in range(n)], dtype=np.float32)


def ranking_rows(inputs: np.ndarray, lengths: np.ndarray, lists: Sequence[Sequence[int]],
                 weight_fn: Callable[[int], float], n_items: int) -> Instances:
    """One training row (session window -> listed item) per listed item with weight weight_fn(j) > 0.

    inputs/lengths: (n, L)/(n,) the sessions' windows; lists: n ranked id lists. Ids outside 1..n_items are skipped.
    """
    rows, targets, weights = [], [], []
    for row, items in enumerate(lists):
        for j, item in enumerate(items):
            w = weight_fn(j)
            if w <= 0 or not 1 <= int(item) <= n_items:
                continue
            rows.append(row)
            targets.append(int(item))
            weights.append(w)
    index = np.asarray(rows, dtype=np.int64)
    return Instances(inputs[index], lengths[index], np.asarray(targets, dtype=np.int64),
                     np.asarray(weights, dtype=np.float32))


# ---- training: one trainer, terms for every loss -------------------------------------------------------------

@dataclass(frozen=True)
class Term:
    """One distillation loss for `fit_distill`. size: rows it draws from; loss(model, index) -> scalar for a (b,)
    int64 index of those rows; batch: rows per joint step; on_base: its rows ARE the training instances
    (`DistillContext.training_rows`, e.g. KD), so a joint step reuses the base batch; lam: its joint weight."""

    size: int
    loss: Callable[[SessionModel, torch.Tensor], torch.Tensor]
    batch: int = 256
    on_base: bool = False
    lam: float = 1.0
    name: str = ""


def fit_distill(ctx: DistillContext, term: Term, stage: str = "distill", start: SessionModel | None = None,
                recipe: str | None = None) -> tuple[SessionModel, pd.DataFrame, dict[str, Any]]:
    """Train the student with `term` under `recipe` (default: the run's, module doc) to early stopping on validation.

    start: the model to continue from (LLMD4Rec's later rounds); default: the pretrained student (init=pretrained) or
    a seeded random one of the same shape (init=scratch; init=teacher-pca with the teacher's item geometry, module
    doc). Returns (model, curve, facts)."""
    init = str(ctx.param("init"))
    scratch = init != "pretrained" and start is None
    model = start if start is not None else ctx.student
    if scratch:
        torch.manual_seed(ctx.seed)
        model = create(ctx.backbone, ctx.dataset.n_items, ctx.student.dim, ctx.student.max_len,
                       ctx.student.config).to(ctx.device)
        if init == "teacher-pca":
            with torch.no_grad():
                table = model.item_embeddings()
                table.copy_(teacher_pca_items(ctx.teacher.item_embeddings().detach().to(table.device), table))
    config = ctx.train_config()
    recipe = recipe or ctx.recipe
    joint = recipe == "joint"
    terms = [term]
    if joint and term.name != "kd" and float(ctx.param("kd_lambda")) > 0:
        # the teacher recommender's soft targets on every training instance beside the method's own term
        temperature = kd_temperature_for(ctx)
        terms.append(kd_term(ctx, temperature, float(ctx.param("kd_lambda")) / temperature ** 2))
    if joint:
        base = ctx.training_rows
        tensors = [torch.as_tensor(a) for a in (base.inputs, base.lengths, base.targets)]
        batch, steps = batch_indices(len(base), config.batch_size), -(-len(base) // config.batch_size)

        def step(inner: int, rng: np.random.Generator) -> torch.Tensor:
            index = batch(inner, rng)
            x, n, y = (t[index].to(ctx.device) for t in tensors)
            loss = model.loss(x, n, y, config.loss)
            for each in terms:
                if each.size and each.lam > 0:
                    rows = index if each.on_base else torch.as_tensor(
                        rng.integers(0, each.size, min(each.batch, each.size)))
                    loss = loss + each.lam * each.loss(model, rows)
            return loss
    else:
        batch, steps = batch_indices(term.size, config.batch_size), -(-term.size // config.batch_size)

        def step(inner: int, rng: np.random.Generator) -> torch.Tensor:
            return term.loss(model, batch(inner, rng))
    # No method goes longer than valid_every steps unchecked (a joint epoch makes hundreds of steps, 500 LLM lists
    # ~12); from scratch the student is checked once an epoch, as in pre-training (its patience counts epochs there).
    every = steps if scratch and "valid_every" not in ctx.params else int(ctx.param("valid_every"))
    valid_every = min(every, max(1, steps))
    start_competes = not joint and not scratch and start is None
    curve, best_epoch, best = fit_steps(model, step, steps, ctx.valid, config, ctx.device, ctx.progress, stage,
                                        check_every=valid_every, start_competes=start_competes)
    metric = config.valid_metric
    facts = {"recipe": recipe, "init": init if scratch else "pretrained", "lambda": term.lam if joint else None,
             **({"kd_lambda": terms[1].lam, "kd_temperature": temperature} if len(terms) > 1 else {}),
             "best_epoch": best_epoch, "valid_every": valid_every, "start_competes": start_competes,
             "valid_start": float(curve["valid_value"].iloc[0]), "valid_best": float(best.metrics[metric]),
             "returned_start": bool(best_epoch == 0), "train_config": config.model_dump()}
    return model, curve, facts


def teacher_pca_items(teacher: torch.Tensor, random: torch.Tensor) -> torch.Tensor:
    """The teacher's item table (N+1, D) on its top-d right singular vectors, (N+1, d) with d = random.shape[1],
    scaled to the random table's mean row norm; row 0 (padding) stays zero. Uncentred: the shared direction (how
    popular an item is) is part of what the teacher's scores carry."""
    items = teacher[1:].float()
    _, _, v = torch.linalg.svd(items, full_matrices=False)
    projected = items @ v[: random.shape[1]].T
    scale = random[1:].norm(dim=1).mean() / projected.norm(dim=1).mean().clamp(min=1e-12)
    return torch.cat([torch.zeros_like(random[:1]), projected * scale])


def pairwise_term(ctx: DistillContext, rows: Instances) -> Term:
    """Weighted pairwise rows (window -> listed item, weight alpha): ctx.objective `bpr` (sampled negatives, the
    paper), `bpr-inbatch` (the authors' code) or `ce`; the row weights normalised by their sum per batch."""
    objective = ctx.objective
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
    tensors = [torch.as_tensor(a) for a in (rows.inputs, rows.lengths, rows.targets)]
    weights = torch.as_tensor(rows.weights if rows.weights is not None else np.ones(len(rows), np.float32))
    negatives = int(ctx.param("negatives"))

    def loss(model: SessionModel, index: torch.Tensor) -> torch.Tensor:
        x, n, y = (t[index].to(ctx.device) for t in tensors)
        w = weights[index].to(ctx.device)
        if objective == "bpr":
            return (sampled_bpr(model, x, n, y, negatives) * w).sum() / w.sum()
        return model.loss(x, n, y, objective, w)
    return Term(len(rows), loss, int(ctx.param("distill_batch")), lam=ctx.lam())


def kd_term(ctx: DistillContext, temperature: float, lam: float | None = None) -> Term:
    """Soft-target KD at `temperature` (kd_temperature_for) from the KD teacher (option kd_teacher: the teacher
    recommender, or V-SKNN) over the full catalogue, on the training instances; weight `lam`, else option lambda,
    else 1/T^2."""
    base = ctx.training_rows
    tensors = [torch.as_tensor(a) for a in (base.inputs, base.lengths)]
    teacher = ctx.kd_scores

    def loss(model: SessionModel, index: torch.Tensor) -> torch.Tensor:
        x, n = (t[index].to(ctx.device) for t in tensors)
        return soft_target_kd(model.score(x, n), teacher(index), temperature).mean()
    return Term(len(base), loss, on_base=True, lam=lam if lam is not None else ctx.lam(1.0 / temperature ** 2),
                name="kd")


def kd_teacher_scores(ctx: DistillContext) -> Callable[[torch.Tensor], torch.Tensor]:
    """index (b,) of training instances -> (b, N+1) float32 teacher scores on ctx.device, never a gradient.

    kd_teacher `model`: the pretrained teacher recommender (d=100). `vsknn`: V-SKNN (core.baselines, default
    settings) fitted on the training sessions; an instance never has the session it was cut from as a neighbour
    (that session's later items hold the instance's own target)."""
    base = ctx.training_rows
    kind = str(ctx.param("kd_teacher"))
    if kind == "model":
        tensors = [torch.as_tensor(a) for a in (base.inputs, base.lengths)]
        ctx.teacher.to(ctx.device).eval()

        def from_model(index: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return ctx.teacher.score(*(t[index].to(ctx.device) for t in tensors))
        return from_model
    if kind != "vsknn":
        raise ValueError(f"option kd_teacher must be one of {', '.join(KD_TEACHERS)}, not {kind!r}")
    from core.baselines.sknn import VSKNN

    knn = VSKNN().fit(ctx.dataset, ctx.dataset.n_items)
    origin = instance_sessions(ctx.dataset)

    def from_vsknn(index: torch.Tensor) -> torch.Tensor:
        rows = index.cpu().numpy()
        batch = SessionBatch(rows, base.inputs[rows], base.lengths[rows], base.targets[rows])
        return torch.as_tensor(knn.score(batch, exclude=origin[rows]), device=ctx.device)
    return from_vsknn


def instance_sessions(dataset: SessionDataset) -> np.ndarray:
    """(n_instances,) index, among the training sessions in dataset order, of the session each training instance
    (core.train.training_instances with prefixes: one per input item, in session order) was cut from."""
    train = dataset.sessions[dataset.sessions["split"] == "train"]
    return np.repeat(np.arange(len(train)), train["items"].map(len).to_numpy())


def kd_temperature_for(ctx: DistillContext) -> float:
    """Option kd_temperature, else T fitted to the KD teacher's scores (its softmax perplexity = kd_perplexity on a
    seeded sample of 2,048 training instances; core.distill.losses.temperature_for_perplexity)."""
    value = ctx.param("kd_temperature")
    if value is not None:
        return float(value)
    rows = np.random.default_rng(ctx.seed).permutation(len(ctx.training_rows))[:2048]
    logits = ctx.kd_scores(torch.as_tensor(rows))[:, 1:]
    return temperature_for_perplexity(logits.cpu(), float(ctx.param("kd_perplexity")))


def listwise_term(ctx: DistillContext, sids: Sequence[int], lists: Mapping[int, Sequence[int]],
                  weights: np.ndarray | None = None,
                  candidates: Mapping[int, Sequence[int]] | None = None) -> Term:
    """KL(softmax(-position/tau) || the student's softmax over the candidate set) per session, times its weight
    (1 unless given: LLMD4Rec's w2), averaged over the step's sessions. candidates: default ctx.candidates."""
    x, n, cand, pos, listed, mask = list_tensors(ctx, sids, lists, candidates)
    q = list_target(pos, listed, float(ctx.param("tau")))
    w = torch.as_tensor(weights if weights is not None else np.ones(len(sids)), dtype=torch.float32)
    temperature = float(ctx.param("list_temperature"))

    def loss(model: SessionModel, index: torch.Tensor) -> torch.Tensor:
        scores = model.score(x[index].to(ctx.device), n[index].to(ctx.device)).gather(1, cand[index].to(ctx.device))
        scores = scores / temperature
        kl = listwise_kl(q[index].to(ctx.device), scores, mask[index].to(ctx.device))
        return (w[index].to(ctx.device) * kl).mean()
    return Term(len(sids), loss, int(ctx.param("distill_batch")), lam=ctx.lam())


def list_tensors(ctx: DistillContext, sids: Sequence[int], lists: Mapping[int, Sequence[int]],
                 candidates: Mapping[int, Sequence[int]] | None = None):
    """Per session: the candidate set C_s = its listed ids (in list order) then the other candidates it was shown
    (`candidates`, default ctx.candidates).
    Returns tensors inputs (B, L), lengths (B,), cand (B, C) ids (0 = padding), pos (B, C) list positions,
    listed (B, C) bool, mask (B, C) bool (real entries)."""
    inputs, lengths, _ = ctx.session_inputs(sids)
    n_items = ctx.dataset.n_items
    sets = []
    for s in sids:
        listed = list(dict.fromkeys(int(i) for i in lists[s] if 1 <= int(i) <= n_items))
        offered = (ctx.candidates if candidates is None else candidates).get(s, ())
        shown = [int(c) for c in offered if 1 <= int(c) <= n_items and int(c) not in listed]
        sets.append((listed, listed + shown))
    width = max(len(full) for _, full in sets)
    cand, pos = np.zeros((len(sids), width), np.int64), np.zeros((len(sids), width), np.int64)
    listed_mask, mask = np.zeros((len(sids), width), bool), np.zeros((len(sids), width), bool)
    for row, (listed, full) in enumerate(sets):
        cand[row, :len(full)], mask[row, :len(full)] = full, True
        listed_mask[row, :len(listed)], pos[row, :len(listed)] = True, np.arange(len(listed))
    return [torch.as_tensor(a) for a in (inputs, lengths, cand, pos, listed_mask, mask)]


def sampled_bpr(model: SessionModel, inputs: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor,
                negatives: int = 1) -> torch.Tensor:
    """(B,) BPR loss of each target against `negatives` uniform items in 1..n_items."""
    session = model.encode(inputs, lengths)
    items = model.item_embeddings()
    scale = model.score_scale
    negative_ids = torch.randint(1, model.n_items + 1, (len(targets), negatives), device=targets.device)
    positive = scale * (session * items[targets]).sum(-1, keepdim=True)
    negative = scale * torch.einsum("bd,bnd->bn", session, items[negative_ids])
    return sampled_pairwise(positive, negative)


# ---- what LLM methods distil: the lists and their controls --------------------------------------------------

def distillation_lists(ctx: DistillContext, length: int = 25) -> dict[int, tuple[int, ...]]:
    """Session -> the list a method distils, by option `lists`: `llm` (the teacher's answers), `in-candidates` (ids
    outside our label-free candidates dropped: with the authors' replay lists, which were made with the true item
    forced into their candidates, this is the no-leak control), `shuffled` (each list in a seeded random order: is
    it the order that teaches?), `teacher` (the teacher recommender's top-`length` on the same sessions: is it the
    LLM, or any extra soft target?)."""
    how = str(ctx.param("lists"))
    lists = {int(s): tuple(int(i) for i in r) for s, r in ctx.rankings.items() if r}
    if how == "in-candidates":
        return {s: tuple(i for i in r if i in set(ctx.candidates.get(s, ()))) for s, r in lists.items()}
    if how == "shuffled":
        rng = np.random.default_rng(ctx.seed)
        return {s: tuple(int(i) for i in rng.permutation(r)) for s, r in lists.items()}
    if how == "teacher" and lists:
        sids = list(lists)
        inputs, lengths, _ = ctx.session_inputs(sids)
        top = top_k(ctx.teacher, inputs, lengths, length, ctx.device)
        return {s: tuple(int(i) for i in top[row]) for row, s in enumerate(sids)}
    return lists


# ---- teacher lists --------------------------------------------------------------------------------------------

def top_k(model: SessionModel, inputs: np.ndarray, lengths: np.ndarray, k: int, device: torch.device,
          exclude_seen: bool = True, chunk: int = 2048) -> np.ndarray:
    """(n, k) int64 the model's top-k item ids per session (padding never; window items excluded by default)."""
    out = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(inputs), chunk):
            x = torch.as_tensor(inputs[start:start + chunk], device=device)
            n = torch.as_tensor(lengths[start:start + chunk], device=device)
            scores = model.score(x, n).float()
            scores[:, 0] = -torch.inf
            if exclude_seen:
                scores.scatter_(1, x, -torch.inf)
            out.append(scores.topk(min(k, scores.shape[1] - 1), dim=1).indices.cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)


def as_params(options: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(options or {})
