"""SYNTHETIC usage data: seeded check-in logs and room bookings for the facilities of the registry.

Nothing here describes real people or real facilities. The generator exists so that the pipeline, the indicators
and the benchmarks have realistic input without personal data. What makes it realistic, and what the tests check:

- sessions follow the registry's opening hours: nobody checks in on a closed weekday, on an NRW public holiday,
  during a closure period, or outside the opening intervals;
- weekly pattern (WEEKDAY_FACTOR: more on Friday and Saturday), seasonal pattern (SEASON_AMPLITUDE: more in winter);
- NRW school holidays (SCHOOL_HOLIDAYS_NRW, real dates 2023/2024) change demand per facility type: tutoring
  almost stops, youth centres lose the children who travel;
- age-specific participation: each facility type has relative participation rates per age band, multiplied by the
  band's share of the population (from the population table when given);
- home districts fall off with distance: weight = population × exp(−distance / DISTANCE_DECAY_KM), times
  HOME_DISTRICT_BOOST for the facility's own Kreis;
- visitors come back: each facility has a pool of regulars, and a skewed draw makes some come often;
- gaps: some deliveries leave home district, party size or duration empty.

Everything is vectorised with numpy over sessions and visits (no Python loop per row); `iter_checkin_chunks`
yields the visits in chunks of about `rows_per_chunk` rows for benchmarks of 10–100 million rows.
For a given seed, registry, period and chunk size the output is identical on every run.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Iterator

import numpy as np
import polars as pl

from transforms.checkin_log import AGE_BANDS, LOCAL_TIME_ZONE, OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from transforms.facility_registry import FacilityRegistry, load_facility_registry, opening_calendar
from transforms.room_bookings import OPTIONAL_COLUMNS as BOOKING_OPTIONAL
from transforms.room_bookings import REQUIRED_COLUMNS as BOOKING_REQUIRED

ROOT = Path(__file__).resolve().parents[1]
KREIS_CENTRES = ROOT / "data" / "sample" / "geo" / "kreis_centres_dim400.json"
SAMPLE_KREISE = ("05914", "05954", "05562", "05913", "05911", "05958", "05962")

# NRW school holidays (Schulferien), first and last day, as in the Ferienordnung of the Schulministerium NRW
# (the KMK list of Ferientermine). Days outside this table are treated as school days.
SCHOOL_HOLIDAYS_NRW: tuple[tuple[date, date, str], ...] = (
    (date(2022, 12, 23), date(2023, 1, 6), "Weihnachtsferien 2022/23"),
    (date(2023, 4, 3), date(2023, 4, 15), "Osterferien 2023"),
    (date(2023, 5, 30), date(2023, 5, 30), "Pfingstferien 2023"),
    (date(2023, 6, 22), date(2023, 8, 4), "Sommerferien 2023"),
    (date(2023, 10, 2), date(2023, 10, 14), "Herbstferien 2023"),
    (date(2023, 12, 21), date(2024, 1, 5), "Weihnachtsferien 2023/24"),
    (date(2024, 3, 25), date(2024, 4, 6), "Osterferien 2024"),
    (date(2024, 5, 21), date(2024, 5, 21), "Pfingstferien 2024"),
    (date(2024, 7, 8), date(2024, 8, 20), "Sommerferien 2024"),
    (date(2024, 10, 14), date(2024, 10, 26), "Herbstferien 2024"),
    (date(2024, 12, 23), date(2025, 1, 6), "Weihnachtsferien 2024/25"),
)

WEEKDAY_FACTOR = np.array([0.9, 1.0, 1.05, 1.0, 1.15, 1.25, 0.8])  # Monday … Sunday
SEASON_AMPLITUDE = 0.15  # ±15 %: highest in January, lowest in July
DISTANCE_DECAY_KM = 8.0
HOME_DISTRICT_BOOST = 3.0
# Share of the population per age band when no population table is given (Germany, roughly, around 2020).
DEFAULT_BAND_SHARES = np.array([0.058, 0.11, 0.14, 0.25, 0.23, 0.11, 0.102])
MISSING_SHARE = {"home_district": 0.10, "party_size": 0.05, "duration_minutes": 0.10}


@dataclass(frozen=True)
class TypeProfile:
    arrivals_per_hour_per_place: float  # check-ins per opening hour per place of capacity
    participation: tuple[float, ...]  # relative, per AGE_BANDS, before population shares
    offers: dict[str, float]
    mean_duration_minutes: float
    school_holiday_factor: float
    party_size_weights: tuple[float, float, float, float]  # 1, 2, 3, 4 persons
    visits_per_visitor: float  # sets the pool of regulars: fewer means more different people


PROFILES: dict[str, TypeProfile] = {
    "community_centre": TypeProfile(
        0.12, (0.8, 0.7, 0.5, 0.6, 0.6, 1.0, 0.9),
        {"Offener Treff": 0.4, "Beratung": 0.2, "Kurs": 0.3, "Veranstaltung": 0.1}, 90, 0.9, (0.7, 0.2, 0.07, 0.03), 6,
    ),
    "buergertreff": TypeProfile(
        0.15, (0.3, 0.3, 0.4, 0.5, 0.8, 1.5, 1.3),
        {"Offener Treff": 0.5, "Sprechstunde": 0.2, "Gruppe": 0.3}, 75, 0.95, (0.75, 0.2, 0.04, 0.01), 8,
    ),
    "integration_centre": TypeProfile(
        0.12, (1.0, 0.8, 1.2, 1.0, 0.4, 0.2, 0.05),
        {"Sprachkurs": 0.4, "Migrationsberatung": 0.3, "Hausaufgabenhilfe": 0.15, "Frauencafé": 0.15}, 90, 0.8,
        (0.6, 0.25, 0.1, 0.05), 10,
    ),
    "repair_cafe": TypeProfile(
        0.5, (0.0, 0.1, 0.5, 0.8, 1.0, 1.4, 0.6),
        {"Reparatur Elektro": 0.45, "Reparatur Textil": 0.2, "Reparatur Fahrrad": 0.2, "Beratung": 0.15}, 60, 1.0,
        (0.85, 0.13, 0.02, 0.0), 2,
    ),
    "tutoring": TypeProfile(
        0.6, (0.0, 1.0, 0.1, 0.0, 0.0, 0.0, 0.0),
        {"Hausaufgabenhilfe": 0.6, "Nachhilfe Mathematik": 0.2, "Nachhilfe Deutsch": 0.2}, 90, 0.1,
        (0.97, 0.03, 0.0, 0.0), 15,
    ),
    "senior_meeting_point": TypeProfile(
        0.15, (0.0, 0.0, 0.0, 0.02, 0.3, 2.0, 2.5),
        {"Mittagstisch": 0.3, "Seniorencafé": 0.35, "Gymnastik": 0.2, "Digitalsprechstunde": 0.15}, 120, 1.0,
        (0.8, 0.18, 0.02, 0.0), 12,
    ),
    "youth_centre": TypeProfile(
        0.2, (0.0, 1.0, 0.15, 0.0, 0.0, 0.0, 0.0),
        {"Offene Tür": 0.6, "Sport": 0.25, "Medienwerkstatt": 0.15}, 120, 0.7, (0.8, 0.15, 0.05, 0.0), 15,
    ),
}
BOOKING_PURPOSES = ("Kurs", "Gruppentreffen", "Beratung", "Veranstaltung", "Sitzung")

RAW_CHECKIN_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
RAW_BOOKING_COLUMNS = BOOKING_REQUIRED + BOOKING_OPTIONAL


def load_district_centres(path: Path = KREIS_CENTRES, codes: tuple[str, ...] = SAMPLE_KREISE) -> pl.DataFrame:
    """area_code, lon, lat of the given Kreise from the JSON file [{code: lon}, {code: lat}]."""
    lon, lat = json.loads(path.read_text(encoding="utf-8"))
    return pl.DataFrame(
        {"area_code": list(codes), "lon": [lon[c] for c in codes], "lat": [lat[c] for c in codes]},
        schema={"area_code": pl.String, "lon": pl.Float64, "lat": pl.Float64},
    )


def school_holiday_days(start: date, end: date) -> pl.Series:
    ranges = [pl.date_range(max(a, start), min(b, end), "1d", eager=True) for a, b, _ in SCHOOL_HOLIDAYS_NRW if a <= end and b >= start]
    return pl.concat(ranges) if ranges else pl.Series("date", [], dtype=pl.Date)


def _distance_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    lat1, lon1, lat2, lon2 = map(np.radians, (lat1, lon1, lat2, lon2))
    h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 6371.0 * 2 * np.arcsin(np.sqrt(h))


def _population_weights(population: pl.DataFrame | None, codes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(population total per district, share per age band per district); uniform defaults without a table."""
    if population is None:
        return np.ones(len(codes)), np.tile(DEFAULT_BAND_SHARES, (len(codes), 1))
    rows = population.filter((pl.col("sex") == "total") & pl.col("area_code").is_in(codes) & pl.col("value").is_not_null())
    totals = dict(rows.filter(pl.col("is_total")).group_by("area_code").agg(pl.col("value").sum()).iter_rows())
    groups = rows.filter(~pl.col("is_total"))
    shares = np.tile(DEFAULT_BAND_SHARES, (len(codes), 1))
    for j, (lo, hi) in enumerate(AGE_BANDS.values()):
        in_band = groups.filter((pl.col("age_from") >= lo) & ((pl.col("age_to") <= hi) if hi is not None else pl.lit(True)))
        by_area = dict(in_band.group_by("area_code").agg(pl.col("value").sum()).iter_rows())
        for i, code in enumerate(codes):
            if code in by_area and totals.get(code):
                shares[i, j] = by_area[code] / totals[code]
    return np.array([float(totals.get(c, 1.0)) for c in codes]), shares


