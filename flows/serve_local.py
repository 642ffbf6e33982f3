"""`make serve`: a local Prefect server on 127.0.0.1, the two deployments and the inbox watcher; Ctrl-C stops all.

Event triggers and schedules only work against a running server (ephemeral mode neither schedules nor keeps
events). Each child runs in its own process group so that stopping it also stops what it started (uvicorn, flow
run subprocesses).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from flows.config import load_config


def server_env(home: Path, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(home / "prefect-server"),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        GX_ANALYTICS_ENABLED="False",
        PREFECT_LOGGING_EXTRA_LOGGERS="warehouse,sources,transforms",
    )
    # the serving process asks the server for runs to start every 10 s by default: a landed file's run would wait
    # 5 s on average before it starts; the query is cheap on a local server
    env.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "1")
    return env


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on right now (for a second server beside a running one, and tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float, what: str, poll: float = 0.5):
    """Poll `check` until it returns something true; its result, or TimeoutError naming what did not happen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(poll)
    raise TimeoutError(f"not within {timeout:.0f} s: {what}")


def wait_healthy(port: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/health", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"Prefect server on 127.0.0.1:{port} not healthy after {timeout:.0f} s")


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(args, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def stop(processes: list[subprocess.Popen], timeout: float = 20) -> None:
    for process in reversed(processes):
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in reversed(processes):
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def start_stack(config_path: str, port: int) -> list[subprocess.Popen]:
    home = load_config(config_path).paths.home
    env = server_env(home, port)
    Path(env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    logs = home / "logs"
    processes = [_start([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                        env, logs / "prefect-server.log")]
    try:
        wait_healthy(port)
        processes.append(_start([sys.executable, "-m", "flows.deployments", "--config", config_path], env, logs / "serve.log"))
        processes.append(_start([sys.executable, "-m", "sources.inbox_watcher", "--config", config_path], env, logs / "watcher.log"))
    except BaseException:
        stop(processes)
        raise
    return processes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local Prefect server, deployments and inbox watcher")
    parser.add_argument("--config", default="config/pipeline.toml")
    parser.add_argument("--port", type=int, default=4200)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    processes = start_stack(args.config, args.port)
    print(f"Prefect UI and API: http://127.0.0.1:{args.port}")
    print(f"Drop usage-log files into {config.paths.inbox}/<kind>/; logs in {config.paths.home / 'logs'}. Ctrl-C stops all.")
    stopping = False

    def _stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stopping:
            for process in processes:
                if process.poll() is not None:
                    print(f"{process.args[2]} exited with {process.returncode}; stopping", file=sys.stderr)
                    stopping = True
            time.sleep(0.5)
    finally:
        stop(processes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
