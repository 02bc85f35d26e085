"""Source `amazon-games`: raw Amazon "Video Games" reviews + metadata, sessionized as the ALKDRec paper did.

Files in the source directory, one record per line, `.gz`-compressed when the name ends in `.gz`:
- reviews (option `reviews`; default: the first name, in sorted order, matching `*Video_Games*.json*` that does not
  start with `meta_`): the 2014 layout (`reviewerID, asin, reviewerName, helpful, reviewText, overall, summary,
  unixReviewTime, reviewTime`) or the 2018 layout (the same plus `verified, vote, style, image`). Used:
  `reviewerID` (the user), `asin` (the item), `unixReviewTime` (Unix seconds; Amazon gives the day only).
- metadata (option `metadata`; default: the first name matching `meta_*Video_Games*.json*`): `asin`, `title`
  (2018 also `category, brand, ...`). It covers many more products than were reviewed, so lines for products in no
  session are ignored (not even parsed when the line visibly names only such ASINs). A product without a
  (non-empty) title gets its ASIN as title. The same ASIN twice is accepted when the titles agree (the 2018 files
  repeat some products), and an error when they differ. Titles are kept verbatim (2018 titles keep their
  HTML entities, as in the authors' `Games_title.csv`).

A line is strict JSON or, as in the 2014 release, a Python dict literal (read with `ast.literal_eval`, never
`eval`). Blank lines are skipped; line numbers in errors are 1-based.

Sessions: one reviewer's reviews in one UTC day, ordered by (time, ASIN), repeated ASINs removed (first kept),
sessions with fewer than `min_length` (default 5) items dropped, the last `max_length` (default 20) kept; seeded
random 6:2:2 split (`seed`, default 0).
"""

from __future__ import annotations

import ast
import gzip
import json
import math
import re
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from core.data.dataset import SessionDataset
from core.data.errors import DataError
from core.data.sources import register
from core.data.sources.csv_source import (
    as_int,
    assemble,
    items_in_order,
    length_options,
    make_sessions,
    require_dir,
    resolve_file,
)

REVIEWS_GLOB = "*Video_Games*.json*"
METADATA_GLOB = "meta_*Video_Games*.json*"
_FIX_DIR = ("download the Video Games reviews and metadata (e.g. Video_Games_5.json.gz and meta_Video_Games.json.gz "
            "from the Amazon review data 2018, or reviews_Video_Games_5.json.gz and meta_Video_Games.json.gz from "
            "2014) into one folder and pass it")
_LINE_FIX = "repair or delete the line; each line must hold one JSON object (or Python dict literal)"
_ASIN_VALUE = re.compile(r"""["']asin["']\s*:\s*["']([^"'\\]+)["']""")


@register("amazon-games", "Amazon Video Games reviews + metadata (2014 or 2018 JSON lines, optionally .gz): "
          "one user-day = one session, as in ALKDRec", needs_dir=True)
def build(from_dir: Path | None, *, reviews: str | Path | None = None, metadata: str | Path | None = None,
          min_length: int = 5, max_length: int = 20, seed: int = 0) -> SessionDataset:
    """Build the Amazon-Games session dataset from the raw review and metadata files; see the module docstring."""
    min_length, max_length = length_options(min_length, max_length)
    seed = as_int(seed, "seed", 0)
    directory = require_dir(from_dir, "amazon-games", _FIX_DIR)
    reviews_path = find_file(directory, reviews, REVIEWS_GLOB, "reviews file", metadata=False)
    metadata_path = find_file(directory, metadata, METADATA_GLOB, "metadata file", metadata=True)
    log = read_reviews(reviews_path)
    sessions = make_sessions(log, by="day", gap_seconds=0, min_length=min_length, max_length=max_length,
                             file=reviews_path, dedupe=True)
    used = items_in_order(sessions)
    titles = read_titles(metadata_path, set(used))
    items = pd.DataFrame({"raw_id": used, "title": [titles.get(asin) or asin for asin in used]})
    meta = {"min_length": min_length, "max_len": max_length, "seed": seed, "split": "random 6:2:2",
            "session_rule": "user x UTC day, deduped", "files": [str(reviews_path), str(metadata_path)],
            "untitled_items": sum(1 for asin in used if not titles.get(asin))}
    return assemble("amazon-games", "amazon-games", sessions, items, file=reviews_path, seed=seed, meta=meta)


