"""Event-driven ingestion on a real Prefect server: the watcher sees a file land, emits an event, the
`ingest-usage-log` deployment runs, the warehouse and its indicators are updated. Runs one after the other."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import requests

from conftest import ORDS_202303, ORDS_202309, ROOT, SAMPLE, TEST_CONVENTIONS
from flows.serve_local import free_port, wait_for



def drop(source: Path, inbox: Path, name: str | None = None, data: bytes | None = None) -> Path:
    """Write as *.part, then rename: how a facility is told to deliver (the watcher ignores *.part)."""
    inbox.mkdir(parents=True, exist_ok=True)
    target = inbox / (name or source.name)
    part = target.with_name(target.name + ".part")
    part.write_bytes(data if data is not None else source.read_bytes())
    os.replace(part, target)
    return target


def query(warehouse: Path, sql: str):
    if not warehouse.exists():
        return None
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql).fetchall()


def flow_runs(api: str, state: str | None = None) -> list[dict]:
    body = {"flow_runs": {"state": {"type": {"any_": [state]}}}} if state else {}
    return requests.post(f"{api}/flow_runs/filter", json=body, timeout=5).json()


@pytest.fixture
def stack(tmp_path):
    home = tmp_path / "home"
    config = tmp_path / "pipeline.toml"
    config.write_text(
        f'root = "."\n[paths]\nhome = "{home}"\n'
        '[[sources]]\nname = "repair_cafe_inbox"\nformat = "open_repair"\n'
        'files = "{home}/inbox/open-repair/*.csv"\nconsume = true\n'
        '[[sources]]\nname = "checkin_inbox"\nformat = "checkin_log"\n'
        'files = "{home}/inbox/checkins/*"\nconsume = true\n'
        f'[facilities]\nregistry = "{ROOT / "config" / "facilities.toml"}"\n'
        + TEST_CONVENTIONS.replace("stable_seconds = 0", "stable_seconds = 1"),
        encoding="utf-8",
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "flows.serve_local", "--config", str(config), "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        wait_for(lambda: supervisor.poll() is not None or _deployments(api) == 2, 120, "server up, two deployments served")
        assert supervisor.poll() is None, supervisor.stdout.read().decode()
        wait_for(lambda: "watching" in _read(home / "logs" / "watcher.log"), 30, "watcher running")
        yield home, api
    finally:
        os.killpg(supervisor.pid, signal.SIGINT)
        try:
            supervisor.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(supervisor.pid, signal.SIGKILL)
            raise
        # nothing it started is left behind
        with pytest.raises(ProcessLookupError):
            os.killpg(supervisor.pid, 0)
        leftovers = subprocess.run(["pgrep", "-f", str(config)], capture_output=True, text=True).stdout.split()
        assert leftovers == []


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _deployments(api: str) -> int:
    try:
        return len(requests.post(f"{api}/deployments/filter", json={}, timeout=2).json())
    except (requests.ConnectionError, ValueError):
        return 0


def test_landing_files_trigger_ordered_ingestion_and_quarantine(stack):
    home, api = stack
    inbox = home / "inbox" / "open-repair"
    warehouse = home / "warehouse" / "demand.duckdb"

    drop(ORDS_202303, inbox)
    landed = time.monotonic()
    wait_for(lambda: flow_runs(api, "RUNNING"), 60, "a flow run for the first file started")
    drop(ORDS_202309, inbox)  # lands while the first run is running
    wait_for(lambda: query(warehouse, "SELECT count(*) FROM staging.repair_items") == [(12_399,)], 60,
             "first file in the warehouse")
    assert time.monotonic() - landed < 60
    assert query(warehouse, "SELECT count(*) > 0 FROM marts.repair_cafe_monthly") == [(True,)]

    # processed after the first: the 2023-09 delivery withdraws the 32 records missing from it; had it run
    # first, 2023-03 would have been superseded and nothing withdrawn
    wait_for(lambda: query(warehouse, "SELECT status, count(*) FROM staging.repair_items GROUP BY ALL ORDER BY ALL")
             == [("current", 15_100), ("withdrawn", 32)], 90, "second file applied after the first")
    runs = query(warehouse, "SELECT started_at, finished_at FROM audit.runs ORDER BY started_at")
    assert len(runs) == 2 and runs[0][1] <= runs[1][0]
    assert sorted(p.name.split("_", 1)[1] for p in (home / "processed").iterdir()) == [
        "anstiftung_202303.csv", "anstiftung_202309.csv"]
    assert list(inbox.iterdir()) == []

    drop(ORDS_202309, inbox, name="anstiftung_202310.csv", data=ORDS_202309.read_bytes()[:40_000])
    reason = wait_for(lambda: next((home / "quarantine").glob("*anstiftung_202310.csv.reason.txt"), None), 60,
                      "malformed file quarantined")
    assert "truncated" in reason.read_text()
    assert query(warehouse, "SELECT status, count(*) FROM staging.repair_items GROUP BY ALL ORDER BY ALL") == [
        ("current", 15_100), ("withdrawn", 32)]
    wait_for(lambda: len(flow_runs(api, "COMPLETED")) == 3, 30, "three completed flow runs")
    last = max(flow_runs(api, "COMPLETED"), key=lambda r: r["end_time"])

    def reported() -> bool:
        logs = requests.post(f"{api}/logs/filter", json={"logs": {"flow_run_id": {"any_": [last["id"]]}}}, timeout=5)
        return any("quarantined input" in e["message"] and "anstiftung_202310.csv" in e["message"] for e in logs.json())

    wait_for(reported, 30, "the flow run reports the quarantined file in its log")

    # a check-in log: rows in the warehouse and the usage indicators updated within 60 s
    drop(SAMPLE / "usage" / "checkins_2024-01.csv", home / "inbox" / "checkins")
    landed = time.monotonic()
    wait_for(lambda: query(warehouse, "SELECT count(*) > 9000 FROM staging.checkins") == [(True,)], 60,
             "check-ins in the warehouse")
    assert query(warehouse, "SELECT count(*) > 0 FROM marts.usage_visitors WHERE indicator_id = 'visits'") == [(True,)]
    assert time.monotonic() - landed < 60
