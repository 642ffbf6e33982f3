"""The facility registry (config/facilities.toml): which facilities exist, when they are open, who uses which room.

Loading validates every field and names the facility and the field that is wrong, so a typo in the registry stops
the run with a message instead of producing indicators over the wrong opening hours. The registry also defines the
opening calendar that both the synthetic generator and the per-opening-hour indicators use: weekly hours, minus the
facility's own closure periods, minus the public holidays of NRW (every facility is closed then).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import polars as pl

REGISTRY_PATH = Path(__file__).resolve().parents[1] / "config" / "facilities.toml"
LOCAL_TIME_ZONE = "Europe/Berlin"

FACILITY_TYPES = (
    "community_centre",
    "buergertreff",
    "integration_centre",
    "repair_cafe",
    "tutoring",
    "senior_meeting_point",
    "youth_centre",
)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # ISO weekday = position + 1
FACILITY_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
AREA_CODE = re.compile(r"^(?:\d{5}|\d{8})$")
# Bounding box of Germany: catches swapped lat/lon and a missing minus or decimal point.
LAT_RANGE, LON_RANGE = (47.2, 55.1), (5.8, 15.1)

FACILITY_SCHEMA: dict[str, pl.DataType] = {
    "facility_id": pl.String,
    "name": pl.String,
    "provider": pl.String,
    "type": pl.String,
    "address": pl.String,
    "lat": pl.Float64,
    "lon": pl.Float64,
    "area_code": pl.String,
    "capacity": pl.Int32,
}
ROOM_SCHEMA: dict[str, pl.DataType] = {
    "facility_id": pl.String,
    "room_id": pl.String,
    "name": pl.String,
    "capacity": pl.Int32,
    "provider": pl.String,
}
OPENING_HOURS_SCHEMA: dict[str, pl.DataType] = {
    "facility_id": pl.String,
    "weekday": pl.Int8,
    "opens": pl.Time,
    "closes": pl.Time,
}
CLOSURE_SCHEMA: dict[str, pl.DataType] = {"facility_id": pl.String, "closed_from": pl.Date, "closed_to": pl.Date}


class FacilityConfigError(ValueError):
    """The registry is wrong; the message names the file, the facility and the field."""


@dataclass(frozen=True)
class FacilityRegistry:
    facilities: pl.DataFrame  # FACILITY_SCHEMA, one row per facility
    rooms: pl.DataFrame  # ROOM_SCHEMA, one row per room and provider allowed to use it
    opening_hours: pl.DataFrame  # OPENING_HOURS_SCHEMA, one row per opening interval of a weekday
    closures: pl.DataFrame  # CLOSURE_SCHEMA, both days included

    @property
    def facility_ids(self) -> list[str]:
        return self.facilities["facility_id"].to_list()


class _Checker:
    def __init__(self, source: str, facility: str):
        self.source = source
        self.where = f"{source}: facility {facility!r}"

    def for_room(self, facility_id: str, room_id: str) -> _Checker:
        return _Checker(self.source, f"{facility_id}, room {room_id}")

    def fail(self, field: str, reason: str) -> FacilityConfigError:
        return FacilityConfigError(f"{self.where}, field {field!r}: {reason}")

    def text(self, entry: dict, field: str) -> str:
        value = entry.get(field)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field, f"a non-empty text is required, got {value!r}")
        return value.strip()

    def number(self, entry: dict, field: str, low: float, high: float) -> float:
        value = entry.get(field)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise self.fail(field, f"a number between {low} and {high} is required, got {value!r}")
        return float(value)

    def count(self, entry: dict, field: str) -> int:
        value = entry.get(field)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(field, f"a whole number of persons ≥ 1 is required, got {value!r}")
        return value

    def clock(self, value: object, field: str) -> time:
        try:
            return datetime.strptime(str(value), "%H:%M").time()
        except ValueError:
            raise self.fail(field, f"times are 'HH:MM', got {value!r}") from None

    def day(self, value: object, field: str) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise self.fail(field, f"dates are 'YYYY-MM-DD', got {value!r}") from None


def _opening_hours(check: _Checker, facility_id: str, hours: object) -> list[dict]:
    if not isinstance(hours, dict):
        raise check.fail("opening_hours", "a table of weekdays (mon … sun) is required")
    unknown = [d for d in hours if d not in WEEKDAYS]
    if unknown:
        raise check.fail("opening_hours", f"unknown weekday(s) {', '.join(unknown)}; use {', '.join(WEEKDAYS)}")
    rows = []
    for day, intervals in hours.items():
        field = f"opening_hours.{day}"
        if not isinstance(intervals, list) or not all(isinstance(i, list) and len(i) == 2 for i in intervals):
            raise check.fail(field, 'a list of ["HH:MM", "HH:MM"] intervals is required')
        parsed = sorted((check.clock(a, field), check.clock(b, field)) for a, b in intervals)
        for opens, closes in parsed:
            if closes <= opens:
                raise check.fail(field, f"closes at {closes:%H:%M}, not after it opens at {opens:%H:%M}")
        for (_, closes), (opens, _) in zip(parsed, parsed[1:]):
            if opens < closes:
                raise check.fail(field, f"intervals overlap: one opens at {opens:%H:%M} before the other closes at {closes:%H:%M}")
        weekday = WEEKDAYS.index(day) + 1
        rows += [{"facility_id": facility_id, "weekday": weekday, "opens": o, "closes": c} for o, c in parsed]
    if not rows:
        raise check.fail("opening_hours", "no opening hours: a facility that is never open has no usage to monitor")
    return rows


def _rooms(check: _Checker, facility_id: str, rooms: object) -> list[dict]:
    if not isinstance(rooms, list):
        raise check.fail("room", "a list of [[facility.room]] tables is required")
    rows, seen = [], set()
    for position, room in enumerate(rooms, start=1):
        room_id = check.text(room, "id") if isinstance(room, dict) else None
        if room_id is None:
            raise check.fail(f"room[{position}]", "a table with id, name, capacity, providers is required")
        if room_id in seen:
            raise check.fail(f"room[{position}].id", f"room id {room_id!r} appears twice")
        seen.add(room_id)
        room_check = check.for_room(facility_id, room_id)
        providers = room.get("providers")
        if not isinstance(providers, list) or not providers or not all(isinstance(p, str) and p.strip() for p in providers):
            raise room_check.fail("providers", f"a non-empty list of provider names is required, got {providers!r}")
        name, capacity = room_check.text(room, "name"), room_check.count(room, "capacity")
        rows += [
            {"facility_id": facility_id, "room_id": room_id, "name": name, "capacity": capacity, "provider": p.strip()}
            for p in dict.fromkeys(providers)
        ]
    return rows


def parse_facility_registry(raw: dict, source: str) -> FacilityRegistry:
    """The registry as read from TOML → validated frames; FacilityConfigError names facility and field."""
    entries = raw.get("facility")
    if not isinstance(entries, list) or not entries:
        raise FacilityConfigError(f"{source}: no [[facility]] entries")
    facilities, rooms, hours, closures = [], [], [], []
    for position, entry in enumerate(entries, start=1):
        facility_id = entry.get("id")
        if not isinstance(facility_id, str) or not FACILITY_ID.match(facility_id):
            raise FacilityConfigError(
                f"{source}: facility #{position}, field 'id': lower-case letters, digits and hyphens required, got {facility_id!r}"
            )
        check = _Checker(source, facility_id)
        if any(f["facility_id"] == facility_id for f in facilities):
            raise check.fail("id", "the id is used by an earlier facility")
        facility_type = entry.get("type")
        if facility_type not in FACILITY_TYPES:
            raise check.fail("type", f"{facility_type!r} is not one of {', '.join(FACILITY_TYPES)}")
        area_code = entry.get("area_code")
        if not isinstance(area_code, str) or not AREA_CODE.match(area_code):
            raise check.fail("area_code", f"an AGS of 5 (Kreis) or 8 (Gemeinde) digits as text is required, got {area_code!r}")
        facilities.append(
            {
                "facility_id": facility_id,
                "name": check.text(entry, "name"),
                "provider": check.text(entry, "provider"),
                "type": facility_type,
                "address": check.text(entry, "address"),
                "lat": check.number(entry, "lat", *LAT_RANGE),
                "lon": check.number(entry, "lon", *LON_RANGE),
                "area_code": area_code,
                "capacity": check.count(entry, "capacity"),
            }
        )
        hours += _opening_hours(check, facility_id, entry.get("opening_hours"))
        rooms += _rooms(check, facility_id, entry.get("room", []))
        for period in entry.get("closed", []):
            if not isinstance(period, list) or len(period) != 2:
                raise check.fail("closed", f'periods are ["YYYY-MM-DD", "YYYY-MM-DD"], got {period!r}')
            first, last = check.day(period[0], "closed"), check.day(period[1], "closed")
            if last < first:
                raise check.fail("closed", f"period ends {last} before it starts {first}")
            closures.append({"facility_id": facility_id, "closed_from": first, "closed_to": last})
    return FacilityRegistry(
        facilities=pl.DataFrame(facilities, schema=FACILITY_SCHEMA),
        rooms=pl.DataFrame(rooms, schema=ROOM_SCHEMA),
        opening_hours=pl.DataFrame(hours, schema=OPENING_HOURS_SCHEMA).sort("facility_id", "weekday", "opens"),
        closures=pl.DataFrame(closures, schema=CLOSURE_SCHEMA),
    )


def load_facility_registry(path: str | Path = REGISTRY_PATH) -> FacilityRegistry:
    path = Path(path)
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise FacilityConfigError(f"{path}: not valid TOML: {err}") from None
    return parse_facility_registry(raw, str(path))


def easter_sunday(year: int) -> date:
    """Gregorian Easter (anonymous Gregorian algorithm, Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    weekday_shift = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * weekday_shift) // 451
    month, day = divmod(h + weekday_shift - 7 * m + 114, 31)
    return date(year, month, day + 1)


