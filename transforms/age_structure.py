"""Age structure and population dynamics per area, sex and reference date: fixed-band shares, mean and median age,
population change over N years and net migration per 1,000 inhabitants.

Like transforms/demography.py, a value is only a number when the published age groups allow it; otherwise it is
missing and `flag` says why (groups that do not tile the age range, a secret cell, a zero denominator, an open
oldest group without a configured mean, migration figures that were not delivered).

Mean and median age are estimated from grouped counts assuming that ages are spread evenly within each group
(each person in [a, b) sits at the midpoint (a + b) / 2 for the mean; linear interpolation inside the median group).
With single-year groups [a, a + 1) this is exactly the Destatis convention of age in completed years + 0.5, so
single-year tables give the exact figures. The open oldest group (e.g. 75+) has no midpoint: its mean age must be
configured per lower bound (`open_group_means`, e.g. {75: 82.5}), otherwise the mean age is flagged. The median
only needs it when half the population is in the open group, which is flagged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import polars as pl

from transforms.bad_input import BadInputError, refuse_first
from transforms.catalogue import indicator, indicators_of_kind
from transforms.demography import FLAG_MISSING, FLAG_SOURCE, FLAG_ZERO, KEYS, _computed, band_table

FLAG_OPEN_GROUP_MEAN = "open_age_group_mean_not_configured"
FLAG_MEDIAN_OPEN = "median_in_open_age_group"
FLAG_NO_MIGRATION = "migration_data_missing"

COLUMNS = [*KEYS, "indicator_id", "value", "flag", "numerator", "denominator"]
MIGRATION_COLUMNS = ["area_code", "year", "in_migration", "out_migration"]


def parse_band(label: str) -> tuple[int, int | None]:
    """Catalogue band label → [from, to): "65+" → (65, None), "6-17" → (6, 18) (labels name the last full year)."""
    if match := re.fullmatch(r"(\d+)\+", label):
        return int(match[1]), None
    if match := re.fullmatch(r"(\d+)-(\d+)", label):
        return int(match[1]), int(match[2]) + 1
    raise ValueError(f"band label {label!r} is neither 'N+' nor 'N-M' (e.g. '65+', '6-17')")


WHOLE_RANGE = "all"  # the band of all ages, which mean and median age rest on


def age_structure_bands() -> dict[str, tuple[int, int | None]]:
    """The bands that band_shares and mean_and_median_age read from a band table."""
    shares = {label: parse_band(label) for ind in indicators_of_kind("band_share") for label in ind.numerator}
    return {**shares, WHOLE_RANGE: (0, None)}


def band_shares(population: pl.DataFrame, bands: pl.DataFrame | None = None) -> pl.DataFrame:
    """Every catalogue indicator of kind band_share (e.g. share_65_plus): population(band) / total × scale.
    bands: band_table(population, age_structure_bands()), when the caller has it already."""
    wide = bands if bands is not None else band_table(population, age_structure_bands())
    parts = []
    for ind in indicators_of_kind("band_share"):
        (label,) = ind.numerator
        parts.append(
            wide.select(
                *KEYS,
                indicator_id=pl.lit(ind.id),
                flag=pl.coalesce(pl.col(f"band_flag_{label}"), pl.col("band_flag_total"))
                .fill_null(pl.when(pl.col("population_total") == 0).then(pl.lit(FLAG_ZERO))),
                numerator=pl.col(f"population_{label}"),
                denominator=pl.col("population_total"),
            ).with_columns(_computed(ind.scale))
        )
    return pl.concat(parts).select(COLUMNS)


def mean_and_median_age(population: pl.DataFrame, open_group_means: Mapping[int, float],
                        bands: pl.DataFrame | None = None) -> pl.DataFrame:
    """mean_age and median_age per key, from the age groups (not the total row).

    open_group_means: mean age of the persons in the open oldest group, keyed by the group's lower bound.
    numerator of mean_age is the sum of age × persons, denominator the persons in the groups.
    bands: band_table(population, age_structure_bands()), when the caller has it already.
    """
    # the whole age range as one band: band_table already knows tiling gaps and flagged cells
    wide = bands if bands is not None else band_table(population, age_structure_bands())
    whole = wide.select(*KEYS, population=f"population_{WHOLE_RANGE}", band_flag=f"band_flag_{WHOLE_RANGE}")
    means = {int(k): float(v) for k, v in open_group_means.items()}
    groups = population.filter(~pl.col("is_total")).with_columns(
        width=(pl.col("age_to") - pl.col("age_from")).cast(pl.Float64),
        midpoint=pl.when(pl.col("age_to").is_not_null())
        .then((pl.col("age_from") + pl.col("age_to")) / 2)
        .otherwise(pl.col("age_from").replace_strict(means, default=None, return_dtype=pl.Float64)),
    )
    # a window sees a key's rows in frame order: sorted by age alone (not by the keys as well, 40 % slower),
    # the running count of every key goes up the ages
    ordered = groups.sort("age_from").with_columns(
        persons=pl.col("value").sum().over(KEYS),
        below=pl.col("value").cum_sum().over(KEYS) - pl.col("value"),
    )
    # the median group is the first one whose cumulative count reaches half the persons
    median_group = (
        ordered.filter((pl.col("below") + pl.col("value") >= pl.col("persons") / 2) & (pl.col("value") > 0))
        .group_by(KEYS)
        .agg(pl.all().sort_by("age_from").first())
        .select(
            *KEYS,
            median_open=pl.col("width").is_null(),
            median=pl.col("age_from") + (pl.col("persons") / 2 - pl.col("below")) / pl.col("value") * pl.col("width"),
        )
    )
    summary = ordered.group_by(KEYS).agg(
        age_sum=(pl.col("value") * pl.col("midpoint")).sum(),
        open_mean_missing=pl.col("midpoint").is_null().any(),
    )
    joined = (
        whole.join(summary, on=KEYS, how="left")
        .join(median_group, on=KEYS, how="left")
        .with_columns(
            base_flag=pl.col("band_flag").fill_null(pl.when(pl.col("population") == 0).then(pl.lit(FLAG_ZERO)))
        )
    )
    mean = joined.select(
        *KEYS,
        indicator_id=pl.lit("mean_age"),
        flag=pl.col("base_flag").fill_null(pl.when(pl.col("open_mean_missing")).then(pl.lit(FLAG_OPEN_GROUP_MEAN))),
        numerator=pl.col("age_sum"),
        denominator=pl.col("population").cast(pl.Float64),
    ).with_columns(_computed(indicator("mean_age").scale))
    # the median is a position, not a ratio: no numerator; the persons it rests on are its denominator
    median = joined.select(
        *KEYS,
        "median",
        indicator_id=pl.lit("median_age"),
        flag=pl.col("base_flag").fill_null(pl.when(pl.col("median_open")).then(pl.lit(FLAG_MEDIAN_OPEN))),
        numerator=pl.lit(None, dtype=pl.Float64),
        denominator=pl.col("population").cast(pl.Float64),
    ).with_columns(
        value=pl.when(pl.col("flag").is_null()).then(pl.col("median")),
        denominator=pl.when(pl.col("flag").is_null()).then(pl.col("denominator")),
    )
    return pl.concat([mean.select(COLUMNS), median.select(COLUMNS)], how="vertical_relaxed")


def population_change_over(population: pl.DataFrame, years: int, indicator_id: str | None = None) -> pl.DataFrame:
    """Change of the published total against the same date `years` earlier, only where that year is loaded.

    The indicator id defaults to population_change_{years}y; demography.population_change is the case years=1
    with the id "population_change".
    """
    ind = indicator(indicator_id or f"population_change_{years}y")
    totals = population.filter(pl.col("is_total")).select(*KEYS, "value")
    earlier = totals.with_columns(reference_date=pl.col("reference_date").dt.offset_by(f"{years}y")).rename(
        {"value": "earlier"}
    )
    return (
        totals.join(earlier, on=KEYS, how="inner")
        .select(
            *KEYS,
            indicator_id=pl.lit(ind.id),
            flag=pl.when(pl.col("value").is_null() | pl.col("earlier").is_null())
            .then(pl.lit(FLAG_SOURCE))
            .when(pl.col("earlier") == 0)
            .then(pl.lit(FLAG_ZERO)),
            numerator=pl.col("value") - pl.col("earlier"),
            denominator=pl.col("earlier"),
        )
        .with_columns(_computed(ind.scale))
        .select(COLUMNS)
    )


def _check_migration(migration: pl.DataFrame, file: str) -> None:
    missing = [c for c in MIGRATION_COLUMNS if c not in migration.columns]
    if missing:
        raise BadInputError(file, None, f"missing column(s) {', '.join(missing)} (expected {', '.join(MIGRATION_COLUMNS)})")
    rows = migration.with_row_index("row", offset=1)
    if "source_row" in migration.columns:
        rows = rows.with_columns(row=pl.col("source_row"))
    refuse_first(rows, file, [
        ((pl.col("in_migration") < 0) | (pl.col("out_migration") < 0),
         lambda r: f"negative migration count for area {r['area_code']}, year {r['year']}"),
        (~pl.struct("area_code", "year").is_first_distinct(),
         lambda r: f"area {r['area_code']}, year {r['year']} is delivered more than once"),
    ])


def net_migration_rate(population: pl.DataFrame, migration: pl.DataFrame, file: str = "migration") -> pl.DataFrame:
    """(in-migration − out-migration) per 1,000 inhabitants per area and year (sex "total").

    The denominator is the published total at the reference date in that year (31.12., end of the migration
    year). Area-years without migration figures are flagged migration_data_missing; migration figures for an
    area-year without population are kept with flag band_missing, so no delivered row disappears.
    """
    _check_migration(migration, file)
    ind = indicator("net_migration_rate")
    totals = population.filter(pl.col("is_total") & (pl.col("sex") == "total")).select(
        *KEYS, "value", year=pl.col("reference_date").dt.year().cast(pl.Int32)
    )
    moves = migration.select(
        pl.col("area_code").cast(pl.String),
        pl.col("year").cast(pl.Int32),
        pl.col("in_migration").cast(pl.Int64),
        pl.col("out_migration").cast(pl.Int64),
        delivered=pl.lit(True),
    )
    joined = totals.join(moves, on=["area_code", "year"], how="full", coalesce=True)
    return (
        joined.select(
            *KEYS,
            "year",
            indicator_id=pl.lit(ind.id),
            flag=pl.when(pl.col("delivered").is_null())
            .then(pl.lit(FLAG_NO_MIGRATION))
            .when(pl.col("table_code").is_null())
            .then(pl.lit(FLAG_MISSING))
            .when(pl.col("value").is_null() | pl.col("in_migration").is_null() | pl.col("out_migration").is_null())
            .then(pl.lit(FLAG_SOURCE))
            .when(pl.col("value") == 0)
            .then(pl.lit(FLAG_ZERO)),
            numerator=pl.col("in_migration") - pl.col("out_migration"),
            denominator=pl.col("value"),
        )
        .with_columns(_computed(ind.scale))
        .select(*COLUMNS, "year")
    )
