"""Parser for the classic GENESIS / Regionalstatistik table export ("Werteabruf" CSV).

Layout: title lines; header lines whose leading key cells are empty (one line per column variable, e.g. sex and
age group); one data line per area (keys: optional date, area code, area name; then the values); a footer that
starts with a line of underscores and carries footnotes, the copyright line and "Stand: …". The footer is the only
proof that the file arrived whole, so a file without it is refused as truncated.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date, datetime

import polars as pl

from transforms.bad_input import BadInputError
from transforms.genesis_codes import SEX_CODES, parse_age_label
from transforms.population_frame import finish_population_frame
from transforms.text_decoding import decode_utf8_or_latin1

_DATE = re.compile(r"(\d{2})\.(\d{2})\.(\d{4})")
_TABLE_CODE = re.compile(r"^GENESIS-Tabelle:\s*([0-9A-Za-z-]+)")
_FOOTER_START = "__________"


def _cells(line: str) -> list[str]:
    return line.rstrip("\r").split(";")


def _parse_date(text: str) -> date | None:
    m = _DATE.search(text)
    return datetime.strptime(m.group(0), "%d.%m.%Y").date() if m else None


@dataclass(frozen=True)
class GenesisExport:
    """A classic export cut into its parts; rows are 1-based line numbers, as an editor shows them."""

    table_code: str
    title: list[str]  # the lines before the header
    header: list[list[str]]  # the header lines, split into cells
    first_header_row: int
    data: list[str]  # the data lines, each with as many fields as the header
    first_data_row: int
    footnotes: str  # the footer, from its line of underscores to "Stand: …"

    @property
    def census_basis(self) -> str | None:
        """"Zensus 2011" or "Zensus 2022" where a footnote states the census the figures rest on."""
        basis = re.search(r"Grundlage des\s+Zensus (\d{4})", self.footnotes)
        return f"Zensus {basis.group(1)}" if basis else None


def split_genesis_export(data: bytes, file: str) -> GenesisExport:
    """Bytes of a classic GENESIS export → its title, header, data and footer lines; refuses what is not one."""
    text, _encoding = decode_utf8_or_latin1(data, file)
    lines = text.split("\n")
    m = _TABLE_CODE.match(lines[0])
    if not m:
        raise BadInputError(file, 1, f"not a GENESIS table export: first line is {lines[0][:60]!r}, expected 'GENESIS-Tabelle: <code>'")

    first_header = next((i for i, line in enumerate(lines) if line.startswith(";")), None)
    if first_header is None:
        raise BadInputError(file, None, "no header lines (lines starting with ';') found")
    header_end = first_header
    while header_end < len(lines) and lines[header_end].startswith(";"):
        header_end += 1
    header_lines = [_cells(line) for line in lines[first_header:header_end]]
    n_fields = len(header_lines[0])

    footer = next((i for i in range(header_end, len(lines)) if lines[i].startswith(_FOOTER_START)), None)
    if footer is None:
        last = max(i for i, line in enumerate(lines) if line.strip()) + 1
        raise BadInputError(file, last, "truncated file: the footer (a line of underscores, copyright, 'Stand:') is missing")
    data_lines = [line.rstrip("\r") for line in lines[header_end:footer]]
    for i, line in enumerate(data_lines, start=header_end + 1):
        found = len(_cells(line))
        if found != n_fields:
            raise BadInputError(file, i, f"expected {n_fields} fields separated by ';', found {found}")
    return GenesisExport(
        table_code=m.group(1),
        title=lines[:first_header],
        header=header_lines,
        first_header_row=first_header + 1,
        data=data_lines,
        first_data_row=header_end + 1,
        footnotes="\n".join(lines[footer:]),
    )


def _column_meta(header_lines: list[list[str]], n_keys: int, file: str, first_header_row: int) -> pl.DataFrame:
    """One row per value column: its sex and age group, read from whichever header line carries them."""
    n_cols = len(header_lines[0])
    sex: list[str | None] = [None] * n_cols
    age: list[tuple[str, int, int | None, bool] | None] = [None] * n_cols
    for offset, cells in enumerate(header_lines):
        labels = [c.strip() for c in cells[n_keys:]]
        if all(label.lower() in SEX_CODES for label in labels):
            for j, label in enumerate(labels, start=n_keys):
                sex[j] = SEX_CODES[label.lower()]
            continue
        try:
            parsed = [parse_age_label(label) for label in labels]
        except ValueError:
            continue  # a descriptive line such as "Altersgruppen (unter 1 bis 75 u.m.)"
        for j, (label, p) in enumerate(zip(labels, parsed), start=n_keys):
            age[j] = (label, *p)
    if all(a is None for a in age[n_keys:]):
        raise BadInputError(file, first_header_row, "no header line with age groups found (is this a population table by age?)")
    return pl.DataFrame(
        {
            "column": [f"column_{j + 1}" for j in range(n_keys, n_cols)],
            "sex": [sex[j] or "total" for j in range(n_keys, n_cols)],
            "age_label": [age[j][0] for j in range(n_keys, n_cols)],
            "age_from": [age[j][1] for j in range(n_keys, n_cols)],
            "age_to": [age[j][2] for j in range(n_keys, n_cols)],
            "is_total": [age[j][3] for j in range(n_keys, n_cols)],
        },
        schema={"column": pl.String, "sex": pl.String, "age_label": pl.String, "age_from": pl.Int32,
                "age_to": pl.Int32, "is_total": pl.Boolean},
    )


def parse_genesis_csv(data: bytes, file: str) -> pl.DataFrame:
    """Bytes of a classic GENESIS export → the long population frame (see population_frame.POPULATION_SCHEMA)."""
    export = split_genesis_export(data, file)
    title_date = next((d for line in export.title if "Stichtag" in line and (d := _parse_date(line))), None)
    header_lines = export.header
    n_fields = len(header_lines[0])
    n_keys = next((j for j, c in enumerate(header_lines[-1]) if c.strip()), 0)
    meta = _column_meta(header_lines, n_keys, file, export.first_header_row)
    header_end = export.first_data_row - 1  # the last header line, 1-based

    wide = pl.read_csv(
        io.StringIO("\n".join(export.data)),
        separator=";",
        has_header=False,
        infer_schema=False,
        quote_char=None,
        new_columns=[f"column_{j + 1}" for j in range(n_fields)],
    ).with_row_index("source_row", offset=export.first_data_row)

    key_names = ["area_code", "area_name"] if n_keys == 2 else ["reference_date_text", "area_code", "area_name"]
    if n_keys not in (2, 3):
        raise BadInputError(file, header_end, f"expected 2 or 3 key columns (date, code, name), found {n_keys}")
    wide = wide.rename({f"column_{j + 1}": name for j, name in enumerate(key_names)})
    if n_keys == 2:
        if title_date is None:
            raise BadInputError(file, None, "no reference date: neither a 'Stichtag' title line nor a date column")
        wide = wide.with_columns(reference_date=pl.lit(title_date))
    else:
        wide = wide.with_columns(reference_date=pl.col("reference_date_text").str.to_date("%d.%m.%Y", strict=False)).drop(
            "reference_date_text"
        )

    long = (
        wide.unpivot(index=["source_row", "area_code", "area_name", "reference_date"], variable_name="column", value_name="cell")
        .join(meta, on="column", how="left")
        .drop("column")
        .with_columns(
            table_code=pl.lit(export.table_code),
            population_basis=pl.lit(export.census_basis, dtype=pl.String),
        )
    )
    return finish_population_frame(long, file)
