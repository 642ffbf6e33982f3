"""Worker processes of lower CPU priority that parse a run's files while the flow's process loads them.

Used with `task_runner = "processes"` (see flows/task_runners.py for why). This module imports nothing but the
standard library: a spawned worker imports it to run `lower_priority`, and Prefect's import (~2 s) in each worker
would compete with the writer for the CPU at the start of the run, when the writer imports Great Expectations.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

WORKER_NICENESS = 10  # added to the parse workers' nice value: the writer in the flow's process goes first


def lower_priority(niceness: int) -> None:
    """Run once in each worker process before its first parse (the threads Polars starts later inherit it)."""
    os.nice(niceness)


@contextmanager
def parse_workers(wanted: bool, max_workers: int, files: int) -> Iterator[ProcessPoolExecutor | None]:
    """The run's parse worker processes if `wanted` and there are two or more files, else None (parse where the
    task runs). A single file gains nothing from a worker: the writer waits for its parse either way."""
    if not wanted or files < 2:
        yield None
        return
    # spawn, not fork: the flow's process runs threads (Prefect's, DuckDB's, Polars'), which fork does not copy safely
    workers = ProcessPoolExecutor(max_workers=min(max_workers, files), mp_context=multiprocessing.get_context("spawn"),
                                  initializer=lower_priority, initargs=(WORKER_NICENESS,))
    try:
        yield workers
    finally:
        workers.shutdown(cancel_futures=True)  # a run that failed does not wait for the files it no longer loads
