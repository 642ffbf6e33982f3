"""Fiscal indicators and the stress test: an invented municipality by hand, invariants over parameter sweeps,
flagged results for bad or missing inputs, and the scenario configuration's error messages."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from conftest import ROOT, SAMPLE
from transforms.bad_input import BadInputError
from transforms.catalogue import indicators_of_kind
from transforms.fiscal_stress import (
    FINANCE_COLUMNS,
    BaseYear,
    CostBand,
    Scenario,
    StressConfig,
    StressConfigError,
    Thresholds,
    finance_indicators,
    load_stress_config,
    parse_finance_csv,
    project,
    stress_test,
)

SAMPLE_FINANCE = SAMPLE / "finance" / "SYNTHETIC_finance_nrw_kreise_2019-2022.csv"

# Musterstadt 09999, 10,000 inhabitants, a balanced budget of 30 M€: tax 10 M, social 9 M, interest 0.6 M on
# 10 M long-term debt + 10 M Liquiditätskredite (3 %), other spending 20.4 M, reserves 1 M
MUSTERSTADT = {"area_code": "09999", "area_name": "Musterstadt", "population": "10000", "population_basis": "Zensus 2022",
               "tax_revenue": "10000000", "total_revenue": "30000000", "social_spending": "9000000",
               "total_spending": "30000000", "debt_long_term": "10000000", "liquiditaetskredite": "10000000",
               "interest_paid": "600000", "reserves": "1000000"}
CONFIG = StressConfig(
    horizon_years=3,
    long_term_repricing_years=2,
    rate_without_debt_pct=3.0,
    social_cost_per_head=(CostBand(0, 65, 100.0), CostBand(65, None, 1000.0)),
    yellow=Thresholds(interest_to_revenue_pct=3, liquidity_credit_per_capita_eur=1050, reserves_exhausted_within_years=3),
    red=Thresholds(interest_to_revenue_pct=6, liquidity_credit_per_capita_eur=3000, reserves_exhausted_within_years=1),
    scenarios=(Scenario("baseline"), Scenario("revenue_-10", revenue_shock_pct=-10),
               Scenario("interest_+2", interest_shock_pp=2), Scenario("demography", social_spending="demographic")),
)


def finance_csv(rows: list[dict]) -> bytes:
    lines = [",".join(FINANCE_COLUMNS)]
    lines += [",".join(str(r.get(c, "")) for c in FINANCE_COLUMNS) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def musterstadt(**changes) -> pl.DataFrame:
    return parse_finance_csv(finance_csv([{**MUSTERSTADT, "year": 2022, **changes}]), "finance.csv")


def base(**changes) -> BaseYear:
    values = {k: float(v) for k, v in MUSTERSTADT.items() if k not in ("area_code", "area_name", "population_basis")}
    return BaseYear(**{**values, "population": 10_000, **changes})


def path_of(result: pl.DataFrame, scenario: str, indicator_id: str) -> list:
    rows = result.filter(pl.col("scenario") == scenario, pl.col("indicator_id") == indicator_id).sort("year")
    return rows["value"].to_list()


def summary(result: pl.DataFrame, scenario: str, indicator_id: str) -> dict:
    rows = result.filter(pl.col("scenario") == scenario, pl.col("indicator_id") == indicator_id)
    assert rows.height == 1
    return rows.row(0, named=True)


# ---- indicators --------------------------------------------------------------------------------------------------


def test_indicators_by_hand():
    mart = finance_indicators(musterstadt())
    got = {r["indicator_id"]: (r["value"], r["flag"]) for r in mart.iter_rows(named=True)}
    assert got["debt_per_capita"] == (2000.0, None)
    assert got["liquidity_credit_per_capita"] == (1000.0, None)
    assert got["interest_to_revenue"] == (pytest.approx(2.0), None)
    assert got["social_spending_share"] == (pytest.approx(30.0), None)
    assert got["tax_revenue_per_capita_4y"] == (None, "fewer_than_4_years")
    assert set(got) == {i.id for i in indicators_of_kind("fiscal")}


def test_tax_revenue_is_a_four_year_mean_and_records_the_census_break():
    years = [{**MUSTERSTADT, "year": y, "tax_revenue": str(t), "population": str(p), "population_basis": b}
             for y, t, p, b in [(2019, 9_000_000, 10_000, "Zensus 2011"), (2020, 8_000_000, 10_000, "Zensus 2011"),
                                (2021, 10_000_000, 10_000, "Zensus 2011"), (2022, 9_500_000, 9_500, "Zensus 2022")]]
    mart = finance_indicators(parse_finance_csv(finance_csv(years), "finance.csv"))
    row = mart.filter(pl.col("indicator_id") == "tax_revenue_per_capita_4y", pl.col("year") == 2022).row(0, named=True)
    assert row["value"] == pytest.approx((900 + 800 + 1000 + 1000) / 4)
    assert row["population_basis"] == "Zensus 2011 + Zensus 2022"


def test_sample_finance_file_reads_cleanly():
    finance = parse_finance_csv(SAMPLE_FINANCE.read_bytes(), SAMPLE_FINANCE.name)
    assert finance.height == 28 and finance["area_code"].n_unique() == 7
    assert finance.filter(pl.col("input_issue").is_not_null()).height == 0
    assert finance.filter(pl.col("reserves").is_null())["area_code"].unique().to_list() == ["05911"]


# ---- the stress test by hand -------------------------------------------------------------------------------------


def test_baseline_of_a_balanced_budget_stays_balanced():
    result = stress_test(musterstadt(), CONFIG, 2022)
    assert path_of(result, "baseline", "stress_deficit") == [0.0, 0.0, 0.0, 0.0]
    assert path_of(result, "baseline", "stress_liquidity_credit") == [10_000_000.0] * 4
    assert summary(result, "baseline", "stress_years_until_reserves_used")["flag"] == "reserves_not_exhausted_within_horizon"
    assert summary(result, "baseline", "stress_class")["label"] == "green"


def test_revenue_shock_by_hand():
    # tax −1 M a year: year 1 drawn from the 1 M reserves, year 2 on credit (11 M), year 3 the credit's interest
    # adds 30 k: 0.03 × 10 M + 0.03 × 11 M = 630 k, deficit 1.03 M, credit 12.03 M
    result = stress_test(musterstadt(), CONFIG, 2022)
    assert path_of(result, "revenue_-10", "stress_deficit") == pytest.approx([0, 1_000_000, 1_000_000, 1_030_000])
    assert path_of(result, "revenue_-10", "stress_liquidity_credit") == pytest.approx([10e6, 10e6, 11e6, 12.03e6])
    assert path_of(result, "revenue_-10", "stress_reserves") == pytest.approx([1e6, 0, 0, 0])
    assert path_of(result, "revenue_-10", "stress_interest_to_revenue")[3] == pytest.approx(630_000 / 29_000_000 * 100)
    assert summary(result, "revenue_-10", "stress_years_until_reserves_used")["value"] == 2
    cls = summary(result, "revenue_-10", "stress_class")
    # 12.03 M / 10,000 = 1,203 €/inhabitant ≥ 1,050 (yellow), reserves gone in year 2 ≤ 3 (yellow), not ≤ 1 (red)
    assert (cls["value"], cls["label"]) == (1.0, "yellow")
    assert "1,203 €" in cls["reason"] and "year 2" in cls["reason"]


def test_interest_shock_reprices_cash_credit_at_once_and_long_term_debt_as_it_matures():
    # +2 pp, long-term debt half repriced in year 1 (4 %), fully from year 2 (5 %); Liquiditätskredite at 5 % at once
    # year 1: 0.4 M + 0.5 M = 0.9 M interest → deficit 0.3 M; years 2, 3: 1.0 M → deficit 0.4 M each;
    # reserves 1 M − 0.3 − 0.4 = 0.3 M do not cover year 3's 0.4 M: credit +0.1 M
    path = project(base(), CONFIG.scenario("interest_+2"), CONFIG)
    assert [y.interest for y in path] == pytest.approx([600_000, 900_000, 1_000_000, 1_000_000])
    assert [y.deficit for y in path] == pytest.approx([0, 300_000, 400_000, 400_000])
    assert [y.reserves for y in path] == pytest.approx([1_000_000, 700_000, 300_000, 0])
    assert path[-1].liquidity_credit == pytest.approx(10_100_000)
    assert [y.reserves_short for y in path] == [False, False, False, True]


def test_social_spending_follows_the_projected_population():
    # 100 more people aged 65+ each year at 1,000 € per head → social spending +100 k, +200 k, +300 k
    projection = pl.DataFrame({
        "area_code": ["09999"] * 8, "year": [2022, 2023, 2024, 2025] * 2,
        "age_from": [0] * 4 + [65] * 4, "age_to": [65] * 4 + [None] * 4,
        "population": [8000.0] * 4 + [2000.0, 2100.0, 2200.0, 2300.0],
    })
    result = stress_test(musterstadt(), CONFIG, 2022, projection)
    assert path_of(result, "demography", "stress_deficit") == pytest.approx([0, 100_000, 200_000, 300_000])
    assert path_of(result, "demography", "stress_reserves") == pytest.approx([1e6, 900_000, 700_000, 400_000])
    grown = replace(CONFIG, scenarios=(Scenario("d", social_spending="demographic", social_cost_growth_pct=10),))
    # year 1: (9 M + 0.1 M) × 1.1 = 10.01 M → deficit 1.01 M > 1 M reserves: used up in year 1 → red
    result = stress_test(musterstadt(), grown, 2022, projection)
    assert path_of(result, "d", "stress_deficit")[1] == pytest.approx(1_010_000)
    assert summary(result, "d", "stress_years_until_reserves_used")["value"] == 1
    assert summary(result, "d", "stress_class")["label"] == "red"


# ---- invariants --------------------------------------------------------------------------------------------------


def _municipalities() -> list[BaseYear]:
    """Musterstadt in several shapes plus every sample municipality: surplus, deficit, no debt, no reserves."""
    finance = parse_finance_csv(SAMPLE_FINANCE.read_bytes(), SAMPLE_FINANCE.name).filter(pl.col("year") == 2022)
    sample = [BaseYear(**{k: r[k] for k in BaseYear.__dataclass_fields__}) for r in finance.iter_rows(named=True)]
    return [base(), base(total_spending=28e6, social_spending=8e6), base(debt_long_term=0.0, liquiditaetskredite=0.0,
            interest_paid=0.0), base(reserves=None), base(total_revenue=29e6, reserves=0.0), *sample]


def _worse_or_equal(worse: list, better: list) -> bool:
    tolerance = 1e-6
    return all(
        w.deficit >= b.deficit - tolerance * max(1, abs(b.deficit))
        and w.liquidity_credit >= b.liquidity_credit - tolerance * max(1, b.liquidity_credit)
        and w.reserves <= b.reserves + tolerance * max(1, b.reserves)
        and w.interest / w.revenue >= b.interest / b.revenue - 1e-12
        for w, b in zip(worse, better, strict=True)
    )


def test_no_shock_is_the_baseline():
    no_shock = Scenario("zero", revenue_shock_pct=0.0, interest_shock_pp=0.0, social_cost_growth_pct=0.0)
    for municipality in _municipalities():
        assert project(municipality, no_shock, CONFIG) == project(municipality, CONFIG.scenario("baseline"), CONFIG)


@pytest.mark.parametrize(
    ("field", "steps"),
    [("revenue_shock_pct", [0, -5, -10, -20, -30, -50, -100]), ("interest_shock_pp", [0, 0.5, 1.5, 3, 5, 10]),
     ("social_cost_growth_pct", [0, 1, 2, 5, 10])],
)
def test_a_larger_shock_never_improves_the_result(field, steps):
    long_config = replace(CONFIG, horizon_years=10, long_term_repricing_years=7)
    for municipality in _municipalities():
        paths = [project(municipality, Scenario("s", **{field: s}), long_config) for s in steps]
        for smaller, larger in zip(paths, paths[1:]):
            assert _worse_or_equal(larger, smaller), (field, municipality)
            first_short = [next((y.t for y in p if y.reserves_short), math.inf) for p in (smaller, larger)]
            assert first_short[1] <= first_short[0]


def test_a_larger_shock_never_gives_a_better_traffic_light():
    finance = parse_finance_csv(SAMPLE_FINANCE.read_bytes(), SAMPLE_FINANCE.name)
    for field, steps in [("revenue_shock_pct", [0, -10, -20, -30]), ("interest_shock_pp", [0, 1.5, 3, 6])]:
        scenarios = tuple(Scenario(f"s{i}", **{field: s}) for i, s in enumerate(steps))
        result = stress_test(finance, replace(CONFIG, horizon_years=10, scenarios=scenarios), 2022)
        classes = result.filter(pl.col("indicator_id") == "stress_class").pivot(on="scenario", index="area_code", values="value")
        for i in range(len(steps) - 1):
            assert (classes[f"s{i + 1}"] >= classes[f"s{i}"]).all(), (field, classes)


# ---- bad and missing input ---------------------------------------------------------------------------------------


def test_bad_values_are_kept_flagged_and_do_not_stop_the_others():
    rows = [{**MUSTERSTADT, "year": 2022, "tax_revenue": ""},
            {**MUSTERSTADT, "area_code": "09998", "year": 2022, "interest_paid": "zwölf", "population_basis": "VZ 1987"},
            {**MUSTERSTADT, "area_code": "09997", "year": 2022, "total_spending": "-5"},
            {**MUSTERSTADT, "area_code": "09996", "year": 2022}]
    finance = parse_finance_csv(finance_csv(rows), "finance.csv")
    issues = dict(finance.select("area_code", "input_issue").iter_rows())
    assert issues["09999"] == "tax_revenue is empty"
    assert "interest_paid is not a number: 'zwölf'" in issues["09998"] and "got 'VZ 1987'" in issues["09998"]
    assert issues["09997"] == "total_spending must be a finite amount ≥ 0, got '-5'"
    assert issues["09996"] is None

    mart = finance_indicators(finance)
    flags = dict(mart.filter(pl.col("indicator_id") == "interest_to_revenue").select("area_code", "flag").iter_rows())
    assert flags == {"09996": None, "09997": None, "09998": "finance_input_missing", "09999": None}

    result = stress_test(finance, CONFIG, 2022)
    broken = result.filter(pl.col("area_code") != "09996")
    assert broken["value"].null_count() == broken.height
    assert set(broken["flag"].unique()) == {"finance_input_missing"}
    sound = result.filter(pl.col("area_code") == "09996", pl.col("scenario") == "baseline")
    assert sound.filter(pl.col("indicator_id") == "stress_deficit")["value"].to_list() == [0.0] * 4


def test_missing_base_year_reserves_or_projection_give_flags_not_crashes():
    result = stress_test(musterstadt(reserves=""), CONFIG, 2022)
    assert summary(result, "baseline", "stress_years_until_reserves_used")["flag"] == "reserves_unknown"
    reserves = result.filter(pl.col("indicator_id") == "stress_reserves", pl.col("scenario") != "demography")
    assert set(reserves["flag"]) == {"reserves_unknown"}
    assert path_of(result, "demography", "stress_deficit") == [None] * 4  # no projection given
    assert summary(result, "demography", "stress_class")["flag"] == "projection_missing"
    no_base_year = stress_test(musterstadt(), CONFIG, 2023)
    assert set(no_base_year["flag"].unique()) == {"finance_input_missing"}
    straddling = pl.DataFrame({"area_code": ["09999"] * 4, "year": [2022, 2023, 2024, 2025], "age_from": [60] * 4,
                               "age_to": [70] * 4, "population": [1.0] * 4})
    result = stress_test(musterstadt(), CONFIG, 2022, straddling)
    assert summary(result, "demography", "stress_class")["flag"] == "age_groups_do_not_align"


@pytest.mark.parametrize(
    ("mutate", "row", "reason"),
    [
        (lambda t: t.replace("area_code,", "ags,", 1), 1, "missing column(s) area_code; unknown column(s) ags"),
        (lambda t: t.replace("09999", "9999", 1), 2, "area_code must be a 5- or 8-digit AGS, got '9999'"),
        (lambda t: t + t.splitlines()[1] + "\n", 3, "09999 2022 appears twice (first in line 2)"),
        (lambda t: t.replace(",2022,", ",zwanzig,", 1), 2, "year must be a whole number"),
    ],
)
def test_a_file_that_is_not_the_contract_is_refused_with_its_row(mutate, row, reason):
    text = finance_csv([{**MUSTERSTADT, "year": 2022}]).decode()
    with pytest.raises(BadInputError) as err:
        parse_finance_csv(mutate(text).encode(), "finance.csv")
    assert (err.value.file, err.value.row) == ("finance.csv", row)
    assert reason in err.value.reason


# ---- the scenario configuration ----------------------------------------------------------------------------------


def test_the_shipped_configuration_loads():
    config = load_stress_config(ROOT / "config" / "fiscal_scenarios.toml")
    assert config.scenario("baseline") == Scenario("baseline", config.scenario("baseline").description)
    assert {s.name for s in config.scenarios} >= {"revenue_-10", "revenue_-20", "revenue_-30", "interest_+1.5", "interest_+3"}
    assert 5 <= config.horizon_years <= 10


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('revenue_shock_pct = -10', 'revenue_shock_pct = 10'), "scenario 'revenue_-10', field 'revenue_shock_pct': must be a number from -100 to 0, got 10"),
        (('interest_shock_pp = 3', 'interest_shock_pp = "3"'), "scenario 'interest_+3', field 'interest_shock_pp'"),
        (('social_spending = "demographic"\n\n', 'social_spending = "demografisch"\n\n'), "scenario 'demography', field 'social_spending'"),
        (('name = "baseline"', 'name = "baseline"\nrevenue_shock = -5'), "scenario 'baseline', field 'revenue_shock': unknown field"),
        (('name = "revenue_-20"', 'name = "revenue_-10"'), "scenario names must be unique, found twice: ['revenue_-10']"),
        (("interest_to_revenue_pct = 6", "interest_to_revenue_pct = 2"), "red must be at least as strict"),
        (("age_from = 65\nage_to = 75", "age_from = 66\nage_to = 75"), "a band starting at 65 is expected, found 66"),
        (("horizon_years = 10", "horizon_years = 0"), "field 'horizon_years': must be a whole number > 0"),
    ],
)
def test_configuration_errors_name_the_scenario_and_field(tmp_path: Path, change, message):
    text = (ROOT / "config" / "fiscal_scenarios.toml").read_text(encoding="utf-8")
    old, new = change
    assert old in text
    path = tmp_path / "fiscal_scenarios.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(StressConfigError) as err:
        load_stress_config(path)
    assert message in str(err.value) and str(path) in str(err.value)
