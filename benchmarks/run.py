"""Run the benchmark at one size: `python -m benchmarks.run --size 1M` (10k, 100k, 1M, 10M, 100M or a number).

Generates the seeded inputs once (kept in var/bench/), then runs every stage in a process of its own
(benchmarks/stage.py) and prints, per stage, wall time, peak RSS and rows per second, the ratios of the
pipeline's usage path to the DuckDB floor and to pandas, and the verdict per target of issue 8. The same numbers
go to benchmarks/results/<size>-<date>.json.

The usage path is pipeline_ingest (parse + pseudonymise ahead in parse worker processes, GX validation + quarantine
+ load file by file) plus pipeline_indicators (the usage cells in DuckDB over staging.checkins, then
visitor_indicators_from_cells); the floor and pandas compute the same cells from the same files, and so does a
stricter floor: DuckDB alone with the pipeline's own SQL for the cells (benchmarks/floor.py). The stages that
are compared (COMPARED_STAGES) run twice each (--runs) and the ratios use the faster run of each: on a shared
machine a stage slowed by other work says nothing about the code (at 10M the floor took 14.1–20.7 s within one
hour), and a slow floor flattered the pipeline as much as a slow pipeline wronged it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
from datetime import date, datetime, timezone
from importlib.metadata import version
from pathlib import Path

from benchmarks.generate import DEFAULT_DATA, GEMEINDEN, ROWS_PER_FILE, SIZES, YEARS, inputs_label, parse_size

RESULTS = Path(__file__).resolve().parent / "results"


def new_result_path(results: Path, label: str, day: date) -> Path:
    """results/<label>-<day>.json, or -2, -3 … for further runs that day: a run never overwrites another's numbers."""
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{label}-{day:%Y-%m-%d}.json"
    for again in range(2, 1000):
        if not path.exists():
            break
        path = results / f"{label}-{day:%Y-%m-%d}-{again}.json"
    return path

USAGE_STAGES = ("floor_duckdb", "floor_duckdb_sliced", "pandas", "pipeline_ingest", "pipeline_indicators",
                "pipeline_resilience_marts", "pipeline_one_file_steps")
STATISTICS_STAGES = ("statistics_ingest", "statistics_indicators")
USAGE_PATH_STAGES = ("pipeline_ingest", "pipeline_indicators")
# run --runs times each, the fastest counts
COMPARED_STAGES = ("floor_duckdb", "floor_duckdb_sliced", "pandas", *USAGE_PATH_STAGES)
# Above this many rows the stages that hold every check-in in memory at once are left out unless asked for by
# --stages: pandas (4.4 GB at 10M rows; 100M would not fit in 23.5 GB).
IN_MEMORY_LIMIT = 20_000_000
IN_MEMORY_STAGES = ("pandas",)
NIGHTLY_MARTS_STAGE = "pipeline_resilience_marts"
INPUTS_OF = {"generate_checkins": USAGE_STAGES, "generate_statistics": STATISTICS_STAGES}  # what needs what it writes
TARGETS = {"usage_vs_floor_max": 2.0, "pandas_vs_usage_min": 10.0, "statistics_seconds_max": 60.0,
           "peak_rss_mb_max_at_100M": 16 * 1024}
PACKAGES = ("duckdb", "polars", "pandas", "pyarrow", "great-expectations", "prefect", "numpy")


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal"))
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "memory_gb": round(memory_kib / 1024**2, 1),
            "load_average_at_start": os.getloadavg(), "python": platform.python_version(),
            "platform": platform.platform(), "versions": {p: version(p) for p in PACKAGES}}


class StageFailed(RuntimeError):
    def __init__(self, stage: str, reason: str):
        super().__init__(f"{stage}: {reason}")
        self.stage, self.reason = stage, reason


def _run_stage(stage: str, args: argparse.Namespace, data: Path, statistics: Path, work: Path) -> dict:
    out = work / f"{stage}.json"
    command = [sys.executable, "-m", "benchmarks.stage", stage, "--data", str(data), "--statistics", str(statistics),
               "--work", str(work), "--rows", str(args.size), "--gemeinden", str(args.gemeinden),
               "--years", str(args.years), "--seed", str(args.seed), "--rows-per-file", str(args.rows_per_file),
               "--out", str(out)]
    env = os.environ | {"GX_ANALYTICS_ENABLED": "False", "DO_NOT_TRACK": "1"}
    # pseudonyms only need a key that stays the same within the run; the benchmark's visitors are invented
    env.setdefault("DEMAND_MONITOR_PSEUDONYM_KEY", args.key)
    finished = subprocess.run(command, env=env)
    if finished.returncode != 0:
        # a stage that runs out of memory is killed by the kernel (SIGKILL, -9): a result, not a harness error
        killed = finished.returncode == -signal.SIGKILL
        raise StageFailed(stage, "killed by SIGKILL (out of memory?)" if killed else f"exit status {finished.returncode}")
    return json.loads(out.read_text())


