"""Usage indicators on tiny hand-made inputs, every value computed by hand in the comments."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from test_facility_registry import minimal
from transforms.catalogue import indicators_of_kind
from transforms.checkin_log import parse_checkin_log
from transforms.facility_registry import parse_facility_registry
from transforms.room_bookings import parse_room_bookings
from transforms.usage_indicators import ROOM_COLUMNS, VISITOR_COLUMNS, room_indicators, visitor_indicators

KEY = b"test-key-0123456789"
# ha-treff: capacity 20, Mondays 09–12 and 13–17 (7 h), Saturdays 10–12 (2 h), closed 15–16 January
REGISTRY = parse_facility_registry(minimal(), "test.toml")
HEADER = "timestamp,facility_id,offer,visitor_ref,age_band,home_district,party_size,duration_minutes\n"


def checkins(lines: str) -> pl.DataFrame:
    return parse_checkin_log((HEADER + lines).encode(), "c.csv", KEY)


WEEK = checkins(
    "2024-01-08T10:00:00+01:00,ha-treff,Treff,card-A,6-17,05914,1,60\n"
    "2024-01-08T14:00:00+01:00,ha-treff,Kurs,card-A,6-17,05914,2,90\n"
    "2024-01-13T10:30:00+01:00,ha-treff,Treff,card-B,75+,,,\n"
)


def value(frame: pl.DataFrame, indicator_id: str, breakdown: str = "total", category: str = "all", period: str = "week") -> dict:
    row = frame.filter(
        (pl.col("indicator_id") == indicator_id) & (pl.col("breakdown") == breakdown)
        & (pl.col("category") == category) & (pl.col("period") == period)
    )
    assert row.height == 1, (indicator_id, breakdown, category, period)
    return row.row(0, named=True)


def test_facility_totals_of_one_week():
    frame = visitor_indicators(WEEK, REGISTRY)
    assert frame.columns == VISITOR_COLUMNS
    assert value(frame, "visits")["value"] == 3
    assert value(frame, "unique_visitors")["value"] == 2
    share = value(frame, "repeat_visitor_share")  # A came twice, B once
    assert (share["numerator"], share["denominator"], share["value"]) == (1, 2, 50.0)
    per_hour = value(frame, "visits_per_opening_hour")  # Monday 7 h + Saturday 2 h
    assert (per_hour["numerator"], per_hour["denominator"]) == (3, 9)
    assert per_hour["value"] == pytest.approx(1 / 3)
    # person-hours 1×1 h + 2×1.5 h + 1×1 h (duration empty: 60 min, party empty: 1) = 5; capacity × hours = 180
    utilisation = value(frame, "capacity_utilisation")
    assert (utilisation["numerator"], utilisation["denominator"]) == (5.0, 180.0)
    assert utilisation["value"] == pytest.approx(5 / 180 * 100)
    assert value(frame, "visits")["period_start"] == date(2024, 1, 8)  # Monday of the ISO week
    assert set(frame.filter(pl.col("breakdown") == "total")["distinct_visitors"]) == {2}


def test_breakdowns_by_offer_age_band_and_district():
    frame = visitor_indicators(WEEK, REGISTRY)
    treff = value(frame, "repeat_visitor_share", "offer", "Treff")  # A and B once each for Treff
    assert (treff["value"], treff["distinct_visitors"]) == (0.0, 2)
    assert value(frame, "visits", "offer", "Kurs")["value"] == 1
    assert value(frame, "repeat_visitor_share", "home_district", "05914")["value"] == 100.0
    assert value(frame, "visits", "home_district", "unknown")["value"] == 1
    assert value(frame, "visits", "age_band", "75+")["distinct_visitors"] == 1
    assert value(frame, "visits_per_opening_hour", "age_band", "6-17")["value"] == pytest.approx(2 / 9)


def test_month_uses_the_days_the_data_covers():
    # the check-ins cover 8–13 January, so January counts the same 9 opening hours, not the whole month
    frame = visitor_indicators(WEEK, REGISTRY)
    month = value(frame, "visits_per_opening_hour", period="month")
    assert (month["period_start"], month["denominator"]) == (date(2024, 1, 1), 9.0)


def test_visits_on_a_closed_day_are_flagged_not_divided():
    closed = checkins("2024-01-16T10:00:00+01:00,ha-treff,Treff,card-A,6-17,,,\n")  # closure period
    frame = visitor_indicators(closed, REGISTRY)
    per_hour = value(frame, "visits_per_opening_hour")
    assert (per_hour["value"], per_hour["flag"], per_hour["denominator"]) == (None, "no_opening_hours", 0.0)
    assert value(frame, "capacity_utilisation")["flag"] == "no_opening_hours"
    assert value(frame, "visits")["value"] == 1


def test_every_visitor_indicator_is_in_the_catalogue():
    frame = visitor_indicators(WEEK, REGISTRY)
    assert set(frame["indicator_id"]) == {i.id for i in indicators_of_kind("usage_visitors")}


BOOKINGS = parse_room_bookings(
    (
        "booking_id,facility_id,room_id,provider,start,end,attendees,purpose\n"
        "b1,ha-treff,saal,AWO,2024-01-08T08:00:00+01:00,2024-01-08T10:00:00+01:00,,\n"
        "b2,ha-treff,saal,AWO,2024-01-08T09:30:00+01:00,2024-01-08T11:00:00+01:00,,\n"
        "b3,ha-treff,saal,Stadt Hagen,2024-01-08T10:30:00+01:00,2024-01-08T14:00:00+01:00,,\n"
    ).encode(),
    "b.csv",
)


def room_value(frame: pl.DataFrame, indicator_id: str, provider: str, period: str = "week") -> dict:
    row = frame.filter((pl.col("indicator_id") == indicator_id) & (pl.col("provider") == provider) & (pl.col("period") == period))
    assert row.height == 1
    return row.row(0, named=True)


def test_booked_hours_merge_a_providers_own_overlaps():
    frame = room_indicators(BOOKINGS, REGISTRY)
    assert frame.columns == ROOM_COLUMNS
    assert room_value(frame, "usage_room_booked_hours", "AWO")["value"] == 3.0  # 08:00–10:00 ∪ 09:30–11:00
    assert room_value(frame, "usage_room_booked_hours", "Stadt Hagen")["value"] == 3.5
    assert frame["distinct_visitors"].is_null().all()


def test_idle_hours_are_open_hours_without_any_booking():
    # open 09–12 and 13–17 (7 h); booked by anyone 08:00–14:00, of which 09–12 and 13–14 (4 h) are open hours
    idle = room_value(room_indicators(BOOKINGS, REGISTRY), "usage_room_idle_hours", "all", "month")
    assert (idle["value"], idle["numerator"], idle["denominator"]) == (3.0, 3.0, 7.0)


def test_booking_across_midnight_is_split_by_day():
    night = parse_room_bookings(
        b"booking_id,facility_id,room_id,provider,start,end\n"
        b"b1,ha-treff,saal,AWO,2024-01-07T22:00:00+01:00,2024-01-08T10:00:00+01:00\n",
        "b.csv",
    )
    frame = room_indicators(night, REGISTRY)
    weeks = frame.filter((pl.col("indicator_id") == "usage_room_booked_hours") & (pl.col("period") == "week")).sort("period_start")
    assert weeks.select("period_start", "value").rows() == [(date(2024, 1, 1), 2.0), (date(2024, 1, 8), 10.0)]
    idle = room_value(frame, "usage_room_idle_hours", "all", "month")
    assert (idle["numerator"], idle["denominator"]) == (6.0, 7.0)  # 09–10 booked on Monday
