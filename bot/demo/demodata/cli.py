"""``python -m bot.demo.demodata [--tps N] OUT``: generate a province and write it as one workbook or a directory of CSVs."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import date, timedelta, timezone

from bot.demo.demodata.figures import BASE_DATE
from bot.demo.demodata.model import generate
from bot.demo.province import write_csv, write_xlsx

DESCRIPTION = "Generator of realistic synthetic provinces in Siaga's import format."


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bot.demo.demodata [--tps N] OUT``: OUT.xlsx or a CSV directory."""
    parser = argparse.ArgumentParser(prog="python -m bot.demo.demodata", description=DESCRIPTION)
    parser.add_argument("out", help="an .xlsx workbook, or a directory for CSV files")
    parser.add_argument("--tps", type=int, default=100, help="number of TPS (Sumsel: 25985)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--regions", type=int, default=None, help="number of regions to use")
    parser.add_argument("--base-date", type=date.fromisoformat, default=BASE_DATE, help="voting day, YYYY-MM-DD")
    parser.add_argument("--utc-offset", type=float, default=7.0, help="hours, e.g. 7 (WIB), 8 (WITA), 9 (WIT)")
    parser.add_argument("--linmas-per-tps", type=int, default=2)
    parser.add_argument(
        "--full-pattern",
        action="store_true",
        help="one team per staffing-pattern group instead of the reported headcount",
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    province = generate(
        args.tps,
        args.seed,
        args.regions,
        args.base_date,
        timezone(timedelta(hours=args.utc_offset)),
        args.linmas_per_tps,
        full_pattern=args.full_pattern,
    )
    generated = time.perf_counter()
    if args.out.lower().endswith(".xlsx"):
        write_xlsx(province, args.out)
    else:
        write_csv(province, args.out)
    written = time.perf_counter()
    for name, n in province.counts().items():
        print(f"{name}\t{n}")
    print(f"generated in {generated - started:.1f} s, written in {written - generated:.1f} s -> {args.out}")
    return 0
