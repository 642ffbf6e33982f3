"""SYNTHETIC benchmark inputs, seeded: check-in log deliveries and GENESIS population tables for all Gemeinden.

Check-ins come from the usage-log generator (transforms/synthetic_usage.py) for the facilities of the registry,
with its demand scaled until the period holds the requested number of rows, written as CSV deliveries of
`rows_per_file` rows each (the last one shorter), the way facilities would drop monthly exports.

Statistics imitate GENESIS 12411-02-03-5 (population by sex and 17 age groups, Stichtag 31.12.) in the classic
semicolon CSV, one file per year as the service delivers one Stichtag per table: the title, header and footer
lines are those of the bundled Kreis table, the ~10,800 areas are invented 8-digit Gemeinde codes below the real
Kreise, and the numbers are random. Nothing here is official data; the title line says SYNTHETISCH.

For a given seed and size the files are identical on every run.
"""

from __future__ import annotations

import argparse
import re
from datetime import date
from pathlib import Path

import numpy as np

from transforms.facility_registry import FacilityRegistry, load_facility_registry
from transforms.synthetic_usage import RAW_CHECKIN_COLUMNS, iter_checkin_chunks

ROOT = Path(__file__).resolve().parents[1]
GENESIS_TEMPLATE = ROOT / "data" / "sample" / "statistics" / "12411-02-03-5-B_2018_kreise.csv"
DEFAULT_DATA = ROOT / "var" / "bench"

SIZES = {"10k": 10_000, "100k": 100_000, "1M": 1_000_000, "10M": 10_000_000, "100M": 100_000_000}
CHECKIN_PERIOD = (date(2024, 1, 1), date(2024, 12, 31))
# Poisson draws scatter around the expected volume; asking for a little more and cutting guarantees the size.
VOLUME_MARGIN = 1.03

GEMEINDEN = 10_800
YEARS = tuple(range(1995, 2025))  # 30 Stichtage
AGE_GROUPS = 17
# share of each of the 17 age groups (0-3 … 75+), Germany roughly; sexes split about evenly
AGE_SHARES = np.array([0.028, 0.028, 0.037, 0.046, 0.028, 0.020, 0.055, 0.062, 0.065, 0.062, 0.060, 0.070,
                       0.085, 0.078, 0.066, 0.100, 0.110])


ROWS_PER_FILE = 1_000_000  # check-ins per delivered file unless asked otherwise


def size_label(rows: int) -> str:
    return next((name for name, n in SIZES.items() if n == rows), str(rows))


def inputs_label(rows: int, rows_per_file: int = ROWS_PER_FILE) -> str:
    """The name of a size's inputs (var/bench/<label>/) and results: 10M, or 10M-files-of-10M for one big file."""
    label = size_label(rows)
    return label if rows_per_file == ROWS_PER_FILE else f"{label}-files-of-{size_label(rows_per_file)}"


def parse_size(text: str) -> int:
    if text in SIZES:
        return SIZES[text]
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r}: one of {', '.join(SIZES)} or a number of rows") from None


