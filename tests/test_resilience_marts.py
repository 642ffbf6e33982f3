"""The resilience, room-sharing and fiscal marts built from staging (warehouse/marts_resilience.py), and the finance
delivery format that feeds staging.finance.

The warehouse is a migrated temporary DuckDB with small hand-made staging rows (values checked by hand below) and
the real synthetic finance sample, ingested like any delivery. Marts are written the way warehouse/marts.py writes
them, so the test also proves that every frame fits its table in migrations/0007 and that the exports can publish it.
"""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import polars as pl
import pytest

from conftest import ROOT, SAMPLE
from flows.config import Paths, PipelineConfig
from transforms.catalogue import load_catalogue
from transforms.demography import AgeConvention
from transforms.resilience_config import ResilienceConfigError, load_resilience_config
from warehouse.exports import mart_exports, wide_by_area
from warehouse.ingest import IngestContext, ingest_file
from warehouse.marts_resilience import build_resilience_marts

FINANCE = SAMPLE / "finance" / "SYNTHETIC_finance_nrw_kreise_2019-2022.csv"
REGISTRY = ROOT / "config" / "facilities.toml"
POINTS = SAMPLE / "geo" / "kreis_centres_dim400.json"
CONVENTIONS = (AgeConvention("regionalatlas", "Regionalatlas", (0, 20), (20, 65), 65),)
WITTEN = "en-seniorentreff-witten"  # senior meeting point of 05954, capacity 40, open Monday to Friday

# Ennepe-Ruhr-Kreis (05954), invented counts: 2018 total 1,000 (0–18: 300, 18–65: 600, 65–75: 60, 75+: 40),
# 2013 total 900.
GROUPS = [("unter 18", 0, 18), ("18 bis 65", 18, 65), ("65 bis 75", 65, 75), ("75 und mehr", 75, None)]
POPULATION = {date(2018, 12, 31): [300, 600, 60, 40], date(2013, 12, 31): [270, 540, 54, 36]}


def _config(tmp_path: Path, registry: Path | None = REGISTRY) -> PipelineConfig:
    return PipelineConfig(paths=Paths(home=tmp_path), sources=(), conventions=CONVENTIONS,
                          default_convention="regionalatlas", min_count=5, area_points=POINTS,
                          facility_registry=registry)


def _write(con: duckdb.DuckDBPyConnection, tables: dict[str, pl.DataFrame]) -> None:
    """As warehouse/marts.py's build_marts: the catalogue unit joined to every frame with an indicator_id."""
    units = pl.DataFrame({"indicator_id": [i.id for i in load_catalogue()], "unit": [i.unit for i in load_catalogue()]})
    for table, frame in tables.items():
        rows = frame.join(units, on="indicator_id", how="left") if "indicator_id" in frame.columns else frame
        con.register("mart_rows", rows)
        con.execute(f"DELETE FROM {table}")
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM mart_rows")
        con.unregister("mart_rows")


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: pl.DataFrame) -> None:
    con.register("staged", rows)
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM staged")
    con.unregister("staged")


def _population() -> pl.DataFrame:
    rows = []
    for day, values in POPULATION.items():
        for (label, lo, hi), value in zip(GROUPS, values):
            rows.append({"age_label": label, "age_from": lo, "age_to": hi, "is_total": False, "value": value,
                         "reference_date": day})
        rows.append({"age_label": "Insgesamt", "age_from": 0, "age_to": None, "is_total": True,
                     "value": sum(values), "reference_date": day})
    return pl.DataFrame(rows).with_columns(
        table_code=pl.lit("T"), area_code=pl.lit("05954"), area_name=pl.lit("Ennepe-Ruhr-Kreis"),
        area_level=pl.lit("kreis"), sex=pl.lit("total"), population_basis=pl.lit("Zensus 2011"),
        source_file=pl.lit("hand-made"), source_row=pl.int_range(pl.len()), sha256=pl.lit("x"), loaded_run_id=pl.lit("r"),
    )


