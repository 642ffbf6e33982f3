"""Loading validated check-ins and room bookings into staging: overlapping deliveries never duplicate a record.

A visit is identified by facility, time, visitor pseudonym and offer; a booking by its id. A record delivered
again replaces the stored one (a late correction wins), so the marts, rebuilt after every load, pick up late
records for past days.
"""

from __future__ import annotations

import duckdb
import polars as pl

from warehouse.frames import registered
from warehouse.load_context import LoadContext, LoadResult

CHECKIN_COLUMNS = ["facility_id", "visited_at", "visit_date", "offer", "visitor_pseudonym", "age_band", "age_from",
                   "age_to", "home_district", "party_size", "duration_minutes", "source_file", "source_row"]
BOOKING_COLUMNS = ["booking_id", "facility_id", "room_id", "provider", "starts_at", "ends_at", "attendees", "purpose",
                   "source_file", "source_row"]


def _upsert(con: duckdb.DuckDBPyConnection, table: str, rows: pl.DataFrame, ctx: LoadContext) -> LoadResult:
    batch = rows.with_columns(sha256=pl.lit(ctx.sha256), loaded_run_id=pl.lit(ctx.run_id))
    with registered(con, usage_batch=batch):
        before = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        con.execute(f"INSERT OR REPLACE INTO {table} BY NAME SELECT * FROM usage_batch")
        after = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    replaced = batch.height - (after - before)
    message = f"{after - before} new, {replaced} already known (replaced)" if replaced else None
    return LoadResult(status="loaded", rows_loaded=batch.height, message=message)


def load_checkins(con: duckdb.DuckDBPyConnection, valid: pl.DataFrame, delivered: pl.DataFrame, ctx: LoadContext) -> LoadResult:
    return _upsert(con, "staging.checkins", valid.select(CHECKIN_COLUMNS), ctx)


def load_room_bookings(con: duckdb.DuckDBPyConnection, valid: pl.DataFrame, delivered: pl.DataFrame, ctx: LoadContext) -> LoadResult:
    return _upsert(con, "staging.room_bookings", valid.select(BOOKING_COLUMNS), ctx)
