"""DuckDB's memory limit for the heavy queries of a run: it spills to disk beyond it instead of taking up to 80 % of
the machine's memory (the 100M benchmark's floor query, without a limit, took 20 GB)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb


@contextmanager
def memory_limited(con: duckdb.DuckDBPyConnection, limit: str | None) -> Iterator[None]:
    """DuckDB spills beyond `limit` (e.g. "4GB") inside the block; None leaves the setting alone. The setting is the
    database's, not the query's: the previous limit (as DuckDB reports it, to 0.1 GiB) is put back afterwards."""
    if not limit:
        yield
        return
    previous = con.sql("SELECT current_setting('memory_limit')").fetchall()[0][0]
    con.execute("SET memory_limit = $limit", {"limit": limit})
    try:
        yield
    finally:
        con.execute("SET memory_limit = $limit", {"limit": previous})
