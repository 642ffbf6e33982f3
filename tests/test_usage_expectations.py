"""The check-in and booking suites: each bad row is quarantined by the rule that names its problem."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from expectations import bookings, checkins
from expectations.validate import validate_batch
from transforms.checkin_log import parse_checkin_log
from transforms.facility_registry import load_facility_registry
from transforms.room_bookings import parse_room_bookings

KEY = b"test-key-0123456789"
REGISTRY = load_facility_registry()
CAFE, CENTRE = "ha-repaircafe-altenhagen", "ha-stadtteilhaus-wehringhausen"


@pytest.fixture(scope="module")
def gx_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("validation")


def rules_by_row(outcome) -> dict[int, set[str]]:
    return {position: {rule for rule, _ in failures} for position, failures in outcome.failed_rows.items()}


def test_checkin_rows_are_blocked_by_the_rule_that_names_the_problem(gx_root):
    data = (
        "timestamp,facility_id,offer,visitor_ref,age_band,home_district,party_size,duration_minutes\n"
        f"2024-01-10T17:30:00+01:00,{CAFE},Reparatur,card-1,30-49,05914,1,60\n"  # 0 good
        f"2024-01-10T17:30:00,{CAFE},Reparatur,card-2,30-49,,,\n"  # 1 no offset
        f"2024-01-10T17:31:00+01:00,ha-nowhere,Reparatur,card-3,30-49,,,\n"  # 2 unknown facility
        f"2024-01-10T17:32:00+01:00,{CAFE},Reparatur,card-4,99+,,0,2000\n"  # 3 band, party, duration
        f"2024-01-10T17:30:00+01:00,{CAFE},Reparatur,card-1,30-49,05914,1,60\n"  # 4 repeat of 0
        f"2024-01-10T17:33:00+01:00,{CAFE},,,30-49,5914,,\n"  # 5 no offer, no visitor, bad district
    ).encode()
    frame = parse_checkin_log(data, "checkins.csv", KEY)
    outcome = validate_batch(frame, checkins.SUITE_NAME, checkins.expectations(REGISTRY.facility_ids), gx_root, "checkins")
    rules = rules_by_row(outcome)
    assert 0 not in rules
    assert rules[1] == {"timestamp is ISO 8601 with an explicit UTC offset (e.g. 2024-01-08T15:42:00+01:00 or …Z)",
                        "timestamp is a valid date and time"}
    assert rules[2] == {"facility id is in the facility registry (config/facilities.toml)"}
    assert rules[3] == {"age band is one of 0-5, 6-17, 18-29, 30-49, 50-64, 65-74, 75+",
                        "party size is a whole number ≥ 1 (or empty)", "duration is between 0 and 1440 minutes"}
    assert rules[4] == {"not a repeat of an earlier row (same facility, time, offer and visitor); the earlier row is loaded"}
    assert rules[5] == {"offer present", "visitor reference present",
                        "home district is an AGS of a Kreis (5 digits) or Gemeinde (8 digits) (or empty)"}
    warnings = outcome.results.filter(~pl.col("blocking") & ~pl.col("success"))
    assert set(warnings["rule"]) == {"home district given", "party size at most 30"}


def test_booking_rows_are_blocked_by_the_rule_that_names_the_problem(gx_root):
    data = (
        "booking_id,facility_id,room_id,provider,start,end,attendees,purpose\n"
        f"b1,{CENTRE},saal,AWO Hagen,2024-01-08T10:00:00+01:00,2024-01-08T12:00:00+01:00,12,Kurs\n"  # 0 good
        f"b2,{CENTRE},saal,AWO Hagen,2024-01-08T12:00:00+01:00,2024-01-08T11:00:00+01:00,,\n"  # 1 ends first
        f"b1,{CENTRE},saal,AWO Hagen,2024-01-08T10:00:00+01:00,2024-01-08T12:00:00+01:00,12,Kurs\n"  # 2 repeat
        f"b3,{CENTRE},keller,AWO Hagen,2024-01-08T10:00:00+01:00,2024-01-08T12:00:00+01:00,,\n"  # 3 unknown room
        f"b4,{CENTRE},saal,Fremder Verein,2024-01-09T10:00:00+01:00,2024-01-09T12:00:00+01:00,many,\n"  # 4
        f"b5,ha-nowhere,saal,AWO Hagen,2024-01-08T10:00:00+01:00,2024-01-08T12:00:00Z,,\n"  # 5 unknown facility
    ).encode()
    frame = parse_room_bookings(data, "bookings.csv")
    suite = bookings.expectations(REGISTRY.facility_ids, REGISTRY.rooms)
    outcome = validate_batch(frame, bookings.SUITE_NAME, suite, gx_root, "bookings")
    rules = rules_by_row(outcome)
    assert 0 not in rules
    assert rules[1] == {"booking ends after it starts and lasts at most 24 hours"}
    assert rules[2] == {"booking id not used by an earlier row; the earlier row is loaded"}
    assert rules[3] == {"room is a room of that facility in the registry"}
    assert rules[4] == {"attendees is a whole number (or empty)"}  # the unknown provider is only a warning
    assert rules[5] == {"facility id is in the facility registry (config/facilities.toml)",
                        "room is a room of that facility in the registry"}
    warning = outcome.results.filter(pl.col("rule") == "provider is registered as a user of the room").row(0, named=True)
    assert (warning["blocking"], warning["unexpected_count"]) == (False, 3)  # rows 3, 4 and 5


def test_every_failing_row_is_named_not_only_the_examples(gx_root):
    """The suite runs with the BASIC result format (20 examples per rule); the failing blocking rules are rerun to
    list every failing row, so that none of them reaches the warehouse."""
    header = "timestamp,facility_id,offer,visitor_ref,age_band,home_district,party_size,duration_minutes\n"
    rows = [f"2024-01-10T17:{n % 60:02d}:00+01:00,{CAFE if n % 3 else 'ha-nowhere'},Reparatur,card-{n},30-49,05914,1,60\n"
            for n in range(300)]
    frame = parse_checkin_log((header + "".join(rows)).encode(), "checkins.csv", KEY)
    outcome = validate_batch(frame, checkins.SUITE_NAME, checkins.expectations(REGISTRY.facility_ids), gx_root, "many")
    assert set(outcome.failed_rows) == set(range(0, 300, 3))  # 100 rows at an unknown facility
    unknown = outcome.results.filter(pl.col("rule") == "facility id is in the facility registry (config/facilities.toml)")
    assert unknown["unexpected_count"].to_list() == [100]
