"""City open-data population files declared by a column mapping, on real files of the city of Köln (2012)."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from conftest import FIXTURES
from transforms.bad_input import BadInputError
from transforms.city_population import parse_city_age_label, parse_city_population

STADTTEIL = FIXTURES / "city" / "koeln_2012_altersgruppen_stadtteil_excerpt.csv"
STADTBEZIRK = FIXTURES / "city" / "koeln_2012_altersgruppen_stadtbezirk.csv"

# The mapping as it stands in config/pipeline.toml (docs/sources.md, "City open-data files").
KOELN = {
    "delimiter": ",",
    "table_code": "koeln-einwohner-altersgruppen-stadtteile",
    "area_code": "Nr.",
    "area_name": "Stadtteil",
    "area_prefix": "05315",
    "area_level": "stadtteil",
    "reference_date_value": "2012-12-31",
    "population_basis": "Melderegister Stadt Köln",
    "age_columns": {"Insgesamt": "Einwohner insgesamt"},
    "age_columns_pattern": r"^\d+ - \d+$|u\. älter$",
}
KOELN_BEZIRKE = {**KOELN, "table_code": "koeln-einwohner-altersgruppen-stadtbezirke", "area_name": "Stadtbezirk",
                 "area_level": "stadtbezirk"}

# A long-layout file in the style of Düsseldorf or Bonn (semicolon, Windows-1252, one row per district, date, sex
# and age group). Constructed for the test; the totals are Köln's Altstadt-Süd and Deutz of 2012.
LONG = """Stichtag;Stadtteil-Nr.;Stadtteil;Geschlecht;Altersgruppe;Anzahl
31.12.2012;101;Altstadt-Süd;insgesamt;Insgesamt;27.515
31.12.2012;101;Altstadt-Süd;m;unter 18;1.100
31.12.2012;101;Altstadt-Süd;w;unter 18;*
31.12.2012;101;Altstadt-Süd;m;65+;-
31.12.2012;105;Deutz;insgesamt;Insgesamt;15419
31.12.2012;105;Deutz;w;80 und älter;400
"""
LONG_OPTIONS = {
    "encoding": "cp1252",
    "table_code": "example-long",
    "area_code": "Stadtteil-Nr.",
    "area_name": "Stadtteil",
    "area_prefix": "05315",
    "reference_date": "Stichtag",
    "sex": "Geschlecht",
    "age_group": "Altersgruppe",
    "value": "Anzahl",
    "thousands": ".",
    "special_values": {"*": "."},
}


@pytest.fixture(scope="module")
def stadtteile() -> pl.DataFrame:
    return parse_city_population(STADTTEIL.read_bytes(), STADTTEIL.name, KOELN)


def _value(frame: pl.DataFrame, area_code: str, age_label: str, sex: str = "total") -> int | None:
    return frame.filter(area_code=area_code, age_label=age_label, sex=sex)["value"].item()


def test_real_wide_file_parses_to_the_numbers_in_the_file(stadtteile):
    assert stadtteile.height == 18 * 12  # 18 Stadtteile × (11 age groups + total)
    assert _value(stadtteile, "05315-101", "0 - 2") == 521
    assert _value(stadtteile, "05315-101", "Insgesamt") == 27515
    assert _value(stadtteile, "05315-209", "80 u. älter") == 270  # Weiß
    assert _value(stadtteile, "05315-213", "21 - 34") == 1460  # Meschenich, last line
    row = stadtteile.filter(area_code="05315-209", age_label="80 u. älter").row(0, named=True)
    assert row["area_name"] == "Weiß" and row["source_row"] == 15 and row["source_file"] == STADTTEIL.name
    assert row["cell"] == "270" and row["flag"] is None
    assert stadtteile["reference_date"].unique().to_list() == [date(2012, 12, 31)]
    assert stadtteile["area_level"].unique().to_list() == ["stadtteil"]
    assert stadtteile["sex"].unique().to_list() == ["total"]
    assert stadtteile["population_basis"].unique().to_list() == ["Melderegister Stadt Köln"]


def test_age_columns_get_their_bounds(stadtteile):
    bounds = stadtteile.filter(area_code="05315-101").sort("is_total", "age_from").select(
        "age_label", "age_from", "age_to", "is_total").rows()
    assert bounds[:2] == [("0 - 2", 0, 3, False), ("3 - 5", 3, 6, False)]
    assert bounds[-2:] == [("80 u. älter", 80, None, False), ("Insgesamt", 0, None, True)]
    # the groups tile 0 to open end without gaps: each upper bound is the next lower bound
    groups = bounds[:-1]
    assert all(a[2] == b[1] for a, b in zip(groups, groups[1:]))


def test_age_groups_add_up_to_the_total_in_every_stadtteil(stadtteile):
    sums = (
        stadtteile.group_by("area_code", "is_total").agg(pl.col("value").sum())
        .pivot(on="is_total", index="area_code", values="value")
    )
    assert sums.height == 18 and (sums["true"] == sums["false"]).all()


def test_stadtteile_add_up_to_their_stadtbezirk(stadtteile):
    bezirke = parse_city_population(STADTBEZIRK.read_bytes(), STADTBEZIRK.name, KOELN_BEZIRKE)
    assert bezirke.height == 9 * 12 and _value(bezirke, "05315-9", "Insgesamt") == 146182  # Mülheim
    # Köln numbers its Stadtteile by Stadtbezirk: 101–105 lie in 1 Innenstadt, 201–213 in 2 Rodenkirchen
    from_teile = (
        stadtteile.with_columns(bezirk=pl.lit("05315-") + pl.col("area_code").str.slice(6, 1))
        .group_by("bezirk", "age_label").agg(pl.col("value").sum()).sort("bezirk", "age_label").rows()
    )
    published = (
        bezirke.filter(pl.col("area_code").is_in(["05315-1", "05315-2"]))
        .select("area_code", "age_label", "value").sort("area_code", "age_label").rows()
    )
    assert from_teile == published


def test_xlsx_with_a_title_row_reads_like_the_csv(stadtteile, tmp_path):
    # No real XLSX of a city could be read from the stored repositories (binary), so the real CSV excerpt is
    # written to a workbook the way cities publish them: a title line above the header, numbers as numbers.
    table = pl.read_csv(STADTTEIL, infer_schema=False)
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer)
    sheet = workbook.add_worksheet("Stadtteile 2012")
    sheet.write(0, 0, "Einwohner nach Altersgruppen in den Kölner Stadtteilen am 31.12.2012")
    sheet.write_row(1, 0, table.columns)
    for i, row in enumerate(table.rows(), start=2):
        sheet.write_row(i, 0, [row[0], row[1], *(int(v) for v in row[2:])])
    workbook.close()

    options = {**KOELN, "sheet": "Stadtteile 2012", "header_row": 2}
    from_xlsx = parse_city_population(buffer.getvalue(), "koeln_2012.xlsx", options)
    # one line more above each row: the title line
    expected = stadtteile.with_columns(source_row=pl.col("source_row") + 1, source_file=pl.lit("koeln_2012.xlsx"))
    assert from_xlsx.equals(expected)

    with pytest.raises(BadInputError, match="no sheet 'Tabelle1'; sheets found: Stadtteile 2012"):
        parse_city_population(buffer.getvalue(), "koeln_2012.xlsx", {**options, "sheet": "Tabelle1"})


def test_long_layout_with_sex_special_values_and_thousands():
    frame = parse_city_population(LONG.encode("cp1252"), "long.csv", LONG_OPTIONS)
    rows = {(r["area_code"], r["sex"], r["age_label"]): (r["value"], r["flag"], r["age_from"], r["age_to"], r["source_row"])
            for r in frame.iter_rows(named=True)}
    assert rows == {
        ("05315-101", "total", "Insgesamt"): (27515, None, 0, None, 2),
        ("05315-101", "male", "unter 18"): (1100, None, 0, 18, 3),
        ("05315-101", "female", "unter 18"): (None, ".", 0, 18, 4),  # the city's "*" is the official "."
        ("05315-101", "male", "65+"): (None, "-", 65, None, 5),
        ("05315-105", "total", "Insgesamt"): (15419, None, 0, None, 6),
        ("05315-105", "female", "80 und älter"): (400, None, 80, None, 7),
    }
    assert frame["area_name"].to_list()[0] == "Altstadt-Süd"  # Windows-1252 decoded
    assert frame["reference_date"].unique().to_list() == [date(2012, 12, 31)]
    assert frame["area_level"].unique().to_list() == ["district"]
    assert frame.filter(pl.col("flag").is_not_null())["value"].null_count() == 2


@pytest.mark.parametrize(
    ("label", "bounds"),
    [
        ("0 - 2", (0, 3, False)),
        ("0-5", (0, 6, False)),
        ("6–10", (6, 11, False)),
        ("6 bis 14 Jahre", (6, 15, False)),
        ("0 bis unter 3", (0, 3, False)),
        ("6 bis unter 10 Jahre", (6, 10, False)),
        ("unter 18", (0, 18, False)),
        ("Unter 18 Jahren", (0, 18, False)),
        ("65+", (65, None, False)),
        ("80 u. älter", (80, None, False)),
        ("80 und aelter", (80, None, False)),
        ("75 Jahre und mehr", (75, None, False)),
        ("ab 65 Jahre", (65, None, False)),
        ("Insgesamt", (0, None, True)),
        ("gesamt", (0, None, True)),
    ],
)
def test_city_age_labels(label, bounds):
    assert parse_city_age_label(label) == bounds


@pytest.mark.parametrize("label", ["Kinder", "10 - 5", "über 80", ""])
def test_unknown_or_reversed_age_labels_are_refused(label):
    with pytest.raises(ValueError, match="unknown age-group label"):
        parse_city_age_label(label)


def _refusal(data: bytes, options: dict, file: str = "koeln.csv") -> BadInputError:
    with pytest.raises(BadInputError) as info:
        parse_city_population(data, file, options)
    return info.value


def test_a_mapped_column_that_is_missing_is_named_with_the_columns_found():
    err = _refusal(STADTTEIL.read_bytes(), {**KOELN, "area_name": "Stadtteilname"})
    assert err.row == 1 and "column 'Stadtteilname' (options.area_name) not found" in err.reason
    assert "columns found: 'Nr.', 'Stadtteil', 'Einwohner insgesamt', '0 - 2', '3 - 5'" in err.reason


def test_unknown_age_label_names_the_row():
    data = LONG.replace("80 und älter", "Hochbetagte").encode("cp1252")
    err = _refusal(data, LONG_OPTIONS)
    assert err.row == 7 and "unknown age-group label 'Hochbetagte'" in err.reason


def test_unknown_age_column_names_the_header_line():
    err = _refusal(STADTTEIL.read_bytes(), {**KOELN, "age_columns": {"Hochbetagte": "80 u. älter"}})
    assert err.row == 1 and "unknown age-group label 'Hochbetagte'" in err.reason


def test_unparseable_date_names_the_row():
    err = _refusal(LONG.replace("31.12.2012;105;Deutz;w", "2012-13-31;105;Deutz;w").encode("cp1252"), LONG_OPTIONS)
    assert err.row == 7 and "reference date '2012-13-31' in column 'Stichtag' is not a date" in err.reason


def test_unknown_sex_names_the_row_and_how_to_map_it():
    err = _refusal(LONG.replace(";m;65+", ";d;65+").encode("cp1252"), LONG_OPTIONS)
    assert err.row == 5 and "sex 'd' in column 'Geschlecht' is not known" in err.reason and "sex_values" in err.reason


def test_wrong_encoding_is_refused_with_the_line():
    err = _refusal(LONG.encode("cp1252"), {**LONG_OPTIONS, "encoding": "utf-8"})
    assert err.row == 2 and "not valid UTF-8" in err.reason
    # the other way round would load "Altstadt-SÃ¼d" without a word
    err = _refusal(LONG.encode("utf-8"), LONG_OPTIONS)
    assert "file is UTF-8" in err.reason and 'encoding = "utf-8"' in err.reason


def test_empty_header_only_and_truncated_files_are_refused():
    assert "empty file" in _refusal(b"", KOELN).reason
    assert "empty file" in _refusal(b"\r\n\r\n", KOELN).reason
    header = STADTTEIL.read_bytes().split(b"\r\n")[0] + b"\r\n"
    assert _refusal(header, KOELN).reason == "header only, no data rows"
    data = STADTTEIL.read_bytes()
    assert "truncated" in _refusal(data[:-30], KOELN).reason


def test_a_line_with_missing_fields_is_named():
    lines = STADTTEIL.read_bytes().split(b"\r\n")
    lines[5] = lines[5].rsplit(b",", 2)[0]  # 104 Neustadt-Nord loses its last two age groups
    err = _refusal(b"\r\n".join(lines), KOELN)
    assert err.row == 6 and err.reason == "expected 14 fields, found 12"


def test_a_footer_line_is_not_taken_for_a_district():
    data = STADTTEIL.read_bytes() + "Quelle: Stadt Köln,,,,,,,,,,,,,\r\n".encode()
    err = _refusal(data, KOELN)
    assert err.row == 20 and "district number in column 'Nr.'" in err.reason


def test_an_xlsx_that_is_not_a_workbook_is_refused():
    err = _refusal(STADTTEIL.read_bytes(), KOELN, file="koeln.xlsx")
    assert err.row is None and "not a readable XLSX workbook" in err.reason
    # and a workbook declared as CSV is binary
    assert "NUL byte" in _refusal(b"PK\x03\x04\x00\x00", KOELN).reason


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"area_prefix": "Köln"}, "area_prefix = 'Köln' is not the city's AGS"),
        ({"table_code": None}, 'table_code = "…" is required'),
        ({"age_columns": {}, "age_columns_pattern": None}, "declare either the long layout"),
        ({"age_group": "Alter"}, "declare either the long layout"),
        ({"reference_date": "Stichtag"}, "exactly one of reference_date"),
        ({"reference_date_value": "Ende 2012"}, "reference_date_value = 'Ende 2012' is not a date"),
        ({"special_values": {"*": "0"}}, "must map to an official special value"),
        ({"format": "ods"}, "format = 'ods'"),
        ({"encoding": "klingon"}, "unknown encoding 'klingon'"),
    ],
)
def test_a_wrong_declaration_refuses_the_file_with_the_option_named(change, message):
    options = {k: v for k, v in {**KOELN, **change}.items() if v is not None}
    err = _refusal(STADTTEIL.read_bytes(), options)
    assert err.row is None and err.reason.startswith("source options: ") and message in err.reason


def test_ingest_loads_the_city_file(tmp_path):
    from warehouse.ingest import IngestContext, ingest_file
    from warehouse.migrate import migrate
    from warehouse.publish import connect_build

    ctx = IngestContext(landing=tmp_path / "landing", quarantine=tmp_path / "quarantine",
                        validation=tmp_path / "validation", options=KOELN)
    with connect_build(tmp_path / "w.duckdb") as con:
        migrate(con)
        outcome = ingest_file(con, "r1", "population_koeln_stadtteile", "city_population", Path(STADTTEIL), ctx)
        assert (outcome.status, outcome.rows_loaded, outcome.rows_quarantined) == ("loaded", 216, 0)
        loaded = con.sql("""SELECT area_level, value FROM staging.population
                            WHERE area_code = '05315-101' AND age_label = 'Insgesamt'""").fetchall()
        assert loaded == [("stadtteil", 27515)]
