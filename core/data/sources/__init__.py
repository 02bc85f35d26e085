"""Registry of dataset sources. Each source turns its raw files into one canonical SessionDataset.

A source is a function `build(from_dir: Path | None, **options) -> SessionDataset`, registered by name with
`@register("name", "one-line description")` in its own module of this package (a new module is found without
further edits). `from_dir` is a local directory of raw files; None means the source's own default (download, or a
file shipped in a package).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from core.data.dataset import SessionDataset
from core.registry import Registry

Builder = Callable[..., SessionDataset]


@dataclass(frozen=True)
class Source:
    name: str
    description: str
    build: Builder
    needs_dir: bool = False


#: every source by name (core.registry): each module of this package registers its own, found on first read
SOURCES: Registry[Source] = Registry("dataset source", package="core.data.sources",
                                     first=("ml100k", "alkdrec", "hetrec", "amazon", "csv_source", "synthetic"))


def register(name: str, description: str, *, needs_dir: bool = False) -> Callable[[Builder], Builder]:
    def decorate(build: Builder) -> Builder:
        SOURCES.register(name, Source(name, description, build, needs_dir), description=description)
        return build
    return decorate


def get_source(name: str) -> Source:
    """The source `name`; UnknownName (a KeyError) naming the known sources."""
    return SOURCES.get(name)


def all_sources() -> dict[str, Source]:
    return {e.name: e.value for e in SOURCES.entries()}


def build(name: str, from_dir: Path | None = None, **options: Any) -> SessionDataset:
    source = get_source(name)
    return source.build(from_dir, **options)
