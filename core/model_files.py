"""Model files: a run's final model (the distilled d=10 student, or the teacher/student of a reference row) as one
self-contained file an engineer can ship, and loading it back to recommend.

A file holds the backbone name, catalogue size, dimension and input window, the backbone's own settings that differ
from their defaults, the weights, and what produced it (run
id, dataset, method, seed, teacher, test metrics). Item ids are the dataset's canonical ids (1..n_items, 0 =
padding); `alkd recommend` maps them to titles when the dataset is present.

    save_model(model, models_dir() / f"{run_id}.pt", {"run_id": run_id, ...})
    model, meta = load_model(path)            # a SessionModel in eval mode
    ids, scores = recommend(model, [12, 55, 78], k=10)
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from core.data.dataset import to_batch
from core.models.base import SessionModel
from core.models.registry import create
from core.paths import confined, models_dir

FORMAT = "alkd-model/1"


def model_path(run_id: str) -> Path:
    """data/models/RUN_ID.pt; UnsafeName (a DataError) when the run id is not a plain name."""
    return confined(models_dir(), run_id, what="run id", field="run", fix="give a run id from `alkd runs list`",
                    suffix=".pt")


def save_model(model: SessionModel, path: Path, meta: dict[str, Any]) -> Path:
    """Write model (weights on CPU) and meta to path atomically (a temp file renamed), so a reader never sees half a
    file. Returns path."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "backbone": model.name, "n_items": model.n_items, "dim": model.dim,
               "max_len": model.max_len, "backbone_config": model.config.changed(), "state": state, "meta": meta}
    return save_atomically(payload, path)


def save_atomically(payload: Any, path: Path) -> Path:
    """torch.save to a temporary file of this writer alone (pid + random suffix, same folder), then an atomic
    replace: concurrent writers of one path never mix their bytes, and a reader sees a whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    try:
        torch.save(payload, partial)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def load_model(path: Path | str, device: str | torch.device = "cpu") -> tuple[SessionModel, dict[str, Any]]:
    """(model in eval mode, meta). ValueError naming the file when it is not an alkd model file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model file (runs save theirs under {models_dir()})")
    # weights_only: a model file is plain tensors and builtins; nothing in it is executed on load
    payload = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not an alkd model file (expected format {FORMAT!r})")
    model = create(payload["backbone"], int(payload["n_items"]), int(payload["dim"]), int(payload["max_len"]),
                   payload.get("backbone_config"))   # files written before backbone settings existed: the defaults
    model.load_state_dict(payload["state"])
    return model.to(device).eval(), dict(payload["meta"])


def recommend(model: SessionModel, items: Sequence[int], k: int = 10, exclude_seen: bool = True
              ) -> tuple[np.ndarray, np.ndarray]:
    """Top-k next items for one session. items: the session's item ids, oldest first (the last max_len are used).
    Returns (ids (k,) int64, scores (k,) float32), best first; never padding nor (exclude_seen, the default) any item
    of the session, also those before the model's window (evaluation excludes only the window)."""
    unknown = [i for i in items if not 1 <= int(i) <= model.n_items]
    if unknown:
        raise ValueError(f"item ids {unknown[:5]} are outside this model's catalogue 1..{model.n_items}")
    if not items:
        raise ValueError("a session needs at least one item")
    window = [int(i) for i in items][-model.max_len:]
    device = next(model.parameters()).device
    batch = to_batch(np.zeros(1), [window], np.zeros(1), model.max_len)
    with torch.no_grad():
        scores = model.score(torch.as_tensor(batch.inputs, device=device),
                             torch.as_tensor(batch.lengths, device=device)).float()[0]
    scores[0] = -torch.inf
    seen = sorted({int(i) for i in items}) if exclude_seen else []
    if seen:
        scores[torch.as_tensor(seen, device=device)] = -torch.inf
    top = scores.topk(max(0, min(k, model.n_items - len(seen))))
    return top.indices.cpu().numpy(), top.values.cpu().numpy()


__all__ = ["FORMAT", "load_model", "model_path", "models_dir", "recommend", "save_atomically", "save_model"]
