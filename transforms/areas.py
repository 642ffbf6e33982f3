"""Areas by their official key (AGS): the hierarchy the key encodes, and the names each key carried over time.

The Amtlicher Gemeindeschlüssel nests by prefix: Land (2 digits, 05 = Nordrhein-Westfalen) → Regierungsbezirk
(3, 059 = Arnsberg) → Kreis (5, 05954 = Ennepe-Ruhr-Kreis) → Gemeinde (8, 05954008 = Hattingen). A third digit 0
means the Land has no Regierungsbezirke (Schleswig-Holstein 010…), so there is no Regierungsbezirk to point to.

Names and codes change: municipal mergers retire codes and create new ones, and a Kreis may be renamed. The
validity frame records, per code, each name with the first and last reference date it was seen, so that a value
can be joined to the name that was valid on its reference date.
"""

from __future__ import annotations

import polars as pl

AREAS_SCHEMA: dict[str, pl.DataType] = {
    "area_code": pl.String,
    "area_name": pl.String,
    "area_level": pl.String,
    "kreis_code": pl.String,
    "regbez_code": pl.String,
    "land_code": pl.String,
    "valid_from": pl.Date,
    "valid_to": pl.Date,  # last reference date with this name; null while the code still carries it
}

_IS_AGS = pl.col("area_code").str.contains(r"^\d{2}(\d|\d{3}|\d{6})$")
_LENGTH = pl.col("area_code").str.len_chars()


def with_parents(frame: pl.DataFrame) -> pl.DataFrame:
    """Adds kreis_code, regbez_code and land_code (null where that level is not above the area) to a frame with an
    `area_code` column."""
    return frame.with_columns(
        kreis_code=pl.when(_IS_AGS & (_LENGTH == 8)).then(pl.col("area_code").str.slice(0, 5)),
        regbez_code=pl.when(_IS_AGS & (_LENGTH > 3) & (pl.col("area_code").str.slice(2, 1) != "0"))
        .then(pl.col("area_code").str.slice(0, 3)),
        land_code=pl.when(_IS_AGS & (_LENGTH > 2)).then(pl.col("area_code").str.slice(0, 2)),
    )


def area_validity(observations: pl.DataFrame) -> pl.DataFrame:
    """Observations (area_code, area_name, area_level, reference_date), e.g. from staging.population → one row per
    code and name with valid_from / valid_to (see AREAS_SCHEMA).

    A name run ends when the code shows up with another name, or when the code is missing from the newest
    reference date at which its level was observed (a retired code); otherwise valid_to stays null. Where two
    tables spell the same code differently on the same date, the first name in sort order is kept, so that
    differently worded tables do not read as renamings on alternate dates.
    """
    seen = (
        observations.select("area_code", "area_name", "area_level", "reference_date")
        .drop_nulls(["area_code", "area_name", "reference_date"])
        .group_by("area_code", "reference_date")
        .agg(pl.col("area_name").min(), pl.col("area_level").first())
        .sort("area_code", "reference_date")
    )
    level_newest = seen.group_by("area_level").agg(level_newest=pl.col("reference_date").max())
    runs = (
        seen.with_columns(
            run=(pl.col("area_name") != pl.col("area_name").shift(1)).fill_null(True).cum_sum().over("area_code")
        )
        .group_by("area_code", "run")
        .agg(
            pl.col("area_name").first(),
            pl.col("area_level").first(),
            valid_from=pl.col("reference_date").min(),
            last_seen=pl.col("reference_date").max(),
        )
        .join(level_newest, on="area_level", how="left")
        .with_columns(is_latest_run=pl.col("run") == pl.col("run").max().over("area_code"))
        .with_columns(
            valid_to=pl.when(pl.col("is_latest_run") & (pl.col("last_seen") == pl.col("level_newest")))
            .then(None)
            .otherwise(pl.col("last_seen"))
        )
    )
    return (
        with_parents(runs)
        .select([pl.col(name).cast(dtype) for name, dtype in AREAS_SCHEMA.items()])
        .sort("area_code", "valid_from")
    )
