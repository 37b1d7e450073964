"""What the operations officer can trust an import to refuse: formulas, and NRPs nobody could register with.

A workbook is imported with the values it showed when it was saved (the
cached result of each formula); a formula that has none, or whose result is
an error, is refused with its row and column, as is a CSV value a
spreadsheet would run as a formula. What was imported as text leaves again
as text in the exported workbook. Every refusal leaves the database exactly
as it was (the dump of tests/test_import.py).
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime, timedelta, timezone
from html import escape
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.services import reports
from models import Personnel, Tps, Unit
from models.schemas import COLUMNS
from tests.test_import import BASE, Province, base, dump, run, write_csv, write_xlsx

Result = str | float | None  # None: a formula the workbook holds no result for
FORMULA = "spreadsheet formula: a value must not begin with ="


def formulas(path: Path, province: Province, cells: dict[tuple[str, str], tuple[str, Result]]) -> Path:
    """Turn cells of a workbook into formulas with the results Excel would have cached on save.

    openpyxl writes a formula with an empty `<v />`, as a script-made workbook that was never opened has:
    that is kept for a None result. A text result is `t="str"`; "#N/A" and the like are `t="e"`.
    """
    for (entity, coordinate), (formula, _) in cells.items():
        column, row = re.fullmatch(r"([A-Z]+)(\d+)", coordinate).groups()  # type: ignore[union-attr]
        province[entity][int(row) - 2][ord(column) - ord("A")] = formula
    write_xlsx(path, province)
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    for (entity, coordinate), (_, result) in cells.items():
        name = f"xl/worksheets/sheet{list(province).index(entity) + 1}.xml"
        xml = parts[name].decode()
        if result is None:
            cached = r'<c r="{0}"\1><f>\2</f><v /></c>'
        elif isinstance(result, float):
            cached = rf'<c r="{{0}}"\1><f>\2</f><v>{result!r}</v></c>'
        else:
            kind = "e" if result.startswith("#") else "str"
            cached = rf'<c r="{{0}}"\1 t="{kind}"><f>\2</f><v>{escape(result)}</v></c>'
        xml, found = re.subn(rf'<c r="{coordinate}"([^>]*)><f>(.*?)</f><v ?/></c>', cached.format(coordinate), xml)
        assert found == 1, (entity, coordinate)
        parts[name] = xml.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return path


async def test_a_formula_imports_the_value_the_workbook_cached(session: AsyncSession, tmp_path: Path) -> None:
    path = formulas(
        tmp_path / "roster.xlsx",
        base(),
        {
            ("personnel", "A2"): ('=TEXT(85010000+1,"0")', "85010001"),
            ("personnel", "B2"): ('=PROPER("budi santoso")', "Budi Santoso"),
            ("personnel", "C2"): ('=IF(TRUE,"","Bripda")', ""),  # an empty text result: an empty cell
            ("tps", "F2"): ("=-2.98", -2.98),
            ("tps", "C3"): ('=HYPERLINK("http://x","Sungai Rejo")', "Sungai Rejo"),
            ("assignments", "A2"): ("=personnel!A2", "85010001"),
        },
    )
    report = await run(session, [path])
    assert report.ok, report.format()
    budi = await session.scalar(select(Personnel).where(Personnel.nrp == "85010001"))
    assert budi is not None and (budi.name, budi.rank) == ("Budi Santoso", "")
    tps = {t.code: t for t in await session.scalars(select(Tps))}
    assert tps["TPS-A1-001"].lat == -2.98 and tps["TPS-A1-002"].village == "Sungai Rejo"
    assert report.counts["assignments"].created == len(BASE["assignments"])


async def test_a_formula_without_a_value_rejects_the_file_with_row_and_column(
    session: AsyncSession, tmp_path: Path
) -> None:
    assert (await run(session, write_csv(tmp_path / "first", base()))).ok
    before = await dump(session)
    province = base()
    province["tps"][3][2] = "Muara Baru Ilir"  # a good change that must not be written either
    path = formulas(
        tmp_path / "roster.xlsx",
        province,
        {
            ("units", "B3"): ('=CONCAT("Polres ","A")', None),  # required: not "value is required" as well
            ("units", "F4"): ('=C4&" "&D4', None),  # optional: not imported as empty
            ("personnel", "A5"): ('=TEXT(85010000+3,"0")', None),
            ("tps", "G2"): ("=104.76", None),
            ("shifts", "D3"): ("=NOW()", "#VALUE!"),
            ("assignments", "A3"): ('=VLOOKUP("Agus",personnel!A:B,1,FALSE)', "#N/A"),
        },
    )
    report = await run(session, [path])
    assert not report.ok
    assert [(e.sheet, e.row, e.column) for e in report.errors] == [
        ("roster.xlsx [units]", 3, "name"),
        ("roster.xlsx [units]", 4, "region"),
        ("roster.xlsx [personnel]", 5, "nrp"),
        ("roster.xlsx [tps]", 2, "lon"),
        ("roster.xlsx [shifts]", 3, "starts_at"),
        ("roster.xlsx [assignments]", 3, "nrp"),
    ]
    text = report.format()
    assert "roster.xlsx [units] row 3, column name: formula without a value: " in text
    assert "roster.xlsx [tps] row 2, column lon: formula without a value: " in text
    assert "roster.xlsx [shifts] row 3, column starts_at: spreadsheet error #VALUE!: " in text
    assert "roster.xlsx [assignments] row 3, column nrp: spreadsheet error #N/A: " in text
    assert "value is required" not in text
    assert await dump(session) == before


async def test_a_bad_formula_is_listed_with_the_other_errors_of_its_row(session: AsyncSession, tmp_path: Path) -> None:
    province = base()
    province["personnel"][0][3] = "polisi"
    path = formulas(tmp_path / "roster.xlsx", province, {("personnel", "B2"): ('=PROPER("budi")', None)})
    report = await run(session, [path])
    assert not report.ok
    assert [(e.row, e.column) for e in report.errors] == [(2, "name"), (2, "force")]
    assert await session.scalar(select(Unit.id)) is None


TEXT_COLUMNS = [
    ("units", 1, "name"),
    ("units", 5, "region"),
    ("personnel", 1, "name"),
    ("personnel", 2, "rank"),
    ("tps", 1, "number"),
    ("tps", 2, "village"),
    ("tps", 3, "district"),
    ("tps", 4, "regency"),
    ("shifts", 1, "name"),
]


async def test_a_csv_value_beginning_with_equals_is_rejected_as_a_formula(
    session: AsyncSession, tmp_path: Path
) -> None:
    assert (await run(session, write_csv(tmp_path / "first", base()))).ok
    before = await dump(session)
    province = base()
    for row, (entity, index, column) in enumerate(TEXT_COLUMNS):
        assert COLUMNS[entity][index] == column
        province[entity][row % len(province[entity])][index] = f'=HYPERLINK("http://x/{row}","klik")'
    province["units"][6][0] = "  =KODIM"  # a code too, after spaces
    province["personnel"][5][6] = "=6281200000006"
    province["assignments"][0][0] = "=85010001"
    report = await run(session, write_csv(tmp_path / "bad", province))
    assert not report.ok
    found = {(e.sheet, e.row, e.column): e.reason for e in report.errors}
    for row, (entity, _, column) in enumerate(TEXT_COLUMNS):
        reason = found.pop((f"{entity}.csv", row % len(province[entity]) + 2, column))
        assert reason == f"""{FORMULA} (got '=HYPERLINK("http://x/{row}","klik")')"""
    assert found.pop(("units.csv", 8, "code")) == f"{FORMULA} (got '  =KODIM')"
    assert found == {("personnel.csv", 7, "phone"): FORMULA, ("assignments.csv", 2, "nrp"): FORMULA}
    assert "6281200000006" not in report.format() and "85010001" not in report.format()
    assert await dump(session) == before


async def test_csv_text_beginning_with_plus_minus_or_at_is_kept(session: AsyncSession, tmp_path: Path) -> None:
    """Real data begins so ("-" for an unknown village, "+62" numbers, negative coordinates): exports keep it text."""
    province = base()
    province["personnel"][0][1] = "+Budi"
    province["personnel"][1][2] = "@Briptu"
    province["tps"][0][2:5] = ["-", "-Kec A1", "@Kab A"]
    report = await run(session, write_csv(tmp_path / "csv", province))
    assert report.ok, report.format()
    people = {p.nrp: p for p in await session.scalars(select(Personnel))}
    assert (people["85010001"].name, people["85010002"].rank, people["85010001"].phone) == (
        "+Budi",
        "@Briptu",
        "+6281200000001",
    )
    tps = await session.scalar(select(Tps).where(Tps.code == "TPS-A1-001"))
    assert tps is not None and (tps.village, tps.district, tps.regency, tps.lat) == ("-", "-Kec A1", "@Kab A", -2.98)


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
async def test_nrps_of_letters_and_digits_up_to_twenty_import(session: AsyncSession, tmp_path: Path, kind: str) -> None:
    province = base()
    province["personnel"][0][0] = " A2345678901234567890 "
    province["personnel"][1][0] = 85010002  # a number cell
    for row in province["assignments"]:
        row[0] = "A2345678901234567890" if row[0] == "85010001" else row[0]
    paths = write_csv(tmp_path / "csv", province) if kind == "csv" else write_xlsx(tmp_path / "r.xlsx", province)
    report = await run(session, paths)
    assert report.ok, report.format()
    nrps = set(await session.scalars(select(Personnel.nrp)))
    assert {"A2345678901234567890", "85010002", "LM00000001"} <= nrps


async def test_every_bad_nrp_is_listed_and_none_is_echoed(session: AsyncSession, tmp_path: Path) -> None:
    province = base()
    for nrp in ("12#4X", "8501.0002", "３０００"):  # the last: full-width digits pasted from a document
        province["personnel"].append([nrp, "Baru", "Bripda", "polri", "POLSEK-A1", "anggota", None, None])
    province["assignments"].append(["LM-0000-0001", "TPS-A1-001", "S2"])
    report = await run(session, write_xlsx(tmp_path / "roster.xlsx", province))
    assert not report.ok
    assert [(e.sheet, e.row, e.column, e.reason) for e in report.errors] == [
        ("roster.xlsx [personnel]", 8, "nrp", "not an NRP (letters and digits only; found '#')"),
        ("roster.xlsx [personnel]", 9, "nrp", "not an NRP (letters and digits only; found '.')"),
        ("roster.xlsx [personnel]", 10, "nrp", "not an NRP (letters and digits only; found '３')"),
        ("roster.xlsx [assignments]", 9, "nrp", "not an NRP (letters and digits only; found '-')"),
    ]
    for nrp in ("12#4X", "8501.0002", "LM-0000-0001"):
        assert nrp not in report.format()


async def test_text_imported_from_a_workbook_leaves_the_export_as_text(session: AsyncSession, tmp_path: Path) -> None:
    """A name typed as `'=HYPERLINK(...)` comes back from `siaga export` as that text, never as a formula."""
    hostile = '=HYPERLINK("http://x","klik")'
    [path] = write_xlsx(tmp_path / "roster.xlsx", base())
    workbook = load_workbook(path)
    for coordinate, text in [("B2", hostile), ("C2", "=1+1"), ("B3", "@Agus")]:
        cell = workbook["personnel"][coordinate]
        cell.value, cell.data_type = text, "s"
    workbook.save(path)
    assert (await run(session, [path])).ok
    now = datetime(2024, 2, 14, 8, 0, tzinfo=timezone(timedelta(hours=7)))
    files = await reports.export_shift(session, shift_code="S1", now=now, settings=Settings())
    sheet = load_workbook(io.BytesIO(files.workbook))["checkins"]
    cells = {row[3].value: (row[2], row[3]) for row in sheet.iter_rows(min_row=2)}
    rank, name = cells[hostile]
    assert (name.data_type, rank.data_type, rank.value) == ("s", "s", "=1+1")
    assert cells["@Agus"][1].data_type == "s"
    for row in sheet.iter_rows():
        assert all(cell.data_type != "f" for cell in row)
