"""Shared pieces of the distillation methods: the context a method sees, ALKDRec's position weights, the
sampled-negative BPR loss as a model wrapper (so `core.train.fit` trains weighted rows through it), and teacher top-k
lists. Objectives that are not one loss per row (DLLM2Rec, LLMD4Rec) train through `core.train.fit_steps`.

Modes (spec alkdrec.md §13): `paper` — the method as the paper states it (position thresholds on 1-based ranks
[1,5]/(5,15]/(15,25], BPR of each ranked item against uniformly sampled negatives); `authors-code` — the notebooks'
behaviour (0-based thresholds j<=5/<=15/<=25, i.e. 6/10/9 items get 3/2/1, and BPR against in-batch negatives via
the backbone's own 'bpr-inbatch' loss; lr 1e-4 for Atten-Mixer).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from core.data.dataset import SessionBatch, SessionDataset, to_batch
from core.models.base import SessionModel
from core.train import Instances, Progress, TrainConfig, fit

MODES = ("paper", "authors-code")
OBJECTIVES = ("bpr", "bpr-inbatch", "ce")

#: Every distillation option (`alkd run --option KEY=VALUE`, the dashboard's Launch page): (default, type, meaning).
#: A default of None means "depends on the mode".
OPTIONS: dict[str, tuple[Any, type, str]] = {
    "lr": (1e-3, float, "Adam learning rate of the fine-tuning (authors-code Atten-Mixer: 1e-4)"),
    "batch_size": (1024, int, "rows per fine-tuning step"),
    "max_epochs": (60, int, "most fine-tuning epochs"),
    "patience": (5, int, "validations without a better metric before stopping"),
    "valid_metric": ("ndcg@10", str, "validation metric for early stopping"),
    "valid_every": (20, int, "validate at least every N steps, as the authors (an epoch of fewer steps is validated "
                             "at its end; ALKDRec, its ablations and TR)"),
    "objective": (None, str, "pairwise rows: bpr (paper), bpr-inbatch (authors-code) or ce"),
    "negatives": (1, int, "uniform negatives per row of the sampled-BPR objective"),
    "n_out": (25, int, "LLM list positions distilled (ALKDRec and its ablations)"),
    "tr_k": (50, int, "teacher top-k distilled per training session (TR)"),
    "dllm_k": (10, int, "LLM list positions distilled (DLLM2Rec)"),
    "lambda": (0.8, float, "weight of the ranking-distillation loss (DLLM2Rec)"),
    "gamma_position": (0.3, float, "position-weight share (DLLM2Rec)"),
    "gamma_consistency": (0.1, float, "consistency-weight share (DLLM2Rec)"),
    "rd_batch": (256, int, "ranking-distillation rows per step (DLLM2Rec)"),
    "rounds": (2, int, "teacher/student rounds when the teacher can be asked again (LLMD4Rec)"),
    "tau_q": (5.0, float, "temperature of the LLM target distribution (LLMD4Rec)"),
    "tau_w": (1.0, float, "temperature of the adaptive weight (LLMD4Rec)"),
    "llmd_batch": (64, int, "sessions per alignment step (LLMD4Rec)"),
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
    objective = checked.get("objective")
    if objective is not None and objective not in OBJECTIVES:
        raise ValueError(f"option 'objective' must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
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

    def param(self, name: str) -> Any:
        """The option `name` of this run (its --option override, else OPTIONS' default)."""
        if name not in OPTIONS:
            raise KeyError(f"{name!r} is not a distillation option; add it to core.distill.common.OPTIONS")
        return self.params.get(name, DEFAULTS[name])

    def train_config(self, **changes: Any) -> TrainConfig:
        lr = self.param("lr")
        if self.mode == "authors-code" and self.backbone == "attmix" and "lr" not in self.params:
            lr = 1e-4  # spec §11 #20
        values = dict(backbone=self.backbone, dim=self.student.dim, seed=self.seed, lr=lr,
                      batch_size=int(self.param("batch_size")), max_epochs=int(self.param("max_epochs")),
                      patience=int(self.param("patience")), valid_metric=str(self.param("valid_metric")),
                      loss=TrainConfig(backbone=self.backbone).loss)   # the student's pre-training loss
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


# ---- losses ---------------------------------------------------------------------------------------------------

class SampledBPR(SessionModel):
    """Wraps a backbone so `loss()` is BPR of each row's target against `negatives` uniformly sampled items:
    per row -mean_n log sigmoid(S(s, v) - S(s, v'_n)), weighted per row as in SessionModel.loss. Scoring is the
    backbone's. Used by `fit` for the paper's pairwise objective (spec §7 [P])."""

    def __init__(self, inner: SessionModel, negatives: int = 1) -> None:
        super().__init__(inner.n_items, inner.dim, inner.max_len)
        self.inner = inner
        self.negatives = int(negatives)
        self.name = inner.name  # type: ignore[misc]

    def encode(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.inner.encode(inputs, lengths)

    def item_embeddings(self) -> torch.Tensor:
        return self.inner.item_embeddings()

    def score(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.inner.score(inputs, lengths)

    def loss(self, inputs: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor, kind: str = "ce",
             weights: torch.Tensor | None = None) -> torch.Tensor:
        per_row = sampled_bpr(self.inner, inputs, lengths, targets, self.negatives)
        if weights is None:
            return per_row.mean()
        return (per_row * weights).sum() / weights.sum()


def sampled_bpr(model: SessionModel, inputs: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor,
                negatives: int = 1) -> torch.Tensor:
    """(B,) BPR loss of each target against `negatives` uniform items in 1..n_items."""
    session = model.encode(inputs, lengths)
    items = model.item_embeddings()
    scale = model.score_scale
    negative_ids = torch.randint(1, model.n_items + 1, (len(targets), negatives), device=targets.device)
    positive = scale * (session * items[targets]).sum(-1, keepdim=True)
    negative = scale * torch.einsum("bd,bnd->bn", session, items[negative_ids])
    return -F.logsigmoid(positive - negative).mean(1)


def fit_rows(ctx: DistillContext, rows: Instances, stage: str = "distill") -> tuple[SessionModel, pd.DataFrame, dict]:
    """Fine-tune ctx.student on weighted rows to early stopping on validation. Objective (option `objective`):
    `bpr` (paper default: sampled-negative BPR), `bpr-inbatch` (authors-code default), or `ce` (weighted full-softmax
    cross-entropy, the student's own pre-training loss). Returns the fine-tuned student, its curve and facts."""
    objective = str(ctx.param("objective") or ("bpr" if ctx.mode == "paper" else "bpr-inbatch"))
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
    config = ctx.train_config(loss="ce" if objective == "ce" else "bpr-inbatch")
    model: SessionModel = ctx.student
    if objective == "bpr":
        model = SampledBPR(ctx.student, int(ctx.param("negatives")))
    # Rows from 500 LLM lists make ~12 steps per epoch, TR's teacher lists ~360: validating only per epoch would
    # let TR drift for hundreds of steps between checks, so no method goes longer than valid_every steps unchecked.
    steps_per_epoch = -(-len(rows) // config.batch_size)
    valid_every = min(int(ctx.param("valid_every")), steps_per_epoch)
    curve, best_epoch, best = fit(model, rows, ctx.valid, config, ctx.device, ctx.progress, stage=stage,
                                  check_every=valid_every)
    student = model.inner if isinstance(model, SampledBPR) else model
    facts = {"rows": len(rows), "weight_sum": float(rows.weights.sum()) if rows.weights is not None else len(rows),
             "best_epoch": best_epoch, "valid_every": valid_every,
             "loss": {"bpr": "sampled-bpr"}.get(objective, objective), "train_config": config.model_dump()}
    return student, curve, facts


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
