"""The monthly reach marts read check-ins reduced by DuckDB (warehouse/checkin_reads.py) and give what the pure
transforms give over every check-in of the month.

penetration counts distinct visitors per type, home district and recorded age band: the read hands the transform
exactly those. The outside-district share is counted per facility by DuckDB (warehouse/sql/outside_district_counts.sql)
as transforms.coverage.outside_district_counts counts it. So the marts cost a fraction of reading the month's
check-ins (6.1M at 100M). The sample months are changed here so that visitors move between districts and leave the
district out now and then.
"""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from conftest import GENESIS_2018, ROOT, SAMPLE
from transforms.bad_input import BadInputError
from transforms.coverage import outside_district_counts, outside_district_share
from transforms.facility_registry import load_facility_registry
from transforms.resilience_config import load_resilience_config
from warehouse.checkin_reads import checkin_months, outside_district_counts_in, read_utc, visitors_by_facility_type
from warehouse.ingest import IngestContext, ingest_file
from warehouse.marts_resilience import penetration_in_month
from warehouse.migrate import migrate
from warehouse.publish import connect_build

REGISTRY = ROOT / "config" / "facilities.toml"
FACILITIES = load_facility_registry(REGISTRY).facilities
SETTINGS = load_resilience_config()


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkin_reads")
    ctx = IngestContext(landing=root / "landing", quarantine=root / "quarantine", validation=root / "validation",
                        facility_registry=REGISTRY)
    con = connect_build(root / "w.duckdb")
    migrate(con)
    loaded = [ingest_file(con, f"r{i}", "checkins", "checkin_log", path, ctx)
              for i, path in enumerate(sorted((SAMPLE / "usage").glob("checkins_*")))]
    loaded.append(ingest_file(con, "p", "population", "genesis_csv", GENESIS_2018, ctx))
    assert [o.status for o in loaded] == ["loaded"] * 4
    # visitors who moved (a later check-in from another district) and check-ins without a district
    con.execute("""UPDATE staging.checkins SET home_district = CASE WHEN source_row % 11 = 0 THEN NULL
                                                                    ELSE '05914' END
                   WHERE source_row % 7 = 0 OR source_row % 11 = 0""")
    yield con
    con.close()


def _every_checkin(con: duckdb.DuckDBPyConnection, month: tuple[date, date]) -> pl.DataFrame:
    return read_utc(con, "SELECT * FROM staging.checkins WHERE visit_date BETWEEN ? AND ?", list(month))


def _population(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.sql("SELECT * FROM staging.population").pl()


def test_the_months_are_changed_as_intended(con):
    moved = con.sql("""SELECT count(*) FROM (SELECT facility_id, visitor_pseudonym FROM staging.checkins
                       WHERE home_district IS NOT NULL GROUP BY ALL HAVING count(DISTINCT home_district) > 1)""")
    assert moved.fetchall()[0][0] > 100
    assert len(checkin_months(con)) == 3


def test_penetration_from_the_distinct_visitors_equals_every_checkin(con):
    population = _population(con)
    for month in checkin_months(con):
        every = _every_checkin(con, month).join(FACILITIES.select("facility_id", "type"), on="facility_id")
        expected = penetration_in_month(every, population, SETTINGS, month)
        reduced = visitors_by_facility_type(con, *month, FACILITIES)
        assert reduced.height < every.height / 2
        got = penetration_in_month(reduced, population, SETTINGS, month)
        assert len(got) == len(expected) > 0
        for g, e in zip(got, expected):
            assert_frame_equal(g, e)
        assert pl.concat(got)["numerator"].sum() > 0


def test_outside_district_counts_of_duckdb_equal_the_transform(con):
    for month in checkin_months(con):
        expected = outside_district_counts(_every_checkin(con, month), FACILITIES, month).sort("facility_id")
        got = outside_district_counts_in(con, *month, FACILITIES).sort("facility_id")
        assert_frame_equal(got, expected)
        assert expected["outside"].sum() > 0 and expected["known"].sum() > expected["outside"].sum()
        assert expected.height == FACILITIES.height


def test_a_checkin_of_an_unregistered_facility_is_named_as_from_every_checkin(con):
    con.execute("BEGIN")
    try:
        con.execute("""INSERT INTO staging.checkins
                       SELECT * REPLACE ('closed-in-2023' AS facility_id) FROM staging.checkins
                       WHERE month(visit_date) = 2 AND facility_id = 'mk-seniorentreff-luedenscheid'""")
        month = (date(2024, 2, 1), date(2024, 2, 29))
        with pytest.raises(BadInputError) as every:
            outside_district_share(_every_checkin(con, month), FACILITIES, month)
        with pytest.raises(BadInputError) as counted:
            outside_district_counts_in(con, *month, FACILITIES)
        assert str(counted.value) == str(every.value)
        assert "'closed-in-2023' is not in the facility registry" in str(every.value)
    finally:
        con.execute("ROLLBACK")
