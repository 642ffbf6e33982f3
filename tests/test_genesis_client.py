"""The GENESIS client against a local HTTP server on 127.0.0.1 that replays recorded answers (see
tests/fixtures/genesis_responses/SOURCES.md). The client is the code `fetch-table` and the nightly run use;
only the base URL differs. Waits are recorded by an injected `sleep`, so no test waits for a backoff."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from sources.genesis.client import (
    Credentials,
    GenesisAuthError,
    GenesisClient,
    GenesisNoData,
    GenesisResponseError,
    GenesisServiceBusy,
    GenesisTableNotFound,
    GenesisTableTooLarge,
    RetryPolicy,
)
from transforms.genesis_ffcsv import parse_genesis_ffcsv

RESPONSES = Path(__file__).parent / "fixtures" / "genesis_responses"
EXCERPT = Path(__file__).parent / "fixtures" / "genesis" / "12411-01-01-4_flat_excerpt.csv"
SERVICE_MEMBER = "12411-01-01-4_1749623963823_de_flat.csv"  # the name regionalstatistik.de gave the file
USER, PASSWORD = "DE1234USER", "s3cret-pw"


def service_zip(data: bytes, member: str = SERVICE_MEMBER) -> bytes:
    """The recorded ffcsv the way the service sends it: one CSV in a ZIP."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, data)
    return buffer.getvalue()


def zip_answer(data: bytes | None = None) -> "Answer":
    return Answer(200, service_zip(EXCERPT.read_bytes() if data is None else data), "application/zip")


def json_answer(name: str, status: int = 200) -> "Answer":
    return Answer(status, (RESPONSES / name).read_bytes(), "application/json;charset=UTF-8")


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json;charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering: longer than the client's read timeout makes it time out


@dataclass
class Seen:
    path: str
    method: str
    headers: dict[str, str]
    form: dict[str, str]


