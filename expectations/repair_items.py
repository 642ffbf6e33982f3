"""What a good record of an Open Repair Data Standard delivery is, by the pipeline's own contract."""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations.rules import blocking, warning
from transforms.open_repair import ID_PATTERN, REPAIR_STATUSES

SUITE_NAME = "repair_items"


def expectations() -> list:
    return [
        blocking(gxe.ExpectColumnValuesToNotBeNull(column="id"), "record id present"),
        blocking(
            gxe.ExpectColumnValuesToMatchRegex(column="id", regex=ID_PATTERN),
            "record id is provider prefix, '_' or '-', number",
        ),
        blocking(gxe.ExpectColumnValuesToBeUnique(column="id"), "record id unique within the delivery"),
        blocking(gxe.ExpectColumnValuesToNotBeNull(column="data_provider"), "data provider present"),
        blocking(gxe.ExpectColumnValuesToNotBeNull(column="group_identifier"), "repair group present"),
        blocking(gxe.ExpectColumnValuesToNotBeNull(column="event_date_parsed"), "event date is a date YYYY-MM-DD"),
        blocking(gxe.ExpectColumnValuesToBeInSet(column="repair_status", value_set=REPAIR_STATUSES), "repair status is an ORDS status"),
        blocking(gxe.ExpectColumnValuesToMatchRegex(column="country", regex=r"^[A-Z]{3}$"), "country is ISO 3166 alpha-3"),
        warning(
            gxe.ExpectColumnValuesToBeBetween(column="product_category_id_parsed", min_value=1, max_value=99),
            "product category id is an ORDS category",
        ),
        warning(
            gxe.ExpectColumnValuesToMatchRegex(column="year_of_manufacture", regex=r"^[0-9]{4}$"),
            "year of manufacture has four digits",
        ),
    ]
