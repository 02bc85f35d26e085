"""`alkd run` (distillation runs, one store run per (method, seed)) and `alkd estimate` (tokens and USD up front).

    alkd run --dataset alkdrec-ml --backbone fpmc --method alkdrec,student --teacher replay --budget 500 --seeds 0-4

Each run is created 'running' with this process's pid; progress goes to runs.stage/step/total/message (at most about
two writes a second); at the end metrics (test, valid), per-session test ranks, the training curve, the selection
(with categories), the candidates sent, usd_spent, n_labelled, timings and the config (with the achieved category
ratio) are stored and the run is 'done'. SIGTERM/SIGINT: no LLM call starts after the signal, queued calls are
dropped, calls in flight are recorded when they return; the current run becomes 'cancelled' and the process exits
(status 130 for SIGINT, 143 for SIGTERM) without a traceback. An exception marks that run 'failed' with its message
and the next run starts. --usd-cap caps each run, --launch-usd-cap all runs of the launch together; when a cap stops
calls (or a server reports more than it was allowed) the console and the Runs page say so.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import click

from core import store
from core.cli_errors import OneLineError
from core.cli_format import METRIC_COLUMNS, console, metrics_table, parse_options
from core.cli_format import parse_seeds as seed_list
from core.records import create_distill_run, new_run_id


class Cancelled(BaseException):
    """Raised from the signal handler so the running stage unwinds."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def parse_seeds(text: str) -> list[int]:
    """cli_format.parse_seeds as a click parameter error."""
    try:
        return seed_list(text)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--seeds") from None


def parse_methods(values: tuple[str, ...]) -> list[str]:
    """('alkdrec,student', 'tr') -> ['alkdrec', 'student', 'tr'], checked as a launch checks them."""
    from core.run_spec import LaunchSpec
    try:
        return LaunchSpec._known_methods(LaunchSpec._methods(values))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--method") from None


def parse_ratios(text: str) -> tuple[float, float, float]:
    from core.run_spec import _ratio
    try:
        return _ratio(text)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--ratios") from None