def write_checkin_deliveries(out: Path, rows: int, seed: int = 2024, rows_per_file: int = ROWS_PER_FILE,
                             registry: FacilityRegistry | None = None,
                             period: tuple[date, date] = CHECKIN_PERIOD) -> list[Path]:
    """Exactly `rows` raw check-in rows of the registry's facilities in the days of `period` (first, last), in CSV
    files of about `rows_per_file` rows."""
    registry = registry or load_facility_registry()
    start, end = period
    at_volume_one = sum(c.height for c in iter_checkin_chunks(registry, start, end, seed, 10**12))
    volume = rows / at_volume_one * VOLUME_MARGIN
    out.mkdir(parents=True, exist_ok=True)
    written, remaining = [], rows
    # generated a million rows at a time (a 100M-row file at once did not fit in memory), chunks_per_file of them
    # appended into one file: the same rows in one file as in files of a million
    chunk_rows = min(rows_per_file, ROWS_PER_FILE)
    chunks_per_file = max(1, rows_per_file // chunk_rows)
    for number, chunk in enumerate(iter_checkin_chunks(registry, start, end, seed, chunk_rows, volume=volume)):
        chunk = chunk.head(remaining).select(RAW_CHECKIN_COLUMNS)
        if number % chunks_per_file == 0:
            written.append(out / f"checkins_{len(written) + 1:04d}.csv")
            chunk.write_csv(written[-1])
        else:
            with written[-1].open("ab") as file:
                chunk.write_csv(file, include_header=False)
        remaining -= chunk.height
        if remaining == 0:
            return written
    raise RuntimeError(f"the generator produced {rows - remaining} rows, {rows} were asked for: raise VOLUME_MARGIN")


def _template() -> tuple[list[str], list[str], str]:
    """Title lines, header lines and footer of the bundled export, and its Kreis codes (kept as Latin-1 text)."""
    lines = GENESIS_TEMPLATE.read_bytes().decode("latin-1").split("\n")
    first_header = next(i for i, line in enumerate(lines) if line.startswith(";"))
    header_end = next(i for i in range(first_header, len(lines)) if not lines[i].startswith(";"))
    footer = next(i for i in range(header_end, len(lines)) if lines[i].startswith("__________"))
    kreise = sorted({line.split(";")[0] for line in lines[header_end:footer] if re.fullmatch(r"\d{5}", line.split(";")[0])})
    return lines[:header_end], kreise, "\n".join(lines[footer:])


def _gemeinde_codes(kreise: list[str], n: int) -> list[str]:
    per_kreis = -(-n // len(kreise))
    return [f"{k}{g:03d}" for k in kreise for g in range(1, per_kreis + 1)][:n]


def _cells(counts: np.ndarray) -> np.ndarray:
    """Counts → cell text; a zero is published as '-' (genau null), as the offices do."""
    text = counts.astype(str)
    return np.where(counts == 0, "-", text)


def write_genesis_years(out: Path, gemeinden: int = GEMEINDEN, years: tuple[int, ...] = YEARS, seed: int = 2024) -> list[Path]:
    """One classic GENESIS CSV per year: Gemeinden × (total, male, female) × (17 age groups + Insgesamt)."""
    head, kreise, footer = _template()
    codes = _gemeinde_codes(kreise, gemeinden)
    rng = np.random.default_rng([seed, 12411])
    size = np.exp(rng.normal(8.0, 1.3, gemeinden)).clip(50, 2_000_000)  # skewed: many villages, few cities
    trend = rng.normal(0.0, 0.006, gemeinden)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for step, year in enumerate(years):
        expected = (size * (1 + trend) ** step)[:, None, None] * AGE_SHARES[None, None, :] * np.array([0.49, 0.51])[None, :, None]
        by_sex = rng.poisson(expected)  # Gemeinde × (male, female) × age group
        total = by_sex.sum(axis=1)
        blocks = [np.concatenate([b, b.sum(axis=1, keepdims=True)], axis=1) for b in (total, by_sex[:, 0], by_sex[:, 1])]
        values = _cells(np.concatenate(blocks, axis=1))
        title = [re.sub(r"31\.12\.\d{4}", f"31.12.{year}", line) for line in head]
        title[1] = title[1].replace("(17) -", "(17) - SYNTHETISCHE BENCHMARK-DATEN -", 1)
        rows = [f"{code};Gemeinde {code} (synthetisch);" + ";".join(cells) for code, cells in zip(codes, values)]
        path = out / f"12411-02-03-5_{year}_gemeinden_SYNTHETIC.csv"
        path.write_bytes(("\n".join(title + rows) + "\n" + footer).encode("latin-1"))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write SYNTHETIC benchmark inputs (check-in deliveries, GENESIS years).")
    parser.add_argument("--size", type=parse_size, default=SIZES["1M"], help=f"check-in rows: {', '.join(SIZES)} or a number")
    parser.add_argument("--out", type=Path, default=None, help="folder (default var/bench/<size>)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--rows-per-file", type=parse_size, default=ROWS_PER_FILE)
    parser.add_argument("--statistics", action="store_true", help="also write the 30 GENESIS Gemeinde tables")
    args = parser.parse_args(argv)
    out = args.out or DEFAULT_DATA / inputs_label(args.size, args.rows_per_file)
    for path in write_checkin_deliveries(out / "checkins", args.size, args.seed, args.rows_per_file):
        print(path)
    if args.statistics:
        for path in write_genesis_years(out / "statistics", seed=args.seed):
            print(path)


if __name__ == "__main__":
    main()
