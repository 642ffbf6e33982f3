"""The handover of a parsed delivery from its parse (often a worker process) to the single writer: one Parquet file
per piece (transforms/log_pieces.py), read back by the writer one at a time.

A piece marks the repeats of a record within itself (transforms.checkin_log.mark_repeats). A visit delivered twice
in one big file can fall into two pieces, so for a file of several pieces DuckDB finds the repeats over all of
them within a memory limit, spilling to the work folder (find_repeats). Holding every key of a 100M-row file in
Polars would not be bounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import duckdb
import polars as pl

REPEATS_MEMORY = "1GB"  # the repeats pass, after the parse: the worker's pieces are freed by then


def write_parsed(frames: Iterable[pl.DataFrame], folder: Path, repeat_key: list[str] | None) -> tuple[list[Path], Path | None]:
    """The frames as Parquet pieces in `folder`, and the file of repeats across pieces (see find_repeats)."""
    folder.mkdir(parents=True, exist_ok=True)
    pieces = []
    for number, frame in enumerate(frames):
        piece = folder / f"{number:05d}.parquet"
        # LZ4, not the default zstd, and no column statistics: a temporary file read back once, whole (1M check-ins:
        # write and read 0.63 → 0.43 s of CPU with LZ4, → 0.37 s without statistics; 20 → 28 MB)
        frame.write_parquet(piece, compression="lz4", statistics=False)
        pieces.append(piece)
    repeats = find_repeats(pieces, repeat_key, folder / "repeats.parquet") if repeat_key and len(pieces) > 1 else None
    return pieces, repeats


def find_repeats(pieces: list[Path], key: list[str], out: Path) -> Path | None:
    """Writes `out`: source_row and duplicate_of_row (the first source_row with the same key, nulls equal as in
    mark_repeats) of every record whose key occurs earlier in the file. None if no key occurs twice.

    The rows are grouped by a 64-bit hash of the key, and each candidate is checked against the key of the first
    row with its hash. Grouping by the key columns themselves ran out of memory at 1 GB over 100M rows. The hash
    needs 1.1 GB and 8.6 s, or 52 s if every key came twice. Two different keys under one hash (odds about
    n² / 2⁶⁵) can only hide a repeat across pieces. The load then stores that visit once (it replaces by key), and
    a repeat within one piece is still marked by the piece itself (read_parsed)."""
    columns = ", ".join(key)
    same = " AND ".join(f"first.{c} IS NOT DISTINCT FROM later.{c}" for c in key)
    config = {"memory_limit": REPEATS_MEMORY, "temp_directory": str(out.parent / "spill"),
              "preserve_insertion_order": False}
    with duckdb.connect(config=config) as con:
        written = con.execute(
            f"""COPY (
                    WITH firsts AS (
                        SELECT hash({columns}) AS h, min(source_row) AS first_row FROM read_parquet($pieces)
                        GROUP BY h HAVING count(*) > 1),
                    candidates AS (
                        SELECT source_row, first_row FROM read_parquet($pieces) JOIN firsts ON hash({columns}) = h
                        WHERE source_row <> first_row)
                    SELECT candidates.source_row, candidates.first_row AS duplicate_of_row
                    FROM candidates
                    JOIN read_parquet($pieces) AS later ON later.source_row = candidates.source_row
                    JOIN read_parquet($pieces) AS first ON first.source_row = candidates.first_row
                    WHERE {same}
                ) TO '{out}' (FORMAT parquet)""",
            {"pieces": [str(p) for p in pieces]},
        ).fetchall()[0][0]
    if not written:
        out.unlink(missing_ok=True)
        return None
    return out


def read_parsed(pieces: list[Path], repeats: Path | None) -> Iterator[pl.DataFrame]:
    """The pieces one at a time, each with the repeats across pieces marked: the first row of the file with the
    same key, else the piece's own mark."""
    for piece in pieces:
        frame = pl.read_parquet(piece)
        if repeats is not None:
            first, last = frame["source_row"].min(), frame["source_row"].max()
            marks = (pl.scan_parquet(repeats).filter(pl.col("source_row").is_between(first, last))
                     .rename({"duplicate_of_row": "repeat_of"}).collect())
            frame = (frame.join(marks, on="source_row", how="left", maintain_order="left")
                     .with_columns(pl.coalesce("repeat_of", "duplicate_of_row").alias("duplicate_of_row"))
                     .select(frame.columns))
        yield frame
