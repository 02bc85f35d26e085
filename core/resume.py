"""`alkd run --resume RUN_ID`: continue a distillation run that was killed (SIGKILL at any stage), failed or was
cancelled, under the same run id.

    plan = plan_resume("run-ml-fpmc-alkdrec-s0-1a2b3c")   # ResumeRefused: one line (done, running, unknown id)
    result, tables = resume_run(plan, progress)           # the pipeline again; its rows in one transaction

What carries over, so nothing is paid or written twice:
- the RunConfig, rebuilt from runs.config (the run spec it was created with);
- checkpoints (core.train's cache: a teacher or student that finished training is loaded, one killed mid-training is
  trained again, deterministically per seed), hence the same selection, candidates and prompts, hence the same LLM
  call keys: every reply the killed attempt got back is read from the llm_calls cache, never asked again;
- money: what the earlier attempts paid (their ledger rows, `store.attempt_usd`) is runs.prior_usd. It counts
  against the run's USD cap (the resumed attempt may spend only usd_cap - prior_usd) and is part of its final
  usd_spent. A `pending` ledger row the killed process left is a request that may or may not have been billed: the
  resumed attempt counts its worst case (reserved_usd) as possibly billed, against the cap and in usd_spent, marks
  it `interrupted`, and asks it again only if that still fits under the cap (a pending row of a process still alive
  elsewhere is never asked again). So a paid reply is never paid twice, and an unanswered request is re-asked at most
  once per attempt, within the cap.
- rows: the run's result rows are written by core.persist.write_run, which first deletes anything of the run id, in
  one transaction, so however often a run is killed and resumed it ends with one set of rows.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from core import store


class ResumeRefused(Exception):
    """Why a run is not resumed, in one line. done: the run had already finished (nothing to do, not an error)."""

    def __init__(self, message: str, done: bool = False) -> None:
        super().__init__(message)
        self.done = done


@dataclass(frozen=True)
class ResumePlan:
    """A run to resume: its id, rebuilt RunConfig, the attempt number it gets, and prior_usd (USD its earlier
    attempts paid)."""

    run_id: str
    config: Any
    attempt: int
    prior_usd: float


def _row(run_id: str, db: Path | str | None) -> dict[str, Any] | None:
    frame = store.query("SELECT run_id, kind, status, config, pid, host, prior_usd, attempts FROM runs"
                        " WHERE run_id = ?", [run_id], db)
    return None if frame.empty else frame.iloc[0].to_dict()


def stored_config(run_id: str, text: str | None) -> Any:
    """The RunConfig a run was created with, from runs.config (its "extra", written when it finished, left out);
    ResumeRefused naming the field when the stored spec no longer validates."""
    from pydantic import ValidationError

    from core.cli_errors import validation_line
    from core.pipeline import RunConfig

    try:
        fields = json.loads(text or "{}")
    except ValueError:
        raise ResumeRefused(f"run {run_id!r}: its stored config is not JSON; start it again with `alkd run`") from None
    fields.pop("extra", None)
    try:
        return RunConfig(**fields)
    except ValidationError as error:
        raise ResumeRefused(f"run {run_id!r}: its stored config is no longer valid ({validation_line(error)}); "
                            "start it again with `alkd run`") from None


def plan_resume(run_id: str, db: Path | str | None = None) -> ResumePlan:
    """Check that `run_id` can be resumed and take it over for this process (status running, this pid). A run whose
    process died is stored failed first (store.reap_dead_runs). ResumeRefused (one line) for an unknown id, a done run
    (done=True), a run still running in a live process, or a run that is not an `alkd run` distillation run."""
    store.reap_dead_runs(db)
    row = _row(run_id, db)
    if row is None:
        raise ResumeRefused(f"no run {run_id!r} in the store (see `alkd runs list`)")
    if row["status"] == "done":
        raise ResumeRefused(f"run {run_id} is already done; nothing to resume", done=True)
    if row["status"] == "running":
        raise ResumeRefused(f"run {run_id} is running (pid {row['pid']} on {row['host']}); nothing to resume "
                            "(fix: wait for it, or cancel it on the Runs page)")
    if row["kind"] != "distill":
        raise ResumeRefused(f"run {run_id} is a {row['kind']!r} run; only `alkd run` runs resume (fix: run "
                            "`alkd train` / `alkd evaluate` again)")
    config = stored_config(run_id, row["config"])
    earlier = 0.0 if pd.isna(row["prior_usd"]) else float(row["prior_usd"])   # NULL in a row older than the column
    prior = earlier + store.attempt_usd(run_id, db)
    attempt = store.claim_run(run_id, os.getpid(), prior, db)
    if attempt is None:      # another process resumed it between our read and our write
        raise ResumeRefused(f"run {run_id} was resumed by another process meanwhile; nothing to do")
    return ResumePlan(run_id, config, attempt, prior)


def attempt_budget(plan: ResumePlan, parent: Any = None) -> Any:
    """The Budget to pass to run_pipeline for this attempt: the run's USD cap less what earlier attempts paid
    (no cap when the run has none), under `parent` (a launch's, whose stop binds it)."""
    from core.teachers import Budget

    cap = plan.config.usd_cap
    return Budget(max_usd=None if cap is None else max(0.0, cap - plan.prior_usd), parent=parent)


def resumed_tables(plan: ResumePlan, result: Any, tables: Any, budget: Any) -> Any:
    """The RunTables of a resumed attempt (core.persist.result_tables of its result, run under `budget` from
    attempt_budget) as the run's: usd_spent = prior_usd + what this attempt paid + what it counted as possibly
    billed (calls a killed attempt left pending), and config.extra.resumed = {attempt, prior_usd, possible_usd,
    cap_left_usd, message}. A sweep's driver applies it to the tables its worker returned before write_run."""
    possible = float((result.extra.get("usd") or {}).get("possible_usd") or 0.0)
    tables.usd_spent = plan.prior_usd + tables.usd_spent + possible
    config = json.loads(tables.config_json)
    config.setdefault("extra", {})["resumed"] = {
        "attempt": plan.attempt, "prior_usd": plan.prior_usd, "possible_usd": possible,
        "cap_left_usd": budget.max_usd, "message": budget.report().message if budget.max_usd is not None else ""}
    tables.config_json = json.dumps(config, default=str)
    return tables


def resume_run(plan: ResumePlan, progress: Callable[[str, int, int, str], None] | None = None, *,
               save_model: bool = True, budget: Any = None, db: Path | str | None = None) -> tuple[Any, Any]:
    """Run the pipeline again for a claimed run (plan_resume) and write its rows (core.persist) in one transaction;
    returns (RunResult, RunTables). The run's USD cap covers every attempt (attempt_budget); budget: a launch Budget
    above (its stop, e.g. on a signal, binds this run). Raises what the pipeline raises (the caller marks the run
    failed or cancelled)."""
    from core.persist import result_tables, write_run
    from core.pipeline import run_pipeline

    limit = attempt_budget(plan, budget)
    result = run_pipeline(plan.config, progress, budget=limit, db=db)
    tables = resumed_tables(plan, result, result_tables(plan.run_id, result, save_model), limit)
    write_run(plan.run_id, tables, db)
    return result, tables


__all__ = ["ResumePlan", "ResumeRefused", "attempt_budget", "plan_resume", "resume_run",
           "resumed_tables", "stored_config"]
