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


def stored_within(con: duckdb.DuckDBPyConnection, table: str, batch: pl.DataFrame, span_column: str) -> bool:
    """Whether `table` holds any row within the batch's span of `span_column` (a date or time). The bounds go in as
    values, so DuckDB answers from the row groups' min/max without reading the others."""
    if batch.is_empty():
        return False
    first, last = batch[span_column].min(), batch[span_column].max()
    found = con.execute(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {span_column} BETWEEN ? AND ?)", [first, last])
    return found.fetchall()[0][0]


def replace_by_key(con: duckdb.DuckDBPyConnection, table: str, batch: pl.DataFrame, key: list[str],
                   span_column: str | None = None) -> int:
    """Delete the stored rows with a key of the batch, insert the batch; returns how many stored rows it replaced.

    Used instead of a primary-key upsert on the big staging tables: DuckDB checks a primary key through an index
    that grows with the table and must fit in memory (a million new check-ins took 4.6 s against ten million, the
    delete and insert 0.6 s). The batch must hold each key once (the suites quarantine repeats). A span column (a
    date or time) bounds the delete to the batch's span, and a batch for a span with nothing stored yet (the usual
    new month or year) is only inserted.
    """
    replaced = 0
    with registered(con, replacing_batch=batch):
        if span_column is None or stored_within(con, table, batch, span_column):
            same_key = " AND ".join(f"stored.{c} = batch.{c}" for c in key)
            within = (f" AND stored.{span_column} BETWEEN (SELECT min({span_column}) FROM replacing_batch)"
                      f" AND (SELECT max({span_column}) FROM replacing_batch)") if span_column else ""
            deleted = con.execute(f"DELETE FROM {table} AS stored USING replacing_batch AS batch WHERE {same_key}{within}")
            replaced = deleted.fetchall()[0][0]
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM replacing_batch")
    return replaced
