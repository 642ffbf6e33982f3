"""Results computed from one piece of the check-ins (a month, a facility), kept in cache.pieces between runs.

Every run rebuilds the marts over all of history, but a delivery changes a week or a month of it: a piece whose
inputs are unchanged is read back instead of computed again (the resilience marts of a 10M history: 11 s; see
BENCHMARKS.md). A piece's fingerprint covers everything its frames rest on:

- its check-ins: their number and the sum of the hashes of their whole rows (content_by), so a load, a replaced
  or deleted row changes it;
- the inputs every piece shares (population, facility registry, bookings, settings), given by the caller;
- the code: every module and SQL file of transforms/ and warehouse/, and the Polars and DuckDB versions, so that
  an upgrade never serves results of the old code.

Pieces not used in a run (a month that no longer has check-ins) are dropped when the run finishes.
"""

from __future__ import annotations

import hashlib
import io
from datetime import date
from functools import cache
from pathlib import Path
from typing import Callable

import duckdb
import polars as pl

CODE_FOLDERS = [Path(__file__).resolve().parents[1] / name for name in ("transforms", "warehouse")]


def fingerprint(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()


@cache
def code_fingerprint() -> str:
    files = sorted(p for folder in CODE_FOLDERS for p in folder.rglob("*") if p.suffix in (".py", ".sql"))
    return fingerprint(pl.__version__, duckdb.__version__,
                       *(hashlib.sha256(p.read_bytes()).hexdigest() for p in files))


def content_by(con: duckdb.DuckDBPyConnection, group: str, columns: str = "c",
               table: str = "staging.checkins") -> dict[object, tuple[int, int]]:
    """Per value of `group` (an expression over `table`, alias c): the number of rows and the sum of the hashes
    of `columns` (default: the whole row). 0.2 s per 10M check-ins."""
    rows = con.sql(f"SELECT {group}, count(*), sum(hash({columns})::HUGEINT) FROM {table} AS c GROUP BY ALL")
    return {value: (count, content) for value, count, content in rows.fetchall()}


def table_content(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, int]:
    """content_by over the whole table."""
    return content_by(con, "'all'", table=table).get("all", (0, 0))


def content_of_days(days: dict[date, tuple[int, int]], first: date, end: date) -> tuple[int, int]:
    """content_by visit_date summed over the days from `first` up to (not including) `end`."""
    inside = [content for day, content in days.items() if first <= day < end]
    return sum(n for n, _ in inside), sum(h for _, h in inside)


class PieceCache:
    """get_or_compute per piece, then finish() once: cache.pieces holds the pieces of this run only."""

    def __init__(self, con: duckdb.DuckDBPyConnection, shared_inputs: str):
        self.con = con
        self.inputs = fingerprint(code_fingerprint(), shared_inputs)
        self.stored = dict(con.sql("SELECT DISTINCT piece, fingerprint FROM cache.pieces").fetchall())
        self.used: set[str] = set()

    def get_or_compute(self, piece: str, content: object,
                       compute: Callable[[], dict[str, pl.DataFrame]]) -> dict[str, pl.DataFrame]:
        """The frames of `piece` ({part: frame}) as stored if its content and the inputs are unchanged, else
        computed and stored."""
        key = fingerprint(self.inputs, content)
        self.used.add(piece)
        if self.stored.get(piece) == key:
            rows = self.con.execute("SELECT part, frame FROM cache.pieces WHERE piece = ?", [piece]).fetchall()
            return {part: pl.read_ipc(io.BytesIO(frame)) for part, frame in rows}
        frames = compute()
        self.con.execute("DELETE FROM cache.pieces WHERE piece = ?", [piece])
        for part, frame in frames.items():
            buffer = io.BytesIO()
            frame.write_ipc(buffer)
            self.con.execute("INSERT INTO cache.pieces (piece, part, fingerprint, frame) VALUES (?, ?, ?, ?)",
                             [piece, part, key, buffer.getvalue()])
        return frames

    def finish(self) -> None:
        self.con.execute("DELETE FROM cache.pieces WHERE NOT list_contains(?, piece)", [sorted(self.used)])
