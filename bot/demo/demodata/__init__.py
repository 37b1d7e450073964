"""Generator of realistic synthetic provinces in Siaga's import format.

Tests, ``siaga demo`` and the benchmarks all need a province that looks like
the real thing (a Polda -> Polres -> Polsek tree, TNI on BKO, Linmas at every
TPS, vulnerable, water-access and border TPS, the two-day shift plan) without
shipping any real roster. Everything here is derived from a seeded
``random.Random`` so the same arguments always give the same rows, and the
output uses exactly the entity sheets / CSV files of DESIGN.md's import format
so the generated province goes through the same importer as real data.

Figures come from the 2024 Sumsel operation (``/work/shared/context``):
25,985 TPS, about 3,000 police and 510 TNI on BKO, two Linmas per TPS, and a
staffing pattern per kerawanan level. The regions come from
``bot/demo/demodata/sumsel-regions.csv``; another province only needs another CSV.

The package: `figures` (what a province is drawn from: Sumsel's figures,
staffing pattern, shifts, names, regions), `model` (the generation, the
rows of `bot.demo.province`) and `cli` (writing one out). Callers import from
here.

Usage::

    python -m bot.demo.demodata --tps 25985 sumsel.xlsx    # one workbook
    python -m bot.demo.demodata --tps 100 demo-csv/        # a directory of CSVs
"""

from bot.demo.demodata.cli import main
from bot.demo.demodata.figures import (
    BASE_DATE,
    PATTERN,
    SHIFT_PLAN,
    SUMSEL_POLICE,
    SUMSEL_TNI,
    SUMSEL_TPS,
    WATER_REGIONS,
    WIB,
    Region,
    Staffing,
    load_regions,
    short_code,
)
from bot.demo.demodata.model import default_region_count, generate, make_shifts
from bot.demo.province import (  # the rows the generator fills, re-exported for its callers
    HEADERS,
    ROW_TYPES,
    Assignment,
    Escort,
    EscortMember,
    Person,
    Place,
    Province,
    Shift,
    Tps,
    Unit,
    write_csv,
    write_xlsx,
)

__all__ = [
    "BASE_DATE",
    "HEADERS",
    "PATTERN",
    "ROW_TYPES",
    "SHIFT_PLAN",
    "SUMSEL_POLICE",
    "SUMSEL_TNI",
    "SUMSEL_TPS",
    "WATER_REGIONS",
    "WIB",
    "Assignment",
    "Escort",
    "EscortMember",
    "Person",
    "Place",
    "Province",
    "Region",
    "Shift",
    "Staffing",
    "Tps",
    "Unit",
    "default_region_count",
    "generate",
    "load_regions",
    "main",
    "make_shifts",
    "short_code",
    "write_csv",
    "write_xlsx",
]
