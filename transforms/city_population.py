"""Parser for population files of city open-data portals (CSV or XLSX), declared by a column mapping.

Cities publish population by Stadtbezirk or Stadtteil and age group in two layouts: wide (one row per district,
one column per age group, e.g. Köln "Einwohner nach Altersgruppen") and long (one row per district, age group and
possibly sex). No two cities name their columns alike, so the source's `[sources.options]` in config/pipeline.toml
says which column is what (docs/sources.md, "City open-data files"), and this module turns either layout into the
long population frame (population_frame.POPULATION_SCHEMA).

District numbers are unique only within their city, so the area code is the city's AGS, a hyphen and the district
number: "05315-101" is Köln (Kreis 05315), Stadtteil 101 Altstadt-Süd. It can never be mistaken for an AGS, and its
prefix says which Kreis or Gemeinde the district lies in.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from datetime import date, datetime

import fastexcel
import polars as pl

from transforms.bad_input import BadInputError
from transforms.genesis_codes import SEX_CODES, SPECIAL_VALUES, parse_age_label
from transforms.population_frame import finish_population_frame
from transforms.text_decoding import decode_utf8_strict, line_of_offset, refuse_binary

_CITY_AGS = re.compile(r"^(?:\d{5}|\d{8})$")
_DISTRICT_NUMBER = re.compile(r"^[0-9A-Za-z]+$")
_SEX_WORDS = {**{k.lower(): v for k, v in SEX_CODES.items()}, "gesamt": "total", "zusammen": "total",
              "maennlich": "male", "m": "male", "w": "female", "total": "total", "male": "male", "female": "female"}
_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%Y-%m-%d %H:%M:%S")  # the last one is how a date cell of XLSX reads

# Age-group wordings of city tables that the GENESIS vocabulary does not cover. A hyphen range counts completed
# years inclusively ("0 - 2" next to "3 - 5" in Köln, "0-5" next to "6-10"), so its exclusive upper bound is b + 1.
_YEARS = r"(?:\s*(?:Jahre|Jahren|J\.))?"
_CITY_AGE_PATTERNS: tuple[tuple[re.Pattern, object], ...] = (
    (re.compile(rf"^(\d+)\s*-\s*(\d+){_YEARS}$"), lambda m: (int(m[1]), int(m[2]) + 1)),
    (re.compile(rf"^(\d+) bis (\d+){_YEARS}$"), lambda m: (int(m[1]), int(m[2]) + 1)),
    (re.compile(rf"^(\d+) bis unter (\d+){_YEARS}$"), lambda m: (int(m[1]), int(m[2]))),
    (re.compile(rf"^unter (\d+){_YEARS}$", re.IGNORECASE), lambda m: (0, int(m[1]))),
    (re.compile(r"^(\d+)\s*\+$"), lambda m: (int(m[1]), None)),
    (re.compile(rf"^(\d+){_YEARS} (?:u\.|und) (?:älter|aelter|mehr|darüber)$"), lambda m: (int(m[1]), None)),
    (re.compile(rf"^ab (\d+){_YEARS}$", re.IGNORECASE), lambda m: (int(m[1]), None)),
)


def parse_city_age_label(label: str) -> tuple[int, int | None, bool]:
    """Age-group label of a city table → (lower bound, exclusive upper bound or None if open, is_total).

    The GENESIS wordings ("6 bis unter 10 Jahre", "75 Jahre und mehr", "Insgesamt") first, then the city ones:
    "0 - 2", "0-5" (completed years, inclusive), "0 bis unter 3", "unter 18", "65+", "80 u. älter", "ab 65",
    "gesamt".
    """
    text = " ".join(label.replace("–", "-").replace("—", "-").split())
    if text.lower() in ("gesamt", "zusammen"):
        return 0, None, True
    try:
        return parse_age_label(text)
    except ValueError:
        pass
    for pattern, bounds in _CITY_AGE_PATTERNS:
        if m := pattern.match(text):
            lower, upper = bounds(m)
            if upper is not None and upper <= lower:
                break
            return lower, upper, False
    raise ValueError(f"unknown age-group label {label!r}")


class _Options:
    """The column mapping of one source, checked before the file is read. A mistake here is reported as the
    file's refusal ("source options: …"): the file is kept in quarantine and is read again once the entry is
    fixed."""

    def __init__(self, options: dict, file: str):
        self.file = file
        self.raw = options
        self.format = options.get("format") or ("xlsx" if file.lower().endswith((".xlsx", ".xlsm")) else "csv")
        if self.format not in ("csv", "xlsx"):
            self.fail(f"format = {self.format!r}; expected \"csv\" or \"xlsx\"")
        self.table_code = self.text("table_code")
        self.area_code = self.text("area_code")
        self.area_name = self.text("area_name", required=False)
        self.area_prefix = self.text("area_prefix")
        if not _CITY_AGS.match(self.area_prefix):
            self.fail(f"area_prefix = {self.area_prefix!r} is not the city's AGS (5-digit Kreis code of a kreisfreie "
                      "Stadt such as \"05315\", else the 8-digit Gemeinde code)")
        self.area_level = self.text("area_level", required=False) or "district"
        self.header_row = options.get("header_row", 1)
        if not isinstance(self.header_row, int) or self.header_row < 1:
            self.fail(f"header_row = {self.header_row!r}; expected the 1-based number of the header line")

        self.reference_date = self.text("reference_date", required=False)
        value = options.get("reference_date_value")
        if (self.reference_date is None) == (value is None):
            self.fail("give exactly one of reference_date = \"<column>\" and reference_date_value = \"YYYY-MM-DD\"")
        self.reference_date_value: date | None = None
        if value is not None:
            self.reference_date_value = value if isinstance(value, date) else _parse_date(str(value), ())
            if self.reference_date_value is None:
                self.fail(f"reference_date_value = {value!r} is not a date (YYYY-MM-DD)")
        self.date_formats = tuple(options.get("reference_date_formats", ())) + _DATE_FORMATS

        self.sex = self.text("sex", required=False)
        self.sex_values = {**_SEX_WORDS, **{str(k).strip().lower(): v for k, v in options.get("sex_values", {}).items()}}
        if bad := sorted({v for v in self.sex_values.values()} - {"total", "male", "female"}):
            self.fail(f"sex_values may map to \"total\", \"male\" or \"female\" only, not {bad}")
        special = options.get("special_values", {})
        if bad := sorted(v for v in special.values() if v not in SPECIAL_VALUES):
            self.fail(f"special_values must map to an official special value ({' '.join(SPECIAL_VALUES)}), not {bad}")
        self.special_values: dict[str, str] = dict(special)
        self.thousands = self.text("thousands", required=False)
        self.population_basis = self.text("population_basis", required=False)

        self.age_group = self.text("age_group", required=False)
        self.value = self.text("value", required=False)
        age_columns = options.get("age_columns", {})
        self.age_columns: dict[str, str] = (  # label → column
            {str(label): str(column) for label, column in age_columns.items()}
            if isinstance(age_columns, dict)
            else {str(column).strip(): str(column) for column in age_columns}
        )
        self.age_columns_pattern = self.text("age_columns_pattern", required=False)
        long = self.age_group is not None or self.value is not None
        wide = bool(self.age_columns) or self.age_columns_pattern is not None
        if long == wide:
            self.fail("declare either the long layout (age_group and value columns) or the wide layout "
                      "(age_columns and/or age_columns_pattern)")
        if long and (self.age_group is None or self.value is None):
            self.fail("the long layout needs both age_group = \"<column>\" and value = \"<column>\"")
        self.layout = "long" if long else "wide"

    def text(self, key: str, required: bool = True) -> str | None:
        value = self.raw.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{key} = \"…\" is required" if value is None else f"{key} = {value!r} must be a non-empty string")
        return value.strip()

    def fail(self, reason: str):
        raise BadInputError(self.file, None, f"source options: {reason}")


def _parse_date(text: str, formats: tuple[str, ...]) -> date | None:
    for fmt in formats or _DATE_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    return None


def _decode(data: bytes, file: str, encoding: str) -> str:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise BadInputError(file, None, f"source options: unknown encoding {encoding!r} (utf-8 or cp1252)") from None
    if name == "utf-8":
        return decode_utf8_strict(data, file)
    refuse_binary(data, file)
    # Windows-1252 decodes almost any bytes, so a UTF-8 file declared cp1252 would load with "Ã¼" for "ü".
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            raise BadInputError(file, None, f"declared encoding {encoding!r}, but the file is UTF-8 with non-ASCII "
                                             "characters (would read 'ü' as 'Ã¼'): set encoding = \"utf-8\"")
    try:
        return data.decode(name)
    except UnicodeDecodeError as err:
        raise BadInputError(file, line_of_offset(data, err.start),
                            f"not valid {encoding} (byte 0x{data[err.start]:02X} at offset {err.start})") from None


def _csv_records(data: bytes, opts: _Options) -> list[tuple[int, list[str]]]:
    """(line number, fields) of the header and every non-blank record from the header line on."""
    file = opts.file
    text = _decode(data, file, opts.raw.get("encoding", "utf-8"))
    if not text.endswith("\n"):
        raise BadInputError(file, None, "truncated file: it does not end with a line break, the last line may be cut off")
    skipped = opts.header_row - 1
    body = text.split("\n", skipped)[-1] if skipped else text
    delimiter = opts.raw.get("delimiter", ";")
    if len(delimiter) != 1:
        opts.fail(f"delimiter = {delimiter!r} must be one character")
    reader = csv.reader(io.StringIO(body, newline=""), delimiter=delimiter)
    records, line = [], skipped
    try:
        for fields in reader:
            if any(f.strip() for f in fields):
                records.append((line + 1, fields))
            line = skipped + reader.line_num
    except csv.Error as err:
        raise BadInputError(file, line + 1, f"not readable as CSV ({err})") from None
    return records


def _xlsx_records(data: bytes, opts: _Options) -> list[tuple[int, list[str]]]:
    file = opts.file
    if not data:
        raise BadInputError(file, None, "empty file: no header and no data")
    try:
        workbook = fastexcel.read_excel(data)
    except fastexcel.FastExcelError as err:
        raise BadInputError(file, None, f"not a readable XLSX workbook ({str(err).splitlines()[0]})") from None
    sheet = opts.raw.get("sheet") or workbook.sheet_names[0]
    if sheet not in workbook.sheet_names:
        raise BadInputError(file, None, f"no sheet {sheet!r}; sheets found: {', '.join(workbook.sheet_names)}")
    rows = workbook.load_sheet(sheet, header_row=None, dtypes="string").to_polars().rows()
    return [
        (number, ["" if cell is None else cell for cell in row])
        for number, row in enumerate(rows, start=1)
        if number >= opts.header_row and any(cell is not None and cell.strip() for cell in row)
    ]


def _table(records: list[tuple[int, list[str]]], opts: _Options) -> tuple[pl.DataFrame, int]:
    """Header and records → a frame of text columns named by the stripped header, with source_row."""
    file = opts.file
    if not records:
        raise BadInputError(file, None, "empty file: no header and no data")
    header_line, header = records[0]
    names = [name.strip() or f"column_{j + 1}" for j, name in enumerate(header)]
    if duplicates := sorted({n for n in names if names.count(n) > 1}):
        raise BadInputError(file, header_line, f"column name(s) {', '.join(map(repr, duplicates))} appear more than once")
    if len(records) == 1:
        raise BadInputError(file, None, "header only, no data rows")
    for line, fields in records[1:]:
        if len(fields) != len(names):
            raise BadInputError(file, line, f"expected {len(names)} fields, found {len(fields)}")
    frame = pl.DataFrame(
        [fields for _, fields in records[1:]], schema={n: pl.String for n in names}, orient="row"
    ).with_columns(source_row=pl.Series([line for line, _ in records[1:]], dtype=pl.Int64))
    return frame, header_line


def _column(frame: pl.DataFrame, name: str, key: str, opts: _Options, header_line: int) -> str:
    if name not in frame.columns:
        found = ", ".join(repr(c) for c in frame.columns if c != "source_row")
        raise BadInputError(opts.file, header_line, f"column {name!r} (options.{key}) not found; columns found: {found}")
    return name


def _first_row(frame: pl.DataFrame, mask: pl.Expr) -> int:
    return frame.filter(mask)["source_row"].min()


def _value_columns(frame: pl.DataFrame, opts: _Options, header_line: int) -> dict[str, str]:
    """Wide layout: column → age label, from the declared labels and the columns whose header matches the pattern."""
    columns = {_column(frame, column, "age_columns", opts, header_line): label for label, column in opts.age_columns.items()}
    if opts.age_columns_pattern is not None:
        try:
            pattern = re.compile(opts.age_columns_pattern)
        except re.error as err:
            opts.fail(f"age_columns_pattern is not a regular expression ({err})")
        matched = [c for c in frame.columns if c != "source_row" and pattern.search(c)]
        if not matched:
            found = ", ".join(repr(c) for c in frame.columns if c != "source_row")
            raise BadInputError(opts.file, header_line, f"no column matches age_columns_pattern "
                                                        f"{opts.age_columns_pattern!r}; columns found: {found}")
        columns.update({c: c for c in matched if c not in columns})
    return columns


def _age_bounds(labels: pl.DataFrame, opts: _Options) -> pl.DataFrame:
    """(age_label, row where it first occurs) → age_label with its bounds; an unknown label refuses the file."""
    parsed = []
    for label, row in labels.sort("row").rows():
        try:
            parsed.append((label, *parse_city_age_label(label)))
        except ValueError:
            raise BadInputError(opts.file, row, f"unknown age-group label {label!r}: expected e.g. '0 - 2', '0-5', "
                                                "'6 bis unter 10', 'unter 18', '65+', '80 u. älter', 'Insgesamt'") from None
    return pl.DataFrame(parsed, schema={"age_label": pl.String, "age_from": pl.Int32, "age_to": pl.Int32,
                                        "is_total": pl.Boolean}, orient="row")


def parse_city_population(data: bytes, file: str, options: dict) -> pl.DataFrame:
    """Bytes of a city population file and its column mapping → the long population frame."""
    opts = _Options(options, file)
    records = _xlsx_records(data, opts) if opts.format == "xlsx" else _csv_records(data, opts)
    frame, header_line = _table(records, opts)

    def column(key: str) -> str:
        return _column(frame, getattr(opts, key), key, opts, header_line)

    keys = {
        "source_row": pl.col("source_row"),
        "district": pl.col(column("area_code")).str.strip_chars(),
        "area_name": pl.col(column("area_name")) if opts.area_name else pl.lit(None, dtype=pl.String),
        "date_text": pl.col(column("reference_date")).str.strip_chars() if opts.reference_date else pl.lit(""),
        "sex_text": pl.col(column("sex")).str.strip_chars().str.to_lowercase() if opts.sex else pl.lit("total"),
    }
    if opts.layout == "long":
        long = frame.select(**keys, age_label=pl.col(column("age_group")).str.strip_chars(), cell=pl.col(column("value")))
    else:
        value_columns = _value_columns(frame, opts, header_line)
        long = (
            frame.select(*[e.alias(k) for k, e in keys.items()], *value_columns)
            .unpivot(index=list(keys), on=list(value_columns), variable_name="column", value_name="cell")
            .with_columns(age_label=pl.col("column").replace_strict(value_columns, return_dtype=pl.String))
            .drop("column")
        )

    bad_district = ~pl.col("district").fill_null("").str.contains(_DISTRICT_NUMBER.pattern)
    if long.filter(bad_district).height:
        row = _first_row(long, bad_district)
        raise BadInputError(file, row, f"district number in column {opts.area_code!r} is empty or not letters and "
                                       "digits only")

    if opts.reference_date_value is not None:
        dates = {"": opts.reference_date_value}
    else:
        dates = {text: _parse_date(text, opts.date_formats) for text in long["date_text"].unique().to_list()}
        if unparsed := [text for text, parsed in dates.items() if parsed is None]:
            row = _first_row(long, pl.col("date_text").is_in(unparsed))
            text = long.filter(pl.col("source_row") == row)["date_text"][0]
            raise BadInputError(file, row, f"reference date {text!r} in column {opts.reference_date!r} is not a date "
                                           f"(formats tried: {', '.join(opts.date_formats)})")

    unknown_sex = ~pl.col("sex_text").is_in(list(opts.sex_values))
    if long.filter(unknown_sex).height:
        row = _first_row(long, unknown_sex)
        value = long.filter(pl.col("source_row") == row)["sex_text"][0]
        raise BadInputError(file, row, f"sex {value!r} in column {opts.sex!r} is not known; map it with "
                                       f"sex_values = {{ \"{value}\" = \"total\" | \"male\" | \"female\" }}")

    # an unknown label is reported where it stands: in a data row (long) or in the header line (wide)
    label_rows = (
        long.group_by("age_label").agg(row=pl.col("source_row").min())
        if opts.layout == "long"
        else pl.DataFrame({"age_label": list(value_columns.values()), "row": header_line})
    )
    ages = _age_bounds(label_rows, opts)
    cell = pl.col("cell").fill_null("").str.strip_chars()
    if opts.thousands:
        grouped = rf"^\d{{1,3}}(?:{re.escape(opts.thousands)}\d{{3}})+$"
        cell = pl.when(cell.str.contains(grouped)).then(cell.str.replace_all(opts.thousands, "", literal=True)).otherwise(cell)
    if opts.special_values:
        cell = cell.replace(opts.special_values)
    long = long.join(ages, on="age_label", how="left").select(
        "source_row", "age_label", "age_from", "age_to", "is_total", "area_name",
        table_code=pl.lit(opts.table_code),
        area_code=pl.lit(opts.area_prefix + "-") + pl.col("district"),
        reference_date=pl.col("date_text").replace_strict(dates, return_dtype=pl.Date),
        sex=pl.col("sex_text").replace_strict(opts.sex_values, return_dtype=pl.String),
        cell=cell,
        population_basis=pl.lit(opts.population_basis, dtype=pl.String),
    )
    # finish_population_frame derives the level from the length of an AGS; a district code is not one.
    return finish_population_frame(long, file).with_columns(area_level=pl.lit(opts.area_level))
