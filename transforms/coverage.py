"""Service coverage and reach per district: supply ratio and gap to a target, penetration of the target group, and
the share of a facility's visitors who come from outside its district.

Visitors are counted as distinct pseudonyms (CHECKINS.visitor_pseudonym); no identifier leaves this module, only
counts. Population bands come from transforms.demography.band_populations, so the same flags apply: a band the
published age groups cannot form (6–17 from a table whose groups are 0–9, 10–19) or a secret cell gives a flagged
missing value, never a partial sum.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import polars as pl

from transforms.bad_input import BadInputError
from transforms.catalogue import indicator
from transforms.demography import FLAG_MISSING, FLAG_NOT_ALIGNED, FLAG_ZERO, OPEN_END, band_populations

FLAG_NO_TARGET = "no_target_configured"
FLAG_CAPACITY_UNKNOWN = "capacity_unknown"
FLAG_HOME_UNKNOWN = "home_district_unknown"
FLAG_NO_KNOWN_HOME = "no_known_home_district"

Band = tuple[int, int | None]


@dataclass(frozen=True)
class CoverageTarget:
    """Which age band a facility type serves and how many places per 1,000 of that band the plan aims for."""

    facility_type: str
    band: Band
    target_per_1000: float | None = None


def latest_population(population: pl.DataFrame, on_or_before: date) -> pl.DataFrame:
    """Sex "total" rows at each area's latest reference date not after `on_or_before`."""
    rows = population.filter((pl.col("sex") == "total") & (pl.col("reference_date") <= on_or_before))
    latest = rows.group_by("area_code").agg(pl.col("reference_date").max())
    return rows.join(latest, on=["area_code", "reference_date"], how="semi")


def _band_frame(bands: dict[str, Band]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "band": list(bands),
            "band_from": [lo for lo, _ in bands.values()],
            "band_to": [hi if hi is not None else OPEN_END for _, hi in bands.values()],
        },
        schema={"band": pl.String, "band_from": pl.Int32, "band_to": pl.Int32},
    )


def supply_ratio(facilities: pl.DataFrame, population: pl.DataFrame, targets: Iterable[CoverageTarget]) -> pl.DataFrame:
    """supply_ratio (places per 1,000 of the target band) and supply_gap (places) per area and facility type.

    facilities: FACILITIES frame (facility_id, type, area_code, capacity). population: POPULATION; every
    reference date is computed, sex "total" only. Districts without a facility of the type have ratio 0; a
    facility whose capacity is unknown makes its district's values missing (flag capacity_unknown).
    """
    targets = {t.facility_type: t for t in targets}
    bands = band_populations(
        population.filter(pl.col("sex") == "total"), {kind: t.band for kind, t in targets.items()}
    ).filter(pl.col("band") != "total")
    capacity = (
        facilities.filter(pl.col("type").is_in(list(targets)))
        .group_by("area_code", band="type")
        .agg(capacity=pl.col("capacity").sum(), capacity_unknown=pl.col("capacity").is_null().any())
    )
    goal = pl.DataFrame(
        {"band": list(targets), "target": [t.target_per_1000 for t in targets.values()]},
        schema={"band": pl.String, "target": pl.Float64},
    )
    joined = (
        bands.join(capacity, on=["area_code", "band"], how="full", coalesce=True)
        .join(goal, on="band", how="left")
        .with_columns(
            capacity=pl.col("capacity").fill_null(0),
            base_flag=pl.when(pl.col("table_code").is_null())
            .then(pl.lit(FLAG_MISSING))
            .when(pl.col("capacity_unknown").fill_null(False))
            .then(pl.lit(FLAG_CAPACITY_UNKNOWN))
            .otherwise(pl.col("band_flag")),
        )
    )
    subject = ["table_code", "area_code", "reference_date", pl.col("band").alias("facility_type")]
    ratio = joined.select(
        *subject,
        indicator_id=pl.lit("supply_ratio"),
        flag=pl.col("base_flag").fill_null(pl.when(pl.col("population") == 0).then(pl.lit(FLAG_ZERO))),
        numerator=pl.col("capacity").cast(pl.Float64),
        denominator=pl.col("population").cast(pl.Float64),
    ).with_columns(value_where_unflagged(pl.col("numerator") / pl.col("denominator") * indicator("supply_ratio").scale))
    gap = joined.select(
        *subject,
        indicator_id=pl.lit("supply_gap"),
        flag=pl.col("base_flag").fill_null(pl.when(pl.col("target").is_null()).then(pl.lit(FLAG_NO_TARGET))),
        numerator=pl.col("target") * pl.col("population") / 1000,
        denominator=pl.col("capacity").cast(pl.Float64),
    ).with_columns(value_where_unflagged(pl.col("numerator") - pl.col("denominator")))
    return pl.concat([ratio, gap]).sort("indicator_id", "facility_type", "area_code", "reference_date", nulls_last=True)


