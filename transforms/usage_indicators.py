"""Usage indicators of facilities and rooms per ISO week (period_start = Monday) and calendar month.

Visitor indicators come from the validated check-ins, per facility and breakdown: the facility as a whole
(breakdown "total", category "all") and per offer, age band and home district (category = the value, "unknown" when
the log left it empty). Every row carries `distinct_visitors`, the number of different pseudonyms it rests on, so
that exports can suppress small cells; the warehouse keeps the exact values. They are computed in two steps: the
cells (CELL_COLUMNS: visits, distinct and repeat visitors, person-hours per facility, period, breakdown, category),
then the indicators from the cells and the opening hours. The warehouse computes the cells in DuckDB
(warehouse/usage_cells.py), because all check-ins of the history do not fit in memory; visitor_indicators does both
steps in Polars for a check-in frame at hand.

Opening hours come from the registry's opening calendar (weekly hours minus closures and NRW public holidays),
counted only on the days the given check-ins (or bookings) cover, so that the first and last period of a delivery
set visits and hours over the same days. A period with check-ins but no opening hours gets a null value with
flag "no_opening_hours" (someone logged visits on a day the registry says is closed: worth a look).

Room indicators come from the validated bookings: booked hours per room and provider (a provider's own overlapping
bookings counted once) and idle hours per room = opening hours − hours in which any provider had booked the room,
within opening hours. Rooms have no visitors; their rows have distinct_visitors = null and are never suppressed.
"""

from __future__ import annotations

from datetime import date, time

import polars as pl

from transforms.catalogue import indicators_of_kind
from transforms.facility_registry import LOCAL_TIME_ZONE, FacilityRegistry, opening_calendar

PERIODS = {"week": "1w", "month": "1mo"}
BREAKDOWNS = ("total", "offer", "age_band", "home_district")
ALL, UNKNOWN = "all", "unknown"
# A check-in without duration counts as one hour of presence (the median stay of the sample facilities is
# 60–120 minutes; one hour errs on the low side, so utilisation is not overstated).
DEFAULT_DURATION_MINUTES = 60
FLAG_NO_HOURS = "no_opening_hours"
FLAG_NO_VISITORS = "no_visitors"

CELL_COLUMNS = ["facility_id", "period", "period_start", "breakdown", "category",
                "visits", "distinct_visitors", "repeat_visitors", "person_hours"]
VISITOR_COLUMNS = ["facility_id", "breakdown", "category", "period", "period_start", "indicator_id",
                   "value", "flag", "numerator", "denominator", "distinct_visitors"]
ROOM_COLUMNS = ["facility_id", "room_id", "provider", "period", "period_start", "indicator_id",
                "value", "flag", "numerator", "denominator", "distinct_visitors"]


def _check_catalogue(kind: str, ids: set[str]) -> dict:
    catalogue = {i.id: i for i in indicators_of_kind(kind)}
    if ids != set(catalogue):
        raise ValueError(f"{kind} indicators {sorted(ids)} differ from the catalogue's {sorted(catalogue)}")
    return catalogue


def _hours_per_period(calendar: pl.DataFrame, every: str, keys: list[str]) -> pl.DataFrame:
    return calendar.group_by(*keys, period_start=pl.col("date").dt.truncate(every)).agg(opening_hours=pl.col("hours").sum())


def _visitor_cells(checkins: pl.DataFrame, every: str) -> pl.DataFrame:
    """Per facility, breakdown, category and period: visits, unique and repeat visitors, person-hours."""
    presence = pl.col("party_size").fill_null(1) * pl.col("duration_minutes").fill_null(DEFAULT_DURATION_MINUTES) / 60
    base = checkins.select(
        "facility_id", "visitor_pseudonym", "offer", "age_band", "home_district",
        period_start=pl.col("visit_date").dt.truncate(every),
        person_hours=presence.cast(pl.Float64),
    )
    parts = []
    for breakdown in BREAKDOWNS:
        category = pl.lit(ALL) if breakdown == "total" else pl.col(breakdown).fill_null(UNKNOWN)
        per_visitor = base.group_by("facility_id", "period_start", "visitor_pseudonym", category=category).agg(
            visits=pl.len(), person_hours=pl.col("person_hours").sum()
        )
        parts.append(
            per_visitor.group_by("facility_id", "period_start", "category").agg(
                visits=pl.col("visits").sum().cast(pl.Int64),
                distinct_visitors=pl.len().cast(pl.Int64),
                repeat_visitors=(pl.col("visits") >= 2).sum().cast(pl.Int64),
                person_hours=pl.col("person_hours").sum(),
            ).with_columns(breakdown=pl.lit(breakdown))
        )
    return pl.concat(parts)


