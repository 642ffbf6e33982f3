"""The classic GENESIS export: the real 2018 Kreis table, and every way a delivery can be broken."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from conftest import GENESIS_2018
from transforms.bad_input import BadInputError
from transforms.genesis_csv import parse_genesis_csv

REAL = GENESIS_2018.read_bytes()


@pytest.fixture(scope="module")
def population() -> pl.DataFrame:
    return parse_genesis_csv(REAL, GENESIS_2018.name)


def test_kreis_totals_sum_to_germanys_official_population(population):
    kreise = population.filter(pl.col("area_level") == "kreis", pl.col("is_total"), pl.col("sex") == "total")
    assert kreise.height == 474
    assert kreise["value"].sum() == 83_019_213


def test_long_table_shape_and_keys(population):
    assert population.height == (474 + 15) * 3 * 18
    hagen = population.filter(pl.col("area_code") == "05914", pl.col("sex") == "male", pl.col("age_label") == "unter 3 Jahre")
    assert hagen.select("area_name", "reference_date", "age_from", "age_to", "is_total", "table_code").row(0) == (
        "Hagen, Kreisfreie Stadt", date(2018, 12, 31), 0, 3, False, "12411-02-03-5-B",
    )
    oldest = population.filter(pl.col("age_label") == "75 Jahre und mehr").select("age_from", "age_to").unique()
    assert oldest.rows() == [(75, None)]
    assert set(population["population_basis"].unique()) == {"Zensus 2011"}


def test_special_values_are_flags_never_zeros(population):
    goettingen_old = population.filter(pl.col("area_code") == "03152")
    assert goettingen_old.height == 54
    assert goettingen_old["flag"].unique().to_list() == ["-"]
    assert goettingen_old["value"].null_count() == 54
    secret = population.filter(pl.col("flag") == ".")
    assert secret.height > 0 and secret["value"].null_count() == secret.height


def test_eight_digit_codes_are_gemeinden_not_kreise(population):
    berlin_mitte = population.filter(pl.col("area_code") == "11001001")
    assert berlin_mitte["area_level"].unique().to_list() == ["gemeinde"]


def test_source_rows_are_file_line_numbers(population):
    flensburg = population.filter(pl.col("area_code") == "01001")
    assert flensburg["source_row"].unique().to_list() == [10]
    assert REAL.decode("latin-1").split("\n")[9].startswith("01001;Flensburg")


def test_utf8_export_reads_like_latin1(population):
    utf8 = parse_genesis_csv(REAL.decode("latin-1").encode("utf-8"), "utf8.csv")
    assert utf8.drop("source_file").equals(population.drop("source_file"))
    assert "Göttingen, Landkreis" in utf8["area_name"].to_list()


def _refused(data: bytes) -> BadInputError:
    with pytest.raises(BadInputError) as info:
        parse_genesis_csv(data, "broken.csv")
    assert info.value.file == "broken.csv"
    return info.value


def test_truncated_file_names_the_last_line():
    cut = REAL[: len(REAL) // 2]
    err = _refused(cut)
    assert "truncated" in err.reason
    assert err.row == len(cut.decode("latin-1").rstrip("\n").split("\n"))


def test_short_line_is_named_with_its_number():
    lines = REAL.decode("latin-1").split("\n")
    lines[11] = ";".join(lines[11].split(";")[:20])
    err = _refused("\n".join(lines).encode("latin-1"))
    assert err.row == 12 and "expected 56 fields" in err.reason


def test_utf16_is_wrong_encoding():
    err = _refused(REAL.decode("latin-1").encode("utf-16"))
    assert "not a text file" in err.reason


def test_empty_file():
    assert "empty file" in _refused(b"").reason


def test_file_that_is_not_a_genesis_export():
    err = _refused(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\n")
    assert err.row == 1 and "not a GENESIS table export" in err.reason
    err = _refused(b"<html><body>Service unavailable</body></html>\n")
    assert "not a GENESIS table export" in err.reason


def test_unknown_age_header_is_refused():
    text = REAL.decode("latin-1").replace("unter 3 Jahre", "bis 3 J.").replace("75 Jahre und mehr", "75+")
    text = text.replace("Jahre", "J.")
    err = _refused(text.encode("latin-1"))
    assert "no header line with age groups" in err.reason and err.row == 7


def test_unparseable_cell_is_kept_for_validation_not_guessed():
    text = REAL.decode("latin-1").replace("01001;Flensburg, Kreisfreie Stadt;2629;", "01001;Flensburg, Kreisfreie Stadt;26x9;")
    frame = parse_genesis_csv(text.encode("latin-1"), "cell.csv")
    row = frame.filter(pl.col("cell") == "26x9")
    assert row.height == 1 and row["value"][0] is None and row["flag"][0] is None
