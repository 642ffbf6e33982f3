"""Population projection for areas below the Land: the Land's projection by age applied to each area's observed
population (ratio method, "Anteilsmethode" with constant area shares per age group).

No Kreis-level projection is available offline; Destatis publishes the coordinated projection per Land (table
12421-0004, 14th koordinierte Bevölkerungsvorausberechnung, base 31.12.2018, single years of age). For each area a
of a Land, observed age group g at the base date, projection year y and variant v:

    projected(a, g, y, v) = observed(a, g, base) × land_projected(g, y, v) / land_observed(g, base)

land_projected(g, y, v) is the sum of the projection's single years inside g (the open group 75+ takes 75 … 100+);
land_observed(g, base) is the Land's own row at the base date if the population table has one, else the sum of
its Kreise (5-digit codes). The method keeps every area's share of the Land in each age group constant: it
ignores Kreis-specific migration, births and deaths and is an approximation until IT.NRW's Kreis projection is
loaded. At the base year the projection equals the observed population exactly (the base-year rows are the
observed values).

GENESIS classic CSV of 12421-0004 (as exported by the GENESIS-Online database, UTF-8 or Latin-1):
  title lines ("Vorausberechneter Bevölkerungsstand (1000)" states the unit), a header line ";;;;;Stichtag;…" and
  one with the dates ";;;;;31.12.2019;…", then one row per Land; variant code; variant label; sex; age
  ("unter 1 Jahr", "1-Jährige" … "100 Jahre und mehr", "Insgesamt"), values in the stated unit; optionally a footer
  that starts with a line of underscores. The values are in thousands rounded to whole thousands: value = cell ×
  1000, so every single-age value is exact only to ±500 persons and the single ages add up to the published total
  only within that rounding (checked per block, which also proves the block arrived whole).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime

import polars as pl

from transforms.bad_input import BadInputError
from transforms.demography import OPEN_END
from transforms.genesis_codes import SEX_CODES, SPECIAL_VALUES, parse_age_label
from transforms.projection import PROJECTION_COLUMNS, VARIANTS
from transforms.text_decoding import decode_utf8_or_latin1

METHOD = "nrw_ratio_14kBV"  # every projected row names the method; the Land table is the 14th kBV

# Amtlicher Gemeindeschlüssel: the two leading digits of every area code of a Land.
LAND_CODES: dict[str, str] = {
    "Schleswig-Holstein": "01",
    "Hamburg": "02",
    "Niedersachsen": "03",
    "Bremen": "04",
    "Nordrhein-Westfalen": "05",
    "Hessen": "06",
    "Rheinland-Pfalz": "07",
    "Baden-Württemberg": "08",
    "Bayern": "09",
    "Saarland": "10",
    "Berlin": "11",
    "Brandenburg": "12",
    "Mecklenburg-Vorpommern": "13",
    "Sachsen": "14",
    "Sachsen-Anhalt": "15",
    "Thüringen": "16",
}

LAND_PROJECTION_SCHEMA: dict[str, pl.DataType] = {
    "area_code": pl.String,
    "area_name": pl.String,
    "variant_code": pl.String,  # "BEV-VARIANTE-02"
    "variant": pl.String,  # the assumption code in the label, "G2L2W2"
    "variant_label": pl.String,
    "sex": pl.String,
    "age_label": pl.String,
    "age_from": pl.Int32,
    "age_to": pl.Int32,  # exclusive; null = open ("100 Jahre und mehr") or the total
    "is_total": pl.Boolean,
    "reference_date": pl.Date,
    "value": pl.Int64,  # persons (the cell × the unit)
    "flag": pl.String,  # official special value; value is null whenever flag is set
    "source_file": pl.String,
    "source_row": pl.Int64,
}
AREA_PROJECTION_SCHEMA: dict[str, pl.DataType] = {
    "area_code": pl.String, "year": pl.Int32, "variant": pl.String, "age_from": pl.Int32, "age_to": pl.Int32,
    "value": pl.Int64, "method": pl.String,
}



class LandNotCoveredError(BadInputError):
    """The observed population does not cover the whole Land at the base date (none of it, or only some Kreise),
    so the Land's ratios cannot be applied: not a defect of either file, but too little observed data loaded."""