def _checkins() -> pl.DataFrame:
    """Five visitors at the Witten senior meeting point on Wednesday 10 January 2024, 10:00 local time."""
    visitors = [  # pseudonym, age band, from, to, home district
        (1, "65-74", 65, 75, "05954"),
        (2, "65-74", 65, 75, "05954"),
        (3, "75+", 75, None, "05954"),
        (4, "75+", 75, None, "05914"),  # from Hagen: outside the facility's district
        (5, "65-74", 65, 75, None),  # home district not given
    ]
    return pl.DataFrame(
        [{"visitor_pseudonym": p, "age_band": b, "age_from": lo, "age_to": hi, "home_district": d, "source_row": i}
         for i, (p, b, lo, hi, d) in enumerate(visitors, start=2)],
        schema_overrides={"age_from": pl.Int32, "age_to": pl.Int32},
    ).with_columns(
        facility_id=pl.lit(WITTEN), offer=pl.lit("Seniorencafé"),
        visited_at=pl.lit(datetime(2024, 1, 10, 9, 0, tzinfo=timezone.utc)).dt.offset_by(pl.format("{}m", "source_row")),
        visit_date=pl.lit(date(2024, 1, 10)), source_file=pl.lit("checkins.csv"), sha256=pl.lit("x"),
        loaded_run_id=pl.lit("r"),
    )


def _one(frame: pl.DataFrame, **where) -> dict:
    rows = frame.filter([pl.col(c).eq_missing(v) for c, v in where.items()])  # None matches NULL
    assert rows.height == 1, rows
    return rows.row(0, named=True)


def test_an_empty_warehouse_gives_empty_marts_that_fit_their_tables(con, tmp_path):
    tables = build_resilience_marts(con, _config(tmp_path))
    assert {t: f.height for t, f in tables.items()} == dict.fromkeys(tables, 0)
    assert "marts.demand_projection" in tables and "marts.fiscal_stress" in tables
    _write(con, tables)
    # without a registry (a run with statistics only) the usage marts are empty too, not an error
    assert all(f.is_empty() for f in build_resilience_marts(con, _config(tmp_path, registry=None)).values())


def test_age_structure_joins_the_demography_mart(con, tmp_path):
    _insert(con, "staging.population", _population())
    tables = build_resilience_marts(con, _config(tmp_path))
    _write(con, tables)
    mart = con.sql("SELECT * FROM marts.demography_indicators WHERE reference_date = '2018-12-31'").pl()
    assert _one(mart, indicator_id="share_65_plus")["value"] == pytest.approx(100 / 1000 * 100)
    mean = _one(mart, indicator_id="mean_age")
    # midpoints 9, 41.5, 70 and the configured 82 for 75+
    assert mean["value"] == pytest.approx((300 * 9 + 600 * 41.5 + 60 * 70 + 40 * 82) / 1000)
    assert mean["numerator"] == pytest.approx(35_080.0)  # kept as a fraction since migration 0007
    assert _one(mart, indicator_id="median_age")["value"] == pytest.approx(18 + (500 - 300) / 600 * 47)
    change = _one(mart, indicator_id="population_change_5y")
    assert change["value"] == pytest.approx((1000 - 900) / 900 * 100)
    assert (change["convention"], change["area_name"], change["year"], change["unit"]) == (None, "Ennepe-Ruhr-Kreis", 2018, "%")
    # the existing rows are still there, next to the new ones (groups 18–65 cannot form 20–64)
    assert _one(mart, indicator_id="old_age_ratio", convention="regionalatlas")["flag"] == "age_groups_do_not_align"
    assert mart.filter(indicator_id="population_change_10y").is_empty()  # 2008 is not loaded


def test_coverage_from_registry_and_population(con, tmp_path):
    _insert(con, "staging.population", _population())
    coverage = build_resilience_marts(con, _config(tmp_path))["marts.coverage_indicators"]
    seniors = coverage.filter(area_code="05954", reference_date=date(2018, 12, 31), facility_type="senior_meeting_point")
    assert _one(seniors, indicator_id="supply_ratio")["value"] == pytest.approx(40 / 100 * 1000)
    assert _one(seniors, indicator_id="supply_gap")["value"] == pytest.approx(5 * 100 / 1000 - 40)  # target 5 per 1,000
    # E2SFCA: 05954 is the only district with demand, so it takes all the places it reaches: Witten (10 km, weight
    # 0.68) and Lüdenscheid (25 km, weight 0.22), 40 + 35 places for its 100 persons aged 65+
    access = _one(seniors, indicator_id="e2sfca_accessibility")
    assert access["value"] == pytest.approx((40 + 35) / 100 * 1000)
    assert (access["convention"], access["band"], access["area_name"]) == ("senior_meeting_point", "65+", "Ennepe-Ruhr-Kreis")
    # the groups 0–18 cannot form the youth centres' band 6–17: flagged, not guessed
    youth = _one(coverage, indicator_id="supply_ratio", area_code="05954", facility_type="youth_centre",
                 reference_date=date(2018, 12, 31))
    assert (youth["value"], youth["flag"]) == (None, "age_groups_do_not_align")
    assert _one(coverage, indicator_id="supply_gap", area_code="05954", facility_type="tutoring",
                reference_date=date(2018, 12, 31))["flag"] in ("no_target_configured", "age_groups_do_not_align")


