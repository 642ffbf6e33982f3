"""The benchmark harness runs end to end at a tiny size: every stage reports, and the three implementations agree.

Only the harness is tested here, never speed: the numbers are for BENCHMARKS.md, not for assertions.
"""

from __future__ import annotations

import json
from datetime import date

import polars as pl
import pytest

from benchmarks import floor, generate, pandas_baseline, run

ROWS = 10_000


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    main_result = run.main(["--size", "10k", "--gemeinden", "40", "--years", "2",
                            "--data-root", str(root / "data"), "--results", str(root / "results")])
    files = list((root / "results").glob("10k-*.json"))
    return main_result, files, root


def test_one_json_result_with_every_stage(result):
    main_result, files, _ = result
    assert len(files) == 1
    written = json.loads(files[0].read_text())
    assert written == json.loads(json.dumps(main_result, default=str))
    assert list(written["stages"]) == ["generate_checkins", *run.USAGE_STAGES, "generate_statistics", *run.STATISTICS_STAGES]
    for name, stage in written["stages"].items():
        assert stage["stage"] == name
        assert stage["seconds"] > 0 and stage["peak_rss_mb"] > 0 and stage["rows_per_second"] > 0
    assert written["machine"]["cpus"] >= 1 and "duckdb" in written["machine"]["versions"]
    assert written["failed_stages"] == {}


def test_floor_pandas_and_pipeline_count_the_same_visits(result):
    stages = result[0]["stages"]
    assert stages["floor_duckdb"]["details"]["visits_counted"] == ROWS
    assert stages["pandas"]["details"]["visits_counted"] == ROWS
    assert stages["floor_duckdb"]["details"]["cells"] == stages["pandas"]["details"]["cells"]
    assert stages["floor_duckdb_sliced"]["details"] == stages["floor_duckdb"]["details"]
    ingest = stages["pipeline_ingest"]["details"]
    assert ingest["rows_read"] == ROWS
    assert ingest["rows_loaded"] + ingest["rows_quarantined"] == ROWS
    # the monthly total visits of the marts are exactly the loaded rows
    assert stages["pipeline_indicators"]["details"]["visits_counted"] == ingest["rows_loaded"]


def test_the_floors_group_by_over_the_warehouse_gives_the_pipelines_cells(result):
    """The floor's GROUP BY computes exactly the cells of the usage indicators (here: their Polars reference)."""
    import duckdb

    from transforms.usage_indicators import PERIODS, _visitor_cells

    warehouse = result[2] / "data" / "10k" / "work" / "usage.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        checkins = con.sql("SELECT * FROM staging.checkins").pl()
    polars_cells = pl.concat([_visitor_cells(checkins, every).with_columns(period=pl.lit(period))
                              for period, every in PERIODS.items()])
    keys = ["facility_id", "period", "period_start", "breakdown", "category"]
    columns = [*keys, "visits", "distinct_visitors", "repeat_visitors"]
    sql_cells = floor.warehouse_cells(warehouse)
    assert sql_cells.height == polars_cells.height > 0
    assert sql_cells.select(columns).sort(keys).equals(polars_cells.select(columns).sort(keys))
    joined = sql_cells.join(polars_cells, on=keys, suffix="_polars")
    assert (joined["person_hours"] - joined["person_hours_polars"]).abs().max() < 1e-9


def test_the_resilience_marts_are_built_over_the_benchmark_check_ins(result):
    stage = result[0]["stages"]["pipeline_resilience_marts"]
    details = stage["details"]
    assert stage["rows"] == result[0]["stages"]["pipeline_ingest"]["details"]["rows_loaded"]
    for mart in ("marts.reach_by_facility", "marts.demand_anomalies", "marts.demand_trends", "marts.room_sharing"):
        assert details["mart_rows"][mart] > 0, mart


def test_statistics_stages_load_every_cell(result):
    stages = result[0]["stages"]
    cells = 40 * 2 * 3 * (17 + 1)  # Gemeinden × years × (total, male, female) × (age groups + Insgesamt)
    assert stages["statistics_ingest"]["details"]["rows_loaded"] == cells
    assert stages["statistics_indicators"]["details"]["mart_rows"] > 0