_KEYS = ["area_name", "variant_code", "variant_label", "sex", "age_label"]
_UNITS = {"(1000)": 1000, "(Anzahl)": 1}
_FOOTER_START = "__________"
_DATE = re.compile(r"^\d{2}\.\d{2}\.\d{4}$")
_SINGLE_AGE = re.compile(r"^(\d+)-Jährige$")
_VARIANT_IN_LABEL = re.compile(r"\(([A-Z0-9]+)\)\s*$")
_NUMBER = re.compile(r"^\d+(,\d+)?$")


def _age(label: str) -> tuple[int, int | None, bool]:
    """The projection's age labels: the single years "17-Jährige" plus the labels every GENESIS table uses."""
    if m := _SINGLE_AGE.match(label.strip()):
        return int(m.group(1)), int(m.group(1)) + 1, False
    return parse_age_label(label)


def _header(lines: list[str], file: str) -> tuple[int, int, list[date]]:
    """(unit multiplier, index of the first data line, the Stichtag of each value column)."""
    dates_at = next((i for i, line in enumerate(lines) if line.startswith(";") and re.search(r";\d{2}\.\d{2}\.\d{4}", line)), None)
    if dates_at is None:
        raise BadInputError(file, None, "no header line with the reference dates (';;;;;31.12.2019;…') found: "
                                        "not a GENESIS projection table by Stichtag")
    units = [u for line in lines[:dates_at] for u in _UNITS if u in line]
    if len(set(units)) != 1:
        raise BadInputError(file, None, "the title lines must state the unit once, '(1000)' or '(Anzahl)', "
                                        f"found {sorted(set(units)) or 'none'}")
    cells = lines[dates_at].rstrip("\r").split(";")
    if cells[: len(_KEYS)] != [""] * len(_KEYS) or not all(_DATE.match(c) for c in cells[len(_KEYS):]):
        raise BadInputError(file, dates_at + 1, f"expected {len(_KEYS)} empty key cells, then dates DD.MM.YYYY")
    dates = [datetime.strptime(c, "%d.%m.%Y").date() for c in cells[len(_KEYS):]]
    return _UNITS[units[0]], dates_at + 1, dates


def _persons(cell: str, unit: int, file: str, row: int, day: date) -> tuple[int | None, str | None]:
    text = cell.strip()
    if text in SPECIAL_VALUES:
        return None, text
    if not _NUMBER.match(text):
        raise BadInputError(file, row, f"value {text!r} for {day:%d.%m.%Y} is neither a number nor a special value "
                                       f"({' '.join(SPECIAL_VALUES)})")
    return round(float(text.replace(",", ".")) * unit), None