def value_where_unflagged(computed: pl.Expr) -> list[pl.Expr]:
    """The value, numerator and denominator only where nothing is flagged: a partial figure must not look like data."""
    ok = pl.col("flag").is_null()
    return [
        pl.when(ok).then(computed).alias("value"),
        pl.when(ok).then(pl.col("numerator")).alias("numerator"),
        pl.when(ok).then(pl.col("denominator")).alias("denominator"),
    ]


def _in_period(checkins: pl.DataFrame, period: tuple[date, date]) -> pl.DataFrame:
    start, end = period
    return checkins.filter(pl.col("visit_date").is_between(start, end, closed="both"))


def visitors_per_population(
    checkins: pl.DataFrame,
    population: pl.DataFrame,
    bands: dict[str, Band],
    period: tuple[date, date],
    indicator_id: str,
) -> pl.DataFrame:
    """Distinct visitors of the period per 1,000 persons of the band, per home district and band.

    A visitor counts in a band when the age band recorded at check-in lies inside it; a recorded band that only
    partly overlaps (a 15–24 visitor for a 6–17 band) cannot be placed and flags the district's value as
    age_groups_do_not_align. Visitors without a home district are kept as a row with area_code null and flag
    home_district_unknown. The population is each area's latest reference date not after the period's end.
    """
    ind = indicator(indicator_id)
    # one row per visitor, home district and recorded band: what is counted are distinct visitors (and whether any
    # straddles a band); only the few recorded bands are crossed with the bands, then each visitor joined to the
    # bands its recorded band overlaps (crossing every visitor with every band: 9.4 GB at 100M check-ins)
    visitors = (
        _in_period(checkins, period)
        .select("home_district", "visitor_pseudonym", "age_from", visit_to=pl.col("age_to").fill_null(OPEN_END))
        .unique()
    )
    placed = (
        visitors.select("age_from", "visit_to").unique()
        .join(_band_frame(bands), how="cross")
        .filter((pl.col("age_from") < pl.col("band_to")) & (pl.col("visit_to") > pl.col("band_from")))
        .with_columns(inside=(pl.col("age_from") >= pl.col("band_from")) & (pl.col("visit_to") <= pl.col("band_to")))
    )
    counted = visitors.join(placed, on=["age_from", "visit_to"], how="inner").group_by(
        pl.col("home_district").alias("area_code"), "band"
    ).agg(
        visitors=pl.col("visitor_pseudonym").filter(pl.col("inside")).n_unique(),
        straddling=(~pl.col("inside")).sum(),
    )
    people = band_populations(latest_population(population, period[1]), bands).filter(pl.col("band") != "total")
    joined = people.join(counted, on=["area_code", "band"], how="full", coalesce=True).with_columns(
        visitors=pl.col("visitors").fill_null(0)
    )
    return (
        joined.select(
            "table_code",
            "area_code",
            "band",
            pl.col("reference_date").alias("population_date"),
            period_start=pl.lit(period[0]),
            period_end=pl.lit(period[1]),
            indicator_id=pl.lit(ind.id),
            flag=pl.when(pl.col("area_code").is_null())
            .then(pl.lit(FLAG_HOME_UNKNOWN))
            .when(pl.col("straddling").fill_null(0) > 0)
            .then(pl.lit(FLAG_NOT_ALIGNED))
            .when(pl.col("table_code").is_null())
            .then(pl.lit(FLAG_MISSING))
            .when(pl.col("band_flag").is_not_null())
            .then(pl.col("band_flag"))
            .when(pl.col("population") == 0)
            .then(pl.lit(FLAG_ZERO)),
            numerator=pl.col("visitors").cast(pl.Float64),
            denominator=pl.col("population").cast(pl.Float64),
        )
        .with_columns(
            value_where_unflagged(pl.col("numerator") / pl.col("denominator") * ind.scale),
            # the visitors without a district keep their count: they are reported, not dropped
            unknown_home=pl.when(pl.col("flag") == FLAG_HOME_UNKNOWN).then(pl.col("numerator")),
        )
        .with_columns(numerator=pl.coalesce("numerator", "unknown_home"))
        .drop("unknown_home")
        .sort("band", "area_code", nulls_last=True)
    )