class ProgressWriter:
    """Throttled runs.stage/step/total/message writes: a new stage is written at once, else at most every
    `interval` seconds."""

    def __init__(self, run_id: str, interval: float = 0.5) -> None:
        self.run_id, self.interval = run_id, interval
        self.last, self.stage = 0.0, None

    def __call__(self, stage: str, step: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if stage == self.stage and now - self.last < self.interval and step < total:
            return
        self.stage, self.last = stage, now
        try:
            store.update_progress(self.run_id, stage, int(step), int(total), message[:300])
        except Exception:  # noqa: BLE001 - progress must never fail a run
            pass


def persist_result(run_id: str, result: Any, save_model: bool = True) -> None:
    """Write a finished run to the store in one transaction (and, with save_model, its model to
    data/models/RUN_ID.pt first): core.persist.result_tables, then core.persist.write_run."""
    from core.persist import result_tables, write_run

    write_run(run_id, result_tables(run_id, result, save_model))


def launch_spec(config_path: Path | None, given: dict[str, Any]) -> Any:
    """The launch of `alkd run`/`alkd sweep`: the fields of the launch file `config_path` (if any), then every flag
    given (options/pretrain settings merged over the file's), parsed and checked once (core.run_spec.check) before
    anything is written. A bad value is one ClickException naming the flag, or the file and field it came from."""
    from core.run_spec import PLURALS, LaunchSpec, SpecError, check, flag, read_toml

    def where(field: str) -> str:
        if field == "_file":
            return "--config"
        if field in given or config_path is None:
            return f"invalid {flag(field)}"
        return f"{config_path}, field {field!r}"

    try:
        raw = {PLURALS.get(k, k): v for k, v in read_toml(config_path).items()} if config_path else {}
        for name in ("options", "pretrain"):    # -o lr=... adds to (or replaces one key of) the file's settings
            if name in given and isinstance(raw.get(name), dict):
                given = {**given, name: {**raw[name], **given[name]}}
        spec = LaunchSpec.parse({**raw, **given})
        problems = check(spec)
        if problems:
            raise problems[0]
    except SpecError as error:
        raise OneLineError(error.line(where)) from None
    return spec


def given_flags(**flags: Any) -> dict[str, Any]:
    """The flags a user gave (None and empty repeats left out), as launch fields: methods -> method, seeds -> seed,
    options/pretrain KEY=VALUE pairs parsed."""
    given: dict[str, Any] = {}
    for name, value in flags.items():
        if value is None or value == ():
            continue
        if name in ("options", "pretrain"):
            value = parse_options(value, hint="--option" if name == "options" else "--pretrain")
        elif name == "methods":
            name, value = "method", list(value)
        elif name == "tags":
            value = list(value)
        elif name == "seeds":
            name = "seed"
        given[name] = value
    return given


def spec_flags(command: Callable) -> Callable:
    """The launch's fields as `alkd run` flags (every one optional: a --config file may give it; the defaults are
    core.run_spec's)."""
    from core.distill import MODES, method_names
    from core.models import backbone_names
    from core.teachers.providers import PROVIDERS

    flags = [
        click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="a launch TOML file (core.run_spec.LaunchSpec); the flags below override it"),
        click.option("--dataset", default=None),
        click.option("--backbone", default=None, help=f"{' | '.join(backbone_names())} (default fpmc)"),
        click.option("--method", "methods", multiple=True,
                     help=f"repeatable or comma list: {', '.join(method_names())}"),
        click.option("--teacher", type=PROVIDERS.click_choice(), default=None, help="(default replay)"),
        click.option("--model", "model", default=None, help="the teacher's model name (default: the provider's)"),
        click.option("--base-url", default=None, help="an OpenAI-compatible server (Ollama, vLLM, LM Studio)"),
        click.option("--budget", type=int, default=None, help="LLM-labelled sessions (tau; default 500)"),
        click.option("--usd-cap", type=float, default=None, help="hard cap on USD spent per (method, seed) run"),
        click.option("--launch-usd-cap", type=float, default=None,
                     help="hard cap on USD spent by all runs of this launch together"),
        click.option("--ratios", default=None, help="planned effective:similar:incorrect (default 1:5:4)"),
        click.option("--mu", type=float, default=None, help="(default 10)"),
        click.option("--seeds", default=None, help="e.g. 0-4 or 0,2,3 (default 0)"),
        click.option("--hit-rate", type=float, default=None,
                     help="simulated teacher's hit rate (default: recorded GPT-4)"),
        click.option("--mode", type=click.Choice(list(MODES)), default=None, help="(default paper)"),
        click.option("--group", default=None, help="a name grouping these runs (dashboard comparisons)"),
        click.option("--tag", "tags", multiple=True),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="(default auto)"),
        click.option("--difficulty", type=click.Choice(["student", "teacher"]), default=None,
                     help="consistency key: pretrained student FPMC (spec default) or this backbone's teacher"),
        click.option("--force-label/--no-force-label", default=None,
                     help="force the true next item into the LLM's candidates (label leakage; default: authors-code "
                          "only)"),
        click.option("--selection", default=None, help="override the method's selection strategy"),
        click.option("--replay-path", default=None,
                     help="the replay teacher's recordings: a JSONL export or the authors' folder"),
        click.option("--option", "-o", "options", multiple=True,
                     help="distillation parameter KEY=VALUE (e.g. patience=10)"),
        click.option("--save-model/--no-save-model", default=None,
                     help="write each run's final model (the distilled student) to data/models/RUN_ID.pt (default on)"),
        click.option("--pretrain", "pretrain", multiple=True,
                     help="teacher/student pre-training setting KEY=VALUE, as `alkd train --set` (e.g. loss=ce)"),
    ]
    for option in reversed(flags):
        command = option(command)
    return command


@click.command("run")
@spec_flags
@click.option("--resume", "resume_id", default=None, metavar="RUN_ID",
              help="continue a killed, failed or cancelled run under its id, with its stored config (core.resume)")
