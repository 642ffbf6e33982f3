"""Population projection for Kreise: the real Destatis 12421-0004 table for NRW, the ratio method by hand, the
base-year invariant and the Land-sum invariant on the real sample, the variants, and every refusal."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from conftest import GENESIS_2018, ROOT, SAMPLE
from transforms.bad_input import BadInputError
from transforms.genesis_csv import parse_genesis_csv
from transforms.population_projection import (
    METHOD,
    LandNotCoveredError,
    parse_genesis_projection,
    project_areas,
)
from transforms.projection import PROJECTION_COLUMNS
from transforms.resilience_config import ResilienceConfigError, load_resilience_config
from warehouse.marts_resilience import read_projection

TABLE = SAMPLE / "projection" / "12421-0004_14kBV_NRW_Insgesamt_excerpt.csv"
BASE = date(2018, 12, 31)
VARIANTS = {"G2L2W1": "low", "G2L2W2": "medium", "G2L2W3": "high"}
SAMPLE_KREISE = ["05914", "05954", "05562", "05913", "05911", "05958", "05962"]


@pytest.fixture(scope="module")
def land() -> pl.DataFrame:
    return parse_genesis_projection(TABLE.read_bytes(), TABLE.name)


@pytest.fixture(scope="module")
def observed() -> pl.DataFrame:
    return parse_genesis_csv(GENESIS_2018.read_bytes(), GENESIS_2018.name)


@pytest.fixture(scope="module")
def kreise(observed, land) -> pl.DataFrame:
    return project_areas(observed, land, BASE, VARIANTS)


def cell(frame: pl.DataFrame, **where) -> object:
    rows = frame.filter([pl.col(c).eq_missing(v) for c, v in where.items()])
    assert rows.height == 1, rows
    return rows["value"][0]


# --- the real table --------------------------------------------------------------------------------------------

def test_the_real_table_parses_to_persons_by_variant_age_and_date(land):
    # 3 variants × (101 ages + total) × 42 Stichtage 31.12.2019 … 31.12.2060
    assert land.height == 3 * 102 * 42
    assert land["reference_date"].unique().sort().to_list()[::41] == [date(2019, 12, 31), date(2060, 12, 31)]
    assert set(land["area_code"]) == {"05"} and set(land["sex"]) == {"total"} and land["flag"].null_count() == land.height
    assert land.select("variant_code", "variant").unique().sort("variant").rows() == [
        ("BEV-VARIANTE-01", "G2L2W1"), ("BEV-VARIANTE-02", "G2L2W2"), ("BEV-VARIANTE-03", "G2L2W3")]
    # published NRW totals (thousands) on 31.12.2030: W1 17,721, W2 17,767, W3 17,952
    totals_2030 = land.filter(pl.col("is_total"), reference_date=date(2030, 12, 31)).sort("variant")
    assert totals_2030["value"].to_list() == [17_721_000, 17_767_000, 17_952_000]
    # single ages as published: 173 thousand under 1 in 2019, 31 thousand aged 100+ in 2060 (moderate variant)
    medium = land.filter(variant="G2L2W2")
    assert cell(medium, age_label="unter 1 Jahr", reference_date=date(2019, 12, 31)) == 173_000
    hundred = medium.filter(age_label="100 Jahre und mehr", reference_date=date(2060, 12, 31))
    assert hundred.select("age_from", "age_to", "value").row(0) == (100, None, 31_000)
    assert medium.filter(age_label="17-Jährige").select("age_from", "age_to").unique().row(0) == (17, 18)


def test_single_ages_add_up_to_the_published_total_within_rounding(land):
    summed = (
        land.filter(~pl.col("is_total")).group_by("variant", "reference_date").agg(summed=pl.col("value").sum())
        .join(land.filter(pl.col("is_total")).select("variant", "reference_date", "value"), on=["variant", "reference_date"])
    )
    assert summed.height == 3 * 42
    # 101 ages and the total, each rounded to whole thousands; in this table they differ by at most 10 thousand
    assert (summed["summed"] - summed["value"]).abs().max() <= 10_000
    w2_2030 = summed.filter(variant="G2L2W2", reference_date=date(2030, 12, 31)).row(0, named=True)
    assert abs(w2_2030["summed"] - 17_767_000) <= 51 * 1000


def test_variants_are_ordered_low_medium_high_in_the_total(land, kreise):
    totals = land.filter(pl.col("is_total")).pivot(on="variant", index="reference_date", values="value")
    # checked in the data, not assumed: W1 ≤ W2 ≤ W3 on every Stichtag (W1 = W2 in some years up to 2025), strictly
    # from 2026 on
    assert ((totals["G2L2W1"] <= totals["G2L2W2"]) & (totals["G2L2W2"] <= totals["G2L2W3"])).all()
    late = totals.filter(pl.col("reference_date").dt.year() >= 2026)
    assert ((late["G2L2W1"] < late["G2L2W2"]) & (late["G2L2W2"] < late["G2L2W3"])).all()
    # in 2060 the spread is 15,814 / 16,495 / 17,386 thousand
    assert totals.filter(reference_date=date(2060, 12, 31)).row(0)[1:] == (15_814_000, 16_495_000, 17_386_000)
    # the sample Kreise follow the Land's order in their totals
    per_kreis = kreise.filter(pl.col("area_code").is_in(SAMPLE_KREISE), year=2040).group_by("area_code", "variant").agg(
        pl.col("value").sum()).pivot(on="variant", index="area_code", values="value")
    assert per_kreis.height == 7
    assert ((per_kreis["low"] < per_kreis["medium"]) & (per_kreis["medium"] < per_kreis["high"])).all()


# --- the ratio method ------------------------------------------------------------------------------------------

def genesis(rows: list[str], dates: tuple[str, ...] = ("31.12.2019", "31.12.2020"), unit: str = "(1000)") -> bytes:
    """A projection table in the 12421-0004 layout; rows are 'Land;variant;age;v1;v2' shortened by the helper."""
    head = [
        "Vorausberechneter Bevölkerungsstand: Bundesländer, Stichtag,;;",
        f"Vorausberechneter Bevölkerungsstand {unit};;",
        ";;;;;" + ";".join("Stichtag" for _ in dates),
        ";;;;;" + ";".join(dates),
    ]
    body = []
    for row in rows:
        land, variant, age, *values = row.split(";")
        body.append(f"{land};BEV-VARIANTE-02;Geburten, LE und WS moderat ({variant});Insgesamt;{age};" + ";".join(values))
    return "\n".join(head + body).encode("utf-8")


# Land 05 by single years 0, 1, 2 and 3+ (thousands): 2019 = the base within 0 %, 2020: 0–1 grow to 500, 2+ to 240
TINY_LAND = [
    "Nordrhein-Westfalen;G2L2W2;unter 1 Jahr;200;250",
    "Nordrhein-Westfalen;G2L2W2;1-Jährige;200;250",
    "Nordrhein-Westfalen;G2L2W2;2-Jährige;70;100",
    "Nordrhein-Westfalen;G2L2W2;3 Jahre und mehr;130;140",
    "Nordrhein-Westfalen;G2L2W2;Insgesamt;600;740",
]


def observed_groups(areas: dict[str, tuple[str, str]], on: date = BASE) -> pl.DataFrame:
    """Observed groups 0–2 and 2+ per area as delivered cells ('100000', '.', '-')."""
    rows = [
        (area, on, "total", lo, hi, False, cells[i], "12411-02-03-5-B", "observed.csv")
        for area, cells in areas.items() for i, (lo, hi) in enumerate([(0, 2), (2, None)])
    ]
    frame = pl.DataFrame(rows, orient="row", schema={
        "area_code": pl.String, "reference_date": pl.Date, "sex": pl.String, "age_from": pl.Int32, "age_to": pl.Int32,
        "is_total": pl.Boolean, "cell": pl.String, "table_code": pl.String, "source_file": pl.String})
    return frame.with_columns(
        value=pl.when(pl.col("cell").str.contains(r"^\d+$")).then(pl.col("cell").cast(pl.Int64, strict=False)),
        flag=pl.when(~pl.col("cell").str.contains(r"^\d+$")).then(pl.col("cell")),
    )


def test_ratio_method_by_hand():
    land = parse_genesis_projection(genesis(TINY_LAND), "tiny.csv")
    observed = observed_groups({"05001": ("100000", "50000"), "05002": ("300000", "150000"), "05313": ("-", "-")})
    result = project_areas(observed, land, BASE, {"G2L2W2": "medium"})
    assert result.columns == [*PROJECTION_COLUMNS, "method"] and set(result["method"]) == {METHOD}
    # Land base = Σ Kreise: 400,000 aged 0–1, 200,000 aged 2+ (05313's '-' is nothing); 2020: × 500/400 and × 240/200
    assert cell(result, area_code="05001", year=2020, age_from=0) == 125_000
    assert cell(result, area_code="05001", year=2020, age_from=2) == 60_000
    assert cell(result, area_code="05002", year=2020, age_from=0) == 375_000
    assert cell(result, area_code="05002", year=2020, age_from=2) == 180_000
    # 2019: 400/400 and 200/200; the base year is the observed population itself
    assert cell(result, area_code="05002", year=2019, age_from=2) == 150_000
    assert cell(result, area_code="05001", year=2018, age_from=0) == 100_000
    # an area with special values keeps no number (never a zero)
    assert result.filter(area_code="05313")["value"].null_count() == 3 * 2


def test_a_secret_cell_leaves_its_area_and_the_land_group_without_a_value():
    land = parse_genesis_projection(genesis(TINY_LAND), "tiny.csv")
    observed = observed_groups({"05001": ("100000", "."), "05002": ("300000", "150000")})
    result = project_areas(observed, land, BASE, {"G2L2W2": "medium"})
    assert cell(result, area_code="05001", year=2020, age_from=2) is None
    # the Land's 2+ base is unknown once one Kreis is secret, so no Kreis gets a projected 2+ value
    assert cell(result, area_code="05002", year=2020, age_from=2) is None
    assert cell(result, area_code="05002", year=2020, age_from=0) == 375_000
    assert cell(result, area_code="05002", year=2018, age_from=2) == 150_000


def test_projection_equals_the_observed_population_at_the_base_year(observed, kreise):
    base = observed.filter(reference_date=BASE, sex="total", is_total=False).select("area_code", "age_from", "age_to", "value")
    for kreis in SAMPLE_KREISE:
        want = base.filter(area_code=kreis).sort("age_from")
        assert want.height == 17
        for variant in ("low", "medium", "high"):
            got = kreise.filter(area_code=kreis, year=2018, variant=variant).sort("age_from")
            assert got.select("age_from", "age_to", "value").equals(want.select("age_from", "age_to", "value")), (kreis, variant)
    # Hagen: 188,814 inhabitants on 31.12.2018 (12411-02-03-5-B)
    assert kreise.filter(area_code="05914", year=2018, variant="medium")["value"].sum() == 188_814


def test_the_kreise_add_up_to_the_land_projection(land, kreise):
    """Σ_k observed_k × P / Σ_k observed_k = P: the Kreise of NRW reproduce the Land within their rounding."""
    kreis_rows = kreise.filter(pl.col("area_code").str.len_chars() == 5, pl.col("year") > 2018)
    assert kreis_rows["area_code"].n_unique() == 55  # 53 Kreise and the two historical Aachen codes without values
    summed = kreis_rows.group_by("year", "variant", "age_from").agg(pl.col("value").sum())
    lower_bounds = sorted(summed["age_from"].unique().to_list())
    group_of = {age: max(b for b in lower_bounds if b <= age) for age in range(101)}  # 75+ takes 75 … 100+
    land_groups = (
        land.filter(~pl.col("is_total"))
        .group_by(year=pl.col("reference_date").dt.year(), variant=pl.col("variant").replace_strict(VARIANTS),
                  age_from=pl.col("age_from").replace_strict(group_of, return_dtype=pl.Int32))
        .agg(land=pl.col("value").sum())
    )
    joined = summed.join(land_groups, on=["year", "variant", "age_from"])
    assert joined.height == 42 * 3 * 17
    # at most half a person of rounding per Kreis
    assert (joined["value"] - joined["land"]).abs().max() <= 53 / 2
    # 75+ in 2030, moderate variant: the Land's 75 … 100+ summed
    open_group = land.filter(pl.col("age_from") >= 75, variant="G2L2W2", reference_date=date(2030, 12, 31))["value"].sum()
    assert cell(summed, year=2030, variant="medium", age_from=75) == pytest.approx(open_group, abs=26)


def test_hagen_ages_faster_than_nrw_only_through_its_own_age_structure(kreise):
    """The ratio method keeps the Kreis share per group: Hagen's 75+ grows by exactly the Land's factor."""
    hagen = kreise.filter(area_code="05914", variant="medium", age_from=75)
    assert cell(hagen, year=2018) == 22_930
    growth = cell(hagen, year=2030) / cell(hagen, year=2018)
    assert 1.0 < growth < 1.2


# --- refusals ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rows, row, reason", [
    (["Nordrhein-Westfalen;G2L2W2;unter 1 Jahr;200;abc"], 5, r"value 'abc' for 31.12.2020 is neither a number nor a special value"),
    (["Nordrhein-Westfalen;G2L2W2;unter 1 Jahr;200"], 5, r"expected 7 fields separated by ';', found 6"),
    (["Nordrhein Westfalen;G2L2W2;unter 1 Jahr;200;250"], 5, r"unknown Land 'Nordrhein Westfalen'"),
    (["Nordrhein-Westfalen;G2L2W2;Kleinkinder;200;250"], 5, r"unknown age label 'Kleinkinder'"),
    ([TINY_LAND[0], TINY_LAND[0]], 6, r"unter 1 Jahr appears twice \(first in row 5\)"),
    # a truncated download: the block lost its ages from 2 on
    (TINY_LAND[:2] + TINY_LAND[4:], 5, r"the open oldest age group .* is missing"),
    (TINY_LAND[:1] + TINY_LAND[2:], 6, r"age 1 is expected, found 2"),
    (TINY_LAND[:4], 5, r"the 'Insgesamt' row is missing"),
    (TINY_LAND[:4] + ["Nordrhein-Westfalen;G2L2W2;Insgesamt;600;800"], 9,
     r"the 4 ages add up to 740000 persons on 31.12.2020, the total is 800000 \(more than the rounding of ±2500 apart\)"),
])
def test_bad_tables_are_refused_with_file_row_and_reason(rows, row, reason):
    with pytest.raises(BadInputError, match=reason) as err:
        parse_genesis_projection(genesis(rows), "bad.csv")
    assert (err.value.file, err.value.row) == ("bad.csv", row)


def test_special_values_are_flags_and_a_footer_ends_the_table():
    rows = TINY_LAND[:3] + ["Nordrhein-Westfalen;G2L2W2;3 Jahre und mehr;130;."] + TINY_LAND[4:]
    data = genesis(rows) + "\n__________\n© Statistisches Bundesamt (Destatis), 2021\nStand: 01.01.2021".encode()
    land = parse_genesis_projection(data, "flagged.csv")
    secret = land.filter(age_label="3 Jahre und mehr", reference_date=date(2020, 12, 31)).row(0, named=True)
    assert (secret["value"], secret["flag"], secret["source_row"]) == (None, ".", 8)
    assert land.height == 5 * 2


def test_a_table_without_unit_or_dates_is_refused():
    with pytest.raises(BadInputError, match=r"must state the unit once, '\(1000\)' or '\(Anzahl\)', found none"):
        parse_genesis_projection(genesis(TINY_LAND, unit="(Personen)"), "nounit.csv")
    with pytest.raises(BadInputError, match=r"no header line with the reference dates"):
        parse_genesis_projection(b"Vorausberechneter Bev\xc3\xb6lkerungsstand (1000)\nNordrhein-Westfalen;x", "nodates.csv")
    persons = parse_genesis_projection(genesis(TINY_LAND, unit="(Anzahl)"), "persons.csv")
    assert cell(persons, age_label="Insgesamt", reference_date=date(2020, 12, 31)) == 740


def test_wrong_variants_and_an_incomplete_land_are_refused(land, observed):
    with pytest.raises(BadInputError, match=r"variant\(s\) G2L2W9 are not in the projection \(found: G2L2W1, G2L2W2, G2L2W3\)"):
        project_areas(observed, land, BASE, {"G2L2W9": "high"})
    with pytest.raises(BadInputError, match=r"variant name\(s\) central are not one of low, medium, high"):
        project_areas(observed, land, BASE, {"G2L2W2": "central"})
    # only the 7 sample Kreise loaded: their sum is not NRW, every ratio would be 5 times too large
    seven = observed.filter(pl.col("area_code").is_in(SAMPLE_KREISE))
    with pytest.raises(LandNotCoveredError, match=r"Land 05 on 2018-12-31 sums to 2,752,604 persons \(7 areas\).*"
                                                  r"load all Kreise of the Land"):
        project_areas(seven, land, BASE, VARIANTS)
    with pytest.raises(LandNotCoveredError, match=r"no observed population of Land 05 on 2017-12-31"):
        project_areas(observed, land, date(2017, 12, 31), VARIANTS)


def test_groups_the_projection_cannot_form_are_refused():
    five_years = genesis([
        "Nordrhein-Westfalen;G2L2W2;unter 5 Jahre;400;500",
        "Nordrhein-Westfalen;G2L2W2;5 Jahre und mehr;200;240",
        "Nordrhein-Westfalen;G2L2W2;Insgesamt;600;740",
    ])
    land = parse_genesis_projection(five_years, "five.csv")
    observed = observed_groups({"05001": ("400000", "200000")})  # groups 0–1 and 2+
    with pytest.raises(BadInputError, match=r"projected age group 'unter 5 Jahre' straddles the observed age group"):
        project_areas(observed, land, BASE, {"G2L2W2": "medium"})


# --- configuration and the mart's reader -------------------------------------------------------------------------

def test_the_configured_land_table_feeds_the_marts(observed, caplog):
    settings = load_resilience_config().projection
    assert (settings.land_table_code, settings.base_date) == ("12421-0004", BASE)
    loaded = parse_genesis_projection(TABLE.read_bytes(), TABLE.name)  # what the ingest step puts in the warehouse
    projection = read_projection(settings, observed, loaded)
    assert projection.filter(area_code="05954", year=2024)["variant"].unique().sort().to_list() == ["high", "low", "medium"]
    # a warehouse with part of the Land: the marts stay empty and the log says why
    with caplog.at_level(logging.WARNING):
        assert read_projection(settings, observed.filter(area_code="05954"), loaded) is None
    assert "population projection skipped" in caplog.text and "load all Kreise" in caplog.text
    # the table not loaded (yet): no projection, and the log names the table
    with caplog.at_level(logging.WARNING):
        assert read_projection(settings, observed, None) is None
    assert "projection table 12421-0004 is not loaded" in caplog.text


def test_projection_settings_are_checked(tmp_path: Path):
    text = (ROOT / "config" / "resilience.toml").read_text(encoding="utf-8").replace('root = ".."', f'root = "{ROOT}"')
    broken = tmp_path / "resilience.toml"
    broken.write_text(text.replace("# file = \"data/projection/itnrw_vorausberechnung_kreise.csv\"",
                                   f"file = \"{TABLE}\""), encoding="utf-8")
    with pytest.raises(ResilienceConfigError, match=r"field 'projection.land_table_code': set one of file .* not several"):
        load_resilience_config(broken)
    broken.write_text(text.replace('high = "G2L2W3"', 'high = "G2L2W2"'), encoding="utf-8")
    with pytest.raises(ResilienceConfigError, match=r"field 'projection.variants'"):
        load_resilience_config(broken)
    broken.write_text(text.replace("base_date = 2018-12-31", 'base_date = "31.12.2018"'), encoding="utf-8")
    with pytest.raises(ResilienceConfigError, match=r"field 'projection.base_date': a date YYYY-MM-DD is required"):
        load_resilience_config(broken)
    broken.write_text(text.replace('variants = { low = "G2L2W1", medium = "G2L2W2", high = "G2L2W3" }',
                                   'variants = { low = "G2L2W1" }'), encoding="utf-8")
    with pytest.raises(ResilienceConfigError, match=r"field 'projection.fiscal_variant': 'medium' is not one of"):
        load_resilience_config(broken)
