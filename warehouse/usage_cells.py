"""The cells of the visitor indicators computed by DuckDB over staging.checkins (SQL: warehouse/sql/usage_cells.sql).

Reading all check-ins into Polars costs memory in proportion to the history (9.7 GB at 10M rows, see BENCHMARKS.md);
the cells are a few tens of thousands of rows whatever the history, and DuckDB can spill its GROUP BY to disk.
transforms.usage_indicators.visitor_indicators_from_cells turns them into marts.usage_visitors.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from transforms.usage_indicators import ALL, CELL_COLUMNS, DEFAULT_DURATION_MINUTES, UNKNOWN

USAGE_CELLS_SQL = Path(__file__).with_name("sql") / "usage_cells.sql"


def usage_cells(con: duckdb.DuckDBPyConnection, memory_limit: str | None = None) -> pl.DataFrame:
    """Per facility, period, breakdown and category: visits, distinct and repeat visitors, person-hours (CELL_COLUMNS).

    memory_limit (e.g. "4GB"): DuckDB spills the GROUP BY to disk beyond it; without it DuckDB takes up to 80 % of RAM.
    The setting is the database's, not the query's: the previous limit (as DuckDB reports it, to 0.1 GiB) is put
    back afterwards.
    """
    previous = con.sql("SELECT current_setting('memory_limit')").fetchall()[0][0] if memory_limit else None
    if memory_limit:
        con.execute("SET memory_limit = $limit", {"limit": memory_limit})
    try:
        cells = con.sql(
            USAGE_CELLS_SQL.read_text(encoding="utf-8"),
            params={"default_duration_minutes": DEFAULT_DURATION_MINUTES, "unknown": UNKNOWN, "all": ALL},
        ).pl()
    finally:
        if previous is not None:
            con.execute("SET memory_limit = $limit", {"limit": previous})
    return cells.select(CELL_COLUMNS)


def checkin_dates(con: duckdb.DuckDBPyConnection) -> tuple[date, date] | None:
    """First and last visit_date in staging.checkins (the days the opening hours are counted on); None if empty."""
    first, last = con.sql("SELECT min(visit_date), max(visit_date) FROM staging.checkins").fetchall()[0]
    return None if first is None else (first, last)
