"""The two flow-level targets of issue 8, measured with the real flows: `python -m benchmarks.flow_latency idle|landing`.

idle:    the nightly flow with nothing new (every file already loaded) against a trivial flow, both in Prefect's
         ephemeral mode in one process after a warm-up run, heartbeats off for both.
landing: a real local server (`python -m flows.serve_local` on a free port with a temporary home and config), a
         generated check-in file of `--rows` rows dropped into {home}/inbox/checkins/ the way facilities deliver
         (written as .part, then renamed); the clock runs from the rename until the published warehouse holds its
         rows and the usage indicators built from them, and the file has moved to processed/. `--history` starts
         from a copy of an existing warehouse (e.g. the 10M benchmark's var/bench/10M/work/usage.duckdb) instead of
         an empty one, its marts built once before the clock starts (the caches as the last nightly run left them),
         and the delivery holds the week after the history's last day.

Both print their numbers and write them to benchmarks/results/flow-<what>-<date>.json (-2, -3 … for further runs
that day).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from benchmarks.run import RESULTS, new_result_path
from flows.serve_local import free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]
LANDING_SEED = 7


def _write(what: str, result: dict) -> Path:
    path = new_result_path(RESULTS, f"flow-{what}", date.today())
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written: {path}")
    return path


def measure_idle(repeats: int) -> dict:
    """Seconds of a trivial flow and of the nightly flow with nothing new (sample config, temporary home)."""
    home = Path(tempfile.mkdtemp(prefix="bench-idle-"))
    os.environ.update(PREFECT_HOME=str(home / "prefect"), DEMAND_MONITOR_HOME=str(home / "var"),
                      PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", GX_ANALYTICS_ENABLED="False")
    os.environ.pop("PREFECT_API_URL", None)
    os.environ.setdefault("DEMAND_MONITOR_PSEUDONYM_KEY", secrets.token_hex(32))
    from prefect import flow
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.nightly import nightly

    @flow(name="trivial")
    def trivial() -> int:
        return 1

    def timed(run) -> float:
        started = time.perf_counter()
        run()
        return time.perf_counter() - started

    config = str(ROOT / "config" / "pipeline.toml")
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        warm_up = timed(trivial)  # starts the ephemeral server
        first_nightly = timed(lambda: nightly(config))  # loads the sample: everything is new
        trivial_runs = [timed(trivial) for _ in range(repeats)]
        idle_runs = [timed(lambda: nightly(config)) for _ in range(repeats)]
    overhead = statistics.median(idle_runs) - statistics.median(trivial_runs)
    return {"what": "nightly flow with nothing new vs trivial flow (ephemeral mode, heartbeats off)",
            "warm_up_trivial_seconds": round(warm_up, 2), "first_nightly_seconds": round(first_nightly, 2),
            "trivial_seconds": [round(s, 2) for s in trivial_runs], "idle_nightly_seconds": [round(s, 2) for s in idle_runs],
            "overhead_seconds": round(overhead, 2), "target_seconds": 2.0,
            "verdict": "met" if overhead <= 2.0 else "not met", "load_average": os.getloadavg()}


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def _published(warehouse: Path, file_name: str, rows: int, before: tuple[int, int] | None) -> bool:
    """Whether the run has published the file's rows and indicators. The warehouse is opened only once it was
    swapped in (publish_build replaces the file): opening it twice a second took a third of a core from the run
    being measured (100M history)."""
    import duckdb

    if _file_identity(warehouse) in (None, before):
        return False
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            loaded, indicators = con.execute(
                "SELECT (SELECT coalesce(sum(rows_loaded), 0) FROM audit.load_manifest WHERE file_name = ?),"
                " (SELECT count(*) FROM marts.usage_visitors)",
                [file_name],
            ).fetchall()[0]
    except duckdb.Error:  # the file is being swapped in
        return False
    return loaded >= rows * 0.99 and indicators > 0


def measure_landing(rows: int, history: Path | None = None) -> dict:
    """Seconds from a check-in file landing in the inbox to its indicators in the published warehouse."""
    import requests

    from benchmarks.generate import CHECKIN_PERIOD, write_checkin_deliveries

    work = Path(tempfile.mkdtemp(prefix="bench-landing-"))
    home = work / "home"
    config = work / "pipeline.toml"
    config.write_text(
        f'root = "."\n[paths]\nhome = "{home}"\n'
        '[[sources]]\nname = "checkin_inbox"\nformat = "checkin_log"\nfiles = "{home}/inbox/checkins/*"\nconsume = true\n'
        f'[facilities]\nregistry = "{ROOT / "config" / "facilities.toml"}"\n'
        '[age_conventions]\ndefault = "regionalatlas"\n'
        '[age_conventions.regionalatlas]\nyoung = [0, 20]\nworking = [20, 65]\nold_from = 65\n'
        '[inbox]\nstable_seconds = 1\n',
        encoding="utf-8",
    )
    period = CHECKIN_PERIOD
    history_rows = 0
    if history is not None:
        from flows.config import load_config
        from warehouse.marts import build_marts
        from warehouse.migrate import migrate
        from warehouse.publish import connect_build

        (home / "warehouse").mkdir(parents=True)
        shutil.copyfile(history, home / "warehouse" / "demand.duckdb")
        with connect_build(home / "warehouse" / "demand.duckdb") as con:
            migrate(con)
            build_marts(con, load_config(config))
            history_rows, last_day = con.sql("SELECT count(*), max(visit_date) FROM staging.checkins").fetchall()[0]
        period = (last_day + timedelta(days=1), last_day + timedelta(days=7))  # the week after the history
    # another seed than the benchmark inputs: new visits, not a repeat of the history's first rows
    delivery = write_checkin_deliveries(work / "generated", rows, seed=LANDING_SEED, rows_per_file=rows, period=period)[0]
    delivery = delivery.rename(delivery.with_name("checkins_landing.csv"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.setdefault("DEMAND_MONITOR_PSEUDONYM_KEY", secrets.token_hex(32))
    supervisor = subprocess.Popen([sys.executable, "-m", "flows.serve_local", "--config", str(config), "--port", str(port)],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    try:
        started = time.monotonic()

        def deployments() -> int:
            try:
                return len(requests.post(f"{api}/deployments/filter", json={}, timeout=2).json())
            except (requests.ConnectionError, ValueError):
                return 0

        wait_for(lambda: deployments() == 2, 180, "server up, two deployments served")
        watcher_log = home / "logs" / "watcher.log"
        wait_for(lambda: watcher_log.exists() and "watching" in watcher_log.read_text(errors="replace"), 60, "watcher running")
        stack_ready = time.monotonic() - started

        inbox = home / "inbox" / "checkins"
        inbox.mkdir(parents=True, exist_ok=True)
        part = inbox / (delivery.name + ".part")
        part.write_bytes(delivery.read_bytes())
        warehouse = home / "warehouse" / "demand.duckdb"
        before = _file_identity(warehouse)
        os.replace(part, inbox / delivery.name)
        landed = time.monotonic()
        wait_for(lambda: _published(warehouse, delivery.name, rows, before), 900, "indicators published")
        published = time.monotonic() - landed
        wait_for(lambda: not (inbox / delivery.name).exists(), 60, "file moved out of the inbox")
        settled = time.monotonic() - landed
        steps = _run_steps(api)
    finally:
        os.killpg(supervisor.pid, signal.SIGINT)
        supervisor.wait(60)
        shutil.rmtree(work, ignore_errors=True)
    return {"what": f"{rows}-row check-in file from landing in the inbox to published indicators (local server)",
            "rows": rows, "history_checkins": history_rows, "history": str(history) if history else None, "stack_start_seconds": round(stack_ready, 1), "landing_to_published_seconds": round(published, 1),
            "landing_to_file_settled_seconds": round(settled, 1), "target_seconds": 30.0,
            "verdict": "met" if published <= 30.0 else "not met", "load_average": os.getloadavg(), "flow_run": steps}


def _run_steps(api: str) -> dict:
    """Where the landed file's flow run spent its time, from the server: the wait from the run's creation (the
    file event) to its start, its own duration, and each task's start (seconds after the flow run's) and duration;
    what lies between the tasks is the flow's own code (the writer lock, the copy of the warehouse into the build,
    the swap)."""
    import requests

    def seconds(start: str, end: str) -> float:
        return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 2)

    run = requests.post(f"{api}/flow_runs/filter", json={"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
                                                      "sort": "START_TIME_DESC", "limit": 1}, timeout=10).json()[0]
    tasks = requests.post(f"{api}/task_runs/filter", json={"flow_runs": {"id": {"any_": [run["id"]]}}},
                          timeout=10).json()
    return {
        "created_to_start": seconds(run["created"], run["start_time"]),
        "seconds": seconds(run["start_time"], run["end_time"]),
        "tasks": [{"name": t["name"], "start": seconds(run["start_time"], t["start_time"]),
                   "seconds": seconds(t["start_time"], t["end_time"])}
                  for t in sorted(tasks, key=lambda t: t["start_time"]) if t["start_time"] and t["end_time"]],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Measure the idle nightly overhead or the landing-to-published latency.")
    parser.add_argument("what", choices=["idle", "landing"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--history", type=Path, help="landing: start from a copy of this warehouse instead of an empty one")
    args = parser.parse_args(argv)
    result = measure_idle(args.repeats) if args.what == "idle" else measure_landing(args.rows, args.history)
    _write(args.what if args.history is None else f"{args.what}-history", result)


if __name__ == "__main__":
    main()
