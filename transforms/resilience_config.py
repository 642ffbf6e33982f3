"""The settings of the resilience, room-sharing and fiscal marts (config/resilience.toml), read into plain objects.

Every refusal names the file and the field, so a typo stops the run with a message instead of producing indicators
over the wrong target band or window.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from transforms.accessibility import GaussianDecay, StepDecay
from transforms.coverage import CoverageTarget
from transforms.facility_registry import FACILITY_TYPES

RESILIENCE_PATH = Path(__file__).resolve().parents[1] / "config" / "resilience.toml"


class ResilienceConfigError(ValueError):
    """config/resilience.toml is wrong; the message names the file and the field."""


@dataclass(frozen=True)
class AnomalySettings:
    window_weeks: int
    min_history: int  # same-weekday open days in the window
    threshold: float
    min_scale: float


@dataclass(frozen=True)
class TrendSettings:
    window_weeks: int
    min_weeks: int  # weeks with data in the window


@dataclass(frozen=True)
class ProjectionSettings:
    file: Path | None  # a projection per area (CSV in PROJECTION_COLUMNS)
    land_table: Path | None  # or a GENESIS projection per Land, applied to the observed areas by the ratio method
    land_table_code: str | None  # or such a table as loaded into staging.population_projection (e.g. 12421-0004)
    base_date: date | None  # the observed population the Land's ratios are applied to (land_table only)
    variants: dict[str, str]  # "low" | "medium" | "high" → the land table's variant code, e.g. "G2L2W1"
    base_year: int
    visitors_per_place: float
    scenarios: dict[str, float]
    fiscal_variant: str


@dataclass(frozen=True)
class ResilienceConfig:
    open_group_means: dict[int, float]
    change_years: tuple[int, ...]
    targets: tuple[CoverageTarget, ...]
    decay: StepDecay | GaussianDecay
    anomalies: AnomalySettings
    trends: TrendSettings
    participation_period: tuple[date, date]
    projection: ProjectionSettings
    fiscal_base_year: int
    fiscal_scenarios: Path


class _Reader:
    def __init__(self, path: Path, raw: dict):
        self.path = path
        self.raw = raw

    def fail(self, field: str, reason: str) -> ResilienceConfigError:
        return ResilienceConfigError(f"{self.path}: field {field!r}: {reason}")

    def section(self, name: str) -> dict:
        value = self.raw.get(name)
        if not isinstance(value, dict):
            raise self.fail(name, "a table [" + name + "] is required")
        return value

    def number(self, section: str, key: str, low: float, *, whole: bool = False, default=None) -> float:
        value = self.section(section).get(key, default)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= low
        if not ok or (whole and value != int(value)):
            kind = "a whole number" if whole else "a number"
            raise self.fail(f"{section}.{key}", f"{kind} ≥ {low:g} is required, got {value!r}")
        return int(value) if whole else float(value)

    def day(self, section: str, key: str) -> date:
        value = self.section(section).get(key)
        if not isinstance(value, date):
            raise self.fail(f"{section}.{key}", f"a date YYYY-MM-DD is required, got {value!r}")
        return value

    def file(self, root: Path, section: str, key: str, *, required: bool) -> Path | None:
        value = self.section(section).get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{section}.{key}", f"a file path is required, got {value!r}")
        path = root / value
        if not path.is_file():
            raise self.fail(f"{section}.{key}", f"file {path} does not exist")
        return path


def _band(reader: _Reader, field: str, value: object) -> tuple[int, int | None]:
    if (
        not isinstance(value, list)
        or len(value) not in (1, 2)
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
        or (len(value) == 2 and value[1] <= value[0])
    ):
        raise reader.fail(field, f"[from, to) in whole years (to > from) or [from] for an open band, got {value!r}")
    return value[0], value[1] if len(value) == 2 else None


def _targets(reader: _Reader) -> tuple[CoverageTarget, ...]:
    targets = []
    for facility_type, entry in reader.section("coverage").items():
        field = f"coverage.{facility_type}"
        if facility_type not in FACILITY_TYPES:
            raise reader.fail(field, f"unknown facility type; known: {', '.join(FACILITY_TYPES)}")
        if not isinstance(entry, dict) or set(entry) - {"band", "target_per_1000"}:
            raise reader.fail(field, "a table with band and optionally target_per_1000 is required")
        target = entry.get("target_per_1000")
        if target is not None and (isinstance(target, bool) or not isinstance(target, (int, float)) or target < 0):
            raise reader.fail(f"{field}.target_per_1000", f"a number ≥ 0 is required, got {target!r}")
        band = _band(reader, f"{field}.band", entry.get("band"))
        targets.append(CoverageTarget(facility_type, band, None if target is None else float(target)))
    return tuple(targets)


def _decay(reader: _Reader) -> StepDecay | GaussianDecay:
    kind = reader.section("accessibility").get("kind")
    if kind == "gaussian":
        return GaussianDecay(sigma=reader.number("accessibility", "sigma", 0), max_cost=reader.number("accessibility", "max_cost", 0))
    if kind != "step":
        raise reader.fail("accessibility.kind", f"'step' or 'gaussian' is required, got {kind!r}")
    steps = reader.section("accessibility").get("steps")
    valid = isinstance(steps, list) and steps and all(
        isinstance(s, list) and len(s) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in s)
        for s in steps
    )
    if not valid:
        raise reader.fail("accessibility.steps", f"a list of [upper cost, weight ≥ 0] pairs is required, got {steps!r}")
    return StepDecay(tuple((float(upper), float(weight)) for upper, weight in steps))


def _open_group_means(reader: _Reader) -> dict[int, float]:
    raw = reader.section("age_structure").get("open_group_means", {})
    means = {}
    for key, value in raw.items():
        if not key.isdigit() or isinstance(value, bool) or not isinstance(value, (int, float)) or value < int(key):
            raise reader.fail(f"age_structure.open_group_means.{key}",
                              f"lower bound (whole years) = mean age not below it is required, got {key!r} = {value!r}")
        means[int(key)] = float(value)
    return means


def _scenarios(reader: _Reader) -> dict[str, float]:
    raw = reader.section("projection").get("scenarios", {"constant_rates": 0.0})
    if not isinstance(raw, dict) or not raw or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v > -1 for v in raw.values()
    ):
        raise reader.fail("projection.scenarios", f"a table name = yearly rate change (> -1) is required, got {raw!r}")
    return {name: float(v) for name, v in raw.items()}


def _land_projection(reader: _Reader, root: Path) -> tuple[Path | None, str | None, date | None, dict[str, str]]:
    """[projection] land_table or land_table_code, base_date and variants; file, land_table and land_table_code
    exclude each other."""
    land_table = reader.file(root, "projection", "land_table", required=False)
    code = reader.section("projection").get("land_table_code")
    if land_table is None and code is None:
        return None, None, None, {}
    chosen = [k for k in ("file", "land_table", "land_table_code") if reader.section("projection").get(k) is not None]
    if len(chosen) > 1:
        raise reader.fail(f"projection.{chosen[1]}", "set one of file (a projection per area), land_table (a GENESIS "
                                                      "file) or land_table_code (a loaded GENESIS table), not several")
    if code is not None and not (isinstance(code, str) and code.strip()):
        raise reader.fail("projection.land_table_code", f"a GENESIS table code such as \"12421-0004\" is required, got {code!r}")
    variants = reader.section("projection").get("variants")
    if (
        not isinstance(variants, dict) or not variants or set(variants) - {"low", "medium", "high"}
        or not all(isinstance(code, str) and code.strip() for code in variants.values())
        or len(set(variants.values())) != len(variants)
    ):
        raise reader.fail("projection.variants", "a table low / medium / high = the land table's variant code "
                                                 f"(different codes, e.g. medium = \"G2L2W2\") is required, got {variants!r}")
    return land_table, code, reader.day("projection", "base_date"), dict(variants)


def load_resilience_config(path: str | Path = RESILIENCE_PATH) -> ResilienceConfig:
    path = Path(path).resolve()
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ResilienceConfigError(f"{path}: cannot read the resilience settings: {err}") from None
    reader = _Reader(path, raw)
    root = (path.parent / raw.get("root", ".")).resolve()
    years = reader.section("age_structure").get("change_years", [])
    if not isinstance(years, list) or not all(isinstance(y, int) and not isinstance(y, bool) and y > 0 for y in years):
        raise reader.fail("age_structure.change_years", f"a list of whole numbers of years > 0 is required, got {years!r}")
    period = (reader.day("participation", "period_start"), reader.day("participation", "period_end"))
    if period[1] < period[0]:
        raise reader.fail("participation.period_end", f"{period[1]} is before period_start {period[0]}")
    variant = reader.section("projection").get("fiscal_variant", "medium")
    if variant not in ("low", "medium", "high"):
        raise reader.fail("projection.fiscal_variant", f"low, medium or high is required, got {variant!r}")
    projection_file = reader.file(root, "projection", "file", required=False)
    land_table, land_table_code, base_date, variants = _land_projection(reader, root)
    if variants and variant not in variants:
        raise reader.fail("projection.fiscal_variant", f"{variant!r} is not one of projection.variants")
    return ResilienceConfig(
        open_group_means=_open_group_means(reader),
        change_years=tuple(years),
        targets=_targets(reader),
        decay=_decay(reader),
        anomalies=AnomalySettings(
            window_weeks=reader.number("anomalies", "window_weeks", 1, whole=True),
            min_history=reader.number("anomalies", "min_history", 1, whole=True),
            threshold=reader.number("anomalies", "threshold", 0),
            min_scale=reader.number("anomalies", "min_scale", 0),
        ),
        trends=TrendSettings(
            window_weeks=reader.number("trends", "window_weeks", 2, whole=True),
            min_weeks=reader.number("trends", "min_weeks", 2, whole=True),
        ),
        participation_period=period,
        projection=ProjectionSettings(
            file=projection_file,
            land_table=land_table,
            land_table_code=land_table_code,
            base_date=base_date,
            variants=variants,
            base_year=reader.number("projection", "base_year", 1900, whole=True),
            visitors_per_place=reader.number("projection", "visitors_per_place", 0.001),
            scenarios=_scenarios(reader),
            fiscal_variant=variant,
        ),
        fiscal_base_year=reader.number("fiscal", "base_year", 1900, whole=True),
        fiscal_scenarios=reader.file(root, "fiscal", "scenarios", required=True),
    )
