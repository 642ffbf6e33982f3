"""Polars frames as SQL relations for the length of a block: how every loader hands a batch to DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import polars as pl


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, **frames: pl.DataFrame) -> Iterator[None]:
    """The frames visible to SQL under the given names until the block ends, also when it fails."""
    for name, frame in frames.items():
        con.register(name, frame)
    try:
        yield
    finally:
        for name in frames:
            con.unregister(name)


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    """Append the frame's rows to `table`, matching columns by name."""
    with registered(con, rows_to_insert=frame):
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM rows_to_insert")


def replace_by_key(con: duckdb.DuckDBPyConnection, table: str, batch: pl.DataFrame, key: list[str],
                   span_column: str | None = None, constants: dict[str, object] | None = None) -> int:
    """Delete the stored rows with a key of the batch, insert the batch; returns how many stored rows it replaced.

    Used instead of a primary-key upsert on the big staging tables: DuckDB checks a primary key through an index
    that grows with the table and must fit in memory (a million new check-ins took 4.6 s against ten million, the
    delete and insert 0.6 s). The batch must hold each key once (the suites quarantine repeats). A span column (a
    date or time) bounds the delete to the batch's span, given as values so that DuckDB skips the row groups
    outside it by their min/max, and a batch for a span with nothing stored yet (the usual new month or year) is
    only inserted. `constants`: columns with one value for every row (a delivery's lineage), given to DuckDB as
    values rather than repeated in each row of the frame (1M check-ins: 0.07 s less CPU, 70 MB less).
    """
    same_key = " AND ".join(f"stored.{c} = batch.{c}" for c in key)
    bounds: list = []
    if span_column is not None and not batch.is_empty():
        bounds = [batch[span_column].min(), batch[span_column].max()]
        same_key += f" AND stored.{span_column} BETWEEN ? AND ?"
    replaced = 0
    with registered(con, replacing_batch=batch):
        nothing_stored = bool(bounds) and not con.execute(
            f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {span_column} BETWEEN ? AND ?)", bounds
        ).fetchall()[0][0]
        if not nothing_stored:
            deleted = con.execute(f"DELETE FROM {table} AS stored USING replacing_batch AS batch WHERE {same_key}", bounds)
            replaced = deleted.fetchall()[0][0]
        constants = constants or {}
        columns = "".join(f", ? AS {name}" for name in constants)
        con.execute(f"INSERT INTO {table} BY NAME SELECT *{columns} FROM replacing_batch", list(constants.values()))
    return replaced
