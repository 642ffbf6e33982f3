"""E2SFCA: by hand, against PySAL access on the same input, conservation of supply, and the sample's geometry."""

from __future__ import annotations

import json
from datetime import date

import polars as pl
import pytest
from access import Access, weights

from conftest import SAMPLE
from test_demography import population
from transforms.accessibility import (
    FLAG_DEMAND_UNKNOWN,
    FLAG_NO_COSTS,
    GaussianDecay,
    StepDecay,
    accessibility,
    check_costs,
    e2sfca,
    haversine_costs,
    parse_area_points,
)
from transforms.bad_input import BadInputError

LUO_QI = StepDecay(((10, 1.0), (20, 0.68), (30, 0.22)))
DEMAND = pl.DataFrame({"area_code": ["A", "B", "C"], "demand": [1000.0, 2000.0, 500.0]})
SUPPLY = pl.DataFrame({"facility_id": ["f1", "f2"], "supply": [30.0, 10.0]})
COSTS = pl.DataFrame({
    "area_code": ["A", "A", "B", "B", "C", "C"],
    "facility_id": ["f1", "f2", "f1", "f2", "f1", "f2"],
    "cost": [5.0, 25.0, 15.0, 8.0, 35.0, 18.0],
})


def by_area(frame: pl.DataFrame) -> dict[str, float | None]:
    return dict(zip(frame["area_code"], frame["value"], strict=True))


def test_e2sfca_by_hand():
    # f1 reaches A (w 1) and B (w 0.68): 1,000 + 1,360 = 2,360 → R1 = 30 / 2,360
    # f2 reaches A (w 0.22), B (w 1), C (w 0.68): 220 + 2,000 + 340 = 2,560 → R2 = 10 / 2,560
    r1, r2 = 30 / 2360, 10 / 2560
    values = by_area(e2sfca(DEMAND, SUPPLY, COSTS, LUO_QI))
    assert values["A"] == pytest.approx((r1 + 0.22 * r2) * 1000)
    assert values["B"] == pytest.approx((0.68 * r1 + r2) * 1000)
    assert values["C"] == pytest.approx(0.68 * r2 * 1000)  # 2.65625 places per 1,000


@pytest.mark.filterwarnings("ignore:The inplace keyword")  # inside access 1.1.10 itself, not our code
@pytest.mark.parametrize("decay, weight_fn", [
    (LUO_QI, weights.step_fn({10: 1.0, 20: 0.68, 30: 0.22})),
    (GaussianDecay(sigma=12.0, max_cost=30.0), weights.gaussian(12.0)),
])
def test_matches_pysal_access(decay, weight_fn):
    ours = by_area(e2sfca(DEMAND, SUPPLY, COSTS, decay))
    reference = Access(
        demand_df=DEMAND.to_pandas(), demand_index="area_code", demand_value="demand",
        supply_df=SUPPLY.to_pandas(), supply_index="facility_id", supply_value="supply",
        cost_df=COSTS.to_pandas(), cost_origin="area_code", cost_dest="facility_id", cost_name="cost",
    ).enhanced_two_stage_fca(name="e2sfca", weight_fn=weight_fn, max_cost=30.0)["e2sfca_supply"]
    for area, value in reference.items():
        assert ours[area] == pytest.approx(value * 1000, rel=1e-12), area


def test_conservation_demand_times_accessibility_is_total_supply():
    result = e2sfca(DEMAND, SUPPLY, COSTS, LUO_QI).join(DEMAND, on="area_code")
    assert (result["value"] * result["demand"]).sum() / 1000 == pytest.approx(SUPPLY["supply"].sum())


def test_unreachable_supply_unknown_demand_and_unlocated_areas():
    far = SUPPLY.vstack(pl.DataFrame({"facility_id": ["f3"], "supply": [99.0]}))
    costs = COSTS.vstack(pl.DataFrame({"area_code": ["A"], "facility_id": ["f3"], "cost": [80.0]}))
    demand = DEMAND.vstack(pl.DataFrame({"area_code": ["Z"], "demand": [700.0]}))
    values = e2sfca(demand, far, costs, LUO_QI)
    assert by_area(values)["C"] == pytest.approx(2.65625)  # f3 reaches nobody and adds nothing
    assert values.filter(pl.col("area_code") == "Z")["flag"].to_list() == [FLAG_NO_COSTS]
    unknown = DEMAND.with_columns(demand=pl.when(pl.col("area_code") == "C").then(None).otherwise(pl.col("demand")))
    flags = dict(zip(*e2sfca(unknown, SUPPLY, COSTS, LUO_QI).select("area_code", "flag"), strict=True))
    # C is in f2's catchment, so everybody reaching f2 is unknown; nobody reaches f1 only
    assert flags == {"A": FLAG_DEMAND_UNKNOWN, "B": FLAG_DEMAND_UNKNOWN, "C": FLAG_DEMAND_UNKNOWN}


def test_haversine_distance_hagen_dortmund():
    points = pl.DataFrame({"area_code": ["hagen"], "lat": [51.3671], "lon": [7.4633]})
    dortmund = pl.DataFrame({"facility_id": ["do"], "lat": [51.5136], "lon": [7.4653]})
    # 0.1465° of latitude ≈ 16.29 km (111.19 km per degree on the mean sphere)
    assert haversine_costs(points, dortmund)["cost"][0] == pytest.approx(16.29, abs=0.02)


def test_travel_time_matrix_problems_name_the_row():
    with pytest.raises(BadInputError, match=r"times.csv, row 2: cost -3.0 from A to f2"):
        check_costs(COSTS.with_columns(cost=pl.Series([5.0, -3.0, 1.0, 1.0, 1.0, 1.0])), "times.csv")
    with pytest.raises(BadInputError, match=r"row 7: pair A → f1 appears more than once"):
        check_costs(COSTS.vstack(COSTS.head(1)), "times.csv")


def test_sample_kreis_centres_and_population():
    path = SAMPLE / "geo" / "kreis_centres_dim400.json"
    points = parse_area_points(path.read_bytes(), path.name)
    assert points.height > 390 and points["lat"].is_between(47, 56).all() and points["lon"].is_between(5, 16).all()
    hagen = points.filter(pl.col("area_code") == "05914").row(0, named=True)
    registry = pl.DataFrame({"facility_id": ["s1"], "lat": [hagen["lat"]], "lon": [hagen["lon"]], "capacity": [50]})
    groups = {(0, 65): 1000, (65, None): 500}
    people = pl.concat([population(groups, area=code, on=date(2018, 12, 31)) for code in ("05914", "05954", "05958")])
    result = accessibility(people, registry, points, (65, None), GaussianDecay(10.0, 30.0), on=date(2018, 12, 31))
    values = by_area(result)
    # the Hochsauerlandkreis is more than 30 km away; the facility's 50 places go to Hagen and Ennepe-Ruhr only
    assert values["05958"] == 0.0 and values["05914"] > values["05954"] > 0
    assert (result["value"] * 500).sum() / 1000 == pytest.approx(50.0)


def test_bad_point_file():
    with pytest.raises(BadInputError, match="points.json, row 2: area 2: lon 500"):
        parse_area_points(json.dumps([{"1": 7.0, "2": 500}, {"1": 51.0, "2": 51.0}]).encode(), "points.json")
    with pytest.raises(BadInputError, match="same codes"):
        parse_area_points(json.dumps([{"1": 7.0}, {"2": 51.0}]).encode(), "points.json")
