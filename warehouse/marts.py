"""Rebuilding the marts from staging with the pure transforms, and the catalogue table beside them."""

from __future__ import annotations

import duckdb
import polars as pl

from flows.config import PipelineConfig
from transforms.catalogue import catalogue_frame, load_catalogue
from transforms.facility_registry import load_facility_registry
from transforms.repair_cafes import repair_cafe_indicators
from transforms.usage_indicators import room_indicators, visitor_indicators_from_cells
from warehouse.duckdb_memory import memory_limited
from warehouse.frames import insert_frame
from warehouse.marts_resilience import build_resilience_marts
from warehouse.piece_cache import checkin_content
from warehouse.usage_cells import checkin_dates, usage_cells

FACILITY_COLUMNS = ["facility_id", "name", "provider", "type", "address", "lat", "lon", "area_code", "capacity"]

CURRENT_REPAIR_ITEMS = """
SELECT group_identifier, event_date, repair_status
FROM staging.repair_items
WHERE status = 'current'
"""


def _units() -> pl.DataFrame:
    return pl.DataFrame({"indicator_id": [i.id for i in load_catalogue()], "unit": [i.unit for i in load_catalogue()]})


def _in_utc(frame: pl.DataFrame) -> pl.DataFrame:
    """DuckDB hands TIMESTAMPTZ back in its session time zone (e.g. Etc/UTC); the transforms agree on UTC."""
    return frame.with_columns(pl.col(pl.Datetime).dt.convert_time_zone("UTC"))


def _replace(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> int:
    con.execute(f"DELETE FROM {table}")
    insert_frame(con, table, frame)
    return frame.height


def build_marts(con: duckdb.DuckDBPyConnection, config: PipelineConfig) -> dict[str, int]:
    """Rebuild every mart in one transaction; returns rows per mart."""
    tables = {"marts.repair_cafe_monthly": repair_cafe_indicators(con.sql(CURRENT_REPAIR_ITEMS).pl())}
    # demography (with the age structure), coverage, reach, demand, rooms, fiscal; their check-in queries spill
    # beyond the configured limit like the usage cells
    content = checkin_content(con)  # one pass over the check-ins for the fingerprints of both caches
    with memory_limited(con, config.duckdb_memory_limit):
        tables |= build_resilience_marts(con, config, content=content)
    if config.facility_registry is not None:
        registry = load_facility_registry(config.facility_registry)
        bookings = _in_utc(con.sql("SELECT * FROM staging.room_bookings").pl())
        # the cells are aggregated in DuckDB: all check-ins in one Polars frame would not fit at 100M rows
        cells = usage_cells(con, config.duckdb_memory_limit, content)
        tables["marts.usage_visitors"] = visitor_indicators_from_cells(cells, registry, checkin_dates(con))
        tables["marts.usage_rooms"] = room_indicators(bookings, registry).drop("distinct_visitors")
        tables["staging.facilities"] = registry.facilities.select(FACILITY_COLUMNS)
    con.execute("BEGIN")
    try:
        counts = {
            table: _replace(con, table, frame.join(_units(), on="indicator_id", how="left")
                            if "indicator_id" in frame.columns else frame)
            for table, frame in tables.items()
        }
        counts["marts.indicator_catalogue"] = _replace(con, "marts.indicator_catalogue", catalogue_frame(config.conventions))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return counts
