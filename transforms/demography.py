"""Demography indicators per area, sex and reference date, computed from the long population table.

An indicator is only a number when the published age groups tile its age bands exactly and no cell in them is
flagged (secret, unknown, …). Otherwise it is a missing value with a flag that says why: a 75+ table cannot give
a share of 80+, and a ratio over a secret cell is not a number anybody should publish.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from transforms.catalogue import Indicator, indicators_of_kind

OPEN_END = 200  # stands for "no upper bound" in band arithmetic; older than any person
KEYS = ["table_code", "area_code", "reference_date", "sex"]

FLAG_NOT_ALIGNED = "age_groups_do_not_align"
FLAG_SOURCE = "source_value_flagged"
FLAG_ZERO = "division_by_zero"
FLAG_MISSING = "band_missing"


@dataclass(frozen=True)
class AgeConvention:
    name: str
    label: str
    young: tuple[int, int]
    working: tuple[int, int]
    old_from: int

    def bands(self) -> dict[str, tuple[int, int | None]]:
        return {"young": self.young, "working": self.working, "old": (self.old_from, None), "80+": (80, None)}

    def describe(self) -> str:
        return f"young {self.young[0]}–{self.young[1] - 1}, working {self.working[0]}–{self.working[1] - 1}, old {self.old_from}+"


def band_table(population: pl.DataFrame, bands: dict[str, tuple[int, int | None]]) -> pl.DataFrame:
    """Population per key and band, one row per key: population_<band> (null when flagged) and band_flag_<band>
    for every band and for "total", with a flag where the age groups do not tile the band or a cell is flagged.

    The band "total" is the published total row, not a sum of groups, so that one secret age group does not hide
    the total. Each band is one set of conditional sums in a single group_by: no groups × bands cross join, which
    for all Gemeinden × 30 years would not fit in memory. Every key of the population gets every band, so a band
    of a key without age groups shows up as missing instead of vanishing.
    """
    groups = population.filter(~pl.col("is_total")).with_columns(
        group_to=pl.col("age_to").fill_null(OPEN_END).cast(pl.Int32)
    )
    sums = []
    for band, (lo, hi) in bands.items():
        hi = hi if hi is not None else OPEN_END
        overlaps = (pl.col("age_from") < hi) & (pl.col("group_to") > lo)
        inside = (pl.col("age_from") >= lo) & (pl.col("group_to") <= hi)
        sums += [
            (overlaps & ~inside).sum().alias(f"{band}\x1fstraddling"),
            pl.when(inside).then(pl.col("group_to") - pl.col("age_from")).sum().alias(f"{band}\x1fcovered"),
            (inside & pl.col("value").is_null()).sum().alias(f"{band}\x1fflagged"),
            pl.when(inside).then(pl.col("value")).sum().alias(f"{band}\x1fpopulation"),
        ]
    totals = population.filter(pl.col("is_total")).select(*KEYS, population_total=pl.col("value"), published=True)
    wide = (
        population.select(KEYS).unique()
        .join(groups.group_by(KEYS).agg(sums), on=KEYS, how="left")
        .join(totals, on=KEYS, how="left")
    )
    columns = []
    for band, (lo, hi) in bands.items():
        width = (hi if hi is not None else OPEN_END) - lo
        straddling, covered, flagged = (pl.col(f"{band}\x1f{m}").fill_null(0) for m in ("straddling", "covered", "flagged"))
        flag = (
            pl.when((covered == 0) & (straddling == 0)).then(pl.lit(FLAG_MISSING))
            .when((straddling > 0) | (covered != width)).then(pl.lit(FLAG_NOT_ALIGNED))
            .when(flagged > 0).then(pl.lit(FLAG_SOURCE))
        )
        columns += [
            pl.when(flag.is_null()).then(pl.col(f"{band}\x1fpopulation").cast(pl.Int64)).alias(f"population_{band}"),
            flag.alias(f"band_flag_{band}"),
        ]
    total_flag = (
        pl.when(pl.col("published").is_null()).then(pl.lit(FLAG_MISSING))
        .when(pl.col("population_total").is_null()).then(pl.lit(FLAG_SOURCE))
    )
    return wide.select(*KEYS, *columns, "population_total", band_flag_total=total_flag)


def band_populations(population: pl.DataFrame, bands: dict[str, tuple[int, int | None]]) -> pl.DataFrame:
    """band_table in long form: KEYS, band, band_flag, population; one row per key and band (and "total")."""
    wide = band_table(population, bands)
    return pl.concat([
        wide.select(*KEYS, band=pl.lit(band), band_flag=pl.col(f"band_flag_{band}"), population=pl.col(f"population_{band}"))
        for band in [*bands, "total"]
    ])


def _band_column(convention: str, band: str) -> str:
    return band if band == "total" else f"{convention}\x1f{band}"  # the published total is the same in every convention


def _ratio(wide: pl.DataFrame, ind: Indicator, convention: str) -> pl.DataFrame:
    """One indicator of one convention from the wide band table (see age_ratio_indicators)."""
    used = [_band_column(convention, b) for b in [*ind.numerator, ind.denominator]]
    numerator = pl.sum_horizontal([pl.col(f"population_{b}") for b in used[:-1]])
    denominator = pl.col(f"population_{used[-1]}")
    first_flag = pl.coalesce([pl.col(f"band_flag_{b}") for b in used])
    return wide.select(
        *KEYS,
        indicator_id=pl.lit(ind.id),
        flag=pl.when(first_flag.is_not_null()).then(first_flag).when(denominator == 0).then(pl.lit(FLAG_ZERO)),
        numerator=numerator,
        denominator=denominator,
        convention=pl.lit(convention),
    ).with_columns(_computed(ind.scale))


def _computed(scale: float) -> list[pl.Expr]:
    """Value, numerator and denominator only where nothing is flagged: a partial sum must not look like data."""
    ok = pl.col("flag").is_null()
    return [
        pl.when(ok).then(pl.col("numerator") / pl.col("denominator") * scale).alias("value"),
        pl.when(ok).then(pl.col("numerator")).alias("numerator"),
        pl.when(ok).then(pl.col("denominator")).alias("denominator"),
    ]


def convention_bands(conventions: tuple[AgeConvention, ...]) -> dict[str, tuple[int, int | None]]:
    """The bands of every convention, named so that one band table holds them all."""
    return {_band_column(c.name, band): limits for c in conventions for band, limits in c.bands().items()}


def age_ratio_indicators(population: pl.DataFrame, conventions: tuple[AgeConvention, ...],
                         bands: pl.DataFrame | None = None) -> pl.DataFrame:
    """All catalogue indicators of kind age_ratio for every age convention, long form. The bands of all conventions
    are summed in one pass (a third of the time of one pass per convention). bands: band_table(population, b) with
    b including convention_bands(conventions), when the caller has it already."""
    wide = bands if bands is not None else band_table(population, convention_bands(conventions))
    return pl.concat([_ratio(wide, ind, c.name) for c in conventions for ind in indicators_of_kind("age_ratio")])


def population_change(population: pl.DataFrame) -> pl.DataFrame:
    """Change of the published total against the same date one year earlier, only where that year is loaded."""
    (ind,) = indicators_of_kind("change")
    totals = population.filter(pl.col("is_total")).select(*KEYS, "value")
    previous = totals.with_columns(reference_date=pl.col("reference_date").dt.offset_by("1y")).rename(
        {"value": "previous"}
    )
    joined = totals.join(previous, on=KEYS, how="inner")
    return joined.select(
        *KEYS,
        indicator_id=pl.lit(ind.id),
        flag=pl.when(pl.col("value").is_null() | pl.col("previous").is_null())
        .then(pl.lit(FLAG_SOURCE))
        .when(pl.col("previous") == 0)
        .then(pl.lit(FLAG_ZERO)),
        numerator=pl.col("value") - pl.col("previous"),
        denominator=pl.col("previous"),
    ).with_columns(*_computed(ind.scale), convention=pl.lit(None, dtype=pl.String))


MART_SCHEMA = {
    "table_code": pl.String, "area_code": pl.String, "reference_date": pl.Date, "sex": pl.String,
    "indicator_id": pl.String, "convention": pl.String, "value": pl.Float64, "flag": pl.String,
    "numerator": pl.Int64, "denominator": pl.Int64, "area_name": pl.String, "area_level": pl.String,
    "population_basis": pl.String, "year": pl.Int32,
}


AREA_KEYS = ["table_code", "area_code", "reference_date"]
AREA_COLUMNS = [*AREA_KEYS, "area_name", "area_level", "population_basis"]


@dataclass(frozen=True)
class ReferenceDate:
    rows: pl.DataFrame  # the population of one reference date
    areas: pl.DataFrame  # AREA_COLUMNS: name, level and population basis per table and area
    bands: pl.DataFrame  # band_table(rows, the bands asked for)


def by_reference_date(population: pl.DataFrame, bands: dict[str, tuple[int, int | None]]) -> list[ReferenceDate]:
    """The population split by reference date, each with its areas and one band table of all the given bands.

    The marts work one reference date at a time: the band sums of all Gemeinden × 30 years at once do not fit in
    memory, and the area names joined date by date, not onto all 17M indicator rows at once, lowered the mart's
    peak from 12.6 to 8.2 GB (BENCHMARKS.md). One band table per date serves every indicator that needs bands.
    """
    dates = population["reference_date"].unique().sort()
    days = [population.filter(pl.col("reference_date") == on_date) for on_date in dates]
    return [ReferenceDate(day, day.select(AREA_COLUMNS).unique(subset=AREA_KEYS, keep="first"), band_table(day, bands))
            for day in days]


def demography_indicators(population: pl.DataFrame, conventions: tuple[AgeConvention, ...],
                          dates: list[ReferenceDate] | None = None) -> pl.DataFrame:
    """The demography mart: every age-ratio indicator per convention plus population change, with area names.
    dates: by_reference_date(population, bands including convention_bands(conventions)), when the caller has it
    already. Unsorted: the mart (warehouse.marts_resilience.demography_with_age_structure) adds more rows and leaves
    the sorting to readers."""
    if population.is_empty():
        return pl.DataFrame(schema=MART_SCHEMA)
    dates = dates if dates is not None else by_reference_date(population, convention_bands(conventions))
    parts = [age_ratio_indicators(d.rows, conventions, d.bands).join(d.areas, on=AREA_KEYS, how="left") for d in dates]
    parts.append(population_change(population).join(pl.concat([d.areas for d in dates]), on=AREA_KEYS, how="left"))
    return pl.concat(
        [p.with_columns(year=pl.col("reference_date").dt.year()).select([pl.col(c).cast(t) for c, t in MART_SCHEMA.items()])
         for p in parts]
    )
