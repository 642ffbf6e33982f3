"""The handover of a parsed delivery from its parse (often a worker process) to the single writer: one Parquet file
per piece (transforms/log_pieces.py), read back by the writer one at a time.

A piece marks the repeats of a record within itself (transforms.checkin_log.mark_repeats). A visit delivered twice
in one big file can fall into two pieces, so for a file of several pieces DuckDB finds the repeats over all of
them, exactly and within a memory limit (it spills to the work folder). Holding every key of a 100M-row file in
Polars would not be bounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import duckdb
import polars as pl

REPEATS_MEMORY = "1GB"  # the repeats pass beside a parse worker's own ~1 GB per piece


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
    mark_repeats) of every record whose key occurs earlier in the file. None if no key occurs twice."""
    columns = ", ".join(key)
    same = " AND ".join(f"earlier.{c} IS NOT DISTINCT FROM later.{c}" for c in key)
    config = {"memory_limit": REPEATS_MEMORY, "temp_directory": str(out.parent / "spill")}
    with duckdb.connect(config=config) as con:
        written = con.execute(
            f"""COPY (
                    WITH rows AS (SELECT {columns}, source_row FROM read_parquet($pieces)),
                    earlier AS (SELECT {columns}, min(source_row) AS first_row FROM rows GROUP BY ALL HAVING count(*) > 1)
                    SELECT later.source_row, earlier.first_row AS duplicate_of_row
                    FROM rows AS later JOIN earlier ON {same}
                    WHERE later.source_row <> earlier.first_row
                ) TO '{out}' (FORMAT parquet)""",
            {"pieces": [str(p) for p in pieces]},
        ).fetchall()[0][0]
    if not written:
        out.unlink(missing_ok=True)
        return None
    return out


def read_parsed(pieces: list[Path], repeats: Path | None) -> Iterator[pl.DataFrame]:
    """The pieces one at a time, each with the repeats across pieces marked."""
    for piece in pieces:
        frame = pl.read_parquet(piece)
        if repeats is not None:
            first, last = frame["source_row"].min(), frame["source_row"].max()
            marks = pl.scan_parquet(repeats).filter(pl.col("source_row").is_between(first, last)).collect()
            frame = (frame.drop("duplicate_of_row").join(marks, on="source_row", how="left", maintain_order="left")
                     .select(frame.columns))
        yield frame
