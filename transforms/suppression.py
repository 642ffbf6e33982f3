"""Small-count suppression for published exports; the warehouse keeps the exact values."""

from __future__ import annotations

import polars as pl

SUPPRESSED = "suppressed_small_count"
# numeric columns that identify a row rather than measure something; everything else numeric is a measure
KEY_COLUMNS = {"year", "weekday", "age_from", "age_to", "source_row"}


def suppress_small_counts(frame: pl.DataFrame, count_column: str, min_count: int,
                          parts_of: list[str] | None = None) -> pl.DataFrame:
    """Blank every measure of a row that fewer than min_count records or persons stand behind: not only value,
    numerator and denominator, but also e.g. the visits and baseline of an anomaly row, from which the suppressed
    value could be read back. The count column itself is dropped.

    parts_of: the columns that group rows into parts of one published whole (e.g. the age bands of a facility's
    visits in a week). Where exactly one part of a group is suppressed, it could be recomputed as the whole minus
    the other parts, so the smallest other part is suppressed too (secondary suppression).
    """
    small = pl.col(count_column).fill_null(0) < min_count  # an unknown count is not known to be safe
    if parts_of:
        smallest_other = pl.when(~small).then(pl.col(count_column)).rank("ordinal").over(parts_of) == 1
        small = small | ((small.sum().over(parts_of) == 1) & smallest_other.fill_null(False))
    measures = [name for name, dtype in frame.schema.items()
                if dtype.is_numeric() and name not in KEY_COLUMNS and name != count_column]
    flag = pl.col("flag") if "flag" in frame.columns else pl.lit(None, dtype=pl.String)
    return (
        frame.with_columns(_suppress=small)
        .with_columns(
            *[pl.when(pl.col("_suppress")).then(None).otherwise(pl.col(c)).alias(c) for c in measures],
            flag=pl.when(pl.col("_suppress")).then(pl.lit(SUPPRESSED)).otherwise(flag),
        )
        .drop("_suppress", count_column)
    )
