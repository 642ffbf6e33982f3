"""Watches the inbox and emits a Prefect event for every usage-log file that has settled there.

The `ingest-usage-log` deployment is triggered by that event and takes the file path from its payload. Events need
a running Prefect server: without PREFECT_API_URL an emitted event is silently lost, so the watcher refuses to start.
Files present at start are announced too; ingestion is idempotent, so an event too many costs a no-op run, while an
event too few would leave a file for the nightly catch-up.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from flows.config import ConfigError, PipelineConfig, is_settled, load_config

USAGE_LOG_LANDED = "demand-monitor.usage-log.landed"
log = logging.getLogger("demand_monitor.watcher")


def emit_landed(path: Path) -> None:
    from prefect.events import emit_event

    emit_event(
        event=USAGE_LOG_LANDED,
        resource={"prefect.resource.id": f"demand-monitor.inbox.{path.name}", "demand-monitor.file": path.name},
        payload={"path": str(path)},
    )


class InboxWatcher(FileSystemEventHandler):
    """Collects candidate paths from file-system events; `announce_settled` emits each settled file once."""

    def __init__(self, config: PipelineConfig, emit=emit_landed):
        self.config = config
        self.emit = emit
        self.pending: set[Path] = set()
        self.announced: dict[Path, tuple[float, int]] = {}
        self.lock = threading.Lock()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        target = getattr(event, "dest_path", "") or event.src_path
        with self.lock:
            self.pending.add(Path(os.fsdecode(target)))

    def scan(self) -> None:
        with self.lock:
            self.pending.update(p for p in self.config.paths.inbox.rglob("*") if p.is_file())

    def announce_settled(self) -> list[Path]:
        with self.lock:
            candidates, self.pending = self.pending, set()
        announced, still_pending = [], set()
        for path in candidates:
            if not path.exists():
                continue
            if not is_settled(path, self.config.stable_seconds):
                still_pending.add(path)
                continue
            stat = path.stat()
            if self.announced.get(path) == (stat.st_mtime, stat.st_size):
                continue
            try:
                source = self.config.source_for(path)
            except ConfigError:
                log.warning("%s matches no inbox source in the configuration; left in place", path)
                continue
            if not source.consume:
                continue
            self.emit(path)
            self.announced[path] = (stat.st_mtime, stat.st_size)
            announced.append(path)
            log.info("announced %s (%s)", path, source.name)
        with self.lock:
            self.pending |= still_pending
        return announced


def watch(config_path: str, poll_seconds: float = 0.5) -> None:
    if not os.environ.get("PREFECT_API_URL"):
        raise SystemExit("PREFECT_API_URL is not set: events would be lost. Start a Prefect server (make serve) first.")
    config = load_config(config_path)
    config.paths.inbox.mkdir(parents=True, exist_ok=True)
    watcher = InboxWatcher(config)
    observer = Observer()
    observer.schedule(watcher, str(config.paths.inbox), recursive=True)
    observer.start()
    watcher.scan()
    log.info("watching %s", config.paths.inbox)
    try:
        while True:
            watcher.announce_settled()
            time.sleep(poll_seconds)
    finally:
        observer.stop()
        observer.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Emit a Prefect event for each usage-log file landing in the inbox")
    parser.add_argument("--config", default="config/pipeline.toml")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    watch(args.config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
