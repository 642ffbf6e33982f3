"""The check-ins each resilience mart needs, read from staging.checkins in bounded pieces, never all at once.

All of history in Polars took 1.6 GB per 10M check-ins before any mart was computed (all resilience marts: 7.1 GB
peak at 10M; at 100M it would not fit 16 GB). Each piece holds everything the results computed from it rest on:

- aggregated by DuckDB: visits and distinct visitors per facility, offer and day, one month at a time
  (anomalies and trends), and the distinct visitors of the trailing weeks per offer, one facility at a time
  (trends; warehouse/sql/trailing_visitors.sql);
- one calendar month at a time, reduced by DuckDB to what is counted: the distinct visitors per facility type,
  home district and recorded age band (penetration), and the counts of the outside-district share per facility;
- the base period's distinct visitors: participation rates and the demand projection count distinct visitors
  per home district and recorded age band, nothing else;
- one calendar month of the check-ins inside at least one booking: room sharing (persons per booking are a sum
  over check-ins; a check-in outside every booking adds nothing).

Only the columns the transforms read are fetched. DuckDB hands TIMESTAMPTZ back in its session time zone; the
transforms agree on UTC.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

from transforms.coverage import unregistered_facility
from warehouse.frames import registered

TRAILING_VISITORS = (Path(__file__).parent / "sql" / "trailing_visitors.sql").read_text(encoding="utf-8")
OUTSIDE_DISTRICT_COUNTS = (Path(__file__).parent / "sql" / "outside_district_counts.sql").read_text(encoding="utf-8")


def read_utc(con: duckdb.DuckDBPyConnection, query: str, params: list | dict | None = None) -> pl.DataFrame:
    return con.sql(query, params=params).pl().with_columns(pl.col(pl.Datetime).dt.convert_time_zone("UTC"))


def daily_visits_in(con: duckdb.DuckDBPyConnection, start: date, end: date) -> pl.DataFrame:
    """Visits and distinct visitors per facility, offer and local date in [start, end] (a month: the distinct
    count of all history in one query would have to hold every visitor-day)."""
    return read_utc(
        con,
        """SELECT facility_id, offer, visit_date, count(*) AS visits,
                  count(DISTINCT visitor_pseudonym) AS distinct_visitors
           FROM staging.checkins WHERE visit_date BETWEEN ? AND ?
           GROUP BY ALL""",
        [start, end],
    )


def trailing_visitors(con: duckdb.DuckDBPyConnection, facility_id: str, windows: list[int],
                      changed_from: date | None = None) -> pl.DataFrame:
    """Distinct visitors per offer of the facility in the `weeks` weeks up to each week, for each window length in
    `windows`, a step function (weeks, facility_id, offer, week, distinct_visitors;
    warehouse/sql/trailing_visitors.sql), computed by DuckDB under its memory limit: the busiest facility of the
    100M benchmark has 26M check-ins. changed_from (a Monday): only the rows from then on are right, and only the
    visits of the longest window before it are read."""
    return read_utc(con, TRAILING_VISITORS, {"facility_id": facility_id, "windows": windows, "changed_from": changed_from})


def checkin_months(con: duckdb.DuckDBPyConnection) -> list[tuple[date, date]]:
    """(first day, last day) of every month with check-ins, in order."""
    starts = con.execute(
        "SELECT DISTINCT date_trunc('month', visit_date)::DATE FROM staging.checkins ORDER BY 1"
    ).fetchall()
    return [(s, (s.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)) for (s,) in starts]


def visitors_by_facility_type(con: duckdb.DuckDBPyConnection, start: date, end: date,
                              facilities: pl.DataFrame) -> pl.DataFrame:
    """One row per facility type, visitor, home district and recorded age band seen at the type's facilities on the
    local dates [start, end], dated `start`: what penetration counts (distinct visitors). Check-ins of a facility
    not in `facilities` are left out here; outside_district_counts_in reports them."""
    with registered(con, registry_facilities=facilities.select("facility_id", "type")):
        return read_utc(
            con,
            """SELECT DISTINCT ?::DATE AS visit_date, f.type, c.home_district, c.visitor_pseudonym, c.age_from, c.age_to
               FROM staging.checkins AS c JOIN registry_facilities AS f USING (facility_id)
               WHERE c.visit_date BETWEEN ? AND ?""",
            [start, start, end],
        )


def outside_district_counts_in(con: duckdb.DuckDBPyConnection, start: date, end: date,
                               facilities: pl.DataFrame) -> pl.DataFrame:
    """transforms.coverage.outside_district_counts of the local dates [start, end], counted by DuckDB
    (warehouse/sql/outside_district_counts.sql): one row per facility, where a month of 100M check-ins in Polars
    took 1.8 s to read and 2.5 s to count. A check-in of a facility that `facilities` lacks (or gives no district)
    raises as the transform does, naming the first such row by file and row."""
    known = facilities.filter(pl.col("area_code").is_not_null()).select("facility_id", "area_code")
    with registered(con, registry_facilities=known):
        first = con.execute(
            """SELECT source_file, source_row, facility_id FROM staging.checkins
               WHERE visit_date BETWEEN ? AND ? AND facility_id NOT IN (SELECT facility_id FROM registry_facilities)
               ORDER BY source_file, source_row LIMIT 1""",
            [start, end],
        ).fetchall()
        if first:
            raise unregistered_facility(*first[0])
        return con.sql(OUTSIDE_DISTRICT_COUNTS, params={"first_day": start, "last_day": end}).pl()


def visitors_in(con: duckdb.DuckDBPyConnection, start: date, end: date) -> pl.DataFrame:
    """One row per visitor, home district and recorded age band seen in [start, end], dated `start`: what the
    participation rates and the demand projection count (distinct visitors), a tenth of the check-ins at 10M."""
    return read_utc(
        con,
        """SELECT DISTINCT ?::DATE AS visit_date, home_district, visitor_pseudonym, age_band, age_from, age_to
           FROM staging.checkins WHERE visit_date BETWEEN ? AND ?""",
        [start, start, end],
    )


def checkins_inside_bookings(con: duckdb.DuckDBPyConnection, start: date, end: date) -> pl.DataFrame:
    """The check-ins of the local dates [start, end] at a facility while one of its rooms was booked (DuckDB's
    range join; 14 % of the benchmark's check-ins at 10M). A visit inside several bookings is returned once."""
    return read_utc(
        con,
        """SELECT c.facility_id, c.visited_at, c.party_size, c.source_file, c.source_row
           FROM staging.checkins AS c
           WHERE c.visit_date BETWEEN ? AND ?
             AND EXISTS (SELECT 1 FROM staging.room_bookings AS b
                         WHERE b.facility_id = c.facility_id AND c.visited_at >= b.starts_at AND c.visited_at < b.ends_at)""",
        [start, end],
    )
