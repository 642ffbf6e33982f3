"""The AGS hierarchy and area names with validity, on hand-made observations and on the sample population."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from conftest import GENESIS_2018
from transforms.areas import area_validity, with_parents
from transforms.genesis_csv import parse_genesis_csv
from warehouse.frames import insert_frame
from warehouse.load_areas import refresh_areas
from warehouse.migrate import migrate


def test_parents_follow_the_ags_prefixes():
    frame = with_parents(pl.DataFrame({"area_code": ["05954008", "05954", "059", "05", "01001", "DG", "11008008"]}))
    assert frame.rows() == [
        ("05954008", "05954", "059", "05"),  # Hattingen → Ennepe-Ruhr-Kreis → RB Arnsberg → NRW
        ("05954", None, "059", "05"),
        ("059", None, None, "05"),
        ("05", None, None, None),
        ("01001", None, None, "01"),  # Schleswig-Holstein has no Regierungsbezirke (third digit 0)
        ("DG", None, None, None),
        ("11008008", "11008", None, "11"),  # a Berlin Bezirk: Berlin has no Regierungsbezirke either
    ]


def _obs(rows):
    return pl.DataFrame(rows, schema={"area_code": pl.String, "area_name": pl.String, "area_level": pl.String,
                                      "reference_date": pl.Date}, orient="row")


def test_names_get_validity_periods_and_retired_codes_an_end():
    d18, d19, d20 = date(2018, 12, 31), date(2019, 12, 31), date(2020, 12, 31)
    areas = area_validity(_obs([
        ("03159016", "Göttingen, Stadt", "gemeinde", d18),
        ("03159016", "Göttingen, Stadt", "gemeinde", d19),
        ("03159016", "Göttingen, Universitätsstadt", "gemeinde", d20),  # renamed
        ("03159001", "Adelebsen, Flecken", "gemeinde", d18),
        ("03159001", "Adelebsen, Flecken", "gemeinde", d19),  # merged away before 2020
        ("03159", "Göttingen", "kreis", d18),  # only Kreis row: its level's newest date is 2018
        ("03159", "Göttingen", "kreis", d18),
    ]))
    assert areas.select("area_code", "area_name", "valid_from", "valid_to", "kreis_code").rows() == [
        ("03159", "Göttingen", d18, None, None),
        ("03159001", "Adelebsen, Flecken", d18, d19, "03159"),
        ("03159016", "Göttingen, Stadt", d18, d19, "03159"),
        ("03159016", "Göttingen, Universitätsstadt", d20, None, "03159"),
    ]


def test_two_spellings_on_one_date_are_not_a_renaming():
    d = date(2018, 12, 31)
    areas = area_validity(_obs([("05914", "Hagen, Stadt", "kreis", d), ("05914", "Hagen, kreisfreie Stadt", "kreis", d)]))
    assert areas.select("area_name", "valid_to").rows() == [("Hagen, Stadt", None)]


def test_refresh_builds_areas_from_the_sample_population_and_is_idempotent(tmp_path):
    frame = parse_genesis_csv(GENESIS_2018.read_bytes(), GENESIS_2018.name)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        migrate(con)
        batch = frame.drop("cell").with_columns(sha256=pl.lit("x"), loaded_run_id=pl.lit("r"))
        insert_frame(con, "staging.population", batch)
        first = refresh_areas(con)
        second = refresh_areas(con)
        hagen = con.sql("SELECT area_name, area_level, regbez_code, land_code, valid_from, valid_to FROM staging.areas WHERE area_code = '05914'").fetchall()
        total = con.sql("SELECT count(*) FROM staging.areas").fetchall()[0][0]
    expected_codes = frame.select(pl.col("area_code").n_unique()).item()
    assert first == second == total == expected_codes
    assert hagen[0][1:] == ("kreis", "059", "05", date(2018, 12, 31), None)
    assert "Hagen" in hagen[0][0]
