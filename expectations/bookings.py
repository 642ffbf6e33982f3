"""What a good row of a room-booking delivery is (parsed by transforms/room_bookings.py)."""

from __future__ import annotations

from collections.abc import Iterable

import great_expectations.expectations as gxe
import polars as pl

from expectations.rules import blocking, warning
from transforms.checkin_log import TIMESTAMP_SHAPE

SUITE_NAME = "room_bookings"


def expectations(known_facility_ids: Iterable[str], rooms: pl.DataFrame) -> list:
    """known_facility_ids and rooms (the ROOMS frame of the registry) say which facilities, rooms and providers exist."""
    room_keys = sorted(set(rooms.select(pl.concat_str("facility_id", "room_id", separator="|")).to_series()))
    provider_keys = sorted(set(rooms.select(pl.concat_str("facility_id", "room_id", "provider", separator="|")).to_series()))
    return [
        blocking(gxe.ExpectColumnValuesToNotBeNull(column="booking_id"), "booking id present"),
        blocking(
            gxe.ExpectColumnValuesToBeNull(column="duplicate_of_row"),
            "booking id not used by an earlier row; the earlier row is loaded",
        ),
        blocking(
            gxe.ExpectColumnValuesToBeInSet(column="facility_id", value_set=sorted(set(known_facility_ids))),
            "facility id is in the facility registry (config/facilities.toml)",
        ),
        blocking(gxe.ExpectColumnValuesToNotBeNull(column="room_key"), "facility id and room id present"),
        blocking(
            gxe.ExpectColumnValuesToBeInSet(column="room_key", value_set=room_keys),
            "room is a room of that facility in the registry",
        ),
        blocking(gxe.ExpectColumnValuesToNotBeNull(column="provider"), "provider present"),
        blocking(
            gxe.ExpectColumnValuesToMatchRegex(column="starts_at_text", regex=TIMESTAMP_SHAPE),
            "start is ISO 8601 with an explicit UTC offset",
        ),
        blocking(
            gxe.ExpectColumnValuesToMatchRegex(column="ends_at_text", regex=TIMESTAMP_SHAPE),
            "end is ISO 8601 with an explicit UTC offset",
        ),
        blocking(gxe.ExpectColumnValuesToNotBeNull(column="starts_at"), "start is a valid date and time"),
        blocking(gxe.ExpectColumnValuesToNotBeNull(column="ends_at"), "end is a valid date and time"),
        blocking(
            gxe.ExpectColumnValuesToBeBetween(column="booked_minutes", min_value=1, max_value=1440),
            "booking ends after it starts and lasts at most 24 hours",
        ),
        blocking(
            gxe.ExpectColumnValuesToMatchRegex(column="attendees_text", regex=r"^[0-9]{1,4}$"),
            "attendees is a whole number (or empty)",
        ),
        warning(
            gxe.ExpectColumnValuesToBeInSet(column="room_provider_key", value_set=provider_keys),
            "provider is registered as a user of the room",
        ),
    ]
