"""Ingesting one delivered file: fingerprint, land, parse, validate, quarantine what fails, load the rest.

Everything a file does to the warehouse happens in one transaction, so a file either lands completely or not at
all. Bad input never raises out of here: it ends as a quarantined file or quarantined rows, with the file, the
row and the reason in audit.quarantine and in the outcome that the run summary prints.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import duckdb
import polars as pl

from transforms.bad_input import BadInputError
from transforms.checkin_log import parse_checkin_log
from transforms.city_population import parse_city_population
from transforms.facility_registry import FacilityRegistry, load_facility_registry
from transforms.finance_genesis import parse_genesis_municipal_debt
from transforms.genesis_csv import parse_genesis_csv
from transforms.genesis_ffcsv import parse_genesis_ffcsv
from transforms.open_repair import parse_open_repair
from transforms.population_frame import with_declared_basis
from transforms.pseudonymise import pseudonym_key_from_env
from transforms.room_bookings import parse_room_bookings
from warehouse.frames import insert_frame
from warehouse.load_context import LoadContext, LoadResult
from warehouse.load_finance import finance_suite, load_finance, parse_finance
from warehouse.load_open_repair import load_open_repair
from warehouse.load_population import load_population
from warehouse.load_projection import load_projection, parse_projection, projection_suite
from warehouse.load_usage_logs import load_checkins, load_room_bookings


@dataclass(frozen=True)
class IngestContext:
    """Where an ingest writes besides the warehouse, and what the usage-log formats validate against."""

    landing: Path
    quarantine: Path
    validation: Path
    facility_registry: Path | None = None
    # declared census basis of a statistics source, applied where the file states none (see with_declared_basis)
    population_basis: tuple[tuple[int, int | None, str], ...] = ()
    options: dict = field(default_factory=dict, hash=False)  # the source's format options from the configuration

    @cached_property
    def registry(self) -> FacilityRegistry:
        if self.facility_registry is None:
            raise ValueError("usage logs need a facility registry: set [facilities] registry in the configuration")
        return load_facility_registry(self.facility_registry)


# Suites are looked up when needed: importing Great Expectations takes seconds.
def _population_suite(ctx: IngestContext) -> tuple[str, list]:
    from expectations import population

    return population.SUITE_NAME, population.expectations()


def _repair_suite(ctx: IngestContext) -> tuple[str, list]:
    from expectations import repair_items

    return repair_items.SUITE_NAME, repair_items.expectations()


def _checkin_suite(ctx: IngestContext) -> tuple[str, list]:
    from expectations import checkins

    return checkins.SUITE_NAME, checkins.expectations(ctx.registry.facility_ids)


def _booking_suite(ctx: IngestContext) -> tuple[str, list]:
    from expectations import bookings

    return bookings.SUITE_NAME, bookings.expectations(ctx.registry.facility_ids, ctx.registry.rooms)


@dataclass(frozen=True)
class Format:
    parse: Callable[[bytes, str, IngestContext], pl.DataFrame]
    suite: Callable[[IngestContext], tuple[str, list]]
    load: Callable[[duckdb.DuckDBPyConnection, pl.DataFrame, pl.DataFrame, LoadContext], LoadResult]


FORMATS: dict[str, Format] = {
    "genesis_csv": Format(lambda data, file, ctx: with_declared_basis(parse_genesis_csv(data, file), ctx.population_basis),
                          _population_suite, load_population),
    "genesis_ffcsv": Format(lambda data, file, ctx: with_declared_basis(parse_genesis_ffcsv(data, file), ctx.population_basis),
                            _population_suite, load_population),
    "open_repair": Format(lambda data, file, ctx: parse_open_repair(data, file), _repair_suite, load_open_repair),
    # no pseudonym key: a clear error that stops the run before anything is written, not a quarantined file
    "checkin_log": Format(lambda data, file, ctx: parse_checkin_log(data, file, pseudonym_key_from_env()),
                          _checkin_suite, load_checkins),
    "room_bookings": Format(lambda data, file, ctx: parse_room_bookings(data, file), _booking_suite, load_room_bookings),
    "municipal_finance": Format(parse_finance, finance_suite, load_finance),
    "genesis_projection": Format(parse_projection, projection_suite, load_projection),
    # GENESIS 71327-01-05-4 (debt per Kreis): FINANCE rows with only the debt columns, same suite and loader
    "genesis_municipal_debt": Format(lambda data, file, ctx: parse_genesis_municipal_debt(data, file),
                                     finance_suite, load_finance),
    "city_population": Format(lambda data, file, ctx: parse_city_population(data, file, ctx.options),
                              _population_suite, load_population),
}


@dataclass(frozen=True)
class ParsedDelivery:
    """A delivery landed and parsed ahead of its load, in parallel with others: the frame as Parquet in a work
    folder, or why the file was refused. Validation and load stay in the single warehouse writer."""

    sha256: str
    frame_file: Path | None
    refusal: tuple[int | None, str] | None = None  # (row, reason) of the BadInputError


def parse_delivery(source_format: str, path: Path, ctx: IngestContext, work: Path) -> ParsedDelivery:
    """Land and parse one file; touches no warehouse, so many can run at once. A missing pseudonym key is not
    bad input: it raises, and the run stops before anything is loaded."""
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    _land(path, sha256, ctx)
    try:
        frame = FORMATS[source_format].parse(data, path.name, ctx)
    except BadInputError as err:
        return ParsedDelivery(sha256, None, (err.row, err.reason))
    work.mkdir(parents=True, exist_ok=True)
    frame_file = work / f"{sha256}.parquet"
    # LZ4, not the default zstd, and no column statistics: a temporary file read back once, whole (1M check-ins:
    # write and read 0.63 → 0.43 s of CPU with LZ4, → 0.37 s without statistics; 20 → 28 MB)
    frame.write_parquet(frame_file, compression="lz4", statistics=False)
    return ParsedDelivery(sha256, frame_file)


def new_deliveries(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> list[Path]:
    """The files whose content the warehouse has not loaded yet: only these are worth parsing ahead."""
    digests = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    return [p for p, digest in digests.items() if _already_seen(con, digest) is None]


@dataclass(frozen=True)
class FileOutcome:
    source_name: str
    file_name: str
    status: str  # loaded | unchanged | superseded | duplicate | quarantined
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    message: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _already_seen(con: duckdb.DuckDBPyConnection, sha256: str) -> tuple[str, str] | None:
    seen = con.execute(
        """SELECT file_name, run_id FROM audit.load_manifest
           WHERE sha256 = ? AND status IN ('loaded', 'superseded')
           ORDER BY recorded_at LIMIT 1""",
        [sha256],
    ).fetchall()
    return seen[0] if seen else None


def _quarantine_file(path: Path, sha256: str, reason: str, ctx: IngestContext) -> Path:
    ctx.quarantine.mkdir(parents=True, exist_ok=True)
    kept = ctx.quarantine / f"{sha256[:16]}_{path.name}"
    shutil.copyfile(path, kept)
    kept.with_name(kept.name + ".reason.txt").write_text(reason + "\n", encoding="utf-8")
    return kept


def _land(path: Path, sha256: str, ctx: IngestContext) -> None:
    """Keep the delivery unchanged under its content hash; the raw file outlives the inbox."""
    target = ctx.landing / sha256 / path.name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def _record(con, run_id: str, source_name: str, source_format: str, path: Path, sha256: str, outcome: FileOutcome) -> None:
    con.execute(
        """INSERT INTO audit.load_manifest (run_id, source_name, source_format, file_name, file_path, sha256,
               size_bytes, status, rows_read, rows_loaded, rows_quarantined, message)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [run_id, source_name, source_format, path.name, str(path), sha256, path.stat().st_size, outcome.status,
         outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined, outcome.message],
    )


