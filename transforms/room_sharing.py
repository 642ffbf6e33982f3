"""Shared use of rooms by providers (Träger): booked and used hours, idle capacity, shared rooms, cost keys.

Pure functions over the BOOKINGS, CHECKINS, ROOMS and OPENING_HOURS frames (docs/data-contracts.md) and the
facility registry (facility_id, area_code). The definitions are in docs/room-sharing.md and in the catalogue
(transforms/catalogue_entries/50_rooms_fiscal.toml):

- a booking is *used* when it had attendees: its `attendees` count if delivered, otherwise the visitors who
  checked in at the facility during the booking (party size, 1 when empty). A check-in that falls into several
  bookings of the facility at once counts for each of them in equal parts, so no visitor is counted twice.
- weeks are calendar weeks in Europe/Berlin, named by their Monday; a booking belongs to the week it starts in.
- idle hours are the opening hours of a room in which it is not booked (overlapping bookings count once); idle
  capacity-hours weigh them with the room's capacity in persons. A booked but unused slot is not idle (nobody
  else could have booked it); it shows up as booked minus used hours.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from transforms.bad_input import BadInputError
from transforms.catalogue import indicators_of_kind

LOCAL_TZ = "Europe/Berlin"
FLAG_NO_USE = "no_used_hours"
FLAG_CLOSED = "no_opening_hours"
FLAG_NO_ROOMS = "no_rooms"

# one frame for all room-sharing indicators; a column that is not a subject of the indicator is null
MART_SCHEMA: dict[str, pl.DataType] = {
    "indicator_id": pl.String,
    "area_code": pl.String,
    "facility_id": pl.String,
    "room_id": pl.String,
    "provider": pl.String,
    "week_start": pl.Date,  # Monday of the week (weekly indicators)
    "period_start": pl.Date,  # first and last day of the period (indicators over the whole period)
    "period_end": pl.Date,
    "value": pl.Float64,
    "flag": pl.String,
    "numerator": pl.Float64,
    "denominator": pl.Float64,
}


def _hours(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    return (end - start).dt.total_microseconds() / 3_600_000_000


def _local_date(ts: pl.Expr) -> pl.Expr:
    return ts.dt.convert_time_zone(LOCAL_TZ).dt.date()


def _check_bookings(bookings: pl.DataFrame, rooms: pl.DataFrame) -> None:
    """Refuse the first booking that cannot be counted: no time span, twice delivered, unknown room or provider."""
    allowed = rooms.select("facility_id", "room_id", "provider").with_columns(allowed=pl.lit(True))
    known_rooms = rooms.select("facility_id", "room_id").unique().with_columns(known=pl.lit(True))
    checked = (
        bookings.join(known_rooms, on=["facility_id", "room_id"], how="left")
        .join(allowed, on=["facility_id", "room_id", "provider"], how="left")
        .with_columns(first_row=pl.col("source_row").min().over("booking_id"), times=pl.len().over("booking_id"))
        .with_columns(
            reason=pl.when(pl.col("starts_at").is_null() | pl.col("ends_at").is_null())
            .then(pl.lit("starts_at and ends_at are required"))
            .when(pl.col("ends_at") <= pl.col("starts_at"))
            .then(pl.format("ends_at {} is not after starts_at {}", pl.col("ends_at"), pl.col("starts_at")))
            .when((pl.col("times") > 1) & (pl.col("source_row") > pl.col("first_row")))
            .then(pl.format("booking_id {} appears twice (first in row {})", pl.col("booking_id"), pl.col("first_row")))
            .when(pl.col("known").is_null())
            .then(pl.format("room {} of facility {} is not in the facility registry (config/facilities.toml)",
                            pl.col("room_id"), pl.col("facility_id")))
            .when(pl.col("allowed").is_null())
            .then(pl.format("provider {} is not among the providers allowed to use room {} of facility {} "
                            "(config/facilities.toml)", pl.col("provider"), pl.col("room_id"), pl.col("facility_id")))
        )
        .filter(pl.col("reason").is_not_null())
        .sort("source_file", "source_row")
    )
    if checked.height:
        first = checked.row(0, named=True)
        raise BadInputError(first["source_file"], first["source_row"], first["reason"])


def checked_in_persons(bookings: pl.DataFrame, checkins: pl.DataFrame) -> pl.DataFrame:
    """Persons who checked in at the facility during each booking: booking_id, checked_in (party size, 1 when
    empty; a check-in inside k of the bookings at once counts 1/k for each). Bookings without one are left out.

    A sum over check-ins: for check-ins split into pieces (months, say), the pieces' sums per booking add up to
    the sum over all, and a check-in outside every booking adds nothing.
    """
    visits = checkins.select(
        "facility_id", "visited_at", "source_file", "source_row", persons=pl.col("party_size").fill_null(1).cast(pl.Float64),
        day=pl.col("visited_at").dt.date(),
    )
    # matched day by day (UTC): joining every booking with every check-in of its facility grows with their product
    # and ran out of memory at 10M check-ins; a booking covers the days from its start to just before its end
    booking_days = bookings.select(
        "booking_id", "facility_id", "starts_at", "ends_at",
        day=pl.date_ranges(pl.col("starts_at").dt.date(), (pl.col("ends_at") - pl.duration(microseconds=1)).dt.date()),
    ).explode("day")
    return (
        booking_days.join(visits, on=["facility_id", "day"], how="inner")
        .filter((pl.col("visited_at") >= pl.col("starts_at")) & (pl.col("visited_at") < pl.col("ends_at")))
        .with_columns(share=1 / pl.len().over("source_file", "source_row"))
        .group_by("booking_id")
        .agg(checked_in=(pl.col("persons") * pl.col("share")).sum())
    )


def booking_usage(bookings: pl.DataFrame, checked_in: pl.DataFrame, rooms: pl.DataFrame, start: date, end: date) -> pl.DataFrame:
    """One row per booking that starts in [start, end] (local dates): hours, persons, used, week_start.
    checked_in: checked_in_persons of the bookings (summed over pieces of the check-ins, if read in pieces).

    Raises BadInputError (file, row, reason) for a booking that cannot be counted.
    """
    _check_bookings(bookings, rooms)
    in_period = bookings.filter(_local_date(pl.col("starts_at")).is_between(start, end))
    return (
        in_period.join(checked_in.select("booking_id", "checked_in"), on="booking_id", how="left")
        .with_columns(
            hours=_hours(pl.col("starts_at"), pl.col("ends_at")),
            persons=pl.coalesce(pl.col("attendees").cast(pl.Float64), pl.col("checked_in"), pl.lit(0.0)),
            week_start=_local_date(pl.col("starts_at")).dt.truncate("1w"),
        )
        .with_columns(used=pl.col("persons") > 0)
        .drop("checked_in")
    )


def _opening_windows(rooms: pl.DataFrame, opening_hours: pl.DataFrame, start: date, end: date) -> pl.DataFrame:
    """Per room and day of the period: its opening windows as UTC instants (DST days have their true length)."""
    days = pl.DataFrame({"day": pl.date_range(start, end, "1d", eager=True)}).with_columns(
        weekday=pl.col("day").dt.weekday().cast(pl.Int8)
    )
    windows = days.join(opening_hours, on="weekday", how="inner").with_columns(
        open_at=pl.col("day").dt.combine(pl.col("opens")).dt.replace_time_zone(LOCAL_TZ, ambiguous="earliest")
        .dt.convert_time_zone("UTC"),
        close_at=pl.col("day").dt.combine(pl.col("closes")).dt.replace_time_zone(LOCAL_TZ, ambiguous="latest")
        .dt.convert_time_zone("UTC"),
    )
    room_list = rooms.select("facility_id", "room_id", "capacity").unique(subset=["facility_id", "room_id"])
    return room_list.join(windows, on="facility_id", how="inner").with_columns(
        week_start=pl.col("day").dt.truncate("1w"), open_hours=_hours(pl.col("open_at"), pl.col("close_at"))
    )


def _merged_bookings(bookings: pl.DataFrame) -> pl.DataFrame:
    """The booked time of each room as disjoint blocks: overlapping or adjoining bookings become one block."""
    ordered = bookings.select("facility_id", "room_id", "starts_at", "ends_at").sort("facility_id", "room_id", "starts_at")
    room = ["facility_id", "room_id"]
    return (
        ordered.with_columns(reach=pl.col("ends_at").cum_max().shift(1).over(room))
        .with_columns(block=(pl.col("reach").is_null() | (pl.col("starts_at") > pl.col("reach"))).cum_sum().over(room))
        .group_by(*room, "block")
        .agg(block_start=pl.col("starts_at").min(), block_end=pl.col("ends_at").max())
    )


def idle_by_room(
    bookings: pl.DataFrame, rooms: pl.DataFrame, opening_hours: pl.DataFrame, facilities: pl.DataFrame,
    start: date, end: date,
) -> pl.DataFrame:
    """Per room and week: open_hours, booked_open_hours (booked within opening hours), idle_hours,
    capacity, open_capacity_hours, idle_capacity_hours, with the facility's area_code."""
    _check_bookings(bookings, rooms)
    windows = _opening_windows(rooms, opening_hours, start, end)
    blocks = _merged_bookings(bookings)
    overlap = (
        windows.join(blocks, on=["facility_id", "room_id"], how="inner")
        .with_columns(
            booked=_hours(
                pl.max_horizontal("open_at", "block_start"), pl.min_horizontal("close_at", "block_end")
            ).clip(lower_bound=0)
        )
        .group_by("facility_id", "room_id", "day", "open_at")
        .agg(pl.col("booked").sum())
    )
    per_window = windows.join(overlap, on=["facility_id", "room_id", "day", "open_at"], how="left").with_columns(
        pl.col("booked").fill_null(0.0)
    )
    weekly = per_window.group_by("facility_id", "room_id", "week_start").agg(
        capacity=pl.col("capacity").first(),
        open_hours=pl.col("open_hours").sum(),
        booked_open_hours=pl.col("booked").sum(),
    )
    return weekly.join(facilities.select("facility_id", "area_code"), on="facility_id", how="left").with_columns(
        idle_hours=pl.col("open_hours") - pl.col("booked_open_hours"),
        open_capacity_hours=pl.col("open_hours") * pl.col("capacity"),
        idle_capacity_hours=(pl.col("open_hours") - pl.col("booked_open_hours")) * pl.col("capacity"),
    )


