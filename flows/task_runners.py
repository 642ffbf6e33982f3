"""The task runner a flow fans its tasks out on, chosen in configuration: bounded threads, processes or Dask.

Prefect's default thread pool is unbounded; a run that submits one task per delivered file would start as many
threads as there are files. Every runner here is bounded by `max_workers`.

"threads": ThreadPoolTaskRunner(max_workers), the parses on its threads in the flow's process. (Called directly,
without a runner from the configuration, the flows run on a thread pool of 2.)
"processes", the default: the same threads, but each parse runs in a pool of `max_workers` worker processes of
lower CPU priority (nice 10) that the run starts when it has enough to parse (flows/parse_workers.py). The flow's own
process, the single warehouse writer, validates and loads one file after the other while the workers parse the
next ones. Both need the CPU; the writer is the chain every file waits for, so it gets the CPU first, and the
parses hold no GIL that it needs. A 10M-row ingest of ten files on two cores: 35.0 s on two threads, 25.9 s with
two niced worker processes, 31.2 s with workers of normal priority (BENCHMARKS.md). The workers import only the
parsers (~0.3 s to start), not Prefect: Prefect's ProcessPoolTaskRunner runs the whole task engine in each
worker, which started a temporary Prefect server per worker in a local run (+7 s for the sample run).
"dask": prefect_dask.DaskTaskRunner. Without an address it starts a temporary LocalCluster of `max_workers`
single-threaded workers for the flow run (processes=False puts them in this process, as the tests do); with an
address it submits to a running cluster (see docs/scaling.md). Task inputs and results then cross process or
machine boundaries: pass paths and table names, never connections or frames.
"""

from __future__ import annotations

from prefect.task_runners import ThreadPoolTaskRunner

from flows.config import ConfigError

TASK_RUNNERS = ("threads", "processes", "dask")
def task_runner_from_config(name: str, max_workers: int, *, address: str | None = None, processes: bool = True):
    """A bounded task runner: ThreadPoolTaskRunner (also for "processes", see flows/parse_workers.py) or
    prefect_dask.DaskTaskRunner (local cluster or `address`)."""
    if name not in TASK_RUNNERS:
        raise ConfigError(f"task runner {name!r} is not known; choose one of {', '.join(TASK_RUNNERS)}")
    if max_workers < 1:
        raise ConfigError(f"max_workers must be at least 1, got {max_workers}")
    if name in ("threads", "processes"):
        return ThreadPoolTaskRunner(max_workers=max_workers)
    # imported only when chosen: dask.distributed takes a second to import and most runs do not need it
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={"n_workers": max_workers, "threads_per_worker": 1, "processes": processes,
                        "dashboard_address": None}
    )
