"""Demand projection per home district: participation rates of a base period × population projection.

participation_rate(band, district) = distinct visitors of the base period / population(band) × 1,000, on the age
bands recorded at check-in (the only ages the logs know). The projection frame (area_code, year, variant,
age_from, age_to, value) is summed to the same bands with transforms.demography.band_populations, so projected
age groups that cannot form a band give a flagged value, as everywhere else.

projected_visitors = Σ_band rate × (1 + g)^(year − base_year) × projected population(band) / 1,000, for every
projection variant (low / medium / high) and every rate scenario g (0 = constant rates). At the base year, with
the projection equal to the base population, this returns the visitors of the base period (tested).
required_capacity = projected visitors / visitors_per_place; capacity_gap = required − current capacity of the
facilities in the district (the registry's capacity, persons).

Visitors without a home district cannot be projected to a district; participation_rates reports them in a row
with flag home_district_unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import polars as pl

from transforms.bad_input import BadInputError, refuse_first
from transforms.catalogue import indicator
from transforms.coverage import visitors_per_population
from transforms.demography import band_populations
from transforms.population_frame import POPULATION_SCHEMA

VARIANTS = ("low", "medium", "high")
PROJECTION_COLUMNS = ["area_code", "year", "variant", "age_from", "age_to", "value"]
FLAG_RATE = "participation_rate_flagged"
SUBJECT = ["area_code", "year", "variant", "scenario"]


def participation_rates(checkins: pl.DataFrame, population: pl.DataFrame, period: tuple[date, date]) -> pl.DataFrame:
    """participation_rate per home district and check-in age band, with the band's bounds (age_from, age_to)."""
    bounds = checkins.select(pl.col("age_band").alias("band"), "age_from", "age_to").unique()
    bands = {row["band"]: (row["age_from"], row["age_to"]) for row in bounds.iter_rows(named=True)}
    rates = visitors_per_population(checkins, population, bands, period, "participation_rate")
    return rates.join(bounds, on="band", how="left")


def check_projection(projection: pl.DataFrame, file: str) -> None:
    missing = [c for c in PROJECTION_COLUMNS if c not in projection.columns]
    if missing:
        raise BadInputError(file, None, f"missing column(s) {', '.join(missing)} (expected {', '.join(PROJECTION_COLUMNS)})")
    rows = projection.with_row_index("row", offset=1)
    problems = [
        (~pl.col("variant").is_in(VARIANTS), lambda r: f"variant {r['variant']!r} is not one of {', '.join(VARIANTS)}"),
        (pl.col("value") < 0, lambda r: f"negative projected population {r['value']} for area {r['area_code']}"),
        (
            ~pl.struct("area_code", "year", "variant", "age_from").is_first_distinct(),
            lambda r: f"area {r['area_code']}, year {r['year']}, variant {r['variant']}, age {r['age_from']} appears more than once",
        ),
    ]
    refuse_first(rows, file, problems)


def _as_population(projection: pl.DataFrame) -> pl.DataFrame:
    """The projection in the POPULATION shape (variant as table_code, 31.12. of the year) for band_populations."""
    return projection.select(
        table_code=pl.col("variant"),
        area_code=pl.col("area_code").cast(pl.String),
        reference_date=pl.date(pl.col("year"), 12, 31),
        sex=pl.lit("total"),
        age_from=pl.col("age_from").cast(pl.Int32),
        age_to=pl.col("age_to").cast(pl.Int32),
        is_total=pl.lit(False),
        value=pl.col("value").cast(pl.Int64),
        flag=pl.lit(None, dtype=POPULATION_SCHEMA["flag"]),
    )


def project_demand(
    rates: pl.DataFrame,
    projection: pl.DataFrame,
    facilities: pl.DataFrame,
    base_year: int,
    visitors_per_place: float,
    scenarios: Mapping[str, float] | None = None,
    file: str = "projection",
) -> pl.DataFrame:
    """projected_visitors, required_capacity and capacity_gap per district, year, variant and rate scenario.

    rates: participation_rates(...). projection: area_code, year, variant, age_from, age_to (exclusive, null =
    open), value. facilities: the registry (area_code, capacity) of the facility type projected.
    scenarios: name → yearly relative change of all rates, compounded from the base year (0.02 = +2 % a year);
    default {"constant_rates": 0.0}.
    """
    check_projection(projection, file)
    scenarios = scenarios if scenarios is not None else {"constant_rates": 0.0}
    usable = rates.filter(pl.col("area_code").is_not_null())
    bounds = usable.select("band", "age_from", "age_to").unique()
    bands = {row["band"]: (row["age_from"], row["age_to"]) for row in bounds.iter_rows(named=True)}
    projected_people = band_populations(_as_population(projection), bands).filter(pl.col("band") != "total")
    scenario_frame = pl.DataFrame(
        {"scenario": list(scenarios), "growth": [float(g) for g in scenarios.values()]},
        schema={"scenario": pl.String, "growth": pl.Float64},
    )
    per_band = (
        projected_people.select(
            "area_code", "band", "band_flag", "population",
            variant=pl.col("table_code"), year=pl.col("reference_date").dt.year(),
        )
        .join(usable.select("area_code", "band", rate=pl.col("value"), rate_flag=pl.col("flag")), on=["area_code", "band"], how="inner")
        .join(scenario_frame, how="cross")
        .with_columns(
            visitors=pl.col("rate") / 1000
            * (1 + pl.col("growth")) ** (pl.col("year") - base_year)
            * pl.col("population")
        )
    )
    visitors = per_band.group_by(SUBJECT).agg(
        flag=pl.coalesce(pl.col("band_flag"), pl.when(pl.col("rate_flag").is_not_null()).then(pl.lit(FLAG_RATE))).drop_nulls().first(),
        visitors=pl.col("visitors").sum(),
    )
    capacity = facilities.group_by("area_code").agg(capacity=pl.col("capacity").sum().cast(pl.Float64))
    joined = visitors.join(capacity, on="area_code", how="left").with_columns(
        capacity=pl.col("capacity").fill_null(0.0),
        required=pl.col("visitors") / visitors_per_place,
    )
    ok = pl.col("flag").is_null()
    parts = {
        "projected_visitors": (pl.col("visitors"), pl.col("visitors"), pl.lit(None, dtype=pl.Float64)),
        "required_capacity": (pl.col("required"), pl.col("visitors"), pl.lit(float(visitors_per_place))),
        "capacity_gap": (pl.col("required") - pl.col("capacity"), pl.col("required"), pl.col("capacity")),
    }
    frames = [
        joined.select(
            *SUBJECT,
            indicator_id=pl.lit(indicator(indicator_id).id),
            value=pl.when(ok).then(value),
            flag=pl.col("flag"),
            numerator=pl.when(ok).then(numerator),
            denominator=pl.when(ok).then(denominator),
        )
        for indicator_id, (value, numerator, denominator) in parts.items()
    ]
    return pl.concat(frames).sort("indicator_id", *SUBJECT)
