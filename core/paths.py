"""Where the project keeps local data: datasets, checkpoints and the run store.

`ALKD_HOME` moves the whole data directory (default `./data`); `ALKD_DB` moves only the DuckDB file.
"""

from __future__ import annotations

import os
from pathlib import Path


def data_home() -> Path:
    return Path(os.environ.get("ALKD_HOME", "data")).resolve()


def datasets_dir() -> Path:
    return data_home() / "datasets"


def dataset_dir(name: str) -> Path:
    return datasets_dir() / name


def checkpoints_dir() -> Path:
    return data_home() / "checkpoints"


def models_dir() -> Path:
    """Each run's saved final model, data/models/RUN_ID.pt (core.model_files)."""
    return data_home() / "models"


def downloads_dir() -> Path:
    return data_home() / "downloads"


def db_path() -> Path:
    env = os.environ.get("ALKD_DB")
    return Path(env).resolve() if env else data_home() / "runs.duckdb"
