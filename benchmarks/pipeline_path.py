"""The pipeline as the nightly flow runs it, without Prefect: ingest_file per delivery, then the indicators.

Each function works on a warehouse file of its own (the benchmark's, never the published one) and returns plain
numbers for the result JSON. Stages run in separate processes (benchmarks/stage.py), so a stage that needs the
warehouse of an earlier one opens the file that stage left behind.
"""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import polars as pl

from expectations.validate import build_docs, prepare
from flows.config import load_config
from flows.parse_workers import parse_workers
from transforms.checkin_log import parse_checkin_log
from transforms.facility_registry import load_facility_registry
from transforms.population_frame import INDICATOR_COLUMNS
from transforms.pseudonymise import pseudonym_key_from_env
from transforms.resilience_config import load_resilience_config
from transforms.usage_indicators import visitor_indicators_from_cells
from warehouse.duckdb_memory import memory_limited
from warehouse.ingest import IngestContext, ingest_file, parse_delivery
from warehouse.load_context import LoadContext
from warehouse.load_usage_logs import load_checkins
from warehouse.marts_resilience import build_resilience_marts, demography_with_age_structure
from warehouse.migrate import migrate
from warehouse.publish import connect_build
from warehouse.usage_cells import checkin_dates, usage_cells

ROOT = Path(__file__).resolve().parents[1]
PIPELINE_CONFIG = ROOT / "config" / "pipeline.toml"
RUN_ID = "benchmark"
NOT_NULL_CHECKIN_COLUMNS = ["facility_id", "visited_at", "visit_date", "offer", "visitor_pseudonym", "age_band", "age_from"]


def _context(work: Path) -> IngestContext:
    config = load_config(PIPELINE_CONFIG)
    return IngestContext(landing=work / "landing", quarantine=work / "quarantine", validation=work / "validation",
                         facility_registry=config.facility_registry)


def ingest_deliveries(warehouse: Path, work: Path, source_name: str, source_format: str, files: list[Path]) -> dict:
    """A new warehouse holding the given deliveries, as the nightly flow ingests them with the configured task
    runner (`[execution]`: parse worker processes of lower priority, or threads): every file landed and parsed
    ahead (parse_delivery), each validated (GX), quarantined and loaded by the single writer (ingest_file) as soon
    as its own parse is done, in name order; then the run's Data Docs."""
    warehouse.unlink(missing_ok=True)  # a warehouse of an earlier run would skip every file as already loaded
    # every benchmark run has the same run id: the Data Docs of the run would render the earlier runs' pages too
    shutil.rmtree(work / "validation", ignore_errors=True)
    config = load_config(PIPELINE_CONFIG)
    ctx = _context(work)
    per_file, totals = [], {"rows_read": 0, "rows_loaded": 0, "rows_quarantined": 0}
    with ExitStack() as stack:
        con = stack.enter_context(connect_build(warehouse))
        workers = stack.enter_context(parse_workers(config.task_runner == "processes", config.max_workers, files))
        pool = workers or stack.enter_context(ThreadPoolExecutor(max_workers=config.max_workers))
        migrate(con)
        parsing = [pool.submit(parse_delivery, source_format, path, ctx, work / "parsed") for path in files]
        if workers:
            prepare(ctx.validation)
        for path, future in zip(files, parsing):
            started = time.perf_counter()
            outcome = ingest_file(con, RUN_ID, source_name, source_format, path, ctx, future.result())
            per_file.append({"file": path.name, "status": outcome.status, "seconds": time.perf_counter() - started})
            for key in totals:
                totals[key] += getattr(outcome, key)
    shutil.rmtree(work / "parsed", ignore_errors=True)
    started = time.perf_counter()
    build_docs(ctx.validation, RUN_ID)  # once per run, as the flow does after its last file
    docs = time.perf_counter() - started
    return {"rows": totals["rows_read"], **totals, "task_runner": config.task_runner,
            "parse_workers": workers._max_workers if workers else 0,
            "files": per_file, "data_docs_seconds": round(docs, 3)}


