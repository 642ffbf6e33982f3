"""The static nightly HTML report: data freshness and validation per source, key indicators per area with charts,
and the sections of marts that other steps add (usage, supply gaps, anomalies, projection, fiscal stress) as soon
as their tables exist.

The report opens from the file system without a server or network: charts are Vega-Lite specs built with Altair and
rendered to inline SVG by vl-convert, and the page has no script and no external link. It shows what the exports
publish (warehouse.exports.mart_exports), so a suppressed value is suppressed here too, shown as "< k".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import altair as alt
import duckdb
import jinja2
import polars as pl
import vl_convert

from transforms.suppression import SUPPRESSED
from warehouse.exports import MartExport, all_latest_area_values, data_vintages, mart_tables, read_area_points

TEMPLATES = Path(__file__).with_name("report_templates")
LANGUAGES = ("de", "en")
LEAD_INDICATOR = "old_age_ratio"  # the area indicator the ranking and the map show, when present
RANKING_SIZE = 15  # areas at either end of the ranking; all areas are in the table below it
OPTIONAL_ROWS = 200  # rows of an optional mart shown in its table; the export has all of them
TRAFFIC_LIGHTS = {"green", "amber", "yellow", "red"}
# The reading a chart of a mart shows, for the columns the mart has: whole facilities, monthly, both sexes.
CHART_READING = {"breakdown": "total", "period_type": "month", "sex": "total"}


@dataclass(frozen=True)
class Section:
    """A part of the report backed by a mart another step builds; shown once one of its tables exists."""

    key: str
    tables: tuple[str, ...]  # candidate table names, first present wins
    title_de: str
    title_en: str


OPTIONAL_SECTIONS = (
    Section("usage", ("marts.usage_visitors",), "Nutzung der Einrichtungen", "Facility usage"),
    Section("rooms", ("marts.usage_rooms",), "Raumnutzung", "Room use"),
    Section("supply_gaps", ("marts.coverage_indicators",), "Versorgung und Versorgungslücken", "Supply and supply gaps"),
    Section("anomalies", ("marts.demand_anomalies",), "Auffälligkeiten der Nachfrage", "Demand anomalies"),
    Section("projection", ("marts.demand_projection",), "Bedarfsprojektion", "Demand projection"),
    Section("fiscal_stress", ("marts.fiscal_stress",), "Haushalts-Stresstest (Ampel)", "Fiscal stress test (traffic lights)"),
)

TEXT = {
    "de": {
        "title": "Nächtlicher Bericht Daseinsvorsorge",
        "run": "Lauf", "generated": "erstellt", "other_language": "English version",
        "freshness": "Datenstand und Prüfung je Quelle",
        "source": "Quelle", "last_loaded": "zuletzt geladen", "file": "Datei", "this_run": "in diesem Lauf",
        "files_quarantined": "Dateien in Quarantäne", "rows_quarantined": "Zeilen in Quarantäne (Lauf)",
        "quarantine_total": "Zeilen in Quarantäne (gesamt)", "expectations": "Prüfregeln",
        "failed_blocking": "verletzt (blockierend)", "failed_warning": "verletzt (Warnung)", "status": "Status",
        "vintage": "Datenstand", "never": "nie",
        "status_ok": "in Ordnung", "status_warning": "Zeilen abgewiesen", "status_error": "Datei abgewiesen",
        "indicators": "Kennzahlen je Gebiet",
        "reading": "Lesart: Geschlecht insgesamt, Alterskonvention „{convention}“, jeweils letzter Stichtag.",
        "area": "Gebiet", "area_code": "AGS", "period": "Stichtag",
        "ranking": "Rangfolge: {name}, die {n} höchsten und niedrigsten Werte",
        "map": "Karte: {name} (Kreismittelpunkte)",
        "no_geometry": "Gebiete mit Werten, aber ohne konfigurierte Geometrie (nicht in der Karte): {codes}",
        "no_points": "Keine Gebietsgeometrien konfiguriert ([geo] area_points): keine Karte.",
        "time_series": "Zeitreihe: {name}",
        "single_period": "Nur ein Stichtag geladen ({period}): noch keine Zeitreihe.",
        "repair": "Repair-Cafés",
        "repair_chart": "Reparaturversuche je Monat, Summe über alle Repair-Cafés mit veröffentlichtem Wert",
        "repair_note": "{n} Werte beruhen auf weniger als {k} Gegenständen und sind gesperrt; sie fehlen in der Summe.",
        "not_available": "noch nicht verfügbar",
        "suppressed": "gesperrt: weniger als {k} Personen bzw. Datensätze",
        "suppressed_legend": "„< {k}“ = gesperrt: der Wert beruht auf weniger als {k} Personen bzw. Datensätzen "
                             "(im Warehouse für berechtigte Analysen vorhanden).",
        "rows_shown": "{shown} von {total} Zeilen; alle in der Exportdatei {file}.",
        "missing": "fehlt",
        "value": "Wert", "month": "Monat", "repairs": "Reparaturversuche", "subject": "Einheit",
    },
    "en": {
        "title": "Nightly public-services report",
        "run": "Run", "generated": "generated", "other_language": "Deutsche Fassung",
        "freshness": "Data freshness and validation per source",
        "source": "Source", "last_loaded": "last loaded", "file": "File", "this_run": "in this run",
        "files_quarantined": "Files quarantined", "rows_quarantined": "Rows quarantined (run)",
        "quarantine_total": "Rows quarantined (all)", "expectations": "Expectations",
        "failed_blocking": "failed (blocking)", "failed_warning": "failed (warning)", "status": "Status",
        "vintage": "Data vintage", "never": "never",
        "status_ok": "ok", "status_warning": "rows refused", "status_error": "file refused",
        "indicators": "Key indicators per area",
        "reading": "Reading: sex total, age convention “{convention}”, latest reference date each.",
        "area": "Area", "area_code": "AGS", "period": "Reference date",
        "ranking": "Ranking: {name}, the {n} highest and lowest values",
        "map": "Map: {name} (centres of the Kreise)",
        "no_geometry": "Areas with values but no configured geometry (not on the map): {codes}",
        "no_points": "No area geometries configured ([geo] area_points): no map.",
        "time_series": "Time series: {name}",
        "single_period": "Only one reference date loaded ({period}): no time series yet.",
        "repair": "Repair cafés",
        "repair_chart": "Repairs per month, sum over all repair cafés with a published value",
        "repair_note": "{n} values rest on fewer than {k} items and are suppressed; they are left out of the sum.",
        "not_available": "not yet available",
        "suppressed": "suppressed: fewer than {k} persons or records",
        "suppressed_legend": "“< {k}” = suppressed: the value rests on fewer than {k} persons or records "
                             "(kept in the warehouse for authorised analysts).",
        "rows_shown": "{shown} of {total} rows; all of them in the export file {file}.",
        "missing": "missing",
        "value": "Value", "month": "Month", "repairs": "Repairs", "subject": "Subject",
    },
}

SOURCES = """
WITH loads AS (SELECT * FROM audit.load_manifest),
validated AS (
    SELECT m.source_name, v.*
    FROM audit.validation_results v JOIN (SELECT DISTINCT source_name, sha256 FROM loads) m USING (sha256)
),
-- the expectations of the latest run that validated a delivery of the source (run ids sort by time)
validation AS (
    SELECT source_name, count(*) AS expectations,
           count(*) FILTER (WHERE NOT success AND blocking) AS failed_blocking,
           count(*) FILTER (WHERE NOT success AND NOT blocking) AS failed_warning
    FROM validated
    WHERE (source_name, run_id) IN (SELECT source_name, max(run_id) FROM validated GROUP BY source_name)
    GROUP BY source_name
),
quarantined AS (SELECT source_name, count(*) AS rows_all FROM audit.quarantine WHERE row_number IS NOT NULL GROUP BY ALL)
SELECT l.source_name,
       max(l.recorded_at) FILTER (WHERE l.status = 'loaded') AS last_loaded_at,
       arg_max(l.file_name, l.recorded_at) FILTER (WHERE l.status = 'loaded') AS last_loaded_file,
       string_agg(DISTINCT l.status, ', ' ORDER BY l.status) FILTER (WHERE l.run_id = $run_id) AS this_run,
       count(*) FILTER (WHERE l.run_id = $run_id AND l.status = 'quarantined') AS files_quarantined,
       coalesce(sum(l.rows_quarantined) FILTER (WHERE l.run_id = $run_id), 0) AS rows_quarantined,
       coalesce(any_value(q.rows_all), 0) AS quarantine_total,
       any_value(v.expectations) AS expectations,
       any_value(v.failed_blocking) AS failed_blocking,
       any_value(v.failed_warning) AS failed_warning
