"""The nightly flow end to end on the sample data, as `make run` runs it, in a temporary home."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from conftest import ORDS_202309
from flows.config import load_config
from flows.nightly import nightly


def run(config: Path) -> dict:
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        return nightly(config_path=str(config))


def query(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.sql(sql).fetchall()


SNAPSHOT_TABLES = ["staging.population", "staging.repair_items", "raw.open_repair_records",
                   "marts.demography_indicators", "marts.repair_cafe_monthly"]


def snapshot(path: Path) -> dict[str, str]:
    """A content fingerprint per table, independent of row order."""
    with duckdb.connect(str(path), read_only=True) as con:
        return {t: str(con.sql(f"SELECT count(*), sum(hash(COLUMNS(*))) FROM (SELECT * EXCLUDE (loaded_run_id) FROM {t})"
                               if t == "staging.population" else
                               f"SELECT count(*), sum(hash(COLUMNS(*))) FROM {t}").fetchall()) for t in SNAPSHOT_TABLES}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, prefect_backend):
    from conftest import ORDS_202303, GENESIS_2018, write_config
    import shutil

    base = tmp_path_factory.mktemp("nightly")
    for sub, f in (("statistics", GENESIS_2018), ("open-repair", ORDS_202303), ("open-repair", ORDS_202309)):
        (base / "inbox" / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, base / "inbox" / sub)
    config = write_config(base, {"population": ("genesis_csv", "inbox/statistics/*.csv"),
                                 "repair_cafes": ("open_repair", "inbox/open-repair/*.csv")})
    return config, run(config)


def test_first_run_loads_everything_and_says_where_it_is(first_run):
    config, summary = first_run
    paths = load_config(config).paths
    statuses = {f["file_name"]: (f["status"], f["rows_read"], f["rows_loaded"], f["rows_quarantined"]) for f in summary["files"]}
    assert statuses == {
        "12411-02-03-5-B_2018_kreise.csv": ("loaded", 26_406, 26_406, 0),
        "anstiftung_202303.csv": ("loaded", 12_399, 12_399, 0),
        "anstiftung_202309.csv": ("loaded", 15_100, 15_100, 0),
    }
    assert summary["warehouse"] == str(paths.warehouse) and paths.warehouse.exists()
    assert Path(summary["validation_report"]).exists()
    assert (Path(summary["exports"]) / "manifest.json").exists()
    assert not list(paths.warehouse.parent.glob(".build-*"))
    assert query(paths.warehouse, "SELECT status, count(*) FROM staging.repair_items GROUP BY ALL ORDER BY ALL") == [
        ("current", 15_100), ("withdrawn", 32)]
    assert query(paths.warehouse, "SELECT count(*) FROM audit.validation_results WHERE NOT success AND blocking") == [(0,)]


def test_hagen_indicators_by_hand(first_run):
    config, _ = first_run
    warehouse = load_config(config).paths.warehouse
    # Hagen 31.12.2018 from the sample file: under 20 = 5718+5429+6881+8833+5843+4060 = 36,764;
    # 20–64 = 10547+11642+11225+10909+10344+12465+15532+14865+12536 = 110,065; 65+ = 19055+22930 = 41,985
    rows = dict(((i, c), (v, f)) for i, c, v, f in query(
        warehouse,
        """SELECT indicator_id, convention, value, flag FROM marts.demography_indicators
           WHERE area_code = '05914' AND sex = 'total'""",
    ))
    assert rows[("youth_ratio", "regionalatlas")][0] == pytest.approx(36_764 / 110_065 * 100)
    assert rows[("old_age_ratio", "regionalatlas")][0] == pytest.approx(41_985 / 110_065 * 100)
    assert rows[("dependency_ratio", "regionalatlas")][0] == pytest.approx((36_764 + 41_985) / 110_065 * 100)
    assert round(rows[("old_age_ratio", "regionalatlas")][0], 1) == 38.1  # as published in 12411-08-01-4-B
    assert rows[("old_age_ratio", "it_nrw")] == (None, "age_groups_do_not_align")
    assert rows[("share_80_plus", "regionalatlas")] == (None, "age_groups_do_not_align")


def test_exports_match_their_manifest(first_run):
    config, summary = first_run
    latest = Path(summary["exports"])
    manifest = json.loads((latest / "manifest.json").read_text())
    assert manifest["run_id"] == summary["run_id"]
    assert manifest["data_vintage"] == {"statistics:12411-02-03-5-B": "2018-12-31", "open_repair:anstiftung": "2023-09"}
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((latest / name).read_bytes()).hexdigest() == entry["sha256"], name
    long = pl.read_parquet(latest / "demography_indicators.parquet")
    assert {"indicator_id", "subject_id", "period", "value", "unit", "flag"} <= set(long.columns)
    repairs = pl.read_csv(latest / "repair_cafe_indicators.csv")
    assert repairs.filter(pl.col("flag") == "suppressed_small_count")["value"].null_count() == \
        repairs.filter(pl.col("flag") == "suppressed_small_count").height > 0
    catalogue = json.loads((latest / "indicator_catalogue.json").read_text())
    assert {c["id"] for c in catalogue} >= {"youth_ratio", "old_age_ratio", "dependency_ratio", "share_80_plus",
                                             "population_change", "repair_events", "repairs", "repairs_per_event", "fix_rate"}


def test_second_run_with_an_analyst_reading_changes_nothing(first_run):
    config, _ = first_run
    warehouse = load_config(config).paths.warehouse
    before = snapshot(warehouse)
    analyst = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time\n"
         f"con = duckdb.connect({str(warehouse)!r}, read_only=True)\n"
         "print(con.sql('SELECT count(*) FROM staging.repair_items').fetchall()[0][0], flush=True)\n"
         "time.sleep(120)\n"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert analyst.stdout.readline().strip() == "15132"  # the analyst holds the file open from here on
        summary = run(config)
        assert analyst.poll() is None
    finally:
        analyst.kill()
        analyst.wait()
    # same files, configuration and code: nothing to rebuild, the published warehouse is not even copied
    assert summary["nothing_new"] and summary["files"] == []
    assert snapshot(warehouse) == before
    runs = query(warehouse, "SELECT status, count(*) FROM audit.runs GROUP BY ALL")
    assert runs == [("published", 1)]


def test_a_file_seen_before_is_skipped_when_a_run_has_something_new(first_run, tmp_path):
    config, _ = first_run
    warehouse = load_config(config).paths.warehouse
    before = query(warehouse, "SELECT count(*) FROM staging.repair_items")
    extra = config.parent / "inbox" / "open-repair" / "notes.csv"
    extra.write_text("not an ORDS export\n")  # something new, so the run goes ahead
    try:
        summary = run(config)
    finally:
        extra.unlink()
    statuses = {f["file_name"]: f["status"] for f in summary["files"]}
    assert statuses["anstiftung_202309.csv"] == statuses["12411-02-03-5-B_2018_kreise.csv"] == "unchanged"
    assert statuses["notes.csv"] == "quarantined"
    assert query(warehouse, "SELECT count(*) FROM staging.repair_items") == before


def test_bad_deliveries_are_quarantined_reported_and_change_nothing(first_run):
    config, _ = first_run
    paths = load_config(config).paths
    inbox = config.parent / "inbox" / "open-repair"
    before = snapshot(paths.warehouse)
    (inbox / "anstiftung_202310.csv").write_bytes(ORDS_202309.read_bytes()[:50_000])  # truncated
    (inbox / "anstiftung_202311.csv").write_bytes(ORDS_202309.read_bytes().decode().encode("utf-16"))
    (inbox / "anstiftung_202312.csv").write_bytes(ORDS_202309.read_bytes())  # duplicate delivery
    (inbox / "anstiftung_202401.csv").write_bytes(b"")
    try:
        summary = run(config)
    finally:
        for name in ("anstiftung_202310.csv", "anstiftung_202311.csv", "anstiftung_202312.csv", "anstiftung_202401.csv"):
            (inbox / name).unlink()
    outcomes = {f["file_name"]: f for f in summary["files"]}
    assert outcomes["anstiftung_202310.csv"]["status"] == "quarantined"
    assert "truncated" in outcomes["anstiftung_202310.csv"]["message"]
    assert outcomes["anstiftung_202311.csv"]["status"] == "quarantined"
    assert "anstiftung_202311.csv, row 1: not a text file" in outcomes["anstiftung_202311.csv"]["message"]
    assert outcomes["anstiftung_202312.csv"]["status"] == "duplicate"
    assert "empty file" in outcomes["anstiftung_202401.csv"]["message"]
    assert snapshot(paths.warehouse) == before
    quarantined = query(paths.warehouse, f"SELECT file_name FROM audit.quarantine WHERE run_id = '{summary['run_id']}' ORDER BY 1")
    assert [f for (f,) in quarantined] == ["anstiftung_202310.csv", "anstiftung_202311.csv",
                                           "anstiftung_202312.csv", "anstiftung_202401.csv"]
    assert {p.name.split("_", 1)[1] for p in paths.quarantine.glob("*.reason.txt")} >= {
        "anstiftung_202310.csv.reason.txt", "anstiftung_202311.csv.reason.txt", "anstiftung_202312.csv.reason.txt",
        "anstiftung_202401.csv.reason.txt"}


def test_an_event_for_a_file_already_taken_does_nothing(first_run, tmp_path):
    from flows.nightly import ingest_usage_log

    config, _ = first_run
    warehouse = load_config(config).paths.warehouse
    runs_before = query(warehouse, "SELECT count(*) FROM audit.runs")
    gone = config.parent / "inbox" / "open-repair" / "anstiftung_202401.csv"  # matches the source, not there
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        summary = ingest_usage_log(path=str(gone), config_path=str(config))
    assert summary["nothing_new"] and summary["files"] == []
    assert query(warehouse, "SELECT count(*) FROM audit.runs") == runs_before


def test_usage_logs_in_pieces_publish_what_whole_files_publish(tmp_path, prefect_backend):
    """The nightly flow with pieces of 100 kB (each sample log 8–20 pieces, every piece but the last committed in
    the build) publishes the check-ins, quarantine and usage marts that the same logs give read whole."""
    from conftest import ROOT, SAMPLE, write_config

    published = {}
    for name, extra in (("whole", ""), ("pieces", "\n[execution]\npiece_mb = 0.1\n")):
        base = tmp_path / name
        base.mkdir()
        config = write_config(base, {"checkins": ("checkin_log", str(SAMPLE / "usage" / "checkins_*"))})
        config.write_text(config.read_text() + f'\n[facilities]\nregistry = "{ROOT / "config" / "facilities.toml"}"\n'
                          + extra)
        summary = run(config)
        warehouse = load_config(config).paths.warehouse
        published[name] = (
            [(f["file_name"], f["rows_read"], f["rows_loaded"], f["rows_quarantined"]) for f in summary["files"]],
            query(warehouse, "SELECT count(*), sum(hash(COLUMNS(* EXCLUDE (loaded_run_id)))) FROM staging.checkins"),
            query(warehouse, "SELECT file_name, row_number, rule, reason FROM audit.quarantine ORDER BY ALL"),
            # sums of doubles depend on the order DuckDB reads the rows in: compared to 9 decimals
            query(warehouse, """SELECT count(*), sum(hash(COLUMNS(* EXCLUDE (value, numerator, denominator)))),
                                       sum(hash(round(value, 9))), sum(hash(round(numerator, 9))),
                                       sum(hash(round(denominator, 9)))
                                FROM marts.usage_visitors"""),
            query(warehouse, "SELECT file_name, count(DISTINCT first_row) FROM audit.validation_results GROUP BY ALL ORDER BY ALL"),
        )
    assert published["pieces"][:4] == published["whole"][:4]
    assert [n for _, n in published["whole"][4]] == [1, 1, 1]
    assert all(n >= 8 for _, n in published["pieces"][4])