class LocalService:
    """A GENESIS look-alike: per path, a queue of answers; the last one repeats. Records every request."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Answer]] = {}
        self.seen: list[Seen] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode(), keep_blank_values=True).items()}
                path = self.path.split("/rest/2020/", 1)[-1]
                service.seen.append(Seen(path, "POST", dict(self.headers), form))
                queue = service.scripts[path]
                answer = queue.pop(0) if len(queue) > 1 else queue[0]
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", answer.content_type)
                    self.send_header("Content-Length", str(len(answer.body)))
                    for key, value in answer.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting, as the timeout test intends

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/genesisws/rest/2020/"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def script(self, path: str, *answers: Answer) -> None:
        self.scripts[path] = list(answers)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service():
    s = LocalService()
    yield s
    s.close()


@pytest.fixture
def waits() -> list[float]:
    return []


def make_client(service: LocalService, waits: list[float], **kwargs) -> GenesisClient:
    defaults = dict(timeout=(2.0, 0.5), retry=RetryPolicy(attempts=3, backoff_seconds=2.0, max_wait_seconds=60),
                    sleep=waits.append, job_poll_seconds=15.0)
    return GenesisClient("regionalstatistik", service.url, Credentials(USER, PASSWORD), **{**defaults, **kwargs})


# -- normal tables ------------------------------------------------------------------------------------------------


def test_a_table_is_fetched_by_post_with_credentials_in_headers_and_unzipped(service, waits):
    service.script("data/tablefile", zip_answer())
    with make_client(service, waits) as client:
        response = client.table("12411-01-01-4", regional_variable="KREISE", regional_keys=("05954", "05914"),
                                start_year=2020, end_year=2023)

    assert response.table_bytes == EXCERPT.read_bytes()
    assert response.table_file_name == SERVICE_MEMBER
    assert response.body.startswith(b"PK\x03\x04") and response.http_status == 200
    [request] = service.seen
    assert request.method == "POST"
    assert request.headers["username"] == USER and request.headers["password"] == PASSWORD
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.form == {"name": "12411-01-01-4", "area": "all", "compress": "false", "format": "ffcsv",
                            "language": "de", "quality": "off", "regionalvariable": "KREISE",
                            "regionalkey": "05954,05914", "startyear": "2020", "endyear": "2023", "job": "false"}
    # credentials travel in headers only: not in what is kept about the request
    assert USER not in json.dumps(response.params) and PASSWORD not in json.dumps(response.params)
    # the landed bytes are what the existing ffcsv parser reads: Germany = 41,161,931 men + 42,294,114 women
    frame = parse_genesis_ffcsv(response.table_bytes, response.table_file_name)
    germany = dict(frame.filter(area_code="DG").select("sex", "value").iter_rows())
    assert germany == {"male": 41161931, "female": 42294114, "total": 83456045}
    assert waits == []


def test_a_real_recorded_zip_from_destatis_is_unzipped_as_sent():
    body = (RESPONSES / "61111-0001_tablefile_en_ffcsv.zip").read_bytes()
    s = LocalService()
    try:
        s.script("data/tablefile", Answer(200, body, "application/zip",
                                          {"Content-Disposition": "attachment; filename=61111-0001_1780239718101_en_flat.zip"}))
        with make_client(s, []) as client:
            response = client.table("61111-0001", language="en")
    finally:
        s.close()
    assert response.body == body
    assert response.table_file_name == "61111-0001_1780239718101_en_flat.csv"
    lines = response.table_bytes.decode("utf-8-sig").splitlines()
    assert len(lines) == 7 and lines[1].endswith(";121.9;2020=100;PREIS1;Consumer price index")


# -- job mode -----------------------------------------------------------------------------------------------------


def test_a_table_too_large_is_ordered_as_a_job_polled_and_fetched_from_resultfile(service, waits):
    service.script("data/tablefile", json_answer("status_98_too_large.json"), json_answer("status_job_created.json"))
    service.script("catalogue/results", json_answer("results_pending.json"), json_answer("results_ready.json"))
    service.script("data/resultfile", zip_answer())
    with make_client(service, waits) as client:
        response = client.table("12411-01-01-4")

    assert response.job_id == "12411-01-01-4_001597503"
    assert response.table_bytes == EXCERPT.read_bytes()
    assert [s.path for s in service.seen] == ["data/tablefile", "data/tablefile", "catalogue/results",
                                              "catalogue/results", "data/resultfile"]
    assert [s.form["job"] for s in service.seen[:2]] == ["false", "true"]
    assert service.seen[2].form["selection"] == "12411-01-01-4_001597503"
    assert service.seen[4].form["name"] == "12411-01-01-4_001597503" and service.seen[4].form["format"] == "ffcsv"
    assert waits == [15.0]  # one poll interval while the job was running


def test_a_job_that_does_not_finish_in_time_is_a_clear_error(service, waits):
    service.script("data/tablefile", json_answer("status_98_too_large.json"), json_answer("status_job_created.json"))
    service.script("catalogue/results", json_answer("results_pending.json"))
    now = [0.0]

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    with make_client(service, waits, sleep=sleep, clock=lambda: now[0], job_timeout_seconds=60) as client:
        with pytest.raises(GenesisTableTooLarge, match=r"background job 12411-01-01-4_001597503 not finished after 60 s"):
            client.table("12411-01-01-4")
    assert waits == [15.0] * 4


def test_job_mode_can_be_refused(service, waits):
    service.script("data/tablefile", json_answer("status_98_too_large.json"))
    with make_client(service, waits) as client:
        with pytest.raises(GenesisTableTooLarge, match="too large for a direct download .*status 98"):
            client.table("12411-01-01-4", allow_job=False)


# -- transient failures -------------------------------------------------------------------------------------------


def test_a_timeout_is_retried_and_then_succeeds(service, waits):
    service.script("data/tablefile", Answer(200, b"", delay=1.5), zip_answer())
    with make_client(service, waits) as client:
        response = client.table("12411-01-01-4")
    assert response.table_bytes == EXCERPT.read_bytes()
    assert len(service.seen) == 2 and waits == [2.0]


def test_a_server_error_is_retried_with_backoff_and_then_succeeds(service, waits):
    service.script("data/tablefile", Answer(503, b"Service Unavailable", "text/plain"),
                   Answer(502, b"Bad Gateway", "text/plain"), zip_answer())
    with make_client(service, waits) as client:
        assert client.table("12411-01-01-4").table_bytes == EXCERPT.read_bytes()
    assert waits == [2.0, 4.0]


def test_rate_limits_are_respected_through_retry_after(service, waits):
    service.script("data/tablefile", Answer(429, b"", "text/plain", {"Retry-After": "7"}), zip_answer())
    with make_client(service, waits) as client:
        client.table("12411-01-01-4")
    assert waits == [7.0]


def test_a_retry_after_beyond_the_limit_is_not_waited_for(service, waits):
    service.script("data/tablefile", Answer(429, b"", "text/plain", {"Retry-After": "3600"}))
    with make_client(service, waits) as client:
        with pytest.raises(GenesisServiceBusy, match="asks to wait 3600 s"):
            client.table("12411-01-01-4")
    assert waits == [] and len(service.seen) == 1


def test_a_service_that_stays_down_ends_in_service_busy(service, waits):
    service.script("data/tablefile", Answer(502, b"Bad Gateway", "text/plain"))
    with make_client(service, waits) as client:
        with pytest.raises(GenesisServiceBusy, match=r"HTTP 502 from data/tablefile after 3 tries; try again later"):
            client.table("12411-01-01-4")
    assert len(service.seen) == 3 and waits == [2.0, 4.0]


# -- the service says no ------------------------------------------------------------------------------------------


def test_http_401_is_a_credentials_error_that_never_shows_them(service, waits):
    service.script("data/tablefile", Answer(401, (RESPONSES / "logincheck_refused.json").read_bytes()))
    with make_client(service, waits) as client:
        with pytest.raises(GenesisAuthError) as caught:
            client.table("12411-01-01-4")
    assert "credentials refused" in str(caught.value)
    assert USER not in str(caught.value) and PASSWORD not in str(caught.value) and waits == []


def test_logincheck_reads_the_refusal_the_service_sends_with_http_200(service, waits):
    service.script("helloworld/logincheck", json_answer("logincheck_refused.json"))
    with make_client(service, waits) as client:
        with pytest.raises(GenesisAuthError, match="login refused \\(Ein Fehler ist aufgetreten\\)"):
            client.logincheck()


def test_an_echoed_secret_is_masked_in_error_messages(service, waits):
    service.script("data/tablefile", Answer(400, f"bad request: username={USER}&password={PASSWORD}".encode(), "text/plain"))
    with make_client(service, waits) as client:
        with pytest.raises(GenesisResponseError) as caught:
            client.table("12411-01-01-4")
    assert "username=***&password=***" in str(caught.value)
    assert PASSWORD not in str(caught.value) and USER not in str(caught.value)


@pytest.mark.parametrize(
    ("fixture", "error", "message"),
    [
        ("status_90_table_not_found.json", GenesisTableNotFound, "unknown table .*status 90.*check the table code"),
        ("status_104_no_data.json", GenesisNoData, "no data for this selection .*status 104"),
    ],
)
def test_status_codes_of_the_service_become_specific_errors(service, waits, fixture, error, message):
    service.script("data/tablefile", json_answer(fixture))
    with make_client(service, waits) as client:
        with pytest.raises(error, match=message):
            client.table("12411-99-99-5")


def test_an_empty_table_is_no_data(service, waits):
    header_only = EXCERPT.read_bytes().split(b"\n", 1)[0] + b"\n"
    service.script("data/tablefile", zip_answer(header_only))
    with make_client(service, waits) as client:
        with pytest.raises(GenesisNoData, match="header but no values"):
            client.table("12411-01-01-4")


def test_special_values_come_through_as_flags_not_numbers(service, waits):
    service.script("data/tablefile", zip_answer())
    with make_client(service, waits) as client:
        response = client.table("12411-01-01-4")
    frame = parse_genesis_ffcsv(response.table_bytes, response.table_file_name)
    chemnitz = frame.filter(area_code="141", sex="male")  # a defunct Regierungsbezirk: "-" (nothing)
    assert chemnitz.select("value", "flag").rows() == [(None, "-")]


# -- damaged answers ----------------------------------------------------------------------------------------------


def test_a_malformed_json_answer_is_a_clear_error(service, waits):
    cut = (RESPONSES / "status_90_table_not_found.json").read_bytes()[:120]
    service.script("data/tablefile", Answer(200, cut))
    with make_client(service, waits) as client:
        with pytest.raises(GenesisResponseError, match="malformed JSON answer"):
            client.table("12411-01-01-4")


def test_a_truncated_zip_is_a_clear_error(service, waits):
    body = zip_answer().body
    service.script("data/tablefile", Answer(200, body[: len(body) // 2], "application/zip"))
    with make_client(service, waits) as client:
        with pytest.raises(GenesisResponseError, match=rf"damaged or truncated ZIP \({len(body) // 2} bytes received\)"):
            client.table("12411-01-01-4")


def test_an_empty_answer_is_a_clear_error(service, waits):
    service.script("data/tablefile", Answer(200, b"", "application/zip"))
    with make_client(service, waits) as client:
        with pytest.raises(GenesisResponseError, match="empty answer"):
            client.table("12411-01-01-4")


# -- credentials --------------------------------------------------------------------------------------------------


def test_credentials_come_from_the_environment_token_first_and_per_service_first():
    env = {"GENESIS_USERNAME": "general", "GENESIS_PASSWORD": "pw", "GENESIS_REGIONALSTATISTIK_TOKEN": "tok"}
    assert Credentials.from_env("regionalstatistik", env) == Credentials("tok", "")
    assert Credentials.from_env("destatis", env) == Credentials("general", "pw")
    assert Credentials.from_env("destatis", {}) is None
    assert repr(Credentials("general", "pw")) == "Credentials(***)"