def test_usage_marts_count_distinct_visitors(con, tmp_path):
    _insert(con, "staging.population", _population())
    _insert(con, "staging.checkins", _checkins())
    tables = build_resilience_marts(con, _config(tmp_path))
    _write(con, tables)
    for table in ("reach_by_district", "reach_by_facility", "demand_anomalies", "demand_trends", "demand_projection"):
        columns = {name: kind for name, kind, *_ in con.sql(f"DESCRIBE marts.{table}").fetchall()}
        assert columns["distinct_visitors"] == "BIGINT" and "unit" in columns, table
    stored = con.sql("SELECT * FROM marts.reach_by_district").pl()

    penetration = _one(stored, indicator_id="penetration_rate", convention="senior_meeting_point", area_code="05954")
    # p1, p2, p3 live in 05954 and are 65+: 3 per 100 persons aged 65+
    assert (penetration["value"], penetration["distinct_visitors"]) == (pytest.approx(30.0), 3)
    assert (penetration["period_start"], penetration["period_end"]) == (date(2024, 1, 1), date(2024, 1, 31))
    unknown = _one(stored, indicator_id="penetration_rate", convention="senior_meeting_point", area_code=None)
    assert (unknown["flag"], unknown["distinct_visitors"]) == ("home_district_unknown", 1)
    rate = _one(stored, indicator_id="participation_rate", convention="65-74", area_code="05954")
    assert rate["value"] == pytest.approx(2 / 60 * 1000)

    outside = _one(con.sql("SELECT * FROM marts.reach_by_facility").pl(), facility_id=WITTEN)
    assert (outside["value"], outside["distinct_visitors"]) == (pytest.approx(25.0), 4)  # p4 of p1–p4

    day = _one(con.sql("SELECT * FROM marts.demand_anomalies").pl(), visit_date=date(2024, 1, 10))
    assert (day["visits"], day["distinct_visitors"], day["flag"], day["value"]) == (5, 5, "insufficient_history", None)
    week = _one(con.sql("SELECT * FROM marts.demand_trends").pl(), indicator_id="weekly_visits")
    assert (week["week"], week["value"], week["distinct_visitors"], week["unit"]) == (date(2024, 1, 8), 5.0, 5, "visits")
    assert con.sql("SELECT count(*) FROM marts.demand_projection").fetchall() == [(0,)]  # no projection configured
    # no pseudonym leaves the marts
    for table in tables:
        assert "visitor_pseudonym" not in con.sql(f"SELECT * FROM {table} LIMIT 0").columns

    # exports publish every mart (area marts also wide), and suppress the usage values below 5 visitors
    published = {e.table: e for e in mart_exports(con, 5)}
    for export in published.values():
        if export.subject_type == "area":
            wide_by_area(export.frame)
    reach = published["marts.reach_by_district"].frame
    assert reach.filter(indicator_id="penetration_rate", subject_id="05954")["flag"].to_list() == ["suppressed_small_count"]


def _spied(monkeypatch) -> list[str]:
    """The pieces build_resilience_marts computes (not read back from cache.pieces), in order."""
    import warehouse.marts_resilience as marts

    computed = []
    month_pieces, trailing, base = marts._month_pieces, marts.trailing_visitors, marts.base_period_pieces
    monkeypatch.setattr(marts, "_month_pieces", lambda con, month, *rest: computed.append(f"month {month[0]}")
                        or month_pieces(con, month, *rest))
    monkeypatch.setattr(marts, "trailing_visitors", lambda con, facility, windows, changed_from=None: computed.append(
        f"facility {facility}" + (f" from {changed_from}" if changed_from else ""))
        or trailing(con, facility, windows, changed_from))
    monkeypatch.setattr(marts, "base_period_pieces", lambda *args: computed.append("base period") or base(*args))
    return computed