def _quarantine_whole_file(con, run_id, source_name, path, sha256, err: BadInputError, ctx: IngestContext) -> FileOutcome:
    kept = _quarantine_file(path, sha256, str(err), ctx)
    con.execute(
        """INSERT INTO audit.quarantine (run_id, source_name, file_name, sha256, row_number, rule, reason)
           VALUES (?, ?, ?, ?, ?, 'file is readable and complete', ?)""",
        [run_id, source_name, path.name, sha256, err.row, err.reason],
    )
    return FileOutcome(source_name, path.name, "quarantined", message=f"{err} (file kept as {kept})")


def _quarantine_rows(con, run_id, source_name, file_name, sha256, frame: pl.DataFrame, failed: dict) -> None:
    rows = []
    for position, failures in sorted(failed.items()):
        record = frame.row(position, named=True)
        for rule, column in failures:
            rows.append(
                {
                    "run_id": run_id, "source_name": source_name, "file_name": file_name, "sha256": sha256,
                    "row_number": record["source_row"], "rule": rule, "column_name": column,
                    "reason": f"{column} = {record.get(column.split(',')[0])!r} breaks rule '{rule}'",
                    "record": json.dumps(record, default=str, ensure_ascii=False),
                }
            )
    insert_frame(con, "audit.quarantine", pl.DataFrame(rows))