FROM loads l LEFT JOIN validation v USING (source_name) LEFT JOIN quarantined q USING (source_name)
GROUP BY l.source_name
ORDER BY l.source_name
"""


def format_number(value, language: str, decimals: int = 1) -> str:
    """A number as people in that language write it: 38,1 and 1.234 in German, 38.1 and 1,234 in English."""
    if value is None:
        return ""
    text = f"{value:,.{decimals}f}" if isinstance(value, float) else f"{value:,}"
    return text.translate(str.maketrans(",.", ".,")) if language == "de" else text


def chart_svg(chart: alt.TopLevelMixin, language: str) -> str:
    """Render a chart to inline SVG, axes formatted in the report's language."""
    return vl_convert.vegalite_to_svg(chart.to_json(), format_locale="de-DE" if language == "de" else "en-US")


def _catalogue_names(con: duckdb.DuckDBPyConnection, language: str) -> dict[str, str]:
    return dict(con.sql(f"SELECT id, name_{language} FROM marts.indicator_catalogue").fetchall())


def _source_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict]:
    rows = con.sql(SOURCES, params={"run_id": run_id}).pl().to_dicts()
    for row in rows:
        row["status"] = ("error" if row["files_quarantined"] or row["failed_blocking"]
                         else "warning" if row["rows_quarantined"] else "ok")
    return rows


