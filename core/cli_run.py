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

import math
import os
import signal
import sys
import time
import traceback
from typing import Any

import click

from core import store
from core.cli_format import METRIC_COLUMNS, console, metrics_table, parse_options
from core.cli_format import parse_seeds as seed_list
from core.cli_errors import value_line
from core.experiment import versions
from core.records import new_run_id
from core.train import TrainConfig


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
    from core.distill import method_names
    known = method_names()
    methods = [m.strip().lower() for v in values for m in v.split(",") if m.strip()]
    unknown = [m for m in methods if m not in known]
    if unknown:
        raise click.BadParameter(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(known)}",
                                 param_hint="--method")
    return list(dict.fromkeys(methods))


def parse_ratios(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in text.replace(",", ":").split(":"))
        if len(parts) != 3 or not all(math.isfinite(p) for p in parts) or min(parts) < 0 or sum(parts) <= 0:
            raise ValueError
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected effective:similar:incorrect, e.g. 1:5:4",
                                 param_hint="--ratios") from None
    return parts  # type: ignore[return-value]


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


def run_configs(data_set: Any, methods: list[str], seeds: list[int], common: dict[str, Any]) -> dict[tuple[str, int],
                                                                                                  Any]:
    """Every (method, seed) RunConfig of a launch, built and checked before the first run row is written; a bad
    value is a click error naming its flag (--budget, --mu, --hit-rate, --selection, --teacher, --device, ...)."""
    from pydantic import ValidationError

    from core.cli_errors import validation_line
    from core.distill import get_method
    from core.models import backbone_names
    from core.pipeline import REPLAY_PREFIX, RunConfig
    from core.selection.gains import validate_mu
    from core.selection.strategies import available_strategies
    from core.train import resolve_device

    if common["backbone"] not in backbone_names():
        raise click.BadParameter(f"{common['backbone']!r}: known backbones {', '.join(backbone_names())}",
                                 param_hint="--backbone")
    try:
        validate_mu(common["mu"])
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--mu") from None
    hit_rate = common.get("hit_rate")
    if hit_rate is not None and not 0 <= hit_rate <= 1:
        raise click.BadParameter(f"{hit_rate!r}: a hit rate is a probability in [0, 1], e.g. 0.53",
                                 param_hint="--hit-rate")
    if common.get("selection") is not None and common["selection"] not in available_strategies():
        raise click.BadParameter(f"{common['selection']!r}: known strategies {', '.join(available_strategies())}",
                                 param_hint="--selection")
    try:
        resolve_device(common["device"])
    except RuntimeError as error:
        raise click.BadParameter(f"{error} (fix: --device cpu or auto)", param_hint="--device") from None
    try:
        configs = {(m, s): RunConfig(method=m, seed=s, **common) for s in seeds for m in methods}
    except ValidationError as error:
        raise click.ClickException(validation_line(error)) from None
    if any(get_method(m).kind == "llm" for m in methods):
        first = next(iter(configs.values()))
        if first.teacher == "replay" and not first.replay_path and data_set.name not in REPLAY_PREFIX:
            raise click.BadParameter(f"dataset {data_set.name!r} has no recorded rankings to replay (they exist for "
                                     f"{', '.join(REPLAY_PREFIX)}) (fix: --teacher simulated, openai or anthropic)",
                                     param_hint="--teacher")
        if first.teacher in ("openai", "anthropic", "simulated"):
            from core.pipeline import make_provider
            make_provider(first, data_set)      # a missing key or an unknown price fails here, not mid-launch
    return configs


@click.command("run")
@click.option("--dataset", required=True)
@click.option("--backbone", default="fpmc", show_default=True)
@click.option("--method", "methods", multiple=True, required=True,
              help="repeatable or comma list: alkdrec, random, easiest, hardest, rad-bc, tr, dllm2rec, llmd4rec, "
                   "student, teacher, popular, transitions, sknn, vsknn")
@click.option("--teacher", type=click.Choice(["replay", "simulated", "openai", "anthropic", "embedding"]),
              default="replay", show_default=True)
@click.option("--model", "model", default=None, help="the teacher's model name (default: the provider's)")
@click.option("--base-url", default=None, help="an OpenAI-compatible server (Ollama, vLLM, LM Studio)")
@click.option("--budget", type=click.IntRange(1), default=500, show_default=True, help="LLM-labelled sessions (tau)")
@click.option("--usd-cap", type=float, default=None, help="hard cap on USD spent per (method, seed) run")
@click.option("--launch-usd-cap", type=float, default=None,
              help="hard cap on USD spent by all runs of this launch together")
@click.option("--ratios", default="1:5:4", show_default=True, help="planned effective:similar:incorrect")
@click.option("--mu", type=float, default=10.0, show_default=True)
@click.option("--seeds", default="0", show_default=True, help="e.g. 0-4 or 0,2,3")
@click.option("--hit-rate", type=float, default=None, help="simulated teacher's hit rate (default: recorded GPT-4)")
@click.option("--mode", type=click.Choice(["paper", "authors-code"]), default="paper", show_default=True)
@click.option("--group", default=None, help="a name grouping these runs (dashboard comparisons)")
@click.option("--tag", "tags", multiple=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--difficulty", type=click.Choice(["student", "teacher"]), default="student", show_default=True,
              help="consistency key: pretrained student FPMC (spec default) or this backbone's teacher")
@click.option("--force-label/--no-force-label", default=None,
              help="force the true next item into the LLM's candidates (label leakage; default: authors-code only)")
