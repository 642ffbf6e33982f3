"""Parser for Open Repair Data Standard (ORDS v0.3) exports, one row per item brought to a repair event.

The pipeline's own contract for the record id is `^[a-z][a-z0-9]*[_-][0-9]+$`: a provider prefix, an underscore or
hyphen, a number. The published table schema says `^[a-z]+-[0-9]+$`, but every real anstiftung id looks like
`anstiftung_2746`; enforcing the published pattern would quarantine every real record, while dropping the check
would let garbage ids through. The id is the key across deliveries, so what matters is that it is present,
well-formed and unique within a delivery, and that both spellings in use are accepted.
"""

from __future__ import annotations

import io

import polars as pl

from transforms.bad_input import BadInputError
from transforms.text_decoding import decode_utf8_strict

ORDS_COLUMNS = [
    "id",
    "data_provider",
    "country",
    "partner_product_category",
    "product_category",
    "product_category_id",
    "brand",
    "year_of_manufacture",
    "product_age",
    "repair_status",
    "repair_barrier_if_end_of_life",
    "group_identifier",
    "event_date",
    "problem",
]
ID_PATTERN = r"^[a-z][a-z0-9]*[_-][0-9]+$"
REPAIR_STATUSES = ["Fixed", "Repairable", "End of life", "Unknown"]


def _check_header(header: list[str], file: str) -> None:
    missing = [c for c in ORDS_COLUMNS if c not in header]
    unknown = [c for c in header if c not in ORDS_COLUMNS]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown column(s) {', '.join(unknown)}")
        raise BadInputError(file, 1, "; ".join(parts) + f" (ORDS v0.3 expects: {', '.join(ORDS_COLUMNS)})")


def parse_open_repair(data: bytes, file: str) -> pl.DataFrame:
    """Bytes of an ORDS CSV → one row per record, every field as delivered plus typed helpers.

    `source_row` is the record number (1 = first record after the header); records may span several lines
    because the free-text `problem` field contains line breaks.
    """
    text = decode_utf8_strict(data, file)
    if not text.endswith("\n"):
        raise BadInputError(file, None, "truncated file: it does not end with a line break, the last record may be cut off")
    first_line = text.split("\n", 1)[0].rstrip("\r")
    header = [c.strip().strip('"') for c in first_line.split(",")]
    _check_header(header, file)
    try:
        frame = pl.read_csv(io.StringIO(text), infer_schema=False, raise_if_empty=True)
    except pl.exceptions.ComputeError as err:
        raise BadInputError(file, None, f"not a well-formed CSV: {str(err).splitlines()[0]}") from None
    if frame.height == 0:
        raise BadInputError(file, None, "header only, no records")
    return (
        frame.select(ORDS_COLUMNS)
        .with_row_index("source_row", offset=1)
        .with_columns(
            pl.col("source_row").cast(pl.Int64),
            event_date_parsed=pl.col("event_date").str.to_date("%Y-%m-%d", strict=False),
            product_category_id_parsed=pl.col("product_category_id").cast(pl.Int32, strict=False),
            source_file=pl.lit(file),
        )
    )
