"""The resilience, room-sharing and fiscal marts, rebuilt from staging with the pure transforms every run.

`build_resilience_marts` reads staging, the facility registry and the configured files, and returns {table: frame}
for warehouse/marts.py to write in its transaction (which adds the catalogue `unit` to every frame with an
indicator_id). Every mart comes out empty, never as an error, when its inputs are empty: a run without usage logs
or finance deliveries still builds. The shape of each mart is declared in migrations/0007_resilience_marts.sql.

Marts resting on usage logs carry `distinct_visitors`, the number of different pseudonyms behind each value, so
that exports can suppress small counts; pseudonyms themselves never leave this module.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from transforms.accessibility import accessibility, parse_area_points
from transforms.age_structure import age_structure_bands, band_shares, mean_and_median_age, population_change_over
from transforms.anomalies import MAD_TO_SD, anomaly_flags, daily_visits, visit_trends
from transforms.bad_input import BadInputError
from transforms.coverage import outside_share_of_counts, penetration, supply_ratio
from transforms.demography import AREA_KEYS, AgeConvention, by_reference_date, convention_bands, demography_indicators
from transforms.facility_registry import FacilityRegistry, load_facility_registry, opening_calendar
from transforms.fiscal_stress import FINANCE_SCHEMA, finance_indicators, load_stress_config, stress_test
from transforms.population_frame import INDICATOR_COLUMNS
from transforms.population_projection import LandNotCoveredError, parse_genesis_projection, project_areas
from transforms.projection import PROJECTION_COLUMNS, participation_rates, project_demand
from transforms.resilience_config import RESILIENCE_PATH, ProjectionSettings, ResilienceConfig, load_resilience_config
from transforms.room_sharing import LOCAL_TZ, candidate_rooms, checked_in_persons, idle_by_room, room_sharing_indicators
from warehouse.checkin_reads import (
    checkin_months,
    checkins_inside_bookings,
    daily_visits_in,
    outside_district_counts_in,
    read_utc,
    trailing_visitors,
    visitors_by_facility_type,
    visitors_in,
)
from warehouse.load_projection import land_projection
from warehouse.piece_cache import (
    Content,
    PieceCache,
    by_day,
    checkin_content,
    content_of_days,
    fingerprint,
    summed,
    table_content,
)

if TYPE_CHECKING:  # the flow's configuration object; warehouse code does not import the flows at run time
    from flows.config import PipelineConfig

log = logging.getLogger(__name__)

PROJECTION_SCHEMA = {"area_code": pl.String, "year": pl.Int32, "variant": pl.String, "age_from": pl.Int32,
                     "age_to": pl.Int32, "value": pl.Int64}

# Column order and types of each mart as migrations/0007 declares it (unit is added by warehouse/marts.py).
COVERAGE_SCHEMA = {
    "indicator_id": pl.String, "facility_type": pl.String, "convention": pl.String, "band": pl.String,
    "table_code": pl.String, "area_code": pl.String, "area_name": pl.String, "reference_date": pl.Date,
    "value": pl.Float64, "flag": pl.String, "numerator": pl.Float64, "denominator": pl.Float64,
}
REACH_DISTRICT_SCHEMA = {
    "indicator_id": pl.String, "convention": pl.String, "band": pl.String, "area_code": pl.String,
    "population_date": pl.Date, "period_start": pl.Date, "period_end": pl.Date, "value": pl.Float64,
    "flag": pl.String, "numerator": pl.Float64, "denominator": pl.Float64, "distinct_visitors": pl.Int64,
}
REACH_FACILITY_SCHEMA = {
    "indicator_id": pl.String, "facility_id": pl.String, "period_start": pl.Date, "period_end": pl.Date,
    "value": pl.Float64, "flag": pl.String, "numerator": pl.Float64, "denominator": pl.Float64,
    "distinct_visitors": pl.Int64,
}
ANOMALY_SCHEMA = {
    "facility_id": pl.String, "offer": pl.String, "visit_date": pl.Date, "weekday": pl.Int8, "visits": pl.Int64,
    "history_days": pl.Int32, "baseline_median": pl.Float64, "baseline_mad": pl.Float64, "value": pl.Float64,
    "unit": pl.String, "flag": pl.String, "numerator": pl.Float64, "denominator": pl.Float64,
    "is_anomaly": pl.Boolean, "direction": pl.String, "distinct_visitors": pl.Int64,
}
ANOMALY_UNIT = "robust z-score"  # not a catalogue indicator (docs/indicators-resilience.md): the unit is stated here
DAILY_SCHEMA = {"facility_id": pl.String, "offer": pl.String, "visit_date": pl.Date, "visits": pl.Int64,
                "distinct_visitors": pl.Int64}
STEP_SCHEMA = {"weeks": pl.Int32, "facility_id": pl.String, "offer": pl.String, "week": pl.Date, "distinct_visitors": pl.Int64}
TREND_SCHEMA = {
    "indicator_id": pl.String, "facility_id": pl.String, "offer": pl.String, "week": pl.Date, "value": pl.Float64,
    "flag": pl.String, "numerator": pl.Float64, "denominator": pl.Float64, "distinct_visitors": pl.Int64,
}
PROJECTION_MART_SCHEMA = {
    "indicator_id": pl.String, "area_code": pl.String, "year": pl.Int32, "variant": pl.String,
    "scenario": pl.String, "convention": pl.String, "value": pl.Float64, "flag": pl.String,
    "numerator": pl.Float64, "denominator": pl.Float64, "distinct_visitors": pl.Int64,
}
ROOM_SCHEMA = {
    "indicator_id": pl.String, "area_code": pl.String, "facility_id": pl.String, "room_id": pl.String,
    "provider": pl.String, "week_start": pl.Date, "period_start": pl.Date, "period_end": pl.Date,
    "value": pl.Float64, "flag": pl.String, "numerator": pl.Float64, "denominator": pl.Float64,
}
FISCAL_SCHEMA = {
    "indicator_id": pl.String, "area_code": pl.String, "area_name": pl.String, "year": pl.Int32,
    "value": pl.Float64, "flag": pl.String, "numerator": pl.Float64, "denominator": pl.Float64,
    "population_basis": pl.String,
}
STRESS_SCHEMA = {
    "indicator_id": pl.String, "area_code": pl.String, "area_name": pl.String, "scenario": pl.String,
    "convention": pl.String, "base_year": pl.Int32, "year": pl.Int32, "value": pl.Float64, "flag": pl.String,
    "label": pl.String, "reason": pl.String, "population_basis": pl.String,
}


def _shaped(frame: pl.DataFrame | None, schema: dict) -> pl.DataFrame:
    """The frame in the mart's column order and types; an empty mart when there was nothing to compute."""
    if frame is None or frame.is_empty():
        return pl.DataFrame(schema=schema)
    return frame.select([pl.col(c).cast(t) for c, t in schema.items()])


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame | None:
    return pl.concat(frames, how="diagonal_relaxed") if frames else None


