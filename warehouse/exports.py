"""Indicator exports for dashboards: Parquet and CSV in long form, the catalogue, a manifest; `latest` switched
atomically once the run has published.

CSV files are UTF-8 with a header, ',' as delimiter and '.' as decimal point (stated in the manifest).
Values from usage logs that rest on fewer than `min_count` records are suppressed in every export.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import polars as pl

from transforms.suppression import suppress_small_counts

LONG_COLUMNS = ["indicator_id", "subject_type", "subject_id", "subject_name", "period", "convention", "sex",
                "value", "unit", "flag", "numerator", "denominator"]

DEMOGRAPHY_LONG = """
SELECT indicator_id, 'area' AS subject_type, area_code AS subject_id, area_name AS subject_name,
       reference_date AS period, convention, sex, value, unit, flag, numerator, denominator,
       area_level, population_basis, table_code
FROM marts.demography_indicators
ORDER BY indicator_id, convention NULLS LAST, subject_id, period, sex
"""

REPAIR_LONG = """
SELECT indicator_id, 'repair_group' AS subject_type, group_identifier AS subject_id, NULL::VARCHAR AS subject_name,
       month AS period, NULL::VARCHAR AS convention, 'total' AS sex, value, unit, flag, numerator, denominator,
       item_count
FROM marts.repair_cafe_monthly
ORDER BY indicator_id, subject_id, period
"""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write(frame: pl.DataFrame, directory: Path, name: str) -> dict[str, dict]:
    parquet, csv = directory / f"{name}.parquet", directory / f"{name}.csv"
    frame.write_parquet(parquet)
    frame.write_csv(csv, separator=",", float_precision=6)
    return {
        p.name: {"rows": frame.height, "sha256": _sha256(p), "bytes": p.stat().st_size} for p in (parquet, csv)
    }


def write_exports(con: duckdb.DuckDBPyConnection, exports_root: Path, run_id: str, run_date: str, min_count: int,
                  vintages: dict[str, str]) -> Path:
    """Write the export set of this run into exports/.staging-<run_id>/; `publish_exports` moves it into place."""
    staging = exports_root / f".staging-{run_id}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    files: dict[str, dict] = {}
    files |= _write(con.sql(DEMOGRAPHY_LONG).pl(), staging, "demography_indicators")
    repairs = suppress_small_counts(con.sql(REPAIR_LONG).pl(), "item_count", min_count)
    files |= _write(repairs, staging, "repair_cafe_indicators")
    catalogue = con.sql("SELECT * FROM marts.indicator_catalogue ORDER BY id").pl()
    files |= _write(catalogue, staging, "indicator_catalogue")
    (staging / "indicator_catalogue.json").write_text(
        json.dumps(catalogue.to_dicts(), ensure_ascii=False, indent=2), encoding="utf-8"
    )
    files["indicator_catalogue.json"] = {"rows": catalogue.height, "sha256": _sha256(staging / "indicator_catalogue.json")}
    manifest = {
        "run_id": run_id,
        "run_date": run_date,
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "csv": {"encoding": "utf-8", "delimiter": ",", "decimal_point": "."},
        "suppression": {"min_count": min_count, "flag": "suppressed_small_count",
                        "applies_to": ["repair_cafe_indicators"]},
        "data_vintage": vintages,
        "files": files,
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return staging


def publish_exports(staging: Path, exports_root: Path, run_date: str) -> Path:
    """Move the export set to exports/<run date>/ and point exports/latest at it in one atomic rename."""
    final = exports_root / run_date
    if final.exists():
        old = exports_root / f".replaced-{staging.name}"
        os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old)
    else:
        os.replace(staging, final)
    link = exports_root / f".latest-{staging.name}"
    link.unlink(missing_ok=True)
    link.symlink_to(final.name, target_is_directory=True)
    os.replace(link, exports_root / "latest")
    return final


def discard_exports(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)


def data_vintages(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Newest reference date per statistics table and newest applied delivery per usage-log provider."""
    vintages = {
        f"statistics:{table}": str(latest)
        for table, latest in con.sql(
            "SELECT table_code, max(reference_date) FROM staging.population GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    }
    vintages |= {
        f"open_repair:{provider}": delivery
        for provider, delivery in con.sql(
            "SELECT data_provider, max(delivery) FROM audit.open_repair_deliveries GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    }
    return vintages