def visitor_indicators(checkins: pl.DataFrame, registry: FacilityRegistry) -> pl.DataFrame:
    """CHECKINS (validated) → long form VISITOR_COLUMNS for every indicator of kind usage_visitors."""
    cells = pl.concat([_visitor_cells(checkins, every).with_columns(period=pl.lit(period)).select(CELL_COLUMNS)
                       for period, every in PERIODS.items()])
    dates = (checkins["visit_date"].min(), checkins["visit_date"].max()) if checkins.height else None
    return visitor_indicators_from_cells(cells, registry, dates)


def visitor_indicators_from_cells(cells: pl.DataFrame, registry: FacilityRegistry,
                                  dates: tuple[date, date] | None) -> pl.DataFrame:
    """Cells (CELL_COLUMNS, both periods) → long form VISITOR_COLUMNS for every indicator of kind usage_visitors.

    dates: the first and last visit_date of the check-ins the cells come from (None only when there are none):
    opening hours are counted on those days only.
    """
    definitions = {
        "visits": (pl.col("visits"), None),
        "unique_visitors": (pl.col("distinct_visitors"), None),
        "repeat_visitor_share": (pl.col("repeat_visitors"), pl.col("distinct_visitors")),
        "visits_per_opening_hour": (pl.col("visits"), pl.col("opening_hours")),
        "capacity_utilisation": (pl.col("person_hours"), pl.col("capacity") * pl.col("opening_hours")),
    }
    catalogue = _check_catalogue("usage_visitors", set(definitions))
    if cells.height == 0:
        return pl.DataFrame(schema=_schema(VISITOR_COLUMNS))
    if dates is None:
        raise ValueError("visitor cells without the date span of their check-ins: opening hours cannot be counted")
    calendar = opening_calendar(registry, *dates)
    hours = pl.concat([_hours_per_period(calendar, every, ["facility_id"]).with_columns(period=pl.lit(period))
                       for period, every in PERIODS.items()])
    capacity = registry.facilities.select("facility_id", pl.col("capacity").cast(pl.Float64))
    cells = (
        cells.join(hours, on=["facility_id", "period", "period_start"], how="left")
        .join(capacity, on="facility_id", how="left")
        .with_columns(pl.col("opening_hours").fill_null(0.0))
    )
    parts = [
        _values(cells, indicator_id, numerator, denominator, catalogue[indicator_id].scale,
                ["facility_id", "breakdown", "category", "period", "period_start", "distinct_visitors"])
        for indicator_id, (numerator, denominator) in definitions.items()
    ]
    return pl.concat([p.select(VISITOR_COLUMNS) for p in parts]).sort(
        "indicator_id", "facility_id", "period", "period_start", "breakdown", "category"
    )


def _values(cells: pl.DataFrame, indicator_id: str, numerator: pl.Expr, denominator: pl.Expr | None,
            scale: float, keys: list[str]) -> pl.DataFrame:
    if denominator is None:
        return cells.select(*keys, indicator_id=pl.lit(indicator_id), value=numerator.cast(pl.Float64),
                            flag=pl.lit(None, dtype=pl.String), numerator=numerator.cast(pl.Float64),
                            denominator=pl.lit(None, dtype=pl.Float64))
    zero_flag = FLAG_NO_VISITORS if indicator_id == "repeat_visitor_share" else FLAG_NO_HOURS
    return cells.select(
        *keys,
        indicator_id=pl.lit(indicator_id),
        numerator=numerator.cast(pl.Float64),
        denominator=denominator.cast(pl.Float64),
    ).with_columns(
        value=pl.when(pl.col("denominator") > 0).then(pl.col("numerator") / pl.col("denominator") * scale),
        flag=pl.when(pl.col("denominator") > 0).then(pl.lit(None, dtype=pl.String)).otherwise(pl.lit(zero_flag)),
    )


def _schema(columns: list[str]) -> dict[str, pl.DataType]:
    types = {"period_start": pl.Date, "value": pl.Float64, "numerator": pl.Float64, "denominator": pl.Float64,
             "distinct_visitors": pl.Int64}
    return {c: types.get(c, pl.String) for c in columns}


