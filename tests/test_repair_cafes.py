"""Repair-café indicators per group and month, by hand."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from transforms.repair_cafes import repair_cafe_indicators
from transforms.suppression import SUPPRESSED, suppress_small_counts

ITEMS = pl.DataFrame(
    {
        "group_identifier": ["A"] * 7 + ["B"],
        "event_date": [date(2023, 5, 6)] * 4 + [date(2023, 5, 20)] * 2 + [date(2023, 6, 3), date(2023, 5, 6)],
        "repair_status": ["Fixed", "Fixed", "Repairable", "Unknown", "End of life", "Fixed", "Unknown", "Unknown"],
    }
)


def indicator(mart: pl.DataFrame, name: str, group: str, month: date):
    row = mart.filter(pl.col("indicator_id") == name, pl.col("group_identifier") == group, pl.col("month") == month)
    assert row.height == 1
    return row["value"][0], row["flag"][0]


def test_monthly_values_by_hand():
    mart = repair_cafe_indicators(ITEMS)
    may = date(2023, 5, 1)
    assert indicator(mart, "repair_events", "A", may) == (2, None)
    assert indicator(mart, "repairs", "A", may) == (6, None)
    assert indicator(mart, "repairs_per_event", "A", may) == (3, None)
    # 3 fixed of 5 with known outcome (the Unknown one is left out)
    assert indicator(mart, "fix_rate", "A", may) == (pytest.approx(60.0), None)


def test_only_unknown_outcomes_give_a_flag_not_zero():
    mart = repair_cafe_indicators(ITEMS)
    assert indicator(mart, "fix_rate", "A", date(2023, 6, 1)) == (None, "no_known_outcome")
    assert indicator(mart, "fix_rate", "B", date(2023, 5, 1)) == (None, "no_known_outcome")


def test_small_counts_are_suppressed_for_export():
    mart = repair_cafe_indicators(ITEMS)
    exported = suppress_small_counts(mart, "item_count", 5)
    may_a = exported.filter(pl.col("group_identifier") == "A", pl.col("month") == date(2023, 5, 1))
    assert may_a["flag"].null_count() == 4 and may_a["value"].null_count() == 0
    june_a = exported.filter(pl.col("group_identifier") == "A", pl.col("month") == date(2023, 6, 1))
    assert june_a["flag"].to_list() == [SUPPRESSED] * 4
    assert june_a.select("value", "numerator", "denominator").null_count().row(0) == (4, 4, 4)
    assert "item_count" not in exported.columns


def test_suppression_blanks_every_measure_that_could_reveal_the_value():
    anomalies = pl.DataFrame({"facility_id": ["f", "f"], "weekday": [1, 2], "visits": [3, 40],
                              "baseline_median": [2.0, 38.0], "robust_z": [0.4, 0.9], "distinct_visitors": [3, 40]})
    exported = suppress_small_counts(anomalies, "distinct_visitors", 5)
    assert exported.row(0) == ("f", 1, None, None, None, SUPPRESSED)
    assert exported.row(1) == ("f", 2, 40, 38.0, 0.9, None)


def test_a_single_suppressed_part_takes_the_smallest_other_part_with_it():
    # visits of one facility in one week by age band; the total (20) is published elsewhere
    parts = pl.DataFrame({"facility_id": ["f"] * 4, "breakdown": ["age_band"] * 4,
                          "category": ["6-17", "18-29", "30-49", "65+"], "value": [3.0, 6.0, 5.0, 6.0],
                          "flag": [None] * 4, "distinct_visitors": [3, 6, 5, 6]})
    exported = suppress_small_counts(parts, "distinct_visitors", 5, parts_of=["facility_id", "breakdown"])
    # 6-17 (3 < 5) alone would be 20 − 6 − 5 − 6: the smallest other band (30-49) is suppressed too
    assert exported["flag"].to_list() == [SUPPRESSED, None, SUPPRESSED, None]
    assert exported["value"].to_list() == [None, 6.0, None, 6.0]
    two_small = parts.with_columns(distinct_visitors=pl.Series([3, 4, 5, 6]))
    exported = suppress_small_counts(two_small, "distinct_visitors", 5, parts_of=["facility_id", "breakdown"])
    assert exported["flag"].to_list() == [SUPPRESSED, SUPPRESSED, None, None]  # already two: nothing more to do