def _check_blocks(frame: pl.DataFrame, unit: int, file: str) -> None:
    """Every Land × variant × sex block has a total row and single ages tiling 0 … open end, and its ages add up to
    the total within rounding: a block cut off by a truncated download does not pass."""
    blocks = ["area_code", "variant_code", "sex"]
    for key, block in frame.sort("source_row").group_by(blocks, maintain_order=True):
        first_row = block["source_row"].min()
        where = f"{key[0]}, {key[1]}, {key[2]}"
        ages = block.filter(~pl.col("is_total")).select("age_from", "age_to", "source_row").unique(["age_from", "age_to"])
        expected = 0
        for lo, hi, row in ages.sort("age_from").iter_rows():
            if lo != expected:
                raise BadInputError(file, row, f"{where}: ages must run from 0 without gap or overlap; age {expected} "
                                               f"is expected, found {lo}")
            expected = OPEN_END if hi is None else hi
        if expected != OPEN_END:
            raise BadInputError(file, first_row, f"{where}: the open oldest age group (… Jahre und mehr) is missing")
        totals = block.filter(pl.col("is_total"))
        if totals.is_empty():
            raise BadInputError(file, first_row, f"{where}: the 'Insgesamt' row is missing")
        n_ages = ages.height
        sums = block.filter(~pl.col("is_total")).group_by("reference_date").agg(
            summed=pl.col("value").sum(), flagged=pl.col("flag").is_not_null().any()
        )
        tolerance = unit // 2 * (n_ages + 1)  # each published cell, the total included, is rounded to the unit
        off = (
            totals.join(sums, on="reference_date")
            .filter(~pl.col("flagged") & pl.col("value").is_not_null() & ((pl.col("summed") - pl.col("value")).abs() > tolerance))
            .sort("reference_date")
        )
        if off.height:
            bad = off.row(0, named=True)
            raise BadInputError(file, bad["source_row"], f"{where}: the {n_ages} ages add up to {bad['summed']} persons on "
                                                         f"{bad['reference_date']:%d.%m.%Y}, the total is {bad['value']} "
                                                         f"(more than the rounding of ±{tolerance} apart)")


def parse_genesis_projection(data: bytes, file: str) -> pl.DataFrame:
    """Bytes of a GENESIS projection table by Land, variant, sex and age (12421-0004 layout) → the long frame
    LAND_PROJECTION_SCHEMA, one row per Land, variant, sex, age and Stichtag, values in persons."""
    text, _encoding = decode_utf8_or_latin1(data, file)
    lines = text.split("\n")
    unit, first_data, dates = _header(lines, file)
    n_fields = len(_KEYS) + len(dates)
    records = []
    seen: dict[tuple, int] = {}
    for i in range(first_data, len(lines)):
        line = lines[i].rstrip("\r")
        row = i + 1
        if line.startswith(_FOOTER_START):
            break
        if not line.strip():
            continue
        cells = line.split(";")
        if len(cells) != n_fields:
            raise BadInputError(file, row, f"expected {n_fields} fields separated by ';', found {len(cells)}")
        land, variant_code, variant_label, sex_label, age_label = (c.strip() for c in cells[: len(_KEYS)])
        if land not in LAND_CODES:
            raise BadInputError(file, row, f"unknown Land {land!r}; known: {', '.join(LAND_CODES)}")
        if sex_label.lower() not in SEX_CODES:
            raise BadInputError(file, row, f"unknown sex {sex_label!r}; known: Insgesamt, männlich, weiblich")
        try:
            age_from, age_to, is_total = _age(age_label)
        except ValueError:
            raise BadInputError(file, row, f"unknown age label {age_label!r} (expected 'unter 1 Jahr', 'N-Jährige', "
                                           "'N Jahre und mehr' or 'Insgesamt')") from None
        key = (land, variant_code, sex_label, age_label)
        if key in seen:
            raise BadInputError(file, row, f"{land}, {variant_code}, {sex_label}, {age_label} appears twice "
                                           f"(first in row {seen[key]})")
        seen[key] = row
        label_code = _VARIANT_IN_LABEL.search(variant_label)
        for day, cell in zip(dates, cells[len(_KEYS):]):
            value, flag = _persons(cell, unit, file, row, day)
            records.append((LAND_CODES[land], land, variant_code, label_code.group(1) if label_code else variant_code,
                            variant_label, SEX_CODES[sex_label.lower()], age_label, age_from, age_to, is_total, day,
                            value, flag, file, row))
    if not records:
        raise BadInputError(file, first_data, "no data rows after the header")
    frame = pl.DataFrame(records, schema=LAND_PROJECTION_SCHEMA, orient="row")
    _check_blocks(frame, unit, file)
    return frame


