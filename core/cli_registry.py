"""`alkd registry`: what is registered (backbones, methods, teachers, strategies, baselines, dataset sources), read
from the registries themselves; `--markdown` prints the README's generated tables (tests/test_registry.py checks
that README.md holds exactly them, between the `registry:start` / `registry:end` markers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import click

from core.cli_format import console

START, END = "<!-- registry:start -->", "<!-- registry:end -->"


@dataclass(frozen=True)
class Listing:
    """One registry as a table: its title, the column names after `name`, and rows name -> those cells."""

    kind: str
    title: str
    columns: tuple[str, ...]
    rows: Callable[[], list[tuple[str, ...]]]


def _backbones() -> list[tuple[str, ...]]:
    from core.models import BACKBONES
    rows = []
    for entry in BACKBONES.entries():
        cls = entry.value
        settings = ", ".join(f"{name}={field.default!r}" for name, field in cls.Config.model_fields.items())
        authors = ", ".join(f"{k}={v!r}" for k, v in cls.authors_code.items())
        rows.append((entry.name, entry.description, settings or "–", authors or "–"))
    return rows


def _methods() -> list[tuple[str, ...]]:
    from core.distill import METHODS
    return [(e.name, e.value.kind, e.value.strategy or "–", e.description) for e in METHODS.entries()]


def _teachers() -> list[tuple[str, ...]]:
    from core.teachers.providers import PROVIDERS
    return [(e.name, e.value.default_model, e.description) for e in PROVIDERS.entries()]


def _plain(load: Callable[[], object]) -> Callable[[], list[tuple[str, ...]]]:
    def rows() -> list[tuple[str, ...]]:
        return [(e.name, e.description) for e in load().entries()]  # type: ignore[attr-defined]
    return rows


def _strategies():
    from core.selection.strategies import STRATEGIES
    return STRATEGIES


def _baselines():
    from core.baselines import BASELINES
    return BASELINES


def _sources():
    from core.data.sources import SOURCES
    return SOURCES


LISTINGS: tuple[Listing, ...] = (
    Listing("backbones", "Backbones (`--backbone`; settings via `alkd train --set` / `alkd run --pretrain`)",
            ("what", "settings (defaults)", "`--mode authors-code`"), _backbones),
    Listing("methods", "Methods (`alkd run --method`)", ("kind", "selection", "what"), _methods),
    Listing("teachers", "Teachers (`alkd run --teacher`)", ("default model", "what"), _teachers),
    Listing("strategies", "Selection strategies (`alkd run --selection`)", ("what",), _plain(_strategies)),
    Listing("baselines", "Reference baselines (`alkd evaluate --model`, or as methods)", ("what",),
            _plain(_baselines)),
    Listing("sources", "Dataset sources (`alkd data fetch`)", ("what",), _plain(_sources)),
)
KINDS = tuple(listing.kind for listing in LISTINGS)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def markdown(kinds: tuple[str, ...] = KINDS) -> str:
    """The registries as Markdown tables (one `####` heading each), names in code font."""
    parts = []
    for listing in LISTINGS:
        if listing.kind not in kinds:
            continue
        header = ("name", *listing.columns)
        lines = [f"#### {listing.title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join([f"`{row[0]}`", *map(_cell, row[1:])]) + " |" for row in listing.rows()]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def readme_block() -> str:
    """What README.md holds between its registry markers, markers included."""
    return f"{START}\n{markdown()}{END}"


def update_readme(path: Path) -> bool:
    """Replace the text between the registry markers of `path` with `readme_block()`; True if it changed.
    ValueError naming the file when it lacks the markers."""
    text = path.read_text()
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise ValueError(f"{path}: no `{START}` ... `{END}` section (fix: add both markers, on lines of their own, "
                         "where the tables belong)")
    new = text[:text.index(START)] + readme_block() + text[text.index(END) + len(END):]
    if new != text:
        path.write_text(new)
    return new != text


@click.command("registry")
@click.argument("kind", type=click.Choice(KINDS), required=False)
@click.option("--markdown", "as_markdown", is_flag=True, help="Markdown tables (the README's generated section)")
@click.option("--update-readme", "readme", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="rewrite the tables between the registry markers of this README")
def registry_cmd(kind: str | None, as_markdown: bool, readme: Path | None) -> None:
    """List what is registered: backbones, methods, teachers, strategies, baselines, dataset sources."""
    if readme is not None:
        changed = update_readme(readme)
        click.echo(f"{readme}: registry tables {'updated' if changed else 'already current'}")
        return
    kinds = (kind,) if kind else KINDS
    if as_markdown:
        click.echo(markdown(kinds), nl=False)
        return
    from rich.table import Table
    for listing in LISTINGS:
        if listing.kind not in kinds:
            continue
        table = Table(title=listing.title.replace("`", ""))
        for column in ("name", *listing.columns):
            table.add_column(column.replace("`", ""))
        for row in listing.rows():
            table.add_row(*row)
        console.print(table)


__all__ = ["END", "KINDS", "LISTINGS", "START", "markdown", "readme_block", "registry_cmd", "update_readme"]
