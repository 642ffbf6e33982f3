"""The static HTML report: German by default with an English twin, suppressed values shown as "< k", sections of
marts that do not exist yet marked as not available, and the page checked in a real headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from test_exports import HAGEN_OLD_AGE, RUN_ID, build_small_warehouse
from warehouse.exports import mart_exports
from warehouse.report import format_number, write_report


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("report")
    (directory / "centres.json").write_text('[{"05914": 7.47, "05954": 7.27}, {"05914": 51.36, "05954": 51.33}]')
    con = build_small_warehouse(directory / "w.duckdb")
    try:
        write_report(con, mart_exports(con, 5), directory, RUN_ID, directory / "centres.json", min_count=5)
    finally:
        con.close()
    return directory


def html(reports: Path, name: str = "report.html") -> str:
    return (reports / name).read_text(encoding="utf-8")


def test_numbers_are_written_the_way_each_language_writes_them():
    assert format_number(38.145, "de") == "38,1" and format_number(38.145, "en") == "38.1"
    assert format_number(26406, "de") == "26.406" and format_number(26406, "en") == "26,406"
    assert format_number(None, "de") == ""


def test_german_report_with_english_twin_linking_each_other(reports):
    german, english = html(reports), html(reports, "report.en.html")
    assert '<html lang="de">' in german and '<html lang="en">' in english
    assert 'href="report.en.html"' in german and 'href="report.html"' in english
    assert "Altenquotient" in german and "Old-age ratio" in english
    assert "38,1" in german and "38.1" in english


def test_report_is_self_contained(reports):
    page = html(reports)
    assert "<script" not in page
    assert not re.findall(r'(?:src|href)="(?!report\.)[^"]*"', page)  # only the link to the other language
    # ranking, map, repair cafés, usage over its two weeks; one reference date only: no area time series
    assert page.count("<svg") == 4


def test_missing_marts_are_marked_not_yet_available_and_present_ones_shown(reports):
    page = html(reports)
    for key in ("supply_gaps", "anomalies", "projection", "fiscal_stress"):
        assert re.search(rf'<section id="{key}" data-available="no">.*?noch nicht verfügbar', page, re.S), key
    assert '<section id="usage" data-available="yes">' in page


def test_suppressed_usage_values_show_as_less_than_k_and_never_as_numbers(reports):
    usage = re.search(r'<section id="usage".*?</section>', html(reports), re.S).group(0)
    table = re.search(r"<table>.*?</table>", usage, re.S).group(0)
    assert table.count("&lt; 5") == 2
    assert "50,0" not in table and "9,0" not in table  # the exact values behind the suppressed rows
    assert "40,0" in table
    assert "distinct_visitors" not in usage
    chart_labels = re.findall(r'aria-label="([^"]*repeat_visitor_share[^"]*)"', usage)
    assert chart_labels and all("repeat_visitor_share: 50" not in label for label in chart_labels)


def test_freshness_names_quarantine_counts_per_source(reports):
    page = html(reports)
    population = re.search(r'<tr data-source="population">.*?</tr>', page, re.S).group(0)
    assert 'data-field="rows_quarantined">2<' in population and 'data-field="quarantine_total">2<' in population
    assert 'class="status error"' in population  # a blocking expectation failed
    repairs = re.search(r'<tr data-source="repair_cafes">.*?</tr>', page, re.S).group(0)
    assert 'data-field="files_quarantined">1<' in repairs and "Datei abgewiesen" in repairs
    assert "Gebiete mit Werten, aber ohne konfigurierte Geometrie (nicht in der Karte): 16056" in page


# --- in a real browser -------------------------------------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                  "--no-first-run", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        reason = "chromium and chromedriver are needed: apt-get install -y chromium chromium-driver"
        if os.environ.get("CI") == "true":
            pytest.fail(f"in CI the browser test must run; {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    yield session
    session.quit()


@pytest.mark.parametrize("name", ["report.html", "report.en.html"])
def test_report_renders_in_chromium_without_console_errors(browser, reports, name):
    from selenium.webdriver.common.by import By

    browser.get((reports / name).as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    errors = [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    charts = browser.find_elements(By.CSS_SELECTOR, "figure.chart svg")
    assert len(charts) == 4
    for chart in charts:
        assert chart.size["width"] > 200 and chart.size["height"] > 80
        assert chart.find_elements(By.CSS_SELECTOR, "path, rect, circle, line")  # marks were drawn


def test_key_numbers_in_the_browser_match_the_warehouse(browser, reports, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get((reports / "report.html").as_uri())
    cell = browser.find_element(By.CSS_SELECTOR, 'td[data-area="05914"][data-key="old_age_ratio"]')
    with build_small_warehouse(tmp_path / "w.duckdb") as con:
        (warehouse_value,) = con.sql("""SELECT value FROM marts.demography_indicators WHERE area_code = '05914'
                                        AND indicator_id = 'old_age_ratio' AND convention = 'regionalatlas'
                                        AND sex = 'total'""").fetchall()[0]
    assert warehouse_value == pytest.approx(HAGEN_OLD_AGE)
    assert cell.text == format_number(warehouse_value, "de") == "38,1"
    eisenach = browser.find_element(By.CSS_SELECTOR, 'td[data-area="16056"][data-key="old_age_ratio"]')
    assert eisenach.text == "42,5"
    assert browser.find_element(By.ID, "run-id").text == RUN_ID
