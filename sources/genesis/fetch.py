"""Fetching the declared statistics sources: what to ask for, and keeping every answer unchanged.

Incremental: a source is asked only for the years after the newest year the warehouse holds for it, plus
`lookback_years` already held years, because the offices revise published values (a revised value then replaces
the current one in staging.population and the old one moves to staging.population_history, see
warehouse/load_population.py).

Landing layout, below the landing root:

    genesis/<source>/<sha256 of the table file>/
        <table>_<source>_<flat|csv>.csv        the table file, the one the nightly ingest reads
        responses/<sha256 of the body>.zip     each answer as received (ZIP or CSV)
        responses/<sha256 of the body>.json    its sidecar: service, URL, request parameters (never credentials),
                                               retrieval time, HTTP status, content type, both SHA-256, job id

The table file's name is stable per source, so a re-fetch of unchanged content is "unchanged" for the ingest
(same name, same hash) and a revised table is loaded under the same name. Landing the same answer again writes
nothing new.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable

import duckdb

from sources.genesis.client import Credentials, GenesisAuthError, GenesisClient, GenesisError, TableResponse
from sources.genesis.config import Service, StatisticsConfig, StatisticsSource, load_statistics_config

log = logging.getLogger(__name__)

# The regional depth of a Regionalstatistik table is its last code group: …-4 Kreise, …-5 Gemeinden.
_DEPTH = {"1": ("DINSG", 0), "2": ("DLAND", 2), "3": ("REGBEZ", 3), "4": ("KREISE", 5), "5": ("GEMEIN", 8)}
_LEVEL_OF_LENGTH = {2: "DLAND", 3: "REGBEZ", 5: "KREISE", 8: "GEMEIN"}


@dataclass(frozen=True)
class FetchRequest:
    source: str
    start_year: int
    end_year: int


@dataclass(frozen=True)
class LandedResponse:
    source_name: str
    ingest_format: str | None  # the format name warehouse/ingest.py knows, None = land only
    table_path: Path
    body_path: Path
    sidecar_path: Path
    body_sha256: str
    table_sha256: str


@dataclass(frozen=True)
class FetchReport:
    landed: tuple[LandedResponse, ...]
    failures: tuple[tuple[str, str], ...]  # (source name, message)

    def files_to_ingest(self) -> list[dict[str, str]]:
        """[{"source_name", "format", "path"}] for the nightly ingest, in source order."""
        return [{"source_name": r.source_name, "format": r.ingest_format, "path": str(r.table_path)}
                for r in self.landed if r.ingest_format]


# -- planning (pure) --------------------------------------------------------------------------------------------


def plan_request(source: StatisticsSource, latest_year: int | None, lookback_years: int, current_year: int) -> FetchRequest | None:
    """Which years to ask for: everything declared when the warehouse holds nothing yet; otherwise the years after
    the newest one held, starting `lookback_years` earlier to pick up revisions. None when nothing is due."""
    end = source.last_year if source.last_year is not None else current_year
    start = source.first_year if latest_year is None else max(source.first_year, latest_year - lookback_years + 1)
    return FetchRequest(source.name, start, end) if start <= end else None


def regional_selection(table: str, codes: list[str], level: str | None = None) -> tuple[str, tuple[str, ...]]:
    """The regional variable and keys for `codes` in `table`. A code coarser than the table's depth selects every
    area inside it: 05954 in the Gemeinde table 12411-02-03-5 becomes GEMEIN with key 05954*."""
    depth = _DEPTH.get(re.sub(r"-B$", "", table).rsplit("-", 1)[-1])
    variable = level or (depth[0] if depth else _LEVEL_OF_LENGTH.get(len(codes[0]), ""))
    width = next((w for v, w in _DEPTH.values() if v == variable), 0)
    keys = tuple(code if code.endswith("*") or len(code) >= width else code + "*" for code in codes)
    return variable, keys


# -- the warehouse side -----------------------------------------------------------------------------------------


def latest_year(con: duckdb.DuckDBPyConnection, source: StatisticsSource) -> int | None:
    """Newest reference year of `source` in staging.population, within its regional keys. Sources that are only
    landed have no staging rows and are fetched in full each time (unchanged content lands nowhere new)."""
    if not source.ingest:
        return None
    patterns = [k.replace("*", "%") for k in source.regional_keys] or ["%"]
    condition = " OR ".join("area_code LIKE ?" for _ in patterns)
    rows = con.execute(
        f"SELECT max(year(reference_date)) FROM staging.population WHERE table_code = ? AND ({condition})",
        [source.table, *patterns],
    ).fetchall()
    return rows[0][0]


def record_landed(con: duckdb.DuckDBPyConnection, run_id: str, landed: list[LandedResponse]) -> int:
    """One row per answer in raw.genesis_responses; an answer recorded before is left as it is."""
    before = con.execute("SELECT count(*) FROM raw.genesis_responses").fetchall()[0][0]
    for response in landed:
        meta = json.loads(response.sidecar_path.read_text(encoding="utf-8"))
        con.execute(
            """INSERT INTO raw.genesis_responses (source_name, body_sha256, table_sha256, service, url, table_code,
                   request_params, http_status, content_type, job_id, body_path, table_path, retrieved_at, run_id)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT DO NOTHING""",
            [response.source_name, response.body_sha256, response.table_sha256, meta["service"], meta["url"],
             meta["request"]["name"], json.dumps(meta["request"]), meta["http_status"], meta["content_type"],
             meta["job_id"], str(response.body_path), str(response.table_path), meta["retrieved_at"], run_id],
        )
    return con.execute("SELECT count(*) FROM raw.genesis_responses").fetchall()[0][0] - before


# -- landing ----------------------------------------------------------------------------------------------------


def land_response(response: TableResponse, source_name: str, table: str, ingest_format: str | None, landing_root: Path) -> LandedResponse:
    body_sha = hashlib.sha256(response.body).hexdigest()
    table_sha = hashlib.sha256(response.table_bytes).hexdigest()
    folder = Path(landing_root) / "genesis" / source_name / table_sha
    kind = "flat" if response.params.get("format") == "ffcsv" else "csv"
    table_path = folder / f"{table}_{source_name}_{kind}.csv"
    suffix = ".zip" if response.body.startswith(b"PK\x03\x04") else ".csv"
    body_path = folder / "responses" / f"{body_sha}{suffix}"
    sidecar_path = body_path.with_suffix(".json")
    _write_once(table_path, response.table_bytes)
    _write_once(body_path, response.body)
    sidecar = {
        "source_name": source_name,
        "service": response.service,
        "url": response.url,
        "method": "POST",
        "request": response.params,
        "retrieved_at": response.retrieved_at.isoformat(),
        "http_status": response.http_status,
        "content_type": response.content_type,
        "job_id": response.job_id,
        "service_file_name": response.table_file_name,
        "body_sha256": body_sha,
        "table_sha256": table_sha,
    }
    _write_once(sidecar_path, (json.dumps(sidecar, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return LandedResponse(source_name, ingest_format, table_path, body_path, sidecar_path, body_sha, table_sha)


def _write_once(path: Path, data: bytes) -> None:
    """Landed files are never rewritten: the first copy of an answer, with its first retrieval time, stays."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