def penetration(checkins: pl.DataFrame, population: pl.DataFrame, band: Band, period: tuple[date, date]) -> pl.DataFrame:
    """penetration_rate: distinct visitors in the target band per 1,000 of that band, per home district."""
    lo, hi = band
    label = f"{lo}+" if hi is None else f"{lo}-{hi - 1}"
    return visitors_per_population(checkins, population, {label: band}, period, "penetration_rate")


def unregistered_facility(file: str, row: int, facility_id: str) -> BadInputError:
    return BadInputError(file, row, f"facility_id {facility_id!r} is not in the facility registry (or has no area_code)")


def _facility_districts(checkins: pl.DataFrame, facilities: pl.DataFrame) -> pl.DataFrame:
    registry = facilities.select("facility_id", facility_area=pl.col("area_code"))
    joined = checkins.join(registry, on="facility_id", how="left")
    unknown = joined.filter(pl.col("facility_area").is_null()).sort("source_file", "source_row")
    if unknown.height:
        first = unknown.row(0, named=True)
        raise unregistered_facility(first["source_file"], first["source_row"], first["facility_id"])
    return joined


def outside_district_counts(checkins: pl.DataFrame, facilities: pl.DataFrame, period: tuple[date, date]) -> pl.DataFrame:
    """Per facility with check-ins in the period: its distinct visitors with a known home district (`known`) and
    those of them from another district than the facility's (`outside`). A visitor's home district is the latest
    one recorded at that facility in the period (people move). warehouse/sql/outside_district_counts.sql counts the
    same in DuckDB for the nightly run."""
    visits = _facility_districts(_in_period(checkins, period), facilities)
    per_visitor = (
        visits.filter(pl.col("home_district").is_not_null())
        .group_by("facility_id", "visitor_pseudonym")
        .agg(
            home=pl.col("home_district").sort_by("visited_at").last(),
            facility_area=pl.col("facility_area").first(),
        )
    )
    counts = per_visitor.group_by("facility_id").agg(
        outside=(pl.col("home") != pl.col("facility_area")).sum(),
        known=pl.len(),
    )
    return visits.select("facility_id").unique().join(counts, on="facility_id", how="left").select(
        "facility_id",
        outside=pl.col("outside").fill_null(0).cast(pl.Int64),
        known=pl.col("known").fill_null(0).cast(pl.Int64),
    )


def outside_share_of_counts(counts: pl.DataFrame, period: tuple[date, date]) -> pl.DataFrame:
    """outside_district_share per facility from its outside_district_counts: distinct visitors from another
    district per 100 with a known district."""
    ind = indicator("outside_district_share")
    return (
        counts.select(
            "facility_id",
            period_start=pl.lit(period[0]),
            period_end=pl.lit(period[1]),
            indicator_id=pl.lit(ind.id),
            flag=pl.when(pl.col("known") == 0).then(pl.lit(FLAG_NO_KNOWN_HOME)),
            numerator=pl.col("outside").cast(pl.Float64),
            denominator=pl.col("known").cast(pl.Float64),
        )
        .with_columns(value_where_unflagged(pl.col("numerator") / pl.col("denominator") * ind.scale))
        .sort("facility_id")
    )


def outside_district_share(checkins: pl.DataFrame, facilities: pl.DataFrame, period: tuple[date, date]) -> pl.DataFrame:
    """outside_district_share per facility: distinct visitors from another district per 100 with a known district.

    A visitor's home district is the latest one recorded at that facility in the period (people move).
    """
    return outside_share_of_counts(outside_district_counts(checkins, facilities, period), period)
