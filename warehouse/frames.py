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
