"""The Great Expectations suites on small frames: which rows are blocked, and by which rule."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from conftest import ORDS_202309
from expectations import population, repair_items
from expectations.validate import docs_index, validate_batch
from transforms.genesis_csv import parse_genesis_csv
from transforms.open_repair import parse_open_repair
from conftest import GENESIS_2018


@pytest.fixture(scope="module")
def gx_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("validation")


def test_real_population_passes_every_blocking_rule(gx_root):
    frame = parse_genesis_csv(GENESIS_2018.read_bytes(), GENESIS_2018.name)
    outcome = validate_batch(frame, population.SUITE_NAME, population.expectations(), gx_root, "real population")
    assert outcome.passed_all_blocking
    assert outcome.results.height == len(population.expectations())
    assert docs_index(gx_root).exists()


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
