"""Small-count suppression for published exports; the warehouse keeps the exact values."""

from __future__ import annotations

import polars as pl

SUPPRESSED = "suppressed_small_count"


def suppress_small_counts(frame: pl.DataFrame, count_column: str, min_count: int) -> pl.DataFrame:
    """Blank value, numerator and denominator where fewer than min_count records or persons stand behind them."""
    small = pl.col(count_column).fill_null(0) < min_count  # an unknown count is not known to be safe
    blanked = [pl.when(small).then(None).otherwise(pl.col(c)).alias(c) for c in ("value", "numerator", "denominator")]
    return frame.with_columns(
        *blanked,
        flag=pl.when(small).then(pl.lit(SUPPRESSED)).otherwise(pl.col("flag")),
    ).drop(count_column)