def _ranking_chart(latest: pl.DataFrame, name: str, text: dict) -> alt.Chart:
    ranked = latest.filter(pl.col("value").is_not_null()).sort("value", descending=True)
    shown = pl.concat([ranked.head(RANKING_SIZE), ranked.tail(RANKING_SIZE)]).unique("area_code", keep="first")
    shown = shown.with_columns(label=pl.concat_str("area_name", pl.lit(" ("), "area_code", pl.lit(")")))
    return alt.Chart(shown.select("label", "value")).mark_bar().encode(
        x=alt.X("value:Q", title=name),
        y=alt.Y("label:N", sort="-x", title=text["area"]),
    ).properties(width=420)


def _map_chart(latest: pl.DataFrame, points: pl.DataFrame, name: str) -> alt.Chart:
    located = latest.filter(pl.col("value").is_not_null()).join(points, on="area_code", how="inner")
    return alt.Chart(located.select("lon", "lat", "value")).mark_circle(size=40, opacity=0.85).encode(
        longitude="lon:Q", latitude="lat:Q", color=alt.Color("value:Q", title=name, scale=alt.Scale(scheme="viridis")),
    ).project(type="mercator").properties(width=420, height=520)


def _time_series_chart(frame: pl.DataFrame, x: str, y: str, x_title: str, y_title: str,
                       colour: str | None = None) -> alt.Chart:
    encoding = {"x": alt.X(f"{x}:T", title=x_title), "y": alt.Y(f"{y}:Q", title=y_title)}
    if colour:
        encoding["color"] = alt.Color(f"{colour}:N", title=None)
    return alt.Chart(frame).mark_line(point=True).encode(**encoding).properties(width=620, height=220)