def find_file(directory: Path, name: str | Path | None, pattern: str, what: str, *, metadata: bool) -> Path:
    """The named file in `directory`, or the first (sorted) match of `pattern` (reviews: excluding `meta_*`)."""
    if name is not None:
        return resolve_file(directory, name, what=what, fix=f"check the name, or leave the option out to use the "
                            f"first file matching {pattern}")
    matches = sorted(path for path in directory.glob(pattern)
                     if path.is_file() and path.name.startswith("meta_") == metadata)
    if not matches:
        has = ", ".join(sorted(path.name for path in directory.iterdir())) or "nothing"
        raise DataError(f"no {what} matching {pattern!r} (the folder has {has})", file=directory, fix=_FIX_DIR)
    return matches[0]


def read_reviews(path: Path) -> pd.DataFrame:
    """Columns user_id (reviewerID), item_id (asin), timestamp (unixReviewTime, Unix seconds); index = line."""
    users: list[str] = []
    asins: list[str] = []
    times: list[float] = []
    lines: list[int] = []
    for line, record in iter_records(path):
        users.append(text_field(record, "reviewerID", path, line))
        asins.append(text_field(record, "asin", path, line))
        times.append(time_field(record, "unixReviewTime", path, line))
        lines.append(line)
    if not lines:
        raise DataError("the file holds no reviews", file=path, fix=_FIX_DIR)
    return pd.DataFrame({"user_id": users, "item_id": asins, "timestamp": times}, index=pd.Index(lines))


def read_titles(path: Path, used: set[str]) -> dict[str, str | None]:
    """ASIN -> title (None when the line has none) for the ASINs in `used`; other products are skipped."""
    titles: dict[str, str | None] = {}
    first: dict[str, int] = {}

    def maybe_used(text: str) -> bool:  # cheap pre-check: skip parsing lines that name no used ASIN at all
        found = _ASIN_VALUE.findall(text)
        return not found or any(asin in used for asin in found)

    for line, record in iter_records(path, maybe_used):
        asin = text_field(record, "asin", path, line)
        if asin not in used:
            continue
        title = record.get("title")
        title = title.strip() if isinstance(title, str) and title.strip() else None
        known = titles.get(asin)
        if asin in first and known and title and known != title:
            raise DataError(f"duplicate asin {asin!r} with another title (first on line {first[asin]}: {known!r}, "
                            f"here: {title!r})", file=path, line=line, field="asin",
                            fix="keep one line per product")
        first.setdefault(asin, line)
        titles[asin] = known or title
    return titles


def iter_records(path: Path, wanted: Callable[[str], bool] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based line number, record) for each non-blank line (that `wanted` accepts); gzip by the `.gz` suffix."""
    line = 0
    try:
        with (gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz"
              else path.open("r", encoding="utf-8")) as handle:
            for line, text in enumerate(handle, start=1):
                if text.strip() and (wanted is None or wanted(text)):
                    yield line, parse_record(text, path, line)
    except UnicodeDecodeError as error:
        raise DataError(f"not valid UTF-8 text ({error.reason})", file=path, line=line + 1,
                        fix="re-download the file; it must be UTF-8") from None
    except (OSError, EOFError) as error:
        raise DataError(f"cannot read the file ({error})", file=path, line=line + 1 if line else None,
                        fix="re-download it; a .gz file must be complete gzip data") from None


def parse_record(text: str, path: Path, line: int) -> dict[str, Any]:
    """One line as a dict: strict JSON first, then a Python dict literal via ast.literal_eval."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        try:
            record = ast.literal_eval(text.strip())
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise DataError(f"malformed line, neither JSON nor a Python dict literal ({error.msg} at column "
                            f"{error.colno})", file=path, line=line, fix=_LINE_FIX) from None
    if not isinstance(record, dict):
        raise DataError(f"expected an object, found {type(record).__name__}", file=path, line=line, fix=_LINE_FIX)
    return record


def _missing(record: dict[str, Any], key: str, path: Path, line: int) -> DataError:
    has = ", ".join(repr(name) for name in record) or "no fields"
    return DataError(f"missing field {key!r}; the line has {has}", file=path, line=line, field=key,
                     fix=f"give every line the field {key!r}, or delete the line")


def text_field(record: dict[str, Any], key: str, path: Path, line: int) -> str:
    """A required non-empty string field."""
    if key not in record:
        raise _missing(record, key, path, line)
    value = record[key]
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{key} must be a non-empty string, found {value!r}", file=path, line=line, field=key,
                        fix=f"give the line a non-empty {key!r}, or delete it")
    return value.strip()


def time_field(record: dict[str, Any], key: str, path: Path, line: int) -> float:
    """A required Unix-seconds field: a number or a string of digits."""
    if key not in record:
        raise _missing(record, key, path, line)
    value = record[key]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, str) and value.strip().isdigit():
        return float(value.strip())
    raise DataError(f"{key} {value!r} is not Unix seconds", file=path, line=line, field=key,
                    fix=f"write {key} as an integer number of seconds, e.g. 1341792000")