def fastest(runs: list[dict]) -> dict:
    """The fastest of a stage's runs, with every run's seconds when there were several, and the highest peak RSS
    of any run (the memory verdicts hold for every run, not only the fastest)."""
    best = min(runs, key=lambda run: run["seconds"])
    if len(runs) == 1:
        return best
    return best | {"runs_seconds": [run["seconds"] for run in runs],
                   "peak_rss_mb": max(run["peak_rss_mb"] for run in runs)}


def _stages(args: argparse.Namespace, data: Path, statistics: Path) -> list[str]:
    if args.stages:
        return args.stages
    chosen = [s for s in USAGE_STAGES if args.size <= IN_MEMORY_LIMIT or s not in IN_MEMORY_STAGES]
    if not (data / "checkins" / ".complete").exists():
        chosen.insert(0, "generate_checkins")
    if args.statistics:
        if not (statistics / ".complete").exists():
            chosen.append("generate_statistics")
        chosen += STATISTICS_STAGES
    return chosen


def ratios(stages: dict[str, dict]) -> dict:
    seconds = {name: s["seconds"] for name, s in stages.items()}
    result = {}
    if "pipeline_ingest" in seconds and "pipeline_indicators" in seconds:
        usage = seconds["pipeline_ingest"] + seconds["pipeline_indicators"]
        result["usage_path_seconds"] = round(usage, 3)
        if "floor_duckdb" in seconds:
            result["usage_vs_floor"] = round(usage / seconds["floor_duckdb"], 2)
        if "floor_duckdb_sliced" in seconds:
            result["usage_vs_sliced_floor"] = round(usage / seconds["floor_duckdb_sliced"], 2)
        if "pandas" in seconds:
            result["pandas_vs_usage"] = round(seconds["pandas"] / usage, 2)
            result["pandas_vs_floor"] = round(seconds["pandas"] / seconds["floor_duckdb"], 2) if "floor_duckdb" in seconds else None
    if "statistics_ingest" in seconds and "statistics_indicators" in seconds:
        result["statistics_path_seconds"] = round(seconds["statistics_ingest"] + seconds["statistics_indicators"], 3)
    return result


def verdicts(rows: int, stages: dict[str, dict], r: dict, full_statistics: bool, failed: dict[str, str]) -> dict:
    def check(value, met: bool, needs: tuple[str, ...] = ()) -> str:
        broken = [f"{stage} failed: {failed[stage]}" for stage in needs if stage in failed]
        if broken:
            return "not met (" + "; ".join(broken) + ")"
        return "not measured" if value is None else ("met" if met else "not met")

    floor = r.get("usage_vs_floor")
    sliced_floor = r.get("usage_vs_sliced_floor")
    pandas = r.get("pandas_vs_usage")
    stats = r.get("statistics_path_seconds") if full_statistics else None
    usage_path = all(stage in stages for stage in USAGE_PATH_STAGES)
    peak = max((s["peak_rss_mb"] for n, s in stages.items() if n in USAGE_PATH_STAGES), default=None)
    marts_peak = stages.get(NIGHTLY_MARTS_STAGE, {}).get("peak_rss_mb")
    return {
        "usage path <= 2x DuckDB floor": check(floor, floor is not None and floor <= TARGETS["usage_vs_floor_max"]),
        # the stricter floor: DuckDB alone with the pipeline's own SQL for the cells
        "usage path <= 2x DuckDB with the pipeline's SQL": check(
            sliced_floor, sliced_floor is not None and sliced_floor <= TARGETS["usage_vs_floor_max"]),
        "usage path >= 10x faster than pandas": check(pandas, pandas is not None and pandas >= TARGETS["pandas_vs_usage_min"]),
        "all Gemeinden x 30 years <= 60 s": check(stats, stats is not None and stats <= TARGETS["statistics_seconds_max"],
                                                  STATISTICS_STAGES if full_statistics else ()),
        "100M rows within 16 GB peak": check(peak if rows >= SIZES["100M"] and usage_path else None,
                                             peak is not None and peak <= TARGETS["peak_rss_mb_max_at_100M"],
                                             USAGE_PATH_STAGES),
        # the nightly run's other marts over the same 100M check-ins (not part of the usage path)
        "100M rows: resilience marts within 16 GB": check(
            marts_peak if rows >= SIZES["100M"] else None,
            marts_peak is not None and marts_peak <= TARGETS["peak_rss_mb_max_at_100M"],
            (NIGHTLY_MARTS_STAGE,) if rows >= SIZES["100M"] else ()),
    }


