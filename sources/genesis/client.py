"""A small client for the GENESIS-Online REST interface (version 2020), as run by Regionalstatistik, Destatis and
the state databases (Landesdatenbank NRW and others).

What the interface expects (checked against pystatis and restatis, 2025): every call is a POST with the parameters
form-encoded in the body and the access data in the request headers `username` and `password` (GET was switched
off on 15 July 2025); an API token goes in as `username` with an empty `password`. `data/tablefile` answers with the
table as a ZIP (ffcsv, or the classic CSV), or with a JSON status when there is no file: the status code says why
(90 unknown table, 98 too large for a direct download, 104 nothing matches the selection, 50 no newer data). A
table that is too large is ordered as a background job (`job=true`), the job's result is polled in
`catalogue/results` and fetched from `data/resultfile`.

Credentials never appear in a log line, an exception message or a landed file: they live only in the request
headers, and every text taken from a response passes through `_redact` before it goes into a message.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable

import requests

log = logging.getLogger(__name__)

# Status codes of the GENESIS web services (GENESIS-Webservices_Einfuehrung, 2.1.2 "Grundstruktur der Responses").
CODE_NO_NEWER_DATA = 50
CODE_TABLE_NOT_FOUND = 90
CODE_TOO_LARGE = 98
CODE_JOB_CREATED = 99
CODE_NOTHING_FOUND = 104
_ERROR_TYPES = {"fehler", "error"}
# "… kann in Kürze als Ergebnis mit folgendem Namen abgerufen werden: 42153-0001_001597503"
_JOB_ID = re.compile(r":\s*(\S+_\d+)")
_SNIPPET = 300


class GenesisError(Exception):
    """A fetch that did not produce a table. The message names the service, the table and what to do."""

    def __init__(self, service: str, table: str | None, reason: str):
        self.service = service
        self.table = table
        self.reason = reason
        super().__init__(f"{service}{f' table {table}' if table else ''}: {reason}")


class GenesisAuthError(GenesisError):
    """Wrong or missing credentials."""


class GenesisTableNotFound(GenesisError):
    """The service does not know the table (status 90)."""


class GenesisTableTooLarge(GenesisError):
    """Too large for a direct download (status 98) and job mode was not allowed or did not finish in time."""


class GenesisNoData(GenesisError):
    """The table exists but holds no values for the selection (status 104, or a header without data lines)."""


class GenesisNoNewerData(GenesisError):
    """Nothing changed since the `stand` date that was asked for (status 50)."""


class GenesisServiceBusy(GenesisError):
    """Connection errors, timeouts, 5xx or 429 that outlasted the retries: try again later."""


class GenesisResponseError(GenesisError):
    """An answer the client cannot use: malformed JSON, a damaged or truncated ZIP, an unexpected status."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def __repr__(self) -> str:  # a dataclass repr would print the user name into tracebacks and logs
        return "Credentials(***)"

    @classmethod
    def from_env(cls, service: str, environ: dict[str, str] | None = None) -> Credentials | None:
        """GENESIS_<SERVICE>_TOKEN / _USERNAME / _PASSWORD first, then GENESIS_TOKEN / GENESIS_USERNAME /
        GENESIS_PASSWORD. A token is sent as the user name with an empty password, as the services expect it."""
        env = os.environ if environ is None else environ
        for prefix in (f"GENESIS_{service.upper()}_", "GENESIS_"):
            if token := env.get(prefix + "TOKEN"):
                return cls(token, "")
            if user := env.get(prefix + "USERNAME"):
                return cls(user, env.get(prefix + "PASSWORD", ""))
        return None

    @classmethod
    def from_prefect_secret(cls, block_name: str) -> Credentials:
        """A Prefect Secret block holding either a token (a string) or {"username": …, "password": …}."""
        from prefect.blocks.system import Secret

        value = Secret.load(block_name).get()
        if isinstance(value, dict):
            return cls(str(value["username"]), str(value.get("password", "")))
        return cls(str(value), "")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # tries in total, the first included
    backoff_seconds: float = 2.0  # waits 2, 4, 8 … seconds between tries
    max_wait_seconds: float = 300.0  # a Retry-After longer than this is not waited for: the service is busy


