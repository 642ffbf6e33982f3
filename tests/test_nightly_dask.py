"""The nightly flow on a Dask task runner (a local cluster), as `[execution] task_runner = "dask"` selects it."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from conftest import ORDS_202303, ORDS_202309, write_config
from flows.config import ConfigError, load_config
from flows.nightly import nightly
from flows.task_runners import task_runner_from_config


def test_new_files_are_parsed_on_dask_and_loaded_in_order(tmp_path, prefect_backend):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for delivery in (ORDS_202303, ORDS_202309):
        shutil.copy(delivery, inbox)
    config = write_config(tmp_path, {"repair_cafes": ("open_repair", "inbox/*.csv")})
    runner = task_runner_from_config("dask", 2, processes=False)
    summary = nightly.with_options(task_runner=runner)(config_path=str(config))
    assert [(f["file_name"], f["status"]) for f in summary["files"]] == [
        ("anstiftung_202303.csv", "loaded"), ("anstiftung_202309.csv", "loaded")]
    with duckdb.connect(str(load_config(config).paths.warehouse), read_only=True) as con:
        assert con.sql("SELECT status, count(*) FROM staging.repair_items GROUP BY ALL ORDER BY ALL").fetchall() == [
            ("current", 15_100), ("withdrawn", 32)]
    assert not (load_config(config).paths.home / "work").exists() or not any((load_config(config).paths.home / "work").iterdir())


def test_execution_settings_choose_the_runner(tmp_path):
    config = write_config(tmp_path, {})
    text = config.read_text() + '\n[execution]\ntask_runner = "dask"\nmax_workers = 3\n'
    config.write_text(text)
    runner = load_config(config).flow_task_runner()
    assert type(runner).__name__ == "DaskTaskRunner"


def test_the_piece_size_of_big_usage_logs_is_configured_in_megabytes(tmp_path):
    config = write_config(tmp_path, {})
    base = config.read_text()
    assert load_config(config).piece_bytes == 128 * 1024 * 1024
    config.write_text(base + "\n[execution]\npiece_mb = 0.5\n")
    assert load_config(config).piece_bytes == 512 * 1024
    for bad in ("0", '"big"', "-1"):
        config.write_text(base + f"\n[execution]\npiece_mb = {bad}\n")
        with pytest.raises(ConfigError, match="piece_mb"):
            load_config(config)
