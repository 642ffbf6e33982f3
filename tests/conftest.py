"""Shared fixtures. Prefect runs in local ephemeral mode with its state in a temporary folder; nothing is sent."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
GENESIS_2018 = SAMPLE / "statistics" / "12411-02-03-5-B_2018_kreise.csv"
ORDS_202303 = SAMPLE / "open-repair" / "anstiftung_202303.csv"
ORDS_202309 = SAMPLE / "open-repair" / "anstiftung_202309.csv"

_prefect_home = Path(tempfile.mkdtemp(prefix="prefect-home-"))
os.environ["PREFECT_HOME"] = str(_prefect_home)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["GX_ANALYTICS_ENABLED"] = "False"
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("DEMAND_MONITOR_HOME", None)
# a test key: the usage-log tests check that pseudonyms are keyed, never which key is used
os.environ["DEMAND_MONITOR_PSEUDONYM_KEY"] = "test-key-" + "0" * 32


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_prefect_home, ignore_errors=True)


TEST_CONVENTIONS = """
[age_conventions]
default = "regionalatlas"

[age_conventions.regionalatlas]
young = [0, 20]
working = [20, 65]
old_from = 65

[age_conventions.it_nrw]
young = [0, 20]
working = [20, 67]
old_from = 67

[exports]
min_count = 5

[inbox]
# the tests write files and run at once; tests/test_inbox.py covers the settling rule itself
stable_seconds = 0
"""


def write_config(directory: Path, sources: dict[str, tuple[str, str]], home: Path | None = None) -> Path:
    """A pipeline config in `directory` whose sources are {name: (format, glob relative to directory)}."""
    lines = ['root = "."', "[paths]", f'home = "{home or directory / "var"}"']
    for name, (fmt, pattern) in sources.items():
        lines += ["[[sources]]", f'name = "{name}"', f'format = "{fmt}"', f'files = "{pattern}"']
    path = directory / "pipeline.toml"
    path.write_text("\n".join(lines) + "\n" + TEST_CONVENTIONS, encoding="utf-8")
    return path


@pytest.fixture
def sample_inbox(tmp_path: Path) -> Path:
    """A copy of the sample data in a folder the test may add bad files to."""
    inbox = tmp_path / "inbox"
    (inbox / "statistics").mkdir(parents=True)
    (inbox / "open-repair").mkdir()
    shutil.copy(GENESIS_2018, inbox / "statistics")
    shutil.copy(ORDS_202303, inbox / "open-repair")
    shutil.copy(ORDS_202309, inbox / "open-repair")
    return inbox


@pytest.fixture
def sample_config(tmp_path: Path, sample_inbox: Path) -> Path:
    return write_config(
        tmp_path,
        {
            "population": ("genesis_csv", "inbox/statistics/*.csv"),
            "repair_cafes": ("open_repair", "inbox/open-repair/*.csv"),
        },
    )


@pytest.fixture(scope="session")
def prefect_backend():
    """One temporary Prefect server for the whole session (it takes seconds to start), stopped cleanly at the end."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture
def con(tmp_path: Path):
    """A new, migrated warehouse file for one test."""
    from warehouse.migrate import migrate
    from warehouse.publish import connect_build

    connection = connect_build(tmp_path / "w.duckdb")
    migrate(connection)
    yield connection
    connection.close()


def one(frame, indicator_id: str, **where) -> tuple:
    """(value, flag) of the single row of an indicator frame with the given column values (None: is null)."""
    import polars as pl

    rows = frame.filter(pl.col("indicator_id") == indicator_id)
    for column, wanted in where.items():
        rows = rows.filter(pl.col(column).is_null() if wanted is None else pl.col(column) == wanted)
    assert rows.height == 1, rows
    return rows["value"][0], rows["flag"][0]
