"""The nightly flow: the pipeline's table of contents. Every step is a plain function elsewhere.

sources (files) → raw/staging (ingest: parse, validate, quarantine, load) → marts → exports → publish
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import Executor
from datetime import datetime, timezone
from pathlib import Path
from uuid import uuid4

from prefect import flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.context import get_run_context
from prefect.task_runners import ThreadPoolTaskRunner

from flows.config import FileSource, load_config
from flows.parse_workers import parse_in, parse_workers
from sources.inbox import REFUSED, settle
from warehouse.fingerprint import last_published, run_fingerprint
from warehouse.exports import (add_to_manifest, data_vintages, discard_exports, mart_exports, publish_exports,
                               write_exports)
from warehouse.ingest import IngestContext, ParsedDelivery, ingest_file, new_deliveries, parse_delivery
from sources.genesis.config import declared_population_basis
from sources.genesis.fetch import fetch_statistics_sources
from warehouse.load_areas import refresh_areas
from warehouse.marts import build_marts
from warehouse.migrate import migrate
from warehouse.report import write_report
from warehouse.publish import connect_build, discard_build, publish_build, start_build, writer_lock
from expectations.validate import docs_index, prepare

# Task inputs are paths and names only: Prefect hashes inputs, and connections or frames must not be among them.
# The one exception, the run's parse workers, goes only to a task without a cache policy (nothing is hashed).


@task(cache_policy=NO_CACHE)
def prepare_warehouse(build: str, run_id: str) -> list[str]:
    with connect_build(Path(build)) as con:
        applied = migrate(con)
        flow_run = get_run_context().task_run.flow_run_id
        con.execute(
            "INSERT INTO audit.runs (run_id, flow_run_id, started_at, status) VALUES (?, ?, now(), 'running')",
            [run_id, str(flow_run) if flow_run else None],
        )
    return applied


@task(cache_policy=NO_CACHE, retries=0)
def fetch_statistics(build: str, run_id: str, config_path: str) -> list[dict]:
    """New periods of the declared GENESIS sources, landed as files for the ingest step (network I/O; the client
    retries transient errors itself, a failing source is reported and the others go on)."""
    config = load_config(config_path)
    if config.statistics_sources is None:
        return []
    report = fetch_statistics_sources(config.statistics_sources, build, config.paths.landing, run_id)
    for source, message in report.failures:
        get_run_logger().warning("statistics source %s not fetched: %s", source, message)
    return report.files_to_ingest()


def _ingest_context(config_path: str, source_name: str) -> IngestContext:
    config = load_config(config_path)
    source = config.source_named(source_name)
    return IngestContext(landing=config.paths.landing, quarantine=config.paths.quarantine,
                         validation=config.paths.validation, facility_registry=config.facility_registry,
                         population_basis=declared_population_basis(config.statistics_sources, source_name),
                         options=source.options if source else {}, piece_bytes=config.piece_bytes)


@task(cache_policy=NO_CACHE)
def deliveries_to_parse(build: str, file_paths: list[str]) -> list[str]:
    with connect_build(Path(build)) as con:
        return [str(p) for p in new_deliveries(con, [Path(f) for f in file_paths])]


@task(cache_policy=NO_CACHE, task_run_name="parse {file_path}")
def parse(source_name: str, source_format: str, file_path: str, config_path: str, work: str,
          workers: Executor | None = None) -> ParsedDelivery:
    """Runs on the flow's task runner, many at a time: landing and parsing touch no warehouse. With `workers`
    (flows.parse_workers) the parse itself runs in one of those processes."""
    arguments = (source_format, Path(file_path), _ingest_context(config_path, source_name), Path(work))
    return parse_in(workers, Path(file_path), parse_delivery, *arguments) if workers else parse_delivery(*arguments)


@task(cache_policy=NO_CACHE)
def prepare_validation(config_path: str) -> None:
    """Great Expectations imported and its context opened while the first files are parsed (seconds, once per
    process), not when the first parsed file is waiting to be validated."""
    prepare(load_config(config_path).paths.validation)


@task(cache_policy=NO_CACHE, task_run_name="ingest {file_path}")
def ingest(build: str, run_id: str, source_name: str, source_format: str, file_path: str, config_path: str,
           parsed: ParsedDelivery | None = None) -> dict:
    """Validate and load one file into the build: one at a time, DuckDB has a single writer."""
    with connect_build(Path(build)) as con:
        outcome = ingest_file(con, run_id, source_name, source_format, Path(file_path),
                              _ingest_context(config_path, source_name), parsed)
    logger = get_run_logger()
    log = logger.warning if outcome.status in ("quarantined", "duplicate") or outcome.rows_quarantined else logger.info
    log("%s: %s, %d read, %d loaded, %d quarantined%s", outcome.file_name, outcome.status, outcome.rows_read,
        outcome.rows_loaded, outcome.rows_quarantined, f" — {outcome.message}" if outcome.message else "")
    return outcome.as_dict()


@task(cache_policy=NO_CACHE)
def validation_docs(run_id: str, config_path: str) -> str:
    """The Data Docs of this run's validations, rendered once after all files (not once per file)."""
    from expectations.validate import build_docs

    return str(build_docs(load_config(config_path).paths.validation, run_id))


