"""`/rekap` and `siaga export`: a PNG, a workbook that opens cleanly, a GeoJSON that maps the shift."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.services import reports
from bot.services.reports import ExportError, ExportFiles
from bot.services.status import Refusal, Viewer
from models import Contingency, ContingencyStep, Escort, EscortAlert, EscortTrackPoint, EscortVia, Sitrep
from tests.factories import NOW, Roster, build_escorts
from tests.test_status import checkin, expected, morning, viewer

SETTINGS = Settings()
HOSTILE = ['=HYPERLINK("http://x","klik")', "+62 812 000", "-2,5 km", "@camat", "=1+1"]


def _contingency(
    roster: Roster, *, reporter_id: int | None, level: str, text: str, at: datetime, **where: int
) -> Contingency:
    """An open `tinggi` contingency of POLSEK-A1 in the morning shift, raised at `at` and standing at `level`."""
    return Contingency(
        reporter_id=reporter_id,
        unit_id=roster.units["POLSEK-A1"].id,
        level_unit_id=roster.units[level].id,
        shift_id=roster.shifts["PAGI"].id,
        severity="tinggi",
        text=text,
        state="open",
        created_at=at,
        raised_at=at,
        **where,
    )


async def _incidents(session: AsyncSession, roster: Roster) -> None:
    """Hostile sitreps (formula-looking text, a control character) and an escalated contingency."""
    a1, budi = roster.units["POLSEK-A1"].id, roster.person("budi").id
    for minute, text in enumerate(HOSTILE + ["bel\x07l"]):
        session.add(
            Sitrep(
                personnel_id=budi,
                unit_id=a1,
                shift_id=roster.shifts["PAGI"].id,
                text=text,
                category="gangguan",
                created_at=NOW,
                filed_at=NOW + timedelta(minutes=minute),
            )
        )
    item = _contingency(
        roster,
        reporter_id=budi,
        level="POLRES-A",
        text="=cmd|' /C calc'!A0",
        at=NOW,
        tps_id=roster.tps["TPS-A1-002"].id,
    )
    session.add(item)
    await session.flush()
    for version, kind, unit in [(1, "raised", "POLSEK-A1"), (2, "escalated", "POLRES-A")]:
        session.add(
            ContingencyStep(
                contingency_id=item.id,
                version=version,
                kind=kind,
                unit_id=roster.units[unit].id,
                at=NOW + timedelta(minutes=5 * version),
            )
        )
    await session.commit()


async def _journeys(session: AsyncSession, roster: Roster) -> None:
    """KWL-1 underway (three track points, stored out of order; the jetty passed; an alert cleared, one open),
    KWL-2 received with one point, KWL-3 planned with a formula-looking cargo, KWL-9 of POLSEK-A2 in the
    evening shift."""
    escorts = await build_escorts(session, roster, now=NOW)
    kwl1, kwl2, kwl3 = escorts["KWL-1"], escorts["KWL-2"], escorts["KWL-3"]
    kwl1.state, kwl1.departed_at = "berangkat", NOW + timedelta(minutes=5)
    for minutes, lon in [(15, 104.75), (5, 104.70), (10, 104.72)]:
        at = NOW + timedelta(minutes=minutes)
        session.add(EscortTrackPoint(escort_id=kwl1.id, lat=-3.0, lon=lon, at=at))
    via = await session.get(EscortVia, (kwl1.id, 1))
    assert via is not None
    via.passed_at = NOW + timedelta(minutes=15)
    session.add_all(
        [
            EscortAlert(
                escort_id=kwl1.id,
                kind="berhenti",
                opened_at=NOW + timedelta(minutes=20),
                cleared_at=NOW + timedelta(minutes=30),
                clear_reason="moved",
            ),
            EscortAlert(escort_id=kwl1.id, kind="hilang_sinyal", opened_at=NOW + timedelta(minutes=40)),
        ]
    )
    kwl2.state, kwl2.departed_at, kwl2.arrived_at = "diterima", NOW, NOW + timedelta(minutes=30)
    kwl2.received_at, kwl2.received_by_id = NOW + timedelta(minutes=35), roster.person("kapolsek_a1").id
    session.add(EscortTrackPoint(escort_id=kwl2.id, lat=-2.99, lon=104.76, at=NOW))
    kwl3.cargo = '=HYPERLINK("http://x","logistik")'
    session.add(
        Escort(
            code="KWL-9",
            kind="logistik",
            cargo="surat suara",
            unit_id=roster.units["POLSEK-A2"].id,
            from_place_id=kwl1.to_place_id,
            to_tps_id=roster.tps["TPS-A2-001"].id,
            depart_at=NOW + timedelta(hours=7),
            arrive_by=NOW + timedelta(hours=8),
        )
    )
    await session.commit()


async def _export(session: AsyncSession) -> tuple[Roster, ExportFiles]:
    roster = await morning(session)
    await _incidents(session, roster)
    await _journeys(session, roster)
    return roster, await reports.export_shift(
        session, shift_code="PAGI", now=NOW + timedelta(hours=1), settings=SETTINGS
    )


async def test_the_workbook_reloads_with_its_sheets_and_text_stays_text(session: AsyncSession) -> None:
    _, files = await _export(session)
    book = load_workbook(io.BytesIO(files.workbook))
    assert book.sheetnames == ["summary", "checkins", "sitreps", "contingencies", "coverage", "escorts"]
    checkins = list(book["checkins"].iter_rows(values_only=True))
    want = await expected(session, unit_code="POLDA-X", shift_code="PAGI")
    assert len(checkins) - 1 == want.people.assigned
    assert sum(row[8] is not None for row in checkins[1:]) == want.people.checked_in
    budi = next(row for row in checkins if row[3] == "Budi")
    assert (budi[5], budi[9], budi[12]) == ("TPS-A1-001;TPS-A1-002", "TPS-A1-001", True)
    texts = [cell for row in book["sitreps"].iter_rows(min_row=2) for cell in row if cell.column_letter == "H"]
    assert [cell.value for cell in texts] == HOSTILE + ["bell"]
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str) and cell.value[:1] in "=+-@":
                    assert cell.data_type == "s", (sheet.title, cell.coordinate)
    steps = list(book["contingencies"].iter_rows(min_row=2, values_only=True))
    assert [(row[8], row[9], row[10]) for row in steps] == [(1, "raised", "POLSEK-A1"), (2, "escalated", "POLRES-A")]
    coverage = {row[0]: row for row in book["coverage"].iter_rows(min_row=2, values_only=True)}
    assert set(coverage) == {"POLDA-X", "POLRES-A", "POLSEK-A1", "POLSEK-A2", "KODIM-X"}
    header = next(book["coverage"].iter_rows(max_row=1, values_only=True))
    polres = dict(zip(header, coverage["POLRES-A"], strict=True))
    mine = await expected(session, unit_code="POLRES-A", shift_code="PAGI")
    assert (polres["checked_in"], polres["tps_covered"], polres["open_contingencies"]) == (
        mine.people.checked_in,
        sum(c.covered for c in mine.tps.values()),
        sum(mine.open.values()),
    )


@pytest.mark.skipif(shutil.which("libreoffice") is None, reason="LibreOffice is not installed")
async def test_libreoffice_opens_it_and_runs_no_formula(session: AsyncSession, tmp_path: Path) -> None:
    """Every sheet converted to CSV by LibreOffice: the hostile texts come out as typed, not evaluated."""
    _, files = await _export(session)
    (tmp_path / "rekap.xlsx").write_bytes(files.workbook)
    every_sheet = "csv:Text - txt - csv (StarCalc):44,34,UTF8,1,,0,false,true,false,false,false,-1"
    subprocess.run(
        [
            "libreoffice",
            "--headless",
            "--convert-to",
            every_sheet,
            "--outdir",
            str(tmp_path),
            str(tmp_path / "rekap.xlsx"),
        ],
        check=True,
        timeout=180,
        capture_output=True,
    )
    with open(tmp_path / "rekap-sitreps.csv", newline="", encoding="utf-8") as sheet:
        texts = [row[7] for row in csv.reader(sheet)][1:]
    assert texts == HOSTILE + ["bell"]
    assert "=cmd|' /C calc'!A0" in (tmp_path / "rekap-contingencies.csv").read_text(encoding="utf-8")
    assert (tmp_path / "rekap-coverage.csv").read_text(encoding="utf-8").startswith("unit,name,kind,assigned")
    with open(tmp_path / "rekap-escorts.csv", newline="", encoding="utf-8") as sheet:
        escorts = {row[0]: row for row in list(csv.reader(sheet))[1:]}
    assert list(escorts) == ["KWL-1", "KWL-2", "KWL-3"]
    assert escorts["KWL-3"][2] == '=HYPERLINK("http://x","logistik")'


async def test_geojson_states_and_contingencies(session: AsyncSession) -> None:
    roster, files = await _export(session)
    data = json.loads(files.geojson)
    assert data["type"] == "FeatureCollection"
    states = {
        f["properties"]["code"]: f["properties"]["state"] for f in data["features"] if f["properties"]["kind"] == "tps"
    }
    assert states == {"TPS-A1-001": "covered", "TPS-A1-002": "contingency", "TPS-A2-001": "covered"}
    sos = [f for f in data["features"] if f["properties"]["kind"] == "contingency"]
    assert len(sos) == 1 and sos[0]["properties"]["severity"] == "tinggi"
    lat, lon = roster.tps["TPS-A1-002"].lat, roster.tps["TPS-A1-002"].lon
    assert sos[0]["geometry"] == {"type": "Point", "coordinates": [lon, lat]}


async def test_chart_is_a_png_and_check_ins_are_binned_by_the_database(session: AsyncSession) -> None:
    roster, files = await _export(session)
    assert files.chart.startswith(b"\x89PNG\r\n\x1a\n") and len(files.chart) > 10_000
    await checkin(session, roster, "citra", "TPS-A1-002", at=NOW + timedelta(minutes=20))
    start = roster.shifts["PAGI"].starts_at
    bins = await reports.checkins_per_bin(session, shift_id=roster.shifts["PAGI"].id, scope=None, start=start)
    assert bins == {4: 4, 5: 1}  # NOW is 60 minutes after the start; Citra 20 minutes later
    a2 = await reports.checkins_per_bin(
        session, shift_id=roster.shifts["PAGI"].id, scope=roster.units["POLSEK-A2"].id, start=start
    )
    assert a2 == {4: 2}
    assert files.stem == "rekap-all-PAGI-20240214-0900"


async def test_recap_asks_what_status_asks(session: AsyncSession) -> None:
    await morning(session)
    own = await reports.recap_for(session, viewer=await viewer(session, 503), now=NOW, settings=SETTINGS)
    assert isinstance(own, ExportFiles) and own.unit and own.unit.code == "POLSEK-A1"
    sibling = await reports.recap_for(
        session, viewer=await viewer(session, 503), unit_code="POLSEK-A2", now=NOW, settings=SETTINGS
    )
    assert sibling is Refusal.outside
    assert await reports.recap_for(session, viewer=Viewer(None), now=NOW, settings=SETTINGS) is Refusal.not_registered
    polsek = load_workbook(io.BytesIO(own.workbook))
    assert [row[0] for row in polsek["coverage"].iter_rows(min_row=2, values_only=True)] == ["POLSEK-A1"]


async def test_export_names_a_missing_shift(session: AsyncSession) -> None:
    with pytest.raises(ExportError, match="no shift is planned"):
        await reports.export_shift(session, shift_code=None, now=NOW, settings=SETTINGS)
    await morning(session)
    with pytest.raises(ExportError, match="MALAM"):
        await reports.export_shift(session, shift_code="MALAM", now=NOW, settings=SETTINGS)
    current = await reports.export_shift(session, shift_code=None, now=NOW, settings=SETTINGS)
    assert current.shift.code == "PAGI"


async def test_the_escorts_sheet_has_a_row_per_escort_of_the_shift(session: AsyncSession) -> None:
    _, files = await _export(session)
    sheet = list(load_workbook(io.BytesIO(files.workbook))["escorts"].iter_rows(values_only=True))
    header, rows = sheet[0], [dict(zip(sheet[0], row, strict=True)) for row in sheet[1:]]
    assert header[:9] == ("code", "kind", "cargo", "access", "from", "to", "via", "unit", "state")
    assert [row["code"] for row in rows] == ["KWL-1", "KWL-2", "KWL-3"], "KWL-9 leaves in the evening shift"
    kwl1, kwl2, kwl3 = rows
    assert (kwl1["from"], kwl1["to"], kwl1["via"]) == ("PPS-A1", "PPK-A2", "DERMAGA-A1 (passed 2024-02-14 08:15)")
    assert (kwl1["state"], kwl1["unit"], kwl1["track_points"], kwl1["open_alerts"]) == ("berangkat", "POLSEK-A1", 3, 1)
    assert kwl1["depart_at (Asia/Jakarta)"] == datetime(2024, 2, 14, 8, 0)
    assert kwl1["departed_at (Asia/Jakarta)"] == datetime(2024, 2, 14, 8, 5)
    assert kwl1["arrive_by (Asia/Jakarta)"] == datetime(2024, 2, 14, 10, 0)
    assert kwl1["members"] == "Bripda Budi (ketua); Briptu Citra (anggota)"
    assert kwl1["alerts"] == (
        "berhenti opened 2024-02-14 08:20, cleared 2024-02-14 08:30 (moved); hilang_sinyal opened 2024-02-14 08:40"
    )
    assert (kwl2["state"], kwl2["received_by"], kwl2["received_by_unit"]) == (
        "diterima",
        "AKP Kapolsek A1",
        "POLSEK-A1",
    )
    assert kwl2["received_at (Asia/Jakarta)"] == datetime(2024, 2, 14, 8, 35) and kwl2["via"] is None
    assert (kwl3["state"], kwl3["to"], kwl3["departed_at (Asia/Jakarta)"], kwl3["alerts"]) == (
        "terjadwal",
        "TPS-A2-001",
        None,
        None,
    )


async def test_the_contingency_sheet_keeps_the_alerts_siaga_raised_itself(session: AsyncSession) -> None:
    roster = await morning(session)
    await _incidents(session, roster)
    await _journeys(session, roster)
    kwl1 = await session.scalar(select(Escort).where(Escort.code == "KWL-1"))
    assert kwl1 is not None
    at = NOW + timedelta(minutes=20)
    session.add(
        _contingency(
            roster, reporter_id=None, level="POLSEK-A1", text="KWL-1 berhenti 10 menit", at=at, escort_id=kwl1.id
        )
    )
    await session.commit()
    files = await reports.export_shift(session, shift_code="PAGI", now=NOW + timedelta(hours=1), settings=SETTINGS)
    sheet = list(load_workbook(io.BytesIO(files.workbook))["contingencies"].iter_rows(values_only=True))
    rows = [dict(zip(sheet[0], row, strict=True)) for row in sheet[1:]]
    assert [(row["reporter"], row["text"]) for row in rows] == [
        ("Bripda Budi", "=cmd|' /C calc'!A0"),
        ("Bripda Budi", "=cmd|' /C calc'!A0"),
        ("Siaga", "KWL-1 berhenti 10 menit"),
    ], "two steps of the reported one, then the bot's own alert"


async def test_an_escort_still_underway_belongs_to_the_next_shift_too(session: AsyncSession) -> None:
    roster = await morning(session)
    await _journeys(session, roster)
    evening = await reports.export_shift(session, shift_code="SORE", now=NOW + timedelta(hours=6), settings=SETTINGS)
    rows = list(load_workbook(io.BytesIO(evening.workbook))["escorts"].iter_rows(min_row=2, values_only=True))
    assert [row[0] for row in rows] == ["KWL-1", "KWL-9"], "received and planned-for-the-morning ones stay out"
    a2 = await reports.recap_for(session, viewer=await viewer(session, 504), now=NOW, settings=SETTINGS)
    assert isinstance(a2, ExportFiles)
    assert list(load_workbook(io.BytesIO(a2.workbook))["escorts"].iter_rows(min_row=2, values_only=True)) == []
    assert [f for f in json.loads(a2.geojson)["features"] if f["properties"]["kind"] in ("escort", "place")] == []


async def test_geojson_has_a_line_per_escort_track_in_time_order(session: AsyncSession) -> None:
    _, files = await _export(session)
    data = json.loads(files.geojson)
    lines = [f for f in data["features"] if f["geometry"]["type"] == "LineString"]
    assert len(lines) == 1, "KWL-2 has one point, KWL-3 none: no line"
    [line] = lines
    assert line["geometry"]["coordinates"] == [[104.7, -3.0], [104.72, -3.0], [104.75, -3.0]]
    assert line["properties"] == {
        "kind": "escort",
        "code": "KWL-1",
        "cargo": "12 kotak suara",
        "state": "berangkat",
        "unit": "POLSEK-A1",
        "from": "PPS-A1",
        "to": "PPK-A2",
        "points": 3,
        "first_at": (NOW + timedelta(minutes=5)).isoformat(),
        "last_at": (NOW + timedelta(minutes=15)).isoformat(),
    }
    places = {f["properties"]["code"]: f for f in data["features"] if f["properties"]["kind"] == "place"}
    assert set(places) == {"PPS-A1", "DERMAGA-A1", "PPK-A2"}
    assert places["DERMAGA-A1"]["geometry"] == {"type": "Point", "coordinates": [104.75, -3.0]}
    assert places["DERMAGA-A1"]["properties"]["place_kind"] == "dermaga"
    for feature in data["features"]:
        assert feature["type"] == "Feature" and set(feature) == {"type", "geometry", "properties"}
        coordinates = feature["geometry"]["coordinates"]
        pairs = coordinates if feature["geometry"]["type"] == "LineString" else [coordinates]
        assert all(-180 <= lon <= 180 and -90 <= lat <= 90 for lon, lat in pairs)
