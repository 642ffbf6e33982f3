"""Spatial accessibility of facilities per district: the enhanced two-step floating catchment area (E2SFCA).

Step 1: every facility j shares its capacity S_j among the population in its catchment, each district i weighted
by the distance decay W(d_ij):  R_j = S_j / Σ_i P_i W(d_ij).
Step 2: a district's accessibility is the decay-weighted sum of the ratios of the facilities it reaches:
A_i = Σ_j R_j W(d_ij), reported per 1,000 of the target population.

The same weight is used in both steps, as in PySAL `access` (Access.enhanced_two_stage_fca → fca.two_stage_fca,
weights.step_fn: cost ≤ threshold gets the weight, beyond the last threshold 0), which the tests compare against.
Because both steps use W, Σ_i P_i A_i = Σ_j S_j over all facilities that someone can reach (conservation).
No normalisation (access' `normalize=True` divides by the population-weighted mean) is applied: the value keeps
its unit, places per 1,000.

Distances are straight-line (haversine) km between district points (population-weighted centroids, or the Kreis
centres of the sample) and facility coordinates; a precomputed travel-time matrix can replace them. Pairs missing
from a matrix are unreachable (weight 0), as in `access`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date

import polars as pl

from transforms.bad_input import BadInputError, refuse_first
from transforms.catalogue import indicator
from transforms.coverage import Band, latest_population, value_where_unflagged
from transforms.demography import band_populations

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)
FLAG_DEMAND_UNKNOWN = "demand_unknown_in_catchment"
FLAG_NO_COSTS = "no_costs_for_area"


@dataclass(frozen=True)
class StepDecay:
    """Stepwise weights: ((upper cost, weight), ...), cost ≤ upper gets the weight of the first step it fits; 0 beyond.

    Luo & Qi (2009) use travel-time zones 0–10, 10–20, 20–30 minutes with weights 1, 0.68, 0.22 (the default
    of access.enhanced_two_stage_fca): StepDecay(((10, 1.0), (20, 0.68), (30, 0.22))).
    """

    steps: tuple[tuple[float, float], ...]

    def weight(self, cost: pl.Expr) -> pl.Expr:
        expr = pl.lit(0.0)
        for upper, w in sorted(self.steps, reverse=True):  # built inside out, so the smallest threshold is tried first
            expr = pl.when(cost <= upper).then(pl.lit(float(w))).otherwise(expr)
        return expr


@dataclass(frozen=True)
class GaussianDecay:
    """Gaussian weights exp(−d² / 2σ²) (W(0) = 1, as access.weights.gaussian), cut to 0 beyond max_cost."""

    sigma: float
    max_cost: float

    def weight(self, cost: pl.Expr) -> pl.Expr:
        return pl.when(cost <= self.max_cost).then((-(cost**2) / (2 * self.sigma**2)).exp()).otherwise(pl.lit(0.0))


def parse_area_points(data: bytes, file: str) -> pl.DataFrame:
    """The sample's point file, a JSON array of two objects keyed by area code: [{code: lon}, {code: lat}]."""
    try:
        lons, lats = json.loads(data)
    except (ValueError, TypeError) as exc:
        raise BadInputError(file, None, f"expected a JSON array of two objects {{code: lon}}, {{code: lat}}: {exc}") from exc
    if not isinstance(lons, dict) or not isinstance(lats, dict) or lons.keys() != lats.keys():
        raise BadInputError(file, None, "the two objects must be {code: lon} and {code: lat} with the same codes")
    for row, code in enumerate(lons, start=1):
        lon, lat = lons[code], lats[code]
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in (lon, lat)) or abs(lat) > 90 or abs(lon) > 180:
            raise BadInputError(file, row, f"area {code}: lon {lon!r} / lat {lat!r} is not a WGS84 coordinate")
    return pl.DataFrame(
        {"area_code": list(lons), "lon": list(lons.values()), "lat": [lats[c] for c in lons]},
        schema={"area_code": pl.String, "lon": pl.Float64, "lat": pl.Float64},
    )


def haversine_km(lat1: pl.Expr, lon1: pl.Expr, lat2: pl.Expr, lon2: pl.Expr) -> pl.Expr:
    """Great-circle distance in km on a sphere of the mean Earth radius."""
    dlat = (lat2 - lat1).radians()
    dlon = (lon2 - lon1).radians()
    a = (dlat / 2).sin() ** 2 + lat1.radians().cos() * lat2.radians().cos() * (dlon / 2).sin() ** 2
    return 2 * EARTH_RADIUS_KM * a.sqrt().arcsin()


