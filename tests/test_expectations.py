"""The Great Expectations suites on small frames: which rows are blocked, and by which rule."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from conftest import ORDS_202309
from expectations import population, repair_items
from expectations import validate
from expectations.validate import build_docs, run_name, validate_batch
from transforms.genesis_csv import parse_genesis_csv
from transforms.open_repair import parse_open_repair
from conftest import GENESIS_2018


@pytest.fixture(scope="module")
def gx_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("validation")


def test_real_population_passes_every_blocking_rule(gx_root):
    frame = parse_genesis_csv(GENESIS_2018.read_bytes(), GENESIS_2018.name)
    outcome = validate_batch(frame, population.SUITE_NAME, population.expectations(), gx_root,
                             run_name("run-1", GENESIS_2018.name))
    assert outcome.passed_all_blocking
    assert outcome.results.height == len(population.expectations())


def test_data_docs_show_each_run_once_built(gx_root, tmp_path):
    frame = parse_genesis_csv(GENESIS_2018.read_bytes(), GENESIS_2018.name)
    for run in ("run-a", "run-b"):
        validate_batch(frame, population.SUITE_NAME, population.expectations(), tmp_path, run_name(run, GENESIS_2018.name))
    index = build_docs(tmp_path, "run-a")
    pages = list((index.parent / "validations").rglob("*.html"))
    assert index.exists()
    assert [p.relative_to(index.parent).parts[2] for p in pages] == [run_name("run-a", GENESIS_2018.name)]
    build_docs(tmp_path, "run-b")
    assert len(list((index.parent / "validations").rglob("*.html"))) == 2
    assert build_docs(tmp_path, "run-without-validations") == index  # renders nothing, no error


def test_bad_population_rows_are_named(gx_root):
    frame = parse_genesis_csv(GENESIS_2018.read_bytes(), GENESIS_2018.name).head(40)
    frame = frame.with_columns(
        cell=pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("12a")).otherwise(pl.col("cell")),
        area_code=pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("5914")).otherwise(pl.col("area_code")),
    )
    frame = pl.concat([frame, frame.slice(0, 1)])  # a duplicated key
    outcome = validate_batch(frame, population.SUITE_NAME, population.expectations(), gx_root, "bad population")
    assert outcome.failed_rows[3] == [("cell is a whole number or an official special value (-, ., x, ..., /)", "cell")]
    assert outcome.failed_rows[5] == [("area code is an AGS", "area_code")]
    assert {0, 40} <= set(outcome.failed_rows)
    assert outcome.failed_rows[40] == [("one value per area, date, sex and age group",
                                        "table_code,area_code,reference_date,sex,age_label")]


def test_repair_contract_accepts_real_ids_and_blocks_broken_records(gx_root):
    frame = parse_open_repair(ORDS_202309.read_bytes(), ORDS_202309.name).head(50).with_columns(
        repair_status=pl.when(pl.col("source_row") == 2).then(pl.lit("Kaputt")).otherwise(pl.col("repair_status")),
        id=pl.when(pl.col("source_row") == 7).then(pl.lit("Anstiftung 7")).otherwise(pl.col("id")),
        event_date_parsed=pl.when(pl.col("source_row") == 9).then(None).otherwise(pl.col("event_date_parsed")),
    )
    outcome = validate_batch(frame, repair_items.SUITE_NAME, repair_items.expectations(), gx_root, "bad repairs")
    assert sorted(outcome.failed_rows) == [1, 6, 8]
    assert outcome.failed_rows[1][0][0] == "repair status is an ORDS status"
    assert outcome.failed_rows[6][0][0] == "record id is provider prefix, '_' or '-', number"
    warnings = outcome.results.filter(~pl.col("blocking"))
    assert warnings.height == 2


def test_suites_take_turns_across_runs_on_one_validation_folder(tmp_path):
    """Checkpoints are set up once per process and suite; the next nightly process finds the GX files of the last
    one, and two suites validated in turn must not undo each other's setup."""
    population_rows = parse_genesis_csv(GENESIS_2018.read_bytes(), GENESIS_2018.name)
    repairs = parse_open_repair(ORDS_202309.read_bytes(), ORDS_202309.name)
    for process in range(2):
        validate._context.cache_clear()  # as if a new process started
        validate._checkpoints.clear()
        for turn in range(2):
            name = run_name(f"run-{process}", f"turn-{turn}")
            assert validate_batch(population_rows, population.SUITE_NAME, population.expectations(), tmp_path, name).passed_all_blocking
            validate_batch(repairs, repair_items.SUITE_NAME, repair_items.expectations(), tmp_path, name)


def test_great_expectations_is_imported_without_scipy_stats_which_still_loads_when_used(tmp_path):
    """A fresh process (this one may hold scipy.stats already): validating a batch does not run scipy.stats, a use of
    it does."""
    code = (
        "import sys; from pathlib import Path\n"
        "from conftest import GENESIS_2018\n"
        "from expectations import population\n"
        "from expectations.validate import validate_batch\n"
        "from transforms.genesis_csv import parse_genesis_csv\n"
        "frame = parse_genesis_csv(GENESIS_2018.read_bytes(), GENESIS_2018.name)\n"
        f"assert validate_batch(frame, population.SUITE_NAME, population.expectations(), Path({str(tmp_path)!r}), 'x').passed_all_blocking\n"
        "print('scipy.stats._stats_py' in sys.modules)\n"
        "from scipy import stats\n"
        "print(stats.norm.cdf(0.0), 'scipy.stats._stats_py' in sys.modules)\n"
    )
    tests = Path(__file__).parent
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         cwd=tests.parent, env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tests.parent), str(tests)])})
    assert out.stdout.split() == ["False", "0.5", "True"]
