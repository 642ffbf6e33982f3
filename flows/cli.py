"""Command line: `demand-monitor run` runs the nightly flow once, locally, and prints where everything is."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _local_prefect(home: Path) -> None:
    """Ephemeral Prefect with its state inside the project, and nothing sent anywhere."""
    os.environ.setdefault("PREFECT_HOME", str(home / "prefect"))
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    # the pipeline's own loggers (e.g. "no projection configured") show in the run log beside Prefect's
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "warehouse,sources,transforms")


def _print_summary(summary: dict) -> None:
    if summary.get("nothing_new"):
        print(f"\nNothing new since run {summary['run_id']} (same files, configuration and code):"
              " the published warehouse and exports stay as they are.")
        print("\nWarehouse (open read-only):", summary["warehouse"])
        print("Exports:                    ", summary["exports"])
        return
    files = summary["files"]
    print("\nRun", summary["run_id"], "published.\n")
    print(f"{'file':<44} {'status':<12} {'read':>8} {'loaded':>8} {'quarant.':>8}")
    for f in files:
        print(f"{f['file_name'][:44]:<44} {f['status']:<12} {f['rows_read']:>8} {f['rows_loaded']:>8} {f['rows_quarantined']:>8}")
        if f["message"]:
            print(f"    {f['message']}")
    totals = [sum(f[k] for f in files) for k in ("rows_read", "rows_loaded", "rows_quarantined")]
    print(f"{'total (' + str(len(files)) + ' files)':<44} {'':<12} {totals[0]:>8} {totals[1]:>8} {totals[2]:>8}")
    print("\nTables rebuilt (marts and the registry):")
    for table, rows in summary["marts"].items():
        print(f"  {table:<36} {rows:>8} rows")
    print("\nWarehouse (open read-only):", summary["warehouse"])
    print("Exports:                    ", summary["exports"])
    print("Report (open in a browser): ", Path(summary["exports"]) / "report.html")
    print("Validation report:          ", summary["validation_report"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demand-monitor", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the nightly flow once on the configured sources")
    run.add_argument("--config", default="config/pipeline.toml", help="pipeline configuration (TOML)")
    sub.add_parser("fetch-table", add_help=False,
                   help="fetch one GENESIS table for given regions (see `demand-monitor fetch-table --help`)")
    args, rest = parser.parse_known_args(argv)
    if args.command == "fetch-table":
        from sources.genesis.cli import main as fetch_table

        return fetch_table(rest)
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")

    from flows.config import load_config

    config = load_config(args.config)
    _local_prefect(config.paths.home)
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.nightly import nightly

    # a sync flow otherwise waits ~1 s at exit for its heartbeat thread
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        summary = nightly.with_options(task_runner=config.flow_task_runner())(config_path=args.config)
    _print_summary(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
