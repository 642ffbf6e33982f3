"""Applying Open Repair Data deliveries: full snapshots per data provider that overlap and correct each other.

A delivery replaces its provider's records: new and corrected records are upserted, records the provider no
longer delivers are marked withdrawn (kept, not deleted), and a delivery older than one already applied is kept
in raw but changes nothing (it is "superseded"). Applying the same delivery again changes nothing.
"""

from __future__ import annotations

import re

import duckdb
import polars as pl

from transforms.bad_input import BadInputError
from transforms.open_repair import ORDS_COLUMNS
from warehouse.frames import registered
from warehouse.load_context import LoadContext, LoadResult

_DELIVERY_IN_NAME = re.compile(r"(20\d{2})(0[1-9]|1[0-2])")


def delivery_label(file_name: str) -> str:
    """The delivery period YYYY-MM, from the file name as the Open Repair Alliance publishes it."""
    m = _DELIVERY_IN_NAME.search(file_name)
    if not m:
        raise BadInputError(file_name, None, "no delivery period YYYYMM in the file name (e.g. anstiftung_202309.csv)")
    return f"{m.group(1)}-{m.group(2)}"


_UPSERT = """
INSERT INTO staging.repair_items BY NAME
SELECT id, data_provider, country, partner_product_category, product_category,
       product_category_id_parsed AS product_category_id, brand, year_of_manufacture, product_age,
       repair_status, repair_barrier_if_end_of_life, group_identifier, event_date_parsed AS event_date, problem,
       'current' AS status, $delivery AS first_delivery, $delivery AS last_delivery,
       NULL AS withdrawn_in_delivery, source_file, source_row
FROM repair_batch
WHERE data_provider = $provider
ON CONFLICT (id) DO UPDATE SET
    data_provider = excluded.data_provider, country = excluded.country,
    partner_product_category = excluded.partner_product_category, product_category = excluded.product_category,
    product_category_id = excluded.product_category_id, brand = excluded.brand,
    year_of_manufacture = excluded.year_of_manufacture, product_age = excluded.product_age,
    repair_status = excluded.repair_status, repair_barrier_if_end_of_life = excluded.repair_barrier_if_end_of_life,
    group_identifier = excluded.group_identifier, event_date = excluded.event_date, problem = excluded.problem,
    status = 'current', last_delivery = excluded.last_delivery, withdrawn_in_delivery = NULL,
    source_file = excluded.source_file, source_row = excluded.source_row
"""

# Records the delivery does not contain at all. Ids of quarantined rows count as contained: the provider did
# not withdraw them, the pipeline refused the new version, so the previous version stays current.
_WITHDRAW = """
UPDATE staging.repair_items
SET status = 'withdrawn', withdrawn_in_delivery = $delivery
WHERE data_provider = $provider
  AND status = 'current'
  AND id NOT IN (SELECT id FROM repair_delivered WHERE id IS NOT NULL)
"""


def load_open_repair(con: duckdb.DuckDBPyConnection, valid: pl.DataFrame, delivered: pl.DataFrame, ctx: LoadContext) -> LoadResult:
    delivery = delivery_label(ctx.file_name)
    raw = delivered.select(
        sha256=pl.lit(ctx.sha256), source_file=pl.lit(ctx.file_name), source_row="source_row",
        delivery=pl.lit(delivery), *ORDS_COLUMNS,
    )
    frames = {"repair_raw": raw, "repair_batch": valid, "repair_delivered": delivered.select("id", "data_provider")}
    with registered(con, **frames):
        con.execute("INSERT OR IGNORE INTO raw.open_repair_records BY NAME SELECT * FROM repair_raw")
        applied, superseded, withdrawn, loaded = [], [], 0, 0
        providers = sorted(p for p in delivered["data_provider"].unique().to_list() if p)
        for provider in providers:
            latest = con.execute(
                "SELECT max(delivery) FROM audit.open_repair_deliveries WHERE data_provider = ?", [provider]
            ).fetchall()[0][0]
            if latest is not None and delivery < latest:
                superseded.append(f"{provider} {delivery} is older than the applied {latest}")
                continue
            params = {"delivery": delivery, "provider": provider}
            loaded += con.execute(_UPSERT, params).fetchall()[0][0]
            withdrawn += con.execute(_WITHDRAW, params).fetchall()[0][0]
            con.execute(
                "INSERT OR REPLACE INTO audit.open_repair_deliveries (data_provider, delivery, sha256, file_name, run_id) VALUES (?, ?, ?, ?, ?)",
                [provider, delivery, ctx.sha256, ctx.file_name, ctx.run_id],
            )
            applied.append(provider)
    if not applied:
        return LoadResult(status="superseded", rows_loaded=0, message="; ".join(superseded) + ": kept in raw, not applied")
    notes = [f"delivery {delivery} applied for {', '.join(applied)}", f"{withdrawn} record(s) withdrawn"]
    return LoadResult(status="loaded", rows_loaded=loaded, message="; ".join(notes + superseded))