@dataclass(frozen=True)
class _Plan:
    """Everything drawn once for the whole period: sessions with their visit counts, and the visitor pools."""

    sessions: pl.DataFrame  # facility_index, opens_us, closes_us, visits (sorted by opens_us)
    facility_ids: list[str]
    offers: list[tuple[np.ndarray, np.ndarray]]  # per facility: offer names, cumulative weights
    profiles: list[TypeProfile]
    pool_start: np.ndarray  # first visitor number of each facility's pool
    pool_size: np.ndarray
    visitor_band: np.ndarray  # per visitor number: index into AGE_BANDS
    visitor_district: np.ndarray  # per visitor number: index into district codes
    district_codes: list[str]


def _plan(registry: FacilityRegistry, start: date, end: date, seed: int, population, districts, volume: float) -> _Plan:
    rng = np.random.default_rng([seed, 0])
    facilities = registry.facilities
    ids = facilities["facility_id"].to_list()
    profiles = [PROFILES[t] for t in facilities["type"].to_list()]
    holidays = school_holiday_days(start, end)
    calendar = opening_calendar(registry, start, end).with_columns(
        facility_index=pl.col("facility_id").replace_strict(ids, list(range(len(ids))), return_dtype=pl.Int32),
        weekday=pl.col("date").dt.weekday() - 1,
        month=pl.col("date").dt.month(),
        school_holiday=pl.col("date").is_in(holidays.implode()),
    )
    fi = calendar["facility_index"].to_numpy()
    rate = np.array([p.arrivals_per_hour_per_place for p in profiles])[fi] * facilities["capacity"].to_numpy()[fi]
    season = 1 + SEASON_AMPLITUDE * np.cos(2 * np.pi * (calendar["month"].to_numpy() - 1) / 12)
    holiday = np.where(calendar["school_holiday"].to_numpy(), np.array([p.school_holiday_factor for p in profiles])[fi], 1.0)
    expected = rate * calendar["hours"].to_numpy() * WEEKDAY_FACTOR[calendar["weekday"].to_numpy()] * season * holiday * volume
    sessions = calendar.select(
        "facility_index",
        opens_us=pl.col("opens_at").dt.epoch("us"),
        closes_us=pl.col("closes_at").dt.epoch("us"),
        visits=pl.Series(rng.poisson(expected)),
    ).sort("opens_us", "facility_index")

    codes = districts["area_code"].to_list()
    pop_total, band_shares = _population_weights(population, codes)
    expected_per_facility = np.bincount(fi, weights=expected, minlength=len(ids))
    pool_size = np.maximum(20, np.round(expected_per_facility / [p.visits_per_visitor for p in profiles])).astype(np.int64)
    pool_start = np.concatenate([[1], 1 + np.cumsum(pool_size)[:-1]])
    bands, homes = [], []
    for i, profile in enumerate(profiles):
        row = facilities.row(i, named=True)
        distance = _distance_km(np.full(len(codes), row["lat"]), np.full(len(codes), row["lon"]),
                                districts["lat"].to_numpy(), districts["lon"].to_numpy())
        home = np.array([HOME_DISTRICT_BOOST if c == row["area_code"][:5] else 1.0 for c in codes])
        district_weight = pop_total * np.exp(-distance / DISTANCE_DECAY_KM) * home
        homes.append(rng.choice(len(codes), size=pool_size[i], p=district_weight / district_weight.sum()))
        own = codes.index(row["area_code"][:5]) if row["area_code"][:5] in codes else 0
        band_weight = np.array(profile.participation) * band_shares[own]
        bands.append(rng.choice(len(AGE_BANDS), size=pool_size[i], p=band_weight / band_weight.sum()))
    offers = [(np.array(list(p.offers)), np.cumsum(list(p.offers.values())) / sum(p.offers.values())) for p in profiles]
    return _Plan(sessions, ids, offers, profiles, pool_start, pool_size,
                 np.concatenate([[0], *bands]), np.concatenate([[0], *homes]), codes)


