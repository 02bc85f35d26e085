"""Training a backbone to early stopping, and the checkpoint cache.

Training instances: every training session gives (its input -> its label); with `augment_prefixes` (our default)
also every prefix (first i inputs -> input i+1), the usual augmentation for session-based models. Validation uses
one instance per session (input -> label), like the test split. Adam, early stopping on validation NDCG@10 checked
after every epoch. Deterministic for a given seed on a given device. Checkpoints are cached per
(dataset, backbone, dim, seed, training config) under data/checkpoints and reused.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import pandas as pd
import torch
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError
from tqdm.auto import tqdm

from core.data.dataset import SessionBatch, SessionDataset, prefix_instances
from core.evaluate import EvalResult, NonFiniteScores, evaluate
from core.model_files import save_atomically
from core.models import BACKBONES, SessionModel, backbone_config, create
from core.paths import checkpoints_dir, confined

Progress = Callable[[str, int, int, str], None]


#: defaults of the settings a backbone may override through `SessionModel.train_defaults`. lr 1e-3 / patience 3
#: left the cross-entropy backbones undertrained, the d=10 students most (README "Training").
GENERAL_DEFAULTS: dict[str, object] = {"lr": 0.01, "patience": 5, "loss": "ce"}


class TrainConfig(BaseModel):
    """Everything that determines a trained backbone (the checkpoint cache key)."""

    model_config = ConfigDict(extra="forbid")

    backbone: str = "fpmc"
    dim: int = Field(100, ge=1)
    seed: int = 0
    # lr, patience and loss: None = the backbone's `train_defaults`, else GENERAL_DEFAULTS (see _backbone_defaults)
    lr: float | None = Field(None, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    # The paper's 1024 with full-softmax CE peaks after 1-3 epochs and then degrades on alkdrec-ml (FPMC d=100:
    # valid NDCG@10 0.0105 -> 0.0041; at lr 3e-4: 0.0112 -> 0.0057); 256 climbs steadily to 0.0235 (see README).
    batch_size: int = Field(256, ge=1)
    max_epochs: int = Field(30, ge=1)
    patience: int | None = Field(None, ge=1)
    loss: Literal["ce", "bpr-inbatch"] | None = None
    augment_prefixes: bool = True
    max_len: int | None = Field(None, ge=1, description="input window; None = the dataset's own (10 for alkdrec)")
    valid_metric: str = "ndcg@10"
    exclude_seen: bool = True
    # The backbone's own hyper-parameters (its `Config` in core/models), only those that differ from their defaults:
    # a default configuration dumps, hashes and names its checkpoint exactly as before this field existed.
    backbone_config: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _gather_backbone_settings(cls, data: Any) -> Any:
        """`--set layers=3` / pretrain {"layers": 3}: a key that is a field of the backbone's Config (and not of
        TrainConfig) moves into backbone_config."""
        if not isinstance(data, dict) or data.get("backbone", "fpmc") not in BACKBONES:
            return data
        fields = BACKBONES.get(data.get("backbone", "fpmc")).Config.model_fields
        own = {k: v for k, v in data.items() if k in fields and k not in cls.model_fields}
        if not own:
            return data
        rest = {k: v for k, v in data.items() if k not in own}
        return rest | {"backbone_config": {**dict(data.get("backbone_config") or {}), **own}}

    @field_validator("backbone_config")
    @classmethod
    def _backbone_settings(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """Checked against the backbone's Config; kept as the values that differ from its defaults."""
        backbone = info.data.get("backbone")
        if backbone not in BACKBONES:
            return value
        try:
            return backbone_config(backbone, value).changed()
        except ValidationError as error:
            problems = "; ".join(
                f"{backbone} has no setting {'.'.join(map(str, e['loc']))!r}" if e["type"] == "extra_forbidden" else
                f"{backbone}'s {'.'.join(map(str, e['loc']))} {e['msg'].replace('Input should be', 'must be')}"
                for e in error.errors())
            known = ", ".join(BACKBONES.get(backbone).Config.model_fields) or "none"
            raise PydanticCustomError("backbone_config", "{problems} (fix: {backbone}'s own settings are {known})",
                                      {"problems": problems, "backbone": backbone, "known": known}) from None

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped = handler(self)
        if isinstance(dumped, dict) and not dumped.get("backbone_config", True):
            dumped.pop("backbone_config")
        return dumped

    @model_validator(mode="after")
    def _backbone_defaults(self) -> "TrainConfig":
        """Fill unset lr/patience/loss: the backbone's own (measured) setting first, the general default otherwise.
        The resolved values are what the checkpoint key hashes: a changed default trains anew."""
        tuned = BACKBONES.get(self.backbone).train_defaults if self.backbone in BACKBONES else {}
        for name, general in GENERAL_DEFAULTS.items():
            if getattr(self, name) is None:
                setattr(self, name, tuned.get(name, general))
        return self


