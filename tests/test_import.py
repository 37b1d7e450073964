"""`siaga import`: all or nothing, every bad row named, upserts that write only what changed.

Every test runs on SQLite and, with SIAGA_TEST_DATABASE_URL, on PostgreSQL.
A rejected import is checked against a dump of every table taken before it:
the database must be exactly as it was, even though the same invocation
also carried good new rows.
"""

from __future__ import annotations

import copy
import csv
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

import models
from bot.demo import demodata
from bot.services import units as unit_tree
from bot.services.roster import ImportReport, import_files
from models import AuditLog, Personnel, Tps, TpsLocation, Unit, UnitClosure
from models.schemas import COLUMNS

Province = dict[str, list[list[Any]]]

BASE: Province = {
    "units": [
        ["POLDA-X", "Polda X", "polda", "polri", None, "Provinsi X"],
        ["POLRES-A", "Polres A", "polres", "polri", "POLDA-X", "Kab A"],
        ["POLSEK-A1", "Polsek A1", "polsek", "polri", "POLRES-A", "Kab A"],
        ["POLSEK-A2", "Polsek A2", "polsek", "polri", "POLRES-A", "Kab A"],
        ["POLRES-B", "Polres B", "polres", "polri", "POLDA-X", "Kab B"],
        ["POLSEK-B1", "Polsek B1", "polsek", "polri", "POLRES-B", "Kab B"],
        ["KODIM-A", "Kodim A", "kodim", "tni", None, "Kab A"],
        ["KORAMIL-A1", "Koramil A1", "koramil", "tni", "KODIM-A", "Kab A"],
    ],
    "personnel": [
        ["85010001", "Budi Santoso", "Bripda", "polri", "POLSEK-A1", "anggota", "+6281200000001", None],
        ["85010002", "Agus Pratama", "Briptu", "polri", "POLSEK-A1", "anggota", "+6281200000002", None],
        ["3000000001", "Dedi Hidayat", "Pratu", "tni", "POLSEK-A1", "anggota", "+6281200000003", "KORAMIL-A1"],
        ["LM00000001", "Siti Rahayu", "Linmas", "linmas", "POLSEK-A1", "anggota", "+6281200000004", None],
        ["85010003", "Hendra Wijaya", "Bripka", "polri", "POLSEK-B1", "anggota", "+6281200000005", None],
        ["85010004", "Rudi Hakim", "AKBP", "polri", "POLRES-A", "komandan", "+6281200000006", None],
    ],
    "tps": [
        [
            "TPS-A1-001",
            "1",
            "Sungai Rejo",
            "Kec A1",
            "Kab A",
            -2.98,
            104.76,
            "sangat_rawan",
            "darat",
            "POLSEK-A1",
            None,
        ],
        ["TPS-A1-002", "2", "Sungai Rejo", "Kec A1", "Kab A", -2.981, 104.761, "rawan", "air", "POLSEK-A1", None],
        [
            "TPS-A2-001",
            "1",
            "Talang Jaya",
            "Kec A2",
            "Kab A",
            -3.1,
            104.9,
            "kurang_rawan",
            "darat_air",
            "POLSEK-A2",
            "POLSEK-B1",
        ],
        ["TPS-B1-001", "1", "Muara Baru", "Kec B1", "Kab B", -3.4, 104.8, "rawan", "darat", "POLSEK-B1", None],
    ],
    "shifts": [
        ["S1", "Pemungutan suara", "pemungutan", "2024-02-14T07:00:00+07:00", "2024-02-14T13:00:00+07:00"],
        ["S2", "Penghitungan suara", "penghitungan", "2024-02-14T13:00:00+07:00", "2024-02-15T00:00:00+07:00"],
    ],
    "assignments": [
        ["85010001", "TPS-A1-001", "S1"],
        ["85010002", "TPS-A1-001", "S1"],
        ["3000000001", "TPS-A1-002", "S1"],
        ["LM00000001", "TPS-A1-001", "S1"],
        ["85010003", "TPS-A2-001", "S1"],  # a border TPS: its secondary unit is POLSEK-B1
        ["85010004", "TPS-A2-001", "S1"],  # a Polres commander may guard any TPS of the Polres
        ["85010001", "TPS-A1-001", "S2"],
    ],
}
NEW_UNIT = ["POLSEK-A3", "Polsek A3", "polsek", "polri", "POLRES-A", "Kab A"]  # good, rides along with bad rows