def _observed_groups(observed: pl.DataFrame, base_date: date) -> pl.DataFrame:
    """The observed age groups (both sexes) at the base date, one table per area."""
    rows = observed.filter(
        (pl.col("reference_date") == base_date) & (pl.col("sex") == "total") & ~pl.col("is_total")
    )
    tables = rows.group_by("area_code").agg(pl.col("table_code").unique().sort()).filter(pl.col("table_code").list.len() > 1)
    if tables.height:
        area, codes = tables.sort("area_code").row(0)
        raise BadInputError(_file_of(observed), None, f"area {area} has the age groups of more than one table on "
                                                      f"{base_date} ({', '.join(codes)}): the ratio method needs one")
    return rows.select("area_code", "age_from", "age_to", "value", "flag")


def _file_of(frame: pl.DataFrame) -> str:
    files = frame["source_file"].drop_nulls().unique().sort().to_list() if "source_file" in frame.columns else []
    return ", ".join(files) or "observed population"


def _land_base(groups: pl.DataFrame, land: str) -> pl.DataFrame:
    """land_observed(g, base): the Land's own row, else the sum of its Kreise. '-' is exactly nothing (an area
    that no longer exists); any other special value leaves the Land's group unknown."""
    own = groups.filter(pl.col("area_code") == land)
    parts = own if own.height else groups.filter(pl.col("area_code").str.starts_with(land) & (pl.col("area_code").str.len_chars() == 5))
    unknown = (pl.col("flag").is_not_null() & (pl.col("flag") != "-")).any()
    return parts.group_by("age_from", "age_to").agg(
        land_base=pl.when(unknown).then(pl.lit(None, dtype=pl.Int64)).otherwise(pl.col("value").sum()),
        kreise=pl.len(),
    )


def _land_groups(land_rows: pl.DataFrame, groups: pl.DataFrame, file: str) -> pl.DataFrame:
    """The projection's single years summed to the observed groups; a group the ages cannot form is refused."""
    group_frame = groups.select("age_from", "age_to").unique().select(
        group_from="age_from", group_to="age_to", group_end=pl.col("age_to").fill_null(OPEN_END)
    )
    ages = land_rows.with_columns(age_end=pl.col("age_to").fill_null(OPEN_END))
    inside = (pl.col("age_from") >= pl.col("group_from")) & (pl.col("age_end") <= pl.col("group_end"))
    touching = ages.join(group_frame, how="cross").filter(
        (pl.col("age_from") < pl.col("group_end")) & (pl.col("age_end") > pl.col("group_from"))
    )
    straddling = touching.filter(~inside).sort("age_from", "group_from")
    if straddling.height:
        bad = straddling.row(0, named=True)
        raise BadInputError(file, bad["source_row"], f"projected age group {bad['age_label']!r} straddles the observed "
                                                     f"age group starting at {bad['group_from']}: the groups cannot be formed")
    return touching.group_by("variant", "reference_date", "group_from", "group_to").agg(
        land_projected=pl.when(pl.col("value").is_null().any()).then(pl.lit(None, dtype=pl.Int64)).otherwise(pl.col("value").sum())
    ).rename({"group_from": "age_from", "group_to": "age_to"})