def pretrain_settings(backbone: str, pretrain: dict[str, Any] | None = None, mode: str = "paper") -> dict[str, Any]:
    """A run's pre-training settings (TrainConfig keyword arguments) for `backbone`: `pretrain` (the run spec's, flat
    backbone settings included) and, in mode authors-code, the backbone's `authors_code` variant (FPMC: window
    basket) for every field `pretrain` does not set itself. Other modes: `pretrain` unchanged."""
    values = dict(pretrain or {})
    variant = BACKBONES.get(backbone).authors_code if mode == "authors-code" and backbone in BACKBONES else {}
    if not variant:
        return values
    own = dict(values.pop("backbone_config", None) or {})
    values["backbone_config"] = {**variant, **{k: values.pop(k) for k in list(values) if k in variant}, **own}
    return values


@dataclass(frozen=True)
class Instances:
    """Training rows: inputs (n, L) int64 right-padded, lengths (n,), targets (n,), weights (n,) float32 or None."""

    inputs: np.ndarray
    lengths: np.ndarray
    targets: np.ndarray
    weights: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.targets)


@dataclass
class TrainResult:
    model: SessionModel
    config: dict
    curve: pd.DataFrame          # epoch, step, train_loss, valid_metric, valid_value, seconds
    best_epoch: int
    valid: EvalResult
    seconds: float
    checkpoint: Path | None
    cached: bool


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but no CUDA device is available")
    return torch.device(device)


def window(dataset: SessionDataset, config: TrainConfig) -> int:
    return int(config.max_len or dataset.meta.get("max_len", 50))


def training_instances(dataset: SessionDataset, max_len: int, augment_prefixes: bool) -> Instances:
    """Every training session's (window -> next item) rows; with augment_prefixes every prefix too, in session order
    then prefix length (core.data.dataset.prefix_instances)."""
    train = dataset.sessions[dataset.sessions["split"] == "train"]
    inputs, lengths, targets = prefix_instances(train["items"].tolist(), train["label"].to_numpy(), max_len,
                                                augment_prefixes)
    return Instances(inputs, lengths, targets)


def model_scorer(model: SessionModel, device: torch.device) -> Callable[[SessionBatch], torch.Tensor]:
    def score(batch: SessionBatch) -> torch.Tensor:
        model.eval()
        with torch.no_grad():
            inputs = torch.as_tensor(batch.inputs, device=device)
            lengths = torch.as_tensor(batch.lengths, device=device)
            return model.score(inputs, lengths).cpu()
    return score


def fit(model: SessionModel, instances: Instances, valid: SessionBatch, config: TrainConfig, device: torch.device,
        progress: Progress | None = None, stage: str = "train", check_every: int | None = None
        ) -> tuple[pd.DataFrame, int, EvalResult]:
    """Train `model` in place on `instances` (shuffled each epoch, `model.loss` with `config.loss` and the row
    weights) until validation `config.valid_metric` stops improving; see `fit_steps`."""
    tensors = [torch.as_tensor(a) for a in (instances.inputs, instances.lengths, instances.targets)]
    weights = torch.as_tensor(instances.weights) if instances.weights is not None else None
    batch = batch_indices(len(instances), config.batch_size)

    def step_loss(step_in_epoch: int, rng: np.random.Generator) -> torch.Tensor:
        index = batch(step_in_epoch, rng)
        inputs, lengths, targets = (t[index].to(device) for t in tensors)
        row_weights = weights[index].to(device) if weights is not None else None
        return model.loss(inputs, lengths, targets, config.loss, row_weights)

    steps_per_epoch = math.ceil(len(instances) / config.batch_size)
    return fit_steps(model, step_loss, steps_per_epoch, valid, config, device, progress, stage, check_every)


