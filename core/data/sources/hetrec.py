"""Source `hetrec2011`: the raw Hetrec2011-MovieLens-2k files, sessionized as the ALKDRec paper did.

Files in the source directory (tab-separated, one header line, Latin-1 in the GroupLens release; UTF-8 also read):
- `user_ratedmovies-timestamps.dat`: `userID movieID rating timestamp`, timestamp in Unix **milliseconds**;
  rating is not used.
- `movies.dat`: `id title imdbID spanishTitle ... year ...`; `id`, `title` and `year` are used. It is the full
  catalogue (10,197 movies, more than are rated), so rows for movies that end up in no session are ignored.
  A session movie missing from it is an error naming the ratings line.
- `movie_genres.dat` (optional): `movieID genre`, one row per genre; genres are joined with '|' in file order.

Sessions: one user's ratings in one UTC day, ordered by (timestamp, movie id), repeated movies removed (first kept),
sessions with fewer than `min_length` (default 5) movies dropped, the last `max_length` (default 20) kept; seeded
random 6:2:2 split (`seed`, default 0). Raw item ids are the movie ids as strings. A year that is not a number
(e.g. `\\N`) is left empty.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from core.data.dataset import SessionDataset
from core.data.errors import DataError
from core.data.sources import register
from core.data.sources.csv_source import (
    as_int,
    assemble,
    check_unique,
    first_line,
    items_in_order,
    length_options,
    make_sessions,
    parse_numbers,
    read_table,
    require_dir,
    require_values,
    resolve_file,
)

RATINGS = "user_ratedmovies-timestamps.dat"
MOVIES = "movies.dat"
GENRES = "movie_genres.dat"
_FIX_DIR = ("download hetrec2011-movielens-2k-v2.zip from GroupLens, unzip it and pass its folder "
            f"(it holds {RATINGS} and {MOVIES})")
_TABLE = dict(sep="\t", encodings=("utf-8", "latin-1"), quoting=csv.QUOTE_NONE)


@register("hetrec2011", "Hetrec2011-MovieLens raw files (user_ratedmovies-timestamps.dat, movies.dat): "
          "one user-day = one session, as in ALKDRec", needs_dir=True)
def build(from_dir: Path | None, *, min_length: int = 5, max_length: int = 20, seed: int = 0) -> SessionDataset:
    """Build the Hetrec2011-ML session dataset from its raw files; see the module docstring."""
    min_length, max_length = length_options(min_length, max_length)
    seed = as_int(seed, "seed", 0)
    directory = require_dir(from_dir, "hetrec2011", _FIX_DIR)
    ratings_path = resolve_file(directory, RATINGS, what="ratings file", fix=_FIX_DIR)
    movies_path = resolve_file(directory, MOVIES, what="movies file", fix=_FIX_DIR)
    log = read_ratings(ratings_path)
    movies = read_movies(movies_path)
    sessions = make_sessions(log, by="day", gap_seconds=0, min_length=min_length, max_length=max_length,
                             file=ratings_path, dedupe=True)
    used = items_in_order(sessions)
    check_titled(used, movies, log, ratings_path, movies_path)
    items = movies.loc[used].reset_index()
    genres_path = directory / GENRES
    if genres_path.is_file():
        items["genres"] = read_genres(genres_path, set(used)).reindex(used).to_numpy()
    meta = {"min_length": min_length, "max_len": max_length, "seed": seed, "split": "random 6:2:2",
            "session_rule": "user x UTC day, deduped",
            "files": [str(ratings_path), str(movies_path)] + ([str(genres_path)] if genres_path.is_file() else [])}
    return assemble("hetrec2011", "hetrec2011", sessions, items, file=ratings_path, seed=seed, meta=meta)


def read_ratings(path: Path) -> pd.DataFrame:
    """Columns user_id (str), item_id (movie id, str), timestamp (Unix seconds, float64); index = file line."""
    frame = read_table(path, required=["userID", "movieID", "timestamp"], **_TABLE)
    require_values(frame, path, ["userID", "movieID", "timestamp"])
    millis = parse_numbers(frame, "timestamp", path, fix="timestamps are Unix milliseconds, e.g. 1162160236000")
    return pd.DataFrame({"user_id": frame["userID"], "item_id": frame["movieID"], "timestamp": millis / 1000.0},
                        index=frame.index)


def read_movies(path: Path) -> pd.DataFrame:
    """Indexed by raw_id (movie id, str); columns title (str) and year (Int64, missing when not a number)."""
    frame = read_table(path, required=["id", "title"], optional=["year"], **_TABLE)
    require_values(frame, path, ["id"])
    check_unique(frame, "id", path)
    year = pd.to_numeric(frame.get("year", pd.Series(np.nan, index=frame.index)), errors="coerce")
    year = year.astype("float64").where(lambda value: np.isfinite(value) & (value % 1 == 0))
    return pd.DataFrame({"title": frame["title"].fillna(frame["id"]).to_numpy(),
                         "year": pd.array(year.to_numpy(), dtype="Int64")},
                        index=pd.Index(frame["id"].to_numpy(), name="raw_id"))


def check_titled(used: list[str], movies: pd.DataFrame, log: pd.DataFrame, ratings: Path, movies_path: Path) -> None:
    """Every movie in a session must have a row in movies.dat."""
    missing = [item for item in used if item not in movies.index]
    if missing:
        line = first_line(log, log["item_id"].eq(missing[0]))
        raise DataError(f"movie {missing[0]!r} is rated but has no row in {movies_path.name}", file=ratings,
                        line=line, field="movieID", fix=f"add the movie to {movies_path.name} or delete its ratings")


def read_genres(path: Path, used: set[str]) -> pd.Series:
    """'|'-joined genres per movie id (only movies in `used`); file columns movieID, genre."""
    frame = read_table(path, required=["movieID", "genre"], **_TABLE)
    require_values(frame, path, ["movieID", "genre"])
    frame = frame[frame["movieID"].isin(used)].drop_duplicates()
    return frame.groupby("movieID", sort=False)["genre"].agg("|".join)
