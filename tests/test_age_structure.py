"""Age structure: shares, mean and median age, change over N years, net migration; by hand and with flags."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from conftest import GENESIS_2018, one
from test_demography import SMALL, population
from transforms.age_structure import (
    FLAG_MEDIAN_OPEN,
    FLAG_NO_MIGRATION,
    FLAG_OPEN_GROUP_MEAN,
    band_shares,
    mean_and_median_age,
    net_migration_rate,
    parse_band,
    population_change_over,
)
from transforms.bad_input import BadInputError
from transforms.demography import FLAG_MISSING, FLAG_NOT_ALIGNED, FLAG_SOURCE, FLAG_ZERO
from transforms.genesis_csv import parse_genesis_csv


def test_band_labels():
    assert parse_band("65+") == (65, None)
    assert parse_band("6-17") == (6, 18)
    with pytest.raises(ValueError, match="65 plus"):
        parse_band("65 plus")


def test_share_65_plus_by_hand():
    # 65–79: 250, 80+: 50 of 1,000 → 30 %
    assert one(band_shares(population(SMALL)), "share_65_plus") == (pytest.approx(30.0), None)


def test_share_65_plus_flags():
    groups = {(0, 20): 200, (20, 60): 400, (60, 70): 150, (70, None): 250}  # no group starts at 65
    assert one(band_shares(population(groups)), "share_65_plus") == (None, FLAG_NOT_ALIGNED)
    secret = population({**SMALL, (80, None): None}, total=1000, flags={(80, None): "."})
    assert one(band_shares(secret), "share_65_plus") == (None, FLAG_SOURCE)
    empty = population({(0, 65): 0, (65, None): 0}, total=0)
    assert one(band_shares(empty), "share_65_plus") == (None, FLAG_ZERO)


def test_mean_and_median_age_by_hand():
    # mean = (200×10 + 500×42.5 + 250×72.5 + 50×85) / 1,000 = 45.625 with the 80+ group at 85
    # median: 200 persons below 20, the 500th person is 300 into the 20–65 group of 500 → 20 + 300/500 × 45 = 47
    ages = mean_and_median_age(population(SMALL), {80: 85.0})
    assert one(ages, "mean_age") == (pytest.approx(45.625), None)
    assert one(ages, "median_age") == (pytest.approx(47.0), None)


def test_mean_and_median_age_do_not_depend_on_row_order():
    two_areas = pl.concat([population(SMALL), population(SMALL).with_columns(area_code=pl.lit("05913"))])
    ordered = mean_and_median_age(two_areas, {80: 85.0}).sort(pl.all())
    for seed in range(3):
        shuffled = two_areas.sample(fraction=1.0, shuffle=True, seed=seed)
        assert mean_and_median_age(shuffled, {80: 85.0}).sort(pl.all()).equals(ordered)


def test_single_year_groups_give_the_exact_mean_and_median():
    # one person each aged 0, 1, 2, 3 (completed years) → mean age 2.0 (1.5 + 0.5 convention), median 2.0
    groups = {(a, a + 1): 1 for a in range(4)} | {(4, None): 0}
    ages = mean_and_median_age(population(groups), {4: 4.5})
    assert one(ages, "mean_age") == (pytest.approx(2.0), None)
    assert one(ages, "median_age") == (pytest.approx(2.0), None)


def test_open_group_needs_a_configured_mean_and_median_in_it_is_flagged():
    ages = mean_and_median_age(population(SMALL), {})
    assert one(ages, "mean_age") == (None, FLAG_OPEN_GROUP_MEAN)
    assert one(ages, "median_age") == (pytest.approx(47.0), None)  # the median does not need it
    old = mean_and_median_age(population({(0, 65): 100, (65, None): 300}), {65: 75.0})
    assert one(old, "median_age") == (None, FLAG_MEDIAN_OPEN)
    assert one(old, "mean_age") == (pytest.approx((100 * 32.5 + 300 * 75) / 400), None)


def test_missing_group_and_secret_cell_flag_mean_and_median():
    gap = mean_and_median_age(population({(0, 20): 200, (65, None): 300}, total=900), {65: 75.0})
    assert one(gap, "mean_age") == (None, FLAG_NOT_ALIGNED)
    secret = population({**SMALL, (0, 20): None}, total=1000, flags={(0, 20): "."})
    ages = mean_and_median_age(secret, {80: 85.0})
    assert one(ages, "mean_age") == (None, FLAG_SOURCE)
    assert one(ages, "median_age") == (None, FLAG_SOURCE)


def test_median_age_of_the_sample_is_plausible():
    real = parse_genesis_csv(GENESIS_2018.read_bytes(), GENESIS_2018.name)
    ages = mean_and_median_age(real.filter(pl.col("area_code") == "05914"), {75: 82.5})
    median, flag = one(ages, "median_age", sex="total")
    mean, _ = one(ages, "mean_age", sex="total")
    # Hagen 2018 from the 17 groups with 75+ at 82.5 years: mean 44.6, median 46.2 (an old Ruhr city, above
    # the German mean of about 44.5); a broken interpolation would land far outside these bounds
    assert flag is None and 42 < median < 48 and 43.5 < mean < 45.5


def test_population_change_over_five_years():
    mart = population_change_over(
        pl.concat([population(SMALL, on=date(2015, 12, 31)), population({**SMALL, (0, 20): 150}, on=date(2020, 12, 31))]),
        5,
    )
    assert mart["indicator_id"].to_list() == ["population_change_5y"]
    assert one(mart, "population_change_5y") == (pytest.approx(-5.0), None)  # 950 against 1,000
    assert population_change_over(population(SMALL), 10).height == 0  # no earlier year loaded
    with pytest.raises(KeyError, match="population_change_3y"):
        population_change_over(population(SMALL), 3)  # not in the catalogue


def test_net_migration_per_1000_by_hand_and_flagged_when_absent():
    people = pl.concat([population(SMALL, area="05914"), population(SMALL, area="05954")])
    moves = pl.DataFrame({"area_code": ["05914", "05958"], "year": [2020, 2020], "in_migration": [30, 5],
                          "out_migration": [18, 1]})
    rates = net_migration_rate(people, moves)
    assert one(rates, "net_migration_rate", area_code="05914") == (pytest.approx(12.0), None)  # 12 / 1,000 × 1,000
    assert one(rates, "net_migration_rate", area_code="05954") == (None, FLAG_NO_MIGRATION)
    assert one(rates, "net_migration_rate", area_code="05958") == (None, FLAG_MISSING)  # kept, not dropped


def test_bad_migration_rows_name_file_and_row():
    people = population(SMALL)
    moves = pl.DataFrame({"area_code": ["09999", "09999"], "year": [2020, 2020], "in_migration": [1, 2],
                          "out_migration": [1, 1]})
    with pytest.raises(BadInputError, match=r"wanderung.csv, row 2: area 09999, year 2020 is delivered more than once"):
        net_migration_rate(people, moves, file="wanderung.csv")
    with pytest.raises(BadInputError, match=r"row 2: negative migration count"):
        net_migration_rate(people, moves.with_columns(out_migration=pl.Series([1, -1])), file="w.csv")
    with pytest.raises(BadInputError, match="missing column"):
        net_migration_rate(people, moves.drop("year"))
