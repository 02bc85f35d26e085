"""Fetched datasets on disk (data/datasets/NAME) and their registration in the run store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core import store
from core.data.dataset import SessionDataset, load_dataset_dir, save_dataset
from core.data.errors import DataError
from core.data.sources import build
from core.paths import dataset_dir, datasets_dir

_loaded: dict[tuple[str, float], SessionDataset] = {}


def fetch(source: str, from_dir: Path | None = None, *, name: str | None = None, db: Path | None = None,
          **options: Any) -> SessionDataset:
    """Build a source, write it atomically under data/datasets/NAME and register its statistics in the store."""
    dataset = build(source, from_dir, **options)
    if name and name != dataset.name:
        dataset = SessionDataset(name, dataset.source, dataset.items, dataset.sessions, dataset.meta)
    path = save_dataset(dataset, dataset_dir(dataset.name))
    store.register_dataset(dataset.name, source, path, dataset.stats().as_dict(), dataset.meta, db=db)
    return dataset


def load(name: str) -> SessionDataset:
    """A fetched dataset by name (cached per process while its files are unchanged)."""
    path = dataset_dir(name)
    meta = path / "meta.json"
    if not meta.exists():
        raise DataError(f"dataset {name!r} has not been fetched", file=path,
                        fix=f"run `alkd data fetch {name}` (add --from DIR for a local copy)")
    key = (name, meta.stat().st_mtime)
    if key not in _loaded:
        _loaded[key] = load_dataset_dir(path)
    return _loaded[key]


def fetched() -> list[str]:
    root = datasets_dir()
    return sorted(p.name for p in root.iterdir() if (p / "meta.json").exists()) if root.exists() else []
