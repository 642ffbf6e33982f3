"""Check-in logs (CSV and JSON Lines): parsing, pseudonymisation, and every kind of bad input with its reason."""

from __future__ import annotations

import hmac
from datetime import date, datetime, timezone

import polars as pl
import pytest

from transforms.bad_input import BadInputError
from transforms.checkin_log import CHECKIN_SCHEMA, parse_checkin_log, parse_timestamp, parse_timestamps
from transforms.pseudonymise import PseudonymKeyError, pseudonym_key_from_env, pseudonymise

KEY = b"test-key-0123456789"
HEADER = b"timestamp,facility_id,offer,visitor_ref,age_band,home_district,party_size,duration_minutes\n"
GOOD = (
    HEADER
    + b'2024-01-08T15:42:00+01:00,ha-a,"Treff, offen",card-000123,6-17,05914,2,90\n'
    + b"2024-03-31T01:30:00Z,ha-a,Beratung,card-000124,75+,,,\n"
)


def pseudonym(ref: str, key: bytes = KEY) -> int:
    """The pseudonym by its definition: the first 64 bits of the HMAC-SHA256 as a signed big-endian integer."""
    return int.from_bytes(hmac.digest(key, ref.encode(), "sha256")[:8], "big", signed=True)


# without any quote: the field counts are checked by adding up the separators of the whole file first
PLAIN = GOOD.replace(b'"Treff, offen"', b"Treff")


def test_csv_rows_follow_the_checkins_contract():
    frame = parse_checkin_log(GOOD, "checkins_2024-01.csv", KEY)
    assert frame.schema == pl.Schema(CHECKIN_SCHEMA)
    first, second = frame.rows(named=True)
    assert first["visited_at"] == datetime(2024, 1, 8, 14, 42, tzinfo=timezone.utc)
    assert first["visit_date"] == date(2024, 1, 8)
    assert first["offer"] == "Treff, offen"
    assert (first["age_from"], first["age_to"]) == (6, 18)
    assert (first["home_district"], first["party_size"], first["duration_minutes"]) == ("05914", 2, 90)
    assert (first["source_file"], first["source_row"]) == ("checkins_2024-01.csv", 1)
    # 01:30 UTC on the night of the spring clock change is 03:30 CEST, still 31 March in Berlin
    assert second["visit_date"] == date(2024, 3, 31)
    assert (second["age_from"], second["age_to"]) == (75, None)
    assert (second["home_district"], second["party_size"], second["duration_minutes"]) == (None, None, None)


def test_local_date_is_berlin_not_utc():
    late = HEADER + b"2024-01-08T23:30:00Z,ha-a,Treff,card-1,6-17,,,\n"
    assert parse_checkin_log(late, "late.csv", KEY)["visit_date"].to_list() == [date(2024, 1, 9)]


def test_visitor_reference_is_replaced_by_its_hmac_and_never_kept():
    data = GOOD + b"2024-01-08T16:00:00+01:00,ha-a,Treff,  card-000123 ,6-17,,,\n"
    frame = parse_checkin_log(data, "c.csv", KEY)
    assert frame["visitor_pseudonym"].to_list() == [pseudonym("card-000123"), pseudonym("card-000124"), pseudonym("card-000123")]
    assert "visitor_ref" not in frame.columns
    dumped = frame.write_csv()
    assert "card-000123" not in dumped and "card-000124" not in dumped


def test_pseudonyms_are_the_hmac_of_the_utf8_reference_and_empty_stays_empty():
    from transforms.pseudonymise import pseudonymise

    refs = pl.Series("visitor_ref", ["Jürgen-7", " ausweis 12 ", "", None, "Jürgen-7"])
    assert pseudonymise(refs, KEY).to_list() == [pseudonym("Jürgen-7"), pseudonym("ausweis 12"), None, None,
                                                 pseudonym("Jürgen-7")]


def test_jsonl_gives_the_same_rows_as_csv():
    jsonl = (
        b'{"timestamp": "2024-01-08T15:42:00+01:00", "facility_id": "ha-a", "offer": "Treff, offen", '
        b'"visitor_ref": "card-000123", "age_band": "6-17", "home_district": "05914", "party_size": 2, "duration_minutes": 90}\n'
        b'{"timestamp": "2024-03-31T01:30:00Z", "facility_id": "ha-a", "offer": "Beratung", '
        b'"visitor_ref": "card-000124", "age_band": "75+", "party_size": null}\n'
    )
    from_jsonl = parse_checkin_log(jsonl, "checkins.jsonl", KEY).drop("source_file")
    from_csv = parse_checkin_log(GOOD, "checkins.csv", KEY).drop("source_file")
    assert from_jsonl.equals(from_csv)


