"""Worker processes of lower CPU priority that parse a run's files while the flow's process loads them.

Used with `task_runner = "processes"` (see flows/task_runners.py for why). This module imports nothing but the
standard library: a spawned worker imports it to run `lower_priority`, and Prefect's import (~2 s) in each worker
would compete with the writer for the CPU at the start of the run, when the writer imports Great Expectations.
(A spawned worker does import the parent's main module before it lowers its priority: `prefect.engine` when a
served deployment runs the flow, ~0.9 s; `flows.cli` for `demand-monitor run`, nothing.)
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path


class ParseWorkerDied(RuntimeError):
    """A parse worker process ended without a result: not bad input, the run stops and publishes nothing."""


WORKER_NICENESS = 10  # added to the parse workers' nice value: the writer in the flow's process goes first


def lower_priority(niceness: int) -> None:
    """Run once in each worker process before its first parse (the threads Polars starts later inherit it).
    Windows has no nice: there the workers run at normal priority."""
    if hasattr(os, "nice"):
        os.nice(niceness)


# Below this many bytes to parse a run parses on its threads and imports Great Expectations when the first file is
# validated. A 100k-row log (9.4 MB) parses in 0.2–0.5 s: a worker and the early import made its landing 0.3–0.7 s
# slower (the import, 2.0 s alone, took 2.4–2.8 s beside the parse). A 1M-row log (94 MB) parses in 1.3 s: its
# ingest took 4.85 s instead of 6.1–6.5 s. The threshold lies between the two measured sizes.
MIN_BYTES_FOR_WORKERS = 32 * 1024 * 1024

# Polars' allocator (jemalloc) hands freed pages back to the kernel after half a second by default, so each file a
# worker parsed faulted its memory in afresh: 3.9–4.1M page faults and 9–10 s of system time in a 10M ingest. A
# worker ends with its run, so it keeps what it freed for its next file: 2.3M faults and 6 s (2.6M if it kept it
# for 10 s only).
WORKER_ALLOCATOR = "dirty_decay_ms:-1,muzzy_decay_ms:-1"
ALLOCATOR_VARIABLE = "_RJEM_MALLOC_CONF"


@contextmanager
def _allocator_of_workers() -> Iterator[None]:
    """jemalloc reads its options when Polars is imported, so they go to the spawned workers through the
    environment they inherit while they start; Polars puts them after its own defaults, and the last value wins.
    The flow's process configured its own allocator long before: only the workers change. Changing the
    environment beside running threads is safe here: Polars set this variable when the flow's process imported
    it, so setenv only replaces that entry's value; no entry moves under a thread reading another."""
    before = os.environ.get(ALLOCATOR_VARIABLE)
    os.environ[ALLOCATOR_VARIABLE] = ",".join(filter(None, [before, WORKER_ALLOCATOR]))
    try:
        yield
    finally:
        if before is None:
            del os.environ[ALLOCATOR_VARIABLE]
        else:
            os.environ[ALLOCATOR_VARIABLE] = before


def usable_cpus() -> int:
    """The CPUs this process may run on (a container's or `taskset`'s share, not the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_count(max_workers: int, file_count: int) -> int:
    """At most `max_workers`, one per file, and one CPU fewer than the process may use: that one is the writer's,
    which every file waits for. Ten 1M-row check-in logs on two CPUs: 22.7–22.9 s with one worker, 24.2–24.5 s with
    two (the second parsed ahead of a writer it could not speed up, and slowed it). GENESIS year files, whose
    parse outweighs their load, lost (25.0–25.3 → 27.6–27.8 s for 30 of them); usage logs arrive every day,
    statistics once a year."""
    return max(1, min(max_workers, file_count, usable_cpus() - 1))


@contextmanager
def parse_workers(wanted: bool, max_workers: int, files: list[Path]) -> Iterator[ProcessPoolExecutor | None]:
    """The run's parse worker processes (worker_count of them) if `wanted` and the files hold enough to parse,
    else None (parse where the task runs)."""
    if not wanted or sum(f.stat().st_size for f in files) < MIN_BYTES_FOR_WORKERS:
        yield None
        return
    # spawn, not fork: the flow's process runs threads (Prefect's, DuckDB's, Polars'), which fork does not copy safely
    workers = ProcessPoolExecutor(max_workers=worker_count(max_workers, len(files)),
                                  mp_context=multiprocessing.get_context("spawn"),
                                  initializer=lower_priority, initargs=(WORKER_NICENESS,))
    try:
        with _allocator_of_workers():  # the workers start at the first parses handed to them
            yield workers
    finally:
        # not waiting for the workers to exit (0.3 s); a failed run does not wait for files it no longer loads
        workers.shutdown(wait=False, cancel_futures=True)


def parse_in(workers: ProcessPoolExecutor, file: Path, parse, *arguments):
    """`parse(*arguments)` in one of the workers. If a worker is killed (e.g. by the kernel for want of memory),
    every parse the pool still holds fails; each says which file it was and what happened."""
    try:
        return workers.submit(parse, *arguments).result()
    except BrokenProcessPool as err:
        raise ParseWorkerDied(
            f"{file.name}: a parse worker process ended without a result while this file was being parsed or waiting "
            "(killed, e.g. for want of memory); the run stops and the published warehouse stays as it was"
        ) from err