def _area_section(exports: list[MartExport], area_points: Path | None, default_convention: str,
                  names: dict[str, str], text: dict, language: str) -> dict:
    latest = all_latest_area_values(exports, default_convention)
    keys = sorted(latest["key"].unique(), key=lambda k: (k != LEAD_INDICATOR, k))
    section: dict = {"indicators": [{"key": k, "name": names.get(k, k)} for k in keys], "rows": [], "charts": [], "notes": []}
    if latest.is_empty():
        return section
    for (code,), rows in latest.group_by("area_code", maintain_order=False):
        cells = {r["key"]: r for r in rows.iter_rows(named=True)}
        section["rows"].append({"area_code": code, "area_name": rows["area_name"][0],
                                "period": rows["period"].max(), "cells": cells})
    section["rows"].sort(key=lambda r: r["area_code"])

    lead = keys[0]
    lead_name = names.get(lead, lead)
    lead_values = latest.filter(pl.col("key") == lead)
    section["charts"].append({"title": text["ranking"].format(name=lead_name, n=RANKING_SIZE),
                              "svg": chart_svg(_ranking_chart(lead_values, lead_name, text), language)})
    if area_points is None:
        section["notes"].append(text["no_points"])
    else:
        points = read_area_points(area_points)
        section["charts"].append({"title": text["map"].format(name=lead_name),
                                  "svg": chart_svg(_map_chart(lead_values, points, lead_name), language)})
        missing = sorted(set(latest["area_code"]) - set(points["area_code"]))
        if missing:
            section["notes"].append(text["no_geometry"].format(codes=", ".join(missing)))
    section["time_series"] = _area_time_series(exports, lead, lead_name, default_convention, text, language)
    return section


def _area_time_series(exports: list[MartExport], lead: str, lead_name: str, default_convention: str,
                      text: dict, language: str) -> dict:
    """The lead indicator over time for every area, or a note while only one reference date is loaded."""
    frames = [e.frame for e in exports if e.subject_type == "area" and lead in set(e.frame["indicator_id"])]
    series = pl.concat([f.select("indicator_id", "convention", "sex", "subject_id", "period", "value") for f in frames])
    series = series.filter((pl.col("indicator_id") == lead) & (pl.col("sex") == "total")
                           & (pl.col("convention").is_null() | (pl.col("convention") == default_convention)))
    periods = series["period"].unique().sort()
    if len(periods) < 2:
        return {"note": text["single_period"].format(period=format_date(str(periods[0]), language) if len(periods) else "–")}
    chart = _time_series_chart(series.with_columns(pl.col("period").cast(pl.String)), "period", "value",
                               text["period"], lead_name, colour="subject_id")
    return {"title": text["time_series"].format(name=lead_name), "svg": chart_svg(chart, language)}


def format_date(value: str, language: str) -> str:
    """An ISO date (periods are text once marts are combined) as written in the language: 31.12.2018 in German.
    Periods that are not dates (a year of the finance statistics, a projection year) stay as they are."""
    parts = str(value)[:10].split("-")
    if len(parts) != 3:
        return str(value)
    year, month, day = parts
    return f"{day}.{month}.{year}" if language == "de" else str(value)[:10]


def _repair_section(export: MartExport, min_count: int, text: dict, language: str) -> dict:
    repairs = export.frame.filter(pl.col("indicator_id") == "repairs")
    monthly = (repairs.filter(pl.col("value").is_not_null()).group_by("period").agg(value=pl.col("value").sum())
               .sort("period").with_columns(pl.col("period").cast(pl.String)))
    chart = _time_series_chart(monthly, "period", "value", text["month"], text["repairs"])
    suppressed = export.frame.filter(pl.col("flag") == SUPPRESSED).height
    return {"title": text["repair_chart"], "svg": chart_svg(chart, language),
            "note": text["repair_note"].format(n=format_number(suppressed, language), k=min_count)}


def _optional_sections(exports: list[MartExport], present: set[str], text: dict, language: str) -> list[dict]:
    by_table = {e.table: e for e in exports}
    sections = []
    for section in OPTIONAL_SECTIONS:
        title = section.title_de if language == "de" else section.title_en
        # a mart that exists but has no rows (no projection configured, no usage logs yet) has nothing to show either
        table = next((t for t in section.tables if t in present and by_table[t].frame.height), None)
        if table is None:
            sections.append({"key": section.key, "title": title, "available": False})
            continue
        export = by_table[table]
        frame = export.frame.with_columns(pl.col(pl.Date, pl.Datetime).cast(pl.String))
        if "flag" in frame.columns:  # rows with a value first: the table shows only the first rows
            frame = frame.sort(pl.col("flag").is_not_null(), maintain_order=True)
        sections.append({
            "key": section.key, "title": title, "available": True, "columns": frame.columns,
            "rows": frame.head(OPTIONAL_ROWS).to_dicts(),
            "rows_note": text["rows_shown"].format(shown=min(OPTIONAL_ROWS, frame.height), total=frame.height,
                                                   file=f"{export.name}.csv"),
            "chart": _subject_series(export, text, language),
        })
    return sections


