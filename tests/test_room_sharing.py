"""Shared use of rooms: hours, idle capacity, shared rooms and cost keys for one small facility, by hand."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from transforms.bad_input import BadInputError
from transforms.catalogue import indicators_of_kind
from transforms.room_sharing import (
    booking_usage,
    candidate_rooms,
    checked_in_persons,
    idle_by_room,
    room_sharing_indicators,
)

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = date(2024, 3, 4)  # winter time, UTC+1
WEEK = (MONDAY, date(2024, 3, 10))


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A local time in March 2024 as the UTC instant the frames carry."""
    return datetime(2024, 3, day, hour, minute, tzinfo=BERLIN).astimezone(ZoneInfo("UTC"))


# F1 in Hagen: R1 (20 persons, providers A and B), R2 (10 persons, provider A); open Mondays 9–17
ROOMS = pl.DataFrame(
    {"facility_id": ["F1", "F1", "F1"], "room_id": ["R1", "R1", "R2"], "name": ["Saal", "Saal", "Küche"],
     "capacity": [20, 20, 10], "provider": ["A", "B", "A"]},
    schema_overrides={"capacity": pl.Int32},
)
OPENING = pl.DataFrame(
    {"facility_id": ["F1"], "weekday": [1], "opens": [time(9)], "closes": [time(17)]},
    schema_overrides={"weekday": pl.Int8},
)
FACILITIES = pl.DataFrame({"facility_id": ["F1"], "area_code": ["05914"]})


def bookings(rows: list[tuple]) -> pl.DataFrame:
    """rows: (booking_id, room, provider, starts_at, ends_at, attendees)."""
    return pl.DataFrame(
        [
            {"booking_id": b, "facility_id": "F1", "room_id": r, "provider": p, "starts_at": s, "ends_at": e,
             "attendees": a, "purpose": None, "source_file": "bookings.csv", "source_row": i}
            for i, (b, r, p, s, e, a) in enumerate(rows, start=1)
        ],
        schema={"booking_id": pl.String, "facility_id": pl.String, "room_id": pl.String, "provider": pl.String,
                "starts_at": pl.Datetime("us", "UTC"), "ends_at": pl.Datetime("us", "UTC"), "attendees": pl.Int32,
                "purpose": pl.String, "source_file": pl.String, "source_row": pl.Int64},
    )


BOOKINGS = bookings([
    ("b1", "R1", "A", at(4, 9), at(4, 11), 5),  # used: 5 attendees delivered
    ("b2", "R1", "B", at(4, 10), at(4, 12), None),  # overlaps b1; used by the check-ins below
    ("b3", "R2", "A", at(4, 16), at(4, 18), 0),  # nobody came; runs one hour past closing
])
# two check-ins at 10:30, inside b1 and b2 at once: each counts half for each booking
CHECKINS = pl.DataFrame(
    {"facility_id": ["F1", "F1"], "visited_at": [at(4, 10, 30), at(4, 10, 30)], "party_size": [None, 3],
     "visitor_pseudonym": [12, 34], "source_file": ["checkins.csv"] * 2, "source_row": [1, 2]},
    schema_overrides={"visited_at": pl.Datetime("us", "UTC"), "party_size": pl.Int32},
)


def value(mart: pl.DataFrame, indicator_id: str, **where) -> tuple:
    rows = mart.filter(pl.col("indicator_id") == indicator_id)
    for column, wanted in where.items():
        rows = rows.filter(pl.col(column).is_null() if wanted is None else pl.col(column) == wanted)
    assert rows.height == 1, rows
    return rows["value"][0], rows["flag"][0]


@pytest.fixture(scope="module")
def mart() -> pl.DataFrame:
    return room_sharing_indicators(BOOKINGS, checked_in_persons(BOOKINGS, CHECKINS), ROOMS, OPENING, FACILITIES, *WEEK)


def test_persons_come_from_attendees_else_from_check_ins_split_between_simultaneous_bookings():
    usage = booking_usage(BOOKINGS, checked_in_persons(BOOKINGS, CHECKINS), ROOMS, *WEEK).sort("booking_id")
    assert usage["persons"].to_list() == [5.0, 2.0, 0.0]  # b2: (1 + 3) / 2
    assert usage["used"].to_list() == [True, True, False]
    assert usage["hours"].to_list() == [2.0, 2.0, 2.0]
    assert set(usage["week_start"].to_list()) == {MONDAY}


def test_a_booking_over_midnight_counts_the_check_ins_of_both_days():
    night = bookings([("n1", "R1", "A", at(5, 22), at(6, 2), None)])
    checkins = CHECKINS.with_columns(visited_at=pl.Series([at(5, 23), at(6, 1, 30)], dtype=pl.Datetime("us", "UTC")))
    usage = booking_usage(night, checked_in_persons(night, checkins), ROOMS, *WEEK)
    assert (usage["persons"].to_list(), usage["hours"].to_list()) == ([4.0], [4.0])


def test_persons_of_check_ins_read_in_pieces_add_up():
    first, second = CHECKINS.slice(0, 1), CHECKINS.slice(1)
    pieces = pl.concat([checked_in_persons(BOOKINGS, first), checked_in_persons(BOOKINGS, second)])
    summed = pieces.group_by("booking_id").agg(pl.col("checked_in").sum()).sort("booking_id")
    assert summed.equals(checked_in_persons(BOOKINGS, CHECKINS).sort("booking_id"))