def run_cmd(config_path: Path | None, resume_id: str | None = None, **flags: Any) -> None:
    """Distil into the student with each METHOD and seed (every run of the launch, one after another); one stored run
    each. `--config RUN.toml` gives the launch as a file (flags override it); `alkd sweep` runs a grid in parallel."""
    if resume_id is not None:
        extra_flags = ["--" + f.replace("_", "-") for f in sorted(set(given_flags(**flags)) - {"save_model"})]
        if extra_flags or config_path:
            raise click.UsageError("--resume continues a run with its stored config; drop "
                                   + ", ".join(extra_flags + (["--config"] if config_path else [])))
        return resume_command(resume_id, save_model=flags.get("save_model") is not False)
    from core.pipeline import run_pipeline
    from core.teachers import Budget

    spec = launch_spec(config_path, given_flags(**flags))
    launch = Budget(max_usd=spec.launch_usd_cap)
    current: dict[str, str | None] = {"run": None}

    def on_signal(signum, _frame):
        launch.stop(f"cancelled by {signal.Signals(signum).name}")  # no LLM call starts after this, in any thread
        raise Cancelled(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    rows: list[tuple[str, dict[str, float]]] = []
    failures = 0
    budgets = len(spec.budget) > 1
    try:
        for config in spec.runs():
            run_id = new_run_id("run", config.dataset, config.backbone, config.method,
                                f"b{config.budget}" if budgets else None, f"s{config.seed}")
            current["run"] = run_id
            create_distill_run(run_id, config, group=spec.group, tags=spec.tags)
            console.print(f"[bold]{run_id}[/bold]: {config.method}" + (f" budget {config.budget}" if budgets else "")
                          + f" seed {config.seed}")
            try:
                result = run_pipeline(config, ProgressWriter(run_id), budget=launch)
                if spec.launch_usd_cap is not None:
                    result.extra["launch_usd"] = launch.report().as_dict()
                persist_result(run_id, result, spec.save_model)
                rows.append((f"{config.method}{f' b{config.budget}' if budgets else ''} s{config.seed}",
                             result.test.metrics))
                extra = result.extra
                _say_money(extra)
                if "achieved_ratio" in extra:
                    console.print("  categories achieved " + " ".join(
                        f"{k} {v:.2f}" for k, v in extra["achieved_ratio"].items()) + " | planned " + " ".join(
                        f"{k} {v:.2f}" for k, v in extra["planned_ratio"].items()))
            except Exception as error:  # noqa: BLE001 - one failing run never stops the others
                failures += 1
                if getattr(error, "usd_spent", None):  # a run that paid for calls and then failed
                    store.set_run_fields(run_id, usd_spent=float(error.usd_spent))
                _say_money({"launch_usd": launch.report().as_dict()} if spec.launch_usd_cap is not None else {})
                store.finish_run(run_id, "failed", message=f"{type(error).__name__}: {error}"[:500])
                console.print(f"[red]{run_id} failed:[/red] {type(error).__name__}: {error}")
                if os.environ.get("ALKD_DEBUG"):
                    traceback.print_exc()
            current["run"] = None
    except Cancelled as cancel:
        if current["run"]:
            store.finish_run(current["run"], "cancelled", message=f"cancelled by {cancel}")
        console.print(f"[yellow]cancelled ({cancel})[/yellow]")
        sys.exit(130 if cancel.signum == signal.SIGINT else 143)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if rows:
        console.print(metrics_table(f"{'/'.join(spec.dataset)} {'/'.join(spec.backbone)} ({'/'.join(spec.teacher)}, "
                                    f"{'/'.join(spec.mode)}): test", rows))
    if spec.launch_usd_cap is not None:
        console.print(f"launch: spent ${launch.spent_usd:.4f} of the ${spec.launch_usd_cap:.4f} launch cap"
                      + (f"; {launch.report().message}" if launch.report().message else ""), markup=False)
    if failures:
        raise click.ClickException(f"{failures} run(s) failed; see `alkd runs list`")

@click.command("sweep")
@click.argument("grid", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: a pool of worker processes; ray: one Ray task per run")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="runs at once (default: local CPUs / --threads; ray: the cluster's CPUs)")
@click.option("--threads", type=click.IntRange(1), default=None, help="torch threads per run (default 1)")
@click.option("--address", default=None,
              help="ray: 'auto' or HOST:PORT of a running cluster (default: a local Ray bound to 127.0.0.1)")
@click.option("--group", default=None, help="the runs' group (default: the grid's `group`, else its file name)")
@click.option("--dry-run", is_flag=True, help="list the cells and what a run would do with each; start nothing")
def sweep_cmd(grid: Path, executor: str, workers: int | None, threads: int | None, address: str | None,
              group: str | None, dry_run: bool) -> None:
    """Run the cartesian product of GRID.toml's fields given as lists (a launch file, as `alkd run --config`), in
    parallel, all in one group. A rerun skips the cells already done and redoes failed or killed ones."""
    import importlib.util

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from core.sweep import Cancelled as SweepCancelled
    from core.sweep import make_executor, plan, run_sweep

    if address is not None and executor != "ray":
        raise OneLineError("--address: only the ray executor connects to a cluster (fix: add --executor ray)")
    if executor == "ray" and importlib.util.find_spec("ray") is None:
        raise OneLineError("--executor ray: Ray is not installed (fix: pip install -e '.[ray]', or --executor local)")
    spec = launch_spec(grid, {})
    group = group or spec.group or grid.stem
    cells = plan(spec, group)
    todo = [c for c in cells if c.state in ("todo", "redo")]
    console.print(f"sweep [bold]{group}[/bold]: {len(cells)} runs ({', '.join(spec.swept()) or 'nothing'} swept); "
                  f"{len(cells) - len(todo)} already done or running, {len(todo)} to run "
                  f"({sum(c.state == 'redo' for c in cells)} of them redone)", highlight=False)
    if dry_run:
        table = Table("cell", "state", "run id")
        for cell in cells:
            table.add_row(cell.label(), cell.state, cell.run_id or "")
        console.print(table)
        return
    if not todo:
        console.print("nothing to run", highlight=False)
        return
    try:
        runner = make_executor(executor, workers, threads, address)
    except Exception as error:  # noqa: BLE001 - e.g. no Ray cluster at --address: one line
        raise OneLineError(f"--executor {executor}: could not start it: {type(error).__name__}: {error}") from None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        overall = bar.add_task(f"{group} ({runner.name}, {runner.workers} at once)", total=len(cells),
                               completed=len(cells) - len(todo))
        tasks: dict[str, Any] = {}

        def on_event(kind: str, cell: Any, info: dict[str, Any]) -> None:
            if kind == "start":
                tasks[cell.run_id] = bar.add_task(f"  {cell.label()}: queued", total=None)
            elif kind == "progress" and cell.run_id in tasks:
                total = info["total"] or None
                bar.update(tasks[cell.run_id], description=f"  {cell.label()}: {info['stage']}", total=total,
                           completed=info["step"] if total else 0)
            elif kind in ("done", "failed"):
                bar.remove_task(tasks.pop(cell.run_id))
                bar.advance(overall)
                if kind == "done":
                    ndcg = info["metrics"].get("ndcg@10", float("nan"))
                    bar.console.print(f"[green]done[/green] {cell.run_id} {cell.label()}: NDCG@10 {ndcg:.4f} "
                                      f"({cell.seconds:.1f} s)", highlight=False)
                    _say_money(info.get("extra") or {})
                else:
                    from rich.markup import escape
                    bar.console.print(f"[red]failed[/red] {cell.run_id} {cell.label()}: {escape(info['message'])}",
                                      highlight=False)

        try:
            report = run_sweep(spec, group, runner, on_event=on_event)
        except SweepCancelled as cancel:
            console.print(f"[yellow]sweep cancelled ({cancel}); rerun the same command to finish it[/yellow]")
            sys.exit(130 if cancel.signum == signal.SIGINT else 143)
    runner.close()
    minutes = report.seconds / 60
    console.print(f"sweep {group}: {len(report.done)} run(s) done now, {len(report.skipped)} done before, "
                  f"{len(report.failed)} failed, in {report.seconds:.1f} s"
                  + (f" ({len(report.done) / minutes:.1f} runs/min)" if report.done and minutes > 0 else ""),
                  highlight=False)
    if report.elsewhere:
        console.print(f"[yellow]{len(report.elsewhere)} run(s) are running in another live process and were left "
                      "alone[/yellow]")
    if report.failed:
        raise click.ClickException(f"{len(report.failed)} run(s) failed; rerun `alkd sweep {grid}` to redo them "
                                   "(see `alkd runs list`)")


def _say_money(extra: dict[str, Any]) -> None:
    """Print a run's warnings (too few usable rankings) and what the USD caps did, one line each."""
    from rich.markup import escape

    for line in extra.get("warnings") or []:
        console.print(f"  [yellow]warning:[/yellow] {escape(line)}", highlight=False)
    for key in ("usd", "launch_usd"):
        message = (extra.get(key) or {}).get("message")
        if message:
            colour = "red" if "EXCEEDED" in message else "yellow"
            label = "launch" if key == "launch_usd" else "run"
            console.print(f"  [{colour}]{label}: {escape(message)}[/{colour}]", highlight=False)


@click.command("estimate")
@click.option("--dataset", required=True)
@click.option("--teacher", default="openai", show_default=True)
@click.option("--model", "model", default=None)
@click.option("--budget", type=click.IntRange(1), default=500, show_default=True)
@click.option("--batch", is_flag=True, help="price the provider's half-price batch API")
def estimate_cmd(dataset: str, teacher: str, model: str | None, budget: int, batch: bool) -> None:
    """Expected tokens and USD of labelling BUDGET sessions of DATASET with a teacher."""
    from rich.table import Table

    from core.data import catalog
    from core.data.errors import DataError
    from core.teachers import UnknownPriceError, estimate

    try:
        data = catalog.load(dataset)
    except DataError as error:
        raise click.ClickException(str(error)) from None
    requests = _typical_requests(data, min(budget, 50))
    try:
        sample = estimate(requests, teacher, model, batch=batch)
    except (UnknownPriceError, KeyError) as error:
        raise click.ClickException(str(error)) from None
    scale = budget / max(1, sample.n_requests)
    table = Table(title=f"estimate: {budget} sessions of {dataset} with {teacher}:{sample.model}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("input tokens", f"{int(sample.input_tokens * scale):,}")
    table.add_row("output tokens", f"{int(sample.output_tokens * scale):,}")
    table.add_row("expected USD", f"{sample.usd * scale:.4f}")
    table.add_row("worst-case USD", f"{sample.worst_case_usd * scale:.4f}")
    console.print(table)


def _typical_requests(dataset, n: int):
    """n real training sessions as requests (the catalogue's own titles), with 50 candidates by popularity."""
    import numpy as np

    from core.data.domain import domain_of
    from core.pipeline import build_requests
    from core.teachers import PromptOptions

    train = dataset.sessions[dataset.sessions["split"] == "train"].head(n)
    counts = np.bincount(np.concatenate([np.asarray(s, dtype=np.int64) for s in train["items"]] + [np.zeros(1, int)]),
                         minlength=dataset.n_items + 1)
    popular = [int(i) for i in np.argsort(-counts) if i > 0][:50]
    if len(popular) < 50:
        popular += [i for i in range(1, dataset.n_items + 1) if i not in popular][:50 - len(popular)]
    options = PromptOptions(domain=domain_of(dataset.name, dataset.meta))
    candidates = {int(s): tuple(popular) for s in train["session_id"]}
    return build_requests(dataset, train["session_id"].tolist(), candidates, options)


def resume_command(run_id: str, save_model: bool = True) -> None:
    """`alkd run --resume RUN_ID`: one line when there is nothing to do (done: exit 0; unknown, running: an
    `Error:` line); else the run again, as `alkd run` does it (progress on the Runs page, SIGTERM/SIGINT cancel it,
    an exception marks it failed with its message)."""
    import json

    from core.resume import ResumeRefused, plan_resume, resume_run
    from core.teachers import Budget

    try:
        plan = plan_resume(run_id)
    except ResumeRefused as refused:
        if refused.done:
            console.print(str(refused), markup=False, highlight=False)
            return
        raise click.ClickException(str(refused)) from None
    config = plan.config
    console.print(f"[bold]{run_id}[/bold]: resuming {config.method} seed {config.seed} (attempt {plan.attempt}"
                  + (f", ${plan.prior_usd:.4f} paid by earlier attempts" if plan.prior_usd else "") + ")")
    launch = Budget()

    def on_signal(signum, _frame):
        launch.stop(f"cancelled by {signal.Signals(signum).name}")
        raise Cancelled(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        result, tables = resume_run(plan, ProgressWriter(run_id), save_model=save_model, budget=launch)
    except Cancelled as cancel:
        store.finish_run(run_id, "cancelled", message=f"cancelled by {cancel}")
        console.print(f"[yellow]cancelled ({cancel})[/yellow]")
        sys.exit(130 if cancel.signum == signal.SIGINT else 143)
    except Exception as error:  # noqa: BLE001 - stored as the run's failure, said in one line
        spent = getattr(error, "usd_spent", None)
        if spent or plan.prior_usd:
            store.set_run_fields(run_id, usd_spent=plan.prior_usd + float(spent or 0.0))
        store.finish_run(run_id, "failed", message=f"{type(error).__name__}: {error}"[:500])
        if os.environ.get("ALKD_DEBUG"):
            import traceback
            traceback.print_exc()
        raise click.ClickException(f"{run_id} failed again: {type(error).__name__}: {error}") from None
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    _say_money(result.extra)
    note = json.loads(tables.config_json)["extra"]["resumed"]["message"]
    if note:
        console.print(f"  all attempts: {note}", markup=False, highlight=False)
    console.print(metrics_table(f"{config.dataset} {config.backbone} ({config.teacher}, {config.mode}): test",
                                [(f"{config.method} s{config.seed}", result.test.metrics)]))
    console.print(f"{run_id} done: ${tables.usd_spent:.4f} over {plan.attempt} attempts", markup=False,
                  highlight=False)


__all__ = ["METRIC_COLUMNS", "ProgressWriter", "estimate_cmd", "given_flags", "launch_spec", "parse_methods",
           "parse_ratios",
           "parse_seeds", "persist_result", "resume_command", "run_cmd", "spec_flags", "sweep_cmd"]
