"""The catalogue is the single list of indicators: the marts compute nothing outside it, the docs explain all."""

from __future__ import annotations

from pathlib import Path

from transforms.catalogue import catalogue_frame, load_catalogue

ROOT = Path(__file__).resolve().parents[1]


def test_every_indicator_is_documented():
    docs = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md"))
    missing = [i.id for i in load_catalogue() if f"**{i.id}" not in docs]
    assert missing == []


def test_catalogue_entries_are_complete():
    for indicator in load_catalogue():
        assert indicator.name_de and indicator.name_en and indicator.formula and indicator.unit, indicator.id
        if indicator.kind == "age_ratio":
            bands = set(indicator.numerator) | {indicator.denominator}
            assert bands <= {"young", "working", "old", "80+", "total"}, indicator.id


def test_export_frame_has_one_row_per_indicator():
    frame = catalogue_frame()
    assert frame["id"].to_list() == [i.id for i in load_catalogue()]
