"""Applies the numbered SQL migrations in warehouse/migrations/ in order, once each, recorded in the database."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

MIGRATIONS = Path(__file__).with_name("migrations")


class MigrationError(RuntimeError):
    pass


def _migration_files() -> list[Path]:
    return sorted(MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.sql"))


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply pending migrations; returns the names applied. A changed, already applied migration is an error:
    the database would no longer match the files that describe it."""
    con.execute(
        """CREATE TABLE IF NOT EXISTS main.schema_migrations (
               version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, checksum VARCHAR NOT NULL,
               applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
    )
    applied = {v: (n, c) for v, n, c in con.sql("SELECT version, name, checksum FROM main.schema_migrations").fetchall()}
    done = []
    for path in _migration_files():
        version = int(path.name[:4])
        sql = path.read_text(encoding="utf-8")
        checksum = hashlib.sha256(sql.encode()).hexdigest()
        if version in applied:
            if applied[version][1] != checksum:
                raise MigrationError(f"migration {path.name} was changed after it was applied; add a new migration instead")
            continue
        con.execute("BEGIN")
        try:
            con.execute(sql)
            con.execute("INSERT INTO main.schema_migrations (version, name, checksum) VALUES (?, ?, ?)", [version, path.name, checksum])
            con.execute("COMMIT")
        except duckdb.Error as err:
            con.execute("ROLLBACK")
            raise MigrationError(f"migration {path.name} failed: {err}") from err
        done.append(path.name)
    return done