def test_ratios_and_verdicts_are_reported_honestly(result):
    main_result = result[0]
    r = main_result["ratios"]
    seconds = {n: s["seconds"] for n, s in main_result["stages"].items()}
    usage = seconds["pipeline_ingest"] + seconds["pipeline_indicators"]
    assert r["usage_vs_floor"] == round(usage / seconds["floor_duckdb"], 2)
    assert r["usage_vs_sliced_floor"] == round(usage / seconds["floor_duckdb_sliced"], 2)
    assert r["pandas_vs_usage"] == round(seconds["pandas"] / usage, 2)
    targets = main_result["targets"]
    # a tiny statistics run and a 10k run say nothing about the 60 s and 16 GB targets
    assert targets["all Gemeinden x 30 years <= 60 s"] == "not measured"
    assert targets["100M rows within 16 GB peak"] == "not measured"
    assert targets["usage path <= 2x DuckDB floor"] in ("met", "not met")
    assert targets["usage path <= 2x DuckDB with the pipeline's SQL"] == (
        "met" if r["usage_vs_sliced_floor"] <= 2 else "not met")


def test_each_compared_stage_counts_with_its_fastest_run(result):
    stages = result[0]["stages"]
    for name in run.COMPARED_STAGES:
        assert len(stages[name]["runs_seconds"]) == 2 and stages[name]["seconds"] == min(stages[name]["runs_seconds"])
    assert "runs_seconds" not in stages["pipeline_resilience_marts"]
    slow, fast = {"seconds": 3.0, "peak_rss_mb": 900.0}, {"seconds": 2.5, "peak_rss_mb": 800.0}
    # the time of the fastest run, the memory of the hungriest
    assert run.fastest([slow, fast]) == {"seconds": 2.5, "peak_rss_mb": 900.0, "runs_seconds": [3.0, 2.5]}
    assert run.fastest([slow]) == slow


def test_a_stage_killed_for_memory_makes_its_target_not_met_and_says_why():
    stages = {"statistics_ingest": {"seconds": 140.0, "peak_rss_mb": 5600.0}}
    failed = {"statistics_indicators": "killed by SIGKILL (out of memory?)"}
    targets = run.verdicts(1_000_000, stages, run.ratios(stages), full_statistics=True, failed=failed)
    assert targets["all Gemeinden x 30 years <= 60 s"] == (
        "not met (statistics_indicators failed: killed by SIGKILL (out of memory?))")
    # a small statistics run says nothing about the target, whatever failed
    small = run.verdicts(1_000_000, stages, run.ratios(stages), full_statistics=False, failed=failed)
    assert small["all Gemeinden x 30 years <= 60 s"] == "not measured"


def test_stages_whose_inputs_were_not_generated_are_not_run_and_their_targets_not_met(tmp_path, monkeypatch):
    ran = []

    def generation_killed(stage, *_):
        ran.append(stage)
        raise run.StageFailed(stage, "killed by SIGKILL (out of memory?)")

    monkeypatch.setattr(run, "_run_stage", generation_killed)
    result = run.main(["--size", "100M", "--rows-per-file", "100M", "--no-statistics", "--runs", "1",
                       "--stages", "generate_checkins", "pipeline_ingest", "pipeline_indicators",
                       "--data-root", str(tmp_path / "data"), "--results", str(tmp_path / "results")])
    assert ran == ["generate_checkins"]
    assert result["failed_stages"]["pipeline_ingest"] == "not run: generate_checkins failed"
    assert result["targets"]["100M rows within 16 GB peak"].startswith("not met (pipeline_ingest failed: not run")


def test_a_100m_run_whose_indicators_failed_does_not_meet_the_memory_target():
    stages = {"floor_duckdb": {"seconds": 270.0, "peak_rss_mb": 20_300.0},
              "pipeline_ingest": {"seconds": 660.0, "peak_rss_mb": 8_800.0}}
    failed = {"pipeline_indicators": "exit status 1"}
    targets = run.verdicts(100_000_000, stages, run.ratios(stages), full_statistics=False, failed=failed)
    assert targets["100M rows within 16 GB peak"] == "not met (pipeline_indicators failed: exit status 1)"
    assert targets["100M rows: resilience marts within 16 GB"] == "not measured"


def test_the_resilience_marts_at_100m_have_their_own_memory_verdict():
    stages = {"pipeline_ingest": {"seconds": 660.0, "peak_rss_mb": 8_800.0},
              "pipeline_indicators": {"seconds": 200.0, "peak_rss_mb": 4_100.0},
              "pipeline_resilience_marts": {"seconds": 300.0, "peak_rss_mb": 17_000.0}}
    targets = run.verdicts(100_000_000, stages, run.ratios(stages), full_statistics=False, failed={})
    assert targets["100M rows within 16 GB peak"] == "met"  # the usage path alone
    assert targets["100M rows: resilience marts within 16 GB"] == "not met"
    killed = run.verdicts(100_000_000, {k: v for k, v in stages.items() if k != "pipeline_resilience_marts"}, {},
                          full_statistics=False, failed={"pipeline_resilience_marts": "killed by SIGKILL (out of memory?)"})
    assert killed["100M rows: resilience marts within 16 GB"].startswith("not met (pipeline_resilience_marts failed")


