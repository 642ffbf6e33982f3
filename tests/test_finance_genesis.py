"""Real municipal debt from GENESIS 71327-01-05-4 as a finance input: the NRW sample file checked against its own
cells, every refusal with its file, row and reason, and the way into staging.finance and the fiscal indicators.

The hand values below are the published cells of data/sample/finance/71327-01-05-4_2023_NRW.csv, in Tsd. EUR
(debt per inhabitant in EUR): per inhabitant; total; non-public Wertpapierschulden, Kredite, Kassenkredite;
public Kredite, Kassenkredite.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl
import pytest

from conftest import ROOT, SAMPLE
from sources.genesis.config import StatisticsConfigError, load_statistics_config
from transforms.bad_input import BadInputError
from transforms.fiscal_stress import FINANCE_SCHEMA, finance_indicators
from transforms.finance_genesis import parse_genesis_municipal_debt

DEBT = SAMPLE / "finance" / "71327-01-05-4_2023_NRW.csv"
NAME = DEBT.name
HAGEN_LINE = "31.12.2023;05914;      Hagen, kreisfreie Stadt;4799;909986;117500;56541;735945;-;-"
HAGEN_ROW = 62  # its line number in the file


@pytest.fixture(scope="module")
def debt() -> pl.DataFrame:
    return parse_genesis_municipal_debt(DEBT.read_bytes(), NAME)


def _text() -> str:
    return DEBT.read_bytes().decode("cp1252")


def _parse(text: str) -> pl.DataFrame:
    return parse_genesis_municipal_debt(text.encode("cp1252"), NAME)


def _row(frame: pl.DataFrame, code: str) -> dict:
    rows = frame.filter(area_code=code)
    assert rows.height == 1
    return rows.row(0, named=True)


# -- the real file ----------------------------------------------------------------------------------------------


def test_the_sample_is_the_service_s_single_byte_encoding_and_parses_to_one_row_per_nrw_kreis(debt, caplog):
    raw = DEBT.read_bytes()
    assert "Märkischer Kreis".encode("cp1252") in raw and "Märkischer Kreis".encode("utf-8") not in raw
    assert debt.schema == pl.Schema(FINANCE_SCHEMA)
    # 62 data lines: DG, Land 05, 5 Regierungsbezirke and the Gemeinde 05334002 are dropped; 54 Kreis codes stay
    assert debt.height == 54 and debt["area_code"].n_unique() == 54
    assert debt["area_code"].str.len_chars().unique().to_list() == [5]
    assert {"05914", "05954", "05562", "05913", "05911", "05958", "05962"} <= set(debt["area_code"])
    assert set(debt["year"]) == {2023} and set(debt["population_basis"]) == {"Zensus 2022"}
    assert _row(debt, "05962")["area_name"] == "Märkischer Kreis"  # as published, without the indentation
    for column in ("tax_revenue", "total_revenue", "social_spending", "total_spending", "interest_paid", "reserves"):
        assert debt[column].null_count() == 54
    assert (debt["input_issue"].str.contains(
        "tax_revenue, total_revenue, social_spending, total_spending, interest_paid: not in table 71327-01-05-4")).all()
    with caplog.at_level(logging.INFO, logger="transforms.finance_genesis"):
        parse_genesis_municipal_debt(DEBT.read_bytes(), NAME)
    assert "8 aggregate or Gemeinde row(s) dropped (1 Deutschland, 1 Gemeinde inside its Kreis row, 1 Land, " \
           "5 Regierungsbezirk / Statistische Region), 54 Kreis row(s) kept" in caplog.text


@pytest.mark.parametrize(
    "code, per_inhabitant, cells, row",
    [
        # Hagen: 4799;909986;117500;56541;735945;-;-  (no debt at the public sector: '-' = 0)
        ("05914", 4799, (909_986, 117_500, 56_541, 735_945, 0, 0), 62),
        # Ennepe-Ruhr-Kreis: 2912;945555;-;375989;529567;-;40000
        ("05954", 2912, (945_555, 0, 375_989, 529_567, 0, 40_000), 65),
        # Kreis Recklinghausen: 3462;2143433;-;972133;1159782;18;11500
        ("05562", 3462, (2_143_433, 0, 972_133, 1_159_782, 18, 11_500), 48),
    ],
)
def test_three_sample_kreise_by_hand(debt, code, per_inhabitant, cells, row):
    total, securities, loans, cash, public_loans, public_cash = cells
    got = _row(debt, code)
    assert got["source_row"] == row and got["source_file"] == NAME
    assert got["debt_long_term"] == (securities + loans + public_loans) * 1000
    assert got["liquiditaetskredite"] == (cash + public_cash) * 1000
    assert got["population"] == round(total * 1000 / per_inhabitant)
    # the published parts add up to the published total within rounding, and so do ours
    assert abs(got["debt_long_term"] + got["liquiditaetskredite"] - total * 1000) <= 1000
    # debt per inhabitant × derived population gives back the total within the rounding of the per-inhabitant cell
    assert abs(per_inhabitant * got["population"] - total * 1000) <= per_inhabitant / 2 + 0.5 * got["population"]


def test_hagen_population_and_kassenkredite_in_numbers(debt):
    hagen = _row(debt, "05914")
    assert hagen["population"] == 189_620  # 909,986,000 € / 4,799 €
    assert hagen["liquiditaetskredite"] == 735_945_000
    assert hagen["debt_long_term"] == 174_041_000


def test_nrw_kreise_add_up_to_the_nrw_row_except_the_higher_municipal_associations(debt):
    # NRW row: 2715;49292021;2100000;27602280;18014880;353253;1221608 (Tsd. EUR)
    nrw_long_term = (2_100_000 + 27_602_280 + 353_253) * 1000
    nrw_cash = (18_014_880 + 1_221_608) * 1000
    rounding = 54 * 500 * 3  # up to half a thousand per published part, three parts per row
    # the Land total includes the debt of Landschaftsverbände and Regionalverband Ruhr (footnote: "Landessummen
    # enthalten … auch die Schulden kommunal bestimmter Landes- oder Bezirksverbände"), which no Kreis row holds
    assert nrw_long_term - debt["debt_long_term"].sum() == pytest.approx(628_118_000, abs=rounding)
    assert nrw_cash - debt["liquiditaetskredite"].sum() == pytest.approx(63_388_000, abs=rounding)
    # the population derived per Kreis adds up to the one derived from the NRW row (49,292,021,000 € / 2,715 €)
    # within the per-inhabitant rounding; the dissolved 05354 has none
    assert debt["population"].sum() == pytest.approx(49_292_021_000 / 2715, rel=0.002)


def test_the_dissolved_kreis_aachen_with_only_dashes_is_kept_without_population(debt):
    aachen = _row(debt, "05354")
    assert (aachen["population"], aachen["debt_long_term"], aachen["liquiditaetskredite"]) == (None, 0.0, 0.0)
    assert aachen["input_issue"].startswith("every value is '-': an area code without a core budget")


def test_the_same_table_in_utf8_gives_the_same_rows(debt):
    assert parse_genesis_municipal_debt(_text().encode("utf-8"), NAME).equals(debt)


# -- special values and the census basis --------------------------------------------------------------------------


@pytest.mark.parametrize("special, meaning", [(".", "unknown or secret"), ("x", "locked, not meaningful"),
                                              ("...", "to be published later"), ("/", "not reliable enough")])
def test_a_special_value_becomes_null_with_its_reason_never_zero(special, meaning):
    frame = _parse(_text().replace(HAGEN_LINE, HAGEN_LINE[: -len(";-;-")] + f";-;{special}"))
    hagen = _row(frame, "05914")
    assert hagen["liquiditaetskredite"] is None and hagen["debt_long_term"] == 174_041_000
    assert f"Kassenkredite (public) is '{special}' ({meaning})" in hagen["input_issue"]
    assert hagen["population"] == 189_620  # total and per inhabitant are still published

    frame = _parse(_text().replace(HAGEN_LINE, HAGEN_LINE.replace(";4799;", f";{special};")))
    hagen = _row(frame, "05914")
    assert hagen["population"] is None
    assert f"debt per inhabitant is '{special}' ({meaning})" in hagen["input_issue"]
    assert "population cannot be derived without total debt and debt per inhabitant" in hagen["input_issue"]


def test_an_unreadable_or_negative_amount_is_an_input_issue_of_its_row():
    frame = _parse(_text().replace(HAGEN_LINE, HAGEN_LINE.replace(";56541;", ";56k41;").replace(";735945;", ";-5;")))
    hagen = _row(frame, "05914")
    assert (hagen["debt_long_term"], hagen["liquiditaetskredite"]) == (None, None)
    assert "Kredite (non-public) is not a number: '56k41'" in hagen["input_issue"]
    assert "Kassenkredite (non-public) must be a finite amount ≥ 0, got '-5'" in hagen["input_issue"]


def test_the_census_basis_comes_from_a_footnote_else_from_the_year():
    stated = _text().replace("Stand: 23.01.2025", "Bevölkerung auf Grundlage des Zensus 2011\nStand: 23.01.2025")
    assert set(_parse(stated)["population_basis"]) == {"Zensus 2011"}
    older = _parse(_text().replace("31.12.2023;", "31.12.2019;"))
    assert set(older["year"]) == {2019} and set(older["population_basis"]) == {"Zensus 2011"}
    oldest = _row(_parse(_text().replace("31.12.2023;", "31.12.2009;")), "05914")
    assert oldest["population_basis"] is None
    assert "no census basis known for 2009" in oldest["input_issue"]


# -- refusals -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, row, reason",
    [
        (lambda t: t[: t.index("__________")], 71, "truncated file: the footer"),
        (lambda t: t.replace("GENESIS-Tabelle: 71327-01-05-4", "GENESIS-Tabelle: 12411-02-03-4"), 1,
         "table 12411-02-03-4 is not the municipal debt table 71327-01-05-4"),
        (lambda t: "Gemeinde;Schulden\n05914;1\n", 1, "not a GENESIS table export"),
        (lambda t: t.replace(";Wertpapierschulden;", ";Bürgschaften;"), 6,
         "unknown column 6 in the header: 'Schuldenstand d.Kernhaush.d.Gemeinden u.-verbände / Schulden beim "
         "nicht-öffentlichen Bereich / Bürgschaften / Tsd. EUR'"),
        (lambda t: t.replace(";;;EUR;Tsd. EUR;", ";;;EUR;Mio. EUR;"), 6, "unknown column 5 in the header"),
        (lambda t: t.replace(";Kassenkredite;Kredite;", ";Kredite;Kredite;"), 6,
         "column 8: Kredite (non-public) appears twice"),
        (lambda t: t.replace(HAGEN_LINE, HAGEN_LINE[: -len(";-")]), HAGEN_ROW, "expected 10 fields separated by ';', found 9"),
        (lambda t: t.replace(HAGEN_LINE, HAGEN_LINE.replace(";05914;", ";0591X;")), HAGEN_ROW,
         "area code must be 'DG' or a 2-, 3-, 5- or 8-digit AGS, got '0591X'"),
        (lambda t: t.replace(HAGEN_LINE, HAGEN_LINE.replace("31.12.2023;", "2023;")), HAGEN_ROW,
         "Stichtag must be a date DD.MM.YYYY, got '2023'"),
        (lambda t: t.replace("__________", HAGEN_LINE + "\n__________"), 72, "05914 2023 appears twice (first in line 62)"),
    ],
    ids=["truncated", "other table", "not genesis", "unknown column", "other unit", "column twice", "short line",
         "area code", "date", "twice"],
)
def test_every_broken_file_is_refused_with_file_row_and_reason(change, row, reason):
    with pytest.raises(BadInputError) as caught:
        _parse(change(_text()))
    assert (caught.value.file, caught.value.row) == (NAME, row)
    assert reason in caught.value.reason


def test_a_missing_debt_column_and_wrong_key_columns_are_refused():
    lines = _text().split("\n")
    without_last = "\n".join(line.rsplit(";", 1)[0] if i < 71 else line for i, line in enumerate(lines))
    with pytest.raises(BadInputError, match=r"row 6: missing column\(s\) in the header: Kassenkredite \(public\)"):
        _parse(without_last)
    two_keys = "\n".join(line.split(";", 1)[1] if 5 <= i < 71 else line for i, line in enumerate(lines))
    with pytest.raises(BadInputError, match=r"row 9: expected 3 key columns \(Stichtag, area code, name\), found 2"):
        _parse(two_keys)


def test_empty_binary_and_kreis_less_files_are_refused():
    with pytest.raises(BadInputError, match="empty file"):
        parse_genesis_municipal_debt(b"", NAME)
    with pytest.raises(BadInputError, match="NUL byte"):
        parse_genesis_municipal_debt("GENESIS".encode("utf-16"), NAME)
    lines = _text().split("\n")
    only_aggregates = "\n".join(l for l in lines if not (l.startswith("31.12.2023;") and len(l.split(";")[1]) == 5))
    with pytest.raises(BadInputError, match=r"no Kreis or kreisfreie Stadt rows \(5-digit AGS\)"):
        _parse(only_aggregates)


# -- declared source and the way into the warehouse ---------------------------------------------------------------


def test_the_declared_debt_source_is_this_table_ingested_with_this_format(tmp_path):
    config = load_statistics_config(ROOT / "config" / "statistics_sources.toml")
    source = config.source("municipal_debt_nrw")
    assert (source.table, source.format, source.ingest_format, source.enabled) == (
        "71327-01-05-4", "csv", "genesis_municipal_debt", False)
    text = (ROOT / "config" / "statistics_sources.toml").read_text(encoding="utf-8")
    broken = tmp_path / "statistics_sources.toml"
    broken.write_text(text.replace('ingest_format = "genesis_municipal_debt"', 'ingest_format = "debt"'), encoding="utf-8")
    with pytest.raises(StatisticsConfigError, match=r"source 'municipal_debt_nrw': ingest_format 'debt'; use one of .*genesis_municipal_debt"):
        load_statistics_config(broken)


def test_ingest_into_staging_finance_gives_real_debt_per_capita_and_flags_revenue(tmp_path: Path):
    from warehouse.ingest import IngestContext, ingest_file
    from warehouse.marts_resilience import fiscal_indicators
    from warehouse.migrate import migrate
    from warehouse.publish import connect_build

    con = connect_build(tmp_path / "w.duckdb")
    try:
        migrate(con)
        ctx = IngestContext(landing=tmp_path / "landing", quarantine=tmp_path / "quarantine", validation=tmp_path / "gx")
        outcome = ingest_file(con, "r1", "municipal_debt_nrw", "genesis_municipal_debt", DEBT, ctx)
        assert (outcome.status, outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == ("loaded", 54, 54, 0)
        assert con.sql("SELECT population, liquiditaetskredite FROM staging.finance WHERE area_code = '05914'").fetchall() == [
            (189_620, 735_945_000.0)]
        fiscal = fiscal_indicators(con.sql(f"SELECT {', '.join(FINANCE_SCHEMA)} FROM staging.finance").pl())
    finally:
        con.close()

    def one(indicator: str, code: str = "05914") -> dict:
        return _row(fiscal.filter(indicator_id=indicator, year=2023), code)

    hagen = one("debt_per_capita")
    assert hagen["value"] == pytest.approx((174_041_000 + 735_945_000) / 189_620)
    assert hagen["value"] == pytest.approx(4799, abs=0.5)  # the table's own per-inhabitant figure
    assert (hagen["area_name"], hagen["population_basis"], hagen["flag"]) == ("Hagen, kreisfreie Stadt", "Zensus 2022", None)
    assert one("liquidity_credit_per_capita", "05954")["value"] == pytest.approx(569_567_000 / 324_710)
    assert one("interest_to_revenue")["flag"] == "finance_input_missing"
    assert one("social_spending_share")["flag"] == "finance_input_missing"
    assert one("tax_revenue_per_capita_4y")["flag"] == "fewer_than_4_years"
    assert one("debt_per_capita", "05354")["flag"] == "finance_input_missing"  # dissolved: no population
    # the same finance frame is also what the finance_indicators transform alone gives
    assert finance_indicators(parse_genesis_municipal_debt(DEBT.read_bytes(), NAME)).filter(
        indicator_id="debt_per_capita", area_code="05914")["value"].to_list() == [pytest.approx(hagen["value"])]
