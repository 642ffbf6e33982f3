"""Fiscal indicators and the fiscal stress test per municipality: pure functions over the FINANCE frame.

The method, its assumptions and its limits are written down for finance officers in docs/fiscal-stress-test.md;
the scenarios and the traffic-light thresholds are configuration (config/fiscal_scenarios.toml).

FINANCE frame (one row per municipality and budget year; amounts in euros, as booked for that year):
  area_code: str (AGS, 5 or 8 digits), area_name: str, year: Int32, population: Int64 (inhabitants on 31.12.),
  population_basis: str ("Zensus 2011" | "Zensus 2022", the census the population count is projected from),
  tax_revenue, total_revenue, social_spending, total_spending (including interest_paid), debt_long_term
  (Investitionskredite and other long-term debt), liquiditaetskredite (Kassenkredite), interest_paid: Float64,
  reserves: Float64|null (Ausgleichsrücklage or free reserves; null = not reported),
  input_issue: str|null (why a value of the row was refused or is missing), source_file: str, source_row: Int64

A finance row with an empty or unusable value is kept: the value becomes null, `input_issue` says why, and every
figure that needs it comes out as a missing value with a flag. Only rows whose identity (area code, year) cannot be
read, and files that are not this contract at all, are refused with a BadInputError.
"""

from __future__ import annotations

import io
import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

import polars as pl

from transforms.bad_input import BadInputError
from transforms.catalogue import indicators_of_kind
from transforms.text_decoding import decode_utf8_strict

AMOUNT_COLUMNS = [
    "tax_revenue",
    "total_revenue",
    "social_spending",
    "total_spending",
    "debt_long_term",
    "liquiditaetskredite",
    "interest_paid",
    "reserves",
]
FINANCE_COLUMNS = ["area_code", "area_name", "year", "population", "population_basis", *AMOUNT_COLUMNS]
FINANCE_SCHEMA: dict[str, pl.DataType] = {
    "area_code": pl.String,
    "area_name": pl.String,
    "year": pl.Int32,
    "population": pl.Int64,
    "population_basis": pl.String,
    **{c: pl.Float64 for c in AMOUNT_COLUMNS},
    "input_issue": pl.String,
    "source_file": pl.String,
    "source_row": pl.Int64,
}
POPULATION_BASES = ("Zensus 2011", "Zensus 2022")
OPTIONAL_COLUMNS = {"reserves"}  # not every municipality reports its reserves; missing is not an input error

FLAG_INPUT = "finance_input_missing"  # a value needed was empty or refused; the row's input_issue says which
FLAG_ZERO = "division_by_zero"
FLAG_FEWER_YEARS = "fewer_than_4_years"
FLAG_PROJECTION = "projection_missing"
FLAG_AGE_BANDS = "age_groups_do_not_align"
FLAG_RESERVES_UNKNOWN = "reserves_unknown"
FLAG_NOT_EXHAUSTED = "reserves_not_exhausted_within_horizon"


# ---------------------------------------------------------------------------------------------------------------
# Reading the finance input
# ---------------------------------------------------------------------------------------------------------------


def _number(text: str | None, column: str) -> tuple[float | None, str | None]:
    """A delivered amount → (value, issue). Amounts are stocks or flows that cannot be negative."""
    if text is None or not text.strip():
        return None, None if column in OPTIONAL_COLUMNS else f"{column} is empty"
    try:
        value = float(text)
    except ValueError:
        return None, f"{column} is not a number: {text!r}"
    if not math.isfinite(value) or value < 0:
        return None, f"{column} must be a finite amount ≥ 0, got {text!r}"
    return value, None


