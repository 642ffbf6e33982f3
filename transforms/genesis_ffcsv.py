"""Parser for the GENESIS "flat file" CSV (ffcsv) of the 2020 REST interface: one value per line.

Each classifying variable takes four columns (N_variable_code, N_variable_label, N_variable_attribute_code,
N_variable_attribute_label) and their number differs between tables, so columns are found by name: the area
variable (DINSG, DLAND, REGBEZ, KREISE, GEMEIN), sex (GES; an empty attribute code is the total) and an age-group
variable (ALT…). A table without an age variable yields totals over all ages.
"""

from __future__ import annotations

import io
import re

import polars as pl

from transforms.bad_input import BadInputError
from transforms.genesis_codes import SEX_CODES, parse_age_label
from transforms.population_frame import finish_population_frame
from transforms.text_decoding import decode_utf8_or_latin1

AREA_VARIABLES = {"DINSG", "DLAND", "REGBEZ", "KREISE", "GEMEIN"}
REQUIRED = ["statistics_code", "time_code", "time", "value", "value_variable_code"]
_VARIABLE_CODE = re.compile(r"^(\d+)_variable_code$")
# The flat file names only the statistic (12411); the table code is in the file name the service gives it.
_TABLE_IN_NAME = re.compile(r"(\d{5}-[0-9A-Z]{2,4}(?:-[0-9A-Z]{1,4}){0,3})")


def _variable_slots(frame: pl.DataFrame) -> dict[str, int]:
    """Which numbered slot holds the area, sex and age variable (by the codes in its first row)."""
    slots: dict[str, int] = {}
    for column in frame.columns:
        if not (m := _VARIABLE_CODE.match(column)):
            continue
        code = frame[column][0]
        if code in AREA_VARIABLES:
            slots["area"] = int(m.group(1))
        elif code == "GES":
            slots["sex"] = int(m.group(1))
        elif code and code.startswith("ALT"):
            slots["age"] = int(m.group(1))
    return slots


def parse_genesis_ffcsv(data: bytes, file: str) -> pl.DataFrame:
    text, _encoding = decode_utf8_or_latin1(data, file)
    if not text.endswith("\n"):
        raise BadInputError(file, None, "truncated file: it does not end with a line break, the last line may be cut off")
    lines = text.split("\n")
    header = lines[0].rstrip("\r").split(";")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise BadInputError(file, 1, f"not a GENESIS flat file (ffcsv): missing column(s) {', '.join(missing)}")
    for number, line in enumerate(lines[1:], start=2):
        if line.strip() and line.count(";") != len(header) - 1:
            raise BadInputError(file, number, f"expected {len(header)} fields separated by ';', found {line.count(';') + 1}")
    frame = pl.read_csv(io.StringIO(text), separator=";", infer_schema=False, quote_char=None)
    if frame.height == 0:
        raise BadInputError(file, None, "header only, no data lines")
    frame = frame.with_row_index("source_row", offset=2)
    slots = _variable_slots(frame)
    if "area" not in slots:
        raise BadInputError(file, 2, f"no area variable ({', '.join(sorted(AREA_VARIABLES))}) in the table")
    units = set(frame["value_variable_code"].unique().to_list())
    if units != {"BEVSTD"}:
        raise BadInputError(file, None, f"not a population count table: value variable(s) {sorted(units)}, expected BEVSTD")

    area = slots["area"]
    sex = (
        pl.col(f"{slots['sex']}_variable_attribute_code").fill_null("").replace_strict(
            {"": "total", **{k: v for k, v in SEX_CODES.items() if k.isupper()}}, default=None, return_dtype=pl.String
        )
        if "sex" in slots
        else pl.lit("total")
    )
    if "age" in slots:
        labels = frame[f"{slots['age']}_variable_attribute_label"].fill_null("Insgesamt").unique().to_list()
        try:
            parsed = {label: parse_age_label(label) for label in labels}
        except ValueError as err:
            raise BadInputError(file, None, str(err)) from None
        age_label = pl.col(f"{slots['age']}_variable_attribute_label").fill_null("Insgesamt")
        age = pl.DataFrame(
            {
                "age_label": list(parsed),
                "age_from": [p[0] for p in parsed.values()],
                "age_to": [p[1] for p in parsed.values()],
                "is_total": [p[2] for p in parsed.values()],
            },
            schema={"age_label": pl.String, "age_from": pl.Int32, "age_to": pl.Int32, "is_total": pl.Boolean},
        )
    else:
        age_label = pl.lit("Insgesamt")
        age = pl.DataFrame({"age_label": ["Insgesamt"], "age_from": [0], "age_to": [None], "is_total": [True]},
                           schema={"age_label": pl.String, "age_from": pl.Int32, "age_to": pl.Int32, "is_total": pl.Boolean})
    long = frame.select(
        "source_row",
        table_code=pl.lit(m.group(1)) if (m := _TABLE_IN_NAME.search(file.rsplit("/", 1)[-1])) else pl.col("statistics_code"),
        area_code=pl.col(f"{area}_variable_attribute_code"),
        area_name=pl.col(f"{area}_variable_attribute_label"),
        reference_date=pl.coalesce(
            pl.col("time").str.to_date("%Y-%m-%d", strict=False), pl.col("time").str.to_date("%d.%m.%Y", strict=False)
        ),
        sex=sex,
        age_label=age_label,
        cell="value",
        population_basis=pl.lit(None, dtype=pl.String),
    ).join(age, on="age_label", how="left")
    return finish_population_frame(long, file)
