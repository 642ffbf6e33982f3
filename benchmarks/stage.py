"""One benchmark stage in a process of its own, so that its peak memory is its own: `python -m benchmarks.stage`.

benchmarks/run.py starts this once per stage. The stage's wall time is taken around its function (imports that the
function does itself, such as Great Expectations, count; starting Python does not); the peak resident set size is
the process's own high-water mark (getrusage), interpreter and libraries included, plus, for a stage that parses in
worker processes, as many times the largest worker's high-water mark as it had workers (an upper bound of their sum).
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import time
from pathlib import Path
from typing import Callable

from benchmarks import generate

# Each stage imports what it needs itself, so the floor's process carries no Great Expectations or Prefect; main()
# imports the module before the clock starts (Python's start-up is not what is compared).

CHECKIN_SOURCE = ("checkins_benchmark", "checkin_log")
STATISTICS_SOURCE = ("population_benchmark", "genesis_csv")


def _checkin_files(a: argparse.Namespace) -> list[Path]:
    return sorted((a.data / "checkins").glob("checkins_*.csv"))


def _statistics_files(a: argparse.Namespace) -> list[Path]:
    return sorted(a.statistics.glob("12411-*.csv"))


def _generate_checkins(a):
    files = generate.write_checkin_deliveries(a.data / "checkins", a.rows, a.seed, a.rows_per_file)
    return {"rows": a.rows, "files": len(files), "bytes": sum(f.stat().st_size for f in files)}


def _generate_statistics(a):
    years = tuple(range(generate.YEARS[-1] - a.years + 1, generate.YEARS[-1] + 1))
    files = generate.write_genesis_years(a.statistics, a.gemeinden, years, a.seed)
    return {"rows": a.gemeinden * 54 * len(years), "files": len(files), "bytes": sum(f.stat().st_size for f in files)}


def _floor(a):
    from benchmarks import floor

    return _counted(a, floor.visitor_cells(_checkin_files(a)))


def _counted(a, cells) -> dict:
    return {"rows": a.rows, "cells": cells.height, "visits_counted": int(cells.filter(
        (cells["breakdown"] == "total") & (cells["period"] == "month"))["visits"].sum())}


def _floor_sliced(a):
    from benchmarks import floor

    return _counted(a, floor.sliced_visitor_cells(_checkin_files(a)))


def _pandas(a):
    from benchmarks import pandas_baseline

    cells = pandas_baseline.visitor_cells(_checkin_files(a))
    monthly = cells[(cells["breakdown"] == "total") & (cells["period"] == "month")]
    return {"rows": a.rows, "cells": len(cells), "visits_counted": int(monthly["visits"].sum())}


def _pipeline_ingest(a):
    from benchmarks import pipeline_path

    return pipeline_path.ingest_deliveries(a.work / "usage.duckdb", a.work, *CHECKIN_SOURCE, _checkin_files(a))


def _pipeline_indicators(a):
    from benchmarks import pipeline_path

    return pipeline_path.usage_indicators(a.work / "usage.duckdb")


def _checkin_steps(a):
    from benchmarks import pipeline_path

    return pipeline_path.checkin_steps(a.work / "steps.duckdb", a.work / "steps", _checkin_files(a)[0])


def _resilience_marts(a):
    from benchmarks import pipeline_path

    return pipeline_path.resilience_marts(a.work / "usage.duckdb", a.work)


def _statistics_ingest(a):
    from benchmarks import pipeline_path

    return pipeline_path.ingest_deliveries(a.work / "statistics.duckdb", a.work, *STATISTICS_SOURCE, _statistics_files(a))


def _statistics_indicators(a):
    from benchmarks import pipeline_path

    return pipeline_path.demography(a.work / "statistics.duckdb")


STAGES: dict[str, Callable[[argparse.Namespace], dict]] = {
    "generate_checkins": _generate_checkins,
    "generate_statistics": _generate_statistics,
    "floor_duckdb": _floor,
    "floor_duckdb_sliced": _floor_sliced,
    "pandas": _pandas,
    "pipeline_ingest": _pipeline_ingest,
    "pipeline_indicators": _pipeline_indicators,
    "pipeline_one_file_steps": _checkin_steps,
    "pipeline_resilience_marts": _resilience_marts,
    "statistics_ingest": _statistics_ingest,
    "statistics_indicators": _statistics_indicators,
}

PRE_IMPORT = {"floor_duckdb": "benchmarks.floor", "floor_duckdb_sliced": "benchmarks.floor",
              "pandas": "benchmarks.pandas_baseline"} | {
    name: "benchmarks.pipeline_path" for name in STAGES if name.startswith(("pipeline", "statistics"))
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run one benchmark stage and write its measurements as JSON.")
    parser.add_argument("stage", choices=list(STAGES))
    parser.add_argument("--data", type=Path, required=True, help="folder with checkins/ of this size")
    parser.add_argument("--statistics", type=Path, required=True, help="folder with the GENESIS tables")
    parser.add_argument("--work", type=Path, required=True, help="folder for warehouses, landing, validation docs")
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--gemeinden", type=int, default=generate.GEMEINDEN)
    parser.add_argument("--years", type=int, default=len(generate.YEARS))
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--rows-per-file", type=generate.parse_size, default=generate.ROWS_PER_FILE)
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the measurements")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)

    if args.stage in PRE_IMPORT:
        importlib.import_module(PRE_IMPORT[args.stage])
    started = time.perf_counter()
    details = STAGES[args.stage](args)
    seconds = time.perf_counter() - started
    own_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    worker_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest child's, not their sum
    peak_kib = own_kib + details.get("parse_workers", 0) * worker_kib
    rows = details.pop("rows")
    args.out.write_text(json.dumps({
        "stage": args.stage, "seconds": round(seconds, 3), "peak_rss_mb": round(peak_kib / 1024, 1),
        "own_peak_rss_mb": round(own_kib / 1024, 1), "worker_peak_rss_mb": round(worker_kib / 1024, 1), "rows": rows,
        "rows_per_second": round(rows / seconds) if seconds > 0 else None, "details": details,
    }, indent=2, default=str))


if __name__ == "__main__":
    main()
