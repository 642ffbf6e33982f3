"""Demography indicators: values computed by hand, invariants, flags, and figures the offices published."""

from __future__ import annotations

import math
from datetime import date

import polars as pl
import pytest

from conftest import FIXTURES, GENESIS_2018
from transforms.demography import (
    FLAG_NOT_ALIGNED,
    FLAG_SOURCE,
    FLAG_ZERO,
    AgeConvention,
    demography_indicators,
)
from transforms.genesis_csv import parse_genesis_csv
from transforms.population_frame import POPULATION_SCHEMA

REGIONALATLAS = AgeConvention("regionalatlas", "", young=(0, 20), working=(20, 65), old_from=65)
IT_NRW = AgeConvention("it_nrw", "", young=(0, 20), working=(20, 67), old_from=67)
LZG_NRW = AgeConvention("lzg_nrw", "", young=(0, 18), working=(18, 65), old_from=65)


def population(groups: dict[tuple[int, int | None], int | None], total: int | None = None, *, area="09999",
               on=date(2020, 12, 31), flags: dict | None = None) -> pl.DataFrame:
    """A long population table for one area: {(from, to): count}; to=None is the open oldest group."""
    flags = flags or {}
    rows = [
        {"age_label": f"{lo}-{hi}", "age_from": lo, "age_to": hi, "is_total": False, "value": v,
         "flag": flags.get((lo, hi))}
        for (lo, hi), v in groups.items()
    ]
    known = [v for v in groups.values() if v is not None]
    rows.append({"age_label": "Insgesamt", "age_from": 0, "age_to": None, "is_total": True,
                 "value": total if total is not None else sum(known), "flag": None})
    frame = pl.DataFrame(rows).with_columns(
        table_code=pl.lit("T"), area_code=pl.lit(area), area_name=pl.lit(f"Area {area}"), area_level=pl.lit("kreis"),
        reference_date=pl.lit(on), sex=pl.lit("total"), cell=pl.lit(""), population_basis=pl.lit("Zensus 2022"),
        source_file=pl.lit("t.csv"), source_row=pl.lit(1),
    )
    return frame.select([pl.col(c).cast(t) for c, t in POPULATION_SCHEMA.items()])


def value(mart: pl.DataFrame, indicator: str, convention: str | None = "regionalatlas", **where) -> tuple:
    rows = mart.filter(pl.col("indicator_id") == indicator)
    rows = rows.filter(pl.col("convention").is_null() if convention is None else pl.col("convention") == convention)
    for column, wanted in where.items():
        rows = rows.filter(pl.col(column) == wanted)
    assert rows.height == 1, rows
    return rows["value"][0], rows["flag"][0]


# 0–19: 200, 20–64: 500, 65–79: 250, 80+: 50 (total 1,000) → youth 40, old 60, dependency 100, 80+ share 5 %
SMALL = {(0, 20): 200, (20, 65): 500, (65, 80): 250, (80, None): 50}


def test_ratios_by_hand():
    mart = demography_indicators(population(SMALL), (REGIONALATLAS,))
    assert value(mart, "youth_ratio") == (pytest.approx(40.0), None)
    assert value(mart, "old_age_ratio") == (pytest.approx(60.0), None)
    assert value(mart, "dependency_ratio") == (pytest.approx(100.0), None)
    assert value(mart, "share_80_plus") == (pytest.approx(5.0), None)


def test_dependency_is_youth_plus_old_on_the_same_denominator():
    real = parse_genesis_csv(GENESIS_2018.read_bytes(), GENESIS_2018.name)
    mart = demography_indicators(real, (REGIONALATLAS, LZG_NRW)).filter(pl.col("flag").is_null())
    wide = mart.pivot(on="indicator_id", index=["area_code", "sex", "convention"], values="value")
    wide = wide.drop_nulls(["youth_ratio", "old_age_ratio", "dependency_ratio"])
    assert wide.height > 2000
    diff = (wide["youth_ratio"] + wide["old_age_ratio"] - wide["dependency_ratio"]).abs().max()
    assert diff < 1e-9


def test_bands_that_the_age_groups_do_not_tile_are_flagged_not_guessed():
    # groups 65–74 and 75+: neither 67+ (IT.NRW) nor 80+ can be formed
    groups = {(0, 20): 200, (20, 65): 500, (65, 75): 120, (75, None): 80}
    mart = demography_indicators(population(groups), (REGIONALATLAS, IT_NRW))
    assert value(mart, "old_age_ratio", "regionalatlas") == (pytest.approx(40.0), None)
    assert value(mart, "old_age_ratio", "it_nrw") == (None, FLAG_NOT_ALIGNED)
    assert value(mart, "share_80_plus", "regionalatlas") == (None, FLAG_NOT_ALIGNED)


