"""Whether a run would change anything: a fingerprint of everything a run's result depends on.

The inputs (each file by name and content), the configuration and the pipeline's own code and schema. When the
fingerprint equals the one the last published run recorded, a new run would rebuild the same warehouse and the same
exports, so the nightly run can stop before copying the warehouse.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import duckdb

PACKAGES = ("flows", "sources", "transforms", "expectations", "warehouse")
CODE_SUFFIXES = {".py", ".sql", ".toml", ".j2"}
ROOT = Path(__file__).resolve().parents[1]


def file_sha256(path: Path) -> str:
    """Read in blocks: a delivery may be bigger than the memory."""
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def run_fingerprint(data_files: Iterable[Path], config_files: Iterable[Path]) -> str:
    code = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*") if p.suffix in CODE_SUFFIXES)
    parts = [("data", p.name, file_sha256(p)) for p in sorted(data_files)]
    parts += [("config", str(p), file_sha256(p)) for p in sorted(config_files) if p.exists()]
    parts += [("code", str(p.relative_to(ROOT)), file_sha256(p)) for p in code]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def last_published(warehouse: Path) -> tuple[str, str] | None:
    """(run id, fingerprint) of the last published run, or None (no warehouse yet, or no fingerprint recorded)."""
    if not warehouse.exists():
        return None
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            """SELECT run_id, summary->>'fingerprint' FROM audit.runs
               WHERE status = 'published' ORDER BY finished_at DESC LIMIT 1"""
        ).fetchall()
    return rows[0] if rows and rows[0][1] else None
