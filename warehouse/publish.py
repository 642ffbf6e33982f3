"""Building the warehouse beside the published file and swapping it in, so analysts never block or see a half run.

DuckDB lets no writer open a file that any reader holds open. The pipeline therefore never writes the published
file: it copies it to a build file, writes there, closes it and os.replace()s it over the published one. Open
readers keep their snapshot; new readers see the new file. One lock file serialises writers (nightly and
event-triggered runs), so a second run waits instead of failing or overwriting the first.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

# Written so that DuckDB 1.1 and newer clients (CLIs, DBeaver drivers) can still open the published file.
STORAGE_COMPATIBILITY = "v1.1.0"


def connect_build(path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path), config={"storage_compatibility_version": STORAGE_COMPATIBILITY})


@contextmanager
def writer_lock(published: Path) -> Iterator[None]:
    published.parent.mkdir(parents=True, exist_ok=True)
    with open(published.with_name(published.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # blocks until the other writer has published or failed
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def start_build(published: Path, run_id: str) -> Path:
    """A private copy of the published warehouse (or a new file) for this run to write into."""
    build = published.with_name(f".build-{run_id}.duckdb")
    if published.exists():
        shutil.copy2(published, build)
    return build


def publish_build(build: Path, published: Path) -> None:
    """Swap the finished build in. Its connection must be closed (which checkpoints it): a build with a
    write-ahead log left over is not complete in itself."""
    if build.with_name(build.name + ".wal").exists():
        raise RuntimeError(f"{build} still has a write-ahead log; close its connection before publishing")
    os.replace(build, published)


def discard_build(build: Path) -> None:
    for path in (build, build.with_name(build.name + ".wal")):
        path.unlink(missing_ok=True)