def test_row_problems_stay_in_the_frame_with_the_text_as_delivered():
    data = HEADER + (
        b"2024-01-08T15:42:00,ha-a,Treff,card-1,6-17,,,\n"  # no offset
        b"2024-01-08T15:42:00 Europe/Berlin,ha-a,Treff,card-2,6-17,,,\n"  # zone name, not offset
        b"08.01.2024 15:42,ha-a,Treff,card-3,6-17,,,\n"  # German date
        b"2024-02-30T10:00:00+01:00,ha-a,Treff,card-4,99+,,two,90 min\n"  # impossible date, unknown band, words
    )
    frame = parse_checkin_log(data, "c.csv", KEY)
    assert frame.height == 4
    assert frame["visited_at"].null_count() == 4
    assert frame["visited_at_text"].to_list()[0] == "2024-01-08T15:42:00"
    last = frame.row(3, named=True)
    assert (last["age_band"], last["age_from"]) == ("99+", None)
    assert (last["party_size_text"], last["party_size"]) == ("two", None)
    assert (last["duration_minutes_text"], last["duration_minutes"]) == ("90 min", None)


def test_repeated_check_in_points_to_the_first_row():
    data = GOOD + b'2024-01-08T15:42:00+01:00,ha-a,"Treff, offen",card-000123,6-17,05914,2,90\n'
    assert parse_checkin_log(data, "c.csv", KEY)["duplicate_of_row"].to_list() == [None, None, 1]


def test_interleaved_repeats_each_point_to_their_own_first_row():
    visit = {ref: f"2024-01-08T15:42:00+01:00,ha-a,Treff,{ref},6-17,05914,2,90\n".encode() for ref in "abc"}
    other_offer = b"2024-01-08T15:42:00+01:00,ha-a,Beratung,a,6-17,05914,2,90\n"  # same visitor, another offer
    data = HEADER + visit["a"] + visit["b"] + visit["a"] + other_offer + visit["c"] + visit["b"] + visit["a"]
    assert parse_checkin_log(data, "c.csv", KEY)["duplicate_of_row"].to_list() == [None, None, 1, None, None, 2, 1]


@pytest.mark.parametrize("file", ["c.csv", "c.jsonl"])
def test_a_byte_order_mark_is_not_part_of_the_first_column(file):
    body = GOOD if file == "c.csv" else (
        b'{"timestamp": "2024-01-08T15:42:00+01:00", "facility_id": "ha-a", "offer": "Treff", '
        b'"visitor_ref": "card-000123", "age_band": "6-17"}\n'
    )
    frame = parse_checkin_log(b"\xef\xbb\xbf" + body, file, KEY)
    assert frame["visited_at_text"][0] == "2024-01-08T15:42:00+01:00"
    assert frame["visitor_pseudonym"][0] == pseudonym("card-000123")


@pytest.mark.parametrize(
    ("data", "file", "row", "reason"),
    [
        (GOOD[:-1], "c.csv", 3, "truncated file: the last line has no line break"),
        (GOOD.replace(b"75+,,,", b"75+,,"), "c.csv", 2, "expected 8 comma-separated fields, found 7 field(s) (line 3)"),
        (GOOD + b"\n", "c.csv", 3, "found an empty line (line 4)"),
        (PLAIN.replace(b"75+,,,", b"75+,,"), "c.csv", 2, "expected 8 comma-separated fields, found 7 field(s) (line 3)"),
        (PLAIN.replace(b"75+,,,", b"75+,,,,"), "c.csv", 2, "expected 8 comma-separated fields, found 9 field(s) (line 3)"),
        # one line too long, one too short: the separators add up, Polars refuses the long line
        (PLAIN.replace(b"2,90", b"2,90,").replace(b"75+,,,", b"75+,,"), "c.csv", 1,
         "expected 8 comma-separated fields, found 9 field(s) (line 2)"),
        (GOOD.replace(b"age_band,", b"").replace(b"6-17,", b"").replace(b"75+,", b""), "c.csv", 1, "missing column(s) age_band"),
        (GOOD.replace(b"offer", b"activity"), "c.csv", 1, "missing column(s) offer; unknown column(s) activity"),
        (HEADER, "c.csv", None, "header only, no records"),
        (b"", "c.csv", None, "empty file"),
        (GOOD.replace(b"Beratung", b"Beratung f\xfcr"), "c.csv", 3, "not valid UTF-8"),
        (HEADER + b'2024-01-08T15:42:00+01:00,ha-a,"Treff,card-1,6-17,,,\n', "c.csv", 1, "a quoted field is still open"),
        (b'{"timestamp": "2024-01-08T15:42:00+01:00", "facility_id": "ha-a", "offer": "x", "visitor_ref": "card-9", "age_band": "6-17"}\n'
         b'{"timestamp": "2024-01-08T15:43:00+01:00", "facility_id": "ha-a", "offer": "x", "visitor_ref": "card-9", "age_b\n',
         "c.jsonl", 2, "not valid JSON"),
        (b'{"timestamp": "t", "facility_id": "f", "offer": "o", "visitor_ref": "card-9", "age_band": "6-17", "name": "Erika"}\n',
         "c.jsonl", None, "unknown column(s) name"),
        (b'{"timestamp": "t", "facility_id": "f", "offer": "o", "age_band": "6-17"}\n', "c.jsonl", None, "missing column(s) visitor_ref"),
        (b'{"timestamp": "t", "facility_id": "f", "offer": "o", "visitor_ref": "card-9", "age_band": "6-17"}\n\n'
         b'{"timestamp": "t", "facility_id": "f", "offer": "o", "visitor_ref": "card-9", "age_band": "6-17"}\n',
         "c.jsonl", 2, "empty line"),
        (b'[1, 2]\n', "c.jsonl", 1, "not a JSON object"),
    ],
    ids=["truncated", "short-line", "blank-line", "short-line-unquoted", "long-line-unquoted", "long-and-short-lines", "missing-column", "renamed-column", "header-only", "empty",
         "latin1", "open-quote", "jsonl-truncated", "jsonl-unknown-key", "jsonl-missing-key", "jsonl-blank-line",
         "jsonl-not-object"],
)
def test_unreadable_files_are_refused_with_file_row_and_reason(data, file, row, reason):
    with pytest.raises(BadInputError) as err:
        parse_checkin_log(data, file, KEY)
    assert err.value.file == file
    assert err.value.row == row
    assert reason in err.value.reason


