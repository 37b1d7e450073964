"""Siaga's import format in Python: one row type per entity sheet, a province of them, the writers.

The field names of each row type are the header row of its sheet, so the
column order of DESIGN.md's format has a single source of truth. The
generator (`bot.demo.demodata`) fills these rows; tests and benchmarks write them
out and import them through the real importer.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

# --------------------------------------------------------------------------
# Rows, in the column order of the import format (the field names are the
# header row, so there is a single source of truth for both).


class Unit(NamedTuple):
    """A row of the ``units`` sheet."""

    code: str
    name: str
    kind: str  # polda, polres, polsek, korem, kodim, koramil
    force: str  # polri, tni
    parent_code: str
    region: str


class Person(NamedTuple):
    """A row of the ``personnel`` sheet."""

    nrp: str
    name: str
    rank: str
    force: str  # polri, tni, linmas
    unit_code: str  # the unit commanding the person for the operation
    role: str  # anggota, komandan, admin
    phone: str
    home_unit: str  # organic unit of personnel on BKO, else empty


class Tps(NamedTuple):
    """A row of the ``tps`` sheet."""

    code: str
    number: int
    village: str
    district: str
    regency: str
    lat: float
    lon: float
    vulnerability: str  # kurang_rawan, rawan, sangat_rawan
    access: str  # darat, air, darat_air
    unit_code: str  # the Polsek
    secondary_unit_codes: str  # ';'-separated


class Shift(NamedTuple):
    """A row of the ``shifts`` sheet; times are ISO 8601 with an offset."""

    code: str
    name: str
    phase: str  # logistik, pemungutan, penghitungan, pengawalan
    starts_at: str
    ends_at: str


class Assignment(NamedTuple):
    """A row of the ``assignments`` sheet."""

    nrp: str
    tps_code: str
    shift_code: str


class Place(NamedTuple):
    """A row of the ``places`` sheet."""

    code: str
    name: str
    kind: str  # gudang, ppk, pps, dermaga, lainnya
    lat: float
    lon: float
    unit_code: str  # the unit guarding it, whose people receive there


class Escort(NamedTuple):
    """A row of the ``escorts`` sheet; endpoints and vias name places or TPS."""

    code: str
    kind: str  # logistik, kotak_suara
    cargo: str
    from_code: str
    to_code: str
    via_codes: str  # ';'-separated, in travel order
    unit_code: str
    depart_at: str  # ISO 8601 with an offset
    arrive_by: str
    access: str  # darat, air, darat_air


class EscortMember(NamedTuple):
    """A row of the ``escort_members`` sheet."""

    escort_code: str
    nrp: str
    role: str  # ketua, anggota


ROW_TYPES: dict[str, type[tuple]] = {
    "units": Unit,
    "personnel": Person,
    "tps": Tps,
    "shifts": Shift,
    "assignments": Assignment,
    "places": Place,
    "escorts": Escort,
    "escort_members": EscortMember,
}
HEADERS: dict[str, tuple[str, ...]] = {
    name: cls._fields  # type: ignore[attr-defined]
    for name, cls in ROW_TYPES.items()
}


@dataclass
class Province:
    """A generated province: one list of rows per entity, in sheet order."""

    units: list[Unit] = field(default_factory=list)
    personnel: list[Person] = field(default_factory=list)
    tps: list[Tps] = field(default_factory=list)
    shifts: list[Shift] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)
    places: list[Place] = field(default_factory=list)
    escorts: list[Escort] = field(default_factory=list)
    escort_members: list[EscortMember] = field(default_factory=list)

    def sheets(self) -> dict[str, list[tuple]]:
        """Rows per entity name, in the order the importer expects them."""
        return {name: getattr(self, name) for name in ROW_TYPES}

    def counts(self) -> dict[str, int]:
        """Row count per entity (without header rows)."""
        return {name: len(rows) for name, rows in self.sheets().items()}


def write_xlsx(province: Province, path: str | Path) -> None:
    """One sheet per entity, header row first (write-only mode: streams rows
    instead of building a cell tree, which is what makes 400k rows feasible)."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    for name, rows in province.sheets().items():
        ws = wb.create_sheet(name)
        ws.append(HEADERS[name])
        for row in rows:
            ws.append(row)
    wb.save(path)


def write_csv(province: Province, directory: str | Path) -> list[Path]:
    """``units.csv``, ``personnel.csv``, ... in ``directory`` (created if missing)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rows in province.sheets().items():
        path = out / f"{name}.csv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(HEADERS[name])
            writer.writerows(rows)
        paths.append(path)
    return paths
