"""Indicator exports for dashboards: per mart Parquet and CSV in long and wide form, the catalogue, a GeoJSON of
the areas, a manifest; `latest` switched atomically once the run has published.

Every table of the `marts` schema is exported, so a mart that another part of the pipeline adds shows up in the
exports without a change here. A mart that follows the shared long form (indicator_id, a subject column, a period
column, value, flag, …) is written in one common long layout and, when its subject is an area, also wide (one row per
area, one column per indicator); any other mart is written as stored.

CSV files are UTF-8 with a header, ',' as delimiter and '.' as decimal point (stated in the manifest).
Values from usage logs that rest on fewer than `min_count` visitors (or repair items) are suppressed in every export;
the warehouse keeps the exact values for authorised analysts.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import polars as pl

from transforms.accessibility import parse_area_points
from transforms.bad_input import BadInputError
from transforms.suppression import SUPPRESSED, suppress_small_counts
from warehouse.fingerprint import file_sha256

LONG_COLUMNS = ["indicator_id", "subject_type", "subject_id", "subject_name", "period", "convention", "sex",
                "value", "unit", "flag", "numerator", "denominator"]

# The column that counts the persons or records behind a value, in the order they are looked for: usage marts carry
# distinct_visitors (shared contract), the repair-café mart item_count. A mart with one of them is suppressed.
SUPPRESSION_COUNT_COLUMNS = ("distinct_visitors", "item_count")
# what makes rows of a usage mart parts of one whole: everything but the category
PARTS_OF = ("facility_id", "room_id", "period", "period_start", "indicator_id", "breakdown")

# Subject and period columns of the shared long form, most specific first: a room mart also names its facility,
# and a facility mart may also name its district.
SUBJECT_COLUMNS = (("room_id", "room"), ("facility_id", "facility"), ("group_identifier", "repair_group"),
                   ("area_code", "area"))
SUBJECT_NAME_COLUMNS = ("area_name", "facility_name", "room_name", "name")
PERIOD_COLUMNS = ("period_start", "reference_date", "month", "week", "period", "year", "visit_date")
# A mart column whose name the common layout uses for something else keeps its content under another name: the usage
# marts call their granularity (week | month) `period` and its first day `period_start`.
RENAMED_EXTRAS = {"period": "period_type"}

# File names published before the mart got its table name; dashboards read these names.
EXPORT_NAMES = {"repair_cafe_monthly": "repair_cafe_indicators"}

MARTS_NOT_EXPORTED = ("indicator_catalogue",)  # written separately as the catalogue

CSV_DIALECT = {"encoding": "utf-8", "delimiter": ",", "decimal_point": "."}


@dataclass(frozen=True)
class MartExport:
    """One mart as it is published: suppressed, in the common long form where the mart follows the contract."""

    table: str
    name: str
    frame: pl.DataFrame
    form: str  # "long" (common layout) or "as_stored"
    suppression_column: str | None
    suppressed_rows: int

    @property
    def subject_type(self) -> str | None:
        if self.form != "long" or self.frame.is_empty():
            return None
        return self.frame["subject_type"][0]


# --- pure transforms over frames -------------------------------------------------------------------------------

def suppress(frame: pl.DataFrame, min_count: int) -> tuple[pl.DataFrame, str | None]:
    """Suppress the rows of a mart that rest on fewer than min_count visitors or records; returns the frame and the
    count column it keyed on (None: the mart carries no count and is not derived from usage logs)."""
    column = next((c for c in SUPPRESSION_COUNT_COLUMNS if c in frame.columns), None)
    if column is None:
        return frame, None
    # A missing count is treated as zero: a value nobody can vouch for is not published. Rows broken down by
    # category (offer, age band, home district) are parts of the facility's total: one suppressed part alone could
    # be recomputed from the total, so a second one goes too.
    parts_of = [c for c in PARTS_OF if c in frame.columns] if "category" in frame.columns else None
    return suppress_small_counts(frame, column, min_count, parts_of), column


def long_form(frame: pl.DataFrame) -> pl.DataFrame | None:
    """The common long layout (LONG_COLUMNS, then the mart's other columns) of a mart in the shared long form, or
    None when the mart lacks indicator_id, value, a subject or a period column."""
    subject = next(((c, kind) for c, kind in SUBJECT_COLUMNS if c in frame.columns), None)
    period = next((c for c in PERIOD_COLUMNS if c in frame.columns), None)
    if subject is None or period is None or not {"indicator_id", "value"} <= set(frame.columns):
        return None
    subject_column, subject_type = subject
    name = next((c for c in SUBJECT_NAME_COLUMNS if c in frame.columns and c != subject_column), None)

    def column_or(column: str, default, dtype) -> pl.Expr:
        return (pl.col(column) if column in frame.columns else pl.lit(default, dtype=dtype)).alias(column)

    common = [
        pl.col("indicator_id"),
        pl.lit(subject_type).alias("subject_type"),
        pl.col(subject_column).cast(pl.String).alias("subject_id"),
        (pl.col(name).cast(pl.String) if name else pl.lit(None, dtype=pl.String)).alias("subject_name"),
        pl.col(period).alias("period"),
        column_or("convention", None, pl.String),
        column_or("sex", "total", pl.String),
        pl.col("value").cast(pl.Float64),
        column_or("unit", None, pl.String),
        column_or("flag", None, pl.String),
        column_or("numerator", None, pl.Float64),
        column_or("denominator", None, pl.Float64),
    ]
    used = {"indicator_id", subject_column, period, "value", "convention", "sex", "unit", "flag", "numerator",
            "denominator", *([name] if name else [])}
    extras = [pl.col(c).alias(RENAMED_EXTRAS.get(c, f"mart_{c}") if c in LONG_COLUMNS else c)
              for c in frame.columns if c not in used]
    # Polars does not keep row order through joins and group_by; exports are sorted so that files are reproducible.
    return frame.select(*common, *extras).sort(
        ["indicator_id", "convention", "subject_id", "period", "sex"], nulls_last=True
    )


def indicator_key() -> pl.Expr:
    """Column name of an indicator in wide and GeoJSON form: its id, with the age convention where it has one."""
    return (
        pl.when(pl.col("convention").is_null())
        .then(pl.col("indicator_id"))
        .otherwise(pl.concat_str("indicator_id", pl.lit("__"), "convention"))
        .alias("key")
    )


def wide_by_area(long: pl.DataFrame) -> pl.DataFrame:
    """One row per area, period and sex; a value column per indicator (and convention) and beside it a `__flag`
    column, so that a suppressed or missing value stays marked in the wide form too."""
    keyed = long.with_columns(indicator_key())
    index = ["subject_id", "subject_name", "period", "sex"]
    values = keyed.pivot(on="key", index=index, values="value", aggregate_function=None, sort_columns=True)
    flags = keyed.pivot(on="key", index=index, values="flag", aggregate_function=None, sort_columns=True)
    flags = flags.rename({c: f"{c}__flag" for c in flags.columns if c not in index})
    wide = values.join(flags, on=index, how="left", nulls_equal=True)
    ordered = [c for key in sorted(keyed["key"].unique()) for c in (key, f"{key}__flag")]
    return wide.select(*index, *ordered).rename({"subject_id": "area_code", "subject_name": "area_name"}).sort(
        "area_code", "period", "sex"
    )


def latest_area_values(long: pl.DataFrame, default_convention: str) -> pl.DataFrame:
    """The latest value of every indicator per area in the default reading (sex total, default convention or none):
    area_code, area_name, key, period, value, flag, unit."""
    reading = long.filter(
        (pl.col("sex") == "total")
        & (pl.col("convention").is_null() | (pl.col("convention") == default_convention))
    )
    return (
        reading.filter(pl.col("period") == pl.col("period").max().over("indicator_id", "subject_id"))
        .select(area_code="subject_id", area_name="subject_name", key=pl.col("indicator_id"), period="period",
                value="value", flag="flag", unit="unit")
        .sort("area_code", "key")
    )


def read_area_points(path: Path) -> pl.DataFrame:
    """Area centres (area_code, lon, lat) from the configured file [geo] area_points."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise BadInputError(str(path), None, f"cannot read area points: {err}") from None
    return parse_area_points(data, str(path))


def area_feature_collection(latest: pl.DataFrame, points: pl.DataFrame) -> tuple[dict, list[str]]:
    """GeoJSON FeatureCollection of Point features with the latest values as flat properties (`<key>`,
    `<key>__flag`, `<key>__period`), and the area codes that have values but no point."""
    located = latest.join(points, on="area_code", how="inner")
    missing = sorted(set(latest["area_code"]) - set(points["area_code"]))
    features = []
    for (code,), rows in located.sort("area_code", "key").group_by("area_code", maintain_order=True):
        properties = {"area_code": code, "area_name": rows["area_name"][0]}
        for row in rows.iter_rows(named=True):
            properties[row["key"]] = row["value"]
            properties[f"{row['key']}__flag"] = row["flag"]
            properties[f"{row['key']}__period"] = str(row["period"])
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [rows["lon"][0], rows["lat"][0]]},
            "properties": properties,
        })
    return {"type": "FeatureCollection", "features": features}, missing


