"""The one error type for bad input data: it says what, where and how to fix it."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Bad input data. The message names the file, the line/field, and the fix."""

    def __init__(self, problem: str, *, file: str | Path | None = None, line: int | None = None,
                 field: str | None = None, fix: str | None = None) -> None:
        where = []
        if file is not None:
            where.append(str(file))
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field '{field}'")
        message = (": ".join([", ".join(where), problem]) if where else problem)
        if fix:
            message += f" (fix: {fix})"
        super().__init__(message)
        self.file, self.line, self.field, self.fix = file, line, field, fix
