"""Loading validated check-ins and room bookings into staging: overlapping deliveries never duplicate a record.

A visit is identified by facility, time, visitor pseudonym and offer; a booking by its id. A record delivered
again replaces the stored one (a late correction wins), so the marts, rebuilt after every load, pick up late
records for past days (warehouse.frames.replace_by_key; staging.checkins has no primary key, see migration 0010).
"""

from __future__ import annotations

import duckdb
import polars as pl

from warehouse.frames import replace_by_key
from warehouse.load_context import LoadContext, LoadResult

CHECKIN_COLUMNS = ["facility_id", "visited_at", "visit_date", "offer", "visitor_pseudonym", "age_band", "age_from",
                   "age_to", "home_district", "party_size", "duration_minutes", "source_file", "source_row"]
CHECKIN_KEY = ["facility_id", "visited_at", "visitor_pseudonym", "offer"]
BOOKING_COLUMNS = ["booking_id", "facility_id", "room_id", "provider", "starts_at", "ends_at", "attendees", "purpose",
                   "source_file", "source_row"]


def _replace(con: duckdb.DuckDBPyConnection, table: str, rows: pl.DataFrame, key: list[str], ctx: LoadContext,
             span_column: str | None = None) -> LoadResult:
    replaced = replace_by_key(con, table, rows, key, span_column, ctx.lineage)
    return LoadResult(status="loaded", rows_loaded=rows.height, rows_replaced=replaced)


def load_checkins(con: duckdb.DuckDBPyConnection, valid: pl.DataFrame, delivered: pl.DataFrame, ctx: LoadContext) -> LoadResult:
    return _replace(con, "staging.checkins", valid.select(CHECKIN_COLUMNS), CHECKIN_KEY, ctx, "visited_at")


def load_room_bookings(con: duckdb.DuckDBPyConnection, valid: pl.DataFrame, delivered: pl.DataFrame, ctx: LoadContext) -> LoadResult:
    return _replace(con, "staging.room_bookings", valid.select(BOOKING_COLUMNS), ["booking_id"], ctx)
