"""Loading validated check-ins and room bookings into staging: overlapping deliveries never duplicate a record.

A visit is identified by facility, time, visitor pseudonym and offer; a booking by its id. A record delivered
again replaces the stored one (a late correction wins), so the marts, rebuilt after every load, pick up late
records for past days. The replacement is a delete by key followed by an insert, not a primary-key upsert: see
migration 0010 for why staging.checkins has no primary key. A delivery holds each key once (its suite quarantines
repeats), so the delete and the insert keep every key unique.
"""

from __future__ import annotations

import duckdb
import polars as pl

from warehouse.frames import registered
from warehouse.load_context import LoadContext, LoadResult

CHECKIN_COLUMNS = ["facility_id", "visited_at", "visit_date", "offer", "visitor_pseudonym", "age_band", "age_from",
                   "age_to", "home_district", "party_size", "duration_minutes", "source_file", "source_row"]
CHECKIN_KEY = ["facility_id", "visited_at", "visitor_pseudonym", "offer"]
BOOKING_COLUMNS = ["booking_id", "facility_id", "room_id", "provider", "starts_at", "ends_at", "attendees", "purpose",
                   "source_file", "source_row"]


def _replace_by_key(con: duckdb.DuckDBPyConnection, table: str, rows: pl.DataFrame, key: list[str], ctx: LoadContext,
                    time_column: str | None = None) -> LoadResult:
    """Delete the stored records with a key of the batch, insert the batch. A time column bounds the delete to the
    batch's time span, so that DuckDB skips the row groups of other months instead of joining all of history."""
    batch = rows.with_columns(sha256=pl.lit(ctx.sha256), loaded_run_id=pl.lit(ctx.run_id))
    same_key = " AND ".join(f"stored.{c} = batch.{c}" for c in key)
    within = (f" AND stored.{time_column} BETWEEN (SELECT min({time_column}) FROM usage_batch)"
              f" AND (SELECT max({time_column}) FROM usage_batch)") if time_column else ""
    with registered(con, usage_batch=batch):
        replaced = con.execute(
            f"DELETE FROM {table} AS stored USING usage_batch AS batch WHERE {same_key}{within}"
        ).fetchall()[0][0]
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM usage_batch")
    message = f"{batch.height - replaced} new, {replaced} already known (replaced)" if replaced else None
    return LoadResult(status="loaded", rows_loaded=batch.height, message=message)


def load_checkins(con: duckdb.DuckDBPyConnection, valid: pl.DataFrame, delivered: pl.DataFrame, ctx: LoadContext) -> LoadResult:
    return _replace_by_key(con, "staging.checkins", valid.select(CHECKIN_COLUMNS), CHECKIN_KEY, ctx, "visited_at")


def load_room_bookings(con: duckdb.DuckDBPyConnection, valid: pl.DataFrame, delivered: pl.DataFrame, ctx: LoadContext) -> LoadResult:
    return _replace_by_key(con, "staging.room_bookings", valid.select(BOOKING_COLUMNS), ["booking_id"], ctx)