# --- area marts from the population ------------------------------------------------------------------------------

def demography_with_age_structure(population: pl.DataFrame, conventions: tuple[AgeConvention, ...],
                                  settings: ResilienceConfig) -> pl.DataFrame:
    """marts.demography_indicators complete: the age ratios and change of transforms.demography plus share_65_plus,
    mean_age, median_age and population change over the configured years (convention NULL: one reading)."""
    if population.is_empty():
        return demography_indicators(population, conventions)
    dates = by_reference_date(population, {**convention_bands(conventions), **age_structure_bands()})
    base = demography_indicators(population, conventions, dates)
    every_area = pl.concat([d.areas for d in dates])
    rows = pl.concat(
        [
            *(pl.concat([band_shares(d.rows, d.bands), mean_and_median_age(d.rows, settings.open_group_means, d.bands)],
                        how="vertical_relaxed").join(d.areas, on=AREA_KEYS, how="left") for d in dates),
            *(population_change_over(population, years).join(every_area, on=AREA_KEYS, how="left")
              for years in settings.change_years),
        ],
        how="vertical_relaxed",
    )
    added = rows.with_columns(convention=pl.lit(None, dtype=pl.String), year=pl.col("reference_date").dt.year())
    schema = {**base.schema, "numerator": pl.Float64, "denominator": pl.Float64}
    # not sorted: all Gemeinden × 30 years are 17M rows, 11 s to sort; the exports sort, analysts ORDER BY
    return pl.concat([base.cast(schema), added.select([pl.col(c).cast(t) for c, t in schema.items()])])


