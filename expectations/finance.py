"""What a good row of a finance delivery is (parsed by transforms/fiscal_stress.py:parse_finance_csv).

The parser already refuses files it cannot read and rows whose area and year are unreadable; a row with an empty or
unusable amount is kept with `input_issue` saying why, and the figures that need the amount come out flagged. So
only the row identity blocks here; an input issue is recorded as a warning and the row goes on.
"""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations.rules import blocking, warning
from transforms.fiscal_stress import POPULATION_BASES

SUITE_NAME = "municipal_finance"

AREA_CODE = r"^(?:\d{5}|\d{8})$"


def expectations() -> list:
    return [
        blocking(gxe.ExpectColumnValuesToMatchRegex(column="area_code", regex=AREA_CODE), "area code is a 5- or 8-digit AGS"),
        blocking(gxe.ExpectColumnValuesToBeBetween(column="year", min_value=1990, max_value=2100), "budget year from 1990 on"),
        blocking(gxe.ExpectCompoundColumnsToBeUnique(column_list=["area_code", "year"]), "one row per area and year"),
        warning(gxe.ExpectColumnValuesToBeNull(column="input_issue"), "every amount present and usable"),
        warning(
            gxe.ExpectColumnValuesToBeInSet(column="population_basis", value_set=list(POPULATION_BASES)),
            "population basis is a census the figures are projected from",
        ),
        warning(
            gxe.ExpectColumnValuesToBeBetween(column="population", min_value=100, max_value=4_000_000),
            "population of a German municipality or Kreis (100 to 4 million)",
        ),
    ]