@dataclass(frozen=True)
class TableResponse:
    """One successful table download: the body as received and the table file taken out of it."""

    service: str
    url: str
    params: dict[str, str]  # as sent, without credentials (they travel in headers only)
    http_status: int
    content_type: str
    body: bytes  # unchanged, as the service sent it (a ZIP for ffcsv)
    table_file_name: str  # the name the service gave the table file
    table_bytes: bytes  # the CSV, taken out of the ZIP when it was zipped
    retrieved_at: datetime
    job_id: str | None = None


class GenesisClient:
    def __init__(
        self,
        service: str,
        base_url: str,
        credentials: Credentials | None,
        *,
        timeout: tuple[float, float] = (10.0, 300.0),
        retry: RetryPolicy = RetryPolicy(),
        job_timeout_seconds: float = 1800.0,
        job_poll_seconds: float = 15.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.service = service
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._credentials = credentials
        self.timeout = timeout
        self.retry = retry
        self.job_timeout_seconds = job_timeout_seconds
        self.job_poll_seconds = job_poll_seconds
        self._sleep = sleep
        self._clock = clock
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "demand-monitor (GENESIS REST 2020 client)"

    @property
    def has_credentials(self) -> bool:
        return self._credentials is not None

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> GenesisClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- public calls -------------------------------------------------------------------------------------------

    def logincheck(self) -> None:
        """Raises GenesisAuthError unless the service accepts the credentials. The service answers 200 either way
        and says it in words: {"Status": "Sie wurden erfolgreich an- und abgemeldet!"} or "Ein Fehler ist aufgetreten"."""
        response = self._post("helloworld/logincheck", {}, table=None)
        body = self._json(response, table=None)
        status = body.get("Status")
        if not (isinstance(status, str) and "erfolgreich" in status.lower()):
            raise GenesisAuthError(self.service, None, f"login refused ({self._redact(str(status))}); check the credentials")

    def table(
        self,
        name: str,
        *,
        fmt: str = "ffcsv",
        regional_variable: str = "",
        regional_keys: tuple[str, ...] = (),
        start_year: int | None = None,
        end_year: int | None = None,
        language: str = "de",
        allow_job: bool = True,
    ) -> TableResponse:
        """Download one table. `fmt` is "ffcsv" (flat, one value per line) or "csv" (the classic layout)."""
        if fmt not in ("ffcsv", "csv"):
            raise ValueError(f"format {fmt!r}: use 'ffcsv' or 'csv'")
        params = {
            "name": name,
            "area": "all",
            "compress": "false",
            "format": fmt,
            "language": language,
            "quality": "off",
            "regionalvariable": regional_variable,
            "regionalkey": ",".join(regional_keys),
            "startyear": "" if start_year is None else str(start_year),
            "endyear": "" if end_year is None else str(end_year),
            "job": "false",
        }
        response = self._post("data/tablefile", params, table=name)
        status = self._status_if_json(response, name)
        if status is None:
            return self._table_response(response, params, name)
        if status.get("Code") != CODE_TOO_LARGE:
            self._raise_for_status(status, name)
            raise GenesisResponseError(self.service, name, f"a status but no table: {self._describe(status)}")
        if not allow_job:
            raise GenesisTableTooLarge(self.service, name, f"too large for a direct download ({self._describe(status)}); "
                                       "allow job mode or select fewer regions or years")
        return self._via_job(params, name)

    # -- job mode -----------------------------------------------------------------------------------------------

    def _via_job(self, params: dict[str, str], name: str) -> TableResponse:
        job_params = {**params, "job": "true"}
        status = self._status_if_json(self._post("data/tablefile", job_params, table=name), name)
        if status is None:
            raise GenesisResponseError(self.service, name, "asked for a background job but got a file instead of the job's name")
        content = str(status.get("Content") or "")
        match = _JOB_ID.search(content)
        if not match:
            self._raise_for_status(status, name)
            raise GenesisResponseError(self.service, name, f"background job not created: {self._describe(status)}")
        job_id = match.group(1)
        log.info("%s: %s is too large for a direct download; waiting for background job %s", self.service, name, job_id)

        deadline = self._clock() + self.job_timeout_seconds
        while True:
            listing = self._json(self._post("catalogue/results", {"selection": job_id, "area": "all", "pagelength": "1"}, name), name)
            if listing.get("List"):
                break
            listing_status = listing.get("Status") or {}
            if listing_status.get("Code") not in (None, 0, CODE_NOTHING_FOUND):
                self._raise_for_status(listing_status, name)
            if self._clock() >= deadline:
                raise GenesisTableTooLarge(self.service, name, f"background job {job_id} not finished after "
                                           f"{self.job_timeout_seconds:.0f} s; fetch it later or select fewer regions or years")
            self._sleep(self.job_poll_seconds)

        result_params = {**params, "name": job_id}
        response = self._post("data/resultfile", result_params, table=name)
        status = self._status_if_json(response, name)
        if status is not None:
            self._raise_for_status(status, name)
            raise GenesisResponseError(self.service, name, f"job {job_id} finished but its result is a status: {self._describe(status)}")
        return self._table_response(response, result_params, name, job_id=job_id)

    # -- transport ----------------------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self._credentials is not None:
            headers["username"] = self._credentials.username
            headers["password"] = self._credentials.password
        return headers

    def _post(self, path: str, params: dict[str, str], table: str | None) -> requests.Response:
        """POST with retries on connection errors, timeouts, 5xx and 429 (honouring Retry-After)."""
        url = self.base_url + path
        last_problem = ""
        for attempt in range(1, self.retry.attempts + 1):
            wait = self.retry.backoff_seconds * 2 ** (attempt - 1)
            try:
                response = self._session.post(url, data=params, headers=self._headers(), timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as err:
                # the exception text holds only the URL and the socket error, never headers
                last_problem = f"{type(err).__name__}: {self._redact(str(err))[:_SNIPPET]}"
            else:
                if response.status_code in (401, 403):
                    raise GenesisAuthError(self.service, table, f"HTTP {response.status_code} from {path}: credentials refused "
                                           "(set GENESIS_TOKEN, or GENESIS_USERNAME and GENESIS_PASSWORD)")
                if response.status_code == 429 or response.status_code >= 500:
                    last_problem = f"HTTP {response.status_code} from {path}"
                    if (after := _retry_after(response)) is not None:
                        if after > self.retry.max_wait_seconds:
                            raise GenesisServiceBusy(self.service, table, f"rate limited: the service asks to wait {after:.0f} s "
                                                     f"(more than {self.retry.max_wait_seconds:.0f} s); try again later")
                        wait = after
                elif response.status_code >= 400:
                    raise GenesisResponseError(self.service, table, f"HTTP {response.status_code} from {path}: "
                                               f"{self._redact(response.text[:_SNIPPET])!r}")
                else:
                    return response
            if attempt < self.retry.attempts:
                log.warning("%s %s: %s; retry %d of %d in %.1f s", self.service, path, last_problem, attempt,
                            self.retry.attempts - 1, wait)
                self._sleep(wait)
        raise GenesisServiceBusy(self.service, table, f"{last_problem} after {self.retry.attempts} tries; try again later")

    # -- reading answers ----------------------------------------------------------------------------------------

    def _json(self, response: requests.Response, table: str | None) -> dict:
        try:
            body = json.loads(response.content.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise GenesisResponseError(self.service, table, f"malformed JSON answer ({err.__class__.__name__}: {err}); "
                                       f"starts with {self._redact(response.content[:80].decode('utf-8', 'replace'))!r}") from None
        if not isinstance(body, dict):
            raise GenesisResponseError(self.service, table, f"JSON answer is a {type(body).__name__}, expected an object")
        return body

    def _status_if_json(self, response: requests.Response, table: str) -> dict | None:
        """The Status object of a JSON answer, or None when the answer is a file."""
        content_type = response.headers.get("Content-Type", "").lower()
        if "json" not in content_type and not response.content.lstrip().startswith(b"{"):
            return None
        body = self._json(response, table)
        status = body.get("Status")
        if not isinstance(status, dict):
            raise GenesisResponseError(self.service, table, f"JSON answer without a Status object: {self._redact(json.dumps(body)[:_SNIPPET])}")
        return status

    def _raise_for_status(self, status: dict, table: str) -> None:
        code = status.get("Code")
        text = self._describe(status)
        if code == CODE_TABLE_NOT_FOUND:
            raise GenesisTableNotFound(self.service, table, f"unknown table ({text}); check the table code")
        if code == CODE_NOTHING_FOUND:
            raise GenesisNoData(self.service, table, f"no data for this selection ({text}); check regions and years")
        if code == CODE_NO_NEWER_DATA:
            raise GenesisNoNewerData(self.service, table, f"no newer data ({text})")
        if code == CODE_TOO_LARGE:
            raise GenesisTableTooLarge(self.service, table, text)
        content = str(status.get("Content") or "").lower()
        if str(status.get("Type", "")).lower() in _ERROR_TYPES or code == -1:
            if any(word in content for word in ("passwort", "password", "benutzer", "user", "anmeld", "login", "token")):
                raise GenesisAuthError(self.service, table, f"credentials refused ({text})")
            raise GenesisResponseError(self.service, table, f"the service reports an error: {text}")

    def _table_response(self, response: requests.Response, params: dict[str, str], name: str,
                        job_id: str | None = None) -> TableResponse:
        body = response.content
        if not body.strip():
            raise GenesisResponseError(self.service, name, "empty answer: no file and no status")
        content_type = response.headers.get("Content-Type", "")
        if "zip" in content_type.lower() or body.startswith(b"PK\x03\x04"):
            file_name, table_bytes = self._unzip(body, name)
        else:
            file_name, table_bytes = _disposition_name(response) or f"{name}.csv", body
        if params["format"] == "ffcsv":
            _check_flat_file(self.service, name, table_bytes)
        return TableResponse(
            service=self.service,
            url=response.url,
            params=dict(params),
            http_status=response.status_code,
            content_type=content_type,
            body=body,
            table_file_name=file_name,
            table_bytes=table_bytes,
            retrieved_at=datetime.now(timezone.utc),
            job_id=job_id,
        )

    def _unzip(self, body: bytes, name: str) -> tuple[str, bytes]:
        try:
            with zipfile.ZipFile(io.BytesIO(body)) as archive:
                members = [m for m in archive.infolist() if not m.is_dir()]
                if len(members) != 1:
                    raise GenesisResponseError(self.service, name, f"expected one file in the ZIP, found {len(members)}: "
                                               f"{[m.filename for m in members]}")
                return members[0].filename, archive.read(members[0])
        except (zipfile.BadZipFile, EOFError, zlib.error) as err:
            raise GenesisResponseError(self.service, name, f"damaged or truncated ZIP ({len(body)} bytes received): {err}") from None

    def _describe(self, status: dict) -> str:
        return self._redact(f"status {status.get('Code')} {status.get('Type', '')}: {status.get('Content', '')}".strip())

    def _redact(self, text: str) -> str:
        if self._credentials is None:
            return text
        for secret in (self._credentials.password, self._credentials.username):
            if secret:
                text = text.replace(secret, "***")
        return text


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
        except (TypeError, ValueError):
            return None


def _disposition_name(response: requests.Response) -> str | None:
    match = re.search(r'filename="?([^";]+)"?', response.headers.get("Content-Disposition", ""))
    return match.group(1) if match else None


def _check_flat_file(service: str, table: str, data: bytes) -> None:
    """The parts of a flat file that tell whether the download is usable; reading the values is the parser's job
    (transforms/genesis_ffcsv.py)."""
    text = data.decode("utf-8-sig", errors="replace")
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines or not lines[0].startswith("statistics_code;"):
        raise GenesisResponseError(service, table, f"not a flat file (ffcsv): it starts with {text[:60]!r}")
    if len(lines) == 1:
        raise GenesisNoData(service, table, "the table came back with its header but no values for this selection; "
                            "check regions and years")
