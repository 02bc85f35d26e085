"""One line per failure on the command line: what, where and the fix, never a traceback.

`OneLineGroup` is the `alkd` group's class: any exception a command raises becomes `Error: <one line>` (exit 1; a
usage error keeps click's exit 2 but loses the multi-line usage banner). Known exception types get a message that
names the file or setting and the fix (`describe`); anything else still prints one line (its type and message), and
`ALKD_DEBUG=1` shows the traceback instead. Secrets are scrubbed from every line (core.teachers.keys.scrub).

The checks here run before a command writes anything, so bad input never leaves a half-written store:
`check_environment` (ALKD_DB, ALKD_HOME, ALKD_PRICES), `check_source_options` (`data fetch -o` keys) and
`check_export_dir` (`runs import`).
"""

from __future__ import annotations

import difflib
import inspect
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import click

#: DuckDB's file header: 8 bytes of checksum, then the magic bytes.
DUCKDB_MAGIC = b"DUCK"
STORE_FIX = "point ALKD_DB at a DuckDB file or a new file in a writable folder, or unset it"


class OneLineError(click.ClickException):
    """A ClickException whose message is one line; exit_code 1 (2 for usage errors)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(one_line(message))
        self.exit_code = exit_code


def one_line(text: object) -> str:
    """`text` with secrets scrubbed and every run of whitespace (newlines included) read as one space."""
    from core.teachers.keys import scrub
    return " ".join(scrub(str(text)).split())


def flag_of(field: str) -> str:
    """A config field name as its command-line flag: usd_cap -> --usd-cap."""
    return "--" + field.replace("_", "-")


def validation_line(error: Any, where: str = "", flags: Mapping[str, str] | None = None, fix: str = "") -> str:
    """A pydantic ValidationError as one line: `<where> <field> <value>: <problem>; ... (fix: ...)`.

    flags maps a field name to how the user wrote it (default: `--field-name`, or `field=value` when `where` names
    the KEY=VALUE option it came from, e.g. '--set')."""
    parts = []
    for item in error.errors():
        field = ".".join(str(p) for p in item.get("loc", ())) or "value"
        name = (flags or {}).get(field, field if where else flag_of(field))
        problem = str(item.get("msg", "invalid")).replace("Input should be", "must be")
        if item.get("type") == "extra_forbidden":
            problem = "is not a known setting"
        shown = ""
        if "input" in item and item.get("type") != "missing":
            shown = f"={item['input']!r}" if where else f" {item['input']!r}"
        parts.append(f"{name}{shown}: {problem}")
    line = "; ".join(parts)
    return line + (f" (fix: {fix})" if fix else "")


def value_line(error: ValueError, where: str = "") -> str:
    """A ValueError as one line: pydantic's multi-line ValidationError through `validation_line`, else its text."""
    from pydantic import ValidationError
    return validation_line(error, where) if isinstance(error, ValidationError) else one_line(error)


def _has_fix(message: str) -> bool:
    return "fix:" in message.lower() or "fix " in message.lower()


def describe(error: BaseException) -> str:
    """The one-line message for an exception a command raised (see the module docstring)."""
    import duckdb
    from pydantic import ValidationError

    from core.evaluate import NonFiniteScores
    from core.paths import db_path
    from core.teachers.pricing import PriceError, UnknownPriceError
    from core.teachers.providers.openai_api import MissingKeyError

    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    if isinstance(error, ValidationError):
        return validation_line(error)
    if isinstance(error, PriceError):
        return text if _has_fix(text) else (f"{text} (fix: correct the ALKD_PRICES file, or unset ALKD_PRICES to "
                                             "use the shipped prices)")
    if isinstance(error, (UnknownPriceError, MissingKeyError)):
        return text
    if isinstance(error, NonFiniteScores):
        return (f"{text} (fix: retrain it with a lower learning rate; a cached checkpoint is retrained with "
                "`alkd train ... --no-cache`)")
    if isinstance(error, duckdb.Error):
        first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
        return f"run store {db_path()}: {first} (fix: {STORE_FIX})"
    if isinstance(error, OSError) and error.filename is not None:
        fix = " (fix: check the path, or point ALKD_HOME / ALKD_DB at a writable folder)"
        return f"{error.filename}: {error.strerror or text}{fix}"
    if _has_fix(text):
        return text
    return f"{type(error).__name__}: {text} (unexpected; rerun with ALKD_DEBUG=1 to see where)"