def _visits(plan: _Plan, sessions: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    counts = sessions["visits"].to_numpy()
    n = int(counts.sum())
    facility = np.repeat(sessions["facility_index"].to_numpy(), counts)
    opens = np.repeat(sessions["opens_us"].to_numpy(), counts)
    length = np.repeat(sessions["closes_us"].to_numpy(), counts) - opens
    arrival = opens + (rng.random(n) * length).astype(np.int64) // 1_000_000 * 1_000_000  # whole seconds

    # a skewed draw from the pool: low numbers are the regulars who come often
    visitor = plan.pool_start[facility] + (plan.pool_size[facility] * rng.random(n) ** 2).astype(np.int64)
    offer = np.empty(n, dtype=object)
    party = np.empty(n, dtype=np.int64)
    duration = np.empty(n, dtype=np.int64)
    u = rng.random((3, n))
    for i, profile in enumerate(plan.profiles):
        here = facility == i
        names, cumulative = plan.offers[i]
        offer[here] = names[np.searchsorted(cumulative, u[0, here], side="right").clip(0, len(names) - 1)]
        party[here] = 1 + np.searchsorted(np.cumsum(profile.party_size_weights), u[1, here], side="right").clip(0, 3)
        sigma = 0.5
        mu = math.log(profile.mean_duration_minutes) - sigma**2 / 2
        duration[here] = np.exp(mu + sigma * rng.standard_normal(int(here.sum())))
    band = plan.visitor_band[visitor]
    party = np.where(band == 0, np.maximum(party, 2), party)  # small children come with an adult
    minutes_left = (opens + length - arrival) // 60_000_000
    duration = np.clip(duration, 5, None).clip(None, np.maximum(minutes_left, 1))

    missing = {c: rng.random(n) < share for c, share in MISSING_SHARE.items()}
    districts = np.array(plan.district_codes)[plan.visitor_district[visitor]]
    frame = pl.DataFrame(
        {
            "arrival_us": arrival,
            "facility_id": np.array(plan.facility_ids)[facility],
            "offer": offer.astype(str),
            "visitor_number": visitor,
            "age_band": np.array(list(AGE_BANDS))[band],
            "home_district": districts,
            "party_size": party,
            "duration_minutes": duration,
        }
    )
    return (
        frame.with_columns(
            timestamp=pl.from_epoch("arrival_us", time_unit="us")
            .dt.replace_time_zone("UTC")
            .dt.convert_time_zone(LOCAL_TIME_ZONE)
            .dt.strftime("%Y-%m-%dT%H:%M:%S%:z"),
            visitor_ref=pl.concat_str(pl.lit("card-"), pl.col("visitor_number").cast(pl.String).str.zfill(6)),
            home_district=pl.when(pl.Series(missing["home_district"])).then(None).otherwise(pl.col("home_district")),
            party_size=pl.when(pl.Series(missing["party_size"])).then(None).otherwise(pl.col("party_size")).cast(pl.Int32),
            duration_minutes=pl.when(pl.Series(missing["duration_minutes"])).then(None)
            .otherwise(pl.col("duration_minutes")).cast(pl.Int32),
        )
        .sort("arrival_us", "facility_id", "visitor_number")
        .select(RAW_CHECKIN_COLUMNS)
    )


def iter_checkin_chunks(
    facilities: FacilityRegistry,
    start: date,
    end: date,
    seed: int,
    rows_per_chunk: int = 1_000_000,
    population: pl.DataFrame | None = None,
    districts: pl.DataFrame | None = None,
    volume: float = 1.0,
) -> Iterator[pl.DataFrame]:
    """Raw check-in rows (RAW_CHECKIN_COLUMNS, what a facility delivers), chunk by chunk.

    A chunk holds whole opening sessions in order of opening time, so it has about rows_per_chunk rows (one very
    busy session may exceed it). Rows are in time order within a chunk, and per facility across chunks.
    `volume` multiplies demand: use it to reach benchmark sizes without inventing more facilities.
    """
    if rows_per_chunk < 1:
        raise ValueError(f"rows_per_chunk must be at least 1, got {rows_per_chunk}")
    plan = _plan(facilities, start, end, seed, population, districts if districts is not None else load_district_centres(), volume)
    cumulative = plan.sessions["visits"].cum_sum()
    chunk_of_session = ((cumulative - plan.sessions["visits"]) // rows_per_chunk).rename("chunk")
    sessions = plan.sessions.with_columns(chunk_of_session)
    for number, chunk in enumerate(sessions.partition_by("chunk", maintain_order=True), start=1):
        yield _visits(plan, chunk, np.random.default_rng([seed, number]))


def generate_checkins(
    facilities: FacilityRegistry,
    start: date,
    end: date,
    seed: int,
    population: pl.DataFrame | None = None,
    districts: pl.DataFrame | None = None,
    volume: float = 1.0,
) -> pl.DataFrame:
    """All raw check-in rows of the period (start … end, both included) in one frame."""
    chunks = list(iter_checkin_chunks(facilities, start, end, seed, 10**12, population, districts, volume))
    return pl.concat(chunks) if chunks else pl.DataFrame(schema={c: pl.String for c in RAW_CHECKIN_COLUMNS})


def generate_bookings(
    facilities: FacilityRegistry, start: date, end: date, seed: int, occupancy: float = 0.35
) -> pl.DataFrame:
    """Raw room bookings (RAW_BOOKING_COLUMNS): opening hours cut into two-hour slots, each booked with
    probability `occupancy` by one of the providers allowed in the room. Bookings never overlap."""
    rng = np.random.default_rng([seed, 10**6])
    rooms = facilities.rooms.with_columns(
        provider_index=pl.col("provider").cum_count().over("facility_id", "room_id", order_by="provider") - 1,
        providers=pl.len().over("facility_id", "room_id"),
    )
    per_room = rooms.select("facility_id", "room_id", "capacity", "providers").unique()
    slots = (
        opening_calendar(facilities, start, end)
        .join(per_room, on="facility_id", how="inner")
        .with_columns(slot=pl.int_ranges(0, (pl.col("hours") / 2).ceil().cast(pl.Int64)))
        .explode("slot")
        .with_columns(starts_at=pl.col("opens_at") + pl.duration(hours=2 * pl.col("slot")))
        .with_columns(ends_at=pl.min_horizontal(pl.col("starts_at") + pl.duration(hours=2), pl.col("closes_at")))
        .sort("starts_at", "facility_id", "room_id")
    )
    n = slots.height
    booked = rng.random(n) < occupancy
    chosen = slots.with_columns(
        booked=pl.Series(booked),
        provider_index=pl.Series((rng.random(n) * slots["providers"].to_numpy()).astype(np.int64)).cast(pl.UInt32),
        attendees=pl.Series(rng.binomial(slots["capacity"].to_numpy(), 0.55)).clip(1).cast(pl.Int32),
        purpose=pl.Series(np.array(BOOKING_PURPOSES)[rng.integers(0, len(BOOKING_PURPOSES), n)]),
    ).filter("booked")
    local = {
        c: pl.col(c).dt.convert_time_zone(LOCAL_TIME_ZONE).dt.strftime("%Y-%m-%dT%H:%M:%S%:z") for c in ("starts_at", "ends_at")
    }
    return (
        chosen.join(rooms.select("facility_id", "room_id", "provider_index", "provider"), on=["facility_id", "room_id", "provider_index"])
        .sort("starts_at", "facility_id", "room_id")
        .with_row_index("number", offset=1)
        .select(
            booking_id=pl.concat_str(pl.lit("bk-"), pl.col("number").cast(pl.String).str.zfill(6)),
            facility_id="facility_id",
            room_id="room_id",
            provider="provider",
            start=local["starts_at"],
            end=local["ends_at"],
            attendees="attendees",
            purpose="purpose",
        )
    )


def write_checkin_csv(rows: pl.DataFrame, path: Path) -> Path:
    rows.select(RAW_CHECKIN_COLUMNS).write_csv(path)
    return path


def write_jsonl(rows: pl.DataFrame, path: Path) -> Path:
    """One JSON object per line, numbers as numbers, empty fields as null."""
    rows.write_ndjson(path)
    return path


def write_bookings_csv(rows: pl.DataFrame, path: Path) -> Path:
    rows.select(RAW_BOOKING_COLUMNS).write_csv(path)
    return path


def write_sample(out: Path, start: date, end: date, seed: int, registry: FacilityRegistry | None = None) -> list[Path]:
    """The bundled sample: one check-in file per month (CSV and JSON Lines alternating, so both formats are
    exercised) and one booking file per quarter."""
    registry = registry or load_facility_registry()
    out.mkdir(parents=True, exist_ok=True)
    checkins = generate_checkins(registry, start, end, seed).with_columns(month=pl.col("timestamp").str.slice(0, 7))
    bookings = generate_bookings(registry, start, end, seed).with_columns(
        quarter=pl.col("start").str.slice(0, 4) + "-Q" + ((pl.col("start").str.slice(5, 2).cast(pl.Int32) - 1) // 3 + 1).cast(pl.String)
    )
    written = []
    for position, month in enumerate(sorted(checkins["month"].unique())):
        rows = checkins.filter(pl.col("month") == month).drop("month")
        writer, suffix = (write_checkin_csv, "csv") if position % 2 == 0 else (write_jsonl, "jsonl")
        written.append(writer(rows, out / f"checkins_{month}.{suffix}"))
    for quarter in sorted(bookings["quarter"].unique()):
        written.append(write_bookings_csv(bookings.filter(pl.col("quarter") == quarter), out / f"bookings_{quarter}.csv"))
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write SYNTHETIC check-in logs and room bookings for the facility registry.")
    parser.add_argument("--out", type=Path, required=True, help="folder for the delivery files")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2024, 3, 31))
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--registry", type=Path, default=None, help="facility registry (default config/facilities.toml)")
    args = parser.parse_args(argv)
    registry = load_facility_registry(args.registry) if args.registry else None
    for path in write_sample(args.out, args.start, args.end, args.seed, registry):
        print(path)


if __name__ == "__main__":
    main()