def _area_names(population: pl.DataFrame) -> pl.DataFrame:
    """The latest name of every area (names change with mergers; the newest one is what readers know)."""
    return population.sort("reference_date").group_by("area_code").agg(pl.col("area_name").last())


def coverage_indicators(population: pl.DataFrame, facilities: pl.DataFrame, area_points: pl.DataFrame | None,
                        settings: ResilienceConfig) -> pl.DataFrame:
    """supply_ratio and supply_gap per district, facility type and population date; e2sfca_accessibility of each
    facility type's places for its target band, per population date (only with area points)."""
    if population.is_empty():
        return _shaped(None, COVERAGE_SCHEMA)
    labels = {t.facility_type: _label(t.band) for t in settings.targets}
    parts = [supply_ratio(facilities, population, settings.targets)]
    if area_points is not None:
        dates = population.filter(pl.col("sex") == "total")["reference_date"].unique().sort().to_list()
        for target in settings.targets:
            of_type = facilities.filter(pl.col("type") == target.facility_type)
            for on in dates:
                parts.append(
                    accessibility(population, of_type, area_points, target.band, settings.decay, on)
                    .rename({"population_date": "reference_date"})
                    .with_columns(facility_type=pl.lit(target.facility_type), table_code=pl.lit(None, dtype=pl.String))
                )
    rows = pl.concat([p.select(*(c for c in COVERAGE_SCHEMA if c in p.columns)) for p in parts],
                     how="diagonal_relaxed")
    mart = rows.join(_area_names(population), on="area_code", how="left").with_columns(
        convention=pl.col("facility_type"), band=pl.col("facility_type").replace_strict(labels)
    )
    return _shaped(mart, COVERAGE_SCHEMA).sort("indicator_id", "facility_type", "area_code", "reference_date",
                                               nulls_last=True)


def _label(band: tuple[int, int | None]) -> str:
    lo, hi = band
    return f"{lo}+" if hi is None else f"{lo}-{hi - 1}"


# --- usage marts ------------------------------------------------------------------------------------------------

def penetration_in_month(visitors: pl.DataFrame, population: pl.DataFrame, settings: ResilienceConfig,
                         month: tuple[date, date]) -> list[pl.DataFrame]:
    """penetration_rate per home district and facility type over one month's visitors of the type's facilities
    (warehouse.checkin_reads.visitors_by_facility_type), one frame per type with visits in that month."""
    if visitors.is_empty() or population.is_empty():
        return []
    return [
        penetration(of_type, population, target.band, month).with_columns(convention=pl.lit(target.facility_type))
        for target in settings.targets
        if not (of_type := visitors.filter(pl.col("type") == target.facility_type)).is_empty()
    ]


def base_period_pieces(con: duckdb.DuckDBPyConnection, population: pl.DataFrame,
                       settings: ResilienceConfig) -> dict[str, pl.DataFrame]:
    """What marts.reach_by_district and marts.demand_projection take from the configured base period's visitors
    (warehouse.checkin_reads.visitors_in): participation_rate per home district and check-in age band (a frame
    without columns without visitors or population) and the distinct visitors per home district."""
    base_visitors = visitors_in(con, *settings.participation_period)
    participation = (pl.DataFrame() if base_visitors.is_empty() or population.is_empty()
                     else participation_rates(base_visitors, population, settings.participation_period))
    district_visitors = base_visitors.filter(pl.col("home_district").is_not_null()).group_by(
        area_code="home_district").agg(distinct_visitors=pl.col("visitor_pseudonym").n_unique().cast(pl.Int64))
    return {"participation": participation, "district_visitors": district_visitors}


def reach_by_district(penetrations: list[pl.DataFrame], participation: pl.DataFrame | None,
                      population: pl.DataFrame) -> pl.DataFrame:
    """The penetration rates of every month (penetration_in_month) and the participation rates of the base period
    (base_participation)."""
    if population.is_empty():
        return _shaped(None, REACH_DISTRICT_SCHEMA)
    parts = list(penetrations)
    if participation is not None:
        parts.append(participation.with_columns(convention=pl.col("band")))
    mart = _concat(parts)
    if mart is None:
        return _shaped(None, REACH_DISTRICT_SCHEMA)
    # the value rests on the visitors it counts; a row whose count was blanked by a flag has no value to protect
    mart = mart.with_columns(distinct_visitors=pl.col("numerator").cast(pl.Int64))
    return _shaped(mart, REACH_DISTRICT_SCHEMA).sort("indicator_id", "convention", "area_code", "period_start",
                                                     nulls_last=True)


