"""The configured task runner fans tasks out and gives their results back: on threads, in lower-priority parse
worker processes and on a local Dask cluster."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from unittest.mock import patch

import polars as pl
import pytest
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from flows.config import ConfigError
from flows.parse_workers import (ALLOCATOR_VARIABLE, MIN_BYTES_FOR_WORKERS, WORKER_ALLOCATOR, WORKER_NICENESS,
                                 ParseWorkerDied, parse_in, parse_workers, worker_count)
from flows.task_runners import task_runner_from_config
from conftest import ROOT, SAMPLE
from transforms.checkin_log import parse_checkin_log
from transforms.pseudonymise import pseudonym_key_from_env
from warehouse.ingest import IngestContext, parse_delivery

SAMPLE_LOGS = sorted((SAMPLE / "usage").glob("checkins_*"))
KEY = b"k" * 32


@task(cache_policy=NO_CACHE)
def count_checkins(path: str) -> tuple[str, int, int]:
    """Parse one delivery: the kind of task that fans out (no warehouse write, inputs and result are plain)."""
    frame = parse_checkin_log(Path(path).read_bytes(), Path(path).name, KEY)
    return Path(path).name, frame.height, frame["visitor_pseudonym"].n_unique()


def parse_all(runner) -> dict[str, tuple[int, int]]:
    @flow(task_runner=runner)
    def fan_out(paths: list[str]) -> list[tuple[str, int, int]]:
        return [f.result() for f in count_checkins.map(paths)]

    return {name: (rows, visitors) for name, rows, visitors in fan_out([str(p) for p in SAMPLE_LOGS])}


def expected() -> dict[str, tuple[int, int]]:
    frames = {p.name: parse_checkin_log(p.read_bytes(), p.name, KEY) for p in SAMPLE_LOGS}
    return {name: (f.height, f["visitor_pseudonym"].n_unique()) for name, f in frames.items()}


def test_three_sample_deliveries_are_there_to_fan_out():
    assert [p.name for p in SAMPLE_LOGS] == ["checkins_2024-01.csv", "checkins_2024-02.jsonl", "checkins_2024-03.csv"]


def test_threads_are_bounded_by_max_workers():
    runner = task_runner_from_config("threads", 3)
    assert isinstance(runner, ThreadPoolTaskRunner)
    assert runner._max_workers == 3


def test_unknown_runner_and_zero_workers_are_configuration_errors():
    with pytest.raises(ConfigError, match=r"task runner 'ray' is not known; choose one of threads, processes, dask"):
        task_runner_from_config("ray", 2)
    with pytest.raises(ConfigError, match="max_workers must be at least 1, got 0"):
        task_runner_from_config("dask", 0)


def test_dask_runner_starts_a_bounded_local_cluster_or_uses_an_address():
    from prefect_dask import DaskTaskRunner

    local = task_runner_from_config("dask", 2, processes=False)
    assert isinstance(local, DaskTaskRunner)
    assert local.cluster_kwargs["n_workers"] == 2 and local.cluster_kwargs["threads_per_worker"] == 1
    remote = task_runner_from_config("dask", 2, address="tcp://scheduler:8786")
    assert remote.address == "tcp://scheduler:8786"


def test_fan_out_on_threads_gives_the_same_results_as_parsing_one_by_one(prefect_backend):
    assert parse_all(task_runner_from_config("threads", 2)) == expected()


def test_fan_out_on_a_local_dask_cluster_gives_the_same_results(prefect_backend):
    assert parse_all(task_runner_from_config("dask", 2, processes=False)) == expected()


def test_processes_fan_out_on_bounded_threads_that_hand_each_parse_to_a_worker():
    runner = task_runner_from_config("processes", 3)
    assert isinstance(runner, ThreadPoolTaskRunner) and runner._max_workers == 3


def test_parse_workers_only_when_wanted_and_there_is_enough_to_parse(tmp_path):
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    small.write_bytes(b"x" * 1024)
    big.write_bytes(b"x" * MIN_BYTES_FOR_WORKERS)
    with parse_workers(False, 2, [big, big]) as not_wanted, parse_workers(True, 2, [small, small]) as too_little:
        assert not_wanted is None and too_little is None  # parsed where the task runs
    with parse_workers(True, 2, [big]) as one_big_file:
        assert one_big_file._max_workers == 1


@pytest.mark.parametrize(("cpus", "max_workers", "file_count", "expected"), [
    (2, 2, 10, 1),  # two CPUs: the writer's and one worker's
    (8, 2, 10, 2),  # more CPUs: as configured
    (8, 4, 3, 3),  # never more workers than files
    (1, 2, 10, 1),  # one CPU: still one worker, at lower priority than the writer
])
def test_parse_workers_leave_the_writer_a_cpu(cpus, max_workers, file_count, expected):
    with patch("flows.parse_workers.usable_cpus", return_value=cpus):
        assert worker_count(max_workers, file_count) == expected


def test_parse_workers_run_at_lower_priority_and_parse_as_the_flow_process_does(tmp_path):
    ctx = IngestContext(landing=tmp_path / "landing", quarantine=tmp_path / "quarantine",
                        validation=tmp_path / "validation", facility_registry=ROOT / "config" / "facilities.toml")
    allocator_here = os.environ[ALLOCATOR_VARIABLE]  # as this process's Polars set it
    with (patch("flows.parse_workers.MIN_BYTES_FOR_WORKERS", 0),  # the sample logs are small
          patch("flows.parse_workers.usable_cpus", return_value=8),  # several workers, whatever this machine has
          parse_workers(True, 4, SAMPLE_LOGS) as workers):
        assert isinstance(workers, ProcessPoolExecutor) and workers._max_workers == len(SAMPLE_LOGS)
        niceness = workers.submit(os.nice, 0).result()
        allocator = workers.submit(os.getenv, ALLOCATOR_VARIABLE).result()
        parsed = [workers.submit(parse_delivery, "checkin_log", p, ctx, tmp_path / "parsed") for p in SAMPLE_LOGS]
        parsed = [future.result() for future in parsed]
    assert niceness == min(os.nice(0) + WORKER_NICENESS, 19)
    # as the worker's Polars set it for its allocator, its own defaults first; jemalloc takes each option's last value
    in_effect = dict(option.split(":") for option in allocator.split(","))
    assert in_effect["dirty_decay_ms"] == in_effect["muzzy_decay_ms"] == "-1" and allocator.endswith(WORKER_ALLOCATOR)
    assert os.environ[ALLOCATOR_VARIABLE] == allocator_here  # only the workers' changed
    for path, delivery in zip(SAMPLE_LOGS, parsed):
        # the key reached the workers through the environment they were started with
        here = parse_checkin_log(path.read_bytes(), path.name, pseudonym_key_from_env())
        assert delivery.refusal is None
        assert [pl.read_parquet(piece).equals(here) for piece in delivery.pieces] == [True]
        assert (ctx.landing / delivery.sha256 / path.name).read_bytes() == path.read_bytes()


def test_a_killed_parse_worker_stops_the_run_with_the_file_named(tmp_path):
    big = tmp_path / "checkins_big.csv"
    big.write_bytes(b"x" * MIN_BYTES_FOR_WORKERS)
    with parse_workers(True, 1, [big]) as workers:
        with pytest.raises(ParseWorkerDied, match=r"^checkins_big.csv: a parse worker process ended without a result"):
            parse_in(workers, big, os._exit, 9)  # what the kernel's out-of-memory kill looks like to the pool

def test_nightly_hands_its_parses_to_workers_and_loads_every_file(sample_config, prefect_backend, monkeypatch):
    from contextlib import contextmanager

    import duckdb

    from flows.config import load_config
    from flows.nightly import nightly

    used = []

    @contextmanager
    def recorded(*args):
        with parse_workers(*args) as workers:
            used.append(workers)
            yield workers

    monkeypatch.setattr("flows.parse_workers.MIN_BYTES_FOR_WORKERS", 0)  # the sample files are small
    monkeypatch.setattr("flows.parse_workers.usable_cpus", lambda: 8)  # as many workers as configured
    monkeypatch.setattr("flows.nightly.parse_workers", recorded)
    summary = nightly(config_path=str(sample_config))
    assert isinstance(used[0], ProcessPoolExecutor) and used[0]._max_workers == 2
    assert [(f["file_name"], f["status"]) for f in summary["files"]] == [
        ("12411-02-03-5-B_2018_kreise.csv", "loaded"), ("anstiftung_202303.csv", "loaded"),
        ("anstiftung_202309.csv", "loaded")]
    with duckdb.connect(str(load_config(sample_config).paths.warehouse), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM staging.population").fetchall() == [(26_406,)]
        assert con.sql("SELECT status, count(*) FROM staging.repair_items GROUP BY ALL ORDER BY ALL").fetchall() == [
            ("current", 15_100), ("withdrawn", 32)]