def test_error_messages_never_quote_a_visitor_reference():
    broken = b'{"timestamp": "t", "facility_id": "f", "offer": "o", "visitor_ref": "card-424242", "age_band": 6-17}\n'
    with pytest.raises(BadInputError) as err:
        parse_checkin_log(broken, "c.jsonl", KEY)
    assert "card-424242" not in str(err.value)


def test_pseudonymise_is_keyed_and_leaves_gaps_empty():
    refs = pl.Series("visitor_ref", ["card-1", " card-1", "", None, "card-2"])
    hashed = pseudonymise(refs, KEY)
    assert hashed.to_list() == [pseudonym("card-1"), pseudonym("card-1"), None, None, pseudonym("card-2")]
    assert pseudonymise(refs, b"another-key-0123456")[0] != hashed[0]


@pytest.mark.parametrize("key", [b"0123456789abcdef", b"k" * 64, b"a-key-longer-than-a-sha256-block-" * 3,
                                 "Schlüssel-für-Pseudonyme".encode()])
def test_pseudonyms_are_the_standard_hmac_for_keys_of_any_length(key):
    # the inner and outer key blocks are prepared once; a key longer than SHA-256's 64-byte block is hashed first
    refs = ["card-1", "Jürgen-7", "x" * 200]
    expected = [pseudonym(ref, key) for ref in refs]
    assert pseudonymise(pl.Series(refs), key).to_list() == expected


def test_key_comes_from_the_environment_and_must_be_long(monkeypatch):
    monkeypatch.setenv("DEMAND_MONITOR_PSEUDONYM_KEY", "a-long-enough-secret")
    assert pseudonym_key_from_env() == b"a-long-enough-secret"
    monkeypatch.setenv("DEMAND_MONITOR_PSEUDONYM_KEY", "short")
    with pytest.raises(PseudonymKeyError, match="has 5 bytes, at least 16"):
        pseudonym_key_from_env()
    monkeypatch.delenv("DEMAND_MONITOR_PSEUDONYM_KEY")
    with pytest.raises(PseudonymKeyError, match="DEMAND_MONITOR_PSEUDONYM_KEY is not set"):
        pseudonym_key_from_env()
    with pytest.raises(PseudonymKeyError):
        parse_checkin_log(GOOD, "c.csv", b"short")


def test_the_fast_path_for_common_timestamps_agrees_with_the_full_pattern():
    texts = pl.Series("timestamp", [
        "2024-01-08T15:42:00+01:00", "2024-07-08T15:42:00-02:30", "2024-01-08 15:42:00+01:00", "2024-01-08T15:42+01:00",
        "2024-01-08T15:42:00.250+01:00", "2024-01-08T15:42:00Z", "2024-01-08T15:42:00+0100", "2024-1-8T15:42:00+01:00",
        "2024-01-08T15:42:00", " 2024-01-08T15:42:00+01:00", "2024-13-08T15:42:00+01:00", "gestern", None,
    ])
    fast = parse_timestamps(texts)
    full = texts.to_frame().select(parse_timestamp(pl.col("timestamp"))).to_series()
    assert fast.to_list() == full.to_list()
    assert fast[0] == datetime(2024, 1, 8, 14, 42, tzinfo=timezone.utc) and fast.null_count() == 5
