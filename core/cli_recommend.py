"""`alkd recommend`: next-item recommendations from a run's saved model (the distilled student, data/models/)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from core import model_files, store
from core.cli_format import console
from core.data.errors import DataError


def _model_file(target: str) -> Path:
    """A run id (its saved model) or a path to a model file."""
    path = Path(target)
    if path.suffix == ".pt" or path.exists():
        return path
    try:
        found = model_files.model_path(target)
    except DataError:
        raise click.ClickException(f"TARGET {target!r} is no model file, and a run id may use only letters, digits, "
                                   "'-', '_', '.' (fix: give a run id from `alkd runs list` or a path to a .pt model "
                                   "file)") from None
    if not found.exists():
        known = not store.query("SELECT run_id FROM runs WHERE run_id = ?", [target]).empty
        why = "it ran with --no-save-model or is a reference baseline" if known else "no such run; see `alkd runs list`"
        raise click.ClickException(f"run {target!r} has no saved model ({found} is missing): {why}")
    return found


def _parse_items(text: str, raw: bool, items) -> list[int]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise click.BadParameter("give at least one item id", param_hint="--items")
    if not raw:
        try:
            return [int(p) for p in parts]
        except ValueError:
            raise click.BadParameter(f"{text!r}: item ids are whole numbers (use --raw for the dataset's own ids)",
                                     param_hint="--items") from None
    if items is None:
        raise click.ClickException("--raw needs the model's dataset locally: `alkd data fetch` it first")
    lookup = dict(zip(items["raw_id"].astype(str), items["item_id"]))
    missing = [p for p in parts if p not in lookup]
    if missing:
        raise click.BadParameter(f"raw ids {missing[:5]} are not in the dataset's items", param_hint="--items")
    return [int(lookup[p]) for p in parts]


@click.command("recommend")
@click.argument("target")
@click.option("--items", required=True, help="the session so far, oldest first, comma separated (e.g. 12,55,78)")
@click.option("--raw", is_flag=True, help="--items are the dataset's own item ids (default: canonical ids 1..N)")
@click.option("-k", "--k", "k", type=click.IntRange(1), default=10, show_default=True)
def recommend_cmd(target: str, items: str, raw: bool, k: int) -> None:
    """Top-K next items for one session from TARGET: a run id (its saved model) or a model file."""
    from core.data import catalog

    path = _model_file(target)
    try:
        model, meta = model_files.load_model(path)
    except FileNotFoundError as error:
        raise click.ClickException(str(error)) from None
    except Exception as error:  # noqa: BLE001 - torch raises many types for a file that is not a model
        # one line of our own: torch's text would advise loading with weights_only=False (code execution)
        reason = str(error) if isinstance(error, ValueError) and str(error).startswith(str(path)) else \
            f"{path}: not an alkd model file ({type(error).__name__} while reading it)"
        raise click.ClickException(f"{reason} (fix: pass a model file written by `alkd run` (data/models/RUN_ID.pt) "
                                   "or its run id)") from None
    try:
        catalogue = catalog.load(meta["dataset"]).items if meta.get("dataset") else None
    except DataError:
        catalogue = None
    session = _parse_items(items, raw, catalogue)
    try:
        ids, scores = model_files.recommend(model, session, k)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--items") from None
    titles = dict(zip(catalogue["item_id"], catalogue["title"])) if catalogue is not None else {}
    raw_ids = dict(zip(catalogue["item_id"], catalogue["raw_id"])) if catalogue is not None else {}
    table = Table(title=f"{meta.get('method', '?')} {model.name} d={model.dim} ({meta.get('dataset', '?')}, "
                        f"run {meta.get('run_id', path.name)})")
    for column in ("rank", "item_id", "raw_id", "title", "score"):
        table.add_column(column, justify="right" if column in ("rank", "item_id", "score") else "left")
    for rank, (item, score) in enumerate(zip(ids, scores), start=1):
        table.add_row(str(rank), str(int(item)), str(raw_ids.get(int(item), "")), str(titles.get(int(item), "")),
                      f"{float(score):.4f}")
    console.print(table)
