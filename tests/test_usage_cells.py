"""The visitor indicator cells in DuckDB SQL (warehouse/usage_cells.py) give the same mart as the Polars path.

marts.usage_visitors is built from cells that DuckDB aggregates over staging.checkins, so that the pipeline never
reads the whole check-in history into memory; visitor_indicators computes the same from a check-in frame.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from conftest import ROOT, SAMPLE
from transforms.facility_registry import load_facility_registry
from transforms.usage_indicators import (
    CELL_COLUMNS, PERIODS, VISITOR_COLUMNS, _visitor_cells, visitor_indicators, visitor_indicators_from_cells,
)
from warehouse.ingest import IngestContext, ingest_file
from warehouse.migrate import migrate
from warehouse.publish import connect_build
from warehouse.usage_cells import ROWS_PER_QUERY, checkin_dates, period_slices, query_batches, usage_cells

REGISTRY = load_facility_registry(ROOT / "config" / "facilities.toml")
CHECKIN_FILES = sorted((SAMPLE / "usage").glob("checkins_*"))
CELL_KEYS = ["facility_id", "period", "period_start", "breakdown", "category"]
MART_KEYS = ["indicator_id", "facility_id", "period", "period_start", "breakdown", "category"]


def _context(root: Path) -> IngestContext:
    return IngestContext(landing=root / "landing", quarantine=root / "quarantine", validation=root / "validation",
                         facility_registry=ROOT / "config" / "facilities.toml")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A warehouse with the three sample months and, overlapping them, the first 500 January visits sent again."""
    root = tmp_path_factory.mktemp("usage_cells")
    con = connect_build(root / "w.duckdb")
    migrate(con)
    outcomes = [ingest_file(con, f"r{i}", "checkins", "checkin_log", path, _context(root))
                for i, path in enumerate(CHECKIN_FILES)]
    assert [o.status for o in outcomes] == ["loaded"] * 3
    january = CHECKIN_FILES[0].read_text(encoding="utf-8").splitlines(keepends=True)
    resent = root / "checkins_2024-01_resent_part.csv"
    resent.write_text("".join(january[:501]), encoding="utf-8")
    again = ingest_file(con, "r3", "checkins", "checkin_log", resent, _context(root))
    assert (again.status, again.rows_loaded) == ("loaded", 500)
    yield con, sum(o.rows_loaded for o in outcomes)
    con.close()


