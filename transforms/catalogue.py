"""Loads the indicator catalogue (catalogue_entries/*.toml) that computation, exports and docs share."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import polars as pl

CATALOGUE_DIR = Path(__file__).with_name("catalogue_entries")


@dataclass(frozen=True)
class Indicator:
    id: str
    name_de: str
    name_en: str
    definition: str
    formula: str
    kind: str
    unit: str
    direction: str
    subject: str
    source: str
    scale: float = 1
    inputs: str = ""
    population_basis: str = ""
    numerator: tuple[str, ...] = field(default_factory=tuple)
    denominator: str | None = None


@cache
def load_catalogue(directory: Path = CATALOGUE_DIR) -> tuple[Indicator, ...]:
    entries = []
    for path in sorted(directory.glob("*.toml")):
        with path.open("rb") as fh:
            entries += tomllib.load(fh).get("indicator", [])
    indicators = tuple(Indicator(**{**e, "numerator": tuple(e.get("numerator", ()))}) for e in entries)
    ids = [i.id for i in indicators]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f"{directory}: indicator ids must be unique, found twice: {duplicated}")
    return indicators


def indicators_of_kind(kind: str) -> tuple[Indicator, ...]:
    return tuple(i for i in load_catalogue() if i.kind == kind)


def indicator(indicator_id: str) -> Indicator:
    for i in load_catalogue():
        if i.id == indicator_id:
            return i
    raise KeyError(f"indicator {indicator_id!r} is not in the catalogue {CATALOGUE_DIR}")


def catalogue_frame(conventions: tuple = ()) -> pl.DataFrame:
    """The catalogue as a table for exports: one row per indicator, age bounds spelled out per convention."""

    def bounds(ind: Indicator) -> str:
        bands = set(ind.numerator) | {ind.denominator}
        if not bands & {"young", "working", "old"}:
            return "80+ fixed" if "80+" in bands else ""
        return "; ".join(f"{c.name}: {c.describe()}" for c in conventions)

    return pl.DataFrame(
        [
            {
                "id": i.id,
                "name_de": i.name_de,
                "name_en": i.name_en,
                "definition": i.definition,
                "formula": i.formula,
                "unit": i.unit,
                "age_bounds": bounds(i),
                "inputs": i.inputs,
                "population_basis": i.population_basis,
                "direction": i.direction,
                "subject": i.subject,
                "source": i.source,
            }
            for i in load_catalogue()
        ]
    )