# --- reading the warehouse --------------------------------------------------------------------------------------

def mart_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The mart tables present in this warehouse (views are derived from them and not exported twice)."""
    rows = con.sql(
        """SELECT table_name FROM information_schema.tables
           WHERE table_schema = 'marts' AND table_type = 'BASE TABLE' ORDER BY table_name"""
    ).fetchall()
    return [f"marts.{name}" for (name,) in rows if name not in MARTS_NOT_EXPORTED]


def mart_exports(con: duckdb.DuckDBPyConnection, min_count: int) -> list[MartExport]:
    """Every mart of the warehouse as published: suppressed, in the common long form where it follows the contract.
    The report reads these too, so that it shows exactly what the exports publish."""
    result = []
    for table in mart_tables(con):
        stored = con.sql(f"SELECT * FROM {table}").pl()
        suppressed, column = suppress(stored, min_count)
        count = stored.filter(pl.col(column).fill_null(0) < min_count).height if column else 0
        long = long_form(suppressed)
        bare = table.removeprefix("marts.")
        result.append(MartExport(
            table=table,
            name=EXPORT_NAMES.get(bare, bare),
            frame=long if long is not None else suppressed.sort(pl.all(), nulls_last=True),
            form="long" if long is not None else "as_stored",
            suppression_column=column,
            suppressed_rows=count,
        ))
    return result


def all_latest_area_values(exports: list[MartExport], default_convention: str) -> pl.DataFrame:
    """latest_area_values over every area mart, for the GeoJSON and the report's map."""
    frames = [latest_area_values(e.frame, default_convention) for e in exports if e.subject_type == "area"]
    frames = [f.with_columns(pl.col("period").cast(pl.String)) for f in frames]
    return pl.concat(frames) if frames else pl.DataFrame(
        schema={"area_code": pl.String, "area_name": pl.String, "key": pl.String, "period": pl.String,
                "value": pl.Float64, "flag": pl.String, "unit": pl.String}
    )


