"""Supply ratio and target gap, penetration and the outside-district share, computed by hand on small frames."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from conftest import one

from test_demography import population
from transforms.bad_input import BadInputError
from transforms.coverage import (
    FLAG_CAPACITY_UNKNOWN,
    FLAG_HOME_UNKNOWN,
    FLAG_NO_KNOWN_HOME,
    FLAG_NO_TARGET,
    CoverageTarget,
    outside_district_share,
    penetration,
    supply_ratio,
)
from transforms.demography import FLAG_NOT_ALIGNED, FLAG_SOURCE

# the sample's 17 groups around 6–17 and 65+: 6–17 is 6–10, 10–15, 15–18
GROUPS = {(0, 6): 100, (6, 10): 80, (10, 15): 100, (15, 18): 60, (18, 65): 1160, (65, 75): 300, (75, None): 200}
YEAR = (date(2024, 1, 1), date(2024, 12, 31))


def facilities(rows: list[tuple[str, str, str, int | None]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"facility_id": pl.String, "type": pl.String, "area_code": pl.String,
                                      "capacity": pl.Int32}, orient="row")


def checkins(rows: list[tuple[str, str, str, int, int | None, str | None, str]]) -> pl.DataFrame:
    """(facility, pseudonym, age band, age_from, age_to, home district, visit date)."""
    frame = pl.DataFrame(rows, schema={"facility_id": pl.String, "visitor_pseudonym": pl.String, "age_band": pl.String,
                                       "age_from": pl.Int32, "age_to": pl.Int32, "home_district": pl.String,
                                       "visit_date": pl.String}, orient="row")
    return frame.with_columns(
        visit_date=pl.col("visit_date").str.to_date(),
        visited_at=pl.col("visit_date").str.to_datetime(time_zone="UTC"),
        offer=pl.lit("open"),
        source_file=pl.lit("checkins.csv"),
        source_row=pl.int_range(1, pl.len() + 1).cast(pl.Int64),
    )


def test_supply_ratio_and_gap_by_hand():
    people = pl.concat([population(GROUPS, area="05914"), population(GROUPS, area="05954")])
    registry = facilities([("s1", "senior_meeting_point", "05914", 20), ("s2", "senior_meeting_point", "05914", 10),
                           ("y1", "youth_centre", "05954", 12)])
    targets = [CoverageTarget("senior_meeting_point", (65, None), 40.0), CoverageTarget("youth_centre", (6, 18))]
    mart = supply_ratio(registry, people, targets)
    # Hagen: 30 places / 500 aged 65+ × 1,000 = 60; target 40 per 1,000 → 20 places needed, gap 20 − 30 = −10
    assert one(mart, "supply_ratio", area_code="05914", facility_type="senior_meeting_point") == (pytest.approx(60.0), None)
    assert one(mart, "supply_gap", area_code="05914", facility_type="senior_meeting_point") == (pytest.approx(-10.0), None)
    # Ennepe-Ruhr: no senior meeting point → 0 places, 20 missing
    assert one(mart, "supply_ratio", area_code="05954", facility_type="senior_meeting_point") == (0.0, None)
    assert one(mart, "supply_gap", area_code="05954", facility_type="senior_meeting_point") == (pytest.approx(20.0), None)
    # youth: 12 places / 240 aged 6–17 (80 + 100 + 60) × 1,000 = 50; no target configured
    assert one(mart, "supply_ratio", area_code="05954", facility_type="youth_centre") == (pytest.approx(50.0), None)
    assert one(mart, "supply_gap", area_code="05954", facility_type="youth_centre") == (None, FLAG_NO_TARGET)


def test_supply_ratio_flags_bands_secret_cells_and_unknown_capacity():
    coarse = population({(0, 10): 180, (10, 20): 160, (20, 65): 1160, (65, None): 500}, area="05914")
    secret = population({**GROUPS, (75, None): None}, total=2000, area="05954", flags={(75, None): "."})
    registry = facilities([("y1", "youth_centre", "05914", 12), ("s1", "senior_meeting_point", "05962", None)])
    people = pl.concat([coarse, secret, population(GROUPS, area="05962")])
    mart = supply_ratio(registry, people, [CoverageTarget("youth_centre", (6, 18), 30.0),
                                          CoverageTarget("senior_meeting_point", (65, None), 40.0)])
    assert one(mart, "supply_ratio", area_code="05914", facility_type="youth_centre") == (None, FLAG_NOT_ALIGNED)
    assert one(mart, "supply_ratio", area_code="05954", facility_type="senior_meeting_point") == (None, FLAG_SOURCE)
    assert one(mart, "supply_gap", area_code="05962", facility_type="senior_meeting_point") == (None, FLAG_CAPACITY_UNKNOWN)
    assert mart.filter(pl.col("flag").is_not_null())["numerator"].null_count() == mart["flag"].is_not_null().sum()


def test_penetration_counts_distinct_visitors_of_the_band():
    people = pl.concat([population(GROUPS, area="05914"), population(GROUPS, area="05954")])
    visits = checkins([
        ("f1", "a", "65+", 65, None, "05914", "2024-03-01"),
        ("f1", "a", "65+", 65, None, "05914", "2024-03-08"),  # same person again
        ("f2", "b", "65+", 65, None, "05914", "2024-04-01"),
        ("f1", "c", "65+", 65, None, "05954", "2024-05-01"),
        ("f1", "d", "18-64", 18, 65, "05954", "2024-05-01"),  # not in the band
        ("f1", "e", "65+", 65, None, None, "2024-05-01"),  # district unknown
        ("f1", "x", "65+", 65, None, "05954", "2023-05-01"),  # outside the period
    ])
    mart = penetration(visits, people, (65, None), YEAR)
    assert one(mart, "penetration_rate", area_code="05914") == (pytest.approx(2 / 500 * 1000), None)
    assert one(mart, "penetration_rate", area_code="05954") == (pytest.approx(1 / 500 * 1000), None)
    unknown = mart.filter(pl.col("area_code").is_null())
    assert unknown["flag"].to_list() == [FLAG_HOME_UNKNOWN] and unknown["numerator"].to_list() == [1.0]
    assert "visitor_pseudonym" not in mart.columns


def test_penetration_flags_visitor_bands_that_straddle_the_target():
    people = population(GROUPS, area="05914")
    visits = checkins([("f1", "a", "15-24", 15, 25, "05914", "2024-03-01")])
    assert one(penetration(visits, people, (6, 18), YEAR), "penetration_rate", area_code="05914") == (None, FLAG_NOT_ALIGNED)


def test_outside_district_share_uses_the_latest_home_district():
    registry = facilities([("f1", "youth_centre", "05914", 20), ("f2", "youth_centre", "05954", 10)])
    visits = checkins([
        ("f1", "a", "6-17", 6, 18, "05914", "2024-02-01"),
        ("f1", "b", "6-17", 6, 18, "05914", "2024-02-01"),
        ("f1", "b", "6-17", 6, 18, "05954", "2024-06-01"),  # b moved: now from outside
        ("f1", "c", "6-17", 6, 18, "05962", "2024-03-01"),
        ("f1", "d", "6-17", 6, 18, None, "2024-03-01"),  # unknown: left out of both counts
        ("f2", "e", "6-17", 6, 18, None, "2024-03-01"),
    ])
    mart = outside_district_share(visits, registry, YEAR)
    assert one(mart, "outside_district_share", facility_id="f1") == (pytest.approx(2 / 3 * 100), None)
    assert one(mart, "outside_district_share", facility_id="f2") == (None, FLAG_NO_KNOWN_HOME)


def test_check_in_at_an_unregistered_facility_names_file_and_row():
    registry = facilities([("f1", "youth_centre", "05914", 20)])
    visits = checkins([("f1", "a", "6-17", 6, 18, "05914", "2024-02-01"), ("f9", "b", "6-17", 6, 18, "05914", "2024-02-01")])
    with pytest.raises(BadInputError, match=r"checkins.csv, row 2: facility_id 'f9' is not in the facility registry"):
        outside_district_share(visits, registry, YEAR)
