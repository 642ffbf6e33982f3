"""Parser for room bookings delivered by providers (CSV with header): one row per booking of a room.

Same reader as the check-in log, so the same file-level rules (UTF-8, complete last line, known columns, one field
per column; JSON Lines with the same keys is read too) and the same timestamp contract: start and end carry an explicit UTC offset. Row-level problems stay in the frame,
with the text as delivered, for the Great Expectations suite to quarantine.
"""

from __future__ import annotations

import polars as pl

from transforms.checkin_log import (
    blank_to_null,
    mark_repeats,
    parse_timestamp,
    read_log,
    whole_number,
)

REQUIRED_COLUMNS = ["booking_id", "facility_id", "room_id", "provider", "start", "end"]
OPTIONAL_COLUMNS = ["attendees", "purpose"]

BOOKING_SCHEMA: dict[str, pl.DataType] = {
    "booking_id": pl.String,
    "facility_id": pl.String,
    "room_id": pl.String,
    "provider": pl.String,
    "starts_at": pl.Datetime("us", "UTC"),
    "ends_at": pl.Datetime("us", "UTC"),
    "attendees": pl.Int32,
    "purpose": pl.String,
    "source_file": pl.String,
    "source_row": pl.Int64,
    # for validation only; the loader does not keep them
    "starts_at_text": pl.String,
    "ends_at_text": pl.String,
    "attendees_text": pl.String,
    "booked_minutes": pl.Int64,  # end − start; must be positive
    "room_key": pl.String,  # facility_id|room_id, checked against the registry
    "room_provider_key": pl.String,  # facility_id|room_id|provider, checked against who may use the room
    "duplicate_of_row": pl.Int64,  # earlier row with the same booking id
}


def parse_room_bookings(data: bytes, file: str) -> pl.DataFrame:
    """Bytes of a booking CSV → BOOKINGS (see BOOKING_SCHEMA)."""
    raw = read_log(data, file, REQUIRED_COLUMNS, OPTIONAL_COLUMNS)
    trimmed = raw.with_columns(
        [blank_to_null(pl.col(c)).alias(c) for c in ["booking_id", "facility_id", "room_id", "provider", "purpose"]]
    )
    parsed = trimmed.with_columns(
        starts_at_text=pl.col("start"),
        ends_at_text=pl.col("end"),
        starts_at=parse_timestamp(pl.col("start")),
        ends_at=parse_timestamp(pl.col("end")),
        attendees_text=blank_to_null(pl.col("attendees")),
        source_file=pl.lit(file),
        room_key=pl.concat_str("facility_id", "room_id", separator="|"),
        room_provider_key=pl.concat_str("facility_id", "room_id", "provider", separator="|"),
    ).with_columns(
        attendees=whole_number(pl.col("attendees_text")),
        booked_minutes=(pl.col("ends_at") - pl.col("starts_at")).dt.total_minutes(),
    )
    return mark_repeats(parsed, ["booking_id"]).select(
        [pl.col(name).cast(dtype, strict=False) for name, dtype in BOOKING_SCHEMA.items()]
    ).sort("source_row")
