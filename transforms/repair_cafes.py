"""Repair-café indicators per group and month, from the current (not withdrawn) repair items."""

from __future__ import annotations

import polars as pl

from transforms.catalogue import indicators_of_kind

KNOWN_OUTCOMES = ["Fixed", "Repairable", "End of life"]


def repair_cafe_indicators(items: pl.DataFrame) -> pl.DataFrame:
    """items: one row per current repair item with group_identifier, event_date (Date) and repair_status.

    Long form: group_identifier, month (first day), indicator_id, value, flag, numerator, denominator,
    item_count (the records the value rests on; exports suppress small ones).
    """
    monthly = items.group_by("group_identifier", month=pl.col("event_date").dt.truncate("1mo")).agg(
        events=pl.col("event_date").n_unique(),
        items=pl.len(),
        fixed=(pl.col("repair_status") == "Fixed").sum(),
        known=pl.col("repair_status").is_in(KNOWN_OUTCOMES).sum(),
    )
    definitions = {
        "repair_events": (pl.col("events"), pl.lit(1)),
        "repairs": (pl.col("items"), pl.lit(1)),
        "repairs_per_event": (pl.col("items"), pl.col("events")),
        "fix_rate": (pl.col("fixed"), pl.col("known")),
    }
    catalogue_ids = {i.id: i for i in indicators_of_kind("repair_cafe")}
    if set(definitions) != set(catalogue_ids):
        raise ValueError(f"repair-café indicators {sorted(definitions)} differ from the catalogue's {sorted(catalogue_ids)}")
    parts = []
    for indicator_id, (numerator, denominator) in definitions.items():
        scale = catalogue_ids[indicator_id].scale
        parts.append(
            monthly.select(
                "group_identifier",
                "month",
                indicator_id=pl.lit(indicator_id),
                numerator=numerator.cast(pl.Int64),
                denominator=denominator.cast(pl.Int64),
                item_count=pl.col("items").cast(pl.Int64),
            ).with_columns(
                flag=pl.when(pl.col("denominator") == 0).then(pl.lit("no_known_outcome")),
                value=pl.when(pl.col("denominator") > 0).then(pl.col("numerator") / pl.col("denominator") * scale),
            )
        )
    return pl.concat(parts).sort("indicator_id", "group_identifier", "month")
