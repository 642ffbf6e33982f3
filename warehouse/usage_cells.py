"""The cells of the visitor indicators computed by DuckDB over staging.checkins (SQL: warehouse/sql/usage_cells.sql).

Reading all check-ins into Polars costs memory in proportion to the history (9.7 GB at 10M rows, see BENCHMARKS.md);
the cells are a few tens of thousands of rows whatever the history. DuckDB computes them one slice of time at a
time (a calendar month for the monthly cells, an ISO week for the weekly ones): a visitor's cells never span two
slices, so the slices add up to the whole, and what DuckDB holds or spills is bounded by a slice. All of
100M check-ins at once spilled more than 40 GB to disk before the disk was full. The cells of each slice are kept
in cache.usage_cells, and a run computes only the slices whose check-ins changed (usage_cells).
transforms.usage_indicators.visitor_indicators_from_cells turns them into marts.usage_visitors.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

from transforms.usage_indicators import ALL, CELL_COLUMNS, DEFAULT_DURATION_MINUTES, UNKNOWN
from warehouse.duckdb_memory import memory_limited
from warehouse.frames import registered
from warehouse.piece_cache import Content, by_day, checkin_content, code_fingerprint, content_of_days, fingerprint

USAGE_CELLS_SQL = Path(__file__).with_name("sql") / "usage_cells.sql"

CELL_SCHEMA = {"facility_id": pl.String, "period": pl.String, "period_start": pl.Date, "breakdown": pl.String,
               "category": pl.String, "visits": pl.Int64, "distinct_visitors": pl.Int64, "repeat_visitors": pl.Int64,
               "person_hours": pl.Float64}


Slice = tuple[str, date, date]  # period, first day, the day after the last
# check-ins one query aggregates at most when it computes several slices: what DuckDB holds or spills stays bounded
ROWS_PER_QUERY = 2_000_000
CONSTANTS = {"default_duration_minutes": DEFAULT_DURATION_MINUTES, "unknown": UNKNOWN, "all": ALL}


def period_slices(first: date, last: date) -> list[Slice]:
    """(period, first day, day after the last) of the calendar months and ISO weeks covering first..last. Weeks one
    by one: a delivery of a week into 100M check-ins recomputed 5.6M of them in blocks of four weeks (3 s)."""
    slices = []
    month = first.replace(day=1)
    while month <= last:
        following = (month + timedelta(days=32)).replace(day=1)
        slices.append(("month", month, following))
        month = following
    week = first - timedelta(days=first.weekday())
    while week <= last:
        slices.append(("week", week, week + timedelta(weeks=1)))
        week += timedelta(weeks=1)
    return slices


def query_batches(stale: list[Slice], rows: dict[Slice, int]) -> list[list[Slice]]:
    """The stale slices (in period_slices order) in runs of consecutive slices of one period that one query computes
    together, up to ROWS_PER_QUERY check-ins (a bigger slice alone). A cold run over 1M check-ins computes its 53
    weeks in one query, not 53; a week delivered into 100M check-ins is one query of one week."""
    batches: list[list[Slice]] = []
    for s in stale:
        last = batches[-1] if batches else None
        if (last and last[-1][0] == s[0] and last[-1][2] == s[1]
                and sum(rows[b] for b in last) + rows[s] <= ROWS_PER_QUERY):
            last.append(s)
        else:
            batches.append([s])
    return batches


def usage_cells(con: duckdb.DuckDBPyConnection, memory_limit: str | None = None,
                content: dict[tuple[str, date], Content] | None = None) -> pl.DataFrame:
    """Per facility, period, breakdown and category: visits, distinct and repeat visitors, person-hours (CELL_COLUMNS).

    Only the slices whose check-ins changed since the cells were last computed are computed again; the others come
    from cache.usage_cells (a delivery touches a month or two of a history of years). A slice's fingerprint covers
    the code (the query among it; warehouse.piece_cache.code_fingerprint), the constants and every column of the
    slice's check-ins (warehouse.piece_cache.checkin_content; given by the caller if it has it already), so any
    change to them (a load, a replaced or deleted row, an upgrade) makes the slice stale.
    memory_limit (e.g. "4GB"): DuckDB spills beyond it (warehouse.duckdb_memory.memory_limited).
    """
    dates = checkin_dates(con)
    slices = period_slices(*dates) if dates else []
    days = by_day(checkin_content(con) if content is None else content)
    definition = fingerprint(code_fingerprint(), json.dumps(CONSTANTS, sort_keys=True))
    contents = {s: content_of_days(days, s[1], s[2]) for s in slices}
    fingerprints = {s: fingerprint(definition, contents[s]) for s in slices}
    cached = {(period, first, end): stored for period, first, end, stored in
              con.sql("SELECT period, first_day, end_day, fingerprint FROM cache.usage_cell_slices").fetchall()}
    stale = [s for s in slices if cached.get(s) != fingerprints[s]]
    with memory_limited(con, memory_limit):
        computed = slice_cells(con, stale, {s: rows for s, (rows, _) in contents.items()})
    _keep(con, fingerprints, computed)
    cells = con.sql(f"SELECT {', '.join(CELL_COLUMNS)} FROM cache.usage_cells").pl()
    return pl.concat([pl.DataFrame(schema=CELL_SCHEMA), cells.cast(CELL_SCHEMA)]).select(CELL_COLUMNS)


def slice_cells(con: duckdb.DuckDBPyConnection, slices: list[Slice], rows: dict[Slice, int]) -> dict[Slice, pl.DataFrame]:
    """The cells of each of the slices (in period_slices order; `rows`: check-ins per slice) from staging.checkins,
    one query per batch of slices (query_batches)."""
    query = USAGE_CELLS_SQL.read_text(encoding="utf-8")
    computed: dict[Slice, pl.DataFrame] = {}
    for batch in query_batches(slices, rows):
        period, first, end = batch[0][0], batch[0][1], batch[-1][2]
        cells = con.sql(query, params={"period": period, "first_day": first, "end_day": end, **CONSTANTS}).pl()
        computed |= {s: cells.filter(pl.col("period_start") == s[1]) for s in batch}  # a slice is one period
    return computed


def _keep(con: duckdb.DuckDBPyConnection, fingerprints: dict[Slice, str], computed: dict[Slice, pl.DataFrame]) -> None:
    """The cache holds exactly the current slices (the keys of `fingerprints`): the computed ones replaced, those
    that no longer exist dropped (outside the span of the check-ins now)."""
    def slice_rows(slices) -> pl.DataFrame:
        return pl.DataFrame([(*s, fingerprints[s]) for s in slices], orient="row",
                            schema={"period": pl.String, "first_day": pl.Date, "end_day": pl.Date, "fingerprint": pl.String})

    new_cells = pl.concat([pl.DataFrame(schema={**CELL_SCHEMA, "slice_first_day": pl.Date}),
                           *(cells.cast(CELL_SCHEMA).with_columns(slice_first_day=pl.lit(first))
                             for (_, first, _), cells in computed.items())], how="diagonal")
    unchanged = slice_rows(s for s in fingerprints if s not in computed)
    with registered(con, current_slices=slice_rows(fingerprints), unchanged_slices=unchanged, new_cells=new_cells):
        con.execute("BEGIN")
        try:
            con.execute("""DELETE FROM cache.usage_cells AS c WHERE NOT EXISTS (
                               SELECT 1 FROM unchanged_slices AS u
                               WHERE u.period = c.period AND u.first_day = c.slice_first_day)""")
            con.execute("INSERT INTO cache.usage_cells BY NAME SELECT * FROM new_cells")
            con.execute("DELETE FROM cache.usage_cell_slices")
            con.execute("INSERT INTO cache.usage_cell_slices BY NAME SELECT * FROM current_slices")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def checkin_dates(con: duckdb.DuckDBPyConnection) -> tuple[date, date] | None:
    """First and last visit_date in staging.checkins (the days the opening hours are counted on); None if empty."""
    first, last = con.sql("SELECT min(visit_date), max(visit_date) FROM staging.checkins").fetchall()[0]
    return None if first is None else (first, last)
