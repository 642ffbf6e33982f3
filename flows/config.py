"""The pipeline's configuration file (config/pipeline.toml), read into plain objects."""

from __future__ import annotations

import fnmatch
import glob
import os
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from transforms.demography import AgeConvention
from transforms.log_pieces import PIECE_BYTES
from warehouse.ingest import FORMATS


class ConfigError(ValueError):
    pass


def is_settled(path: Path, stable_seconds: float) -> bool:
    """A file still being written is never picked up: `.part` and hidden names are in transit by convention, and a
    file modified within the last `stable_seconds` may still grow."""
    if path.name.endswith(".part") or path.name.startswith("."):
        return False
    return time.time() - path.stat().st_mtime >= stable_seconds


@dataclass(frozen=True)
class FileSource:
    name: str
    format: str
    pattern: str
    description: str = ""
    enabled: bool = True
    consume: bool = False  # an inbox: files move to processed/ or quarantine/ once their run is published
    options: dict = field(default_factory=dict, hash=False, compare=False)  # format-specific, e.g. a column mapping

    def files(self, stable_seconds: float = 0) -> list[Path]:
        found = (Path(p) for p in glob.glob(self.pattern))
        return sorted(p for p in found if p.is_file() and is_settled(p, stable_seconds))

    def matches(self, path: Path) -> bool:
        return fnmatch.fnmatch(str(path), self.pattern)


@dataclass(frozen=True)
class Paths:
    home: Path

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse" / "demand.duckdb"

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def quarantine(self) -> Path:
        return self.home / "quarantine"

    @property
    def inbox(self) -> Path:
        return self.home / "inbox"

    @property
    def processed(self) -> Path:
        return self.home / "processed"

    @property
    def validation(self) -> Path:
        return self.home / "validation"

    @property
    def exports(self) -> Path:
        return self.home / "exports"

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"


@dataclass(frozen=True)
class PipelineConfig:
    paths: Paths
    sources: tuple[FileSource, ...]
    conventions: tuple[AgeConvention, ...]
    default_convention: str
    min_count: int
    area_points: Path | None = None  # JSON of area centres (Kreis code → lon/lat), for maps and distances
    stable_seconds: float = 2.0
    facility_registry: Path | None = None  # config/facilities.toml: facilities, rooms, opening hours
    statistics_sources: Path | None = None  # config/statistics_sources.toml: GENESIS tables fetched nightly

    config_file: Path | None = None
    task_runner: str = "processes"  # processes | threads | dask: where new files are parsed side by side
    max_workers: int = 2
    dask_address: str | None = None  # a running Dask scheduler; none: a local cluster per flow run
    piece_bytes: int = PIECE_BYTES  # a usage log is read, validated and loaded in pieces of about this size
    duckdb_memory_limit: str | None = None  # e.g. "4GB": DuckDB spills beyond it instead of taking 80 % of RAM

    def flow_task_runner(self):
        from flows.task_runners import task_runner_from_config

        return task_runner_from_config(self.task_runner, self.max_workers, address=self.dask_address)

    @property
    def files(self) -> list[Path]:
        """Every configuration file a run's result depends on."""
        from transforms.resilience_config import RESILIENCE_PATH, load_resilience_config

        resilience = load_resilience_config(RESILIENCE_PATH)
        named = [self.config_file, self.facility_registry, self.statistics_sources, self.area_points, RESILIENCE_PATH,
                 resilience.fiscal_scenarios, resilience.projection.file, resilience.projection.land_table]
        return [p for p in named if p is not None]

    @property
    def fetches_statistics(self) -> bool:
        """Whether any GENESIS source is enabled: then only the service can say whether there is something new."""
        if self.statistics_sources is None:
            return False
        from sources.genesis.config import load_statistics_config

        return bool(load_statistics_config(self.statistics_sources).enabled_sources)

    def source_named(self, name: str) -> FileSource | None:
        return next((s for s in self.sources if s.name == name), None)

    def source_for(self, path: Path) -> FileSource:
        for source in self.sources:
            if source.matches(path):
                return source
        raise ConfigError(f"{path} matches no enabled source in the configuration")


def _convention(name: str, entry: dict) -> AgeConvention:
    try:
        young, working = tuple(entry["young"]), tuple(entry["working"])
        return AgeConvention(name=name, label=entry.get("label", name), young=young, working=working, old_from=int(entry["old_from"]))
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"age convention {name!r} needs young = [from, to], working = [from, to], old_from = N: {err}") from None


def load_config(path: str | Path) -> PipelineConfig:
    path = Path(path).resolve()
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    root = (path.parent / raw.get("root", ".")).resolve()
    home = Path(os.environ.get("DEMAND_MONITOR_HOME") or root / raw.get("paths", {}).get("home", "var")).resolve()

    sources = []
    for entry in raw.get("sources", []):
        fmt = entry.get("format")
        pattern = entry["files"].replace("{home}", str(home))
        if fmt not in FORMATS:
            raise ConfigError(f"{path}: source {entry.get('name')!r} has format {fmt!r}; known formats: {', '.join(FORMATS)}")
        sources.append(
            FileSource(
                name=entry["name"],
                format=fmt,
                pattern=str(root / pattern),
                description=entry.get("description", ""),
                enabled=entry.get("enabled", True),
                consume=entry.get("consume", False),
                options=entry.get("options", {}),
            )
        )
    conv_raw = dict(raw.get("age_conventions", {}))
    default = conv_raw.pop("default", None)
    conventions = tuple(_convention(name, entry) for name, entry in conv_raw.items())
    if not conventions:
        raise ConfigError(f"{path}: at least one [age_conventions.NAME] is required")
    if default not in {c.name for c in conventions}:
        raise ConfigError(f"{path}: age_conventions.default = {default!r} is not a configured convention")
    return PipelineConfig(
        paths=Paths(home=home),
        sources=tuple(s for s in sources if s.enabled),
        conventions=conventions,
        default_convention=default,
        min_count=int(raw.get("exports", {}).get("min_count", 5)),
        area_points=_optional_path(root, raw, "geo", "area_points"),
        stable_seconds=float(raw.get("inbox", {}).get("stable_seconds", 2.0)),
        facility_registry=_optional_path(root, raw, "facilities", "registry"),
        statistics_sources=_optional_path(root, raw, "statistics", "sources"),
        config_file=path,
        task_runner=raw.get("execution", {}).get("task_runner", "processes"),
        max_workers=int(raw.get("execution", {}).get("max_workers", 2)),
        dask_address=raw.get("execution", {}).get("dask_address"),
        piece_bytes=_piece_bytes(path, raw.get("execution", {}).get("piece_mb")),
        duckdb_memory_limit=raw.get("warehouse", {}).get("memory_limit"),
    )


def _piece_bytes(path: Path, piece_mb) -> int:
    if piece_mb is None:
        return PIECE_BYTES
    if isinstance(piece_mb, bool) or not isinstance(piece_mb, (int, float)) or piece_mb <= 0:
        raise ConfigError(f"{path}: [execution] piece_mb = {piece_mb!r}: a number of megabytes above 0")
    return int(piece_mb * 1024 * 1024)


def _optional_path(root: Path, raw: dict, section: str, key: str) -> Path | None:
    value = raw.get(section, {}).get(key)
    return root / value if value else None