def batch_indices(n: int, batch_size: int) -> Callable[[int, np.random.Generator], torch.Tensor]:
    """index(step_in_epoch, rng) -> row indices of that step's batch of n rows; each epoch's first step draws a fresh
    permutation from rng (the last batch of an epoch may be short, so epochs never mix)."""
    order: list[torch.Tensor] = []

    def index(step_in_epoch: int, rng: np.random.Generator) -> torch.Tensor:
        if step_in_epoch == 0:
            order[:] = [torch.as_tensor(rng.permutation(n))]
        return order[0][step_in_epoch * batch_size:(step_in_epoch + 1) * batch_size]
    return index


class TrainingDiverged(RuntimeError):
    """A non-finite training loss or validation score: the model is discarded (never selected, cached or returned)."""

    def __init__(self, stage: str, check: int, what: str, lr: float) -> None:
        flag = "`alkd train --set` / `alkd run --pretrain`" if stage == "train" else "`alkd run --option`"
        what_ran = "training" if stage == "train" else stage
        super().__init__(f"{what_ran} diverged at epoch {check} ({what}) with lr {lr:g}; its model is discarded "
                         f"(fix: lower the learning rate, e.g. lr={lr / 10:g} via {flag})")


def fit_steps(model: SessionModel, step_loss: Callable[[int, np.random.Generator], torch.Tensor],
              steps_per_epoch: int, valid: SessionBatch, config: TrainConfig, device: torch.device,
              progress: Progress | None = None, stage: str = "train", check_every: int | None = None,
              parameters: Sequence[torch.nn.Parameter] | None = None, start_competes: bool = True
              ) -> tuple[pd.DataFrame, int, EvalResult]:
    """Adam on `step_loss(step_in_epoch, rng) -> scalar` until validation `config.valid_metric` stops improving for
    `config.patience` validations; restores the best weights. Returns (curve, best check, best validation result).

    Validation runs after every epoch of `steps_per_epoch` steps, or every `check_every` steps (the curve's `epoch`
    column then counts validations); at most `config.max_epochs` epochs either way. torch and rng are seeded with
    `config.seed`, so a run is deterministic. start_competes=False: the starting weights are validated (check 0 of
    the curve) but never returned, so the best check is >= 1 (fine-tuning from a model that was itself selected on
    this validation split would otherwise favour it).
    """
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model.to(device)
    optimiser = torch.optim.Adam(parameters if parameters is not None else model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)
    scorer = model_scorer(model, device)
    best = evaluate(scorer, valid, exclude_seen=config.exclude_seen)
    best_value, best_epoch, best_state = best.metrics[config.valid_metric], 0, _copy_state(model)
    rows = [dict(epoch=0, step=0, train_loss=float("nan"), valid_metric=config.valid_metric, valid_value=best_value,
                 seconds=0.0)]
    if not start_competes:
        best_value = -math.inf
    steps_per_epoch = max(1, steps_per_epoch)
    interval = check_every or steps_per_epoch
    total = config.max_epochs * steps_per_epoch
    checks = math.ceil(total / interval)
    started, step, stale = time.perf_counter(), 0, 0
    bar = tqdm(range(1, checks + 1), desc=f"{stage} {model.name} d={model.dim}", leave=False, disable=None)
    for check in bar:
        model.train()
        losses = []
        for _ in range(min(interval, total - step)):
            loss = step_loss(step % steps_per_epoch, rng)
            if not bool(torch.isfinite(loss)):
                bar.close()
                raise TrainingDiverged(stage, check, f"loss {loss.item()}", config.lr)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
            step += 1
        try:
            result = evaluate(scorer, valid, exclude_seen=config.exclude_seen)
        except NonFiniteScores:
            bar.close()
            raise TrainingDiverged(stage, check, "non-finite validation scores", config.lr) from None
        value = result.metrics[config.valid_metric]
        rows.append(dict(epoch=check, step=step, train_loss=float(np.mean(losses)), valid_metric=config.valid_metric,
                         valid_value=value, seconds=time.perf_counter() - started))
        bar.set_postfix(loss=f"{np.mean(losses):.4f}", **{config.valid_metric: f"{value:.4f}"})
        if progress:
            what = "epoch" if interval == steps_per_epoch else f"step {step}, check"
            progress(stage, check, checks, f"{what} {check}: valid {config.valid_metric} {value:.4f}")
        if value > best_value:
            best, best_value, best_epoch, best_state, stale = result, value, check, _copy_state(model), 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    bar.close()
    model.load_state_dict(best_state)
    return pd.DataFrame(rows), best_epoch, best


