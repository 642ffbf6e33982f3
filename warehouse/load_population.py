"""Loading validated population rows into staging, keeping revised values in the history table."""

from __future__ import annotations

import duckdb
import polars as pl

from warehouse.frames import registered, replace_by_key
from warehouse.load_context import LoadContext, LoadResult

KEY = ["table_code", "area_code", "reference_date", "sex", "age_label"]


def load_population(con: duckdb.DuckDBPyConnection, valid: pl.DataFrame, delivered: pl.DataFrame, ctx: LoadContext) -> LoadResult:
    batch = valid.drop("cell")
    with registered(con, population_batch=batch):
        revised = con.execute(
            f"""INSERT INTO staging.population_history
                SELECT current.*, ?, ?, now()
                FROM staging.population AS current
                JOIN population_batch AS new USING ({', '.join(KEY)})
                WHERE current.reference_date BETWEEN ? AND ?
                  AND (current.value IS DISTINCT FROM new.value OR current.flag IS DISTINCT FROM new.flag)""",
            [ctx.run_id, ctx.file_name, batch["reference_date"].min(), batch["reference_date"].max()],
        ).fetchall()[0][0]
    replace_by_key(con, "staging.population", batch, KEY, "reference_date", ctx.lineage)
    message = f"{revised} revised value(s) kept in staging.population_history" if revised else None
    return LoadResult(status="loaded", rows_loaded=batch.height, message=message)
