"""Room bookings delivered by providers: parsing, and bad input with its reason."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
import pytest

from transforms.bad_input import BadInputError
from transforms.room_bookings import BOOKING_SCHEMA, parse_room_bookings

HEADER = b"booking_id,facility_id,room_id,provider,start,end,attendees,purpose\n"
GOOD = HEADER + (
    b"bk-1,ha-a,saal,AWO Hagen,2024-01-08T10:00:00+01:00,2024-01-08T12:30:00+01:00,12,Sprachkurs\n"
    b'bk-2,ha-a,saal,"Repair Caf\xc3\xa9 Hagen e.V.",2024-10-27T01:00:00+02:00,2024-10-27T03:00:00+01:00,,\n'
)


def test_bookings_follow_the_contract():
    frame = parse_room_bookings(GOOD, "bookings_2024-Q1.csv")
    assert frame.schema == pl.Schema(BOOKING_SCHEMA)
    first, second = frame.rows(named=True)
    assert first["starts_at"] == datetime(2024, 1, 8, 9, 0, tzinfo=timezone.utc)
    assert first["ends_at"] == datetime(2024, 1, 8, 11, 30, tzinfo=timezone.utc)
    assert (first["attendees"], first["purpose"], first["booked_minutes"]) == (12, "Sprachkurs", 150)
    assert (first["room_key"], first["room_provider_key"]) == ("ha-a|saal", "ha-a|saal|AWO Hagen")
    assert second["provider"] == "Repair Café Hagen e.V."
    # 01:00 CEST to 03:00 CET across the autumn clock change is three real hours
    assert second["booked_minutes"] == 180
    assert (second["attendees"], second["purpose"]) == (None, None)
    assert frame["source_row"].to_list() == [1, 2]


def test_row_problems_are_kept_for_validation():
    data = HEADER + (
        b"bk-1,ha-a,saal,AWO,2024-01-08T12:00:00+01:00,2024-01-08T10:00:00+01:00,,\n"  # ends before it starts
        b"bk-2,ha-a,saal,AWO,2024-01-08T10:00:00,2024-01-08T12:00:00+01:00,many,\n"  # no offset, words
        b"bk-1,ha-a,saal,AWO,2024-01-08T12:00:00+01:00,2024-01-08T10:00:00+01:00,,\n"  # id used before
    )
    frame = parse_room_bookings(data, "b.csv")
    assert frame["booked_minutes"].to_list() == [-120, None, -120]
    assert frame["starts_at"].is_null().to_list() == [False, True, False]
    assert frame["attendees_text"].to_list() == [None, "many", None]
    assert frame["duplicate_of_row"].to_list() == [None, None, 1]


@pytest.mark.parametrize(
    ("data", "row", "reason"),
    [
        (GOOD[:-1], 3, "truncated file"),
        (GOOD.replace(b",end,", b",finish,"), 1, "missing column(s) end; unknown column(s) finish"),
        (HEADER + b"bk-1,ha-a,saal,AWO,2024-01-08T10:00:00+01:00\n", 1, "expected 8 comma-separated fields, found 5"),
        (HEADER, None, "header only"),
    ],
    ids=["truncated", "renamed-column", "short-line", "header-only"],
)
def test_unreadable_booking_files_are_refused(data, row, reason):
    with pytest.raises(BadInputError) as err:
        parse_room_bookings(data, "b.csv")
    assert (err.value.file, err.value.row) == ("b.csv", row)
    assert reason in err.value.reason
