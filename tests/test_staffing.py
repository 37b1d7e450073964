"""`siaga check`: a hand-built province where the under-staffed TPS are known in advance.

Default pattern: sangat rawan 2 police + 2 Linmas per TPS; rawan 2 + 4 per
2 TPS (1 + 2 each); kurang rawan 2 + 10 per 5 TPS (0.4 + 2 each). Shift S1
is voting (Linmas needed), S2 escorting ballot boxes (police only).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import StaffingPattern, StaffingSettings
from bot.services.roster import import_files
from bot.services.staffing import format_report, understaffed_report
from tests.test_import import write_csv

UNITS = [
    ["POLDA-X", "Polda X", "polda", "polri", None, ""],
    ["POLRES-A", "Polres A", "polres", "polri", "POLDA-X", ""],
    ["POLSEK-A1", "Polsek A1", "polsek", "polri", "POLRES-A", ""],
    ["POLSEK-A2", "Polsek A2", "polsek", "polri", "POLRES-A", ""],
    ["POLRES-B", "Polres B", "polres", "polri", "POLDA-X", ""],
    ["POLSEK-B1", "Polsek B1", "polsek", "polri", "POLRES-B", ""],
]
TPS = {  # code: (kerawanan, unit)
    "SR1": ("sangat_rawan", "POLSEK-A1"),
    "SR2": ("sangat_rawan", "POLSEK-A1"),
    "R1": ("rawan", "POLSEK-A1"),
    "R2": ("rawan", "POLSEK-A1"),
    **{f"KR{i}": ("kurang_rawan", "POLSEK-A2") for i in range(1, 6)},
    "KR6": ("kurang_rawan", "POLSEK-B1"),
    "KR7": ("kurang_rawan", "POLSEK-B1"),
}
PEOPLE = {  # nrp: (force, unit)
    **{f"P{i}": ("polri", "POLSEK-A1") for i in range(1, 6)},
    "B1": ("polri", "POLSEK-A2"),
    "B2": ("polri", "POLSEK-A2"),
    "T1": ("tni", "POLSEK-B1"),
    **{f"L{i}": ("linmas", "POLSEK-A1") for i in range(1, 8)},
    **{f"LA{i}": ("linmas", "POLSEK-A2") for i in range(1, 11)},
}
S1 = {
    "SR1": ["P1", "P2", "L1", "L2"],  # complete
    "SR2": ["P3", "L3", "L4"],  # one police short
    "R1": ["P4", "P5", "L5", "L6"],  # P4 and P5 share R1 and R2: 1/2 + 1/2 police each, enough
    "R2": ["P4", "P5", "L7"],  # one Linmas short
    **{f"KR{i}": ["B1", "B2", f"LA{2 * i - 1}", f"LA{2 * i}"] for i in range(1, 6)},  # 2 police for 5 TPS: 0.4
    "KR6": ["T1"],  # TNI count as police; no Linmas
    "KR7": [],  # nobody
}
S2 = {"SR1": ["P1", "P2"]}  # escort shift: police only, and only at SR1


async def province(session: AsyncSession, tmp_path: Path) -> None:
    rows = {
        "units": UNITS,
        "personnel": [
            [nrp, f"Nama {nrp}", "", force, unit, "anggota", "", None] for nrp, (force, unit) in PEOPLE.items()
        ],
        "tps": [
            [code, "1", "", "", "", -3.0, 104.0 + i / 100, level, "darat", unit, None]
            for i, (code, (level, unit)) in enumerate(TPS.items())
        ],
        "shifts": [
            ["S1", "Pemungutan", "pemungutan", "2024-02-14T07:00:00+07:00", "2024-02-14T13:00:00+07:00"],
            ["S2", "Pengawalan", "pengawalan", "2024-02-15T06:00:00+07:00", "2024-02-15T18:00:00+07:00"],
        ],
        "assignments": [
            [nrp, tps, shift] for shift, plan in (("S1", S1), ("S2", S2)) for tps, nrps in plan.items() for nrp in nrps
        ],
    }
    report = await import_files(session, paths=write_csv(tmp_path / "csv", rows))
    assert report.ok, report.format()


async def test_report_names_exactly_the_understaffed_tps(session: AsyncSession, tmp_path: Path) -> None:
    await province(session, tmp_path)
    report = await understaffed_report(session, staffing=StaffingSettings())
    assert report.problem is None
    under = {(t.shift_code, t.tps_code) for t in report.understaffed}
    assert under == {("S1", "SR2"), ("S1", "R2"), ("S1", "KR6"), ("S1", "KR7")} | {
        ("S2", code) for code in TPS if code != "SR1"
    }
    sr2 = next(t for t in report.understaffed if (t.shift_code, t.tps_code) == ("S1", "SR2"))
    assert (sr2.police, sr2.police_needed, sr2.linmas, sr2.linmas_needed) == (1.0, 2.0, 2.0, 2.0)
    kr6 = next(t for t in report.understaffed if (t.shift_code, t.tps_code) == ("S1", "KR6"))
    assert kr6.police == 1.0 and kr6.linmas == 0.0 and abs(kr6.police_needed - 0.4) < 1e-12

    summary = {(s.shift_code, s.unit_code): s for s in report.summaries}
    a1, b1 = summary["S1", "POLRES-A"], summary["S1", "POLRES-B"]
    assert a1.tps == 9 and a1.understaffed == {"kurang_rawan": 0, "rawan": 1, "sangat_rawan": 1}
    assert (a1.police_assigned, a1.linmas_assigned, a1.police_missing, a1.linmas_missing) == (7, 17, 1, 1)
    assert b1.tps == 2 and b1.understaffed == {"kurang_rawan": 2, "rawan": 0, "sangat_rawan": 0}
    assert (b1.police_assigned, b1.linmas_assigned, b1.police_missing, b1.linmas_missing) == (1, 0, 1, 4)
    a2 = summary["S2", "POLRES-A"]
    assert a2.understaffed == {"kurang_rawan": 5, "rawan": 2, "sangat_rawan": 1}
    assert (a2.police_assigned, a2.police_missing, a2.linmas_missing) == (2, 6, 0)
    assert [s.shift_code for s in report.summaries] == ["S1", "S1", "S2", "S2"]

    text = format_report(report)
    assert "Shift S1 (Pemungutan):" in text and "Under-staffed TPS (14):" in text
    assert "S1 SR2 (POLSEK-A1, sangat_rawan): police 1.00/2.00, linmas 2.00/2.00" in text


async def test_scope_by_unit_and_shift(session: AsyncSession, tmp_path: Path) -> None:
    await province(session, tmp_path)
    report = await understaffed_report(session, staffing=StaffingSettings(), unit_code="POLRES-B", shift_code="S1")
    assert [t.tps_code for t in report.understaffed] == ["KR6", "KR7"]
    assert [(s.shift_code, s.unit_code, s.tps) for s in report.summaries] == [("S1", "POLRES-B", 2)]
    polsek = await understaffed_report(session, staffing=StaffingSettings(), unit_code="POLSEK-A1", shift_code="S1")
    assert [t.tps_code for t in polsek.understaffed] == ["R2", "SR2"]
    assert [s.unit_code for s in polsek.summaries] == ["POLRES-A"], "grouped under the Polres above the scope"

    unknown = await understaffed_report(session, staffing=StaffingSettings(), unit_code="POLRES-Z")
    assert unknown.problem == "unknown unit 'POLRES-Z'" and "unknown unit" in format_report(unknown)
    assert (await understaffed_report(session, staffing=StaffingSettings(), shift_code="S9")).problem


async def test_the_pattern_comes_from_configuration(session: AsyncSession, tmp_path: Path) -> None:
    await province(session, tmp_path)
    strict = StaffingSettings(rawan=StaffingPattern(police=4, linmas=4, tps=2))
    report = await understaffed_report(session, staffing=strict, shift_code="S1")
    assert {t.tps_code for t in report.understaffed} == {"SR2", "R1", "R2", "KR6", "KR7"}