def haversine_costs(area_points: pl.DataFrame, facilities: pl.DataFrame) -> pl.DataFrame:
    """Every district × facility pair with its straight-line distance in km as cost."""
    pairs = area_points.select("area_code", "lat", "lon").join(
        facilities.select("facility_id", f_lat=pl.col("lat"), f_lon=pl.col("lon")), how="cross"
    )
    return pairs.select(
        "area_code",
        "facility_id",
        cost=haversine_km(pl.col("lat"), pl.col("lon"), pl.col("f_lat"), pl.col("f_lon")),
    )


def check_costs(costs: pl.DataFrame, file: str) -> None:
    """A travel-time matrix must have one non-negative cost per district × facility pair."""
    refuse_first(costs.with_row_index("row", offset=1), file, [
        (pl.col("cost").is_null() | (pl.col("cost") < 0) | pl.col("cost").is_nan(),
         lambda r: f"cost {r['cost']!r} from {r['area_code']} to {r['facility_id']} is not a non-negative number"),
        (~pl.struct("area_code", "facility_id").is_first_distinct(),
         lambda r: f"pair {r['area_code']} → {r['facility_id']} appears more than once"),
    ])


def e2sfca(demand: pl.DataFrame, supply: pl.DataFrame, costs: pl.DataFrame, decay: StepDecay | GaussianDecay) -> pl.DataFrame:
    """E2SFCA accessibility per district, places per 1,000 of demand.

    demand: area_code, demand (persons; null when the band is flagged). supply: facility_id, supply (places).
    costs: area_code, facility_id, cost (km or minutes; the decay's unit). A district that reaches no facility has
    accessibility 0; one that reaches a facility whose catchment contains a district of unknown demand is flagged,
    and so is a district that has no row in `costs` at all (no point, not in the matrix): 0 would be a guess.
    A facility nobody reaches contributes nothing.
    """
    ind = indicator("e2sfca_accessibility")
    weighted = costs.with_columns(weight=decay.weight(pl.col("cost"))).filter(pl.col("weight") > 0)
    catchment = (
        weighted.join(demand, on="area_code", how="inner")
        .group_by("facility_id")
        .agg(
            catchment_demand=(pl.col("weight") * pl.col("demand")).sum(),
            demand_unknown=pl.col("demand").is_null().any(),
        )
    )
    ratios = supply.join(catchment, on="facility_id", how="inner").filter(
        pl.col("demand_unknown") | (pl.col("catchment_demand") > 0)
    ).with_columns(ratio=pl.col("supply") / pl.col("catchment_demand"))
    reached = (
        weighted.join(ratios, on="facility_id", how="inner")
        .group_by("area_code")
        .agg(access=(pl.col("weight") * pl.col("ratio")).sum(), demand_unknown=pl.col("demand_unknown").any())
    )
    located = costs.select("area_code", located=pl.lit(True)).unique()
    return (
        demand.join(reached, on="area_code", how="left")
        .join(located, on="area_code", how="left")
        .select(
            "area_code",
            indicator_id=pl.lit(ind.id),
            flag=pl.when(pl.col("located").is_null())
            .then(pl.lit(FLAG_NO_COSTS))
            .when(pl.col("demand_unknown").fill_null(False))
            .then(pl.lit(FLAG_DEMAND_UNKNOWN)),
            access=pl.col("access").fill_null(0.0),
            numerator=pl.lit(None, dtype=pl.Float64),
            denominator=pl.col("demand").cast(pl.Float64),
        )
        .with_columns(value_where_unflagged(pl.col("access") * ind.scale))
        .drop("access")
        .sort("area_code")
    )


def accessibility(
    population: pl.DataFrame,
    facilities: pl.DataFrame,
    area_points: pl.DataFrame,
    band: Band,
    decay: StepDecay | GaussianDecay,
    on: date,
    travel_costs: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """E2SFCA of the given facilities (filter them by type first) for the population of `band` at each district's
    latest reference date not after `on`; haversine km unless a travel-time matrix is given."""
    people = band_populations(latest_population(population, on), {"target": band}).filter(pl.col("band") == "target")
    demand = people.select("area_code", demand=pl.col("population").cast(pl.Float64))
    supply = facilities.select("facility_id", supply=pl.col("capacity").cast(pl.Float64))
    costs = travel_costs if travel_costs is not None else haversine_costs(area_points, facilities)
    return e2sfca(demand, supply, costs, decay).with_columns(population_date=pl.lit(on))
