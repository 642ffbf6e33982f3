"""The declared statistics sources (config/statistics_sources.toml), read into plain objects.

One entry per source says which service and table, which regional level and keys, which years, how the table's
variables map to the long population table, and how the landed file is ingested. Nothing here talks to a service.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

# How warehouse/ingest.py reads a landed file, per download format.
INGEST_FORMATS = {"ffcsv": "genesis_ffcsv", "csv": "genesis_csv"}
# What each column of a declared table means; the keys a `columns` table may use.
COLUMN_ROLES = ("area", "sex", "age", "value", "time")


class StatisticsConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Service:
    name: str
    base_url: str
    credentials_block: str | None = None  # name of a Prefect Secret block, used when no environment variable is set


@dataclass(frozen=True)
class StatisticsSource:
    name: str
    service: str
    table: str
    format: str  # ffcsv | csv: what is asked of the service
    ingest: bool  # False: landed and recorded only, until a loader for the table's content exists
    regional_variable: str  # GEMEIN, KREISE, DLAND … ("" = the table's default)
    regional_keys: tuple[str, ...]  # AGS, "*" as wildcard: ("05954*",) = all Gemeinden of Kreis 05954
    first_year: int
    last_year: int | None  # None = up to the current year
    columns: dict[str, str] = field(default_factory=dict)
    population_basis: tuple[tuple[int, int | None, str], ...] = ()  # (from year, to year or None, "Zensus 2011")
    content_format: str | None = None  # a warehouse format for a table that is not population (TOML `ingest_format`)
    needs_credentials: bool = True
    enabled: bool = False
    description: str = ""

    @property
    def ingest_format(self) -> str | None:
        if not self.ingest:
            return None
        return self.content_format or INGEST_FORMATS[self.format]

    def population_basis_for(self, year: int) -> str | None:
        """The census the publisher's figures for `year` rest on, as declared (None where none is stated)."""
        for first, last, basis in self.population_basis:
            if year >= first and (last is None or year <= last):
                return basis
        return None


@dataclass(frozen=True)
class StatisticsConfig:
    services: dict[str, Service]
    sources: tuple[StatisticsSource, ...]
    lookback_years: int

    @property
    def enabled_sources(self) -> tuple[StatisticsSource, ...]:
        return tuple(s for s in self.sources if s.enabled)

    def source(self, name: str) -> StatisticsSource:
        for s in self.sources:
            if s.name == name:
                return s
        raise StatisticsConfigError(f"no statistics source named {name!r}; declared: {', '.join(s.name for s in self.sources)}")


def _years(where: str, value) -> tuple[int, int | None]:
    if isinstance(value, list) and len(value) in (1, 2) and all(isinstance(v, int) for v in value):
        return value[0], (value[1] if len(value) == 2 else None)
    raise StatisticsConfigError(f"{where}: years = [first] or [first, last] (integers), found {value!r}")


def _basis(where: str, entries) -> tuple[tuple[int, int | None, str], ...]:
    out = []
    for entry in entries:
        try:
            first, last = _years(where, entry["years"])
            out.append((first, last, str(entry["basis"])))
        except (KeyError, TypeError):
            raise StatisticsConfigError(f"{where}: population_basis entries need years = [from, to] and basis = \"Zensus …\"") from None
    return tuple(out)


def load_statistics_config(path: str | Path) -> StatisticsConfig:
    path = Path(path)
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    services = {
        name: Service(name=name, base_url=entry["base_url"], credentials_block=entry.get("credentials_block") or None)
        for name, entry in raw.get("services", {}).items()
    }
    sources = []
    for number, entry in enumerate(raw.get("sources", []), start=1):
        where = f"{path}: source {entry.get('name', f'#{number}')!r}"
        missing = [k for k in ("name", "service", "table", "years") if k not in entry]
        if missing:
            raise StatisticsConfigError(f"{where}: missing {', '.join(missing)}")
        if entry["service"] not in services:
            raise StatisticsConfigError(f"{where}: service {entry['service']!r} is not declared under [services]; "
                                        f"known: {', '.join(services)}")
        fmt = entry.get("format", "ffcsv")
        if fmt not in INGEST_FORMATS:
            raise StatisticsConfigError(f"{where}: format {fmt!r}; use one of {', '.join(INGEST_FORMATS)}")
        columns = dict(entry.get("columns", {}))
        unknown = sorted(set(columns) - set(COLUMN_ROLES))
        if unknown:
            raise StatisticsConfigError(f"{where}: unknown column role(s) {unknown}; roles are {', '.join(COLUMN_ROLES)}")
        first, last = _years(where, entry["years"])
        content_format = entry.get("ingest_format")
        if content_format is not None:
            from warehouse.ingest import FORMATS  # only when declared: importing the warehouse loads polars and duckdb

            if content_format not in FORMATS:
                raise StatisticsConfigError(f"{where}: ingest_format {content_format!r}; use one of {', '.join(FORMATS)}")
        sources.append(
            StatisticsSource(
                name=entry["name"],
                service=entry["service"],
                table=entry["table"],
                format=fmt,
                ingest=bool(entry.get("ingest", True)),
                content_format=content_format,
                regional_variable=entry.get("regional_variable", ""),
                regional_keys=tuple(entry.get("regional_keys", [])),
                first_year=first,
                last_year=last,
                columns=columns,
                population_basis=_basis(where, entry.get("population_basis", [])),
                needs_credentials=bool(entry.get("needs_credentials", True)),
                enabled=bool(entry.get("enabled", False)),
                description=entry.get("description", ""),
            )
        )
    names = [s.name for s in sources]
    if len(names) != len(set(names)):
        raise StatisticsConfigError(f"{path}: source names must be unique: {sorted(n for n in names if names.count(n) > 1)}")
    lookback = raw.get("lookback_years", 2)
    if not isinstance(lookback, int) or lookback < 0:
        raise StatisticsConfigError(f"{path}: lookback_years must be a whole number ≥ 0, found {lookback!r}")
    return StatisticsConfig(services=services, sources=tuple(sources), lookback_years=lookback)


def declared_population_basis(path: Path | None, source_name: str) -> tuple[tuple[int, int | None, str], ...]:
    """The population-basis declaration of a statistics source by name; () for any other source."""
    if path is None:
        return ()
    config = load_statistics_config(path)
    return next((s.population_basis for s in config.sources if s.name == source_name), ())