# --- writing ----------------------------------------------------------------------------------------------------

def _entry(path: Path, rows: int) -> dict[str, dict]:
    return {path.name: {"rows": rows, "sha256": file_sha256(path), "bytes": path.stat().st_size}}


def _write(frame: pl.DataFrame, directory: Path, name: str) -> dict[str, dict]:
    parquet, csv = directory / f"{name}.parquet", directory / f"{name}.csv"
    frame.write_parquet(parquet)
    frame.write_csv(csv, separator=CSV_DIALECT["delimiter"], float_precision=6)
    return _entry(parquet, frame.height) | _entry(csv, frame.height)


def _write_json(data, path: Path, rows: int) -> dict[str, dict]:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    return _entry(path, rows)


def write_exports(con: duckdb.DuckDBPyConnection, exports: list[MartExport], exports_root: Path, run_id: str,
                  run_date: str, min_count: int, vintages: dict[str, str], area_points: Path | None = None,
                  default_convention: str = "regionalatlas") -> Path:
    """Write the export set of this run (exports: mart_exports of the warehouse) into exports/.staging-<run_id>/;
    `publish_exports` moves it into place."""
    staging = exports_root / f".staging-{run_id}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    files: dict[str, dict] = {}
    marts: dict[str, dict] = {}
    for export in exports:
        files |= _write(export.frame, staging, export.name)
        written = [f"{export.name}.parquet", f"{export.name}.csv"]
        if export.subject_type == "area":
            files |= _write(wide_by_area(export.frame), staging, f"{export.name}_wide")
            written += [f"{export.name}_wide.parquet", f"{export.name}_wide.csv"]
        marts[export.name] = {"table": export.table, "form": export.form, "files": written,
                              "suppression_column": export.suppression_column,
                              "suppressed_rows": export.suppressed_rows}

    catalogue = con.sql("SELECT * FROM marts.indicator_catalogue ORDER BY id").pl()
    files |= _write(catalogue, staging, "indicator_catalogue")
    files |= _write_json(catalogue.to_dicts(), staging / "indicator_catalogue.json", catalogue.height)

    geo: dict = {"area_points": str(area_points) if area_points else None}
    if area_points is not None:
        collection, missing = area_feature_collection(
            all_latest_area_values(exports, default_convention), read_area_points(area_points)
        )
        files |= _write_json(collection, staging / "areas.geojson", len(collection["features"]))
        geo |= {"file": "areas.geojson", "areas_without_geometry": missing}

    manifest = {
        "run_id": run_id,
        "run_date": run_date,
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "csv": CSV_DIALECT,
        "suppression": {"min_count": min_count, "flag": SUPPRESSED, "count_columns": list(SUPPRESSION_COUNT_COLUMNS),
                        "applies_to": sorted(name for name, m in marts.items() if m["suppression_column"])},
        "default_reading": {"sex": "total", "convention": default_convention},
        "data_vintage": vintages,
        "marts": marts,
        "geo": geo,
        "files": files,
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return staging


def add_to_manifest(staging: Path, names: list[str]) -> None:
    """Checksums of files written into the export set after the manifest (the report reads the finished exports)."""
    path = staging / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for name in names:
        file = staging / name
        manifest["files"][name] = {"sha256": file_sha256(file), "bytes": file.stat().st_size}
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")


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
