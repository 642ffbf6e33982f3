"""The GENESIS flat file (ffcsv) of the REST interface, on an excerpt of a real recorded response."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from conftest import FIXTURES
from transforms.bad_input import BadInputError
from transforms.genesis_ffcsv import parse_genesis_ffcsv

FLAT = FIXTURES / "genesis" / "12411-01-01-4_flat_excerpt.csv"


@pytest.fixture(scope="module")
def population() -> pl.DataFrame:
    return parse_genesis_ffcsv(FLAT.read_bytes(), FLAT.name)


def test_germany_by_sex_adds_up(population):
    germany = dict(population.filter(pl.col("area_code") == "DG").select("sex", "value").rows())
    assert germany == {"male": 41_161_931, "female": 42_294_114, "total": 83_456_045}


def test_codes_dates_levels_and_table(population):
    assert population["reference_date"].unique().to_list() == [date(2023, 12, 31)]
    assert population["table_code"].unique().to_list() == ["12411-01-01-4"]
    levels = dict(population.group_by("area_level").len().rows())
    assert levels["germany"] == 3 and levels["land"] == 48
    assert population.filter(pl.col("area_code") == "032")["area_level"][0] == "regierungsbezirk"
    # without an age variable every row is the total over all ages
    assert population["is_total"].all() and population["age_label"].unique().to_list() == ["Insgesamt"]


def test_special_values_in_the_value_field_become_flags():
    text = FLAT.read_text(encoding="utf-8-sig").replace(";41161931;", ";.;")
    frame = parse_genesis_ffcsv(text.encode(), FLAT.name)
    row = frame.filter(pl.col("area_code") == "DG", pl.col("sex") == "male")
    assert row["value"][0] is None and row["flag"][0] == "."


def test_truncated_body_is_refused():
    data = FLAT.read_bytes()
    with pytest.raises(BadInputError, match="truncated"):
        parse_genesis_ffcsv(data[: len(data) - 40], FLAT.name)


def test_cut_line_is_named():
    lines = FLAT.read_text(encoding="utf-8-sig").split("\n")
    lines[4] = lines[4].rsplit(";", 3)[0]
    with pytest.raises(BadInputError) as info:
        parse_genesis_ffcsv("\n".join(lines).encode(), FLAT.name)
    assert info.value.row == 5 and "expected 17 fields" in info.value.reason


def test_a_service_error_body_is_not_a_table():
    body = b'{"Status": {"Code": 104, "Content": "Es gibt keine Objekte zum angegebenen Selektionskriterium"}}\n'
    with pytest.raises(BadInputError, match="not a GENESIS flat file"):
        parse_genesis_ffcsv(body, "12411-99-99-9.csv")


def test_declared_population_basis_fills_what_the_flat_file_does_not_state(population):
    from transforms.population_frame import with_declared_basis

    rules = ((2011, 2021, "Zensus 2011"), (2022, None, "Zensus 2022"))
    assert population["population_basis"].null_count() == population.height
    declared = with_declared_basis(population, rules)
    assert declared["population_basis"].unique().to_list() == ["Zensus 2022"]  # reference date 31.12.2023
    stated = population.with_columns(population_basis=pl.lit("Zensus 2011"))
    assert with_declared_basis(stated, rules)["population_basis"].unique().to_list() == ["Zensus 2011"]