def merge_overlaps(intervals: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Union of [starts_at, ends_at) intervals per key: overlapping or touching intervals become one."""
    ordered = intervals.select(*keys, "starts_at", "ends_at").sort(*keys, "starts_at")
    reach = pl.col("ends_at").cum_max().shift(1).over(keys, order_by="starts_at")
    blocks = ordered.with_columns(
        block=(reach.is_null() | (pl.col("starts_at") > reach)).cum_sum().over(keys, order_by="starts_at")
    )
    return blocks.group_by(*keys, "block").agg(pl.col("starts_at").min(), pl.col("ends_at").max()).drop("block")


def _split_by_local_day(intervals: pl.DataFrame) -> pl.DataFrame:
    """Cut intervals at local midnight, so that each piece belongs to one calendar day (and period)."""
    local = lambda c: pl.col(c).dt.convert_time_zone(LOCAL_TIME_ZONE)  # noqa: E731
    midnight = lambda d: d.dt.combine(time(0)).dt.replace_time_zone(LOCAL_TIME_ZONE).dt.convert_time_zone("UTC")  # noqa: E731
    return (
        intervals.with_columns(
            date=pl.date_ranges(local("starts_at").dt.date(), (local("ends_at") - pl.duration(microseconds=1)).dt.date())
        )
        .explode("date")
        .with_columns(
            starts_at=pl.max_horizontal("starts_at", midnight(pl.col("date"))),
            ends_at=pl.min_horizontal("ends_at", midnight(pl.col("date").dt.offset_by("1d"))),
        )
    )


def room_indicators(bookings: pl.DataFrame, registry: FacilityRegistry) -> pl.DataFrame:
    """BOOKINGS (validated) → long form ROOM_COLUMNS for every indicator of kind usage_rooms.

    usage_room_booked_hours: per room and provider. usage_room_idle_hours: per room (provider "all"), numerator = idle hours,
    denominator = opening hours, for every room of the registry on the days the bookings cover.
    """
    _check_catalogue("usage_rooms", {"usage_room_booked_hours", "usage_room_idle_hours"})
    if bookings.height == 0:
        return pl.DataFrame(schema=_schema(ROOM_COLUMNS))
    local_dates = bookings.select(
        first=pl.col("starts_at").dt.convert_time_zone(LOCAL_TIME_ZONE).dt.date().min(),
        last=pl.col("ends_at").dt.convert_time_zone(LOCAL_TIME_ZONE).dt.date().max(),
    ).row(0)
    first, last = local_dates
    calendar = opening_calendar(registry, first, last)
    rooms = registry.rooms.select("facility_id", "room_id").unique()
    per_provider = _split_by_local_day(merge_overlaps(bookings, ["facility_id", "room_id", "provider"]))
    any_provider = _split_by_local_day(merge_overlaps(bookings, ["facility_id", "room_id"]))
    within_opening = (
        any_provider.join(calendar, on=["facility_id", "date"], how="inner")
        .with_columns(
            overlap=(pl.min_horizontal("ends_at", "closes_at") - pl.max_horizontal("starts_at", "opens_at"))
            .dt.total_seconds().clip(0) / 3600
        )
        .group_by("facility_id", "room_id", "date")
        .agg(booked_hours=pl.col("overlap").sum())
    )
    room_days = calendar.group_by("facility_id", "date").agg(pl.col("hours").sum()).join(rooms, on="facility_id")
    parts = []
    for period, every in PERIODS.items():
        booked = per_provider.group_by(
            "facility_id", "room_id", "provider", period_start=pl.col("date").dt.truncate(every)
        ).agg(hours=((pl.col("ends_at") - pl.col("starts_at")).dt.total_seconds() / 3600).sum())
        parts.append(booked.select(
            "facility_id", "room_id", "provider", "period_start", period=pl.lit(period),
            indicator_id=pl.lit("usage_room_booked_hours"), value="hours", flag=pl.lit(None, dtype=pl.String),
            numerator="hours", denominator=pl.lit(None, dtype=pl.Float64),
        ))
        idle = (
            room_days.join(within_opening, on=["facility_id", "room_id", "date"], how="left")
            .group_by("facility_id", "room_id", period_start=pl.col("date").dt.truncate(every))
            .agg(opening=pl.col("hours").sum(), booked=pl.col("booked_hours").fill_null(0).sum())
        )
        parts.append(idle.select(
            "facility_id", "room_id", "period_start", provider=pl.lit(ALL), period=pl.lit(period),
            indicator_id=pl.lit("usage_room_idle_hours"), value=pl.col("opening") - pl.col("booked"),
            flag=pl.lit(None, dtype=pl.String), numerator=pl.col("opening") - pl.col("booked"), denominator="opening",
        ))
    return (
        pl.concat(parts, how="diagonal_relaxed")
        .with_columns(distinct_visitors=pl.lit(None, dtype=pl.Int64))
        .select([pl.col(c).cast(t) for c, t in _schema(ROOM_COLUMNS).items()])
        .sort("indicator_id", "facility_id", "room_id", "provider", "period", "period_start")
    )
