"""What a loader is told about the file it loads, and what it reports back."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoadContext:
    run_id: str
    source_name: str
    file_name: str
    sha256: str


@dataclass(frozen=True)
class LoadResult:
    status: str  # loaded | superseded
    rows_loaded: int
    message: str | None = None
