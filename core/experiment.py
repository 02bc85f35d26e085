"""Train-and-evaluate one model on one dataset; returns results, persists nothing (the CLI does that)."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

import core
from core import baselines
from core.data.dataset import SessionDataset
from core.evaluate import EvalResult, evaluate
from core.train import Progress, TrainConfig, model_scorer, resolve_device, train, window

ROLE_DIMS = {"teacher": 100, "student": 10}
PAPER_WINDOW = 10


@dataclass
class Outcome:
    """What a run produced: test metrics and per-session ranks, the training curve, stage timings (seconds)."""

    test: EvalResult
    valid: EvalResult | None
    curve: pd.DataFrame | None
    timings: dict[str, float]
    config: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


def versions() -> dict[str, str]:
    import duckdb
    import torch
    return {"alkd": core.__version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "pandas": pd.__version__, "duckdb": duckdb.__version__}


def train_backbone(dataset: SessionDataset, config: TrainConfig, *, device: str = "auto", use_cache: bool = True,
                   progress: Progress | None = None) -> Outcome:
    started = time.perf_counter()
    result = train(dataset, config, device=device, use_cache=use_cache, progress=progress)
    trained = time.perf_counter()
    test = evaluate(model_scorer(result.model, resolve_device(device)), dataset.split("test", window(dataset, config)),
                    exclude_seen=config.exclude_seen)
    timings = {"train": trained - started, "evaluate": time.perf_counter() - trained}
    return Outcome(test, result.valid, result.curve, timings, result.config,
                   {"cached": result.cached, "best_epoch": result.best_epoch, "checkpoint": str(result.checkpoint)})


def evaluate_baseline(dataset: SessionDataset, name: str, *, max_len: int | None = None,
                      exclude_seen: bool = True, **params: Any) -> Outcome:
    length = int(max_len or dataset.meta.get("max_len", 50))
    started = time.perf_counter()
    model = baselines.make(name, **params).fit(baselines.training_sequences(dataset), dataset.n_items)
    fitted = time.perf_counter()
    valid = evaluate(model.score, dataset.split("valid", length), exclude_seen=exclude_seen)
    test = evaluate(model.score, dataset.split("test", length), exclude_seen=exclude_seen)
    config = {"baseline": name, "max_len": length, "exclude_seen": exclude_seen, **params}
    return Outcome(test, valid, None, {"fit": fitted - started, "evaluate": time.perf_counter() - fitted}, config)