def reach_by_facility(monthly: list[pl.DataFrame]) -> pl.DataFrame:
    """outside_district_share per facility and month (transforms.coverage.outside_share_of_counts of each month);
    its visitors with a known home district are the count."""
    mart = _concat(monthly)
    if mart is None:
        return _shaped(None, REACH_FACILITY_SCHEMA)
    mart = mart.with_columns(distinct_visitors=pl.col("denominator").cast(pl.Int64))
    return _shaped(mart, REACH_FACILITY_SCHEMA).sort("facility_id", "period_start")


def closed_dates(registry: FacilityRegistry, start: date, end: date) -> pl.DataFrame:
    """Days a facility would open by its weekly hours but does not (NRW holidays, its own closures)."""
    days = pl.DataFrame({"visit_date": pl.date_range(start, end, "1d", eager=True)}).with_columns(
        weekday=pl.col("visit_date").dt.weekday().cast(pl.Int8)
    )
    regular = days.join(registry.opening_hours.select("facility_id", "weekday").unique(), on="weekday", how="inner")
    opened = opening_calendar(registry, start, end).select("facility_id", visit_date=pl.col("date")).unique()
    return regular.join(opened, on=["facility_id", "visit_date"], how="anti").select("facility_id", "visit_date")


def _daily(counts: pl.DataFrame, registry: FacilityRegistry) -> pl.DataFrame:
    start, end = counts["visit_date"].min(), counts["visit_date"].max()
    return daily_visits(counts, registry.opening_hours, closed_dates(registry, start, end))


def demand_anomalies(counts: pl.DataFrame, registry: FacilityRegistry, settings: ResilienceConfig) -> pl.DataFrame:
    """The anomaly mart: one row per facility, offer and day, value = robust z (numerator / denominator).
    counts: visits and distinct_visitors per facility, offer and visit_date (warehouse.checkin_reads.daily_visits_in)."""
    if counts.is_empty():
        return _shaped(None, ANOMALY_SCHEMA)
    s = settings.anomalies
    flagged = anomaly_flags(_daily(counts, registry), s.window_weeks, s.min_history, s.threshold, s.min_scale)
    visitors = counts.select("facility_id", "offer", "visit_date", "distinct_visitors")
    judged = pl.col("robust_z").is_not_null()
    mart = flagged.join(visitors, on=["facility_id", "offer", "visit_date"], how="left").with_columns(
        value=pl.col("robust_z"),
        unit=pl.lit(ANOMALY_UNIT),
        numerator=pl.when(judged).then(pl.col("visits") - pl.col("baseline_median")),
        denominator=pl.when(judged).then(pl.max_horizontal(pl.col("baseline_mad") * MAD_TO_SD, pl.lit(s.min_scale))),
        distinct_visitors=pl.col("distinct_visitors").fill_null(0),
    )
    return _shaped(mart, ANOMALY_SCHEMA).sort("facility_id", "offer", "visit_date")


def trend_windows(settings: ResilienceConfig) -> dict[str, int]:
    """The weeks over which each trend indicator counts distinct visitors."""
    return {"weekly_visits": 1, "visit_trend": settings.trends.window_weeks}


def spliced_steps(before: pl.DataFrame, recomputed: pl.DataFrame, first_week: date) -> pl.DataFrame:
    """The step functions of trailing_visitors (STEP_SCHEMA) with `before`'s rows up to `first_week` and
    `recomputed`'s from it on. recomputed is trailing_visitors changed from first_week, so its counts before that
    week are incomplete; the count in first_week is its last one up to then (0 for a series it does not have).
    Rows that repeat the count before them are left out, as trailing_visitors.sql leaves them out: the result
    equals computing all of history again."""
    series = ["weeks", "facility_id", "offer"]
    at_first = recomputed.filter(pl.col("week") <= first_week).group_by(series).agg(
        pl.col("distinct_visitors").sort_by("week").last())
    boundary = (pl.concat([before.select(series), recomputed.select(series)]).unique()
                .join(at_first, on=series, how="left")
                .select(*series, week=pl.lit(first_week), distinct_visitors=pl.col("distinct_visitors").fill_null(0)))
    steps = pl.concat([before.filter(pl.col("week") < first_week), boundary,
                       recomputed.filter(pl.col("week") > first_week)], how="vertical_relaxed").sort(*series, "week")
    return steps.filter(pl.col("distinct_visitors") != pl.col("distinct_visitors").shift(1, fill_value=0).over(series))


