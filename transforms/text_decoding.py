"""Decoding delivered bytes into text, with errors that point at the offending line."""

from __future__ import annotations

from transforms.bad_input import BadInputError


def line_of_offset(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def refuse_binary(data: bytes, file: str, line_shift: int = 0, whole: bool = True) -> None:
    """UTF-16 text and binary files (PDF, ZIP, XLSX) contain NUL bytes; no CSV delivery ever does. `data` may be a
    piece of the file (transforms/log_pieces.py): `line_shift` lines before it, and only the file's first piece
    (`whole`) can show that the file is empty."""
    if whole and (not data or data.isspace()):  # not data.strip(): that copies the whole delivery
        raise BadInputError(file, None, "empty file: no header and no data")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise BadInputError(
            file,
            line_of_offset(data, nul) + line_shift,
            "not a text file in UTF-8 or Latin-1 (NUL byte found: UTF-16, spreadsheet or binary?)",
        )


def decode_utf8_strict(data: bytes, file: str, line_shift: int = 0, whole: bool = True) -> str:
    refuse_binary(data, file, line_shift, whole)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        in_line = err.start - data.rfind(b"\n", 0, err.start)
        raise BadInputError(
            file,
            line_of_offset(data, err.start) + line_shift,
            f"not valid UTF-8 (byte 0x{data[err.start]:02X}, byte {in_line} of the line); "
            "the contract is UTF-8: was the file saved as Latin-1 or Windows-1252?",
        ) from None


def decode_utf8_or_latin1(data: bytes, file: str) -> tuple[str, str]:
    """GENESIS exports come in both encodings; UTF-8 is tried first because Latin-1 decodes any byte."""
    refuse_binary(data, file)
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"