def test_missing_age_group_is_flagged():
    groups = {(0, 20): 200, (65, 80): 150, (80, None): 50}  # 20–64 not delivered
    mart = demography_indicators(population(groups, total=900), (REGIONALATLAS,))
    assert value(mart, "youth_ratio")[0] is None
    assert value(mart, "youth_ratio")[1] is not None
    assert value(mart, "share_80_plus") == (pytest.approx(50 / 900 * 100), None)


def test_secret_cell_gives_a_flagged_missing_value():
    groups = {**SMALL, (80, None): None}
    mart = demography_indicators(population(groups, total=1000, flags={(80, None): "."}), (REGIONALATLAS,))
    assert value(mart, "old_age_ratio") == (None, FLAG_SOURCE)
    assert value(mart, "youth_ratio") == (pytest.approx(40.0), None)
    flagged = mart.filter(pl.col("flag").is_not_null())
    assert flagged["numerator"].null_count() == flagged.height


def test_division_by_zero_is_flagged():
    mart = demography_indicators(population({(0, 20): 3, (20, 65): 0, (65, None): 2}), (REGIONALATLAS,))
    assert value(mart, "old_age_ratio") == (None, FLAG_ZERO)


def test_population_change_needs_the_previous_year():
    one_year = demography_indicators(population(SMALL), (REGIONALATLAS,))
    assert one_year.filter(pl.col("indicator_id") == "population_change").height == 0
    two_years = pl.concat([population(SMALL, on=date(2019, 12, 31)),
                           population({**SMALL, (0, 20): 245}, on=date(2020, 12, 31))])
    mart = demography_indicators(two_years, (REGIONALATLAS,))
    assert value(mart, "population_change", None, year=2020) == (pytest.approx(4.5), None)


def test_it_nrw_hagen_2020_old_age_ratio():
    # IT.NRW, Hagen 31.12.2020: 37,216 aged 67 and over, 113,836 aged 20 to under 67 → old-age ratio 32.7
    hagen = population({(0, 20): 34_000, (20, 67): 113_836, (67, None): 37_216}, area="05914")
    mart = demography_indicators(hagen, (IT_NRW,))
    ratio, flag = value(mart, "old_age_ratio", "it_nrw")
    assert flag is None and round(ratio, 1) == 32.7


def _published_2018() -> dict[tuple[str, str], tuple[float | None, float | None]]:
    """12411-08-01-4-B: Jugendquotient and Altenquotient (Insgesamt, männlich, weiblich) per area, 31.12.2018."""
    published = {}
    lines = (FIXTURES / "official" / "12411-08-01-4-B_2018_excerpt.csv").read_text(encoding="utf-8").splitlines()
    for line in lines[7:]:
        _date, code, _name, *cells = line.split(";")
        numbers = [None if c == "-" else float(c.replace(",", ".")) for c in cells]
        for i, sex in enumerate(("total", "male", "female")):
            published[(code, sex)] = (numbers[i], numbers[3 + i])
    return published


def test_reproduces_the_published_youth_and_old_age_ratios_of_2018():
    real = parse_genesis_csv(GENESIS_2018.read_bytes(), GENESIS_2018.name)
    mart = demography_indicators(real, (REGIONALATLAS,))
    published = _published_2018()
    assert len(published) == 33
    for (code, sex), (youth, old) in published.items():
        ours_youth = value(mart, "youth_ratio", area_code=code, sex=sex)
        ours_old = value(mart, "old_age_ratio", area_code=code, sex=sex)
        if youth is None:  # area dissolved before the reference date: no number on either side
            assert ours_youth[0] is None and ours_old[0] is None
            continue
        assert math.isclose(ours_youth[0], youth, abs_tol=0.05 + 1e-9), (code, sex, ours_youth, youth)
        assert math.isclose(ours_old[0], old, abs_tol=0.05 + 1e-9), (code, sex, ours_old, old)


def test_no_population_loaded_gives_an_empty_mart_not_an_error():
    empty = population(SMALL).clear()
    mart = demography_indicators(empty, (REGIONALATLAS,))
    assert mart.is_empty() and "indicator_id" in mart.columns
