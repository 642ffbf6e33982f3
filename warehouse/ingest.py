"""Ingesting one delivered file: fingerprint, land, parse, validate, quarantine what fails, load the rest.

Everything a file does to the warehouse happens in one transaction, so a file either lands completely or not at
all; a usage log bigger than a piece (transforms/log_pieces.py) is parsed whole first, so that a refusal comes
before any of it is loaded, then validated and loaded piece by piece, one transaction each, inside the run's build
(see _validate_and_load). Bad input never raises out of here: it ends as a quarantined file or quarantined rows,
with the file, the row and the reason in audit.quarantine and in the outcome that the run summary prints.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import duckdb
import polars as pl

from transforms.bad_input import BadInputError
from transforms.checkin_log import REPEAT_KEY, parse_checkin_log_pieces
from transforms.city_population import parse_city_population
from transforms.facility_registry import FacilityRegistry, load_facility_registry
from transforms.finance_genesis import parse_genesis_municipal_debt
from transforms.genesis_csv import parse_genesis_csv
from transforms.genesis_ffcsv import parse_genesis_ffcsv
from transforms.log_pieces import PIECE_BYTES
from transforms.open_repair import parse_open_repair
from transforms.population_frame import with_declared_basis
from transforms.pseudonymise import pseudonym_key_from_env
from transforms.room_bookings import parse_room_bookings
from warehouse.fingerprint import file_sha256
from warehouse.frames import insert_frame
from warehouse.load_context import LoadContext, LoadResult, combined
from warehouse.load_finance import finance_suite, load_finance, parse_finance
from warehouse.load_open_repair import load_open_repair
from warehouse.load_population import load_population
from warehouse.load_projection import load_projection, parse_projection, projection_suite
from warehouse.load_usage_logs import load_checkins, load_room_bookings
from warehouse.parsed_pieces import read_parsed, write_parsed


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
    piece_bytes: int = PIECE_BYTES  # a usage log is parsed, validated and loaded in pieces of about this size

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
    read: Callable[[Path, IngestContext], Iterable[pl.DataFrame]]  # the parsed file, as one frame or in pieces
    suite: Callable[[IngestContext], tuple[str, list]]
    load: Callable[[duckdb.DuckDBPyConnection, pl.DataFrame, pl.DataFrame, LoadContext], LoadResult]
    repeat_key: list[str] | None = None  # the key of a record's repeats, for a format read in pieces


def _whole(parse: Callable[[bytes, str, IngestContext], pl.DataFrame]) -> Callable[[Path, IngestContext], list[pl.DataFrame]]:
    """A format whose files are parsed whole (statistics tables, bookings: small files), as one piece."""
    return lambda path, ctx: [parse(path.read_bytes(), path.name, ctx)]


FORMATS: dict[str, Format] = {
    "genesis_csv": Format(_whole(lambda data, file, ctx: with_declared_basis(parse_genesis_csv(data, file), ctx.population_basis)),
                          _population_suite, load_population),
    "genesis_ffcsv": Format(_whole(lambda data, file, ctx: with_declared_basis(parse_genesis_ffcsv(data, file), ctx.population_basis)),
                            _population_suite, load_population),
    "open_repair": Format(_whole(lambda data, file, ctx: parse_open_repair(data, file)), _repair_suite, load_open_repair),
    # no pseudonym key: a clear error that stops the run before anything is written, not a quarantined file
    "checkin_log": Format(lambda path, ctx: parse_checkin_log_pieces(path, pseudonym_key_from_env(), ctx.piece_bytes),
                          _checkin_suite, load_checkins, REPEAT_KEY),
    "room_bookings": Format(_whole(lambda data, file, ctx: parse_room_bookings(data, file)), _booking_suite, load_room_bookings),
    "municipal_finance": Format(_whole(parse_finance), finance_suite, load_finance),
    "genesis_projection": Format(_whole(parse_projection), projection_suite, load_projection),
    # GENESIS 71327-01-05-4 (debt per Kreis): FINANCE rows with only the debt columns, same suite and loader
    "genesis_municipal_debt": Format(_whole(lambda data, file, ctx: parse_genesis_municipal_debt(data, file)),
                                     finance_suite, load_finance),
    "city_population": Format(_whole(lambda data, file, ctx: parse_city_population(data, file, ctx.options)),
                              _population_suite, load_population),
}


@dataclass(frozen=True)
class ParsedDelivery:
    """A delivery landed and parsed ahead of its load, in parallel with others: its pieces as Parquet in a work
    folder (warehouse/parsed_pieces.py), or why the file was refused. Validation and load stay in the single
    warehouse writer."""

    sha256: str
    pieces: tuple[Path, ...] = ()
    refusal: tuple[int | None, str] | None = None  # (row, reason) of the BadInputError
    repeats: Path | None = None  # records that repeat one in an earlier piece (parsed_pieces.find_repeats)


def parse_delivery(source_format: str, path: Path, ctx: IngestContext, work: Path) -> ParsedDelivery:
    """Land and parse one file; touches no warehouse, so many can run at once. A missing pseudonym key is not
    bad input: it raises, and the run stops before anything is loaded."""
    sha256 = file_sha256(path)
    _land(path, sha256, ctx)
    return _parse_into(FORMATS[source_format], path, sha256, ctx, work)


def _parse_into(fmt: Format, path: Path, sha256: str, ctx: IngestContext, work: Path) -> ParsedDelivery:
    # by name as well as content: the same content delivered under two names is parsed twice (source_file differs)
    folder = work / f"{sha256[:16]}_{path.name}"
    try:
        pieces, repeats = write_parsed(fmt.read(path, ctx), folder, fmt.repeat_key)
    except BadInputError as err:
        shutil.rmtree(folder, ignore_errors=True)  # the pieces before the refused one
        return ParsedDelivery(sha256, refusal=(err.row, err.reason))
    return ParsedDelivery(sha256, tuple(pieces), repeats=repeats)


def new_deliveries(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> list[Path]:
    """The files whose content the warehouse has not loaded yet: only these are worth parsing ahead."""
    return [p for p in paths if _already_seen(con, file_sha256(p)) is None]


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


class _RefusedWhileLoading(Exception):
    """A loader refused the file: what its pieces wrote in the file's transaction is undone before the refusal
    is recorded."""

    def __init__(self, error: BadInputError):
        self.error = error


def ingest_file(con: duckdb.DuckDBPyConnection, run_id: str, source_name: str, source_format: str, path: Path,
                ctx: IngestContext, parsed: ParsedDelivery | None = None) -> FileOutcome:
    """Validate and load one file (parsing it here unless `parsed` says how parse_delivery ended)."""
    fmt = FORMATS[source_format]
    sha256 = parsed.sha256 if parsed else file_sha256(path)
    con.execute("BEGIN")
    try:
        try:
            outcome = _ingest(con, run_id, source_name, fmt, path, sha256, ctx, parsed)
        except _RefusedWhileLoading as refused:
            con.execute("ROLLBACK")
            con.execute("BEGIN")
            outcome = _quarantine_whole_file(con, run_id, source_name, path, sha256, refused.error, ctx)
        _record(con, run_id, source_name, source_format, path, sha256, outcome)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return outcome


@contextmanager
def _parsed(fmt: Format, path: Path, sha256: str, ctx: IngestContext, parsed: ParsedDelivery | None) -> Iterator[ParsedDelivery]:
    """`parsed`, or the file landed and parsed here, its pieces in a temporary folder until the block ends."""
    if parsed is not None:
        yield parsed
        return
    _land(path, sha256, ctx)
    with tempfile.TemporaryDirectory(prefix="parsed-") as scratch:
        yield _parse_into(fmt, path, sha256, ctx, Path(scratch))


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
    with _parsed(fmt, path, sha256, ctx, parsed) as delivery:
        if delivery.refusal is not None:
            return _quarantine_whole_file(con, run_id, source_name, path, sha256, BadInputError(path.name, *delivery.refusal), ctx)
        return _validate_and_load(con, run_id, source_name, fmt, path, sha256, ctx, delivery)


def _validate_and_load(con, run_id, source_name, fmt: Format, path: Path, sha256: str, ctx: IngestContext,
                       delivery: ParsedDelivery) -> FileOutcome:
    """Piece by piece: each piece is a batch of its own for Great Expectations, its failing rows quarantined,
    the rest loaded. A file of several pieces names each piece's rows in its validation's name.

    Each piece but the last is committed: DuckDB holds a transaction's new rows in memory until it commits (~0.1 GB
    per 1M check-ins: a 30M-row file took the writer to 6.4 GB). That is safe because every run loads into a
    build copy of the warehouse, published only when the whole run has succeeded (warehouse/publish.py): a run
    that fails midway leaves the published warehouse as it was."""
    from expectations.validate import run_name, validate_batch

    context = LoadContext(run_id=run_id, source_name=source_name, file_name=path.name, sha256=sha256)
    several = len(delivery.pieces) > 1
    rows_read = quarantined = 0
    results = []
    for number, frame in enumerate(read_parsed(list(delivery.pieces), delivery.repeats)):
        rows = (rows_read + 1, rows_read + frame.height) if several else None
        suite_name, expectations = fmt.suite(ctx)
        validation = validate_batch(frame, suite_name, expectations, ctx.validation, run_name(run_id, path.name, rows))
        piece = {"first_row": pl.lit(rows[0])} if rows else {}  # else the column's default: 1, the whole file
        insert_frame(con, "audit.validation_results", validation.results.with_columns(
            run_id=pl.lit(run_id), file_name=pl.lit(path.name), sha256=pl.lit(sha256), **piece))
        if validation.failed_rows:
            _quarantine_rows(con, run_id, source_name, path.name, sha256, frame, validation.failed_rows)
        bad = pl.Series("position", sorted(validation.failed_rows), dtype=pl.UInt32)
        valid = frame.with_row_index("position").filter(~pl.col("position").is_in(bad.implode())).drop("position")
        try:
            results.append(fmt.load(con, valid, frame, context))
        except BadInputError as err:
            if number:  # the pieces before are committed: the run fails, its build is not published
                raise RuntimeError(f"{err}: refused while loading rows {rows[0]}–{rows[1]}, after the rows before "
                                   "them were loaded; the run stops and publishes nothing") from err
            raise _RefusedWhileLoading(err) from None
        rows_read += frame.height
        quarantined += frame.height - valid.height
        if number + 1 < len(delivery.pieces):
            con.execute("COMMIT")
            con.execute("BEGIN")
    result = combined(results)
    message = result.message
    if quarantined:
        message = f"{quarantined} row(s) quarantined, see audit.quarantine" + (f"; {message}" if message else "")
    return FileOutcome(source_name, path.name, result.status, rows_read, result.rows_loaded, quarantined, message)
