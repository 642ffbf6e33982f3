"""The handover of a delivery in pieces: repeats across pieces marked as if the file were one frame."""

from __future__ import annotations

import polars as pl

from transforms.checkin_log import mark_repeats
from warehouse.parsed_pieces import read_parsed, write_parsed

KEY = ["facility_id", "offer", "visitor_pseudonym"]
FILE = pl.DataFrame(
    {
        "facility_id": ["a", "a", "b", "a", "b", None, "a", None, "b", "a"],
        "offer": ["x", "x", "y", "x", "y", "z", None, "z", "y", None],
        "visitor_pseudonym": [1, 2, 3, 1, 3, 4, 5, 4, 3, 5],
        "source_row": list(range(1, 11)),
    },
    schema_overrides={"visitor_pseudonym": pl.Int64, "source_row": pl.Int64},
)


def test_repeats_across_pieces_are_those_of_the_whole_file_nulls_equal(tmp_path):
    pieces = [mark_repeats(FILE.slice(start, 3), KEY) for start in range(0, FILE.height, 3)]
    files, repeats = write_parsed(pieces, tmp_path / "delivery", KEY)
    assert len(files) == 4 and repeats is not None
    marked = pl.concat(read_parsed(files, repeats))
    assert marked.equals(mark_repeats(FILE, KEY))
    assert marked["duplicate_of_row"].to_list() == [None, None, None, 1, 3, None, None, 6, 3, 7]


def test_a_file_of_one_piece_or_without_repeats_needs_no_repeats_pass(tmp_path):
    assert write_parsed([mark_repeats(FILE, KEY)], tmp_path / "one", KEY)[1] is None
    unique = FILE.filter(pl.col("source_row") <= 3)
    assert write_parsed([mark_repeats(unique.slice(i, 1), KEY) for i in range(3)], tmp_path / "unique", KEY)[1] is None
