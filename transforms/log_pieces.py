"""A delivered log read in pieces that end where a record ends, so that a file of any size is parsed, validated and
loaded in bounded memory.

Parsing a whole log at once takes ~0.8 GB per million check-ins in the parse worker and as much again in the writer
(one 10M-row file: 8.4 + 6.4 GB), so a single big delivery (a backfill of years) would not fit where a hundred
small ones do. Each piece is about `piece_bytes` long; the parser checks it as it would check a file (encoding,
columns, field counts), with its line and record numbers counted from the start of the file.

A piece ends at a line break outside quotes: a CSV field in quotes may hold line breaks, so a break after an odd
number of quotes lies inside a field. A CSV piece after the first starts with the file's header line, so that it
is read with the same columns.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import BinaryIO

# 128 MiB ≈ 1.4M check-ins: the 1M-row deliveries of the benchmarks stay one piece each, as the usage logs of a
# city almost always are; only a bigger file is split.
PIECE_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True)
class Position:
    """Where a piece lies in its file: added to the line and record numbers counted within the piece."""

    line_shift: int = 0  # file line = line within the piece's data + line_shift
    records_before: int = 0  # records (data rows) of the file before the piece
    first: bool = True  # the piece that starts the file (only it can show that the file is empty)


@dataclass(frozen=True)
class Piece:
    data: bytes  # the piece's lines, preceded by the file's header line for a CSV piece after the first
    line_shift: int
    first: bool

    def at(self, records_before: int) -> Position:
        return Position(self.line_shift, records_before, self.first)


def is_json_lines(file: str, start: str) -> bool:
    """JSON Lines by extension (.jsonl, .ndjson) or else by a first character '{'."""
    return PurePath(file).suffix.lower() in (".jsonl", ".ndjson") or re.match(r"\s*\{", start) is not None


def _record_end(data: bytes) -> int:
    """The offset just after the last line break of `data` outside quotes (data starts at a record), or 0."""
    end = data.rfind(b"\n") + 1
    if b'"' not in data:
        return end
    open_at_end = data.count(b'"', 0, end) % 2 == 1
    while end and open_at_end:
        previous = data.rfind(b"\n", 0, end - 1) + 1
        open_at_end ^= data.count(b'"', previous, end) % 2 == 1
        end = previous
    return end


def read_pieces(stream: BinaryIO, file: str, piece_bytes: int = PIECE_BYTES) -> Iterator[Piece]:
    """The stream's bytes as pieces of at least `piece_bytes` (the last may be shorter; a record longer than that
    makes a longer piece). Whatever follows the last record boundary, a line cut off or a quote left open, ends
    the last piece, where the parser reports it. An empty stream is one empty piece."""
    header = b""
    lines_before = 0  # lines of the file before the next piece
    first = True
    data = b""
    while block := stream.read(piece_bytes):
        data += block
        end = _record_end(data)
        if first and end:
            header_end = data.find(b"\n") + 1
            if not is_json_lines(file, data[:64].decode("utf-8", "replace").lstrip("\ufeff")):
                header = data[:header_end].removeprefix(codecs.BOM_UTF8)
                if end == header_end:
                    continue  # only the header so far
        if not end:
            continue  # no record ends in it yet: read on
        yield _piece(header, data[:end], lines_before, first)
        lines_before += data.count(b"\n", 0, end)
        first = False
        data = data[end:]
    if data or first:
        yield _piece(header, data, lines_before, first)


def _piece(header: bytes, data: bytes, lines_before: int, first: bool) -> Piece:
    if first or not header:
        return Piece(data, lines_before, first)
    return Piece(header + data, lines_before - 1, first)  # line 1 of the data is the repeated header
