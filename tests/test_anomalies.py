"""Daily series with closed days masked, robust z-score anomaly flags, weekly visits and the Theil–Sen trend."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from transforms.anomalies import FLAG_CLOSED, FLAG_SHORT_HISTORY, anomaly_flags, daily_visits, visit_counts, visit_trends

TUESDAY = date(2024, 1, 2)
OPEN_TUESDAYS = pl.DataFrame({"facility_id": ["F"], "weekday": [2]})


def visits_on(counts: dict[date, int], offer: str = "sewing") -> pl.DataFrame:
    """Visit counts per day, from one check-in row per visit."""
    rows = [{"facility_id": "F", "offer": offer, "visit_date": day} for day, n in counts.items() for _ in range(n)]
    return visit_counts(pl.DataFrame(rows, schema={"facility_id": pl.String, "offer": pl.String, "visit_date": pl.Date}))


def tuesdays(*counts: int) -> dict[date, int]:
    return {TUESDAY + timedelta(weeks=k): n for k, n in enumerate(counts) if n}


def test_open_days_without_visits_are_zero_and_closed_days_are_masked():
    counts = tuesdays(10, 0, 12) | {date(2024, 1, 3): 1}  # a visit on a Wednesday, when the registry says closed
    daily = daily_visits(visits_on(counts), OPEN_TUESDAYS)
    assert daily.select("visit_date", "visits", "is_open").rows() == [
        (date(2024, 1, 2), 10, True), (date(2024, 1, 3), 1, False), (date(2024, 1, 9), 0, True), (date(2024, 1, 16), 12, True),
    ]
    holiday = pl.DataFrame({"facility_id": ["F"], "visit_date": [date(2024, 1, 9)]})
    assert date(2024, 1, 9) not in daily_visits(visits_on(counts), OPEN_TUESDAYS, holiday)["visit_date"].to_list()


def test_robust_z_by_hand():
    # baseline of 30 Jan: 10, 12, 10, 11 → median 10.5, MAD median(0.5, 1.5, 0.5, 0.5) = 0.5, scale max(0.74, 1) = 1
    # 6 Feb: baseline 10, 12, 10, 11, 10 → median 10, MAD 0 → scale 1 → 30 visits give z = 20, a "high" anomaly
    flags = anomaly_flags(daily_visits(visits_on(tuesdays(10, 12, 10, 11, 10, 30)), OPEN_TUESDAYS), min_history=4)
    by_day = {r["visit_date"]: r for r in flags.iter_rows(named=True)}
    jan30, feb6 = by_day[date(2024, 1, 30)], by_day[date(2024, 2, 6)]
    assert (jan30["baseline_median"], jan30["baseline_mad"], jan30["robust_z"]) == (10.5, 0.5, pytest.approx(-0.5))
    assert jan30["is_anomaly"] is False and jan30["flag"] is None
    assert (feb6["history_days"], feb6["robust_z"], feb6["is_anomaly"], feb6["direction"]) == (5, pytest.approx(20.0), True, "high")
    assert by_day[date(2024, 1, 23)]["flag"] == FLAG_SHORT_HISTORY and by_day[date(2024, 1, 23)]["robust_z"] is None


def test_a_drop_to_zero_is_low_and_closed_days_are_never_flagged():
    counts = tuesdays(20, 22, 18, 21, 19, 0, 20) | {date(2024, 1, 31): 3}
    flags = anomaly_flags(daily_visits(visits_on(counts), OPEN_TUESDAYS), min_history=4)
    drop = flags.filter(pl.col("visit_date") == date(2024, 2, 6)).row(0, named=True)
    # baseline 20, 22, 18, 21, 19 → median 20, MAD 1 → scale 1.4826 → z = −20 / 1.4826
    assert drop["direction"] == "low" and drop["robust_z"] == pytest.approx(-20 / 1.4826)
    closed = flags.filter(pl.col("visit_date") == date(2024, 1, 31)).row(0, named=True)
    assert (closed["flag"], closed["is_anomaly"], closed["visits"]) == (FLAG_CLOSED, None, 3)
    # the drop moves the next median by half a visit only (0, 18, 19, 20, 21, 22 → 19.5); a mean would fall to 16.7
    after = flags.filter(pl.col("visit_date") == date(2024, 2, 13)).row(0, named=True)
    assert after["baseline_median"] == 19.5 and after["is_anomaly"] is False


def test_trailing_window_only_holds_the_last_weeks():
    flags = anomaly_flags(daily_visits(visits_on(tuesdays(*([5] * 4 + [50] * 4 + [50]))), OPEN_TUESDAYS),
                          window_weeks=4, min_history=4)
    last = flags.filter(pl.col("visit_date") == flags["visit_date"].max()).row(0, named=True)
    assert last["history_days"] == 4 and last["baseline_median"] == 50 and last["is_anomaly"] is False


def test_theil_sen_trend_by_hand_and_robust_to_one_outlier():
    # weekly visits 10, 12, 10: slopes 2, 0 (over two weeks), −2 → median 0
    trend = visit_trends(daily_visits(visits_on(tuesdays(10, 12, 10)), OPEN_TUESDAYS), window_weeks=4, min_weeks=3)
    slope = trend.filter((pl.col("indicator_id") == "visit_trend") & (pl.col("week") == date(2024, 1, 15)))
    assert slope.select("value", "flag").row(0) == (0.0, None)
    early = trend.filter((pl.col("indicator_id") == "visit_trend") & (pl.col("week") == date(2024, 1, 8)))
    assert early.select("value", "flag").row(0) == (None, FLAG_SHORT_HISTORY)
    # a steady rise of 2 a week with one week of 100: the slope stays 2
    rising = visit_trends(daily_visits(visits_on(tuesdays(10, 12, 14, 100, 18, 20)), OPEN_TUESDAYS), window_weeks=6, min_weeks=6)
    last = rising.filter(pl.col("indicator_id") == "visit_trend").sort("week")[-1]
    assert last["value"][0] == pytest.approx(2.0)
    weekly = rising.filter(pl.col("indicator_id") == "weekly_visits").sort("week")["value"].to_list()
    assert weekly == [10.0, 12.0, 14.0, 100.0, 18.0, 20.0]
