"""Registry of dataset sources. Each source turns its raw files into one canonical SessionDataset.

A source is a function `build(from_dir: Path | None, **options) -> SessionDataset`, registered by name with
`@register("name", "one-line description")`. `from_dir` is a local directory of raw files; None means the source's
own default (download, or a file shipped in a package).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from core.data.dataset import SessionDataset

Builder = Callable[..., SessionDataset]


@dataclass(frozen=True)
class Source:
    name: str
    description: str
    build: Builder
    needs_dir: bool = False


SOURCES: dict[str, Source] = {}


def register(name: str, description: str, *, needs_dir: bool = False) -> Callable[[Builder], Builder]:
    def decorate(build: Builder) -> Builder:
        SOURCES[name] = Source(name, description, build, needs_dir)
        return build
    return decorate


def get_source(name: str) -> Source:
    _load_all()
    if name not in SOURCES:
        raise KeyError(f"unknown dataset source {name!r}; known: {', '.join(sorted(SOURCES))}")
    return SOURCES[name]


def all_sources() -> dict[str, Source]:
    _load_all()
    return dict(SOURCES)


def _load_all() -> None:
    # Importing registers; each module holds one source family.
    from core.data.sources import alkdrec, amazon, csv_source, hetrec, ml100k, synthetic  # noqa: F401


def build(name: str, from_dir: Path | None = None, **options: Any) -> SessionDataset:
    source = get_source(name)
    return source.build(from_dir, **options)
