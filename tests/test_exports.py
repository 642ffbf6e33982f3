"""Exports for dashboards: long and wide form per mart, GeoJSON of the areas, catalogue, manifest, suppression.

The warehouse is built in the test from a handful of hand-made mart rows (no flow run), including a usage mart
of the shape the usage step will add, so that suppression on `distinct_visitors` is checked before that mart exists.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import polars as pl
import pytest

from transforms.bad_input import BadInputError
from transforms.catalogue import catalogue_frame
from transforms.demography import AgeConvention
from warehouse.exports import (LONG_COLUMNS, data_vintages, long_form, mart_exports, publish_exports,
                               read_area_points, write_exports)
from warehouse.frames import insert_frame
from warehouse.migrate import migrate
from warehouse.publish import connect_build

RUN_ID = "20261129T020000Z-abc123"
CONVENTIONS = (AgeConvention("regionalatlas", "Regionalatlas", (0, 20), (20, 65), 65),
               AgeConvention("it_nrw", "IT.NRW", (0, 20), (20, 67), 67))
# Hagen 31.12.2018 (see test_nightly_flow): under 20 = 36,764; 20–64 = 110,065; 65+ = 41,985
HAGEN_OLD_AGE = 41_985 / 110_065 * 100
HAGEN_YOUTH = 36_764 / 110_065 * 100
STICHTAG = date(2018, 12, 31)

DEMOGRAPHY = [
    # indicator_id, convention, area_code, area_name, sex, value, flag, numerator, denominator
    ("old_age_ratio", "regionalatlas", "05914", "Hagen", "total", HAGEN_OLD_AGE, None, 41_985, 110_065),
    ("youth_ratio", "regionalatlas", "05914", "Hagen", "total", HAGEN_YOUTH, None, 36_764, 110_065),
    ("old_age_ratio", "it_nrw", "05914", "Hagen", "total", None, "age_groups_do_not_align", None, None),
    ("old_age_ratio", "regionalatlas", "05914", "Hagen", "female", 45.0, None, 450, 1000),
    ("old_age_ratio", "regionalatlas", "05954", "Ennepe-Ruhr-Kreis", "total", 40.0, None, 80, 200),
    ("youth_ratio", "regionalatlas", "05954", "Ennepe-Ruhr-Kreis", "total", 30.0, None, 60, 200),
    ("old_age_ratio", "regionalatlas", "16056", "Eisenach", "total", 42.5, None, 85, 200),
]

REPAIRS = [
    # indicator_id, group, month, value, flag, numerator, denominator, item_count
    ("repairs", "g1", date(2023, 1, 1), 3.0, None, 3, 1, 3),     # 3 items: suppressed
    ("repairs", "g1", date(2023, 2, 1), 5.0, None, 5, 1, 5),     # exactly k: published
    ("repairs", "g2", date(2023, 1, 1), 12.0, None, 12, 1, 12),
    ("fix_rate", "g1", date(2023, 1, 1), 50.0, None, 1, 2, 3),   # a rate over 3 items: suppressed too
]

USAGE = [
    # indicator_id, facility_id, period_start, value, flag, numerator, denominator, distinct_visitors
    ("repeat_visitor_share", "fz-hagen-mitte", date(2026, 10, 5), 50.0, None, 2, 4, 4),   # 4 visitors: suppressed
    ("repeat_visitor_share", "fz-hagen-mitte", date(2026, 10, 12), 40.0, None, 2, 5, 5),  # 5 visitors: published
    ("visits", "fz-hagen-mitte", date(2026, 10, 12), 9.0, None, 9, 1, None),             # unknown count: suppressed
]

POINTS = [{"05914": 7.47, "05954": 7.27}, {"05914": 51.36, "05954": 51.33}]


def build_small_warehouse(path: Path, with_usage: bool = True) -> duckdb.DuckDBPyConnection:
    """A migrated warehouse with hand-made marts and audit rows; the usage mart only when asked for."""
    con = connect_build(path)
    migrate(con)
    demography = pl.DataFrame(
        DEMOGRAPHY, orient="row",
        schema=["indicator_id", "convention", "area_code", "area_name", "sex", "value", "flag", "numerator", "denominator"],
    ).with_columns(table_code=pl.lit("12411-02-03-5-B"), area_level=pl.lit("kreis"), reference_date=pl.lit(STICHTAG),
                   year=pl.lit(2018), unit=pl.lit("per 100 of working age"), population_basis=pl.lit("Zensus 2011"))
    repairs = pl.DataFrame(
        REPAIRS, orient="row",
        schema=["indicator_id", "group_identifier", "month", "value", "flag", "numerator", "denominator", "item_count"],
    ).with_columns(unit=pl.lit("items"))
    for table, frame in (("marts.demography_indicators", demography), ("marts.repair_cafe_monthly", repairs),
                         ("marts.indicator_catalogue", catalogue_frame(CONVENTIONS))):
        insert_frame(con, table, frame)
    if with_usage:
        usage = pl.DataFrame(
            USAGE, orient="row",
            schema={"indicator_id": pl.String, "facility_id": pl.String, "period_start": pl.Date, "value": pl.Float64,
                    "flag": pl.String, "numerator": pl.Int64, "denominator": pl.Int64, "distinct_visitors": pl.Int64},
        ).with_columns(breakdown=pl.lit("total"), category=pl.lit("all"), period=pl.lit("month"), unit=pl.lit("visitors"))
        insert_frame(con, "marts.usage_visitors", usage)
    con.execute("""INSERT INTO staging.population VALUES ('12411-02-03-5-B', '05914', 'Hagen', 'kreis', DATE '2018-12-31',
                   'total', 'Insgesamt', 0, NULL, true, 188814, NULL, 'Zensus 2011', 'x.csv', 10, 'sha-pop', 'r0')""")
    con.execute("INSERT INTO audit.open_repair_deliveries (data_provider, delivery, sha256, file_name, run_id) "
                "VALUES ('anstiftung', '2023-09', 'sha-rep', 'anstiftung_202309.csv', 'r0')")
    loaded_at = datetime(2026, 11, 29, 2, 0, tzinfo=timezone.utc)
    con.execute(
        """INSERT INTO audit.load_manifest (run_id, source_name, source_format, file_name, file_path, sha256, size_bytes,
                                           status, rows_read, rows_loaded, rows_quarantined, recorded_at) VALUES
           (?, 'population', 'genesis_csv', 'x.csv', '/in/x.csv', 'sha-pop', 10, 'loaded', 26406, 26404, 2, ?),
           (?, 'repair_cafes', 'open_repair', 'broken.csv', '/in/broken.csv', 'sha-bad', 10, 'quarantined', 0, 0, 0, ?)""",
        [RUN_ID, loaded_at, RUN_ID, loaded_at],
    )
    con.execute(
        """INSERT INTO audit.quarantine (run_id, source_name, file_name, sha256, row_number, rule, reason) VALUES
           (?, 'population', 'x.csv', 'sha-pop', 17, 'value_not_negative', 'negative count'),
           (?, 'population', 'x.csv', 'sha-pop', 18, 'value_not_negative', 'negative count'),
           (?, 'repair_cafes', 'broken.csv', 'sha-bad', NULL, 'readable_file', 'not CSV')""",
        [RUN_ID, RUN_ID, RUN_ID],
    )
    con.execute(
        """INSERT INTO audit.validation_results (run_id, file_name, sha256, suite, expectation, rule, blocking, success)
           VALUES (?, 'x.csv', 'sha-pop', 'population_by_age', 'e1', 'value_not_negative', true, false),
                  (?, 'x.csv', 'sha-pop', 'population_by_age', 'e2', 'area_code_known', true, true),
                  (?, 'x.csv', 'sha-pop', 'population_by_age', 'e3', 'plausible_total', false, true)""",
        [RUN_ID, RUN_ID, RUN_ID],
    )
    return con


@pytest.fixture
def points(tmp_path: Path) -> Path:
    path = tmp_path / "centres.json"
    path.write_text(json.dumps(POINTS), encoding="utf-8")
    return path


@pytest.fixture
def exported(tmp_path: Path, points: Path) -> Path:
    con = build_small_warehouse(tmp_path / "w.duckdb")
    try:
        staging = write_exports(con, mart_exports(con, 5), tmp_path / "exports", RUN_ID, "2026-11-29", 5, data_vintages(con),
                                area_points=points, default_convention="regionalatlas")
    finally:
        con.close()
    return staging


def manifest(staging: Path) -> dict:
    return json.loads((staging / "manifest.json").read_text(encoding="utf-8"))


def test_every_file_is_in_the_manifest_with_its_checksum_and_rows(exported):
    m = manifest(exported)
    assert m["run_id"] == RUN_ID
    assert m["csv"] == {"encoding": "utf-8", "delimiter": ",", "decimal_point": "."}
    assert m["data_vintage"] == {"statistics:12411-02-03-5-B": "2018-12-31", "open_repair:anstiftung": "2023-09"}
    on_disk = {p.name for p in exported.iterdir()} - {"manifest.json"}
    assert set(m["files"]) == on_disk
    for name, entry in m["files"].items():
        assert hashlib.sha256((exported / name).read_bytes()).hexdigest() == entry["sha256"], name
        if name.endswith(".parquet"):
            assert pl.read_parquet(exported / name).height == entry["rows"], name
        elif name.endswith(".csv"):
            assert pl.read_csv(exported / name, infer_schema=False).height == entry["rows"], name
    assert m["files"]["demography_indicators.csv"]["rows"] == len(DEMOGRAPHY)
    assert m["files"]["areas.geojson"]["rows"] == 2


def test_long_form_has_the_common_columns_and_the_exact_values(exported):
    long = pl.read_parquet(exported / "demography_indicators.parquet")
    assert long.columns[: len(LONG_COLUMNS)] == LONG_COLUMNS
    assert {"area_level", "population_basis", "table_code", "year"} <= set(long.columns)
    hagen = long.filter((pl.col("subject_id") == "05914") & (pl.col("indicator_id") == "old_age_ratio")
                        & (pl.col("sex") == "total") & (pl.col("convention") == "regionalatlas")).row(0, named=True)
    assert (hagen["subject_type"], hagen["subject_name"], hagen["period"]) == ("area", "Hagen", STICHTAG)
    assert hagen["value"] == pytest.approx(HAGEN_OLD_AGE) and round(hagen["value"], 1) == 38.1
    assert (hagen["numerator"], hagen["denominator"]) == (41_985, 110_065)
    csv = pl.read_csv(exported / "demography_indicators.csv", infer_schema=False)
    assert csv.filter(pl.col("subject_id") == "05914", pl.col("sex") == "total", pl.col("indicator_id") == "old_age_ratio",
                      pl.col("convention") == "regionalatlas")["value"].to_list() == [f"{HAGEN_OLD_AGE:.6f}"]
    repairs = pl.read_parquet(exported / "repair_cafe_indicators.parquet")
    assert set(repairs["subject_type"]) == {"repair_group"} and set(repairs["sex"]) == {"total"}


def test_wide_form_has_one_row_per_area_and_sex_and_keeps_flags(exported):
    wide = pl.read_parquet(exported / "demography_indicators_wide.parquet")
    assert wide.columns[:4] == ["area_code", "area_name", "period", "sex"]
    assert wide.select("area_code", "sex").rows() == [("05914", "female"), ("05914", "total"), ("05954", "total"),
                                                      ("16056", "total")]
    hagen = wide.filter(area_code="05914", sex="total").row(0, named=True)
    assert hagen["old_age_ratio__regionalatlas"] == pytest.approx(HAGEN_OLD_AGE)
    assert hagen["youth_ratio__regionalatlas"] == pytest.approx(HAGEN_YOUTH)
    assert (hagen["old_age_ratio__it_nrw"], hagen["old_age_ratio__it_nrw__flag"]) == (None, "age_groups_do_not_align")
    # the usage and repair marts have no area subject: no wide form
    assert not (exported / "usage_visitors_wide.csv").exists()
    assert not (exported / "repair_cafe_indicators_wide.csv").exists()


def test_small_counts_are_suppressed_in_every_export_of_usage_and_repairs(exported):
    m = manifest(exported)
    with_counts = sorted(name for name, mart in m["marts"].items() if mart["suppression_column"])
    assert {"repair_cafe_indicators", "usage_visitors"} <= set(with_counts) == set(m["suppression"]["applies_to"])
    assert m["marts"]["usage_visitors"] | {"files": None} == {
        "table": "marts.usage_visitors", "form": "long", "files": None, "suppression_column": "distinct_visitors",
        "suppressed_rows": 2}
    assert m["marts"]["repair_cafe_indicators"]["suppressed_rows"] == 2
    for name in ("usage_visitors", "repair_cafe_indicators"):
        for frame in (pl.read_parquet(exported / f"{name}.parquet"),
                      pl.read_csv(exported / f"{name}.csv", schema_overrides={"value": pl.Float64})):
            assert not {"distinct_visitors", "item_count"} & set(frame.columns), name
            suppressed = frame.filter(pl.col("flag") == "suppressed_small_count")
            assert suppressed.height == 2, name
            assert suppressed.select("value", "numerator", "denominator").null_count().row(0) == (2, 2, 2), name
    usage = pl.read_parquet(exported / "usage_visitors.parquet").sort("indicator_id", "period")
    assert set(usage["period_type"]) == {"month"} and set(usage["subject_type"]) == {"facility"}
    assert usage.select("indicator_id", "period", "value", "flag").rows() == [
        ("repeat_visitor_share", date(2026, 10, 5), None, "suppressed_small_count"),
        ("repeat_visitor_share", date(2026, 10, 12), 40.0, None),
        ("visits", date(2026, 10, 12), None, "suppressed_small_count"),
    ]
    repairs = pl.read_parquet(exported / "repair_cafe_indicators.parquet")
    assert repairs.filter(subject_id="g1", period=date(2023, 2, 1))["value"].to_list() == [5.0]  # exactly k stays


def test_geojson_has_the_latest_default_reading_and_names_areas_without_a_point(exported):
    collection = json.loads((exported / "areas.geojson").read_text(encoding="utf-8"))
    assert collection["type"] == "FeatureCollection"
    features = {f["properties"]["area_code"]: f for f in collection["features"]}
    assert set(features) == {"05914", "05954"}
    hagen = features["05914"]
    assert hagen["geometry"] == {"type": "Point", "coordinates": [7.47, 51.36]}
    assert hagen["properties"]["old_age_ratio"] == pytest.approx(HAGEN_OLD_AGE)  # sex total, not the female 45.0
    assert hagen["properties"]["old_age_ratio__period"] == "2018-12-31"
    assert not any("it_nrw" in key for key in hagen["properties"])  # only the default convention
    assert manifest(exported)["geo"]["areas_without_geometry"] == ["16056"]


def test_marts_outside_the_long_form_are_exported_as_stored(tmp_path):
    con = build_small_warehouse(tmp_path / "w.duckdb", with_usage=False)
    con.execute("CREATE TABLE marts.scenario_lights AS SELECT '05914' AS municipality, 'revenue_-10' AS scenario, 'red' AS light")
    staging = write_exports(con, mart_exports(con, 5), tmp_path / "exports", RUN_ID, "2026-11-29", 5, data_vintages(con))
    con.close()
    m = manifest(staging)
    assert m["marts"]["scenario_lights"]["form"] == "as_stored"
    assert pl.read_csv(staging / "scenario_lights.csv", infer_schema=False).rows() == [("05914", "revenue_-10", "red")]
    assert m["geo"] == {"area_points": None} and not (staging / "areas.geojson").exists()


def test_long_form_needs_indicator_subject_and_period():
    assert long_form(pl.DataFrame({"indicator_id": ["a"], "value": [1.0], "facility_id": ["f"]})) is None
    long = long_form(pl.DataFrame({"indicator_id": ["a"], "value": [1], "facility_id": ["f"], "area_code": ["05914"],
                                   "week": [date(2026, 10, 5)]}))
    assert long.row(0, named=True) == {
        "indicator_id": "a", "subject_type": "facility", "subject_id": "f", "subject_name": None,
        "period": date(2026, 10, 5), "convention": None, "sex": "total", "value": 1.0, "unit": None, "flag": None,
        "numerator": None, "denominator": None, "area_code": "05914"}


@pytest.mark.parametrize("content, reason", [
    (None, "cannot read area points"),
    ("{not json", "expected a JSON array of two objects"),
    ('[{"05914": 7.4}, {"05954": 51.3}]', "with the same codes"),
    ('[{"05914": 7.4}, {"05914": 151.3}]', "area 05914: lon 7.4 / lat 151.3 is not a WGS84 coordinate"),
])
def test_bad_area_points_name_the_file_and_the_reason(tmp_path, content, reason):
    path = tmp_path / "centres.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(BadInputError, match="centres.json") as err:
        read_area_points(path)
    assert reason in str(err.value)


def test_sample_centres_lack_eisenach(points):
    sample = read_area_points(Path(__file__).resolve().parents[1] / "data/sample/geo/kreis_centres_dim400.json")
    assert sample.height == 400 and "16056" not in set(sample["area_code"])
    assert sample.filter(area_code="05914").select("lon", "lat").row(0) == pytest.approx((7.47, 51.36), abs=0.05)


def test_publishing_twice_on_one_day_replaces_the_set_and_latest_follows(exported, tmp_path):
    root = tmp_path / "exports"
    first = publish_exports(exported, root, "2026-11-29")
    second_staging = root / ".staging-second"
    second_staging.mkdir()
    (second_staging / "manifest.json").write_text("{}")
    publish_exports(second_staging, root, "2026-11-29")
    assert (root / "latest").resolve() == first.resolve()
    assert [p.name for p in first.iterdir()] == ["manifest.json"]
    assert sorted(p.name for p in root.iterdir()) == ["2026-11-29", "latest"]
