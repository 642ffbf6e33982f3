"""The task runner a flow fans its tasks out on, chosen in configuration: a bounded thread pool or Dask.

Prefect's default thread pool is unbounded; a run that submits one task per delivered file would start as many
threads as there are files. Both runners here are bounded by `max_workers`.

"threads": ThreadPoolTaskRunner(max_workers), the default on one machine. Parsing and validating many files
overlap with I/O and with DuckDB/Polars work that releases the GIL.
"dask": prefect_dask.DaskTaskRunner. Without an address it starts a temporary LocalCluster of `max_workers`
single-threaded workers for the flow run (processes=False puts them in this process, as the tests do); with an
address it submits to a running cluster (see docs/scaling.md). Task inputs and results then cross process or
machine boundaries: pass paths and table names, never connections or frames.
"""

from __future__ import annotations

from prefect.task_runners import ThreadPoolTaskRunner

from flows.config import ConfigError

TASK_RUNNERS = ("threads", "dask")


def task_runner_from_config(name: str, max_workers: int, *, address: str | None = None, processes: bool = True):
    """A bounded task runner: ThreadPoolTaskRunner or prefect_dask.DaskTaskRunner (local cluster or `address`)."""
    if name not in TASK_RUNNERS:
        raise ConfigError(f"task runner {name!r} is not known; choose one of {', '.join(TASK_RUNNERS)}")
    if max_workers < 1:
        raise ConfigError(f"max_workers must be at least 1, got {max_workers}")
    if name == "threads":
        return ThreadPoolTaskRunner(max_workers=max_workers)
    # imported only when chosen: dask.distributed takes a second to import and most runs do not need it
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={"n_workers": max_workers, "threads_per_worker": 1, "processes": processes,
                        "dashboard_address": None}
    )
