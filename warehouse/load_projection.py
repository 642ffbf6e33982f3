"""Official population projections (GENESIS 12421) as a delivery format: parse, validate, load into staging."""

from __future__ import annotations

import re

import duckdb
import polars as pl

from transforms.bad_input import BadInputError
from transforms.population_projection import parse_genesis_projection
from warehouse.frames import registered
from warehouse.load_context import LoadContext, LoadResult

# The classic export has no "GENESIS-Tabelle:" line: the table code is taken from the file name, as the service
# and the fetch step name it (12421-0004_….csv).
_TABLE_IN_NAME = re.compile(r"(\d{5}-\d{4})")


def parse_projection(data: bytes, file: str, ctx) -> pl.DataFrame:
    match = _TABLE_IN_NAME.search(file)
    if not match:
        raise BadInputError(file, None, "no GENESIS table code (e.g. 12421-0004) in the file name")
    return parse_genesis_projection(data, file).with_columns(table_code=pl.lit(match.group(1)))


def projection_suite(ctx) -> tuple[str, list]:
    from expectations import projection

    return projection.SUITE_NAME, projection.expectations()


def load_projection(con: duckdb.DuckDBPyConnection, valid: pl.DataFrame, delivered: pl.DataFrame, ctx: LoadContext) -> LoadResult:
    batch = valid.with_columns(sha256=pl.lit(ctx.sha256), loaded_run_id=pl.lit(ctx.run_id))
    with registered(con, projection_batch=batch):
        con.execute("INSERT OR REPLACE INTO staging.population_projection BY NAME SELECT * FROM projection_batch")
    return LoadResult(status="loaded", rows_loaded=batch.height)


def land_projection(con: duckdb.DuckDBPyConnection, table_code: str) -> pl.DataFrame:
    """The loaded projection table in the shape parse_genesis_projection gives (what project_areas expects)."""
    return con.sql(
        "SELECT * EXCLUDE (table_code, sha256, loaded_run_id) FROM staging.population_projection WHERE table_code = ?",
        params=[table_code],
    ).pl()