def test_booked_used_and_attendee_hours_by_hand(mart):
    assert value(mart, "room_booked_hours", room_id="R2", provider="A") == (2.0, None)
    assert value(mart, "room_used_hours", room_id="R2", provider="A") == (0.0, None)  # a no-show
    assert value(mart, "room_used_hours", room_id="R1", provider="B") == (2.0, None)
    assert value(mart, "room_attendee_hours", room_id="R1", provider="A") == (10.0, None)
    assert value(mart, "room_attendee_hours", room_id="R1", provider="B") == (4.0, None)
    assert mart.filter(pl.col("indicator_id") == "room_used_hours")["area_code"].to_list() == ["05914"] * 3


def test_idle_capacity_counts_overlapping_bookings_once_and_only_within_opening_hours(mart):
    # R1: open 8 h, booked 9–12 (b1 ∪ b2) = 3 h → 5 h × 20; R2: booked 16–17 within hours → 7 h × 10
    idle = idle_by_room(BOOKINGS, ROOMS, OPENING, FACILITIES, *WEEK).sort("room_id")
    assert idle["idle_hours"].to_list() == [5.0, 7.0]
    assert idle["idle_capacity_hours"].to_list() == [100.0, 70.0]
    assert value(mart, "idle_capacity_hours", facility_id="F1") == (170.0, None)
    assert value(mart, "idle_capacity_hours", facility_id=None, area_code="05914") == (170.0, None)
    share, flag = value(mart, "idle_capacity_share", facility_id="F1")
    assert flag is None and share == pytest.approx(170 / 240 * 100)


def test_shared_rooms_and_cost_keys(mart):
    assert value(mart, "shared_room_share", facility_id="F1") == (50.0, None)  # R1 of R1, R2
    assert value(mart, "cost_key_room_hours", provider="A") == (50.0, None)  # 2 used hours each
    key_a, _ = value(mart, "cost_key_attendee_hours", provider="A")
    assert key_a == pytest.approx(10 / 14 * 100)
    for indicator_id in ("cost_key_room_hours", "cost_key_attendee_hours"):
        keys = mart.filter(pl.col("indicator_id") == indicator_id)
        assert keys["value"].sum() == pytest.approx(100.0)
        assert keys["period_start"].to_list() == [MONDAY, MONDAY]


def test_no_use_gives_a_flagged_key_not_a_division_by_zero():
    unused = bookings([("b3", "R2", "A", at(4, 16), at(4, 18), 0)])
    mart = room_sharing_indicators(unused, checked_in_persons(unused, CHECKINS.clear()), ROOMS, OPENING, FACILITIES, *WEEK)
    assert value(mart, "cost_key_room_hours", provider="B") == (None, "no_used_hours")


def test_a_closed_week_is_flagged_and_a_dst_day_has_its_true_length():
    closed = room_sharing_indicators(BOOKINGS, checked_in_persons(BOOKINGS, CHECKINS), ROOMS, OPENING.clear(), FACILITIES, *WEEK)
    assert closed.filter(pl.col("indicator_id") == "idle_capacity_share").height == 0  # no opening → no windows
    # Sunday 31 March 2024, clocks jump from 2:00 to 3:00: open 1:00–4:00 is two hours
    sunday = pl.DataFrame({"facility_id": ["F1"], "weekday": [7], "opens": [time(1)], "closes": [time(4)]},
                          schema_overrides={"weekday": pl.Int8})
    idle = idle_by_room(BOOKINGS, ROOMS, sunday, FACILITIES, date(2024, 3, 25), date(2024, 3, 31))
    assert idle["open_hours"].to_list() == [2.0, 2.0]


def test_candidate_rooms_are_idle_rooms_in_districts_with_a_gap():
    idle = idle_by_room(BOOKINGS, ROOMS, OPENING, FACILITIES, *WEEK)
    gaps = pl.DataFrame({"area_code": ["05914", "05954", "05914"], "year": [2030, 2030, 2035], "gap": [50.0, -10.0, 0.0]})
    found = candidate_rooms(idle, gaps, 2030)
    assert found.select("area_code", "room_id", "idle_capacity_hours_per_week").rows() == [
        ("05914", "R1", 100.0), ("05914", "R2", 70.0)]
    assert candidate_rooms(idle, gaps, 2035).height == 0  # no gap, no candidates


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (("b9", "R1", "A", at(4, 12), at(4, 11), 3), "is not after starts_at"),
        (("b9", "R2", "B", at(4, 12), at(4, 13), 3), "provider B is not among the providers allowed to use room R2"),
        (("b9", "R7", "A", at(4, 12), at(4, 13), 3), "room R7 of facility F1 is not in the facility registry"),
        (("b1", "R1", "A", at(4, 12), at(4, 13), 3), "booking_id b1 appears twice (first in row 1)"),
    ],
)
def test_bookings_that_cannot_be_counted_are_refused_with_file_and_row(bad, reason):
    rows = [("b1", "R1", "A", at(4, 9), at(4, 11), 5), bad]
    with pytest.raises(BadInputError) as err:
        room_sharing_indicators(bookings(rows), checked_in_persons(bookings(rows), CHECKINS), ROOMS, OPENING, FACILITIES, *WEEK)
    assert err.value.file == "bookings.csv" and err.value.row == 2
    assert reason in err.value.reason


def test_every_indicator_is_in_the_catalogue_and_no_pseudonym_leaves(mart):
    assert set(mart["indicator_id"].unique()) == {i.id for i in indicators_of_kind("room_sharing")}
    assert "visitor_pseudonym" not in mart.columns
