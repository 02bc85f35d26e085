"""Shared pieces of the `alkd` command line: the console, KEY=VALUE parsing and metric tables."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

console = Console()
METRIC_COLUMNS = ("recall@5", "recall@10", "recall@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr@20")


def parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """KEY=VALUE pairs; values parsed as JSON when they can be (numbers, true/false), else kept as strings."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--option")
        try:
            options[key.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            options[key.replace("-", "_")] = value
    return options


def metrics_table(title: str, rows: list[tuple[str, dict[str, float]]]) -> Table:
    table = Table(title=title)
    table.add_column("model")
    for column in METRIC_COLUMNS:
        table.add_column(column, justify="right")
    for name, metrics in rows:
        table.add_row(name, *(f"{metrics.get(c, float('nan')):.4f}" for c in METRIC_COLUMNS))
    return table