def updated_steps(con: duckdb.DuckDBPyConnection, facility_id: str, windows: list[int],
                  stored: dict[str, pl.DataFrame] | None, first_changed: date | None) -> dict[str, pl.DataFrame]:
    """The facility's trailing-window visitors (PieceCache.get_or_update): from scratch, or, when the visits from
    first_changed on are all that changed, only the weeks from then on, from the visits of the longest window
    before (a delivery of last week into 100M check-ins reads 12 weeks, not the year)."""
    if stored is None or first_changed is None:
        return {"trailing_visitors": trailing_visitors(con, facility_id, windows)}
    return {"trailing_visitors": spliced_steps(stored["trailing_visitors"],
                                               trailing_visitors(con, facility_id, windows, first_changed), first_changed)}


def demand_trends(counts: pl.DataFrame, visitor_steps: pl.DataFrame, registry: FacilityRegistry,
                  settings: ResilienceConfig) -> pl.DataFrame:
    """weekly_visits and visit_trend per facility, offer and week; distinct visitors of the week, or of the trend's
    trailing window. counts: visits per facility, offer and visit_date; visitor_steps: for each window length of
    trend_windows, the distinct visitors per facility and offer as a step function over weeks (weeks, facility_id,
    offer, week, distinct_visitors; warehouse.checkin_reads.trailing_visitors)."""
    if counts.is_empty():
        return _shaped(None, TREND_SCHEMA)
    trends = visit_trends(_daily(counts, registry), settings.trends.window_weeks, settings.trends.min_weeks)
    series = ["facility_id", "offer"]
    # both sides sorted by week, so within every series too (Polars cannot check that itself when `by` is given)
    counted = pl.concat([
        trends.filter(pl.col("indicator_id") == indicator).select(*series, "week", "indicator_id").unique()
        .sort("week").join_asof(visitor_steps.filter(pl.col("weeks") == weeks).drop("weeks").sort("week"), on="week",
                                by=series, strategy="backward", check_sortedness=False)
        for indicator, weeks in trend_windows(settings).items()
    ])
    mart = trends.join(counted, on=[*series, "week", "indicator_id"], how="left").with_columns(
        pl.col("distinct_visitors").fill_null(0).cast(pl.Int64)
    )
    return _shaped(mart, TREND_SCHEMA).sort("indicator_id", *series, "week")


