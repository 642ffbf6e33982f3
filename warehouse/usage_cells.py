"""The cells of the visitor indicators computed by DuckDB over staging.checkins (SQL: warehouse/sql/usage_cells.sql).

Reading all check-ins into Polars costs memory in proportion to the history (9.7 GB at 10M rows, see BENCHMARKS.md);
the cells are a few tens of thousands of rows whatever the history. DuckDB computes them one slice of time at a
time (a calendar month for the monthly cells, a block of whole weeks for the weekly ones): a visitor's cells never
span two slices, so the slices add up to the whole, and what DuckDB holds or spills is bounded by a slice. All of
100M check-ins at once spilled more than 40 GB to disk before the disk was full.
transforms.usage_indicators.visitor_indicators_from_cells turns them into marts.usage_visitors.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

from transforms.usage_indicators import ALL, CELL_COLUMNS, DEFAULT_DURATION_MINUTES, UNKNOWN
from warehouse.duckdb_memory import memory_limited

USAGE_CELLS_SQL = Path(__file__).with_name("sql") / "usage_cells.sql"


WEEKS_PER_SLICE = 4
CELL_SCHEMA = {"facility_id": pl.String, "period": pl.String, "period_start": pl.Date, "breakdown": pl.String,
               "category": pl.String, "visits": pl.Int64, "distinct_visitors": pl.Int64, "repeat_visitors": pl.Int64,
               "person_hours": pl.Float64}


def period_slices(first: date, last: date) -> list[tuple[str, date, date]]:
    """(period, first day, day after the last) of whole months and of blocks of whole ISO weeks covering first..last."""
    slices = []
    month = first.replace(day=1)
    while month <= last:
        following = (month + timedelta(days=32)).replace(day=1)
        slices.append(("month", month, following))
        month = following
    week = first - timedelta(days=first.weekday())
    while week <= last:
        block_end = week + timedelta(weeks=WEEKS_PER_SLICE)
        slices.append(("week", week, block_end))
        week = block_end
    return slices


def usage_cells(con: duckdb.DuckDBPyConnection, memory_limit: str | None = None) -> pl.DataFrame:
    """Per facility, period, breakdown and category: visits, distinct and repeat visitors, person-hours (CELL_COLUMNS).

    memory_limit (e.g. "4GB"): DuckDB spills beyond it (warehouse.duckdb_memory.memory_limited).
    """
    dates = checkin_dates(con)
    empty = pl.DataFrame(schema=CELL_SCHEMA)
    if dates is None:
        return empty
    query = USAGE_CELLS_SQL.read_text(encoding="utf-8")
    constants = {"default_duration_minutes": DEFAULT_DURATION_MINUTES, "unknown": UNKNOWN, "all": ALL}
    with memory_limited(con, memory_limit):
        slices = [
            con.sql(query, params={"period": period, "first_day": first, "end_day": end, **constants}).pl()
            for period, first, end in period_slices(*dates)
        ]
    return pl.concat([empty, *(s.cast(CELL_SCHEMA) for s in slices)]).select(CELL_COLUMNS)


def checkin_dates(con: duckdb.DuckDBPyConnection) -> tuple[date, date] | None:
    """First and last visit_date in staging.checkins (the days the opening hours are counted on); None if empty."""
    first, last = con.sql("SELECT min(visit_date), max(visit_date) FROM staging.checkins").fetchall()[0]
    return None if first is None else (first, last)
