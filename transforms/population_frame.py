"""The long population table that every statistics format is normalised to, and its final typing step."""

from __future__ import annotations

import polars as pl

from transforms.genesis_codes import SPECIAL_VALUES

POPULATION_SCHEMA: dict[str, pl.DataType] = {
    "table_code": pl.String,
    "area_code": pl.String,
    "area_name": pl.String,
    "area_level": pl.String,
    "reference_date": pl.Date,
    "sex": pl.String,
    "age_label": pl.String,
    "age_from": pl.Int32,
    "age_to": pl.Int32,  # exclusive; null = open-ended ("75 Jahre und mehr") or the total
    "is_total": pl.Boolean,
    "cell": pl.String,  # the cell as delivered, so a quarantined row shows what was wrong
    "value": pl.Int64,
    "flag": pl.String,  # official special value; value is null whenever flag is set
    "population_basis": pl.String,
    "source_file": pl.String,
    "source_row": pl.Int64,
}

# What indicator computations read of staging.population: the provenance columns (cell, source file and row) are
# for audit and quarantine, and leaving them out of the load halves its memory for all Gemeinden × 30 years.
INDICATOR_COLUMNS = ["table_code", "area_code", "area_name", "area_level", "reference_date", "sex", "age_label",
                     "age_from", "age_to", "is_total", "value", "flag", "population_basis"]

_AREA_LEVEL = (
    pl.when(pl.col("area_code") == "DG")
    .then(pl.lit("germany"))
    .when(~pl.col("area_code").str.contains(r"^\d+$"))
    .then(pl.lit("other"))
    .otherwise(
        pl.col("area_code").str.len_chars().replace_strict(
            {2: "land", 3: "regierungsbezirk", 5: "kreis", 8: "gemeinde"}, default="other", return_dtype=pl.String
        )
    )
)


def finish_population_frame(long: pl.DataFrame, file: str) -> pl.DataFrame:
    """Trim keys, split each cell into value and flag, derive the area level, and fix column order and types."""
    cell = pl.col("cell").str.strip_chars()
    return (
        long.with_columns(
            area_code=pl.col("area_code").str.strip_chars(),
            area_name=pl.col("area_name").str.strip_chars(),
            cell=cell,
        )
        .with_columns(
            value=pl.when(pl.col("cell").str.contains(r"^\d+$")).then(pl.col("cell").cast(pl.Int64, strict=False)),
            flag=pl.when(pl.col("cell").is_in(list(SPECIAL_VALUES))).then(pl.col("cell")),
            area_level=_AREA_LEVEL,
            source_file=pl.lit(file),
        )
        .select([pl.col(name).cast(dtype) for name, dtype in POPULATION_SCHEMA.items()])
        .sort("source_row", "sex", "age_from", "is_total")
    )


def with_declared_basis(population: pl.DataFrame, rules: tuple[tuple[int, int | None, str], ...]) -> pl.DataFrame:
    """Fill the population basis the file does not state from the source's declaration (from year, to year or
    None, basis), e.g. the flat file of the web service, which carries no footnotes. A stated basis is kept."""
    if not rules:
        return population
    year = pl.col("reference_date").dt.year()
    declared = pl.lit(None, dtype=pl.String)
    for first, last, basis in reversed(rules):
        within = (year >= first) & (year <= last) if last is not None else (year >= first)
        declared = pl.when(within).then(pl.lit(basis)).otherwise(declared)
    return population.with_columns(population_basis=pl.coalesce("population_basis", declared))
