"""Demand monitoring per facility and offer: daily visit series on open days, anomaly flags against a seasonal
baseline, weekly visits and their trend.

Seasonality in these logs is weekly (a Tuesday sewing class, a busy Saturday), so a day is compared with the same
weekday of the previous `window_weeks` weeks only. The baseline is the median of those days and the spread their
median absolute deviation (MAD), scaled by 1.4826 so that it estimates the standard deviation of normal data
(robust z-score; Iglewicz & Hoaglin 1993 flag |z| > 3.5). One unusual day does not move a median, so a past
anomaly does not hide the next one. Count data often have MAD 0 (the same 12 visitors every week); the scale then
falls back to `min_scale` visits, so 12 → 13 is not an alarm but 12 → 0 is.

Closed days (weekdays without opening hours in the registry, or listed closing dates) are masked: they are not part
of any baseline and never flagged as a drop. Visits recorded on a closed day are kept with flag closed_day, so they
show up instead of vanishing. A day needs `min_history` same-weekday open days in its window to be judged at all.

The trend is the Theil–Sen slope of weekly visits over the trailing `window_weeks` weeks: the median of all
pairwise slopes, robust to a single holiday week in a way a least-squares line or a 4-week moving average is not.
"""

from __future__ import annotations

import polars as pl

from transforms.catalogue import indicator

MAD_TO_SD = 1.4826
FLAG_CLOSED = "closed_day"
FLAG_SHORT_HISTORY = "insufficient_history"

SERIES = ["facility_id", "offer"]


def visit_counts(checkins: pl.DataFrame) -> pl.DataFrame:
    """Visits per facility, offer and local date on the days with visits (the input of daily_visits)."""
    return checkins.group_by(*SERIES, "visit_date").agg(visits=pl.len().cast(pl.Int64))


