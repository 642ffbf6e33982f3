"""Declared statistics sources: which years the nightly run asks for, how answers land, and that fetching twice or
failing changes nothing it should not."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest

from sources.genesis.client import Credentials, GenesisClient, RetryPolicy
from sources.genesis.config import StatisticsConfigError, load_statistics_config
from sources.genesis.fetch import fetch_statistics_sources, land_response, latest_year, plan_request, regional_selection
from test_genesis_client import EXCERPT, PASSWORD, USER, Answer, LocalService, zip_answer
from transforms.genesis_ffcsv import parse_genesis_ffcsv
from warehouse.migrate import migrate

ROOT = Path(__file__).resolve().parents[1]


def source_entry(name: str, **overrides) -> str:
    entry = {"name": name, "service": "local", "table": "12411-01-01-4", "format": "ffcsv",
             "regional_variable": "KREISE", "regional_keys": ["05*"], "years": [2018], "enabled": True}
    entry.update(overrides)
    lines = ["[[sources]]"] + [f"{k} = {json.dumps(v)}" for k, v in entry.items()]
    return "\n".join(lines)


def write_statistics_config(tmp_path: Path, url: str, *entries: str, lookback: int = 2) -> Path:
    path = tmp_path / "statistics_sources.toml"
    path.write_text(f'lookback_years = {lookback}\n[services.local]\nbase_url = "{url}"\n' + "\n".join(entries) + "\n",
                    encoding="utf-8")
    return path


@pytest.fixture
def build(tmp_path: Path) -> Path:
    path = tmp_path / "build.duckdb"
    with duckdb.connect(str(path)) as con:
        migrate(con)
    return path


# -- planning -----------------------------------------------------------------------------------------------------


def test_the_bundled_configuration_declares_the_needed_tables_all_disabled():
    config = load_statistics_config(ROOT / "config" / "statistics_sources.toml")
    assert config.enabled_sources == ()
    assert {s.table for s in config.sources} >= {"12411-02-03-5", "12421-01-01-4", "71327-01-05-4", "71231-01-03-5"}
    gemeinden = config.source("population_gemeinden_ennepe_ruhr")
    assert (gemeinden.regional_variable, gemeinden.regional_keys, gemeinden.ingest_format) == ("GEMEIN", ("05954*",), "genesis_ffcsv")
    assert gemeinden.population_basis_for(2018) == "Zensus 2011"
    assert gemeinden.population_basis_for(2023) == "Zensus 2022"
    assert config.source("municipal_debt_nrw").ingest_format == "genesis_municipal_debt"


def test_a_source_naming_an_undeclared_service_is_refused(tmp_path):
    path = write_statistics_config(tmp_path, "http://x/", source_entry("s", service="nowhere"))
    with pytest.raises(StatisticsConfigError, match="source 's': service 'nowhere' is not declared under \\[services\\]"):
        load_statistics_config(path)


def test_plan_asks_for_everything_first_then_only_newer_years_plus_the_lookback(tmp_path):
    config = load_statistics_config(write_statistics_config(tmp_path, "http://x/", source_entry("s", years=[2011])))
    s = config.source("s")
    assert plan_request(s, None, 2, 2025).__dict__ == {"source": "s", "start_year": 2011, "end_year": 2025}
    assert (plan_request(s, 2023, 2, 2025).start_year, plan_request(s, 2023, 2, 2025).end_year) == (2022, 2025)
    assert plan_request(s, 2023, 0, 2025).start_year == 2024
    assert plan_request(s, 2025, 0, 2025) is None  # nothing newer can exist yet
    assert plan_request(s, 2012, 5, 2025).start_year == 2011  # never before the declared first year


def test_a_declared_last_year_is_kept_for_projections(tmp_path):
    config = load_statistics_config(write_statistics_config(tmp_path, "http://x/", source_entry("p", years=[2021, 2040])))
    assert plan_request(config.source("p"), None, 2, 2025).end_year == 2040


def test_a_kreis_in_a_gemeinde_table_selects_all_its_gemeinden():
    assert regional_selection("12411-02-03-5", ["05954"]) == ("GEMEIN", ("05954*",))
    assert regional_selection("12411-02-03-5-B", ["05954", "05914"]) == ("GEMEIN", ("05954*", "05914*"))
    assert regional_selection("12411-02-03-4", ["05954"]) == ("KREISE", ("05954",))
    assert regional_selection("12411-02-03-4", ["05"]) == ("KREISE", ("05*",))
    assert regional_selection("12411-02-03-5", ["05954008"]) == ("GEMEIN", ("05954008",))


def test_latest_year_reads_the_warehouse_within_the_source_regions(tmp_path, build):
    config = load_statistics_config(write_statistics_config(tmp_path, "http://x/", source_entry("s")))
    with duckdb.connect(str(build)) as con:
        assert latest_year(con, config.source("s")) is None
        con.execute(
            """INSERT INTO staging.population VALUES
               ('12411-01-01-4', '05954', 'Ennepe-Ruhr-Kreis', 'kreis', DATE '2022-12-31', 'total', 'Insgesamt', 0, NULL, true, 1, NULL, NULL, 'f', 2, 'x', 'r'),
               ('12411-01-01-4', '09771', 'Aichach-Friedberg', 'kreis', DATE '2023-12-31', 'total', 'Insgesamt', 0, NULL, true, 1, NULL, NULL, 'f', 3, 'x', 'r')"""
        )
        assert latest_year(con, config.source("s")) == 2022  # 09771 (Bavaria) is outside 05*


# -- landing ------------------------------------------------------------------------------------------------------


def _fetch_once(tmp_path: Path):
    service = LocalService()
    try:
        service.script("data/tablefile", zip_answer())
        with GenesisClient("local", service.url, Credentials(USER, PASSWORD), sleep=lambda s: None) as client:
            return client.table("12411-01-01-4", regional_variable="KREISE", regional_keys=("05*",), start_year=2023)
    finally:
        service.close()


def test_an_answer_lands_unchanged_with_a_sidecar_and_landing_it_again_writes_nothing(tmp_path):
    response = _fetch_once(tmp_path)
    landing = tmp_path / "landing"
    first = land_response(response, "population_kreise", "12411-01-01-4", "genesis_ffcsv", landing)
    files_before = sorted(p.relative_to(landing) for p in landing.rglob("*") if p.is_file())
    second = land_response(response, "population_kreise", "12411-01-01-4", "genesis_ffcsv", landing)

    assert first == second
    assert sorted(p.relative_to(landing) for p in landing.rglob("*") if p.is_file()) == files_before
    assert len(files_before) == 3
    assert first.body_path.read_bytes() == response.body  # kept exactly as received
    assert first.table_path.read_bytes() == EXCERPT.read_bytes()
    assert first.table_path.name == "12411-01-01-4_population_kreise_flat.csv"
    sidecar = json.loads(first.sidecar_path.read_text(encoding="utf-8"))
    assert sidecar["request"]["startyear"] == "2023" and sidecar["service"] == "local"
    assert sidecar["http_status"] == 200 and sidecar["body_sha256"] == first.body_sha256
    assert sidecar["service_file_name"] == "12411-01-01-4_1749623963823_de_flat.csv"
    assert USER not in first.sidecar_path.read_text() and PASSWORD not in first.sidecar_path.read_text()
    # the ingest reads the landed file with the existing parser; the table code comes from the stable name
    assert parse_genesis_ffcsv(first.table_path.read_bytes(), first.table_path.name)["table_code"].unique().to_list() == ["12411-01-01-4"]


# -- the nightly step -----------------------------------------------------------------------------------------------


def _client_factory(url: str):
    def factory(service):
        return GenesisClient(service.name, url, Credentials(USER, PASSWORD), timeout=(2.0, 0.5),
                             retry=RetryPolicy(attempts=2, backoff_seconds=0), sleep=lambda s: None)
    return factory


def test_enabled_sources_are_fetched_landed_recorded_and_a_rerun_is_idempotent(tmp_path, build):
    service = LocalService()
    try:
        service.script("data/tablefile", zip_answer())
        config = write_statistics_config(tmp_path, service.url, source_entry("kreise"),
                                         source_entry("switched_off", enabled=False))
        kwargs = dict(today=date(2025, 6, 30), client_factory=_client_factory(service.url))
        report = fetch_statistics_sources(config, build, tmp_path / "landing", "run-1", **kwargs)
        again = fetch_statistics_sources(config, build, tmp_path / "landing", "run-2", **kwargs)
    finally:
        service.close()

    assert report.failures == ()
    [entry] = report.files_to_ingest()
    assert entry["source_name"] == "kreise" and entry["format"] == "genesis_ffcsv"
    assert Path(entry["path"]).read_bytes() == EXCERPT.read_bytes()
    assert again.files_to_ingest() == report.files_to_ingest()
    assert [s.form["startyear"] for s in service.seen] == ["2018", "2018"]  # nothing loaded yet: all declared years
    assert [s.form["endyear"] for s in service.seen] == ["2025", "2025"]
    with duckdb.connect(str(build)) as con:
        rows = con.sql("SELECT source_name, table_code, run_id, http_status, request_params->>'regionalkey' FROM raw.genesis_responses").fetchall()
    assert rows == [("kreise", "12411-01-01-4", "run-1", 200, "05*")]


@pytest.mark.parametrize(
    "answer",
    [
        Answer(200, b'{"Status": {"Code": 9', "application/json"),  # malformed
        Answer(503, b"down", "text/plain"),  # stays down
    ],
    ids=["malformed", "service-down"],
)
def test_a_failing_source_is_reported_lands_nothing_and_leaves_the_warehouse_unchanged(tmp_path, build, answer):
    service = LocalService()
    try:
        service.script("data/tablefile", answer)
        config = write_statistics_config(tmp_path, service.url, source_entry("kreise"))
        report = fetch_statistics_sources(config, build, tmp_path / "landing", "run-1", today=date(2025, 6, 30),
                                          client_factory=_client_factory(service.url))
    finally:
        service.close()
    [(name, message)] = report.failures
    assert name == "kreise" and "table 12411-01-01-4" in message
    assert report.files_to_ingest() == [] and not (tmp_path / "landing").exists()
    with duckdb.connect(str(build)) as con:
        assert con.sql("SELECT count(*) FROM raw.genesis_responses").fetchall() == [(0,)]


def test_a_source_without_credentials_fails_with_a_hint_and_asks_nothing(tmp_path, build):
    service = LocalService()
    try:
        service.script("data/tablefile", zip_answer())
        config = write_statistics_config(tmp_path, service.url, source_entry("kreise"))
        report = fetch_statistics_sources(config, build, tmp_path / "landing", "run-1", today=date(2025, 6, 30),
                                          client_factory=lambda s: GenesisClient(s.name, service.url, None))
    finally:
        service.close()
    assert "no credentials: set GENESIS_TOKEN" in report.failures[0][1] and service.seen == []


def test_a_missing_secret_block_fails_only_its_service(prefect_backend):
    from sources.genesis.client import GenesisAuthError
    from sources.genesis.config import Service
    from sources.genesis.fetch import client_for

    service = Service(name="regionalstatistik", base_url="http://127.0.0.1:9/genesisws/rest/2020/",
                      credentials_block="no-such-genesis-block")
    with pytest.raises(GenesisAuthError, match="'no-such-genesis-block' could not be loaded"):
        client_for(service)
