"""Participation rates × population projection: by hand, the base-year invariant, variants, scenarios, flags."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from conftest import one

from test_coverage import YEAR, checkins, facilities
from test_demography import population
from transforms.bad_input import BadInputError
from transforms.demography import FLAG_NOT_ALIGNED
from transforms.projection import FLAG_RATE, participation_rates, project_demand

BASE = {(0, 6): 100, (6, 18): 200, (18, 65): 1200, (65, None): 500}
VISITS = checkins([
    ("f1", "a", "6-17", 6, 18, "05914", "2024-03-01"),
    ("f1", "b", "6-17", 6, 18, "05914", "2024-03-01"),
    ("f1", "c", "65+", 65, None, "05914", "2024-03-02"),
    ("f1", "c", "65+", 65, None, "05914", "2024-04-02"),
    ("f1", "d", "65+", 65, None, "05914", "2024-04-02"),
    ("f1", "e", "65+", 65, None, "05914", "2024-04-02"),
    ("f1", "z", "65+", 65, None, None, "2024-04-02"),
])
REGISTRY = facilities([("f1", "community_centre", "05914", 2)])


def projection(rows: list[tuple[int, str, int, int | None, int]], area: str = "05914") -> pl.DataFrame:
    """(year, variant, age_from, age_to, value)."""
    return pl.DataFrame(rows, schema={"year": pl.Int32, "variant": pl.String, "age_from": pl.Int32, "age_to": pl.Int32,
                                      "value": pl.Int64}, orient="row").with_columns(area_code=pl.lit(area))


def base_as_projection(years: list[int], variants=("low", "medium", "high"), factor: dict | None = None) -> pl.DataFrame:
    factor = factor or {}
    rows = [(y, v, lo, hi, round(n * factor.get((y, v, lo), 1))) for y in years for v in variants for (lo, hi), n in BASE.items()]
    return projection(rows)


def rates() -> pl.DataFrame:
    return participation_rates(VISITS, population(BASE, area="05914", on=date(2023, 12, 31)), YEAR)


def test_participation_rates_by_hand():
    r = rates()
    assert one(r, "participation_rate", area_code="05914", band="6-17") == (pytest.approx(2 / 200 * 1000), None)
    assert one(r, "participation_rate", area_code="05914", band="65+") == (pytest.approx(3 / 500 * 1000), None)
    assert r.filter(pl.col("area_code").is_null())["numerator"].to_list() == [1.0]  # reported, not projectable


def test_projection_equals_the_base_at_the_base_year():
    mart = project_demand(rates(), base_as_projection([2024]), REGISTRY, base_year=2024, visitors_per_place=2.5)
    for variant in ("low", "medium", "high"):
        assert one(mart, "projected_visitors", variant=variant) == (pytest.approx(5.0), None)  # a, b, c, d, e
        assert one(mart, "required_capacity", variant=variant) == (pytest.approx(2.0), None)
        assert one(mart, "capacity_gap", variant=variant) == (pytest.approx(0.0), None)


def test_variants_and_rate_scenario_by_hand():
    # 2034, high variant: 65+ grows to 800 → 6 per 1,000 × 800 = 4.8, 6–17 stays 200 → 2; total 6.8
    proj = base_as_projection([2024, 2034], factor={(2034, "high", 65): 1.6})
    mart = project_demand(rates(), proj, REGISTRY, base_year=2024, visitors_per_place=2.0,
                          scenarios={"constant_rates": 0.0, "rising": 0.02})
    assert one(mart, "projected_visitors", year=2034, variant="high", scenario="constant_rates") == (pytest.approx(6.8), None)
    assert one(mart, "projected_visitors", year=2034, variant="medium", scenario="constant_rates") == (pytest.approx(5.0), None)
    assert one(mart, "projected_visitors", year=2034, variant="high", scenario="rising") == (pytest.approx(6.8 * 1.02**10), None)
    assert one(mart, "projected_visitors", year=2024, variant="high", scenario="rising") == (pytest.approx(5.0), None)
    # required 6.8 / 2 = 3.4 places against 2 → 1.4 missing
    assert one(mart, "capacity_gap", year=2034, variant="high", scenario="constant_rates") == (pytest.approx(1.4), None)


def test_projected_groups_that_do_not_form_a_band_are_flagged():
    coarse = projection([(2030, "medium", 0, 10, 150), (2030, "medium", 10, 65, 1350), (2030, "medium", 65, None, 500)])
    mart = project_demand(rates(), coarse, REGISTRY, base_year=2024, visitors_per_place=2.0)
    assert one(mart, "projected_visitors") == (None, FLAG_NOT_ALIGNED)
    assert mart["value"].null_count() == mart.height


def test_a_flagged_rate_flags_the_projection():
    secret = population({**BASE, (6, 18): None}, total=2000, area="05914", on=date(2023, 12, 31), flags={(6, 18): "."})
    flagged = participation_rates(VISITS, secret, YEAR)
    mart = project_demand(flagged, base_as_projection([2024]), REGISTRY, base_year=2024, visitors_per_place=2.0)
    assert one(mart, "projected_visitors", variant="medium") == (None, FLAG_RATE)


def test_bad_projection_rows_name_file_and_row():
    good = base_as_projection([2030])
    with pytest.raises(BadInputError, match=r"vb.csv, row 1: variant 'very high' is not one of low, medium, high"):
        project_demand(rates(), good.with_columns(variant=pl.lit("very high")), REGISTRY, 2024, 2.0, file="vb.csv")
    with pytest.raises(BadInputError, match=r"vb.csv, row 13: area 05914, year 2030, variant low, age 0 appears more than once"):
        project_demand(rates(), pl.concat([good, good.head(1)]), REGISTRY, 2024, 2.0, file="vb.csv")
    with pytest.raises(BadInputError, match="missing column"):
        project_demand(rates(), good.drop("variant"), REGISTRY, 2024, 2.0, file="vb.csv")