def parse_finance_csv(data: bytes, file: str) -> pl.DataFrame:
    """Bytes of a finance CSV (UTF-8, `,`, decimal point, header = FINANCE_COLUMNS) → the FINANCE frame."""
    text = decode_utf8_strict(data, file)
    try:
        raw = pl.read_csv(io.StringIO(text), infer_schema=False, raise_if_empty=True)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as err:
        raise BadInputError(file, None, f"not a well-formed CSV: {str(err).splitlines()[0]}") from None
    missing = [c for c in FINANCE_COLUMNS if c not in raw.columns]
    unknown = [c for c in raw.columns if c not in FINANCE_COLUMNS]
    if missing or unknown:
        problems = [f"missing column(s) {', '.join(missing)}"] * bool(missing) + [
            f"unknown column(s) {', '.join(unknown)}"
        ] * bool(unknown)
        raise BadInputError(file, 1, "; ".join(problems) + f" (expected: {', '.join(FINANCE_COLUMNS)})")
    if raw.height == 0:
        raise BadInputError(file, None, "header only, no rows")

    rows = []
    seen: dict[tuple[str, int], int] = {}
    for line, record in enumerate(raw.iter_rows(named=True), start=2):  # line 1 is the header
        code = (record["area_code"] or "").strip()
        if not (code.isdigit() and len(code) in (5, 8)):
            raise BadInputError(file, line, f"area_code must be a 5- or 8-digit AGS, got {record['area_code']!r}")
        try:
            year = int(record["year"])
        except (TypeError, ValueError):
            raise BadInputError(file, line, f"year must be a whole number, got {record['year']!r}") from None
        if (code, year) in seen:
            raise BadInputError(file, line, f"{code} {year} appears twice (first in line {seen[code, year]})")
        seen[code, year] = line

        issues = []
        row = {"area_code": code, "area_name": record["area_name"], "year": year}
        population, issue = _number(record["population"], "population")
        if population is not None and (population <= 0 or population != int(population)):
            population, issue = None, f"population must be a whole number > 0, got {record['population']!r}"
        row["population"] = None if population is None else int(population)
        issues.append(issue)
        basis = (record["population_basis"] or "").strip()
        if basis not in POPULATION_BASES:
            issues.append(f"population_basis must be one of {', '.join(POPULATION_BASES)}, got {basis!r}")
            basis = None
        row["population_basis"] = basis
        for column in AMOUNT_COLUMNS:
            row[column], issue = _number(record[column], column)
            issues.append(issue)
        row["input_issue"] = "; ".join(i for i in issues if i) or None
        rows.append({**row, "source_file": file, "source_row": line})
    return pl.DataFrame(rows, schema=FINANCE_SCHEMA, orient="row")


# ---------------------------------------------------------------------------------------------------------------
# Indicators per municipality and year
# ---------------------------------------------------------------------------------------------------------------

RATIO_DEFINITIONS = {
    # indicator id: (numerator, denominator); scale and unit come from the catalogue
    "debt_per_capita": (pl.col("debt_long_term") + pl.col("liquiditaetskredite"), pl.col("population")),
    "liquidity_credit_per_capita": (pl.col("liquiditaetskredite"), pl.col("population")),
    "interest_to_revenue": (pl.col("interest_paid"), pl.col("total_revenue")),
    "social_spending_share": (pl.col("social_spending"), pl.col("total_spending")),
}
TAX_MEAN_YEARS = 4


def _ratio_frame(finance: pl.DataFrame, indicator_id: str, numerator: pl.Expr, denominator: pl.Expr, scale: float):
    return finance.select(
        "area_code",
        "year",
        "population_basis",
        indicator_id=pl.lit(indicator_id),
        numerator=numerator,
        denominator=denominator.cast(pl.Float64),
    ).with_columns(
        flag=pl.when(pl.col("numerator").is_null() | pl.col("denominator").is_null())
        .then(pl.lit(FLAG_INPUT))
        .when(pl.col("denominator") == 0)
        .then(pl.lit(FLAG_ZERO)),
    ).with_columns(
        value=pl.when(pl.col("flag").is_null()).then(pl.col("numerator") / pl.col("denominator") * scale),
    )


