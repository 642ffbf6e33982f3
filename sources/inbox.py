"""The inbox: where facilities drop usage-log files, and where each file goes once its run is published.

A file leaves the inbox only after the warehouse that contains it has been published, so a failed run leaves it
in place for the next try. Loaded (or already known) files move to processed/; refused ones were already copied to
quarantine/ with a reason file by the ingest step, so the inbox copy is removed. The landing area keeps every
delivery unchanged under its content hash regardless.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

REFUSED = {"quarantined", "duplicate"}


def settle(path: Path, status: str, processed: Path) -> Path | None:
    """Take a consumed file out of the inbox; returns where it went (None if refused or gone already)."""
    if not path.exists():
        return None
    if status in REFUSED:
        path.unlink()
        return None
    processed.mkdir(parents=True, exist_ok=True)
    target = processed / f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}_{path.name}"
    shutil.move(path, target)
    return target