# -- putting it together ----------------------------------------------------------------------------------------


def client_for(service: Service) -> GenesisClient:
    """A client with credentials from the environment, else from the service's Prefect Secret block, else none."""
    credentials = Credentials.from_env(service.name)
    if credentials is None and service.credentials_block:
        try:
            credentials = Credentials.from_prefect_secret(service.credentials_block)
        except ValueError as err:  # Prefect's answer for a block that does not exist: this service only fails
            raise GenesisAuthError(service.name, None,
                                   f"Prefect Secret block {service.credentials_block!r} could not be loaded: {err}") from None
    return GenesisClient(service.name, service.base_url, credentials)


def fetch_source(client: GenesisClient, source: StatisticsSource, request: FetchRequest, landing_root: Path) -> LandedResponse:
    response = client.table(
        source.table,
        fmt=source.format,
        regional_variable=source.regional_variable,
        regional_keys=source.regional_keys,
        start_year=request.start_year,
        end_year=request.end_year,
    )
    return land_response(response, source.name, source.table, source.ingest_format, landing_root)


def fetch_statistics_sources(
    statistics_config: str | Path,
    build: str | Path,
    landing_root: str | Path,
    run_id: str,
    *,
    today: date | None = None,
    client_factory: Callable[[Service], GenesisClient] = client_for,
) -> FetchReport:
    """Fetch every enabled source, land the answers, record them in raw.genesis_responses of the warehouse `build`.

    A source that fails (no credentials, service busy, unknown table, damaged answer …) is reported in
    `failures` and lands nothing; the others go on. Returns the landed files; `files_to_ingest()` lists what the
    nightly ingest should read next."""
    from warehouse.publish import connect_build

    config: StatisticsConfig = load_statistics_config(statistics_config)
    current_year = (today or date.today()).year
    with connect_build(Path(build)) as con:
        plans = [(s, plan_request(s, latest_year(con, s), config.lookback_years, current_year)) for s in config.enabled_sources]

    landed: list[LandedResponse] = []
    failures: list[tuple[str, str]] = []
    clients: dict[str, GenesisClient] = {}
    try:
        for source, request in plans:
            if request is None:
                log.info("%s: nothing due", source.name)
                continue
            service = config.services[source.service]
            try:
                client = clients.get(service.name) or clients.setdefault(service.name, client_factory(service))
                if source.needs_credentials and not client.has_credentials:
                    raise GenesisError(service.name, source.table, "no credentials: set GENESIS_TOKEN, or GENESIS_USERNAME "
                                       f"and GENESIS_PASSWORD (or GENESIS_{service.name.upper()}_…), or credentials_block")
                landed.append(fetch_source(client, source, request, Path(landing_root)))
            except GenesisError as err:
                log.warning("%s: %s", source.name, err)
                failures.append((source.name, str(err)))
    finally:
        for client in clients.values():
            client.close()

    if landed:
        with connect_build(Path(build)) as con:
            record_landed(con, run_id, landed)
    return FetchReport(tuple(landed), tuple(failures))
