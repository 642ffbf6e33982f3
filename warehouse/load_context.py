"""What a loader is told about the file it loads, and what it reports back."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoadContext:
    run_id: str
    source_name: str
    file_name: str
    sha256: str

    @property
    def lineage(self) -> dict[str, str]:
        """The columns that tie each loaded row to its delivery and run: one value for the whole batch."""
        return {"sha256": self.sha256, "loaded_run_id": self.run_id}


@dataclass(frozen=True)
class LoadResult:
    status: str  # loaded | superseded
    rows_loaded: int
    message: str | None = None
