"""Results computed from one piece of the check-ins (a month, a facility), kept in cache.pieces between runs.

Every run rebuilds the marts over all of history, but a delivery changes a week or a month of it: a piece whose
inputs are unchanged is read back instead of computed again (the resilience marts of a 10M history: 11 s; see
BENCHMARKS.md). A piece's fingerprint covers everything its frames rest on:

- its check-ins: their number and the sum of the hashes of their whole rows (content_by), so a load, a replaced
  or deleted row changes it;
- the inputs every piece shares (population, facility registry, bookings, settings), given by the caller;
- the code: every module and SQL file of transforms/ and warehouse/, and the Polars and DuckDB versions, so that
  an upgrade never serves results of the old code.

A piece ordered in time whose results from some week on rest only on a bounded span of check-ins before it (the
trailing-window visitors of a facility) is not computed again whole when a week changes: it keeps its content per
week, and get_or_update hands the stored frames and the first changed week to the code that updates them.

Pieces not used in a run (a month that no longer has check-ins) are dropped when the run finishes.
"""

from __future__ import annotations

import hashlib
import io
from datetime import date
from functools import cache
from pathlib import Path
from typing import Callable, Iterable

import duckdb
import polars as pl

from warehouse.fingerprint import file_sha256

# the part of a get_or_update piece that holds its content per week
WEEKS_PART = "content by week"
CODE_FOLDERS = [Path(__file__).resolve().parents[1] / name for name in ("transforms", "warehouse")]


def fingerprint(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()


@cache
def code_fingerprint() -> str:
    files = sorted(p for folder in CODE_FOLDERS for p in folder.rglob("*") if p.suffix in (".py", ".sql"))
    return fingerprint(pl.__version__, duckdb.__version__,
                       *(file_sha256(p) for p in files))


Content = tuple[int, int]


def content_by(con: duckdb.DuckDBPyConnection, group: str, columns: str = "c",
               table: str = "staging.checkins") -> dict[object, Content]:
    """Per value of `group` (expressions over `table`, alias c; a tuple of values for several): the number of rows
    and the sum of the hashes of `columns` (default: the whole row). 0.2 s per 10M check-ins."""
    rows = con.sql(f"SELECT {group}, count(*), sum(hash({columns})::HUGEINT) FROM {table} AS c GROUP BY ALL")
    return {(values[0] if len(values) == 1 else tuple(values)): (count, content)
            for *values, count, content in rows.fetchall()}


def summed(contents: Iterable[tuple[object, Content]]) -> dict[object, Content]:
    """Contents of the same key added up: content_by of a coarser group from that of a finer one."""
    total: dict[object, Content] = {}
    for key, (count, content) in contents:
        before = total.get(key, (0, 0))
        total[key] = (before[0] + count, before[1] + content)
    return total


def checkin_content(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, date], Content]:
    """content_by facility and visit_date: the one pass over the check-ins (2 s at 100M) that the fingerprints of
    every cached piece and slice add up from."""
    return content_by(con, "facility_id, visit_date")


def by_day(content: dict[tuple[str, date], Content]) -> dict[date, Content]:
    return summed((day, c) for (_, day), c in content.items())


def table_content(con: duckdb.DuckDBPyConnection, table: str) -> Content:
    """content_by over the whole table."""
    return content_by(con, "'all'", table=table).get("all", (0, 0))


def content_of_days(days: dict[date, Content], first: date, end: date) -> Content:
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
            return self._read(piece)
        return self._write(piece, key, compute())

    def get_or_update(self, piece: str, parameters: object, content: dict[date, Content],
                      update: Callable[[dict[str, pl.DataFrame] | None, date | None], dict[str, pl.DataFrame]]
                      ) -> dict[str, pl.DataFrame]:
        """The frames of a piece whose content is given per week (or day): as stored if no week changed;
        update(stored frames, first changed week) if some did and the stored frames were computed from the same
        inputs and parameters; update(None, None), a computation from scratch, otherwise."""
        key = fingerprint(self.inputs, parameters)
        self.used.add(piece)
        weeks = pl.DataFrame({"week": list(content), "content": [fingerprint(c) for c in content.values()]},
                             schema={"week": pl.Date, "content": pl.String})
        if self.stored.get(piece) != key:
            return self._write(piece, key, update(None, None), weeks)
        stored = self._read(piece)
        before = stored.pop(WEEKS_PART)
        changed = pl.concat([before, weeks]).filter(pl.len().over("week", "content") == 1)["week"]
        if changed.is_empty():
            return stored
        return self._write(piece, key, update(stored, changed.min()), weeks)

    def finish(self) -> None:
        self.con.execute("DELETE FROM cache.pieces WHERE NOT list_contains(?, piece)", [sorted(self.used)])

    def _read(self, piece: str) -> dict[str, pl.DataFrame]:
        rows = self.con.execute("SELECT part, frame FROM cache.pieces WHERE piece = ?", [piece]).fetchall()
        return {part: pl.read_ipc(io.BytesIO(frame)) for part, frame in rows}

    def _write(self, piece: str, key: str, frames: dict[str, pl.DataFrame],
               weeks: pl.DataFrame | None = None) -> dict[str, pl.DataFrame]:
        self.con.execute("DELETE FROM cache.pieces WHERE piece = ?", [piece])
        for part, frame in (frames | ({} if weeks is None else {WEEKS_PART: weeks})).items():
            buffer = io.BytesIO()
            frame.write_ipc(buffer)
            self.con.execute("INSERT INTO cache.pieces (piece, part, fingerprint, frame) VALUES (?, ?, ?, ?)",
                             [piece, part, key, buffer.getvalue()])
        return frames
