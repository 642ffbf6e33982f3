"""The SYNTHETIC generator: deterministic, and it has the patterns the docs claim."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from transforms.checkin_log import parse_checkin_log
from transforms.facility_registry import load_facility_registry, nrw_public_holidays, opening_calendar
from transforms.room_bookings import parse_room_bookings
from transforms.synthetic_usage import (
    RAW_CHECKIN_COLUMNS,
    SCHOOL_HOLIDAYS_NRW,
    generate_bookings,
    generate_checkins,
    iter_checkin_chunks,
    load_district_centres,
    write_checkin_csv,
    write_jsonl,
    write_sample,
)
from transforms.usage_indicators import merge_overlaps

KEY = b"test-key-0123456789"
REGISTRY = load_facility_registry()
YEAR = (date(2024, 1, 1), date(2024, 12, 31))


@pytest.fixture(scope="module")
def year() -> pl.DataFrame:
    rows = generate_checkins(REGISTRY, *YEAR, seed=7)
    return rows.with_columns(
        local=pl.col("timestamp").str.to_datetime("%Y-%m-%dT%H:%M:%S%:z").dt.convert_time_zone("Europe/Berlin")
    ).with_columns(date=pl.col("local").dt.date())


def test_same_seed_same_rows_other_seed_other_rows():
    a = generate_checkins(REGISTRY, date(2024, 1, 1), date(2024, 1, 14), seed=1)
    assert a.equals(generate_checkins(REGISTRY, date(2024, 1, 1), date(2024, 1, 14), seed=1))
    assert not a.equals(generate_checkins(REGISTRY, date(2024, 1, 1), date(2024, 1, 14), seed=2))
    assert a.columns == RAW_CHECKIN_COLUMNS
    assert a["visitor_ref"].str.contains(r"^card-\d{6,}$").all()


def test_nobody_checks_in_while_the_facility_is_closed(year):
    calendar = opening_calendar(REGISTRY, *YEAR)
    stamped = year.with_columns(at=pl.col("local").dt.convert_time_zone("UTC"))
    inside = stamped.join(calendar, left_on=["facility_id", "date"], right_on=["facility_id", "date"], how="inner").filter(
        (pl.col("at") >= pl.col("opens_at")) & (pl.col("at") < pl.col("closes_at"))
    )
    assert inside.height == year.height
    assert not year["date"].is_in(list(nrw_public_holidays(2024))).any()
    assert year.filter(pl.col("facility_id") == "ha-repaircafe-altenhagen")["date"].dt.month().is_in([8]).sum() == 0


def test_weekly_pattern_saturday_busier_than_monday(year):
    # the community centre is open Monday 9 h and Saturday 4 h: compare visits per opening hour
    centre = year.filter(pl.col("facility_id") == "ha-stadtteilhaus-wehringhausen")
    per_day = centre.group_by("date").len().with_columns(weekday=pl.col("date").dt.weekday())
    monday = per_day.filter(pl.col("weekday") == 1)["len"].mean() / 9
    saturday = per_day.filter(pl.col("weekday") == 6)["len"].mean() / 4
    assert saturday > 1.2 * monday


def test_winter_busier_than_summer_and_tutoring_pauses_in_school_holidays(year):
    senior = year.filter(pl.col("facility_id") == "en-seniorentreff-witten").group_by(pl.col("date").dt.month()).len()
    by_month = dict(senior.rows())
    assert by_month[1] / 22 > by_month[7] / 23 * 1.15  # per weekday open (Jan 2024: 22 open days, Jul: 23)
    tutoring = year.filter(pl.col("facility_id") == "bo-lernhilfe-langendreer")
    summer = SCHOOL_HOLIDAYS_NRW[8]
    assert summer[2] == "Sommerferien 2024"
    in_holidays = tutoring.filter(pl.col("date").is_between(summer[0], summer[1])).height / 27  # 27 open days
    in_june = tutoring.filter(pl.col("date").dt.month() == 6).height / 17  # 17 open days
    assert in_holidays < 0.25 * in_june


def test_visitors_come_mostly_from_near_districts(year):
    # without a population table every district weighs the same, so only distance and the own Kreis matter
    centres = load_district_centres()
    lüdenscheid = year.filter(pl.col("facility_id") == "mk-seniorentreff-luedenscheid").drop_nulls("home_district")
    counts = dict(lüdenscheid.group_by("home_district").len().rows())
    assert max(counts, key=counts.get) == "05962"  # its own Kreis
    facility = REGISTRY.facilities.filter(pl.col("facility_id") == "mk-seniorentreff-luedenscheid").row(0, named=True)
    distance = centres.with_columns(
        km=((pl.col("lat") - facility["lat"]) * 111) ** 2 + ((pl.col("lon") - facility["lon"]) * 70) ** 2
    ).sort("km")
    ordered = [counts.get(code, 0) for code in distance["area_code"]]
    # nearer districts send more visitors: negative rank correlation of distance and visitors
    ranks = np.argsort(np.argsort(ordered))
    assert np.corrcoef(np.arange(len(ordered)), ranks)[0, 1] < -0.8


def test_age_bands_follow_the_facility_type(year):
    youth = year.filter(pl.col("facility_id") == "en-jugendzentrum-schwelm")
    assert youth["age_band"].is_in(["6-17", "18-29"]).all()
    seniors = year.filter(pl.col("facility_id") == "mk-seniorentreff-luedenscheid")
    assert seniors["age_band"].is_in(["65-74", "75+"]).mean() > 0.8


def test_regulars_come_back(year):
    per_visitor = year.filter(pl.col("facility_id") == "do-integrationszentrum-nord").group_by("visitor_ref").len()
    assert (per_visitor["len"] >= 2).mean() > 0.5


def test_chunks_are_sized_and_time_ordered_per_facility():
    chunks = list(iter_checkin_chunks(REGISTRY, date(2024, 1, 1), date(2024, 3, 31), seed=3, rows_per_chunk=5_000))
    assert len(chunks) >= 3
    assert all(c.height < 5_000 + 500 for c in chunks)  # whole sessions, so a little over at most
    parse = pl.col("timestamp").str.to_datetime("%Y-%m-%dT%H:%M:%S%:z")
    assert all(c.select(parse.is_sorted()).item() for c in chunks)
    # sessions of different facilities may straddle a chunk boundary, those of one facility never do
    per_facility = pl.concat(chunks).group_by("facility_id").agg(ordered=parse.is_sorted())
    assert per_facility["ordered"].all()


def test_generated_files_parse_without_a_single_row_problem(tmp_path: Path):
    rows = generate_checkins(REGISTRY, date(2024, 3, 25), date(2024, 4, 7), seed=5)  # across the clock change
    for path in (write_checkin_csv(rows, tmp_path / "c.csv"), write_jsonl(rows, tmp_path / "c.jsonl")):
        parsed = parse_checkin_log(path.read_bytes(), path.name, KEY)
        assert parsed.height == rows.height
        assert parsed["visited_at"].null_count() == 0
        assert parsed["age_from"].null_count() == 0
        assert parsed["duplicate_of_row"].null_count() == parsed.height
        assert parsed["party_size"].drop_nulls().min() >= 1


def test_bookings_fit_rooms_and_providers_and_never_overlap(tmp_path: Path):
    raw = generate_bookings(REGISTRY, date(2024, 1, 1), date(2024, 1, 31), seed=5)
    path = tmp_path / "b.csv"
    raw.write_csv(path)
    bookings = parse_room_bookings(path.read_bytes(), path.name)
    allowed = REGISTRY.rooms.select("facility_id", "room_id", "provider")
    assert bookings.join(allowed, on=["facility_id", "room_id", "provider"], how="anti").height == 0
    assert bookings["booking_id"].n_unique() == bookings.height
    assert merge_overlaps(bookings, ["facility_id", "room_id"]).height < bookings.height  # adjacent slots merge
    assert (bookings["booked_minutes"] > 0).all()
    overlapping = bookings.sort("facility_id", "room_id", "starts_at").with_columns(
        previous_end=pl.col("ends_at").shift(1).over("facility_id", "room_id", order_by="starts_at")
    )
    assert overlapping.filter(pl.col("starts_at") < pl.col("previous_end")).height == 0


def test_sample_writer_alternates_formats(tmp_path: Path):
    written = write_sample(tmp_path, date(2024, 1, 1), date(2024, 2, 29), seed=1)
    assert [p.name for p in written] == ["checkins_2024-01.csv", "checkins_2024-02.jsonl", "bookings_2024-Q1.csv"]