def _sorted(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    return {name: frame.sort(pl.all(), nulls_last=True) for name, frame in tables.items()}


def test_pieces_of_unchanged_checkins_are_read_back_not_computed(con, tmp_path, monkeypatch):
    _insert(con, "staging.population", _population())
    march = _checkins().with_columns(pl.col("visited_at").dt.offset_by("8w"), pl.col("visit_date").dt.offset_by("8w"),
                                     source_file=pl.lit("march.csv"))
    _insert(con, "staging.checkins", pl.concat([_checkins(), march]))
    computed = _spied(monkeypatch)
    first = build_resilience_marts(con, _config(tmp_path))
    assert computed == ["month 2024-01-01", "month 2024-03-01", f"facility {WITTEN}", "base period"]
    kept = [pl.read_ipc(io.BytesIO(frame)) for (frame,) in con.sql("SELECT frame FROM cache.pieces").fetchall()]
    assert kept and not any("visitor_pseudonym" in frame.columns for frame in kept)  # counts only, no visitors

    computed.clear()
    again = build_resilience_marts(con, _config(tmp_path))
    assert computed == []
    for name, frame in _sorted(again).items():
        assert frame.equals(_sorted(first)[name]), name

    # one visitor of March moved: March and the base period (January to March 2024) are computed again, January is
    # read back, and the facility's trailing-window visitors are updated from the week of the change (4 March)
    con.execute("UPDATE staging.checkins SET home_district = '05914' WHERE source_file = 'march.csv' AND source_row = 2")
    changed = build_resilience_marts(con, _config(tmp_path))
    assert computed == ["month 2024-03-01", f"facility {WITTEN} from 2024-03-04", "base period"]
    con.execute("DELETE FROM cache.pieces")
    for name, frame in _sorted(build_resilience_marts(con, _config(tmp_path))).items():
        assert frame.equals(_sorted(changed)[name]), name
    reach = changed["marts.reach_by_facility"].filter(pl.col("period_start") == date(2024, 3, 1))
    assert reach["numerator"].to_list() == [2.0]  # p1 and p4 now live outside 05954

    # new population figures (or another registry, other bookings or settings) change every piece
    computed.clear()
    con.execute("UPDATE staging.population SET value = value + 1 WHERE NOT is_total")
    build_resilience_marts(con, _config(tmp_path))
    assert sorted(computed) == ["base period", "facility " + WITTEN, "month 2024-01-01", "month 2024-03-01"]

    # so does other code: results of an older version are never served
    computed.clear()
    monkeypatch.setattr("warehouse.piece_cache.code_fingerprint", lambda: "another version")
    build_resilience_marts(con, _config(tmp_path))
    assert len(computed) == 4

    # a month without check-ins leaves nothing behind, and the facility's windows are updated from its first
    # deleted week on, equal to computing them again
    computed.clear()
    con.execute("DELETE FROM staging.checkins WHERE source_file = 'march.csv'")
    without_march = build_resilience_marts(con, _config(tmp_path))
    assert f"facility {WITTEN} from 2024-03-04" in computed
    pieces = {piece for (piece,) in con.sql("SELECT DISTINCT piece FROM cache.pieces").fetchall()}
    assert pieces == {"month 2024-01-01", f"facility {WITTEN}", "base period 2024-01-01 2024-03-31"}
    con.execute("DELETE FROM cache.pieces")
    for name, frame in _sorted(build_resilience_marts(con, _config(tmp_path))).items():
        assert frame.equals(_sorted(without_march)[name]), name


def test_finance_is_a_delivery_format_and_feeds_the_fiscal_marts(con, tmp_path):
    ctx = IngestContext(landing=tmp_path / "landing", quarantine=tmp_path / "quarantine", validation=tmp_path / "gx")
    outcome = ingest_file(con, "r1", "finance", "municipal_finance", FINANCE, ctx)
    assert (outcome.status, outcome.rows_loaded, outcome.rows_quarantined) == ("loaded", 28, 0)

    tables = build_resilience_marts(con, _config(tmp_path, registry=None))
    _write(con, tables)
    fiscal = con.sql("SELECT * FROM marts.fiscal_indicators WHERE area_code = '05914'").pl()
    debt = _one(fiscal, indicator_id="debt_per_capita", year=2022)
    assert debt["value"] == pytest.approx((434_010_000 + 924_630_000) / 188_700)
    assert (debt["area_name"], debt["unit"], debt["population_basis"]) == ("Hagen, Stadt [SYNTHETISCH]", "EUR per inhabitant", "Zensus 2022")
    tax = _one(fiscal, indicator_id="tax_revenue_per_capita_4y", year=2022)
    assert tax["value"] == pytest.approx((250_931_000 / 195_658 + 231_980_000 / 195_269 + 255_195_000 / 194_880
                                          + 254_745_000 / 188_700) / 4)
    assert _one(fiscal, indicator_id="tax_revenue_per_capita_4y", year=2021)["flag"] == "fewer_than_4_years"

    stress = con.sql("SELECT * FROM marts.fiscal_stress WHERE area_code = '05914'").pl()
    assert set(stress["base_year"]) == {2022} and (stress["convention"] == stress["scenario"]).all()
    hagen = _one(stress, indicator_id="stress_class", scenario="baseline")
    # Liquiditätskredite of 924.63 M € for 188,700 inhabitants are far above the red 3,000 €/inhabitant
    assert (hagen["label"], hagen["value"]) == ("red", 2.0)
    assert set(stress.filter(scenario="demography")["flag"]) == {"projection_missing"}

    # a revised delivery of Hagen 2022 replaces the stored row
    revised = tmp_path / "finance_2022_revised.csv"
    lines = FINANCE.read_text(encoding="utf-8").splitlines()
    revised.write_text("\n".join([lines[0]] + [l.replace(",188700,", ",190000,") for l in lines[1:] if l.startswith("05914,") and ",2022," in l]) + "\n", encoding="utf-8")
    again = ingest_file(con, "r2", "finance", "municipal_finance", revised, ctx)
    assert (again.status, again.message) == ("loaded", "1 area-year(s) replaced earlier values")
    assert con.sql("SELECT population, source_file FROM staging.finance WHERE area_code = '05914' AND year = 2022").fetchall() == [
        (190_000, revised.name)]
    assert con.sql("SELECT count(*) FROM staging.finance").fetchall() == [(28,)]


def test_a_wrong_resilience_setting_names_file_and_field(tmp_path):
    text = (ROOT / "config" / "resilience.toml").read_text(encoding="utf-8").replace('root = ".."', f'root = "{ROOT}"')
    broken = tmp_path / "resilience.toml"
    broken.write_text(text.replace("[coverage.repair_cafe]", "[coverage.repair_shop]"), encoding="utf-8")
    with pytest.raises(ResilienceConfigError, match=r"resilience.toml: field 'coverage.repair_shop': unknown facility type"):
        load_resilience_config(broken)
    broken.write_text(text.replace("band = [6, 18]", "band = [18, 6]", 1), encoding="utf-8")
    with pytest.raises(ResilienceConfigError, match=r"field 'coverage.youth_centre.band'"):
        load_resilience_config(broken)
    broken.write_text(text.replace("# file = ", "file = "), encoding="utf-8")
    with pytest.raises(ResilienceConfigError, match=r"field 'projection.file': file .* does not exist"):
        load_resilience_config(broken)


def test_candidate_rooms_are_idle_rooms_in_districts_with_a_projected_gap():

    from conftest import ROOT, SAMPLE
    from transforms.facility_registry import load_facility_registry
    from transforms.room_bookings import parse_room_bookings
    from warehouse.marts_resilience import candidate_room_list

    registry = load_facility_registry(ROOT / "config" / "facilities.toml")
    bookings_file = SAMPLE / "usage" / "bookings_2024-Q1.csv"
    bookings = parse_room_bookings(bookings_file.read_bytes(), bookings_file.name)
    gap_rows = pl.DataFrame({
        "indicator_id": ["capacity_gap"] * 3, "variant": ["medium", "medium", "low"],
        "scenario": ["constant_rates"] * 3, "area_code": ["05914", "05954", "05954"],
        "year": [2030, 2030, 2030], "value": [12.0, 0.0, 50.0],
    })
    rooms = candidate_room_list(bookings, registry, gap_rows)
    hagen_rooms = set(registry.rooms.join(registry.facilities.select("facility_id", "area_code"), on="facility_id")
                      .filter(pl.col("area_code") == "05914")["room_id"])
    in_2030 = rooms.filter(pl.col("year") == 2030)
    # only the district with a positive gap in the medium variant, and only rooms that had idle hours
    assert set(in_2030["area_code"]) == {"05914"} and set(in_2030["room_id"]) <= hagen_rooms
    assert in_2030.height > 0 and (in_2030["gap"] == 12.0).all() and (in_2030["idle_hours_per_week"] > 0).all()
    assert rooms.filter(pl.col("year") == 2040).is_empty()  # no gap given for 2040
    assert candidate_room_list(bookings, registry, gap_rows.clear()).is_empty()


def test_distinct_visitors_of_trailing_weeks_equal_counting_every_window():
    """The running count of merged coverage runs (warehouse/sql/trailing_visitors.sql) against the definition: the
    visitors with a visit in the window, counted window by window, for gaps shorter, equal to and longer than the
    window, visits on any weekday."""
    import random

    from warehouse.checkin_reads import trailing_visitors

    rng = random.Random(7)
    monday = date(2024, 1, 1)
    rows = {(f, o, f"v{v}", monday + timedelta(days=rng.randrange(30 * 7)))
            for f, o, v in ((rng.choice("ab"), rng.choice("xy"), rng.randrange(25)) for _ in range(400))}
    visits = pl.DataFrame(list(rows), schema=["facility_id", "offer", "visitor_pseudonym", "visit_date"], orient="row")
    visitor_weeks = visits.with_columns(week=pl.col("visit_date").dt.truncate("1w"))
    series = ["facility_id", "offer"]
    con = duckdb.connect()
    con.execute("CREATE SCHEMA staging")
    con.register("visits", visits)
    con.execute("CREATE TABLE staging.checkins AS SELECT * FROM visits")
    every_window = pl.concat([trailing_visitors(con, f, [1, 3, 4]) for f in ("a", "b")])
    for weeks in (1, 3, 4):
        steps = every_window.filter(pl.col("weeks") == weeks).drop("weeks")
        ends = pl.DataFrame({"week": [monday + timedelta(weeks=n) for n in range(36)]}).join(
            visitor_weeks.select(series).unique(), how="cross")
        counted = ends.sort("week").join_asof(steps.sort("week"), on="week", by=series, check_sortedness=False)
        for row in counted.iter_rows(named=True):
            expected = visitor_weeks.filter(
                (pl.col("facility_id") == row["facility_id"]) & (pl.col("offer") == row["offer"])
                & pl.col("week").is_between(row["week"] - timedelta(weeks=weeks - 1), row["week"])
            )["visitor_pseudonym"].n_unique()
            assert (row["distinct_visitors"] or 0) == expected, (weeks, row)

def test_trailing_visitors_updated_from_a_changed_week_equal_all_of_history_again():
    """A facility's trailing-window visitors after a change from some week on: the stored rows before it and the
    rows computed from the visits of the longest window before it (spliced_steps) equal computing every week again,
    for added, moved and deleted visits, windows that start before the history and offers that end or begin."""
    import random

    from warehouse.checkin_reads import trailing_visitors
    from warehouse.marts_resilience import updated_steps

    rng = random.Random(11)
    monday = date(2024, 1, 1)

    def visits(n: int, first_day: int, days: int, offers: str) -> set:
        return {("a", rng.choice(offers), f"v{rng.randrange(20)}", monday + timedelta(days=first_day + rng.randrange(days)))
                for _ in range(n)}

    def warehouse(rows: set) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        con.execute("CREATE SCHEMA staging")
        con.execute("CREATE TABLE staging.checkins (facility_id VARCHAR, offer VARCHAR, visitor_pseudonym VARCHAR, visit_date DATE)")
        con.executemany("INSERT INTO staging.checkins VALUES (?, ?, ?, ?)", sorted(rows))
        return con

    windows = [1, 4, 12]
    history = visits(300, 0, 30 * 7, "xy")
    for changed_week in (0, 3, 17, 29):
        first = monday + timedelta(weeks=changed_week)
        later = {v for v in history if v[3] >= first}
        kept = history - set(rng.sample(sorted(later), len(later) // 3))  # some visits deleted …
        now = kept | visits(60, changed_week * 7, 5 * 7, "xz")  # … others added, with a new offer z
        stored = {"trailing_visitors": trailing_visitors(warehouse(history), "a", windows)}
        again = trailing_visitors(warehouse(now), "a", windows)
        updated = updated_steps(warehouse(now), "a", windows, stored, first)["trailing_visitors"]
        assert updated.equals(again), changed_week