def _frame(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.with_columns([pl.lit(None, dtype=t).alias(c) for c, t in MART_SCHEMA.items() if c not in rows.columns]).select(
        [pl.col(c).cast(t) for c, t in MART_SCHEMA.items()]
    )


def _weekly_hours(usage: pl.DataFrame) -> pl.DataFrame:
    keys = ["facility_id", "room_id", "provider", "week_start"]
    weekly = usage.group_by(keys).agg(
        room_booked_hours=pl.col("hours").sum(),
        room_used_hours=pl.col("hours").filter(pl.col("used")).sum(),
        room_attendee_hours=(pl.col("hours") * pl.col("persons")).sum(),
    )
    return weekly.unpivot(index=keys, variable_name="indicator_id", value_name="value")


def _idle_indicators(idle: pl.DataFrame) -> pl.DataFrame:
    parts = []
    for subject in (["facility_id", "area_code"], ["area_code"]):
        summed = idle.group_by(*subject, "week_start").agg(
            pl.col("idle_capacity_hours").sum(), pl.col("open_capacity_hours").sum()
        )
        flag = pl.when(pl.col("open_capacity_hours") == 0).then(pl.lit(FLAG_CLOSED))
        parts.append(summed.select(*subject, "week_start", indicator_id=pl.lit("idle_capacity_hours"),
                                   value=pl.col("idle_capacity_hours")))
        parts.append(summed.select(
            *subject, "week_start", indicator_id=pl.lit("idle_capacity_share"),
            numerator=pl.col("idle_capacity_hours"), denominator=pl.col("open_capacity_hours"),
            value=pl.when(pl.col("open_capacity_hours") > 0)
            .then(pl.col("idle_capacity_hours") / pl.col("open_capacity_hours") * 100),
            flag=flag,
        ))
    return pl.concat([_frame(p) for p in parts])


def _shared_room_share(usage: pl.DataFrame, rooms: pl.DataFrame, facilities: pl.DataFrame) -> pl.DataFrame:
    """Rooms used by two or more providers in the period, per 100 rooms of the facility / the district."""
    providers_per_room = usage.filter(pl.col("used")).group_by("facility_id", "room_id").agg(
        providers=pl.col("provider").n_unique()
    )
    room_list = (
        rooms.select("facility_id", "room_id").unique()
        .join(providers_per_room, on=["facility_id", "room_id"], how="left")
        .join(facilities.select("facility_id", "area_code"), on="facility_id", how="left")
        .with_columns(shared=pl.col("providers").fill_null(0) >= 2)
    )
    parts = []
    for subject in (["facility_id", "area_code"], ["area_code"]):
        counted = room_list.group_by(subject).agg(numerator=pl.col("shared").sum(), denominator=pl.len())
        parts.append(counted.select(
            *subject, indicator_id=pl.lit("shared_room_share"),
            numerator=pl.col("numerator").cast(pl.Float64), denominator=pl.col("denominator").cast(pl.Float64),
            value=pl.when(pl.col("denominator") > 0).then(pl.col("numerator") / pl.col("denominator") * 100),
            flag=pl.when(pl.col("denominator") == 0).then(pl.lit(FLAG_NO_ROOMS)),
        ))
    return pl.concat([_frame(p) for p in parts])


def _cost_keys(usage: pl.DataFrame, rooms: pl.DataFrame) -> pl.DataFrame:
    """Per facility and provider: share of the facility's used room-hours, and of its attendee-hours.

    Every provider allowed in a room of the facility gets a key, 0 % when it did not use any, so the keys of a
    facility always add up to 100 %.
    """
    providers = rooms.select("facility_id", "provider").unique()
    per_provider = usage.group_by("facility_id", "provider").agg(
        used_hours=pl.col("hours").filter(pl.col("used")).sum(),
        attendee_hours=(pl.col("hours") * pl.col("persons")).sum(),
    )
    keyed = providers.join(per_provider, on=["facility_id", "provider"], how="left").with_columns(
        pl.col("used_hours", "attendee_hours").fill_null(0.0)
    )
    parts = []
    for indicator_id, column in (("cost_key_room_hours", "used_hours"), ("cost_key_attendee_hours", "attendee_hours")):
        total = pl.col(column).sum().over("facility_id")
        parts.append(keyed.select(
            "facility_id", "provider", indicator_id=pl.lit(indicator_id),
            numerator=pl.col(column), denominator=total,
            value=pl.when(total > 0).then(pl.col(column) / total * 100),
            flag=pl.when(total == 0).then(pl.lit(FLAG_NO_USE)),
        ))
    return pl.concat([_frame(p) for p in parts])


def candidate_rooms(idle: pl.DataFrame, gaps: pl.DataFrame, year: int) -> pl.DataFrame:
    """Rooms with idle capacity in districts where the demand projection shows a gap in `year`.

    idle: the frame of idle_by_room; gaps: area_code, year, gap (positive = missing capacity, in persons).
    One row per room: area_code, gap, facility_id, room_id, capacity, weeks, idle_hours_per_week,
    idle_capacity_hours_per_week; the largest gap first, within it the most idle capacity first.
    """
    short = gaps.filter((pl.col("year") == year) & (pl.col("gap") > 0)).select("area_code", "gap")
    per_room = idle.group_by("area_code", "facility_id", "room_id").agg(
        capacity=pl.col("capacity").first(),
        weeks=pl.col("week_start").n_unique(),
        idle_hours=pl.col("idle_hours").sum(),
        idle_capacity_hours=pl.col("idle_capacity_hours").sum(),
    )
    return (
        per_room.join(short, on="area_code", how="inner")
        .filter(pl.col("idle_hours") > 0)
        .select(
            "area_code", "gap", "facility_id", "room_id", "capacity", "weeks",
            idle_hours_per_week=pl.col("idle_hours") / pl.col("weeks"),
            idle_capacity_hours_per_week=pl.col("idle_capacity_hours") / pl.col("weeks"),
        )
        .sort(["gap", "idle_capacity_hours_per_week", "facility_id", "room_id"], descending=[True, True, False, False])
    )


def room_sharing_indicators(
    bookings: pl.DataFrame, checked_in: pl.DataFrame, rooms: pl.DataFrame, opening_hours: pl.DataFrame,
    facilities: pl.DataFrame, start: date, end: date,
) -> pl.DataFrame:
    """All room-sharing indicators of the catalogue for the period [start, end] (local dates), long form MART_SCHEMA.
    checked_in: checked_in_persons of the bookings."""
    usage = booking_usage(bookings, checked_in, rooms, start, end)
    idle = idle_by_room(bookings, rooms, opening_hours, facilities, start, end)
    weekly = _frame(_weekly_hours(usage))
    area_of = facilities.select("facility_id", area=pl.col("area_code"))
    period = [_shared_room_share(usage, rooms, facilities), _cost_keys(usage, rooms)]
    mart = pl.concat([
        weekly.join(area_of, on="facility_id", how="left").with_columns(area_code=pl.col("area")).drop("area"),
        _idle_indicators(idle),
        *[p.with_columns(period_start=pl.lit(start), period_end=pl.lit(end)) for p in period],
    ])
    catalogue = {i.id for i in indicators_of_kind("room_sharing")}
    computed = set(mart["indicator_id"].unique().to_list())
    if not computed <= catalogue:
        raise ValueError(f"room-sharing indicators {sorted(computed - catalogue)} are not in the catalogue")
    return mart.sort("indicator_id", "area_code", "facility_id", "room_id", "provider", "week_start", nulls_last=True)
