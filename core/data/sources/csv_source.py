"""Source `csv`: your own interaction log as a CSV file, plus the raw-file helpers the other raw sources share.

Files (comma-separated, UTF-8, one header line):
- interactions (option `interactions`, default `interactions.csv` in the source directory), one row per interaction:
  - `session_by="column"` (default): columns `session_id,item_id,timestamp`; the sessions are the ones given.
  - `session_by="day"`: columns `user_id,item_id,timestamp`; one user's interactions in one UTC day form a session.
  - `session_by="gap"`: columns `user_id,item_id,timestamp`; a user's session ends after `gap_seconds` (default 1800)
    without an interaction.
  `timestamp` is Unix seconds (integer or decimal) or an ISO-8601 date-time; one without a UTC offset is read as UTC.
  Other columns are ignored.
- items (option `items`; default `items.csv` in the source directory when that file exists): columns `item_id,title`.
  When given, it must list exactly the items of the interactions file: an item missing from it, or a row for an item
  that never occurs in the interactions, is an error. Without an items file every item's title is its id.

Within a session items are ordered by (timestamp, item id); a repeated item keeps only its first occurrence
(`dedupe`, default on, so the held-out next item never occurs in its own input); the last `max_length` (default 50)
items are kept; sessions with fewer than `min_length` (default 2) items are dropped, except that in column mode a
session with fewer than 2 items is an error (it cannot give an input plus a next item). Sessions are split at random
6:2:2 into train/valid/test with `seed` (default 0).

Options: interactions, items, session_by, gap_seconds, min_length, max_length, seed, dedupe, and dataset_name (the
dataset's name, default "csv"). `meta["max_len"]` is max_length.

Every problem with the files stops the build with one DataError naming the file, the 1-based line (the header is
line 1) and/or the column, and the fix.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as arrow_csv

from core.data.dataset import SessionDataset, flatten, from_raw, lengths_of
from core.data.errors import DataError
from core.data.sessionize import random_split, sessionize, to_session_frame
from core.data.sources import register

SESSION_MODES = ("column", "day", "gap")
_PARSER_LINE = re.compile(r"line (\d+)")
_MILLISECONDS_FROM = 1e11  # Unix seconds this large are in the year 5138: the column is surely milliseconds


# ---------------------------------------------------------------------------------------------------------------
# Helpers shared by the raw sources (hetrec, amazon, csv)
# ---------------------------------------------------------------------------------------------------------------

def as_int(value: Any, option: str, minimum: int) -> int:
    """An integer option (ints or int-like strings from a command line), at least `minimum`."""
    try:
        number = int(value)
        if isinstance(value, bool) or number != float(value):
            raise ValueError
    except (TypeError, ValueError):
        raise DataError(f"option {option} must be an integer, got {value!r}", field=option,
                        fix=f"pass {option}=<integer >= {minimum}>") from None
    if number < minimum:
        raise DataError(f"option {option} must be at least {minimum}, got {number}", field=option,
                        fix=f"pass {option}=<integer >= {minimum}>")
    return number


def as_number(value: Any, option: str) -> float:
    """A positive number option (numbers or numeric strings)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not np.isfinite(number) or number <= 0:
        raise DataError(f"option {option} must be a positive number, got {value!r}", field=option,
                        fix=f"pass {option}=<seconds>")
    return number