def ingest_file(con: duckdb.DuckDBPyConnection, run_id: str, source_name: str, source_format: str, path: Path,
                ctx: IngestContext, parsed: ParsedDelivery | None = None) -> FileOutcome:
    """Validate and load one file (parsing it here unless `parsed` says how parse_delivery ended)."""
    fmt = FORMATS[source_format]
    sha256 = parsed.sha256 if parsed else hashlib.sha256(path.read_bytes()).hexdigest()
    con.execute("BEGIN")
    try:
        outcome = _ingest(con, run_id, source_name, fmt, path, sha256, ctx, parsed)
        _record(con, run_id, source_name, source_format, path, sha256, outcome)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return outcome


def _parsed_frame(fmt: Format, path: Path, sha256: str, ctx: IngestContext, parsed: ParsedDelivery | None) -> pl.DataFrame:
    if parsed is None:
        _land(path, sha256, ctx)
        return fmt.parse(path.read_bytes(), path.name, ctx)
    if parsed.refusal is not None:
        raise BadInputError(path.name, *parsed.refusal)
    return pl.read_parquet(parsed.frame_file)


def _ingest(con, run_id, source_name, fmt: Format, path: Path, sha256: str, ctx: IngestContext,
            parsed: ParsedDelivery | None) -> FileOutcome:
    seen = _already_seen(con, sha256)
    if seen and seen[0] == path.name:
        return FileOutcome(source_name, path.name, "unchanged", message=f"already loaded in run {seen[1]}; skipped")
    if seen:
        reason = f"duplicate delivery: same content as {seen[0]}, loaded in run {seen[1]}"
        kept = _quarantine_file(path, sha256, f"{path.name}: {reason}", ctx)
        con.execute(
            """INSERT INTO audit.quarantine (run_id, source_name, file_name, sha256, row_number, rule, reason)
               VALUES (?, ?, ?, ?, NULL, 'each delivery is new', ?)""",
            [run_id, source_name, path.name, sha256, reason],
        )
        return FileOutcome(source_name, path.name, "duplicate", message=f"{path.name}: {reason} (file kept as {kept})")

    try:
        frame = _parsed_frame(fmt, path, sha256, ctx, parsed)
    except BadInputError as err:
        return _quarantine_whole_file(con, run_id, source_name, path, sha256, err, ctx)

    from expectations.validate import run_name, validate_batch

    suite_name, expectations = fmt.suite(ctx)
    validation = validate_batch(frame, suite_name, expectations, ctx.validation, run_name(run_id, path.name))
    results = validation.results.with_columns(run_id=pl.lit(run_id), file_name=pl.lit(path.name), sha256=pl.lit(sha256))
    insert_frame(con, "audit.validation_results", results)

    if validation.failed_rows:
        _quarantine_rows(con, run_id, source_name, path.name, sha256, frame, validation.failed_rows)
    bad = pl.Series("position", sorted(validation.failed_rows), dtype=pl.UInt32)
    valid = frame.with_row_index("position").filter(~pl.col("position").is_in(bad.implode())).drop("position")

    context = LoadContext(run_id=run_id, source_name=source_name, file_name=path.name, sha256=sha256)
    try:
        result = fmt.load(con, valid, frame, context)
    except BadInputError as err:
        return _quarantine_whole_file(con, run_id, source_name, path, sha256, err, ctx)
    quarantined = frame.height - valid.height
    message = result.message
    if quarantined:
        message = f"{quarantined} row(s) quarantined, see audit.quarantine" + (f"; {message}" if message else "")
    return FileOutcome(source_name, path.name, result.status, frame.height, result.rows_loaded, quarantined, message)