def _polars_checkins(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql("SELECT * FROM staging.checkins").pl()


def test_overlapping_delivery_is_counted_once(loaded):
    con, rows_loaded = loaded
    assert con.sql("SELECT count(*) FROM staging.checkins").fetchall() == [(rows_loaded,)]
    cells = usage_cells(con)
    for period in PERIODS:  # every visit is in exactly one total cell per period
        totals = cells.filter((pl.col("breakdown") == "total") & (pl.col("period") == period))
        assert totals["visits"].sum() == rows_loaded
    # …and in exactly one category of every breakdown
    per_breakdown = cells.filter(pl.col("period") == "month").group_by("breakdown").agg(pl.col("visits").sum())
    assert dict(per_breakdown.iter_rows()) == {b: rows_loaded for b in ("total", "offer", "age_band", "home_district")}


def test_sql_cells_equal_the_polars_cells(loaded):
    con, _ = loaded
    checkins = _polars_checkins(con)
    expected = pl.concat([_visitor_cells(checkins, every).with_columns(period=pl.lit(period)).select(CELL_COLUMNS)
                          for period, every in PERIODS.items()])
    cells = usage_cells(con)
    assert cells.columns == CELL_COLUMNS
    assert cells.height > 1000
    assert_frame_equal(cells.sort(CELL_KEYS), expected.sort(CELL_KEYS))
    # ISO weeks start on Monday, months on the 1st
    weeks = cells.filter(pl.col("period") == "week")["period_start"]
    assert set(weeks.dt.weekday()) == {1}
    assert set(cells.filter(pl.col("period") == "month")["period_start"].dt.day()) == {1}


def test_sql_path_gives_the_same_usage_visitors_mart(loaded):
    con, rows_loaded = loaded
    checkins = _polars_checkins(con)
    expected = visitor_indicators(checkins, REGISTRY)
    dates = checkin_dates(con)
    assert dates == (checkins["visit_date"].min(), checkins["visit_date"].max())
    mart = visitor_indicators_from_cells(usage_cells(con), REGISTRY, dates)
    assert mart.columns == VISITOR_COLUMNS
    assert_frame_equal(mart.sort(MART_KEYS), expected.sort(MART_KEYS))
    monthly_visits = mart.filter((pl.col("indicator_id") == "visits") & (pl.col("breakdown") == "total")
                                 & (pl.col("period") == "month"))
    assert monthly_visits["numerator"].sum() == rows_loaded


def test_a_memory_limit_applies_to_the_query_only(loaded):
    con, _ = loaded
    con.execute("SET memory_limit = '1GiB'")  # the build's own limit, e.g.
    try:
        limited = usage_cells(con, memory_limit="256MB")
        assert con.sql("SELECT current_setting('memory_limit')").fetchall() == [("1.0 GiB",)]
    finally:
        con.execute("RESET memory_limit")
    assert_frame_equal(limited.sort(CELL_KEYS), usage_cells(con).sort(CELL_KEYS))


def test_no_checkins_give_empty_frames_with_the_right_schema(tmp_path):
    with connect_build(tmp_path / "empty.duckdb") as con:
        migrate(con)
        cells = usage_cells(con)
        assert checkin_dates(con) is None
        empty_checkins = _polars_checkins(con)
    assert cells.height == 0
    assert cells.schema == pl.concat([_visitor_cells(empty_checkins, every).with_columns(period=pl.lit(period))
                                      .select(CELL_COLUMNS) for period, every in PERIODS.items()]).schema
    mart = visitor_indicators_from_cells(cells, REGISTRY, None)
    assert mart.height == 0
    assert mart.schema == visitor_indicators(empty_checkins, REGISTRY).schema


def test_cells_without_their_date_span_are_refused(loaded):
    con, _ = loaded
    with pytest.raises(ValueError, match="date span"):
        visitor_indicators_from_cells(usage_cells(con), REGISTRY, None)


def test_slices_hold_whole_periods_and_cover_every_day_once():
    first, last = date(2023, 12, 30), date(2024, 3, 4)  # a Saturday in one year, a Monday in the next
    slices = period_slices(first, last)
    for period in ("week", "month"):
        mine = [(start, end) for p, start, end in slices if p == period]
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        assert all(sum(start <= d < end for start, end in mine) == 1 for d in days)
        starts_ok = (lambda d: d.weekday() == 0) if period == "week" else (lambda d: d.day == 1)
        assert all(starts_ok(start) and starts_ok(end) for start, end in mine)
    assert [s for s in slices if s[0] == "month"][0] == ("month", date(2023, 12, 1), date(2024, 1, 1))
    assert [s for s in slices if s[0] == "week"][0] == ("week", date(2023, 12, 25), date(2024, 1, 1))


def test_stale_slices_are_computed_in_runs_of_consecutive_slices_up_to_a_row_limit():
    slices = period_slices(date(2024, 1, 1), date(2024, 4, 30))
    weeks = [s for s in slices if s[0] == "week"]
    months = [s for s in slices if s[0] == "month"]
    small = {s: 1000 for s in slices}
    # a gap (the third week unchanged) and the change of period start new runs
    stale = months[1:3] + weeks[:2] + weeks[3:]
    assert query_batches(stale, small) == [months[1:3], weeks[:2], weeks[3:]]
    # a run ends before it would exceed the limit; a slice above the limit is a query of its own
    big = small | {weeks[4]: ROWS_PER_QUERY - 1000, weeks[6]: ROWS_PER_QUERY + 1}
    assert query_batches(weeks, big) == [weeks[:4], weeks[4:6], weeks[6:7], weeks[7:]]


def _reference_cells(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    checkins = _polars_checkins(con)
    return pl.concat([_visitor_cells(checkins, every).with_columns(period=pl.lit(period)).select(CELL_COLUMNS)
                      for period, every in PERIODS.items()])


def _cached_rows(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, date], set[int]]:
    """rowids of the cached cells per slice: a slice computed again gets new rows, a slice kept keeps its rows."""
    rows = con.sql("SELECT period, slice_first_day, list(rowid) FROM cache.usage_cells GROUP BY ALL").fetchall()
    return {(period, first): set(ids) for period, first, ids in rows}


def test_only_slices_whose_checkins_changed_are_computed_again(tmp_path):
    with connect_build(tmp_path / "w.duckdb") as con:
        migrate(con)
        for i, path in enumerate(CHECKIN_FILES):
            ingest_file(con, f"r{i}", "checkins", "checkin_log", path, _context(tmp_path))
        first = usage_cells(con)
        assert_frame_equal(first.sort(CELL_KEYS), _reference_cells(con).sort(CELL_KEYS))
        before = _cached_rows(con)

        assert_frame_equal(usage_cells(con).sort(CELL_KEYS), first.sort(CELL_KEYS))
        assert _cached_rows(con) == before  # nothing changed, nothing computed

        # one visit of 14 February corrected (a party of one more): its month and its week only
        con.execute("""UPDATE staging.checkins SET party_size = coalesce(party_size, 1) + 1
                       WHERE rowid = (SELECT min(rowid) FROM staging.checkins WHERE visit_date = DATE '2024-02-14')""")
        after_update = usage_cells(con)
        assert_frame_equal(after_update.sort(CELL_KEYS), _reference_cells(con).sort(CELL_KEYS))
        now = _cached_rows(con)
        touched = {s for s in before if now.get(s) != before[s]}
        week = next((p, f) for p, f, e in period_slices(*checkin_dates(con))
                    if p == "week" and f <= date(2024, 2, 14) < e)
        assert touched == {("month", date(2024, 2, 1)), week}

        # a visit before the first day: the slices from its week and month on are added, the others kept
        con.execute("""INSERT INTO staging.checkins BY NAME
                       SELECT * REPLACE (visit_date - 40 AS visit_date, visited_at - INTERVAL 40 DAY AS visited_at)
                       FROM staging.checkins WHERE rowid = (SELECT min(rowid) FROM staging.checkins)""")
        earlier = usage_cells(con)
        assert_frame_equal(earlier.sort(CELL_KEYS), _reference_cells(con).sort(CELL_KEYS))
        assert {s: rows for s, rows in _cached_rows(con).items() if s in now} == now
        cached_slices = con.sql("SELECT period, first_day, end_day FROM cache.usage_cell_slices ORDER BY ALL").fetchall()
        assert cached_slices == sorted(period_slices(*checkin_dates(con)))
        assert {f for p, f in _cached_rows(con) if p == "week"} <= {f for p, f, _ in cached_slices if p == "week"}

        # deleted check-ins leave no cells behind
        con.execute("DELETE FROM staging.checkins WHERE visit_date >= DATE '2024-03-01'")
        assert_frame_equal(usage_cells(con).sort(CELL_KEYS), _reference_cells(con).sort(CELL_KEYS))
        con.execute("DELETE FROM staging.checkins")
        assert usage_cells(con).is_empty()
        assert con.sql("SELECT count(*) FROM cache.usage_cells").fetchall() == [(0,)]