def read_projection(settings: ProjectionSettings, population: pl.DataFrame,
                    loaded_land: pl.DataFrame | None = None) -> pl.DataFrame | None:
    """The configured population projection in PROJECTION_COLUMNS, or None (logged) without one.

    [projection] file: a CSV per area (age_to empty = open), read as is. land_table (a GENESIS file) or
    land_table_code (that table as loaded into staging.population_projection, given here as `loaded_land`): a
    projection per Land, applied to the observed population of staging.population at base_date by the ratio method
    (transforms.population_projection); when the observed population does not cover the whole Land (an empty
    warehouse, or only some Kreise loaded) there is nothing to apply it to, and the run log says so.
    """
    land = loaded_land
    if settings.land_table is not None:
        path = settings.land_table
        try:
            data = path.read_bytes()
        except OSError as err:
            raise BadInputError(str(path), None, f"cannot read the population projection: {err}") from None
        land = parse_genesis_projection(data, str(path))
    if settings.land_table_code is not None and (land is None or land.is_empty()):
        log.warning("projection table %s is not loaded (staging.population_projection): marts.demand_projection "
                    "stays empty and the demographic fiscal scenarios are flagged projection_missing",
                    settings.land_table_code)
        return None
    if land is not None:
        try:
            return project_areas(population, land, settings.base_date,
                                 {code: name for name, code in settings.variants.items()})
        except LandNotCoveredError as err:
            log.warning("population projection skipped: %s; marts.demand_projection stays empty and the demographic "
                        "fiscal scenarios are flagged projection_missing", err)
            return None
    path = settings.file
    if path is None:
        log.warning("no projection configured ([projection] file, land_table or land_table_code): marts.demand_projection stays empty "
                    "and the demographic fiscal scenarios are flagged projection_missing")
        return None
    try:
        frame = pl.read_csv(path, schema_overrides=PROJECTION_SCHEMA, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as err:
        raise BadInputError(str(path), None, f"cannot read the population projection: {str(err).splitlines()[0]}") from None
    missing = [c for c in PROJECTION_COLUMNS if c not in frame.columns]
    if missing:
        raise BadInputError(str(path), 1, f"missing column(s) {', '.join(missing)} (expected {', '.join(PROJECTION_COLUMNS)})")
    return frame.select(PROJECTION_COLUMNS)


def demand_projection(district_visitors: pl.DataFrame, participation: pl.DataFrame | None, facilities: pl.DataFrame,
                      projection: pl.DataFrame | None, settings: ResilienceConfig, file: str) -> pl.DataFrame:
    """projected_visitors, required_capacity and capacity_gap per home district, year, variant and scenario;
    empty without a projection (none is invented) or without participation rates (no visitors in the base period).
    district_visitors and participation: the base period's distinct visitors per home district and their rates
    (base_period_pieces)."""
    if projection is None or participation is None:
        return _shaped(None, PROJECTION_MART_SCHEMA)
    p = settings.projection
    projected = project_demand(participation, projection, facilities, p.base_year, p.visitors_per_place, p.scenarios, file)
    mart = projected.join(district_visitors, on="area_code", how="left").with_columns(
        pl.col("distinct_visitors").fill_null(0), convention=pl.concat_str("variant", pl.lit("/"), "scenario")
    )
    return _shaped(mart, PROJECTION_MART_SCHEMA).sort("indicator_id", "area_code", "year", "variant", "scenario")


CANDIDATE_SCHEMA = {"year": pl.Int32, "variant": pl.String, "scenario": pl.String, "area_code": pl.String,
                    "gap": pl.Float64, "facility_id": pl.String, "room_id": pl.String, "capacity": pl.Int32,
                    "weeks": pl.Int64, "idle_hours_per_week": pl.Float64, "idle_capacity_hours_per_week": pl.Float64}
CANDIDATE_YEARS = (2030, 2040)


def candidate_room_list(bookings: pl.DataFrame, registry: FacilityRegistry, projection_mart: pl.DataFrame) -> pl.DataFrame:
    """Rooms with idle hours in districts whose projected capacity gap (variant medium, first rate scenario) is
    positive in a target year; empty without bookings or without a projection."""
    gaps = projection_mart.filter(pl.col("indicator_id") == "capacity_gap", pl.col("variant") == "medium")
    if bookings.is_empty() or gaps.is_empty():
        return _shaped(None, CANDIDATE_SCHEMA)
    scenario = gaps["scenario"].sort()[0]
    gaps = gaps.filter(pl.col("scenario") == scenario).select("area_code", "year", gap=pl.col("value"))
    local = bookings["starts_at"].dt.convert_time_zone(LOCAL_TZ).dt.date()
    idle = idle_by_room(bookings, registry.rooms, registry.opening_hours, registry.facilities, local.min(), local.max())
    return _shaped(pl.concat([
        candidate_rooms(idle, gaps, year).with_columns(year=pl.lit(year), variant=pl.lit("medium"), scenario=pl.lit(scenario))
        for year in CANDIDATE_YEARS
    ], how="diagonal_relaxed"), CANDIDATE_SCHEMA)


def room_sharing(bookings: pl.DataFrame, checked_in: list[pl.DataFrame], registry: FacilityRegistry) -> pl.DataFrame:
    """Every room-sharing indicator over the local dates the loaded bookings span. checked_in: checked_in_persons
    of the bookings for each piece of the check-ins (summed here)."""
    if bookings.is_empty():
        return _shaped(None, ROOM_SCHEMA)
    local = bookings["starts_at"].dt.convert_time_zone(LOCAL_TZ).dt.date()
    nobody = pl.DataFrame(schema={"booking_id": bookings.schema["booking_id"], "checked_in": pl.Float64})
    per_booking = pl.concat([nobody, *checked_in]).group_by("booking_id").agg(pl.col("checked_in").sum())
    mart = room_sharing_indicators(bookings, per_booking, registry.rooms, registry.opening_hours, registry.facilities,
                                   local.min(), local.max())
    return _shaped(mart, ROOM_SCHEMA)


# --- fiscal marts -----------------------------------------------------------------------------------------------

def _finance_names(finance: pl.DataFrame) -> pl.DataFrame:
    return finance.sort("year").group_by("area_code").agg(pl.col("area_name").last())


def fiscal_indicators(finance: pl.DataFrame) -> pl.DataFrame:
    if finance.is_empty():
        return _shaped(None, FISCAL_SCHEMA)
    names = finance.select("area_code", "year", "area_name")
    mart = finance_indicators(finance).join(names, on=["area_code", "year"], how="left")
    return _shaped(mart, FISCAL_SCHEMA).sort("indicator_id", "area_code", "year")


def fiscal_stress(finance: pl.DataFrame, settings: ResilienceConfig, projection: pl.DataFrame | None) -> pl.DataFrame:
    """The stress test from the configured base year; the demographic scenarios use the configured projection
    variant and are flagged projection_missing without one."""
    if finance.is_empty():
        return _shaped(None, STRESS_SCHEMA)
    people = None
    if projection is not None:
        people = projection.filter(pl.col("variant") == settings.projection.fiscal_variant).select(
            "area_code", "year", "age_from", "age_to", population="value"
        )
    stressed = stress_test(finance, load_stress_config(settings.fiscal_scenarios), settings.fiscal_base_year, people)
    # names as of the base year: the inputs the test starts from (a later, real year may carry another name)
    base_names = _finance_names(finance.filter(pl.col("year") <= settings.fiscal_base_year))
    mart = stressed.join(base_names, on="area_code", how="left").with_columns(
        convention=pl.col("scenario")
    )
    return _shaped(mart, STRESS_SCHEMA).sort("area_code", "scenario", "indicator_id", "year", nulls_last=True)


# --- reading the warehouse --------------------------------------------------------------------------------------

def _area_points(path: Path | None) -> pl.DataFrame | None:
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError as err:
        raise BadInputError(str(path), None, f"cannot read area points: {err}") from None
    return parse_area_points(data, str(path))


def _detached(frame: pl.DataFrame) -> pl.DataFrame:
    """A copy that owns its text. Polars' text columns can be views into the buffers of the frame they were
    computed from: the few rows kept from each month's check-ins kept every month's text alive (more than 20 GB
    at 100M check-ins); through Arrow the copy gets buffers of its own."""
    return pl.from_arrow(frame.to_arrow())


def _month_pieces(con: duckdb.DuckDBPyConnection, month: tuple[date, date], population: pl.DataFrame,
                  facilities: pl.DataFrame, settings: ResilienceConfig, bookings: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """What the marts take from one calendar month of check-ins; a frame without columns where there is nothing."""
    penetrations = penetration_in_month(visitors_by_facility_type(con, *month, facilities), population, settings, month)
    return {
        "penetration": _detached(pl.concat(penetrations, how="diagonal_relaxed")) if penetrations else pl.DataFrame(),
        "outside_share": outside_share_of_counts(outside_district_counts_in(con, *month, facilities), month),
        "daily_visits": daily_visits_in(con, *month),
        "checked_in": (pl.DataFrame() if bookings.is_empty()
                       else checked_in_persons(bookings, checkins_inside_bookings(con, *month))),
    }


def build_resilience_marts(con: duckdb.DuckDBPyConnection, config: PipelineConfig,
                           resilience: Path = RESILIENCE_PATH,
                           content: dict[tuple[str, date], Content] | None = None) -> dict[str, pl.DataFrame]:
    """{mart table: frame} of the resilience, room-sharing and fiscal marts, and marts.demography_indicators
    complete with the age-structure rows (it replaces the frame build_marts computed for that table).
    content: warehouse.piece_cache.checkin_content, if the caller has it already."""
    settings = load_resilience_config(resilience)
    population = con.sql(f"SELECT {', '.join(INDICATOR_COLUMNS)} FROM staging.population").pl()
    finance = con.sql(f"SELECT {', '.join(FINANCE_SCHEMA)} FROM staging.finance").pl()
    code = settings.projection.land_table_code
    projection = read_projection(settings.projection, population, land_projection(con, code) if code else None)

    tables = {
        "marts.demography_indicators": demography_with_age_structure(population, config.conventions, settings),
        "marts.fiscal_indicators": fiscal_indicators(finance),
        "marts.fiscal_stress": fiscal_stress(finance, settings, projection),
    }
    if config.facility_registry is None:
        registry_marts = {
            "marts.coverage_indicators": _shaped(None, COVERAGE_SCHEMA),
            "marts.reach_by_district": _shaped(None, REACH_DISTRICT_SCHEMA),
            "marts.reach_by_facility": _shaped(None, REACH_FACILITY_SCHEMA),
            "marts.demand_anomalies": _shaped(None, ANOMALY_SCHEMA),
            "marts.demand_trends": _shaped(None, TREND_SCHEMA),
            "marts.demand_projection": _shaped(None, PROJECTION_MART_SCHEMA),
            "marts.room_sharing": _shaped(None, ROOM_SCHEMA),
            "marts.candidate_rooms": _shaped(None, CANDIDATE_SCHEMA),
        }
        return tables | registry_marts

    registry = load_facility_registry(config.facility_registry)
    facilities = registry.facilities
    # check-ins in bounded pieces (warehouse/checkin_reads.py): all of history at once does not fit at 100M rows;
    # a piece whose check-ins and other inputs are unchanged since the last run is read back (warehouse/piece_cache.py)
    bookings = read_utc(con, "SELECT * FROM staging.room_bookings")
    cache = PieceCache(con, fingerprint(table_content(con, "staging.population"),
                                        table_content(con, "staging.room_bookings"), facilities.write_csv(), settings))
    # months and the base period add up days, the facilities' pieces weeks
    facility_days = checkin_content(con) if content is None else content
    days = by_day(facility_days)
    facility_weeks: dict[str, dict[date, Content]] = {}
    for (f, week), c in summed(((f, day - timedelta(days=day.weekday())), c)
                               for (f, day), c in facility_days.items()).items():
        facility_weeks.setdefault(f, {})[week] = c
    penetrations, outside_shares, checked_in, daily = [], [], [], []
    for month in checkin_months(con):
        pieces = cache.get_or_compute(f"month {month[0]}", content_of_days(days, month[0], month[1] + timedelta(days=1)),
                                      lambda month=month: _month_pieces(con, month, population, facilities, settings, bookings))
        penetrations += [pieces["penetration"]] if pieces["penetration"].width else []
        outside_shares.append(pieces["outside_share"])
        daily.append(pieces["daily_visits"])
        checked_in += [pieces["checked_in"]] if pieces["checked_in"].width else []
    counts = pl.concat(daily) if daily else pl.DataFrame(schema=DAILY_SCHEMA)
    windows = sorted(set(trend_windows(settings).values()))
    steps = pl.concat([
        cache.get_or_update(f"facility {f}", windows, weeks,
                            lambda stored, first, f=f: updated_steps(con, f, windows, stored, first))["trailing_visitors"]
        for f, weeks in sorted(facility_weeks.items())
    ] or [pl.DataFrame(schema=STEP_SCHEMA)])
    start, end = settings.participation_period
    base = cache.get_or_compute(f"base period {start} {end}", content_of_days(days, start, end + timedelta(days=1)),
                                lambda: base_period_pieces(con, population, settings))
    cache.finish()
    participation = base["participation"] if base["participation"].width else None
    projection_file = str(settings.projection.land_table or settings.projection.file
                          or f"staging.population_projection {settings.projection.land_table_code}")
    projection_mart = demand_projection(base["district_visitors"], participation, facilities, projection, settings,
                                        projection_file)
    return tables | {
        "marts.coverage_indicators": coverage_indicators(population, facilities, _area_points(config.area_points), settings),
        "marts.reach_by_district": reach_by_district(penetrations, participation, population),
        "marts.reach_by_facility": reach_by_facility(outside_shares),
        "marts.demand_anomalies": demand_anomalies(counts, registry, settings),
        "marts.demand_trends": demand_trends(counts, steps, registry, settings),
        "marts.demand_projection": projection_mart,
        "marts.candidate_rooms": candidate_room_list(bookings, registry, projection_mart),
        "marts.room_sharing": room_sharing(bookings, checked_in, registry),
    }