@task(cache_policy=NO_CACHE)
def marts(build: str, config_path: str) -> dict[str, int]:
    config = load_config(config_path)
    with connect_build(Path(build)) as con:
        refresh_areas(con)
        return build_marts(con, config)


@task(cache_policy=NO_CACHE)
def exports(build: str, run_id: str, run_date: str, config_path: str) -> str:
    config = load_config(config_path)
    with connect_build(Path(build)) as con:
        published = mart_exports(con, config.min_count)
        staging = write_exports(con, published, config.paths.exports, run_id, run_date, config.min_count,
                                data_vintages(con), area_points=config.area_points,
                                default_convention=config.default_convention)
        report = write_report(con, published, staging, run_id, config.area_points, config.min_count,
                              default_convention=config.default_convention)
    add_to_manifest(staging, sorted(p.name for p in report.parent.glob("report*.html")))
    return str(staging)


@task(cache_policy=NO_CACHE)
def finish_run(build: str, run_id: str, summary: dict) -> None:
    with connect_build(Path(build)) as con:
        con.execute(
            "UPDATE audit.runs SET finished_at = now(), status = 'published', summary = ? WHERE run_id = ?",
            [json.dumps(summary), run_id],
        )
        con.execute("CHECKPOINT")


def run_pipeline(config_path: str, selected: list[tuple[FileSource, Path]] | None = None) -> dict:
    """Ingest the given files (default: what the statistics services have that is new, then every settled file of
    every enabled source), rebuild marts and exports, and publish, all under the writer lock: runs that write the
    warehouse never overlap, a second one waits."""
    config = load_config(config_path)
    config_path = str(Path(config_path).resolve())
    published = config.paths.warehouse
    logger = get_run_logger()

    with writer_lock(published):
        # chosen only now: a run that waited for the lock sees what the previous run left in the inbox
        fetch = selected is None
        if selected is None:
            selected = [(s, f) for s in config.sources for f in s.files(config.stable_seconds)]
        files = [(s, f) for s, f in selected if f.exists()]
        fingerprint = run_fingerprint([f for _, f in files], config.files)
        last = last_published(published)
        unchanged = fetch and not config.fetches_statistics and last and last[1] == fingerprint
        gone = not fetch and not files  # an event for a file that an earlier run already took out of the inbox
        if unchanged or gone:
            logger.info("nothing new since run %s (%s): warehouse and exports stay as they are",
                        last[0] if last else "-", "same files, configuration and code" if unchanged else "file gone")
            return {"run_id": last[0] if last else None, "nothing_new": True, "files": [], "marts": {}, "warehouse": str(published),
                    "exports": str(config.paths.exports / "latest"),
                    "validation_report": str(docs_index(config.paths.validation))}
        now = datetime.now(timezone.utc)
        run_id = f"{now:%Y%m%dT%H%M%SZ}-{uuid4().hex[:6]}"
        build = str(start_build(published, run_id))
        export_staging = None
        try:
            prepare_warehouse(build, run_id)
            if fetch:
                fetched = fetch_statistics(build, run_id, config_path)
                files = [(FileSource(f["source_name"], f["format"], f["path"]), Path(f["path"])) for f in fetched] + files
            logger.info("run %s: %d file(s) from %d source(s)", run_id, len(files), len({s.name for s, _ in files}))
            # new files are landed and parsed side by side on the task runner and loaded one by one in name order,
            # each as soon as its own parse is done: later files are parsed while earlier ones are validated and loaded
            work = config.paths.home / "work" / run_id
            fresh = set(deliveries_to_parse(build, [str(f) for _, f in files]))
            ahead = [(s, f) for s, f in files if str(f) in fresh]
            # the workers serve parse tasks that run in this process: a Dask runner's tasks run in its own workers
            wanted = config.task_runner == "processes" and isinstance(get_run_context().task_runner, ThreadPoolTaskRunner)
            with parse_workers(wanted, config.max_workers, [f for _, f in ahead]) as workers:
                futures = parse.map([s.name for s, _ in ahead], [s.format for s, _ in ahead], [str(f) for _, f in ahead],
                                    unmapped(config_path), unmapped(str(work)), unmapped(workers))
                parsing = {str(f): future for (_, f), future in zip(ahead, futures)}
                if workers:  # this process is free while they parse
                    prepare_validation(config_path)
                outcomes = [ingest(build, run_id, s.name, s.format, str(f), config_path,
                                   parsing[str(f)].result() if str(f) in parsing else None)
                            for s, f in files]
            if any(o["status"] not in ("unchanged", "duplicate") for o in outcomes):
                validation_docs(run_id, config_path)
            mart_rows = marts(build, config_path)
            export_staging = exports(build, run_id, f"{now:%Y-%m-%d}", config_path)
            summary = {
                "run_id": run_id,
                "fingerprint": fingerprint,
                "files": outcomes,
                "marts": mart_rows,
                "warehouse": str(published),
                "exports": str(config.paths.exports / "latest"),
                "validation_report": str(docs_index(config.paths.validation)),
            }
            finish_run(build, run_id, summary)
            publish_build(Path(build), published)
            publish_exports(Path(export_staging), config.paths.exports, f"{now:%Y-%m-%d}")
        except BaseException:
            discard_build(Path(build))
            if export_staging:
                discard_exports(Path(export_staging))
            raise
        finally:
            shutil.rmtree(config.paths.home / "work" / run_id, ignore_errors=True)
        for (source, path), outcome in zip(files, outcomes):
            if source.consume:
                settle(path, outcome["status"], config.paths.processed)
    refused = [f for f in outcomes if f["status"] in REFUSED or f["rows_quarantined"]]
    if refused:
        logger.warning("run %s: %d file(s) with quarantined input: %s", run_id, len(refused),
                       "; ".join(f"{f['file_name']}: {f['message']}" for f in refused))
    return summary


# Bounded by default (Prefect's own default pool is not); `[execution]` in the configuration chooses another runner.
DEFAULT_TASK_RUNNER = ThreadPoolTaskRunner(max_workers=2)


@flow(name="nightly", log_prints=True, task_runner=DEFAULT_TASK_RUNNER)
def nightly(config_path: str = "config/pipeline.toml") -> dict:
    """Everything configured, also what the event-triggered runs missed."""
    return run_pipeline(config_path)


@flow(name="ingest-usage-log", log_prints=True, task_runner=DEFAULT_TASK_RUNNER)
def ingest_usage_log(path: str, config_path: str = "config/pipeline.toml") -> dict:
    """One file that just landed in the inbox (the path comes from the watcher's event)."""
    file = Path(path)
    source = load_config(config_path).source_for(file)
    return run_pipeline(config_path, [(source, file)])
