"""Open Repair Data exports: the real deliveries, and broken ones."""

from __future__ import annotations

import polars as pl
import pytest

from conftest import ORDS_202309
from transforms.bad_input import BadInputError
from transforms.open_repair import ORDS_COLUMNS, parse_open_repair

REAL = ORDS_202309.read_bytes()


def test_real_delivery_parses_completely():
    frame = parse_open_repair(REAL, ORDS_202309.name)
    assert frame.height == 15_100
    assert frame["id"].n_unique() == 15_100
    assert frame["group_identifier"].n_unique() == 87
    assert frame["event_date_parsed"].null_count() == 0
    assert frame["source_row"].to_list()[:3] == [1, 2, 3]


def test_quoted_line_break_in_problem_text_stays_one_record():
    text = REAL.decode("utf-8").replace(
        '"Funktionierte nicht mehr. Fehler und Lösung nicht dokumentiert."',
        '"Funktionierte nicht mehr.\nFehler und Lösung, ""nicht"" dokumentiert."',
        1,
    )
    frame = parse_open_repair(text.encode(), ORDS_202309.name)
    assert frame.height == 15_100
    assert frame["problem"][0] == 'Funktionierte nicht mehr.\nFehler und Lösung, "nicht" dokumentiert.'
    assert frame["id"][1] == "anstiftung_2747" and frame["source_row"][1] == 2


def _refused(data: bytes) -> BadInputError:
    with pytest.raises(BadInputError) as info:
        parse_open_repair(data, "delivery.csv")
    assert info.value.file == "delivery.csv"
    return info.value


def test_unknown_column_is_named():
    header, rest = REAL.split(b"\n", 1)
    err = _refused(header + b",visitor_email\n" + rest.replace(b"\n", b",x\n"))
    assert err.row == 1 and "unknown column(s) visitor_email" in err.reason


def test_missing_column_is_named():
    frame = pl.read_csv(REAL, infer_schema=False).drop("repair_status")
    err = _refused(frame.write_csv().encode())
    assert "missing column(s) repair_status" in err.reason


def test_latin1_delivery_is_wrong_encoding_with_line():
    text = REAL.decode("utf-8")
    err = _refused(text.encode("latin-1", errors="replace"))
    first_umlaut_line = text[: min(text.index(c) for c in "äöüÄÖÜß" if c in text)].count("\n") + 1
    assert err.row == first_umlaut_line and "not valid UTF-8" in err.reason


def test_truncated_delivery():
    err = _refused(REAL[: len(REAL) // 3])
    assert "truncated" in err.reason


def test_header_only_and_empty():
    assert "no records" in _refused((",".join(ORDS_COLUMNS) + "\n").encode()).reason
    assert "empty file" in _refused(b"   \n").reason


def test_not_csv_at_all():
    err = _refused(b"PK\x03\x04\x14\x00\x06\x00 spreadsheet bytes\n")
    assert "not a text file" in err.reason