def base() -> Province:
    return copy.deepcopy(BASE)


def write_csv(directory: Path, province: Province) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for entity, rows in province.items():
        path = directory / f"{entity}.csv"
        with open(path, "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(COLUMNS[entity])
            writer.writerows([["" if cell is None else cell for cell in row] for row in rows])
        paths.append(path)
    return paths


def write_xlsx(path: Path, province: Province, headers: dict[str, list[str]] | None = None) -> list[Path]:
    workbook = Workbook()
    workbook.remove(workbook.active)
    for entity, rows in province.items():
        sheet = workbook.create_sheet(entity)
        sheet.append(list((headers or {}).get(entity, COLUMNS[entity])))
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return [path]


async def dump(session: AsyncSession) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to prove a rejected import changed nothing."""
    tables = {}
    for table in models.Base.metadata.sorted_tables:
        rows = (await session.execute(select(table).order_by(*table.primary_key.columns))).all()
        tables[table.name] = [tuple(row) for row in rows]
    await session.rollback()
    return tables


async def run(session: AsyncSession, paths: list[Path]) -> ImportReport:
    report = await import_files(session, paths=paths, actor="test")
    session.expunge_all()
    return report


async def count(session: AsyncSession, model: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


# --- good imports -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
async def test_generated_province_imports_with_matching_counts(
    session: AsyncSession, tmp_path: Path, kind: str
) -> None:
    province = demodata.generate(tps=40, seed=3)
    if kind == "xlsx":
        demodata.write_xlsx(province, tmp_path / "province.xlsx")
        paths = [tmp_path / "province.xlsx"]
    else:
        paths = demodata.write_csv(province, tmp_path / "csv")
    report = await run(session, paths)
    assert report.ok, report.format()
    expected = province.counts()
    assert {entity: c.created for entity, c in report.counts.items()} == expected
    for model, entity in (
        (Unit, "units"),
        (Personnel, "personnel"),
        (Tps, "tps"),
        (models.Shift, "shifts"),
        (models.Assignment, "assignments"),
    ):
        assert await count(session, model) == expected[entity]
    border = sum(1 for t in province.tps if t.secondary_unit_codes)
    assert await count(session, models.TpsSecondaryUnit) == border
    depth = {u.code: u.depth for u in await session.scalars(select(Unit))}
    assert depth["POLDA-SUMSEL"] == 0 and depth[province.tps[0].unit_code] == 2
    assert await count(session, UnitClosure) == sum(d + 1 for d in depth.values())
    assert "units: " in report.format() and "0 updated" in report.format()


async def test_reimport_writes_nothing_and_audits_nothing(session: AsyncSession, tmp_path: Path) -> None:
    paths = write_xlsx(tmp_path / "roster.xlsx", base())
    assert (await run(session, paths)).ok
    audits, before = await count(session, AuditLog), await dump(session)
    statements: list[str] = []

    def spy(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sync_engine = session.bind.sync_engine  # type: ignore[union-attr]
    event.listen(sync_engine, "before_cursor_execute", spy)
    try:
        report = await run(session, paths)
    finally:
        event.remove(sync_engine, "before_cursor_execute", spy)
    assert report.ok
    for entity, counts in report.counts.items():
        assert (counts.created, counts.updated, counts.deleted) == (0, 0, 0), entity
        assert counts.unchanged == len(BASE[entity])
    assert "0 created, 0 updated, 6 unchanged" in report.format()
    writes = [s for s in statements if s.lstrip().split()[0].upper() in {"INSERT", "UPDATE", "DELETE"}]
    assert writes == []
    assert await count(session, AuditLog) == audits
    assert await dump(session) == before


async def test_references_across_files_in_any_order(session: AsyncSession, tmp_path: Path) -> None:
    province = base()
    write_xlsx(tmp_path / "tree.xlsx", {"units": province["units"], "shifts": province["shifts"]})
    csvs = write_csv(tmp_path / "csv", {e: province[e] for e in ("assignments", "personnel", "tps")})
    with open(csvs[0], "a", encoding="utf-8") as file:
        file.write(",,\n,,\n")  # trailing empty rows
    workbook = load_workbook(tmp_path / "tree.xlsx")
    workbook["units"].cell(row=40, column=1).font = Font(bold=True)  # formatted but empty
    workbook["units"].cell(row=41, column=2, value="   ")
    workbook.save(tmp_path / "tree.xlsx")
    report = await run(session, [csvs[0], tmp_path / "tree.xlsx", *csvs[1:]])
    assert report.ok, report.format()
    assert report.counts["assignments"].created == len(BASE["assignments"])
    assert list(report.counts) == ["units", "personnel", "tps", "shifts", "assignments"]


async def test_csv_with_bom_and_semicolons_imports(session: AsyncSession, tmp_path: Path) -> None:
    directory = tmp_path / "csv"
    paths = write_csv(directory, base())
    units = directory / "units.csv"
    text = units.read_text(encoding="utf-8").replace(",", ";")
    units.write_text("\ufeff" + text, encoding="utf-8")
    report = await run(session, paths)
    assert report.ok, report.format()
    assert await count(session, Unit) == len(BASE["units"])


async def test_changed_row_updates_in_place_and_audits_old_and_new(
    session: AsyncSession, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await run(session, write_csv(tmp_path / "a", base()))).ok
    person_id = await session.scalar(select(Personnel.id).where(Personnel.nrp == "85010001"))
    changed = base()
    changed["personnel"][0][1] = "Budi Santoso Putra"
    changed["personnel"][0][4] = "POLRES-A"  # still above TPS-A1-001, which it guards
    changed["personnel"][0][6] = "+6281299999999"
    changed["assignments"] = [row for row in changed["assignments"] if row[0] != "85010002"]
    changed["units"][3][1] = "Polsek A-Dua"
    changed["tps"][1][7] = "sangat_rawan"
    changed["shifts"][0][4] = "2024-02-14T14:00:00+07:00"
    caplog.set_level(logging.DEBUG, logger="bot")  # aiosqlite's own DEBUG lines echo SQL parameters
    report = await run(session, write_csv(tmp_path / "b", changed))
    assert report.ok, report.format()
    assert report.counts["personnel"].updated == 1 and report.counts["personnel"].unchanged == 5
    assert report.counts["units"].updated == 1 and report.counts["tps"].updated == 1
    assert report.counts["shifts"].updated == 1
    assert report.counts["assignments"].deleted == 1

    person = await session.scalar(select(Personnel).where(Personnel.nrp == "85010001"))
    assert person is not None and person.id == person_id and person.name == "Budi Santoso Putra"
    audit = (await session.scalars(select(AuditLog).where(AuditLog.action == "personnel.updated"))).one()
    assert audit.entity_id == str(person_id) and audit.actor == "test"
    assert audit.detail["changes"] == {
        "name": ["Budi Santoso", "Budi Santoso Putra"],
        "unit_code": ["POLSEK-A1", "POLRES-A"],
        "phone": ["+6281200000001", "+6281299999999"],
    }
    tps_audit = (await session.scalars(select(AuditLog).where(AuditLog.action == "tps.updated"))).one()
    assert tps_audit.detail == {"code": "TPS-A1-002", "changes": {"vulnerability": ["rawan", "sangat_rawan"]}}
    shift_audit = (await session.scalars(select(AuditLog).where(AuditLog.action == "shift.updated"))).one()
    old, new = shift_audit.detail["changes"]["ends_at"]
    assert datetime.fromisoformat(new) - datetime.fromisoformat(old) == datetime(2024, 1, 1, 1) - datetime(2024, 1, 1)
    summary = (await session.scalars(select(AuditLog).where(AuditLog.action == "roster.imported"))).all()
    assert len(summary) == 2  # the first import and this one
    for secret in ("85010001", "6281200000001", "6281299999999"):
        assert secret not in caplog.text


async def test_relocated_tps_keeps_its_old_place(session: AsyncSession, tmp_path: Path) -> None:
    assert (await run(session, write_csv(tmp_path / "a", base()))).ok
    moved = base()
    moved["tps"][0][5:7] = [-2.95, 104.70]
    moved["tps"][0][2] = "Sungai Rejo Baru"
    report = await run(session, write_csv(tmp_path / "b", moved))
    assert report.ok and report.counts["tps"].updated == 1
    tps = await session.scalar(select(Tps).where(Tps.code == "TPS-A1-001"))
    assert tps is not None and (tps.lat, tps.lon, tps.village) == (-2.95, 104.70, "Sungai Rejo Baru")
    assert tps.relocated_at is not None
    history = (await session.scalars(select(TpsLocation))).one()
    assert (history.tps_id, history.lat, history.lon, history.village) == (tps.id, -2.98, 104.76, "Sungai Rejo")
    audit = (await session.scalars(select(AuditLog).where(AuditLog.entity == "tps"))).one()
    assert audit.action == "tps.relocated"
    assert audit.detail["changes"]["lat"] == [-2.98, -2.95]


async def test_formula_looking_text_is_stored_as_text(session: AsyncSession, tmp_path: Path) -> None:
    """Text cells that a spreadsheet would run if they were typed in: `'=...` in Excel, `+ - @` as they come."""
    province = base()
    province["personnel"][1][1] = "+Agus"
    province["personnel"][2][2] = "@SUM(A1:A9)"
    province["personnel"][3][1] = "-Siti"
    paths = write_xlsx(tmp_path / "roster.xlsx", province)
    workbook = load_workbook(paths[0])
    for sheet, coordinate, text in [("personnel", "B2", '=HYPERLINK("http://x","klik")'), ("tps", "C2", "=1+1")]:
        cell = workbook[sheet][coordinate]
        cell.value, cell.data_type = text, "s"
    workbook.save(paths[0])
    report = await run(session, paths)
    assert report.ok, report.format()
    names = {p.nrp: (p.name, p.rank, p.phone) for p in await session.scalars(select(Personnel))}
    assert names["85010001"] == ('=HYPERLINK("http://x","klik")', "Bripda", "+6281200000001")
    assert names["85010002"][0] == "+Agus"
    assert names["3000000001"][1] == "@SUM(A1:A9)"
    assert names["LM00000001"][0] == "-Siti"
    village = await session.scalar(select(Tps.village).where(Tps.code == "TPS-A1-001"))
    lat = await session.scalar(select(Tps.lat).where(Tps.code == "TPS-A1-001"))
    assert village == "=1+1" and lat == -2.98


async def test_assignments_of_a_shift_are_replaced_and_other_shifts_kept(session: AsyncSession, tmp_path: Path) -> None:
    assert (await run(session, write_csv(tmp_path / "a", base()))).ok
    only_s1 = {"assignments": [row for row in BASE["assignments"] if row[2] == "S1" and row[0] != "85010002"]}
    only_s1["assignments"].append(["85010002", "TPS-A1-002", "S1"])
    report = await run(session, write_csv(tmp_path / "b", only_s1))
    assert report.ok, report.format()
    c = report.counts["assignments"]
    assert (c.created, c.deleted, c.unchanged) == (1, 1, 5)
    rows = (
        await session.execute(
            select(Personnel.nrp, Tps.code, models.Shift.code)
            .join(models.Assignment, models.Assignment.personnel_id == Personnel.id)
            .join(Tps, Tps.id == models.Assignment.tps_id)
            .join(models.Shift, models.Shift.id == models.Assignment.shift_id)
        )
    ).all()
    assert ("85010002", "TPS-A1-002", "S1") in rows and ("85010002", "TPS-A1-001", "S1") not in rows
    assert ("85010001", "TPS-A1-001", "S2") in rows, "S2 is not in the file: untouched"


async def test_reparenting_rebuilds_closure_and_depth(session: AsyncSession, tmp_path: Path) -> None:
    assert (await run(session, write_csv(tmp_path / "a", base()))).ok
    moved = {
        "units": [
            ["POLSEK-A2", "Polsek A2", "polsek", "polri", "POLRES-B", "Kab A"],
            ["POLSEK-A3", "Polsek A3", "polsek", "polri", "POLSEK-A2", "Kab A"],
        ],
        # the Polres-A commander can no longer guard TPS-A2-001: S1 is re-imported without him
        "assignments": [row for row in BASE["assignments"] if row[2] == "S1" and row[0] != "85010004"],
    }
    assert (await run(session, write_csv(tmp_path / "b", moved))).ok
    ids = {u.code: u.id for u in await session.scalars(select(Unit))}
    assert sorted(await unit_tree.subtree_ids(session, ids["POLRES-B"])) == sorted(
        ids[c] for c in ("POLRES-B", "POLSEK-B1", "POLSEK-A2", "POLSEK-A3")
    )
    chain = await unit_tree.ancestors(session, ids["POLSEK-A3"])
    assert [u.code for u in chain] == ["POLSEK-A2", "POLRES-B", "POLDA-X"]
    assert [u.depth for u in chain] == [2, 1, 0]
    assert await unit_tree.is_within(session, ids["POLSEK-A3"], ids["POLDA-X"])
    assert not await unit_tree.is_within(session, ids["POLSEK-A2"], ids["POLRES-A"])
    assert await session.scalar(select(Unit.depth).where(Unit.code == "POLSEK-A3")) == 3


# --- rejected imports ---------------------------------------------------------------------------

Mutation = Callable[[Province], None]


def setter(entity: str, row: int, column: str, value: Any) -> Mutation:
    def mutate(province: Province) -> None:
        province[entity][row][COLUMNS[entity].index(column)] = value

    return mutate


def appender(entity: str, row: list[Any]) -> Mutation:
    return lambda province: province[entity].append(row)


BAD_ROWS: dict[str, tuple[Mutation, str, int, str, str]] = {
    # name: (mutation, sheet, spreadsheet row, column, words in the reason)
    "unknown parent": (
        setter("units", 3, "parent_code", "POLRES-Z"),
        "units",
        5,
        "parent_code",
        "unknown unit 'POLRES-Z'",
    ),
    "unknown unit of a person": (
        setter("personnel", 1, "unit_code", "POLSEK-Z"),
        "personnel",
        3,
        "unit_code",
        "unknown unit",
    ),
    "unknown home unit": (
        setter("personnel", 2, "home_unit", "KORAMIL-Z"),
        "personnel",
        4,
        "home_unit",
        "unknown unit",
    ),
    "unknown TPS unit": (setter("tps", 0, "unit_code", "POLSEK-Z"), "tps", 2, "unit_code", "unknown unit"),
    "unknown secondary unit": (
        setter("tps", 1, "secondary_unit_codes", "POLSEK-B1;POLSEK-Q"),
        "tps",
        3,
        "secondary_unit_codes",
        "'POLSEK-Q'",
    ),
    "unknown TPS": (setter("assignments", 1, "tps_code", "TPS-Z"), "assignments", 3, "tps_code", "unknown TPS"),
    "unknown shift": (setter("assignments", 2, "shift_code", "S9"), "assignments", 4, "shift_code", "unknown shift"),
    "unknown nrp": (setter("assignments", 0, "nrp", "99999999"), "assignments", 2, "nrp", "unknown nrp"),
    "duplicate unit code": (
        appender("units", ["POLSEK-A1", "Lagi", "polsek", "polri", "POLRES-A", ""]),
        "units",
        11,
        "code",
        "duplicate code 'POLSEK-A1'",
    ),
    "duplicate nrp": (
        appender("personnel", ["85010002", "Lain", "", "polri", "POLSEK-A1", "", "", ""]),
        "personnel",
        8,
        "nrp",
        "duplicate nrp: also on",
    ),
    "duplicate TPS code": (
        appender("tps", ["TPS-A1-001", "9", "", "", "", -3, 104, "rawan", "darat", "POLSEK-A1", ""]),
        "tps",
        6,
        "code",
        "duplicate code",
    ),
    "latitude out of range": (setter("tps", 0, "lat", 95), "tps", 2, "lat", "less than or equal to 90"),
    "longitude out of range": (setter("tps", 0, "lon", -181), "tps", 2, "lon", "greater than or equal to -180"),
    "0,0 coordinates": (lambda p: p["tps"][2].__setitem__(slice(5, 7), [0, 0]), "tps", 4, "lon", "0,0"),
    "date without offset": (
        setter("shifts", 0, "starts_at", "2024-02-14T07:00:00"),
        "shifts",
        2,
        "starts_at",
        "without an offset",
    ),
    "ends before it starts": (
        setter("shifts", 1, "ends_at", "2024-02-14T12:00:00+07:00"),
        "shifts",
        3,
        "ends_at",
        "after starts_at",
    ),
    "bad force": (setter("personnel", 0, "force", "polisi"), "personnel", 2, "force", "'polri', 'tni' or 'linmas'"),
    "bad role": (setter("personnel", 0, "role", "kapten"), "personnel", 2, "role", "'anggota', 'komandan' or 'admin'"),
    "bad vulnerability": (setter("tps", 0, "vulnerability", "aman"), "tps", 2, "vulnerability", "'sangat_rawan'"),
    "bad access": (setter("tps", 0, "access", "udara"), "tps", 2, "access", "'darat_air'"),
    "bad unit kind": (setter("units", 2, "kind", "batalyon"), "units", 4, "kind", "'polsek'"),
    "bad phase": (setter("shifts", 0, "phase", "istirahat"), "shifts", 2, "phase", "'pengawalan'"),
    "missing required value": (setter("personnel", 3, "name", None), "personnel", 5, "name", "value is required"),
    "bad phone": (setter("personnel", 0, "phone", "0812 CALL"), "personnel", 2, "phone", "not a phone number"),
    "nrp with a sign": (
        setter("personnel", 0, "nrp", "12#4X"),
        "personnel",
        2,
        "nrp",
        "not an NRP (letters and digits only; found '#')",
    ),
    "nrp with a space inside": (setter("personnel", 1, "nrp", " 8501 0002 "), "personnel", 3, "nrp", "found ' '"),
    "nrp too long": (
        setter("personnel", 2, "nrp", "3" * 21),
        "personnel",
        4,
        "nrp",
        "not an NRP (at most 20 letters and digits; found 21)",
    ),
    "assignment nrp with a sign": (
        setter("assignments", 1, "nrp", "12#4X"),
        "assignments",
        3,
        "nrp",
        "not an NRP (letters and digits only; found '#')",
    ),
    "cycle in the file": (
        lambda p: (
            p["units"].append(["LOOP-1", "L1", "other", "polri", "LOOP-2", ""]),
            p["units"].append(["LOOP-2", "L2", "other", "polri", "LOOP-1", ""]),
        ),
        "units",
        11,
        "parent_code",
        "cycle in the unit tree",
    ),
    "outside command": (
        setter("assignments", 0, "tps_code", "TPS-B1-001"),
        "assignments",
        2,
        "tps_code",
        "outside the command",
    ),
    "TNI outside the commanding unit": (
        setter("assignments", 2, "tps_code", "TPS-B1-001"),
        "assignments",
        4,
        "tps_code",
        "outside the command",
    ),
}


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
@pytest.mark.parametrize("case", list(BAD_ROWS))
async def test_a_bad_row_rejects_the_whole_invocation(
    session: AsyncSession, tmp_path: Path, case: str, kind: str
) -> None:
    assert (await run(session, write_csv(tmp_path / "first", base()))).ok
    before = await dump(session)
    mutate, sheet, row, column, words = BAD_ROWS[case]
    province = base()
    province["units"].append(NEW_UNIT)
    province["tps"][3][2] = "Muara Baru Ilir"  # a good change that must not be written either
    mutate(province)
    if kind == "csv":
        paths, label = write_csv(tmp_path / "bad", province), f"{sheet}.csv"
    else:
        paths, label = write_xlsx(tmp_path / "bad.xlsx", province), f"bad.xlsx [{sheet}]"
    report = await run(session, paths)
    assert not report.ok
    assert any((e.sheet, e.row, e.column) == (label, row, column) and words in e.reason for e in report.errors), (
        report.format()
    )
    assert f"{label} row {row}, column {column}: " in report.format()
    assert await dump(session) == before


async def test_cycle_formed_with_units_in_the_database(session: AsyncSession, tmp_path: Path) -> None:
    assert (await run(session, write_csv(tmp_path / "a", base()))).ok
    before = await dump(session)
    report = await run(
        session,
        write_csv(tmp_path / "b", {"units": [["POLDA-X", "Polda X", "polda", "polri", "POLSEK-A1", "Provinsi X"]]}),
    )
    assert not report.ok
    [error] = report.errors
    assert (error.sheet, error.row, error.column) == ("units.csv", 2, "parent_code")
    assert "POLDA-X -> POLSEK-A1 -> POLRES-A -> POLDA-X" in error.reason
    assert await dump(session) == before


async def test_date_cell_without_offset_in_a_workbook(session: AsyncSession, tmp_path: Path) -> None:
    province = base()
    province["shifts"][0][3] = datetime(2024, 2, 14, 7, 0)  # a real date cell: no offset possible
    report = await run(session, write_xlsx(tmp_path / "roster.xlsx", province))
    assert not report.ok
    assert [(e.sheet, e.row, e.column) for e in report.errors] == [("roster.xlsx [shifts]", 2, "starts_at")]
    assert await count(session, Unit) == 0


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
async def test_missing_and_misnamed_columns_name_sheet_and_column(
    session: AsyncSession, tmp_path: Path, kind: str
) -> None:
    province = base()
    headers = {
        "personnel": [c for c in COLUMNS["personnel"] if c != "phone"],
        "tps": [("lng" if c == "lon" else c) for c in COLUMNS["tps"]],
    }
    for row in province["personnel"]:
        del row[6]
    if kind == "xlsx":
        paths = write_xlsx(tmp_path / "roster.xlsx", province, headers)
        personnel, tps = "roster.xlsx [personnel]", "roster.xlsx [tps]"
    else:
        paths = write_csv(tmp_path / "csv", province)
        for entity, header in headers.items():
            path = tmp_path / "csv" / f"{entity}.csv"
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
            path.write_text(",".join(header) + "\n" + "".join(lines[1:]), encoding="utf-8")
        personnel, tps = "personnel.csv", "tps.csv"
    report = await run(session, paths)
    assert not report.ok
    found = {(e.sheet, e.row, e.column): e.reason for e in report.errors}
    assert "missing column phone" in found[(personnel, 1, "phone")]
    assert "column G is named 'home_unit'" in found[(personnel, 1, "phone")]
    assert "missing column lon: column G is named 'lng'" == found[(tps, 1, "lon")]
    assert await count(session, Unit) == 0


async def test_every_bad_row_is_listed_and_the_display_is_capped(session: AsyncSession, tmp_path: Path) -> None:
    province = base()
    province["assignments"] += [["85010001", f"TPS-NOPE-{i}", "S1"] for i in range(250)]
    province["units"][1][2] = "batalyon"
    report = await run(session, write_csv(tmp_path / "csv", province))
    assert not report.ok and len(report.errors) == 251
    assert report.errors[0].sheet == "units.csv"  # files in order, rows in order
    text = report.format()
    assert text.startswith("Import rejected: 251 errors; nothing was written.")
    assert "... and 51 more (251 errors in all)" in text
    assert len(text.splitlines()) == 1 + 200 + 1


async def test_unknown_files_and_sheets_are_rejected(session: AsyncSession, tmp_path: Path) -> None:
    stray = tmp_path / "roster.csv"
    stray.write_text("code\n", encoding="utf-8")
    workbook = Workbook()
    workbook.active.title = "Sheet1"
    workbook.save(tmp_path / "empty.xlsx")
    report = await run(session, [stray, tmp_path / "empty.xlsx"])
    assert not report.ok
    assert [e.sheet for e in report.errors] == ["roster.csv", "empty.xlsx"]
    assert "named after its entity" in report.errors[0].reason and "no sheet named" in report.errors[1].reason


async def test_duplicate_nrp_and_errors_never_echo_nrp_or_phone(session: AsyncSession, tmp_path: Path) -> None:
    province = base()
    province["personnel"].append(["85010001", "Kembar", "", "polri", "POLSEK-A1", "", "", ""])
    province["personnel"][1][6] = "08x"
    report = await run(session, write_csv(tmp_path / "csv", province))
    assert not report.ok
    assert {(e.row, e.column) for e in report.errors} == {(8, "nrp"), (3, "phone")}
    assert "85010001" not in report.format() and "08x" not in report.format()


async def test_moving_a_person_away_from_a_kept_assignment_is_rejected(session: AsyncSession, tmp_path: Path) -> None:
    """S2 is not in the second import, so its assignments stay: they must still obey the command rule."""
    assert (await run(session, write_csv(tmp_path / "a", base()))).ok
    before = await dump(session)
    moved = {
        "personnel": [list(BASE["personnel"][0])],
        "assignments": [row for row in BASE["assignments"] if row[2] == "S1" and row[0] != "85010001"],
    }
    moved["personnel"][0][4] = "POLSEK-B1"
    report = await run(session, write_csv(tmp_path / "b", moved))
    assert not report.ok
    [error] = report.errors
    assert (error.sheet, error.row, error.column) == ("personnel.csv", 2, "unit_code")
    assert "shift 'S2'" in error.reason and "TPS 'TPS-A1-001'" in error.reason
    assert await dump(session) == before
    moved["assignments"].append(["85010001", "TPS-B1-001", "S2"])  # now S2 is replaced too
    report = await run(session, write_csv(tmp_path / "c", moved))
    assert report.ok, report.format()
    assert report.counts["assignments"].deleted == 2


async def test_moving_a_unit_away_from_a_kept_assignment_is_rejected(session: AsyncSession, tmp_path: Path) -> None:
    assert (await run(session, write_csv(tmp_path / "a", base()))).ok
    report = await run(
        session,
        write_csv(
            tmp_path / "b",
            {
                "units": [
                    ["POLRES-A", "Polres A", "polres", "polri", None, "Kab A"],  # fine: a root of its own
                    [
                        "POLSEK-A2",
                        "Polsek A2",
                        "polsek",
                        "polri",
                        "POLRES-B",
                        "Kab A",
                    ],  # its TPS leaves the Polres-A commander
                ]
            },
        ),
    )
    assert not report.ok
    assert [(e.row, e.column) for e in report.errors] == [(3, "parent_code")]
    assert "'POLRES-A'" in report.errors[0].reason and "'TPS-A2-001'" in report.errors[0].reason