@click.option("--selection", default=None, help="override the method's selection strategy")
@click.option("--option", "-o", "options", multiple=True, help="distillation parameter KEY=VALUE (e.g. patience=10)")
@click.option("--save-model/--no-save-model", default=True, show_default=True,
              help="write each run's final model (the distilled student) to data/models/RUN_ID.pt")
@click.option("--pretrain", "pretrain", multiple=True,
              help="teacher/student pre-training setting KEY=VALUE, as `alkd train --set` (e.g. loss=ce)")
def run_cmd(dataset: str, backbone: str, methods: tuple[str, ...], teacher: str, model: str | None,
            base_url: str | None, budget: int, usd_cap: float | None, launch_usd_cap: float | None, ratios: str,
            mu: float, seeds: str,
            hit_rate: float | None, mode: str, group: str | None, tags: tuple[str, ...], device: str,
            difficulty: str, force_label: bool | None, selection: str | None, options: tuple[str, ...],
            save_model: bool, pretrain: tuple[str, ...]) -> None:
    """Distil into the student with each METHOD and seed; one stored run each."""
    from core.data import catalog
    from core.data.errors import DataError
    from core.distill import validate_options
    from core.pipeline import run_pipeline
    from core.teachers import Budget

    for name, cap in (("--usd-cap", usd_cap), ("--launch-usd-cap", launch_usd_cap)):
        if cap is not None and not (cap >= 0 and cap != float("inf")):
            raise click.BadParameter(f"{cap!r}: a USD cap is a finite number >= 0", param_hint=name)
    launch = Budget(max_usd=launch_usd_cap)
    method_list, seed_list, ratio_tuple = parse_methods(methods), parse_seeds(seeds), parse_ratios(ratios)
    try:
        data_set = catalog.load(dataset)
    except DataError as error:
        raise click.ClickException(str(error)) from None
    try:
        extra_options = validate_options(parse_options(options))
    except ValueError as error:
        raise click.ClickException(f"invalid --option: {error}") from None
    pretrain_settings = parse_options(pretrain)
    try:
        TrainConfig(backbone=backbone, **pretrain_settings)
    except ValueError as error:
        raise click.ClickException(f"invalid --pretrain: {value_line(error, '--pretrain')}") from None
    configs = run_configs(data_set, method_list, seed_list, dict(
        dataset=dataset, backbone=backbone, teacher=teacher, model=model, base_url=base_url, budget=budget,
        usd_cap=usd_cap, ratios=ratio_tuple, mu=mu, hit_rate=hit_rate, mode=mode, device=device, difficulty=difficulty,
        force_label=force_label, selection=selection, options=extra_options, pretrain=pretrain_settings))
    current: dict[str, str | None] = {"run": None}

    def on_signal(signum, _frame):
        launch.stop(f"cancelled by {signal.Signals(signum).name}")  # no LLM call starts after this, in any thread
        raise Cancelled(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    rows: list[tuple[str, dict[str, float]]] = []
    failures = 0
    try:
        for seed in seed_list:
            for method in method_list:
                config = configs[(method, seed)]
                run_id = new_run_id("run", dataset, backbone, method, f"s{seed}")
                current["run"] = run_id
                store.create_run(run_id, kind="distill", dataset=dataset, backbone=backbone, role="student",
                                 method=method, teacher=teacher, seed=seed, config=config.model_dump(),
                                 versions=versions(), pid=os.getpid(), tags=tags)
                store.set_run_fields(run_id, budget=budget, usd_cap=usd_cap, groups=group)
                console.print(f"[bold]{run_id}[/bold]: {method} seed {seed}")
                try:
                    result = run_pipeline(config, ProgressWriter(run_id), budget=launch)
                    if launch_usd_cap is not None:
                        result.extra["launch_usd"] = launch.report().as_dict()
                    persist_result(run_id, result, save_model)
                    rows.append((f"{method} s{seed}", result.test.metrics))
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
                    _say_money({"launch_usd": launch.report().as_dict()} if launch_usd_cap is not None else {})
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
        console.print(metrics_table(f"{dataset} {backbone} ({teacher}, {mode}): test", rows))
    if launch_usd_cap is not None:
        console.print(f"launch: spent ${launch.spent_usd:.4f} of the ${launch_usd_cap:.4f} launch cap"
                      + (f"; {launch.report().message}" if launch.report().message else ""), markup=False)
    if failures:
        raise click.ClickException(f"{failures} run(s) failed; see `alkd runs list`")


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

    from core.pipeline import build_requests
    from core.teachers import PromptOptions

    train = dataset.sessions[dataset.sessions["split"] == "train"].head(n)
    counts = np.bincount(np.concatenate([np.asarray(s, dtype=np.int64) for s in train["items"]] + [np.zeros(1, int)]),
                         minlength=dataset.n_items + 1)
    popular = [int(i) for i in np.argsort(-counts) if i > 0][:50]
    if len(popular) < 50:
        popular += [i for i in range(1, dataset.n_items + 1) if i not in popular][:50 - len(popular)]
    options = PromptOptions(domain=dataset.meta.get("domain") or ("games" if "game" in dataset.name else "movies"))
    candidates = {int(s): tuple(popular) for s in train["session_id"]}
    return build_requests(dataset, train["session_id"].tolist(), candidates, options)


__all__ = ["METRIC_COLUMNS", "ProgressWriter", "estimate_cmd", "parse_methods", "parse_ratios", "parse_seeds",
           "run_cmd"]
