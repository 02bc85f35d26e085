"""The edge where engine results become store rows: start a run, persist an Outcome, mark failures."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Callable, Sequence

from core import store
from core.experiment import Outcome, versions
from core.model_files import model_path
from core.paths import is_safe_name


def new_run_id(*parts: object) -> str:
    return "-".join(str(p) for p in parts if p is not None) + "-" + uuid.uuid4().hex[:6]


def start_run(run_id: str, **fields: Any) -> Callable[[str, int, int, str], None]:
    """Create the run row (status running, this pid and its start time, library versions); returns a progress
    callback for it."""
    store.create_run(run_id, versions=versions(), pid=os.getpid(), **fields)

    def progress(stage: str, step: int, total: int, message: str = "") -> None:
        store.update_progress(run_id, stage, step, total, message)
    return progress


def create_distill_run(run_id: str, config: Any, *, group: str | None, tags: Sequence[str] = (),
                       db: Path | str | None = None) -> None:
    """The run row of one `alkd run` / `alkd sweep` cell: config a core.run_spec.RunConfig (its fields, budget and USD
    cap as columns), status running under this process."""
    store.create_run(run_id, kind="distill", dataset=config.dataset, backbone=config.backbone, role="student",
                     method=config.method, teacher=config.teacher, seed=config.seed, config=config.model_dump(),
                     versions=versions(), pid=os.getpid(), tags=tags, db=db)
    store.set_run_fields(run_id, db, budget=config.budget, usd_cap=config.usd_cap, groups=group)


def persist(run_id: str, outcome: Outcome | Any) -> None:
    """Metrics (test and valid), per-session test ranks, the training curve, then status done with timings.
    outcome: an Outcome, or anything with its test/valid/curve/timings (a pipeline RunResult)."""
    store.save_metrics(run_id, "test", outcome.test.metrics)
    if outcome.valid is not None:
        store.save_metrics(run_id, "valid", outcome.valid.metrics)
    store.save_session_results(run_id, "test", outcome.test.session_ids, outcome.test.targets, outcome.test.ranks)
    if outcome.curve is not None:
        store.save_curve(run_id, outcome.curve)
    store.finish_run(run_id, "done", timings=outcome.timings)


def fail(run_id: str, error: BaseException) -> None:
    status = "failed" if isinstance(error, Exception) else "cancelled"
    store.finish_run(run_id, status, message=f"{type(error).__name__}: {error}"[:500])


def delete_runs(run_ids: Sequence[str], db: Path | str | None = None) -> int:
    """Remove runs from the store and their saved models from data/models. Returns runs removed."""
    removed = store.delete_runs(run_ids, db)
    for run_id in run_ids:
        if is_safe_name(run_id):      # a stored id that is no plain name (an old import) never names a file
            model_path(run_id).unlink(missing_ok=True)
    return removed
