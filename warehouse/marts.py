"""Rebuilding the marts from staging with the pure transforms, and the catalogue table beside them."""

from __future__ import annotations

import duckdb
import polars as pl

from transforms.catalogue import catalogue_frame, load_catalogue
from transforms.demography import AgeConvention, demography_indicators
from transforms.repair_cafes import repair_cafe_indicators

CURRENT_REPAIR_ITEMS = """
SELECT group_identifier, event_date, repair_status
FROM staging.repair_items
WHERE status = 'current'
"""


def _units() -> pl.DataFrame:
    return pl.DataFrame({"indicator_id": [i.id for i in load_catalogue()], "unit": [i.unit for i in load_catalogue()]})


def _replace(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> int:
    con.register("mart_rows", frame)
    try:
        con.execute(f"DELETE FROM {table}")
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM mart_rows")
    finally:
        con.unregister("mart_rows")
    return frame.height


def build_marts(con: duckdb.DuckDBPyConnection, conventions: tuple[AgeConvention, ...]) -> dict[str, int]:
    """Rebuild every mart in one transaction; returns rows per mart."""
    population = con.sql("SELECT * FROM staging.population").pl()
    demography = demography_indicators(population, conventions).join(_units(), on="indicator_id", how="left")
    repairs = repair_cafe_indicators(con.sql(CURRENT_REPAIR_ITEMS).pl()).join(_units(), on="indicator_id", how="left")
    con.execute("BEGIN")
    try:
        counts = {
            "marts.demography_indicators": _replace(con, "marts.demography_indicators", demography),
            "marts.repair_cafe_monthly": _replace(con, "marts.repair_cafe_monthly", repairs),
            "marts.indicator_catalogue": _replace(con, "marts.indicator_catalogue", catalogue_frame(conventions)),
        }
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return counts
