"""`fetch-table`: fetch one GENESIS table for given regions from the live service and land it.

    demand-monitor fetch-table 12411-02-03-5 --region 05954 --years 2020-2023

Credentials come from GENESIS_TOKEN, or GENESIS_USERNAME and GENESIS_PASSWORD (per service: GENESIS_<SERVICE>_…),
or the service's Prefect Secret block. The answer lands unchanged with its sidecar below --out (see fetch.py), and
the path of the table file is printed; `demand-monitor run` ingests declared sources, not ad-hoc fetches.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from sources.genesis.client import GenesisError
from sources.genesis.config import INGEST_FORMATS, StatisticsConfigError, load_statistics_config
from sources.genesis.fetch import client_for, land_response, regional_selection


def _years(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d{4})(?:-(\d{4}))?", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r}: use a year (2023) or a range (2020-2023)")
    first, last = int(m.group(1)), int(m.group(2) or m.group(1))
    if last < first:
        raise argparse.ArgumentTypeError(f"{text!r}: the range ends before it starts")
    return first, last


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="demand-monitor fetch-table", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", help="table code, e.g. 12411-02-03-5")
    parser.add_argument("--region", action="append", required=True,
                        help="AGS of an area (repeat or comma-separate); a Kreis in a Gemeinde table means all its Gemeinden")
    parser.add_argument("--level", help="regional variable (GEMEIN, KREISE, REGBEZ, DLAND); default: the table's depth")
    parser.add_argument("--service", default="regionalstatistik", help="a service declared in the config (default: %(default)s)")
    parser.add_argument("--years", type=_years, help="a year or range, e.g. 2020-2023 (default: all the table has)")
    parser.add_argument("--format", choices=sorted(INGEST_FORMATS), default="ffcsv", dest="fmt")
    parser.add_argument("--out", type=Path, default=Path("var/landing"), help="landing root (default: %(default)s)")
    parser.add_argument("--config", type=Path, default=Path("config/statistics_sources.toml"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_statistics_config(args.config)
    except (OSError, StatisticsConfigError) as err:
        print(f"fetch-table: {err}", file=sys.stderr)
        return 2
    if args.service not in config.services:
        print(f"fetch-table: unknown service {args.service!r}; declared: {', '.join(config.services)}", file=sys.stderr)
        return 2
    codes = [c.strip() for value in args.region for c in value.split(",") if c.strip()]
    variable, keys = regional_selection(args.table, codes, args.level)
    first, last = args.years or (None, None)
    try:
        with client_for(config.services[args.service]) as client:
            if not client.has_credentials:
                print(f"fetch-table: no credentials for {args.service}: set GENESIS_TOKEN, or GENESIS_USERNAME and "
                      "GENESIS_PASSWORD", file=sys.stderr)
                return 2
            response = client.table(args.table, fmt=args.fmt, regional_variable=variable, regional_keys=keys,
                                    start_year=first, end_year=last)
    except GenesisError as err:
        print(f"fetch-table: {err}", file=sys.stderr)
        return 1
    landed = land_response(response, f"adhoc_{args.service}", args.table, INGEST_FORMATS[args.fmt], args.out)
    print(f"table file: {landed.table_path}")
    print(f"answer:     {landed.body_path}")
    print(f"sidecar:    {landed.sidecar_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
