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
    # JSON Lines in pieces: the keys of every piece so far, in order of appearance. Keys may differ from line to
    # line, so the file's columns are checked once, over all of them, after its last piece; None: check here.
    json_keys: dict[str, None] | None = None


@dataclass(frozen=True)
class Piece:
    data: bytes  # the piece's lines, preceded by the file's header line for a CSV piece after the first
    line_shift: int
    first: bool

    def at(self, records_before: int, json_keys: dict[str, None]) -> Position:
        return Position(self.line_shift, records_before, self.first, json_keys)


def is_json_lines(file: str, start: str) -> bool:
    """JSON Lines by extension (.jsonl, .ndjson) or else by a first character '{'."""
    return PurePath(file).suffix.lower() in (".jsonl", ".ndjson") or re.match(r"\s*\{", start) is not None


def _record_end(data: bytes, start: int, quotes_before: int) -> int:
    """The offset just after the last line break in data[start:] with an even number of quotes before it (data
    begins at a record), or 0 if there is none. `quotes_before`: the quotes in data[:start]."""
    end = data.rfind(b"\n", start) + 1
    if not end:
        return 0
    open_quote = (quotes_before + data.count(b'"', start, end)) % 2
    while open_quote:
        previous = data.rfind(b"\n", start, end - 1) + 1
        if not previous:
            return 0
        open_quote ^= data.count(b'"', previous, end) % 2
        end = previous
    return end


def read_pieces(stream: BinaryIO, file: str, piece_bytes: int = PIECE_BYTES) -> Iterator[Piece]:
    """The stream's bytes as pieces of at least `piece_bytes` (the last may be shorter; a record longer than that
    makes a longer piece). Whatever follows the last record boundary, a line cut off or a quote left open, ends
    the last piece, where the parser reports it. An empty stream is one empty piece.

    Each block read is searched for a record boundary once: a file whose quote never closes is read to its end
    (and refused there) without searching what was read before again."""
    header = b""
    lines_before = 0  # lines of the file before the next piece
    first = True
    data = b""
    searched = quotes = 0  # data[:searched] holds no record boundary to take, and `quotes` quotes
    while block := stream.read(piece_bytes):
        data += block
        end = _record_end(data, searched, quotes)
        if first and end:
            header_end = data.find(b"\n") + 1
            if not is_json_lines(file, data[:64].decode("utf-8", "replace").lstrip("\ufeff")):
                header = data[:header_end].removeprefix(codecs.BOM_UTF8)
                if end == header_end:
                    end = 0  # only the header so far: read on
        if not end:
            quotes += data.count(b'"', searched)
            searched = len(data)
            continue
        yield _piece(header, data[:end], lines_before, first)
        lines_before += data.count(b"\n", 0, end)
        first = False
        data = data[end:]
        searched, quotes = len(data), data.count(b'"')  # after the last boundary: none in it
    if data or first:
        yield _piece(header, data, lines_before, first)


def _piece(header: bytes, data: bytes, lines_before: int, first: bool) -> Piece:
    if first or not header:
        return Piece(data, lines_before, first)
    return Piece(header + data, lines_before - 1, first)  # line 1 of the data is the repeated header
