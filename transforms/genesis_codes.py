"""Vocabulary shared by the GENESIS export formats: special values, sexes, age-group labels."""

from __future__ import annotations

import re

# Zeichenerklärung of the statistical offices. Such a cell is kept as a flag with an empty value, never as 0:
# "-" means "nothing" but "." means "secret or unknown", and a sum over either is not a number we may publish.
SPECIAL_VALUES: dict[str, str] = {
    "-": "nothing (genau null)",
    ".": "unknown or secret",
    "x": "not meaningful",
    "...": "not yet available",
    "/": "too uncertain",
}

SEX_CODES: dict[str, str] = {
    "insgesamt": "total",
    "männlich": "male",
    "weiblich": "female",
    "GESM": "male",
    "GESW": "female",
}

_UNDER = re.compile(r"^unter (\d+) Jahre?$")
_BETWEEN = re.compile(r"^(\d+) bis unter (\d+) Jahre?$")
_AND_OVER = re.compile(r"^(\d+) Jahre? und mehr$")


def parse_age_label(label: str) -> tuple[int, int | None, bool]:
    """German age-group label → (lower bound, exclusive upper bound or None if open, is_total).

    Bounds follow the publishers' convention "x bis unter y": the upper bound is exclusive.
    """
    text = " ".join(label.split())
    if text.lower() == "insgesamt":
        return 0, None, True
    if m := _UNDER.match(text):
        return 0, int(m.group(1)), False
    if m := _BETWEEN.match(text):
        return int(m.group(1)), int(m.group(2)), False
    if m := _AND_OVER.match(text):
        return int(m.group(1)), None, False
    raise ValueError(f"unknown age-group label {label!r}")

