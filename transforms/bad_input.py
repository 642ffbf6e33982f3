"""The one error type for input that the pipeline refuses.

Every refusal names the file, the row it applies to (1-based line or record number, or None when it concerns
the whole file) and the reason, so that the message alone tells an operator what to fix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import polars as pl


class BadInputError(Exception):
    def __init__(self, file: str, row: int | None, reason: str):
        self.file = file
        self.row = row
        self.reason = reason
        where = f"{file}, row {row}" if row is not None else file
        super().__init__(f"{where}: {reason}")


def refuse_first(rows: pl.DataFrame, file: str, problems: Iterable[tuple[pl.Expr, Callable[[dict], str]]],
                 row_column: str = "row") -> None:
    """Check rule by rule, in order; the first row (by `row_column`) breaking a rule ends in BadInputError."""
    for condition, reason in problems:
        bad = rows.filter(condition).sort(row_column)
        if bad.height:
            first = bad.row(0, named=True)
            raise BadInputError(file, first[row_column], reason(first))