CHART_SUBJECTS = 12


def _subject_series(export: MartExport, text: dict, language: str) -> dict | None:
    """For a long-form mart with more than one period: its first indicator over time, one line per subject."""
    if export.form != "long" or export.frame.is_empty():
        return None
    reading = export.frame.filter(*(pl.col(c) == v for c, v in CHART_READING.items() if c in export.frame.columns))
    if reading.is_empty():
        return None
    first = reading["indicator_id"].sort()[0]
    series = reading.filter(pl.col("indicator_id") == first)
    if "convention" in series.columns and series["convention"].n_unique() > 1:
        # one reading per line: a projection has variants × scenarios, a coverage mart facility types
        series = series.filter(pl.col("convention") == series["convention"].drop_nulls().sort()[0])
    if series["period"].n_unique() < 2:
        return None
    # a legible chart: the subjects with the largest values; the table and the export have them all
    top = (series.group_by("subject_id").agg(pl.col("value").max()).sort("value", descending=True, nulls_last=True)
           .head(CHART_SUBJECTS)["subject_id"])
    series = series.filter(pl.col("subject_id").is_in(top.implode())).with_columns(pl.col("period").cast(pl.String))
    chart = _time_series_chart(series.select("period", "value", "subject_id"), "period", "value", text["period"],
                               first, colour="subject_id")
    return {"title": text["time_series"].format(name=first), "svg": chart_svg(chart, language)}


def _environment(language: str, min_count: int) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["num"] = lambda value, decimals=1: format_number(value, language, decimals)
    env.filters["date"] = lambda value: format_date(value, language)
    env.globals |= {"SUPPRESSED": SUPPRESSED, "TRAFFIC_LIGHTS": TRAFFIC_LIGHTS, "min_count": min_count}
    return env


def render_report(con: duckdb.DuckDBPyConnection, exports: list[MartExport], run_id: str, area_points: Path | None,
                  min_count: int, language: str, default_convention: str, other_language_file: str) -> str:
    """The report of one run as an HTML page in `language` ("de" or "en"), from the marts as exported."""
    if language not in LANGUAGES:
        raise ValueError(f"report language {language!r} is not one of {LANGUAGES}")
    text = TEXT[language]
    names = _catalogue_names(con, language)
    repair = next((e for e in exports if e.table == "marts.repair_cafe_monthly"), None)
    page = {
        "language": language, "text": text, "run_id": run_id,
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "other_language_file": other_language_file,
        "sources": _source_rows(con, run_id),
        "vintages": data_vintages(con),
        "convention": default_convention,
        "areas": _area_section(exports, area_points, default_convention, names, text, language),
        "repair": _repair_section(repair, min_count, text, language) if repair is not None else None,
        "optional": _optional_sections(exports, set(mart_tables(con)), text, language),
    }
    return _environment(language, min_count).get_template("report.html.j2").render(**page)


def write_report(con: duckdb.DuckDBPyConnection, exports: list[MartExport], directory: Path, run_id: str,
                 area_points: Path | None, min_count: int, language: str = "de",
                 default_convention: str = "regionalatlas") -> Path:
    """Write report.html in `language` and the other language beside it (report.en.html or report.de.html) into
    `directory` (the export staging directory, so that the report is published with the exports). exports:
    warehouse.exports.mart_exports, as the exports were written from them."""
    other = next(lang for lang in LANGUAGES if lang != language)
    files = {language: "report.html", other: f"report.{other}.html"}
    for lang, name in files.items():
        page = render_report(con, exports, run_id, area_points, min_count, lang, default_convention,
                             other_language_file=files[other if lang == language else language])
        (directory / name).write_text(page, encoding="utf-8")
    return directory / files[language]