def test_one_big_delivery_is_a_size_of_its_own(tmp_path):
    """`--rows-per-file`: the inputs in one file, with a folder and a result named for it; every row is loaded."""
    written = run.main(["--size", "10k", "--rows-per-file", "10k", "--no-statistics", "--runs", "1",
                        "--stages", "generate_checkins", "pipeline_ingest",
                        "--data-root", str(tmp_path / "data"), "--results", str(tmp_path / "results")])
    assert (written["size"], written["rows_per_file"]) == ("10k-files-of-10k", ROWS)
    assert [p.name for p in (tmp_path / "data" / "10k-files-of-10k" / "checkins").glob("*.csv")] == ["checkins_0001.csv"]
    assert [p.name.startswith("10k-files-of-10k-") for p in (tmp_path / "results").iterdir()] == [True]
    assert written["stages"]["pipeline_ingest"]["details"]["rows_read"] == ROWS


def test_generated_inputs_are_seeded(tmp_path):
    first = generate.write_checkin_deliveries(tmp_path / "a", 2_500, seed=7, rows_per_file=1_000)
    second = generate.write_checkin_deliveries(tmp_path / "b", 2_500, seed=7, rows_per_file=1_000)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    assert sum(p.read_text().count("\n") - 1 for p in first) == 2_500


def test_one_big_file_holds_the_rows_of_the_files_of_a_million(tmp_path, monkeypatch):
    """Generated a chunk of ROWS_PER_FILE rows at a time, whatever the file size (here 1,000 for 1M)."""
    monkeypatch.setattr(generate, "ROWS_PER_FILE", 1_000)
    small = generate.write_checkin_deliveries(tmp_path / "small", 3_000, seed=7, rows_per_file=1_000)
    big = generate.write_checkin_deliveries(tmp_path / "big", 3_000, seed=7, rows_per_file=3_000)
    assert (len(small), len(big)) == (3, 1)
    assert big[0].read_text().splitlines() == small[0].read_text().splitlines()[:1] + [
        line for path in small for line in path.read_text().splitlines()[1:]]


def test_genesis_years_parse_as_gemeinde_tables_with_their_stichtag(tmp_path):
    from transforms.genesis_csv import parse_genesis_csv

    (path,) = generate.write_genesis_years(tmp_path, gemeinden=3, years=(2001,), seed=1)
    frame = parse_genesis_csv(path.read_bytes(), path.name)
    assert frame.height == 3 * 54
    assert frame["area_code"].str.len_chars().unique().to_list() == [8]
    assert frame["reference_date"].unique().to_list() == [date(2001, 12, 31)]
    assert "SYNTHETISCH" in path.read_bytes().decode("latin-1").split("\n")[1]
    # Insgesamt is the sum of the 17 age groups, per area and sex; totals are the sum of male and female
    sums = frame.group_by("area_code", "sex").agg(
        groups=pl.col("value").filter(~pl.col("is_total")).sum(), total=pl.col("value").filter(pl.col("is_total")).sum()
    )
    assert sums.height == 9 and sums.filter(pl.col("groups") != pl.col("total")).is_empty()
    by_sex = frame.filter(pl.col("is_total")).pivot("sex", index="area_code", values="value")
    assert by_sex.filter(pl.col("total") != pl.col("male") + pl.col("female")).is_empty()


def test_floor_and_pandas_agree_cell_by_cell(tmp_path):
    files = generate.write_checkin_deliveries(tmp_path, 3_000, seed=3, rows_per_file=1_000)
    keys = ["facility_id", "period", "period_start", "breakdown", "category"]
    duck = floor.visitor_cells(files).sort(keys)
    sliced = floor.sliced_visitor_cells(files).sort(keys)
    assert sliced.drop("person_hours").equals(duck.drop("person_hours"))
    assert (sliced["person_hours"] - duck["person_hours"]).abs().max() < 1e-9
    pandas = pl.from_pandas(pandas_baseline.visitor_cells(files)).with_columns(pl.col("period_start").cast(pl.Date)).sort(keys)
    assert duck.select(keys, "visits", "distinct_visitors", "repeat_visitors").equals(
        pandas.select(keys, "visits", "distinct_visitors", "repeat_visitors"))
