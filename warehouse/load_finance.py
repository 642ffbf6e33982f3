"""Loading validated finance rows into staging.finance: one row per area and budget year, a revision replaces it.

Budget figures are revised (a Jahresabschluss after the preliminary Kassenstatistik), so the newest delivery of an
area and year wins; the message counts the rows that replaced earlier values.
"""

from __future__ import annotations

import duckdb
import polars as pl

from transforms.fiscal_stress import FINANCE_SCHEMA, parse_finance_csv
from warehouse.frames import registered
from warehouse.load_context import LoadContext, LoadResult


def load_finance(con: duckdb.DuckDBPyConnection, valid: pl.DataFrame, delivered: pl.DataFrame, ctx: LoadContext) -> LoadResult:
    batch = valid.select(list(FINANCE_SCHEMA)).with_columns(sha256=pl.lit(ctx.sha256), loaded_run_id=pl.lit(ctx.run_id))
    with registered(con, finance_batch=batch):
        revised = con.execute(
            "SELECT count(*) FROM staging.finance JOIN finance_batch USING (area_code, year)"
        ).fetchall()[0][0]
        con.execute("INSERT OR REPLACE INTO staging.finance BY NAME SELECT * FROM finance_batch")
    message = f"{revised} area-year(s) replaced earlier values" if revised else None
    return LoadResult(status="loaded", rows_loaded=batch.height, message=message)


# The delivery format's parts for warehouse/ingest.py FORMATS["municipal_finance"].
def parse_finance(data: bytes, file: str, ctx) -> pl.DataFrame:
    return parse_finance_csv(data, file)


def finance_suite(ctx) -> tuple[str, list]:
    from expectations import finance  # Great Expectations takes seconds to import: only when a file is validated

    return finance.SUITE_NAME, finance.expectations()
