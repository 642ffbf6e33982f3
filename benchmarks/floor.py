"""The floor: DuckDB alone reading the delivered CSV files and running the GROUP BY the visitor indicators need.

No pseudonymisation, no validation, no warehouse, no opening hours: only what no implementation of the usage
indicators can avoid (read every row, parse its time, group it twice). The pipeline is measured against this.
The cells are those of transforms/usage_indicators._visitor_cells: per facility, period (ISO week, month),
breakdown (total, offer, age band, home district) and category: visits, distinct and repeat visitors, person-hours.

The same GROUP BY over the warehouse's staging.checkins (`warehouse_cells`) lets the smoke test check that the
floor computes exactly the cells of the pipeline (which has its own SQL in warehouse/sql/usage_cells.sql).

That GROUP BY is the one an analyst would write, and the pipeline's own SQL, one slice of time per query, is faster
(10M check-ins: the GROUP BY alone ~11 s, the pipeline's cells ~5.5 s). So the harness also measures a stricter
floor (`sliced_visitor_cells`): DuckDB alone reading the same files, with the pipeline's SQL.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from warehouse.usage_cells import period_slices, slice_cells

COLUMNS = {
    "timestamp": "TIMESTAMPTZ", "facility_id": "VARCHAR", "offer": "VARCHAR", "visitor_ref": "VARCHAR",
    "age_band": "VARCHAR", "home_district": "VARCHAR", "party_size": "INTEGER", "duration_minutes": "INTEGER",
}

# {rows}: a relation with facility_id, visitor, offer, age_band, home_district, visit_date, party_size, duration_minutes
CELLS = """
WITH visits AS (
    SELECT facility_id, visitor, coalesce(offer, 'unknown') AS offer, coalesce(age_band, 'unknown') AS age_band,
           coalesce(home_district, 'unknown') AS home_district,
           date_trunc('week', visit_date)::DATE AS week_start,
           date_trunc('month', visit_date)::DATE AS month_start,
           coalesce(party_size, 1) * coalesce(duration_minutes, 60) / 60.0 AS person_hours
    FROM {rows}
),
per_visitor AS (
    SELECT facility_id, visitor,
           CASE WHEN grouping(week_start) = 0 THEN 'week' ELSE 'month' END AS period,
           coalesce(week_start, month_start) AS period_start,
           CASE WHEN grouping(offer) = 0 THEN 'offer' WHEN grouping(age_band) = 0 THEN 'age_band'
                WHEN grouping(home_district) = 0 THEN 'home_district' ELSE 'total' END AS breakdown,
           coalesce(offer, age_band, home_district, 'all') AS category,
           count(*) AS visits, sum(person_hours) AS person_hours
    FROM visits
    GROUP BY GROUPING SETS (
        (facility_id, visitor, week_start), (facility_id, visitor, week_start, offer),
        (facility_id, visitor, week_start, age_band), (facility_id, visitor, week_start, home_district),
        (facility_id, visitor, month_start), (facility_id, visitor, month_start, offer),
        (facility_id, visitor, month_start, age_band), (facility_id, visitor, month_start, home_district)
    )
)
SELECT facility_id, period, period_start, breakdown, category,
       sum(visits)::BIGINT AS visits, count(*) AS distinct_visitors,
       count(*) FILTER (WHERE visits >= 2) AS repeat_visitors, sum(person_hours) AS person_hours
FROM per_visitor
GROUP BY ALL
"""

DELIVERED_ROWS = """(
    SELECT *, visitor_ref AS visitor, timezone('Europe/Berlin', "timestamp")::DATE AS visit_date
    FROM read_csv($files, header = true, columns = $columns)
)"""
STAGING_ROWS = "(SELECT *, visitor_pseudonym AS visitor FROM staging.checkins)"


def visitor_cells(files: list[Path], threads: int | None = None) -> pl.DataFrame:
    """The indicator cells of the given check-in CSV files, computed by DuckDB in memory."""
    con = duckdb.connect(config={"threads": threads} if threads else {})
    try:
        con.execute("SET enable_progress_bar = false")
        query = CELLS.format(rows=DELIVERED_ROWS)
        return con.sql(query, params={"files": [str(f) for f in files], "columns": COLUMNS}).pl()
    finally:
        con.close()


def sliced_visitor_cells(files: list[Path]) -> pl.DataFrame:
    """The same cells as the pipeline computes them (warehouse.usage_cells.slice_cells: its SQL, one slice of time per
    query) from the files read into an in-memory table: no pseudonyms (the visitor reference stands in for them), no
    validation, no warehouse file, no cache."""
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute("CREATE SCHEMA staging")
        con.execute(f"""CREATE TABLE staging.checkins AS
                        SELECT facility_id, visitor AS visitor_pseudonym, offer, age_band, home_district, party_size,
                               duration_minutes, visit_date
                        FROM {DELIVERED_ROWS}""", {"files": [str(f) for f in files], "columns": COLUMNS})
        days = con.sql("SELECT visit_date, count(*) FROM staging.checkins GROUP BY visit_date").fetchall()
        slices = period_slices(min(d for d, _ in days), max(d for d, _ in days))
        rows = {s: sum(n for day, n in days if s[1] <= day < s[2]) for s in slices}
        return pl.concat(slice_cells(con, slices, rows).values())
    finally:
        con.close()


def warehouse_cells(warehouse: Path, memory_limit: str | None = None) -> pl.DataFrame:
    """The same cells from the check-ins loaded into a warehouse (pseudonyms instead of visitor references).

    memory_limit (e.g. "4GB"): DuckDB spills the GROUP BY to disk beyond it; by default it takes up to 80 % of RAM.
    """
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        con.execute("SET enable_progress_bar = false")
        if memory_limit:
            con.execute(f"SET memory_limit = '{memory_limit}'")
        return con.sql(CELLS.format(rows=STAGING_ROWS)).pl()
    finally:
        con.close()
