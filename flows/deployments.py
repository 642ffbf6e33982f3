"""The two deployments, served from one process: `nightly` on a cron schedule and `ingest-usage-log` on the event
the inbox watcher emits. prefect.yaml declares the same two for `prefect deploy --all` on an existing server."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from prefect import serve
from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron

from flows.config import load_config
from flows.nightly import ingest_usage_log, nightly
from sources.inbox_watcher import USAGE_LOG_LANDED

NIGHTLY_CRON = "30 2 * * *"
TIMEZONE = "Europe/Berlin"


def deployments(config_path: str) -> list:
    config_path = str(Path(config_path).resolve())
    runner = load_config(config_path).flow_task_runner()
    return [
        nightly.with_options(task_runner=runner).to_deployment(
            name="nightly",
            schedules=[Cron(NIGHTLY_CRON, timezone=TIMEZONE)],
            parameters={"config_path": config_path},
            concurrency_limit=1,
        ),
        ingest_usage_log.with_options(task_runner=runner).to_deployment(
            name="ingest-usage-log",
            triggers=[
                DeploymentEventTrigger(
                    expect={USAGE_LOG_LANDED},
                    match={"prefect.resource.id": "demand-monitor.inbox.*"},
                    parameters={"path": "{{ event.payload.path }}", "config_path": config_path},
                )
            ],
            # runs queue up behind each other; the writer lock also keeps them apart from the nightly run
            concurrency_limit=1,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the nightly and ingest-usage-log deployments")
    parser.add_argument("--config", default="config/pipeline.toml")
    args = parser.parse_args(argv)
    serve(*deployments(args.config), limit=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
