"""What a good row of an official population projection (GENESIS 12421, by Land) is."""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations.rules import blocking

SUITE_NAME = "population_projection"


def expectations() -> list:
    return [
        blocking(gxe.ExpectColumnValuesToMatchRegex(column="area_code", regex=r"^\d{2}$"), "area code is a Land (AGS, 2 digits)"),
        blocking(gxe.ExpectColumnValuesToNotBeNull(column="reference_date"), "reference date is a valid date"),
        blocking(gxe.ExpectColumnValuesToNotBeNull(column="variant"), "projection variant stated"),
        blocking(
            gxe.ExpectColumnValuesToBeBetween(column="value", min_value=0, max_value=90_000_000),
            "projected persons between 0 and Germany's population",
        ),
        blocking(
            gxe.ExpectCompoundColumnsToBeUnique(
                column_list=["table_code", "area_code", "variant_code", "sex", "age_label", "reference_date"]
            ),
            "one value per Land, variant, sex, age and date",
        ),
    ]