def usage_indicators(warehouse: Path) -> dict:
    """The visitor indicators (marts.usage_visitors) from all check-ins loaded, as warehouse.marts computes them:
    the cells aggregated by DuckDB over staging.checkins within the configured memory limit, then the indicators
    from the cells.

    Only this mart, not all of build_marts: the benchmark compares the usage path with the floor, which computes
    exactly these cells; the other marts have their own stages or none.
    """
    config = load_config(PIPELINE_CONFIG)
    registry = load_facility_registry(config.facility_registry)
    with connect_build(warehouse) as con:
        migrate(con)  # a warehouse of an earlier benchmark run may predate the cache tables
        rows = con.sql("SELECT count(*) FROM staging.checkins").fetchall()[0][0]
        con.execute("DELETE FROM cache.usage_cell_slices")  # every slice computed, as in the first run over a history
        cells = usage_cells(con, config.duckdb_memory_limit)
        mart = visitor_indicators_from_cells(cells, registry, checkin_dates(con))
    visits = mart.filter((pl.col("indicator_id") == "visits") & (pl.col("breakdown") == "total") & (pl.col("period") == "month"))
    return {"rows": rows, "cells": cells.height, "mart_rows": mart.height, "visits_counted": int(visits["numerator"].sum())}


# the sample run's other inputs, loaded next to the benchmark's check-ins for the marts that need them
CONTEXT_FORMATS = ("genesis_csv", "genesis_projection", "room_bookings", "municipal_finance", "genesis_municipal_debt")


def resilience_marts(warehouse: Path, work: Path) -> dict:
    """The resilience, room-sharing and fiscal marts of the nightly run (build_resilience_marts: reach, anomalies,
    trends, demand projection, room sharing, … over all check-ins loaded), with the sample run's statistics,
    projection, bookings and finance files loaded into the same warehouse first (setup, timed apart)."""
    config = load_config(PIPELINE_CONFIG)
    ctx = _context(work)
    started = time.perf_counter()
    with connect_build(warehouse) as con:
        migrate(con)
        for source in config.sources:
            if source.format in CONTEXT_FORMATS and not source.consume:
                for path in source.files():
                    ingest_file(con, RUN_ID, source.name, source.format, path, ctx)
        setup = time.perf_counter() - started
        rows = con.sql("SELECT count(*) FROM staging.checkins").fetchall()[0][0]
        con.execute("DELETE FROM cache.pieces")  # every piece computed, as in the first run over a history
        with memory_limited(con, config.duckdb_memory_limit):  # as build_marts runs them
            marts = build_resilience_marts(con, config)
    return {"rows": rows, "setup_seconds": round(setup, 3), "marts_seconds": round(time.perf_counter() - started - setup, 3),
            "mart_rows": {table: frame.height for table, frame in marts.items()}}


def demography(warehouse: Path) -> dict:
    """marts.demography_indicators as the nightly run builds it: the age ratios of every convention and population
    change (transforms.demography) plus the age structure (band shares, mean and median age, change over years)."""
    config = load_config(PIPELINE_CONFIG)
    with connect_build(warehouse) as con:
        population = con.sql(f"SELECT {', '.join(INDICATOR_COLUMNS)} FROM staging.population").pl()
    mart = demography_with_age_structure(population, config.conventions, load_resilience_config())
    return {"rows": population.height, "mart_rows": mart.height}


def checkin_steps(warehouse: Path, work: Path, path: Path) -> dict:
    """Where the time of one delivery goes: parse (with HMAC), validate (GX), load (upsert into staging)."""
    from expectations import checkins
    from expectations.validate import validate_batch

    ctx = _context(work)
    seconds = {}
    started = time.perf_counter()
    frame = parse_checkin_log(path.read_bytes(), path.name, pseudonym_key_from_env())
    seconds["parse"] = time.perf_counter() - started
    started = time.perf_counter()
    validate_batch(frame, checkins.SUITE_NAME, checkins.expectations(ctx.registry.facility_ids), ctx.validation, "steps")
    seconds["validate"] = time.perf_counter() - started
    # the rows the suite would keep, approximately: the load cost hardly depends on the few it refuses
    loadable = frame.filter(pl.col("duplicate_of_row").is_null()).drop_nulls(NOT_NULL_CHECKIN_COLUMNS)
    warehouse.unlink(missing_ok=True)
    with connect_build(warehouse) as con:
        migrate(con)
        started = time.perf_counter()
        load_checkins(con, loadable, frame, LoadContext(RUN_ID, "checkins", path.name, "0" * 64))
        seconds["load"] = time.perf_counter() - started
    return {"rows": frame.height, "seconds": seconds}
