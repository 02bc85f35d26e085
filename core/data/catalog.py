"""Fetched datasets on disk (data/datasets/NAME) and their registration in the run store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core import store
from core.data.dataset import SessionDataset, load_dataset_dir, save_dataset
from core.data.errors import DataError
from core.data.sources import build
from core.paths import check_name, dataset_dir, datasets_dir, is_safe_name

_loaded: dict[tuple[str, float], SessionDataset] = {}


def fetch(source: str, from_dir: Path | None = None, *, name: str | None = None, db: Path | None = None,
          **options: Any) -> SessionDataset:
    """Build a source, write it atomically under data/datasets/NAME and register its statistics in the store.
    NAME (`name`, else the source's own) must be a plain name (core.paths.check_name): it is checked before anything
    is built, and an existing folder is replaced only when it is an alkd dataset (core.data.dataset.save_dataset)."""
    if name is not None:
        check_name(name, field="--name", fix="--name my_data")
    if "dataset_name" in options:
        check_name(options["dataset_name"], field="-o dataset_name", fix="-o dataset_name=my_data")
    dataset = build(source, from_dir, **options)
    if name is not None and name != dataset.name:
        if dataset.meta.get("synthetic") and "synthetic" not in name:
            # a generated dataset is never presented as real data: its name says so wherever it is shown
            raise DataError(f"--name {name!r} does not say the dataset is synthetic", field="--name",
                            fix=f"a name containing 'synthetic', e.g. --name synthetic-{name}")
        dataset = SessionDataset(name, dataset.source, dataset.items, dataset.sessions, dataset.meta)
    path = save_dataset(dataset, dataset_dir(dataset.name, field="--name", fix="--name my_data"))
    store.register_dataset(dataset.name, source, path, dataset.stats().as_dict(), dataset.meta, db=db)
    return dataset


def load(name: str) -> SessionDataset:
    """A fetched dataset by name (cached per process while its files are unchanged)."""
    path = dataset_dir(name, field="dataset")
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
    if not root.exists():
        return []
    # a hidden folder is a staging or old copy of save_dataset, never a dataset of its own
    return sorted(p.name for p in root.iterdir() if is_safe_name(p.name) and (p / "meta.json").exists())
