"""Where the project keeps local data: datasets, checkpoints and the run store.

`ALKD_HOME` moves the whole data directory (default `./data`); `ALKD_DB` moves only the DuckDB file.

Every name that becomes a path under these folders (a dataset name, a run id, a model file) goes through `confined`,
which accepts only a plain name: letters, digits, '-', '_' and '.', not starting with '.', at most 200 characters.
So no name can climb out of its folder ('../checkpoints'), point elsewhere ('/etc', 'a/b') or hide ('.x').
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from core.data.errors import DataError

_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}")


class UnsafeName(DataError):
    """A name that would not stay inside its folder as a path component."""


def is_safe_name(name: object) -> bool:
    """Whether `name` is a plain path component (see the module docstring)."""
    return isinstance(name, str) and _SAFE_NAME.fullmatch(name) is not None


def check_name(name: object, *, what: str = "dataset name", field: str = "--name", fix: str = "--name my_data") -> str:
    """`name` if it is a plain path component; else UnsafeName, one line naming the field, the value and the fix,
    e.g. "--name '../../x': a dataset name may use letters, digits, '-', '_', '.' (not first), at most 200
    characters (fix: --name my_data)"."""
    if is_safe_name(name):
        return str(name)
    if not isinstance(name, str):
        shown = f"{name!r} (not text)"
    else:
        shown = repr(name if len(name) <= 60 else name[:40] + "…")
    raise UnsafeName(f"{field} {shown}: a {what} may use letters, digits, '-', '_', '.' (not first), at most 200 "
                     "characters", fix=fix)


def confined(base: Path, name: object, *, what: str = "dataset name", field: str = "--name",
             fix: str = "--name my_data", suffix: str = "") -> Path:
    """base / (name + suffix), after check_name: the result is always a direct child of `base`."""
    return base / (check_name(name, what=what, field=field, fix=fix) + suffix)


def data_home() -> Path:
    return Path(os.environ.get("ALKD_HOME", "data")).resolve()


def datasets_dir() -> Path:
    return data_home() / "datasets"


def dataset_dir(name: str, *, field: str = "dataset", fix: str = "use a fetched dataset's name (see `alkd data list`)"
                ) -> Path:
    """data/datasets/NAME; UnsafeName (naming `field` and `fix`) when NAME is not a plain name."""
    return confined(datasets_dir(), name, what="dataset name", field=field, fix=fix)


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
