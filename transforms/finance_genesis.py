"""Parser for GENESIS table 71327-01-05-4 "Schulden der Kernhaushalte der Gemeinden und Gemeindeverbände"
(Regionalstatistik, Stichtag 31.12., Kreise und kreisfreie Städte) → the FINANCE frame of transforms/fiscal_stress.py.

The classic GENESIS CSV layout (title, header lines starting with ';', one line per area, footer) is cut by
transforms/genesis_csv.split_genesis_export, which also refuses truncated files and short lines. Each data line is
`Stichtag;AGS;name;` and seven values, which the header names (one header line per level of the column title):
debt per inhabitant (EUR), total debt (Tsd. EUR), and the split: non-public sector Wertpapierschulden, Kredite,
Kassenkredite; public sector Kredite, Kassenkredite (Tsd. EUR). The columns are found by these titles and units,
so a reordered table still parses and a different table is refused.

One FINANCE row per Kreis or kreisfreie Stadt (5-digit AGS) and year:
  year: of the Stichtag (31.12.); amounts in euros (the table's Tsd. EUR × 1000);
  debt_long_term = Wertpapierschulden + Kredite (non-public + public);
  liquiditaetskredite = Kassenkredite (non-public + public);
  population = total debt / debt per inhabitant, rounded. The table's per-inhabitant figure refers to the
    population on 30.06. of the year (NRW 2016: on 31.12.2015, per the footnote), not the 31.12. that the FINANCE
    contract names; and since the published figure is rounded to whole euros, the derived count is only as exact
    as that (±0.5 € of e.g. 4,799 € for Hagen is ±0.01 %, of 15 € for Jena ±3 %);
  population_basis: the census a footnote states ("… Grundlage des Zensus 2022"), else "Zensus 2011" for
    2011–2021 and "Zensus 2022" from 2022 on; before 2011 none (input_issue says so);
  tax_revenue, total_revenue, social_spending, total_spending, interest_paid, reserves: null, not in this table.
    As in parse_finance_csv, input_issue names the missing required amounts (reserves are optional), so revenue
    and spending indicators and the stress test come out flagged `finance_input_missing`, never computed from 0.

Special values (GENESIS Zeichenerklärung):
  '-' "nichts vorhanden" (exactly nothing): a debt component of 0. The office states it, so Hagen's '-' under
    public Kassenkredite is 0 €, and the sums need it. Where debt per inhabitant itself is '-', there is no debt
    to divide by: the amounts are 0 and population is null with an input_issue. In this table a row with '-' in
    every cell is an area code dissolved before the reference year (05354 Kreis Aachen, merged into the
    Städteregion Aachen in 2009), kept with that issue so the code stays visible.
  '.' unknown or secret, 'x' locked (not meaningful), '...' to follow later, '/' not reliable enough: null, and
    input_issue names the value and column; a sum with one such part is null as well.

Rows of other levels are aggregates or parts of a Kreis row and are dropped, counted in the log: 'DG'
(Deutschland), 2-digit Länder, 3-digit Regierungsbezirke / Statistische Regionen, and 8-digit Gemeinden that the
table lists under their Kreis (05334002 Aachen inside 05334 Städteregion Aachen, 03241001 Hannover inside the
Region Hannover), so that Kreis rows sum without double counting. The NRW sample file has 62 data lines: 8 are
dropped (DG, 05, five Regierungsbezirke, 05334002), 54 are kept.

Refused with BadInputError(file, row, reason): not a GENESIS export, another table, a header whose columns are
not the seven above (or in another unit), key columns other than date, code, name, a truncated file, a line with
too few or too many fields, an unreadable Stichtag or area code, an area and year twice.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from datetime import datetime

import polars as pl

from transforms.bad_input import BadInputError
from transforms.fiscal_stress import AMOUNT_COLUMNS, FINANCE_SCHEMA, OPTIONAL_COLUMNS
from transforms.genesis_csv import GenesisExport, split_genesis_export

log = logging.getLogger(__name__)

DEBT_TABLE = "71327-01-05-4"
KEY_COLUMNS = 3  # Stichtag, AGS, name

# column role → (how the header describes it: the sector cell or None, the kind cell or a title fragment; unit)
COLUMNS = {
    "per_inhabitant": (None, "je Einw", "EUR"),
    "total": (None, "insgesamt", "Tsd. EUR"),
    "non_public_securities": ("Schulden beim nicht-öffentlichen Bereich", "Wertpapierschulden", "Tsd. EUR"),
    "non_public_loans": ("Schulden beim nicht-öffentlichen Bereich", "Kredite", "Tsd. EUR"),
    "non_public_cash": ("Schulden beim nicht-öffentlichen Bereich", "Kassenkredite", "Tsd. EUR"),
    "public_loans": ("Schulden beim öffentlichen Bereich", "Kredite", "Tsd. EUR"),
    "public_cash": ("Schulden beim öffentlichen Bereich", "Kassenkredite", "Tsd. EUR"),
}
# readable names for input_issue
LABELS = {
    "per_inhabitant": "debt per inhabitant",
    "total": "total debt",
    "non_public_securities": "Wertpapierschulden (non-public)",
    "non_public_loans": "Kredite (non-public)",
    "non_public_cash": "Kassenkredite (non-public)",
    "public_loans": "Kredite (public)",
    "public_cash": "Kassenkredite (public)",
}
LONG_TERM = ("non_public_securities", "non_public_loans", "public_loans")
CASH_CREDIT = ("non_public_cash", "public_cash")

NOTHING = "-"
SPECIAL_VALUES = {
    ".": "unknown or secret",
    "x": "locked, not meaningful",
    "...": "to be published later",
    "/": "not reliable enough",
}
NOT_IN_TABLE = [c for c in AMOUNT_COLUMNS if c not in ("debt_long_term", "liquiditaetskredite")]
# the census a population count of a year is projected from, where no footnote states it
CENSUS_FROM = (("Zensus 2022", 2022), ("Zensus 2011", 2011))
# what a dropped area code is, by its length
AGGREGATE_LEVELS = {2: "Land", 3: "Regierungsbezirk / Statistische Region", 8: "Gemeinde inside its Kreis row"}


def _column_roles(export: GenesisExport, file: str) -> dict[str, int]:
    """Role → column index, from the header cells of each value column; every column must be one of COLUMNS."""
    header = export.header
    n_keys = next((j for j, c in enumerate(header[-1]) if c.strip()), 0)
    if n_keys != KEY_COLUMNS:
        raise BadInputError(file, export.first_data_row - 1,
                            f"expected {KEY_COLUMNS} key columns (Stichtag, area code, name), found {n_keys}")
    roles: dict[str, int] = {}
    for j in range(n_keys, len(header[0])):
        cells = [line[j].strip() for line in header]
        unit = cells[-1]
        role = next(
            (
                r for r, (sector, kind, expected_unit) in COLUMNS.items()
                if unit == expected_unit
                and (kind in cells if sector else any(kind in c for c in cells))
                and (sector is None or sector in cells)
            ),
            None,
        )
        if role is None:
            title = " / ".join(c for c in cells if c)
            raise BadInputError(file, export.first_header_row,
                                f"unknown column {j + 1} in the header: {title!r} (expected the debt columns of "
                                f"{DEBT_TABLE}: {', '.join(LABELS.values())})")
        if role in roles:
            raise BadInputError(file, export.first_header_row, f"column {j + 1}: {LABELS[role]} appears twice")
        roles[role] = j
    missing = [LABELS[r] for r in COLUMNS if r not in roles]
    if missing:
        raise BadInputError(file, export.first_header_row, f"missing column(s) in the header: {', '.join(missing)}")
    return roles


def _cell(text: str, role: str) -> tuple[float | None, str | None]:
    """One published cell → (value in the table's unit, issue). '-' is 0; the other special values are null."""
    text = text.strip()
    if text == NOTHING:
        return 0.0, None
    if text in SPECIAL_VALUES:
        return None, f"{LABELS[role]} is {text!r} ({SPECIAL_VALUES[text]})"
    if not text:
        return None, f"{LABELS[role]} is empty"
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        return None, f"{LABELS[role]} is not a number: {text!r}"
    if not math.isfinite(value) or value < 0:
        return None, f"{LABELS[role]} must be a finite amount ≥ 0, got {text!r}"
    return value, None


def _sum_in_euros(values: dict[str, float | None], parts: tuple[str, ...]) -> float | None:
    if any(values[p] is None for p in parts):
        return None
    return sum(values[p] for p in parts) * 1000


def _population(values: dict[str, float | None], cells: dict[str, str]) -> tuple[int | None, str | None]:
    per_inhabitant, total = values["per_inhabitant"], values["total"]
    if per_inhabitant is None or total is None:
        return None, "population cannot be derived without total debt and debt per inhabitant"
    if all(c.strip() == NOTHING for c in cells.values()):
        return None, ("every value is '-': an area code without a core budget in that year (dissolved before it); "
                      "population cannot be derived")
    if per_inhabitant == 0:
        return None, "population cannot be derived: debt per inhabitant is '-' (no debt to divide)"
    return round(total * 1000 / per_inhabitant), None


def _basis(stated: str | None, year: int) -> tuple[str | None, str | None]:
    if stated:
        return stated, None
    basis = next((b for b, first in CENSUS_FROM if year >= first), None)
    return basis, None if basis else f"no census basis known for {year} (the table's population before 2011 rests on older counts)"


def parse_genesis_municipal_debt(data: bytes, file: str) -> pl.DataFrame:
    """Bytes of a GENESIS 71327-01-05-4 export → the FINANCE frame (one row per Kreis / kreisfreie Stadt and year)."""
    export = split_genesis_export(data, file)
    if export.table_code != DEBT_TABLE:
        raise BadInputError(file, 1, f"table {export.table_code} is not the municipal debt table {DEBT_TABLE}")
    roles = _column_roles(export, file)

    rows = []
    dropped: Counter[str] = Counter()
    seen: dict[tuple[str, int], int] = {}
    for line, text in enumerate(export.data, start=export.first_data_row):
        fields = text.split(";")
        date_text, code, name = (f.strip() for f in fields[:KEY_COLUMNS])
        if code == "DG" or (code.isdigit() and len(code) in AGGREGATE_LEVELS):
            dropped["Deutschland" if code == "DG" else AGGREGATE_LEVELS[len(code)]] += 1
            continue
        if not (code.isdigit() and len(code) == 5):
            raise BadInputError(file, line, f"area code must be 'DG' or a 2-, 3-, 5- or 8-digit AGS, got {code!r}")
        try:
            year = datetime.strptime(date_text, "%d.%m.%Y").year
        except ValueError:
            raise BadInputError(file, line, f"Stichtag must be a date DD.MM.YYYY, got {date_text!r}") from None
        if (code, year) in seen:
            raise BadInputError(file, line, f"{code} {year} appears twice (first in line {seen[code, year]})")
        seen[code, year] = line

        cells = {role: fields[j] for role, j in roles.items()}
        parsed = {role: _cell(cells[role], role) for role in roles}
        values = {role: value for role, (value, _issue) in parsed.items()}
        issues = [issue for _value, issue in parsed.values() if issue]
        population, issue = _population(values, cells)
        basis, basis_issue = _basis(export.census_basis, year)
        issues += [issue, basis_issue,
                   f"{', '.join(c for c in NOT_IN_TABLE if c not in OPTIONAL_COLUMNS)}: not in table {DEBT_TABLE}"]
        rows.append({
            "area_code": code,
            "area_name": name,
            "year": year,
            "population": population,
            "population_basis": basis,
            **dict.fromkeys(NOT_IN_TABLE),
            "debt_long_term": _sum_in_euros(values, LONG_TERM),
            "liquiditaetskredite": _sum_in_euros(values, CASH_CREDIT),
            "input_issue": "; ".join(i for i in issues if i),
            "source_file": file,
            "source_row": line,
        })
    if dropped:
        log.info("%s: %d aggregate or Gemeinde row(s) dropped (%s), %d Kreis row(s) kept", file, sum(dropped.values()),
                 ", ".join(f"{n} {level}" for level, n in sorted(dropped.items())), len(rows))
    if not rows:
        raise BadInputError(file, None, "no Kreis or kreisfreie Stadt rows (5-digit AGS) in the table")
    return pl.DataFrame(rows, schema=FINANCE_SCHEMA, orient="row")
