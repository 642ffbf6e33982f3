"""What an analyst would write with pandas: read the deliveries, parse the times, group per breakdown and period.

Same cells as benchmarks/floor.py (and as transforms/usage_indicators._visitor_cells), no validation, no
pseudonymisation: a lower bound for a pandas pipeline, not a full one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

BREAKDOWNS = ("total", "offer", "age_band", "home_district")


def visitor_cells(files: list[Path]) -> pd.DataFrame:
    visits = pd.concat([pd.read_csv(f, dtype={"home_district": "string"}) for f in files], ignore_index=True)
    local = pd.to_datetime(visits["timestamp"], utc=True).dt.tz_convert("Europe/Berlin").dt.tz_localize(None)
    visits["week"] = local.dt.to_period("W-SUN").dt.start_time
    visits["month"] = local.dt.to_period("M").dt.start_time
    visits["total"] = "all"
    visits["home_district"] = visits["home_district"].fillna("unknown")
    visits["person_hours"] = visits["party_size"].fillna(1) * visits["duration_minutes"].fillna(60) / 60

    parts = []
    for period in ("week", "month"):
        for breakdown in BREAKDOWNS:
            per_visitor = (
                visits.groupby(["facility_id", period, breakdown, "visitor_ref"])
                .agg(visits=("person_hours", "size"), person_hours=("person_hours", "sum"))
                .reset_index()
            )
            per_visitor["repeat"] = per_visitor["visits"] >= 2
            cells = (
                per_visitor.groupby(["facility_id", period, breakdown])
                .agg(visits=("visits", "sum"), distinct_visitors=("visitor_ref", "size"),
                     repeat_visitors=("repeat", "sum"), person_hours=("person_hours", "sum"))
                .reset_index()
                .rename(columns={period: "period_start", breakdown: "category"})
            )
            cells["period"] = period
            cells["breakdown"] = breakdown
            parts.append(cells)
    return pd.concat(parts, ignore_index=True)
