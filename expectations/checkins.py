"""What a good row of a check-in log is (parsed and pseudonymised by transforms/checkin_log.py)."""

from __future__ import annotations

from collections.abc import Iterable

import great_expectations.expectations as gxe

from expectations.rules import blocking, warning
from transforms.checkin_log import AGE_BANDS, TIMESTAMP_SHAPE

SUITE_NAME = "checkins"

# AGS of a Kreis (5 digits) or a Gemeinde (8 digits)
DISTRICT_CODE = r"^(?:\d{5}|\d{8})$"


def expectations(known_facility_ids: Iterable[str]) -> list:
    """known_facility_ids: the ids of the facility registry; a check-in at any other id is quarantined."""
    return [
        blocking(
            gxe.ExpectColumnValuesToMatchRegex(column="visited_at_text", regex=TIMESTAMP_SHAPE),
            "timestamp is ISO 8601 with an explicit UTC offset (e.g. 2024-01-08T15:42:00+01:00 or …Z)",
        ),
        blocking(gxe.ExpectColumnValuesToNotBeNull(column="visited_at"), "timestamp is a valid date and time"),
        blocking(
            gxe.ExpectColumnValuesToBeInSet(column="facility_id", value_set=sorted(set(known_facility_ids))),
            "facility id is in the facility registry (config/facilities.toml)",
        ),
        blocking(gxe.ExpectColumnValuesToNotBeNull(column="facility_id"), "facility id present"),
        blocking(gxe.ExpectColumnValuesToNotBeNull(column="offer"), "offer present"),
        blocking(gxe.ExpectColumnValuesToNotBeNull(column="visitor_pseudonym"), "visitor reference present"),
        blocking(
            gxe.ExpectColumnValuesToBeInSet(column="age_band", value_set=list(AGE_BANDS)),
            f"age band is one of {', '.join(AGE_BANDS)}",
        ),
        blocking(gxe.ExpectColumnValuesToNotBeNull(column="age_band"), "age band present"),
        blocking(
            gxe.ExpectColumnValuesToMatchRegex(column="party_size_text", regex=r"^[1-9][0-9]{0,2}$"),
            "party size is a whole number ≥ 1 (or empty)",
        ),
        blocking(
            gxe.ExpectColumnValuesToMatchRegex(column="duration_minutes_text", regex=r"^[0-9]{1,4}$"),
            "duration is a whole number of minutes (or empty)",
        ),
        blocking(
            gxe.ExpectColumnValuesToBeBetween(column="duration_minutes", min_value=0, max_value=1440),
            "duration is between 0 and 1440 minutes",
        ),
        blocking(
            gxe.ExpectColumnValuesToMatchRegex(column="home_district", regex=DISTRICT_CODE),
            "home district is an AGS of a Kreis (5 digits) or Gemeinde (8 digits) (or empty)",
        ),
        blocking(
            gxe.ExpectColumnValuesToBeNull(column="duplicate_of_row"),
            "not a repeat of an earlier row (same facility, time, offer and visitor); the earlier row is loaded",
        ),
        warning(gxe.ExpectColumnValuesToBeBetween(column="party_size", min_value=1, max_value=30), "party size at most 30"),
        warning(gxe.ExpectColumnValuesToNotBeNull(column="home_district"), "home district given"),
    ]