def print_table(result: dict) -> None:
    print(f"\nbenchmark {result['size']} ({result['rows']:,} check-in rows), {result['machine']['cpus']} CPUs, "
          f"load average at start {result['machine']['load_average_at_start'][0]:.2f}")
    print(f"{'stage':<26}{'seconds':>10}{'peak RSS MB':>14}{'rows/s':>14}")
    for name, s in result["stages"].items():
        rate = f"{s['rows_per_second']:,}" if s["rows_per_second"] else "-"
        print(f"{name:<26}{s['seconds']:>10.2f}{s['peak_rss_mb']:>14,.0f}{rate:>14}")
    for name, reason in result["failed_stages"].items():
        print(f"{name:<26}FAILED: {reason}")
    for key, value in result["ratios"].items():
        print(f"{key:<40}{value}")
    width = max(map(len, result["targets"])) + 2
    for target, verdict in result["targets"].items():
        print(f"{target:<{width}}{verdict}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Benchmark the pipeline against DuckDB alone and pandas.")
    parser.add_argument("--size", type=parse_size, default=SIZES["1M"], help=f"check-in rows: {', '.join(SIZES)} or a number")
    parser.add_argument("--stages", nargs="+", choices=["generate_checkins", "generate_statistics", *USAGE_STAGES, *STATISTICS_STAGES],
                        help="run only these stages (default: all that fit the size)")
    parser.add_argument("--no-statistics", dest="statistics", action="store_false", help="skip the GENESIS stages")
    parser.add_argument("--runs", type=int, default=2,
                        help=f"runs of each compared stage ({', '.join(COMPARED_STAGES)}); the ratios use the fastest")
    parser.add_argument("--gemeinden", type=int, default=GEMEINDEN)
    parser.add_argument("--years", type=int, default=len(YEARS))
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--rows-per-file", type=parse_size, default=ROWS_PER_FILE,
                        help="check-in rows per delivered file (default 1M; the size itself: one big delivery)")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA, help="where generated inputs are kept")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.key = secrets.token_hex(32)

    label = inputs_label(args.size, args.rows_per_file)
    data = args.data_root / label
    statistics = args.data_root / f"statistics-{args.gemeinden}x{args.years}"
    work = data / "work"  # the ingest stages start their warehouses afresh; later stages read what they left
    work.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc)
    stages, failed = {}, {}
    for stage in _stages(args, data, statistics):
        missing = next((g for g, needing in INPUTS_OF.items() if stage in needing and g in failed), None)
        if missing:  # no inputs: its numbers would be of nothing
            failed[stage] = f"not run: {missing} failed"
            continue
        try:
            runs = args.runs if stage in COMPARED_STAGES else 1
            stages[stage] = fastest([_run_stage(stage, args, data, statistics, work) for _ in range(runs)])
        except StageFailed as err:
            failed[stage] = err.reason
            print(f"stage {err}", file=sys.stderr)
            continue
        if stage == "generate_checkins":
            (data / "checkins" / ".complete").touch()
        if stage == "generate_statistics":
            (statistics / ".complete").touch()
    r = ratios(stages)
    full_statistics = args.gemeinden >= GEMEINDEN and args.years >= len(YEARS)
    result = {"size": label, "rows": args.size, "rows_per_file": args.rows_per_file,
              "started_at": started.isoformat(timespec="seconds"),
              "machine": machine(), "statistics": {"gemeinden": args.gemeinden, "years": args.years},
              "stages": stages, "failed_stages": failed, "ratios": r,
              "targets": verdicts(args.size, stages, r, full_statistics, failed)}
    path = new_result_path(args.results, label, started.date())
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print_table(result)
    print(f"\nwritten: {path}")
    return result


if __name__ == "__main__":
    main()
