"""What a good row of the long population table is (parsed from GENESIS exports)."""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations.rules import blocking, warning

SUITE_NAME = "population_by_age"

# AGS of Germany (DG), Land, Regierungsbezirk, Kreis, Gemeinde; 9 and 12 digits for Gemeindeverband/ARS;
# a city's districts as <AGS of the city>-<district number> (city open-data files)
AREA_CODE = r"^(?:DG|\d{2}|\d{3}|\d{5}|\d{8}|\d{9}|\d{12}|(?:\d{5}|\d{8})-[0-9A-Za-z]+)$"
COUNT_OR_SPECIAL_VALUE = r"^(?:\d+|-|\.|x|\.\.\.|/)$"


def expectations() -> list:
    return [
        blocking(gxe.ExpectColumnValuesToNotBeNull(column="area_code"), "area code present"),
        blocking(gxe.ExpectColumnValuesToMatchRegex(column="area_code", regex=AREA_CODE), "area code is an AGS"),
        blocking(gxe.ExpectColumnValuesToNotBeNull(column="reference_date"), "reference date is a valid date"),
        blocking(gxe.ExpectColumnValuesToBeInSet(column="sex", value_set=["total", "male", "female"]), "sex is known"),
        blocking(
            gxe.ExpectColumnValuesToMatchRegex(column="cell", regex=COUNT_OR_SPECIAL_VALUE),
            "cell is a whole number or an official special value (-, ., x, ..., /)",
        ),
        blocking(
            gxe.ExpectColumnValuesToBeBetween(column="value", min_value=0, max_value=90_000_000),
            "count is between 0 and Germany's population",
        ),
        blocking(
            gxe.ExpectCompoundColumnsToBeUnique(
                column_list=["table_code", "area_code", "reference_date", "sex", "age_label"]
            ),
            "one value per area, date, sex and age group",
        ),
        warning(gxe.ExpectColumnValuesToNotBeNull(column="population_basis"), "population basis (Zensus) stated"),
        warning(gxe.ExpectColumnValuesToNotBeNull(column="area_name"), "area name present"),
    ]
