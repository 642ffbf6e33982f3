"""Usage logs read in pieces: the same rows and the same refusals (file, row, reason) as the file read whole."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
import pytest

from transforms.bad_input import BadInputError
from transforms.checkin_log import parse_checkin_log, parse_checkin_log_pieces
from transforms.log_pieces import read_pieces

KEY = b"test-key-0123456789"
HEADER = b"timestamp,facility_id,offer,visitor_ref,age_band,home_district,party_size,duration_minutes\n"
ROWS = [f"2024-01-08T1{n % 10}:{n % 60:02d}:00+01:00,ha-a,Treff,card-{n},30-49,05914,1,{n}\n".encode() for n in range(40)]
# a quoted offer with a line break and a comma in it, and a BOM: a piece must not end inside the quotes
QUOTED = (b"\xef\xbb\xbf" + HEADER + b"".join(ROWS[:5])
          + b'2024-01-09T10:00:00+01:00,ha-a,"Treff,\nmit Umbruch",card-x,30-49,05914,1,5\n' + b"".join(ROWS[5:]))
JSONL = b"".join(
    f'{{"timestamp": "2024-01-08T10:{n:02d}:00+01:00", "facility_id": "ha-a", "offer": "x", "visitor_ref": "c{n}", '
    f'"age_band": "6-17"}}\n'.encode() for n in range(30))


def whole(data: bytes, file: str) -> pl.DataFrame:
    return parse_checkin_log(data, file, KEY).drop("duplicate_of_row")


def in_pieces(tmp_path: Path, data: bytes, file: str, piece_bytes: int) -> list[pl.DataFrame]:
    path = tmp_path / file
    path.write_bytes(data)
    return [frame.drop("duplicate_of_row") for frame in parse_checkin_log_pieces(path, KEY, piece_bytes)]


# keys may differ from line to line: a required one missing from every line of the first pieces is a row problem
# (quarantined) as long as some line of the file has it
JSONL_KEY_LATE = JSONL.replace(b', "age_band": "6-17"', b"") + JSONL


@pytest.mark.parametrize("data, file", [(QUOTED, "c.csv"), (JSONL, "c.jsonl"), (JSONL_KEY_LATE, "c.jsonl")],
                         ids=["csv-quoted-bom", "jsonl", "jsonl-key-only-late"])
@pytest.mark.parametrize("piece_bytes", [1, 150, 1000])
def test_a_log_in_pieces_gives_the_rows_of_the_log_read_whole(tmp_path, data, file, piece_bytes):
    pieces = in_pieces(tmp_path, data, file, piece_bytes)
    assert len(pieces) > 1
    assert pl.concat(pieces).equals(whole(data, file))


def test_pieces_end_where_records_end_and_repeat_the_header():
    pieces = list(read_pieces(io.BytesIO(QUOTED), "c.csv", 100))
    assert pieces[0].data.startswith(b"\xef\xbb\xbf" + HEADER)
    assert all(p.data.startswith(HEADER) for p in pieces[1:])
    assert all(p.data.endswith(b"\n") and p.data.count(b'"') % 2 == 0 for p in pieces)
    # what follows each repeated header, put together, is the file
    assert pieces[0].data + b"".join(p.data.removeprefix(HEADER) for p in pieces[1:]) == QUOTED


def test_no_piece_ends_inside_quotes_even_when_every_record_spans_two_lines():
    data = b"a,b\n" + b'"x\ny",z\n' * 500
    pieces = list(read_pieces(io.BytesIO(data), "c.csv", 64))
    assert len(pieces) > 10
    assert all(p.data.count(b'"') % 2 == 0 and p.data.endswith(b'",z\n') for p in pieces)


def test_an_empty_file_is_one_empty_piece():
    assert [p.data for p in read_pieces(io.BytesIO(b""), "c.csv", 100)] == [b""]


MANY = HEADER + b"".join(ROWS)
BAD_LATE = {  # each problem in a row far from the start, so that it falls in a later piece
    "short-line": MANY + b"2024-01-09T10:00:00+01:00,ha-a,Treff\n",
    "blank-line": MANY + b"\n" + ROWS[0],
    "latin1": MANY + "2024-01-09T10:00:00+01:00,ha-a,Café,card-1,30-49,05914,1,5\n".encode("latin-1"),
    "nul-byte": MANY + b"2024-01-09T10:00:00+01:00,ha-a,\x00,card-1,30-49,05914,1,5\n",
    "truncated": MANY + b"2024-01-09T10:00:00+01:00,ha-a,Treff,card-1,30-49,05914,1,5",
    "open-quote": MANY + b'2024-01-09T10:00:00+01:00,ha-a,"Treff,card-1,30-49,05914,1,5\n' + b"".join(ROWS[:3]),
    "quoted-then-short": QUOTED + b'2024-01-09T10:00:00+01:00,"ha-a",Treff\n',
    "jsonl-bad-line": JSONL + b'{"timestamp": "t", "facility_id": "f", "offer": \n',
    "jsonl-blank-line": JSONL + b"\n" + JSONL[: JSONL.index(b"\n") + 1],
    "jsonl-unknown-key-late": JSONL + JSONL.replace(b'"age_band"', b'"name": "Erika", "age_band"'),
    "jsonl-key-nowhere": JSONL.replace(b', "age_band": "6-17"', b"") * 2,
}


@pytest.mark.parametrize("case", list(BAD_LATE))
def test_a_bad_row_in_a_later_piece_is_refused_with_the_row_and_reason_of_the_whole_file(tmp_path, case):
    data = BAD_LATE[case]
    file = "c.jsonl" if case.startswith("jsonl") else "c.csv"
    with pytest.raises(BadInputError) as read_whole:
        whole(data, file)
    with pytest.raises(BadInputError) as read_in_pieces:
        in_pieces(tmp_path, data, file, 200)
    assert (read_in_pieces.value.row, read_in_pieces.value.reason) == (read_whole.value.row, read_whole.value.reason)
    assert read_whole.value.row is None or read_whole.value.row > 20  # not in the first piece