class OneLineGroup(click.Group):
    """The `alkd` group: whatever a subcommand raises ends as one `Error: ...` line (see the module docstring)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, OneLineError):
            raise
        except click.UsageError as error:
            raise OneLineError(error.format_message(), exit_code=error.exit_code) from None
        except click.ClickException as error:
            raise OneLineError(error.format_message(), exit_code=error.exit_code) from None
        except Exception as error:  # noqa: BLE001 - the point: no traceback for a user, whatever went wrong
            if os.environ.get("ALKD_DEBUG"):
                raise
            raise OneLineError(describe(error)) from None


# ---- checks before anything is written --------------------------------------------------------------------------

def _existing_ancestor(path: Path) -> Path:
    for parent in (path, *path.parents):
        if parent.exists():
            return parent
    return Path("/")


def check_store_path(path: Path, setting: str = "ALKD_DB", fix: str = STORE_FIX) -> None:
    """OneLineError unless `path` is a DuckDB file, or absent with a writable folder above it to create it in."""
    if path.exists():
        if path.is_dir():
            raise OneLineError(f"{setting} {path}: is a folder, not a DuckDB file (fix: {fix})")
        try:
            with open(path, "rb") as handle:
                header = handle.read(12)
        except OSError as error:
            raise OneLineError(f"{setting} {path}: cannot be read ({error.strerror}) (fix: {fix})") from None
        if header[8:12] != DUCKDB_MAGIC:
            raise OneLineError(f"{setting} {path}: is not a DuckDB file (fix: {fix})")
        if not os.access(path, os.W_OK):
            raise OneLineError(f"{setting} {path}: is not writable (fix: {fix})")
        return
    base = _existing_ancestor(path.parent)
    if not base.is_dir():
        raise OneLineError(f"{setting} {path}: {base} is a file, not a folder (fix: {fix})")
    if not os.access(base, os.W_OK | os.X_OK) or str(base).startswith(("/proc", "/sys")):
        raise OneLineError(f"{setting} {path}: cannot create it, {base} is not writable (fix: {fix})")


def check_environment() -> None:
    """ALKD_HOME, ALKD_DB and ALKD_PRICES, checked before a command runs (OneLineError naming the variable)."""
    from core.paths import data_home, db_path

    home = data_home()
    if home.exists() and not home.is_dir():
        raise OneLineError(f"ALKD_HOME {home}: is a file, not a folder (fix: point ALKD_HOME at a folder, or unset "
                           "it)")
    if os.environ.get("ALKD_DB"):
        check_store_path(db_path(), "ALKD_DB")
    else:
        check_store_path(db_path(), "the run store (ALKD_HOME)",
                         "point ALKD_HOME at a writable folder (or ALKD_DB at a DuckDB file), or unset it")
    if os.environ.get("ALKD_PRICES"):
        from core.teachers.pricing import PriceError, price_table
        try:
            price_table()
        except PriceError as error:
            raise OneLineError(describe(error)) from None


def check_source_options(source: str, options: Mapping[str, Any]) -> None:
    """OneLineError for a `data fetch -o KEY` the source does not take, naming the closest known key."""
    from core.data.sources import get_source

    try:
        build = get_source(source).build
    except KeyError:
        return                                     # fetch reports the unknown source itself
    parameters = inspect.signature(build).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    known = [name for name, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"-o {close[0]}=..." if close else (f"use one of {', '.join(known)}" if known
                                                      else f"{source} takes no -o options")
            raise OneLineError(f"-o {key}: {source} has no option {key!r}; known: {', '.join(known) or 'none'} "
                               f"(fix: {hint})")


def check_export_dir(directory: Path, tables: Iterable[str]) -> None:
    """OneLineError unless `directory` holds `alkd runs export` files: runs.parquet, and every TABLE.parquet present
    is readable Parquet with a run_id column and only columns the store's table has."""
    import pyarrow.parquet as pq

    from core import store

    fix = "pass a folder written by `alkd runs export`, or export it again"
    if not (directory / "runs.parquet").exists():
        raise OneLineError(f"{directory}: no runs.parquet, so not an `alkd runs export` folder (fix: {fix})")
    for table in tables:
        path = directory / f"{table}.parquet"
        if not path.exists():
            continue
        try:
            names = pq.read_schema(path).names
        except Exception as error:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise OneLineError(f"{path}: not a readable Parquet file ({error}) (fix: {fix})") from None
        columns = set(store.query(f"SELECT * FROM {table} LIMIT 0").columns)
        unknown = [name for name in names if name not in columns]
        if "run_id" not in names or unknown:
            what = f"unknown columns {', '.join(unknown[:5])}" if unknown else "no run_id column"
            raise OneLineError(f"{path}: {what} for the store's {table} table (fix: {fix})")


__all__ = ["OneLineError", "OneLineGroup", "check_environment", "check_export_dir", "check_source_options",
           "check_store_path", "describe", "one_line", "validation_line", "value_line"]