def _copy_state(model: SessionModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def fingerprint(dataset: SessionDataset) -> str:
    stats = dataset.stats().as_dict()
    return hashlib.sha256(json.dumps([dataset.name, stats, dataset.meta.get("seed")], sort_keys=True).encode()
                          ).hexdigest()[:12]


def checkpoint_path(dataset: SessionDataset, config: TrainConfig) -> Path:
    """Cache key: the dataset, every TrainConfig field and the backbone's code version (version 1 adds nothing, so
    checkpoints written before versions existed stay valid). backbone_config enters only with a value that differs
    from the backbone's defaults (TrainConfig dumps nothing for it otherwise), so default keys never changed."""
    version = BACKBONES.get(config.backbone).version if config.backbone in BACKBONES else 1
    tag = "" if version == 1 else f"|model-v{version}"
    key = hashlib.sha256((fingerprint(dataset) + config.model_dump_json() + tag).encode()).hexdigest()[:10]
    folder = confined(checkpoints_dir(), dataset.name, field="dataset", fix="use a fetched dataset's name")
    return confined(folder, f"{config.backbone}-d{config.dim}-s{config.seed}-{key}", what="checkpoint name",
                    field="--backbone", fix="--backbone fpmc", suffix=".pt")


def save_checkpoint(path: Path, model: SessionModel, config: TrainConfig, curve: pd.DataFrame, best_epoch: int,
                    seconds: float) -> Path:
    """Tensors and plain Python only (so `load_checkpoint` can refuse anything else), written under a temporary
    name of this writer alone and swapped in atomically: concurrent trainings of one configuration never mix."""
    payload = {"state": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "config": config.model_dump(),
               "curve": curve.to_dict("list"), "best_epoch": int(best_epoch), "seconds": float(seconds)}
    return save_atomically(payload, path)


def load_checkpoint(path: Path, dataset: SessionDataset, device: torch.device) -> tuple[SessionModel, dict]:
    """(model on device, the saved dict). weights_only: a checkpoint is tensors and plain Python, nothing in it runs
    on load; a file that is not (tampered, or not alkd's) is a ValueError naming it."""
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
        if not isinstance(saved, dict) or not {"state", "config", "curve", "best_epoch", "seconds"} <= set(saved):
            raise ValueError("missing keys")
    except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, OSError) as error:
        # our own words: torch's would suggest weights_only=False, i.e. running what the file holds
        raise ValueError(f"{path}: not a checkpoint alkd can load safely ({type(error).__name__} while reading it) "
                         "(fix: delete the file; the next run trains the model again)") from None
    config = TrainConfig(**saved["config"])
    model = create(config.backbone, dataset.n_items, config.dim, window(dataset, config), config.backbone_config)
    model.load_state_dict(saved["state"])
    return model.to(device), saved


def train(dataset: SessionDataset, config: TrainConfig, *, device: str = "auto", use_cache: bool = True,
          progress: Progress | None = None) -> TrainResult:
    """Train (or load from the checkpoint cache) one backbone; returns the model at its best validation epoch."""
    target = resolve_device(device)
    max_len = window(dataset, config)
    valid = dataset.split("valid", max_len)
    path = checkpoint_path(dataset, config)
    if use_cache and path.exists():
        model, saved = load_checkpoint(path, dataset, target)
        scored = evaluate(model_scorer(model, target), valid, exclude_seen=config.exclude_seen)
        return TrainResult(model, saved["config"], pd.DataFrame(saved["curve"]), saved["best_epoch"], scored,
                           saved["seconds"], path, cached=True)
    torch.manual_seed(config.seed)
    model = create(config.backbone, dataset.n_items, config.dim, max_len, config.backbone_config)
    instances = training_instances(dataset, max_len, config.augment_prefixes)
    started = time.perf_counter()
    curve, best_epoch, best = fit(model, instances, valid, config, target, progress)
    seconds = time.perf_counter() - started
    save_checkpoint(path, model, config, curve, best_epoch, seconds)
    return TrainResult(model, config.model_dump(), curve, best_epoch, best, seconds, path, cached=False)