def daily_visits(
    counts: pl.DataFrame, opening_hours: pl.DataFrame, closed_dates: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Visits per facility, offer and local date, with zero on open days without visits.

    counts: facility_id, offer, visit_date, visits on the days with visits (visit_counts, or aggregated by the
    warehouse). Every offer of a facility gets a row on every open day between the facility's first and last visit.
    Output: facility_id, offer, visit_date, weekday (1 = Monday), visits (Int64), is_open.
    closed_dates: facility_id, visit_date (holidays, closures) on top of the weekly opening hours.
    """
    counts = counts.select(*SERIES, "visit_date", pl.col("visits").cast(pl.Int64))
    span = counts.group_by("facility_id").agg(first=pl.col("visit_date").min(), last=pl.col("visit_date").max())
    offers = counts.select(*SERIES).unique()
    calendar = (
        span.select("facility_id", visit_date=pl.date_ranges("first", "last", interval="1d"))
        .explode("visit_date")
        .join(offers, on="facility_id", how="inner")
    )
    open_weekdays = opening_hours.select("facility_id", weekday=pl.col("weekday").cast(pl.Int8), open_day=pl.lit(True)).unique()
    closed = (
        closed_dates.select("facility_id", "visit_date", closed_date=pl.lit(True)).unique()
        if closed_dates is not None
        else pl.DataFrame(schema={"facility_id": pl.String, "visit_date": pl.Date, "closed_date": pl.Boolean})
    )
    days = (
        calendar.with_columns(weekday=pl.col("visit_date").dt.weekday().cast(pl.Int8))
        .join(open_weekdays, on=["facility_id", "weekday"], how="left")
        .join(closed, on=["facility_id", "visit_date"], how="left")
        .join(counts, on=[*SERIES, "visit_date"], how="left")
        .with_columns(
            visits=pl.col("visits").fill_null(0),
            is_open=pl.col("open_day").fill_null(False) & ~pl.col("closed_date").fill_null(False),
        )
    )
    # a closed day only appears where someone was counted; an empty closed day is simply not a day of the series
    return (
        days.filter(pl.col("is_open") | (pl.col("visits") > 0))
        .select(*SERIES, "visit_date", "weekday", "visits", "is_open")
        .sort(*SERIES, "visit_date")
    )


def anomaly_flags(
    daily: pl.DataFrame,
    window_weeks: int = 8,
    min_history: int = 4,
    threshold: float = 3.5,
    min_scale: float = 1.0,
) -> pl.DataFrame:
    """The anomaly mart: one row per facility, offer and day of `daily_visits`.

    Columns: facility_id, offer, visit_date, weekday, visits, history_days, baseline_median, baseline_mad,
    robust_z, is_anomaly, direction ("high" / "low"), flag (closed_day, insufficient_history).
    """
    open_days = daily.filter(pl.col("is_open")).sort(*SERIES, "weekday", "visit_date")
    baseline = open_days.rolling(
        index_column="visit_date",
        period=f"{7 * window_weeks}d",
        closed="left",  # the trailing window ends the day before: a day is never its own baseline
        group_by=[*SERIES, "weekday"],
    ).agg(
        history_days=pl.len().cast(pl.Int32),
        baseline_median=pl.col("visits").median(),
        baseline_mad=(pl.col("visits") - pl.col("visits").median()).abs().median(),
    )
    scale = pl.max_horizontal(pl.col("baseline_mad") * MAD_TO_SD, pl.lit(min_scale))
    judged = pl.col("flag").is_null()
    return (
        daily.join(baseline, on=[*SERIES, "weekday", "visit_date"], how="left")
        .with_columns(history_days=pl.col("history_days").fill_null(0))
        .with_columns(
            flag=pl.when(~pl.col("is_open"))
            .then(pl.lit(FLAG_CLOSED))
            .when(pl.col("history_days") < min_history)
            .then(pl.lit(FLAG_SHORT_HISTORY))
        )
        .with_columns(robust_z=pl.when(judged).then((pl.col("visits") - pl.col("baseline_median")) / scale))
        .with_columns(
            is_anomaly=pl.when(judged).then(pl.col("robust_z").abs() > threshold),
            direction=pl.when(pl.col("robust_z") > threshold)
            .then(pl.lit("high"))
            .when(pl.col("robust_z") < -threshold)
            .then(pl.lit("low")),
        )
        .select(
            *SERIES, "visit_date", "weekday", "visits", "history_days", "baseline_median", "baseline_mad",
            "robust_z", "is_anomaly", "direction", "flag",
        )
        .sort(*SERIES, "visit_date")
    )


def weekly_visits(daily: pl.DataFrame) -> pl.DataFrame:
    """Visits per facility, offer and ISO week (Monday) over the open days; weeks closed throughout are left out.

    The first and last week of a series may be partial: the series starts and ends with the first and last visit.
    """
    return (
        daily.filter(pl.col("is_open"))
        .group_by(*SERIES, week=pl.col("visit_date").dt.truncate("1w"))
        .agg(visits=pl.col("visits").sum())
        .sort(*SERIES, "week")
    )


def visit_trends(daily: pl.DataFrame, window_weeks: int = 12, min_weeks: int = 6) -> pl.DataFrame:
    """weekly_visits and visit_trend (Theil–Sen slope over the trailing window_weeks, visits per week per week)
    per facility, offer and week, long form. The slope needs min_weeks weeks with data in the window."""
    weeks = weekly_visits(daily)
    window_days = 7 * window_weeks
    pairs = (
        weeks.join(weeks, on=SERIES, suffix="_later")
        .filter(pl.col("week") < pl.col("week_later"))
        .with_columns(
            slope=(pl.col("visits_later") - pl.col("visits"))
            / ((pl.col("week_later") - pl.col("week")).dt.total_days() / 7)
        )
    )
    window_start = pl.col("end") - pl.duration(days=window_days - 7)
    ends = weeks.select(*SERIES, end=pl.col("week"))
    slopes = (
        ends.join(pairs, on=SERIES)
        .filter((pl.col("week") >= window_start) & (pl.col("week_later") <= pl.col("end")))
        .group_by(*SERIES, "end")
        .agg(slope=pl.col("slope").median())
    )
    counted = (
        ends.join(weeks, on=SERIES)
        .filter((pl.col("week") >= window_start) & (pl.col("week") <= pl.col("end")))
        .group_by(*SERIES, "end")
        .agg(weeks_in_window=pl.len())
    )
    trend = (
        ends.join(counted, on=[*SERIES, "end"], how="left")
        .join(slopes, on=[*SERIES, "end"], how="left")
        .select(
            *SERIES,
            week=pl.col("end"),
            indicator_id=pl.lit(indicator("visit_trend").id),
            flag=pl.when(pl.col("weeks_in_window") < min_weeks).then(pl.lit(FLAG_SHORT_HISTORY)),
            slope=pl.col("slope"),
            denominator=pl.col("weeks_in_window").cast(pl.Float64),
        )
        .select(
            *SERIES, "week", "indicator_id", "flag",
            value=pl.when(pl.col("flag").is_null()).then(pl.col("slope")),
            numerator=pl.lit(None, dtype=pl.Float64),
            denominator=pl.col("denominator"),
        )
    )
    visits = weeks.select(
        *SERIES,
        "week",
        indicator_id=pl.lit(indicator("weekly_visits").id),
        flag=pl.lit(None, dtype=pl.String),
        value=pl.col("visits").cast(pl.Float64),
        numerator=pl.col("visits").cast(pl.Float64),
        denominator=pl.lit(None, dtype=pl.Float64),
    )
    return pl.concat([visits, trend]).sort("indicator_id", *SERIES, "week")

