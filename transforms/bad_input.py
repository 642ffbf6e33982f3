"""The one error type for input that the pipeline refuses.

Every refusal names the file, the row it applies to (1-based line or record number, or None when it concerns
the whole file) and the reason, so that the message alone tells an operator what to fix.
"""

from __future__ import annotations


class BadInputError(Exception):
    def __init__(self, file: str, row: int | None, reason: str):
        self.file = file
        self.row = row
        self.reason = reason
        where = f"{file}, row {row}" if row is not None else file
        super().__init__(f"{where}: {reason}")