def _tax_revenue_4y_mean(finance: pl.DataFrame) -> pl.DataFrame:
    """Mean of the yearly tax revenue per inhabitant over the year and the three before (as Wegweiser Kommune).

    A single year's tax revenue swings with one trade-tax payer; the four-year mean is what the comparison
    publications use. All four years must be present and usable, otherwise the value is missing.
    """
    per_capita = finance.select(
        "area_code", "year", "population_basis", per_capita=pl.col("tax_revenue") / pl.col("population")
    )
    window = finance.select("area_code", "year").join(
        pl.DataFrame({"back": list(range(TAX_MEAN_YEARS))}, schema={"back": pl.Int32}), how="cross"
    )
    joined = window.with_columns(source_year=pl.col("year") - pl.col("back")).join(
        per_capita.rename({"year": "source_year"}), on=["area_code", "source_year"], how="left"
    )
    summary = joined.group_by("area_code", "year").agg(
        usable=pl.col("per_capita").is_not_null().sum(),
        mean=pl.col("per_capita").mean(),
        # the census basis of every year that went in, so a mean across the Zensus 2022 break is visible
        population_basis=pl.col("population_basis").drop_nulls().unique().sort().str.join(" + "),
    )
    return summary.select(
        "area_code",
        "year",
        pl.col("population_basis").replace("", None),
        indicator_id=pl.lit("tax_revenue_per_capita_4y"),
        numerator=pl.lit(None, dtype=pl.Float64),
        denominator=pl.lit(None, dtype=pl.Float64),
        flag=pl.when(pl.col("usable") < TAX_MEAN_YEARS).then(pl.lit(FLAG_FEWER_YEARS)),
        value=pl.when(pl.col("usable") == TAX_MEAN_YEARS).then(pl.col("mean")),
    )


def finance_indicators(finance: pl.DataFrame) -> pl.DataFrame:
    """Long form: area_code, year, indicator_id, value, flag, numerator, denominator, population_basis."""
    catalogue = {i.id: i for i in indicators_of_kind("fiscal")}
    computed = {*RATIO_DEFINITIONS, "tax_revenue_per_capita_4y"}
    if computed != set(catalogue):
        raise ValueError(f"fiscal indicators {sorted(computed)} differ from the catalogue's {sorted(catalogue)}")
    parts = [
        _ratio_frame(finance, indicator_id, numerator, denominator, catalogue[indicator_id].scale)
        for indicator_id, (numerator, denominator) in RATIO_DEFINITIONS.items()
    ]
    parts.append(_tax_revenue_4y_mean(finance))
    columns = ["area_code", "year", "indicator_id", "value", "flag", "numerator", "denominator", "population_basis"]
    return pl.concat([p.select(columns) for p in parts]).sort("indicator_id", "area_code", "year")


# ---------------------------------------------------------------------------------------------------------------
# Scenarios and their configuration
# ---------------------------------------------------------------------------------------------------------------


class StressConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str = ""
    revenue_shock_pct: float = 0.0  # change of tax revenue from the first projected year on, e.g. -10
    interest_shock_pp: float = 0.0  # percentage points added to the interest rate
    social_spending: str = "constant"  # "constant" or "demographic" (cost per head × projected population)
    social_cost_growth_pct: float = 0.0  # yearly growth of social spending on top (cost per head rising)


@dataclass(frozen=True)
class CostBand:
    age_from: int
    age_to: int | None  # exclusive; None = open
    eur_per_head: float


@dataclass(frozen=True)
class Thresholds:
    interest_to_revenue_pct: float
    liquidity_credit_per_capita_eur: float
    reserves_exhausted_within_years: int


@dataclass(frozen=True)
class StressConfig:
    horizon_years: int
    long_term_repricing_years: float  # average time until long-term debt matures and is refinanced at new rates
    rate_without_debt_pct: float  # interest rate for new credit of a municipality that has no debt in the base year
    social_cost_per_head: tuple[CostBand, ...]
    yellow: Thresholds
    red: Thresholds
    scenarios: tuple[Scenario, ...]

    def scenario(self, name: str) -> Scenario:
        for s in self.scenarios:
            if s.name == name:
                return s
        raise KeyError(f"no scenario {name!r}; configured: {', '.join(s.name for s in self.scenarios)}")


SCENARIO_LIMITS = {
    # field: (lowest, highest) allowed; a shock only makes things worse, so its sign is fixed
    "revenue_shock_pct": (-100.0, 0.0),
    "interest_shock_pp": (0.0, 20.0),
    "social_cost_growth_pct": (0.0, 20.0),
}
SOCIAL_SPENDING_MODES = ("constant", "demographic")