def as_bool(value: Any, option: str) -> bool:
    """A yes/no option: a bool, or one of true/false/yes/no/1/0 (any case)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise DataError(f"option {option} must be true or false, got {value!r}", field=option,
                    fix=f"pass {option}=true or {option}=false")


def length_options(min_length: Any, max_length: Any) -> tuple[int, int]:
    """Validated (min_length, max_length): 2 <= min_length <= max_length (a session is inputs + the next item)."""
    low = as_int(min_length, "min_length", 2)
    high = as_int(max_length, "max_length", 2)
    if high < low:
        raise DataError(f"max_length ({high}) is below min_length ({low})", field="max_length",
                        fix="pass max_length >= min_length")
    return low, high


def require_dir(from_dir: Path | str | None, source: str, fix: str) -> Path:
    """The source directory, which must exist."""
    if from_dir is None:
        raise DataError(f"source {source!r} reads raw files from a directory and none was given", fix=fix)
    directory = Path(from_dir).expanduser()
    if not directory.is_dir():
        raise DataError("directory not found", file=directory, fix=fix)
    return directory


def resolve_file(from_dir: Path | str | None, name: str | Path, *, what: str, fix: str) -> Path:
    """`name` inside `from_dir` (or as given when absolute / no directory); it must be an existing file."""
    path = Path(name).expanduser()
    if not path.is_absolute() and from_dir is not None:
        path = Path(from_dir).expanduser() / path
    if not path.is_file():
        raise DataError(f"{what} not found", file=path, fix=fix)
    return path


def read_table(path: Path, *, required: Sequence[str], optional: Sequence[str] = (), sep: str = ",",
               encodings: Sequence[str] = ("utf-8",), quoting: int = csv.QUOTE_MINIMAL,
               column_fix: str | None = None) -> pd.DataFrame:
    """Read a delimited text file with one header line into string columns.

    Returns the `required` columns, then the `optional` ones the file has; cells are stripped strings, empty cells
    NaN; the index is each row's 1-based line number in the file (the header is line 1); blank lines are skipped.
    `encodings` are tried in order (e.g. UTF-8, then Latin-1 for old releases).
    """
    for attempt, encoding in enumerate(encodings):
        try:
            return _read_table(path, required, optional, sep, encoding, quoting, column_fix)
        except UnicodeDecodeError as error:
            if attempt == len(encodings) - 1:
                raise DataError(f"not valid {encoding} text ({error.reason} at byte {error.start})", file=path,
                                fix="save the file as UTF-8") from None
    raise AssertionError("no encodings given")


def _read_table(path: Path, required: Sequence[str], optional: Sequence[str], sep: str, encoding: str,
                quoting: int, column_fix: str | None) -> pd.DataFrame:
    check_field_counts(path, sep, encoding, quoting)
    options: dict[str, Any] = dict(sep=sep, dtype=str, keep_default_na=False, na_values=[""], quoting=quoting,
                                   encoding=encoding, skip_blank_lines=False, index_col=False)
    try:
        frame = pd.read_csv(path, **options)
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty; expected a header line", file=path, line=1,
                        fix=f"start the file with the header line {sep.join(required)}") from None
    except pd.errors.ParserError as error:
        found = _PARSER_LINE.search(str(error))
        raise DataError(f"wrong number of fields ({str(error).split('error: ')[-1].strip()})", file=path,
                        line=int(found.group(1)) if found else None,
                        fix="give every row the same fields as the header line (quote a value that contains "
                            f"{sep!r})") from None
    frame.columns = [str(column).strip() for column in frame.columns]
    for column in required:
        if column not in frame.columns:
            has = ", ".join(repr(name) for name in frame.columns)
            hint = (f" (is it separated by something other than {sep!r}?)"
                    if len(frame.columns) == 1 and any(mark in frame.columns[0] for mark in ",;\t|") else "")
            raise DataError(f"missing column {column!r}; the file has {has}{hint}", file=path, line=1, field=column,
                            fix=column_fix or f"name the columns {', '.join(required)} in the header line")
    frame.index = pd.RangeIndex(2, len(frame) + 2)
    frame = frame[~frame.isna().all(axis=1)]
    wanted = [*required, *(column for column in optional if column in frame.columns)]
    return frame[wanted].apply(lambda column: column.str.strip())


def check_field_counts(path: Path, sep: str, encoding: str, quoting: int) -> None:
    """Every non-blank row must have as many fields as the header line; DataError naming the first line that does
    not. (pandas would silently pad a short row, and take the extra field of a long first row as the index, shifting
    every column.) Quoted separators and line breaks count as in pandas; lines are 1-based, the header is line 1.
    A file Arrow's parser reads with every row the header's width needs no line-by-line look (`_widths_agree`)."""
    if _widths_agree(path, sep, encoding, quoting):
        return
    with path.open(newline="", encoding=encoding) as handle:
        reader = csv.reader(handle, delimiter=sep, quoting=quoting)
        expected, line = None, 1
        try:
            for row in reader:
                if any(field.strip() for field in row):
                    if expected is None:
                        expected = len(row)
                    elif len(row) != expected:
                        plural = "field" if len(row) == 1 else "fields"
                        raise DataError(f"{len(row)} {plural}, but the header line has {expected}", file=path,
                                        line=line, fix="give every row the header's fields, in its order (quote a "
                                                       f"value that contains {sep!r}), or delete the line")
                line = reader.line_num + 1
        except csv.Error as error:
            raise DataError(f"unreadable row ({error})", file=path, line=reader.line_num,
                            fix=f"save the file as plain text separated by {sep!r}") from None


def _widths_agree(path: Path, sep: str, encoding: str, quoting: int) -> bool:
    """True when Arrow's C parser reads every non-empty row of a UTF-8 file as valid text with the header's number of
    fields, so `check_field_counts` has nothing to report; False when it cannot say so (another encoding, a row of
    another width, a whitespace-only line, bytes that are not UTF-8): the line-by-line check then finds what and
    where."""
    if encoding.lower().replace("-", "").replace("_", "") != "utf8":
        return False
    rejected: list[object] = []

    def reject(row: object) -> str:
        rejected.append(row)
        return "skip"
    parse = arrow_csv.ParseOptions(delimiter=sep, quote_char=False if quoting == csv.QUOTE_NONE else '"',
                                   newlines_in_values=True, invalid_row_handler=reject)
    try:
        table = arrow_csv.read_csv(path, parse_options=parse, convert_options=arrow_csv.ConvertOptions(
            column_types={}, strings_can_be_null=False, check_utf8=True))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, ValueError):
        return False
    return not rejected and not any(pa.types.is_binary(field.type) for field in table.schema)


def first_line(frame: pd.DataFrame, mask: pd.Series | np.ndarray) -> int:
    """Line number (the index) of the first row where `mask` holds."""
    return int(frame.index[np.asarray(mask, dtype=bool)][0])


def require_values(frame: pd.DataFrame, path: Path, columns: Iterable[str]) -> None:
    """Every row must have a value in each of `columns`."""
    for column in columns:
        missing = frame[column].isna() | frame[column].eq("")
        if missing.any():
            raise DataError(f"empty {column!r}", file=path, line=first_line(frame, missing), field=column,
                            fix="fill in the value or delete the line")


def parse_numbers(frame: pd.DataFrame, column: str, path: Path, fix: str) -> pd.Series:
    """The column as finite float64; the first non-number is an error naming its line."""
    values = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    bad = values.isna() | ~np.isfinite(values.fillna(0.0))
    if bad.any():
        line = first_line(frame, bad)
        raise DataError(f"{column} {frame[column][line]!r} is not a number", file=path, line=line, field=column,
                        fix=fix)
    return values


def parse_timestamps(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """Unix seconds (float64) from Unix seconds or ISO-8601 strings (no UTC offset = UTC)."""
    text = frame[column]
    seconds = pd.to_numeric(text, errors="coerce").astype("float64")
    dates = seconds.isna()
    if dates.any():
        parsed = pd.to_datetime(text[dates], format="ISO8601", utc=True, errors="coerce")
        seconds[dates] = (parsed - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    bad = seconds.isna() | ~np.isfinite(seconds.fillna(0.0))
    if bad.any():
        line = first_line(frame, bad)
        raise DataError(f"timestamp {text[line]!r} is neither Unix seconds nor an ISO-8601 date-time", file=path,
                        line=line, field=column,
                        fix="write Unix seconds (e.g. 1700000000) or ISO-8601 (e.g. 2023-11-14T22:13:20Z)")
    huge = seconds.abs() >= _MILLISECONDS_FROM
    if huge.any():
        line = first_line(frame, huge)
        raise DataError(f"timestamp {text[line]!r} looks like milliseconds, not seconds", file=path, line=line,
                        field=column, fix="divide the timestamps by 1000")
    return seconds


def check_unique(frame: pd.DataFrame, column: str, path: Path) -> None:
    """No value of `column` may occur twice; the error names both lines."""
    repeated = frame[column].duplicated()
    if repeated.any():
        line = first_line(frame, repeated)
        value = frame[column][line]
        first = first_line(frame, frame[column].eq(value))
        raise DataError(f"duplicate {column} {value!r} (also on line {first})", file=path, line=line, field=column,
                        fix="keep one line per id")


def make_sessions(log: pd.DataFrame, *, by: str, gap_seconds: float, min_length: int, max_length: int,
                  file: Path, dedupe: bool = True) -> pd.DataFrame:
    """sessionize() with an error when nothing survives. log: user_id, item_id (str), timestamp (Unix seconds)."""
    if log.empty:
        raise DataError("the file holds no interactions", file=file, fix="add interaction rows after the header")
    sessions = sessionize(log, by=by, gap_seconds=gap_seconds, min_length=1, max_length=max_length, dedupe=dedupe)
    kept = sessions[lengths_of(sessions["items"]) >= min_length].reset_index(drop=True)
    if kept.empty:
        longest = int(sessions["items"].map(len).max()) if len(sessions) else 0
        raise DataError(f"no sessions left after filtering: {len(sessions)} session(s), the longest has {longest} "
                        f"distinct items, fewer than min_length={min_length}", file=file,
                        fix="lower min_length, or check the timestamps and the session rule")
    return kept


def items_in_order(sessions: pd.DataFrame) -> list[str]:
    """Raw ids of every item in `sessions`, in order of first appearance (one hash pass, no per-item Python)."""
    return pd.unique(flatten(sessions["items"])[0]).tolist()


def assemble(name: str, source: str, sessions: pd.DataFrame, items: pd.DataFrame, *, file: Path, seed: int,
             meta: dict[str, Any]) -> SessionDataset:
    """sessionize()-style sessions + an items table (raw_id, title, ...) -> the canonical dataset, split 6:2:2."""
    frame = to_session_frame(sessions, random_split(len(sessions), seed=seed))
    return from_raw(name, source, items, frame, file=file, meta=meta)


# ---------------------------------------------------------------------------------------------------------------
# The csv source
# ---------------------------------------------------------------------------------------------------------------

@register("csv", "your own interactions CSV (session_id or user_id, item_id, timestamp) + optional items CSV "
          "(item_id,title)", needs_dir=True)
def build(from_dir: Path | None, *, interactions: str | Path = "interactions.csv", items: str | Path | None = None,
          session_by: str = "column", gap_seconds: float = 1800, min_length: int = 2, max_length: int = 50,
          seed: int = 0, dedupe: bool = True, dataset_name: str = "csv") -> SessionDataset:
    """Build a dataset from your own interactions file; see the module docstring for columns and rules."""
    if session_by not in SESSION_MODES:
        raise DataError(f"unknown session_by {session_by!r}", field="session_by",
                        fix=f"pass session_by as one of {', '.join(SESSION_MODES)}")
    min_length, max_length = length_options(min_length, max_length)
    seed = as_int(seed, "seed", 0)
    gap = as_number(gap_seconds, "gap_seconds")
    dedupe = as_bool(dedupe, "dedupe")
    path = resolve_file(from_dir, interactions, what="interactions file",
                        fix="pass interactions=<file> or put interactions.csv in the source directory")
    log = read_interactions(path, session_by)
    items_path = _items_path(from_dir, items)
    titles = read_titles(items_path, log, path) if items_path else None
    if session_by == "column":
        sessions = column_sessions(log, path, min_length=min_length, max_length=max_length, dedupe=dedupe)
    else:
        sessions = make_sessions(log, by=session_by, gap_seconds=gap, min_length=min_length, max_length=max_length,
                                 file=path, dedupe=dedupe)
    used = items_in_order(sessions)
    table = (titles.loc[used].reset_index() if titles is not None
             else pd.DataFrame({"raw_id": used, "title": used}))
    meta = {"session_by": session_by, "gap_seconds": gap if session_by == "gap" else None, "min_length": min_length,
            "max_len": max_length, "seed": seed, "dedupe": dedupe, "split": "random 6:2:2",
            "files": [str(path)] + ([str(items_path)] if items_path else [])}
    return assemble(dataset_name, "csv", sessions, table, file=path, seed=seed, meta=meta)


def _items_path(from_dir: Path | None, items: str | Path | None) -> Path | None:
    if items is not None:
        return resolve_file(from_dir, items, what="items file", fix="pass items=<file with item_id,title> or leave "
                            "the option out to use the item ids as titles")
    default = Path(from_dir).expanduser() / "items.csv" if from_dir is not None else None
    return default if default is not None and default.is_file() else None


def read_interactions(path: Path, session_by: str) -> pd.DataFrame:
    """Columns user_id (the session_id in column mode), item_id (str), timestamp (Unix seconds); index = line."""
    group = "session_id" if session_by == "column" else "user_id"
    other = "user_id" if group == "session_id" else "session_id"
    mode = "day or gap" if other == "user_id" else "column"
    frame = read_table(path, required=[group, "item_id", "timestamp"],
                       column_fix=f"name the columns {group},item_id,timestamp in the header line (a file with "
                                  f"{other} instead needs session_by={mode})")
    require_values(frame, path, [group, "item_id", "timestamp"])
    return pd.DataFrame({"user_id": frame[group], "item_id": frame["item_id"],
                         "timestamp": parse_timestamps(frame, "timestamp", path)}, index=frame.index)


def read_titles(path: Path, log: pd.DataFrame, interactions: Path) -> pd.DataFrame:
    """The items file (item_id,title) as a frame indexed by raw id with column title; it must match the log's items."""
    frame = read_table(path, required=["item_id", "title"])
    require_values(frame, path, ["item_id"])
    check_unique(frame, "item_id", path)
    known = set(log["item_id"])
    unused = ~frame["item_id"].isin(known)
    if unused.any():
        line = first_line(frame, unused)
        raise DataError(f"item {frame['item_id'][line]!r} never occurs in {interactions.name}", file=path, line=line,
                        field="item_id", fix="delete the line, or check that both files use the same item ids")
    untitled = ~log["item_id"].isin(set(frame["item_id"]))
    if untitled.any():
        line = first_line(log, untitled)
        raise DataError(f"item {log['item_id'][line]!r} is not in the items file {path.name}", file=interactions,
                        line=line, field="item_id", fix=f"add the item to {path.name}, or leave out the items file")
    titles = frame["title"].fillna(frame["item_id"])
    return pd.DataFrame({"title": titles.to_numpy()}, index=pd.Index(frame["item_id"].to_numpy(), name="raw_id"))


def column_sessions(log: pd.DataFrame, path: Path, *, min_length: int, max_length: int,
                    dedupe: bool) -> pd.DataFrame:
    """Sessions as given by session_id (in log column user_id); one with fewer than 2 items is an error."""
    distinct = log.drop_duplicates(["user_id", "item_id"]) if dedupe else log
    sizes = distinct.groupby("user_id", sort=False).size()
    short = sizes[sizes < 2]
    if len(short):
        first = first_line(log, log["user_id"].isin(set(short.index)))
        session = log["user_id"][first]
        raise DataError(f"session {session!r} has only {int(sizes[session])} distinct item(s); a session needs an "
                        "input item plus the next item", file=path, line=first, field="session_id",
                        fix="delete the session's lines or add its other interactions")
    return make_sessions(log, by="gap", gap_seconds=float("inf"), min_length=min_length, max_length=max_length,
                         file=path, dedupe=dedupe)