def nrw_public_holidays(year: int) -> dict[date, str]:
    """Gesetzliche Feiertage in Nordrhein-Westfalen (Feiertagsgesetz NW § 2)."""
    easter = easter_sunday(year)
    movable = {-2: "Karfreitag", 1: "Ostermontag", 39: "Christi Himmelfahrt", 50: "Pfingstmontag", 60: "Fronleichnam"}
    fixed = {
        (1, 1): "Neujahr",
        (5, 1): "Tag der Arbeit",
        (10, 3): "Tag der Deutschen Einheit",
        (11, 1): "Allerheiligen",
        (12, 25): "1. Weihnachtstag",
        (12, 26): "2. Weihnachtstag",
    }
    holidays = {easter + timedelta(days=offset): name for offset, name in movable.items()}
    holidays.update({date(year, m, d): name for (m, d), name in fixed.items()})
    return dict(sorted(holidays.items()))


def opening_calendar(registry: FacilityRegistry, start: date, end: date) -> pl.DataFrame:
    """Every opening interval of every facility on the days start … end (both included).

    Columns: facility_id, date, opens_at, closes_at (UTC instants), hours (Float64). Closed days have no row.
    Hours are elapsed time; they differ from the clock only for an interval across the night of a clock change.
    """
    days = pl.DataFrame({"date": pl.date_range(start, end, "1d", eager=True)}).with_columns(
        weekday=pl.col("date").dt.weekday().cast(pl.Int8)
    )
    holidays = [d for year in range(start.year, end.year + 1) for d in nrw_public_holidays(year)]
    open_days = days.join(registry.opening_hours, on="weekday", how="inner").filter(~pl.col("date").is_in(holidays))
    closed = (
        open_days.select("facility_id", "date")
        .unique()
        .join(registry.closures, on="facility_id", how="inner")
        .filter(pl.col("date").is_between(pl.col("closed_from"), pl.col("closed_to")))
        .select("facility_id", "date")
        .unique()
    )

    def instant(clock: str) -> pl.Expr:
        return (
            pl.col("date")
            .dt.combine(pl.col(clock))
            .dt.replace_time_zone(LOCAL_TIME_ZONE, ambiguous="earliest", non_existent="raise")
            .dt.convert_time_zone("UTC")
        )

    return (
        open_days.join(closed, on=["facility_id", "date"], how="anti")
        .select("facility_id", "date", opens_at=instant("opens"), closes_at=instant("closes"))
        .with_columns(hours=(pl.col("closes_at") - pl.col("opens_at")).dt.total_seconds() / 3600)
        .sort("facility_id", "opens_at")
    )
