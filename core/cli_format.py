"""Shared pieces of the `alkd` command line: the console, KEY=VALUE parsing and metric tables."""

from __future__ import annotations

import json
from typing import Any, Iterable

import click
from rich.console import Console
from rich.table import Table

console = Console()
METRIC_COLUMNS = ("recall@5", "recall@10", "recall@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr@20")


def parse_pairs(pairs: Iterable[str]) -> dict[str, Any]:
    """KEY=VALUE pairs -> {key: value}: keys trimmed, '-' read as '_'; values parsed as JSON when they can be (numbers,
    true/false), else kept as text. ValueError names a pair without '=' or without a key."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ValueError(f"{pair!r} is not KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value.strip()
    return options


#: seeds are 32-bit (numpy and torch seed with them); more than MAX_SEEDS in one launch is a typo, not a plan
MAX_SEED = 2**32 - 1
MAX_SEEDS = 1000


def parse_seeds(text: str) -> list[int]:
    """'0-4' -> [0..4]; '0,2,3' -> [0, 2, 3]; mixes like '0-2,5' too; order kept, repeats dropped. ValueError if bad
    (not a non-negative integer, above MAX_SEED, a backwards range, or more than MAX_SEEDS seeds)."""
    seeds: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        if not low.isdigit() or not (high or low).isdigit():
            raise ValueError(f"{text!r}: seeds are non-negative integers, e.g. 0-4 or 0,2,3")
        if int(high or low) < int(low):
            raise ValueError(f"{text!r}: the seed range {part} runs backwards")
        if int(high or low) > MAX_SEED:
            raise ValueError(f"{text!r}: a seed is at most {MAX_SEED} (2**32 - 1)")
        if int(high or low) - int(low) + 1 + len(seeds) > MAX_SEEDS:
            raise ValueError(f"{text!r}: more than {MAX_SEEDS} seeds in one launch; give a shorter range, e.g. 0-4")
        seeds.extend(range(int(low), int(high or low) + 1))
    if not seeds:
        raise ValueError("give at least one seed, e.g. 0 or 0-4")
    return list(dict.fromkeys(seeds))


def parse_options(pairs: tuple[str, ...], hint: str = "--option") -> dict[str, Any]:
    """parse_pairs for a repeatable click option (a bad pair is a usage error naming the option)."""
    try:
        return parse_pairs(pairs)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=hint) from None


def metrics_table(title: str, rows: list[tuple[str, dict[str, float]]]) -> Table:
    table = Table(title=title)
    table.add_column("model")
    for column in METRIC_COLUMNS:
        table.add_column(column, justify="right")
    for name, metrics in rows:
        table.add_row(name, *(f"{metrics.get(c, float('nan')):.4f}" for c in METRIC_COLUMNS))
    return table