def _scenario(path: Path, entry: dict, index: int) -> Scenario:
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise StressConfigError(f"{path}: scenario number {index} needs a name")
    where = f"{path}: scenario {name!r}"
    known = {f.name for f in fields(Scenario)}
    for key in entry:
        if key not in known:
            raise StressConfigError(f"{where}, field {key!r}: unknown field (known: {', '.join(sorted(known))})")
    for key, (low, high) in SCENARIO_LIMITS.items():
        value = entry.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise StressConfigError(f"{where}, field {key!r}: must be a number from {low:g} to {high:g}, got {value!r}")
    mode = entry.get("social_spending", "constant")
    if mode not in SOCIAL_SPENDING_MODES:
        raise StressConfigError(f"{where}, field 'social_spending': must be one of {SOCIAL_SPENDING_MODES}, got {mode!r}")
    return Scenario(**{**entry, **{k: float(entry.get(k, 0.0)) for k in SCENARIO_LIMITS}})


def _positive(path: Path, section: str, key: str, value, *, whole: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    if not ok or (whole and value != int(value)):
        kind = "a whole number > 0" if whole else "a number > 0"
        raise StressConfigError(f"{path}: {section}, field {key!r}: must be {kind}, got {value!r}")
    return value


def _thresholds(path: Path, level: str, entry: dict) -> Thresholds:
    section = f"traffic_light.{level}"
    known = {f.name for f in fields(Thresholds)}
    for key in set(entry) ^ known:
        problem = "unknown field" if key in entry else "missing field"
        raise StressConfigError(f"{path}: {section}, field {key!r}: {problem}")
    return Thresholds(
        interest_to_revenue_pct=_positive(path, section, "interest_to_revenue_pct", entry["interest_to_revenue_pct"]),
        liquidity_credit_per_capita_eur=_positive(
            path, section, "liquidity_credit_per_capita_eur", entry["liquidity_credit_per_capita_eur"]
        ),
        reserves_exhausted_within_years=int(
            _positive(path, section, "reserves_exhausted_within_years", entry["reserves_exhausted_within_years"], whole=True)
        ),
    )


def _cost_bands(path: Path, entries: list[dict]) -> tuple[CostBand, ...]:
    bands = []
    for i, entry in enumerate(entries, start=1):
        where = f"{path}: social_cost_per_head number {i}"
        try:
            band = CostBand(int(entry["age_from"]), entry.get("age_to"), float(entry["eur"]))
        except (KeyError, TypeError, ValueError) as err:
            raise StressConfigError(f"{where} needs age_from, eur and optionally age_to: {err}") from None
        if band.eur_per_head < 0 or (band.age_to is not None and band.age_to <= band.age_from):
            raise StressConfigError(f"{where}: needs eur ≥ 0 and age_to > age_from")
        bands.append(band)
    bands.sort(key=lambda b: b.age_from)
    # the bands must tile 0 to open end, or part of the population would carry no cost and nobody would notice
    expected_from = 0
    for band in bands:
        if band.age_from != expected_from:
            raise StressConfigError(f"{path}: social_cost_per_head bands must tile the ages from 0 without gaps or "
                                    f"overlaps; a band starting at {expected_from} is expected, found {band.age_from}")
        expected_from = band.age_to
    if bands and bands[-1].age_to is not None:
        raise StressConfigError(f"{path}: the last social_cost_per_head band must be open (no age_to)")
    return tuple(bands)


def load_stress_config(path: str | Path) -> StressConfig:
    """config/fiscal_scenarios.toml → StressConfig; every error names the file, the scenario or section and field."""
    path = Path(path)
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    horizon = _positive(path, "top level", "horizon_years", raw.get("horizon_years"), whole=True)
    if not 1 <= horizon <= 30:
        raise StressConfigError(f"{path}: top level, field 'horizon_years': must be from 1 to 30, got {horizon}")
    assumptions = raw.get("assumptions", {})
    repricing = _positive(path, "assumptions", "long_term_repricing_years", assumptions.get("long_term_repricing_years"))
    fallback_rate = _positive(path, "assumptions", "rate_without_debt_pct", assumptions.get("rate_without_debt_pct"))
    lights = raw.get("traffic_light", {})
    yellow = _thresholds(path, "yellow", lights.get("yellow", {}))
    red = _thresholds(path, "red", lights.get("red", {}))
    if (
        red.interest_to_revenue_pct < yellow.interest_to_revenue_pct
        or red.liquidity_credit_per_capita_eur < yellow.liquidity_credit_per_capita_eur
        or red.reserves_exhausted_within_years > yellow.reserves_exhausted_within_years
    ):
        raise StressConfigError(f"{path}: traffic_light.red must be at least as strict as traffic_light.yellow "
                                "(higher ratios and credit, fewer years of reserves)")
    scenarios = tuple(_scenario(path, entry, i) for i, entry in enumerate(raw.get("scenario", []), start=1))
    if not scenarios:
        raise StressConfigError(f"{path}: at least one [[scenario]] is required")
    names = [s.name for s in scenarios]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise StressConfigError(f"{path}: scenario names must be unique, found twice: {twice}")
    bands = _cost_bands(path, raw.get("social_cost_per_head", []))
    demographic = [s.name for s in scenarios if s.social_spending == "demographic"]
    if demographic and not bands:
        raise StressConfigError(f"{path}: scenario {demographic[0]!r}, field 'social_spending': 'demographic' needs "
                                "[[social_cost_per_head]] bands")
    return StressConfig(
        horizon_years=int(horizon),
        long_term_repricing_years=float(repricing),
        rate_without_debt_pct=float(fallback_rate),
        social_cost_per_head=bands,
        yellow=yellow,
        red=red,
        scenarios=scenarios,
    )


# ---------------------------------------------------------------------------------------------------------------
# The projection of one municipality under one scenario
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaseYear:
    """The base-year budget the projection starts from (one FINANCE row without missing required values)."""

    tax_revenue: float
    total_revenue: float
    social_spending: float
    total_spending: float
    debt_long_term: float
    liquiditaetskredite: float
    interest_paid: float
    reserves: float | None
    population: int


@dataclass(frozen=True)
class YearResult:
    t: int  # years after the base year; 0 = the base year as booked
    deficit: float  # spending − revenue; positive = deficit, negative = surplus
    liquidity_credit: float  # Liquiditätskredite at the end of the year
    reserves: float  # reserves at the end of the year (0 when unknown)
    interest: float
    revenue: float
    reserves_short: bool  # reserves did not cover the year's deficit


def project(base: BaseYear, scenario: Scenario, config: StressConfig, social_change: list[float] | None = None) -> list[YearResult]:
    """Year-by-year budget path under a scenario, t = 0..horizon.

    `social_change[t]` is the change of social spending against the base year that the projected population
    implies (Σ cost per head × (population_t − population_base) over the age bands), for t = 0..horizon; None
    keeps social spending at its base-year level. The recursion (this year's interest depends on last year's
    credit) is why this is a plain loop and not a frame expression.
    """
    debt = base.debt_long_term + base.liquiditaetskredite
    base_rate = base.interest_paid / debt if debt > 0 else config.rate_without_debt_pct / 100
    shock = scenario.interest_shock_pp / 100
    other_revenue = base.total_revenue - base.tax_revenue
    other_spending = base.total_spending - base.social_spending - base.interest_paid
    credit = base.liquiditaetskredite
    reserves = base.reserves or 0.0
    path = [
        YearResult(0, base.total_spending - base.total_revenue, credit, reserves, base.interest_paid, base.total_revenue, False)
    ]
    for t in range(1, config.horizon_years + 1):
        # Liquiditätskredite are short-term and reprice at once; long-term debt reprices as it matures
        long_term_rate = base_rate + shock * min(1.0, t / config.long_term_repricing_years)
        interest = long_term_rate * base.debt_long_term + (base_rate + shock) * credit
        revenue = base.tax_revenue * (1 + scenario.revenue_shock_pct / 100) + other_revenue
        social_level = base.social_spending + (social_change[t] if social_change is not None else 0.0)
        social = max(0.0, social_level) * (1 + scenario.social_cost_growth_pct / 100) ** t
        deficit = other_spending + social + interest - revenue
        if deficit > 0:
            drawn = min(reserves, deficit)
            short = drawn < deficit
            reserves -= drawn
            credit += deficit - drawn
        else:
            repaid = min(credit, -deficit)
            short = False
            credit -= repaid
            reserves += -deficit - repaid
        path.append(YearResult(t, deficit, credit, reserves, interest, revenue, short))
    return path


def _social_changes(
    projection: pl.DataFrame, bands: tuple[CostBand, ...], base_year: int, horizon: int
) -> dict[str, list[float] | str]:
    """Per area: the social spending change for t = 0..horizon, or the flag why it cannot be computed.

    projection: area_code, year, age_from, age_to (exclusive, null = open), population (projected persons).
    Each projected age group must lie inside one cost band; a group that straddles two bands has no cost.
    """
    result: dict[str, list[float] | str] = {}
    years = list(range(base_year, base_year + horizon + 1))
    for (area,), rows in projection.partition_by("area_code", as_dict=True).items():
        weighted = dict.fromkeys(years, 0.0)
        seen_years = set()
        aligned = True
        for row in rows.iter_rows(named=True):
            group_to = row["age_to"] if row["age_to"] is not None else math.inf
            band = next(
                (b for b in bands if b.age_from <= row["age_from"]
                 and group_to <= (b.age_to if b.age_to is not None else math.inf)),
                None,
            )
            if band is None:
                aligned = False
            if row["year"] in weighted and row["population"] is not None and band is not None:
                weighted[row["year"]] += band.eur_per_head * row["population"]
                seen_years.add(row["year"])
        if not aligned:
            result[area] = FLAG_AGE_BANDS
        elif seen_years != set(years):
            result[area] = FLAG_PROJECTION
        else:
            result[area] = [weighted[y] - weighted[base_year] for y in years]
    return result


# ---------------------------------------------------------------------------------------------------------------
# The stress test over all municipalities and scenarios
# ---------------------------------------------------------------------------------------------------------------

PATH_INDICATORS = ("stress_deficit", "stress_liquidity_credit", "stress_interest_to_revenue", "stress_reserves")
SUMMARY_INDICATORS = ("stress_years_until_reserves_used", "stress_class")
CLASS_VALUES = {"green": 0.0, "yellow": 1.0, "red": 2.0}
STRESS_SCHEMA = {
    "area_code": pl.String,
    "scenario": pl.String,
    "base_year": pl.Int32,
    "year": pl.Int32,  # null for the summary rows (years until reserves used, class), which cover the horizon
    "indicator_id": pl.String,
    "value": pl.Float64,
    "flag": pl.String,
    "label": pl.String,  # traffic-light colour (stress_class only)
    "reason": pl.String,  # which thresholds set the colour (stress_class only)
    "population_basis": pl.String,
}


def _traffic_light(path: list[YearResult], base: BaseYear, years_used: int | None, config: StressConfig) -> tuple[str, str]:
    """The colour and the readable reason; the worst year of the horizon counts."""
    projected = path[1:]
    ratio = max((y.interest / y.revenue * 100 if y.revenue > 0 else math.inf) for y in projected)
    credit = max(y.liquidity_credit for y in projected) / base.population
    reasons = {"red": [], "yellow": []}
    for level in ("red", "yellow"):
        limits: Thresholds = getattr(config, level)
        if ratio >= limits.interest_to_revenue_pct:
            reasons[level].append(f"interest/revenue up to {ratio:.1f} % ≥ {limits.interest_to_revenue_pct:g} %")
        if credit >= limits.liquidity_credit_per_capita_eur:
            reasons[level].append(
                f"Liquiditätskredite up to {credit:,.0f} €/inhabitant ≥ {limits.liquidity_credit_per_capita_eur:,.0f} €"
            )
        if years_used is not None and years_used <= limits.reserves_exhausted_within_years:
            reasons[level].append(f"reserves used up in year {years_used} ≤ {limits.reserves_exhausted_within_years}")
        if reasons[level]:
            return level, "; ".join(reasons[level])
    note = "" if base.reserves is not None else " (reserves unknown, not assessed)"
    return "green", "no threshold reached" + note


def _rows_for(area: str, scenario: Scenario, base_year: int, basis: str | None, path: list[YearResult],
              base: BaseYear, config: StressConfig) -> list[dict]:
    common = {"area_code": area, "scenario": scenario.name, "base_year": base_year, "population_basis": basis}
    rows = []
    for y in path:
        ratio = y.interest / y.revenue * 100 if y.revenue > 0 else None
        values = {
            "stress_deficit": (y.deficit, None),
            "stress_liquidity_credit": (y.liquidity_credit, None),
            "stress_interest_to_revenue": (ratio, None if ratio is not None else FLAG_ZERO),
            "stress_reserves": (y.reserves, None) if base.reserves is not None else (None, FLAG_RESERVES_UNKNOWN),
        }
        rows += [{**common, "year": base_year + y.t, "indicator_id": i, "value": v, "flag": f} for i, (v, f) in values.items()]
    used = next((y.t for y in path if y.reserves_short), None)
    if base.reserves is None:
        used_row = (None, FLAG_RESERVES_UNKNOWN)
    else:
        used_row = (float(used), None) if used is not None else (None, FLAG_NOT_EXHAUSTED)
    label, reason = _traffic_light(path, base, used if base.reserves is not None else None, config)
    rows.append({**common, "year": None, "indicator_id": "stress_years_until_reserves_used",
                 "value": used_row[0], "flag": used_row[1]})
    rows.append({**common, "year": None, "indicator_id": "stress_class", "value": CLASS_VALUES[label],
                 "flag": None, "label": label, "reason": reason})
    return rows


def _flagged_rows(area: str, scenario: Scenario, base_year: int, basis: str | None, flag: str, horizon: int) -> list[dict]:
    """Every output of the area and scenario present, without a value, so a gap is visible rather than absent."""
    common = {"area_code": area, "scenario": scenario.name, "base_year": base_year, "population_basis": basis,
              "value": None, "flag": flag}
    rows = [{**common, "year": base_year + t, "indicator_id": i} for t in range(horizon + 1) for i in PATH_INDICATORS]
    return rows + [{**common, "year": None, "indicator_id": i} for i in SUMMARY_INDICATORS]


def stress_test(
    finance: pl.DataFrame, config: StressConfig, base_year: int, projection: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Every municipality of `finance` × every configured scenario, from `base_year` over the horizon.

    Long form (STRESS_SCHEMA): the paths per year (base year included, as booked) and per municipality and scenario
    the years until reserves are used up and the traffic-light class (value 0 green, 1 yellow, 2 red).
    A municipality without a usable base-year row, or without a projection where a scenario needs one, gets all its
    rows with a null value and a flag.
    """
    required = [c for c in AMOUNT_COLUMNS if c not in OPTIONAL_COLUMNS] + ["population"]
    social = (
        _social_changes(projection, config.social_cost_per_head, base_year, config.horizon_years)
        if projection is not None
        else {}
    )
    base_rows = {r["area_code"]: r for r in finance.filter(pl.col("year") == base_year).iter_rows(named=True)}
    rows: list[dict] = []
    for area in sorted(finance["area_code"].unique().to_list()):
        record = base_rows.get(area)
        basis = record["population_basis"] if record else None
        usable = record is not None and all(record[c] is not None for c in required)
        base = BaseYear(**{f.name: record[f.name] for f in fields(BaseYear)}) if usable else None
        for scenario in config.scenarios:
            change = None
            flag = None if usable else FLAG_INPUT
            if flag is None and scenario.social_spending == "demographic":
                change = social.get(area, FLAG_PROJECTION)
                flag = change if isinstance(change, str) else None
            if flag is not None:
                rows += _flagged_rows(area, scenario, base_year, basis, flag, config.horizon_years)
                continue
            path = project(base, scenario, config, change)
            rows += _rows_for(area, scenario, base_year, basis, path, base, config)
    return pl.DataFrame(rows, schema=STRESS_SCHEMA).sort("area_code", "scenario", "indicator_id", "year", nulls_last=True)
