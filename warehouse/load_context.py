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
    rows_replaced: int = 0  # stored rows with a key of the batch, replaced by it


def combined(results: list[LoadResult]) -> LoadResult:
    """A delivery's result from those of its pieces (one piece for most files, see transforms/log_pieces.py)."""
    loaded = sum(r.rows_loaded for r in results)
    replaced = sum(r.rows_replaced for r in results)
    notes = [f"{loaded - replaced} new, {replaced} already known (replaced)"] if replaced else []
    notes += [r.message for r in results if r.message]
    status = "loaded" if any(r.status == "loaded" for r in results) else results[0].status
    return LoadResult(status, loaded, "; ".join(notes) or None, replaced)