def project_areas(observed_population: pl.DataFrame, land_projection: pl.DataFrame, base_date: date,
                  variants: Mapping[str, str]) -> pl.DataFrame:
    """Projected population per area of every Land in the projection, year, variant and observed age group.

    observed_population: the POPULATION frame (staging.population); its age groups at base_date (both sexes) are
    projected. land_projection: parse_genesis_projection(...); its rows after base_date, both sexes. variants:
    the projection's variant code → "low" | "medium" | "high", e.g. {"G2L2W1": "low", "G2L2W2": "medium",
    "G2L2W3": "high"}. Returns PROJECTION_COLUMNS + method (AREA_PROJECTION_SCHEMA); year = the Stichtag's year; the
    base year's rows are the observed values. A flagged observed or projected cell gives a null value.
    """
    file = _file_of(land_projection)
    wrong = sorted(set(variants.values()) - set(VARIANTS))
    if wrong:
        raise BadInputError(file, None, f"variant name(s) {', '.join(wrong)} are not one of {', '.join(VARIANTS)}")
    missing = sorted(set(variants) - set(land_projection["variant"].unique().to_list()))
    if missing:
        found = ", ".join(sorted(land_projection["variant"].unique().to_list()))
        raise BadInputError(file, None, f"variant(s) {', '.join(missing)} are not in the projection (found: {found})")
    land_rows = land_projection.filter(
        (pl.col("sex") == "total") & ~pl.col("is_total") & pl.col("variant").is_in(list(variants))
        & (pl.col("reference_date") > base_date)
    ).with_columns(pl.col("variant").replace_strict(dict(variants), return_dtype=pl.String))
    if land_rows.is_empty():
        raise BadInputError(file, None, f"no projected values for both sexes after the base date {base_date}")
    groups = _observed_groups(observed_population, base_date)

    frames = []
    for land in sorted(land_rows["area_code"].unique().to_list()):
        in_land = groups.filter(pl.col("area_code").str.starts_with(land))
        if in_land.is_empty():
            raise LandNotCoveredError(_file_of(observed_population), None, f"no observed population of Land {land} on "
                                                                     f"{base_date}: the projection has nothing to apply to")
        projected = _land_groups(land_rows.filter(pl.col("area_code") == land), in_land, file)
        base = _land_base(in_land, land)
        _check_land_base(base, projected, land, base_date, _file_of(observed_population))
        ratios = projected.join(base, on=["age_from", "age_to"], how="inner", nulls_equal=True).with_columns(
            ratio=pl.col("land_projected") / pl.when(pl.col("land_base") > 0).then(pl.col("land_base"))
        )
        years = in_land.join(ratios, on=["age_from", "age_to"], how="inner", nulls_equal=True).select(
            "area_code", "variant", "age_from", "age_to",
            year=pl.col("reference_date").dt.year(),
            value=(pl.col("value") * pl.col("ratio")).round(0),
        )
        at_base = in_land.join(pl.DataFrame({"variant": sorted(set(variants.values()))}), how="cross").select(
            "area_code", "variant", "age_from", "age_to", year=pl.lit(base_date.year), value="value"
        )
        frames += [years, at_base]
    result = pl.concat([f.select([pl.col(c).cast(AREA_PROJECTION_SCHEMA[c]) for c in PROJECTION_COLUMNS]) for f in frames])
    return result.with_columns(method=pl.lit(METHOD)).sort("area_code", "year", "variant", "age_from")


def _check_land_base(base: pl.DataFrame, projected: pl.DataFrame, land: str, base_date: date, file: str) -> None:
    """The Land total at the base date and one year later differ by a few per cent at most; a larger gap means the
    observed table holds only part of the Land's Kreise, and every projected value would be wrong by that factor.
    Groups whose Land base is unknown (a secret cell) are left out of both sides."""
    first = projected["reference_date"].min()
    known = projected.filter(pl.col("reference_date") == first).join(
        base.filter(pl.col("land_base").is_not_null()), on=["age_from", "age_to"], how="inner", nulls_equal=True
    )
    observed_total = known.group_by("variant").agg(pl.col("land_base").sum())["land_base"].max() or 0
    next_total = known.group_by("variant").agg(pl.col("land_projected").sum())["land_projected"].max() or 0
    if not observed_total or abs(next_total / observed_total - 1) > 0.05:
        raise LandNotCoveredError(file, None, f"the observed population of Land {land} on {base_date} sums to "
                                              f"{observed_total:,} persons ({base['kreise'].max()} areas), the "
                                              f"projection has {next_total:,} on {first}: load all Kreise of the "
                                              "Land, or its Land row, as the base of the ratio method")
