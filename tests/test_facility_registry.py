"""The facility registry: the sample config loads, every wrong field is named, the opening calendar is right."""

from __future__ import annotations

import tomllib
from datetime import date, datetime, time, timezone

import polars as pl
import pytest

from transforms.facility_registry import (
    FACILITY_TYPES,
    REGISTRY_PATH,
    FacilityConfigError,
    easter_sunday,
    load_facility_registry,
    nrw_public_holidays,
    opening_calendar,
    parse_facility_registry,
)

SAMPLE_KREISE = {"05914", "05954", "05562", "05913", "05911", "05958", "05962"}


def minimal(**changes) -> dict:
    facility = {
        "id": "ha-treff",
        "name": "Treff",
        "type": "buergertreff",
        "provider": "Stadt Hagen",
        "address": "Weg 1, 58089 Hagen",
        "area_code": "05914",
        "lat": 51.35,
        "lon": 7.47,
        "capacity": 20,
        "opening_hours": {"mon": [["09:00", "12:00"], ["13:00", "17:00"]], "sat": [["10:00", "12:00"]]},
        "room": [{"id": "saal", "name": "Saal", "capacity": 20, "providers": ["Stadt Hagen", "AWO"]}],
        "closed": [["2024-01-15", "2024-01-16"]],
    }
    facility.update(changes)
    return {"facility": [facility]}


def test_sample_registry_has_the_facilities_the_sample_needs():
    registry = load_facility_registry()
    facilities = registry.facilities
    assert 6 <= facilities.height <= 8
    assert set(facilities["area_code"]) <= SAMPLE_KREISE
    assert {"repair_cafe", "senior_meeting_point", "youth_centre", "tutoring", "integration_centre"} <= set(facilities["type"])
    assert facilities["provider"].n_unique() >= 5
    shared = registry.rooms.group_by("facility_id", "room_id").len().filter(pl.col("len") > 1)
    assert shared.height >= 3  # rooms used by more than one provider
    assert registry.opening_hours["weekday"].is_between(1, 7).all()


def test_frames_of_a_small_registry():
    registry = parse_facility_registry(minimal(), "test.toml")
    assert registry.facilities.row(0, named=True)["capacity"] == 20
    assert registry.rooms.select("room_id", "provider").rows() == [("saal", "Stadt Hagen"), ("saal", "AWO")]
    assert registry.opening_hours.select("weekday", "opens", "closes").rows() == [
        (1, time(9), time(12)), (1, time(13), time(17)), (6, time(10), time(12))
    ]
    assert registry.closures.rows() == [("ha-treff", date(2024, 1, 15), date(2024, 1, 16))]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"type": "kiosk"}, "facility 'ha-treff', field 'type': 'kiosk' is not one of"),
        ({"capacity": 0}, "field 'capacity': a whole number of persons ≥ 1 is required, got 0"),
        ({"lat": 7.47, "lon": 51.35}, "field 'lat': a number between 47.2 and 55.1"),
        ({"area_code": 5914}, "field 'area_code'"),
        ({"name": ""}, "field 'name': a non-empty text is required"),
        ({"opening_hours": {"mon": [["17:00", "09:00"]]}}, "field 'opening_hours.mon': closes at 09:00, not after it opens at 17:00"),
        ({"opening_hours": {"mon": [["9 Uhr", "17:00"]]}}, "field 'opening_hours.mon': times are 'HH:MM', got '9 Uhr'"),
        ({"opening_hours": {"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}}, "intervals overlap"),
        ({"opening_hours": {"montag": [["09:00", "13:00"]]}}, "unknown weekday(s) montag"),
        ({"opening_hours": {}}, "no opening hours"),
        ({"room": [{"id": "saal", "name": "Saal", "capacity": 20, "providers": []}]},
         "facility 'ha-treff, room saal', field 'providers': a non-empty list"),
        ({"room": [{"id": "saal", "name": "A", "capacity": 2, "providers": ["x"]},
                   {"id": "saal", "name": "B", "capacity": 2, "providers": ["x"]}]}, "room id 'saal' appears twice"),
        ({"closed": [["2024-02-01", "2024-01-01"]]}, "field 'closed': period ends 2024-01-01 before it starts 2024-02-01"),
        ({"id": "Ha Treff"}, "facility #1, field 'id': lower-case letters"),
    ],
)
def test_wrong_fields_are_named(changes, message):
    with pytest.raises(FacilityConfigError) as err:
        parse_facility_registry(minimal(**changes), "test.toml")
    assert str(err.value).startswith("test.toml: facility")
    assert message in str(err.value)


def test_duplicate_facility_ids_are_refused():
    twice = {"facility": minimal()["facility"] * 2}
    with pytest.raises(FacilityConfigError, match="facility 'ha-treff', field 'id': the id is used by an earlier facility"):
        parse_facility_registry(twice, "test.toml")


def test_sample_file_is_valid_toml_with_known_types():
    with REGISTRY_PATH.open("rb") as fh:
        raw = tomllib.load(fh)
    assert {f["type"] for f in raw["facility"]} <= set(FACILITY_TYPES)


def test_nrw_public_holidays():
    assert easter_sunday(2023) == date(2023, 4, 9)
    assert easter_sunday(2024) == date(2024, 3, 31)
    holidays = nrw_public_holidays(2024)
    assert holidays[date(2024, 3, 29)] == "Karfreitag"
    assert holidays[date(2024, 5, 30)] == "Fronleichnam"  # a holiday in NRW, not in every Land
    assert holidays[date(2024, 11, 1)] == "Allerheiligen"
    assert len(holidays) == 11


def test_opening_calendar_skips_closed_weekdays_closures_and_holidays():
    registry = parse_facility_registry(minimal(), "test.toml")
    calendar = opening_calendar(registry, date(2024, 1, 1), date(2024, 1, 21))
    # Mondays 1 (Neujahr), 8, 15 (closure); Saturdays 6, 13, 20
    assert sorted(set(calendar["date"])) == [date(2024, 1, 6), date(2024, 1, 8), date(2024, 1, 13), date(2024, 1, 20)]
    monday = calendar.filter(pl.col("date") == date(2024, 1, 8))
    assert monday["hours"].to_list() == [3.0, 4.0]
    assert monday["opens_at"][0] == datetime(2024, 1, 8, 8, 0, tzinfo=timezone.utc)  # 09:00 CET
    assert calendar["hours"].sum() == 7.0 + 3 * 2.0


def test_opening_calendar_in_summer_time():
    registry = parse_facility_registry(minimal(), "test.toml")
    calendar = opening_calendar(registry, date(2024, 7, 1), date(2024, 7, 1))
    assert calendar["opens_at"][0] == datetime(2024, 7, 1, 7, 0, tzinfo=timezone.utc)  # 09:00 CEST
