"""`siaga import` of places, escorts and escort_members: the roster's rules, every bad row named by row and column.

Builds on the province of tests/test_import.py; every rejection leaves the
database exactly as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import AuditLog, Escort, EscortMember, EscortVia, Personnel, Place, Tps
from tests.test_import import Province, base, dump, run, write_csv, write_xlsx

PLACES = [
    ["PPS-A1", "PPS Sungai Rejo", "pps", -2.985, 104.765, "POLSEK-A1"],
    ["DERMAGA-A1", "Dermaga Sungai Rejo", "dermaga", -3.0, 104.8, "POLSEK-A1"],
    ["PPK-A", "PPK Kec A1", "ppk", -3.05, 104.85, "POLRES-A"],
]
ESCORTS = [
    [
        "KWL-001",
        "kotak_suara",
        "12 kotak suara",
        "PPS-A1",
        "PPK-A",
        "DERMAGA-A1",
        "POLSEK-A1",
        "2024-02-14T22:00:00+07:00",
        "2024-02-15T02:00:00+07:00",
        "darat_air",
    ],
    [
        "KWL-002",
        "kotak_suara",
        "3 kotak suara DPR",
        "TPS-A1-001",
        "PPS-A1",
        None,
        "POLSEK-A1",
        "2024-02-14T20:00:00+07:00",
        "2024-02-14T21:00:00+07:00",
        "darat",
    ],
]
MEMBERS = [
    ["KWL-001", "85010001", "ketua"],
    ["KWL-001", "85010002", "anggota"],
    ["KWL-002", "85010002", "ketua"],
]


def province(**changes: list[list[Any]]) -> Province:
    data = base()
    data.update(places=[list(r) for r in PLACES], escorts=[list(r) for r in ESCORTS])
    data["escort_members"] = [list(r) for r in MEMBERS]
    data.update(changes)
    return data


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
async def test_a_clean_import_writes_places_escorts_vias_and_members(
    session: AsyncSession, tmp_path: Path, kind: str
) -> None:
    data = province()
    paths = write_xlsx(tmp_path / "roster.xlsx", data) if kind == "xlsx" else write_csv(tmp_path / "csv", data)
    report = await run(session, paths)
    assert report.ok, report.format()
    assert {e: c.created for e, c in report.counts.items() if e in ("places", "escorts", "escort_members")} == {
        "places": 3,
        "escorts": 2,
        "escort_members": 3,
    }
    escort = await session.scalar(select(Escort).where(Escort.code == "KWL-001"))
    assert escort is not None
    assert (escort.state, escort.access, escort.cargo) == ("terjadwal", "darat_air", "12 kotak suara")
    assert escort.depart_at.isoformat() == "2024-02-14T15:00:00+00:00"
    ppk = await session.scalar(select(Place).where(Place.code == "PPK-A"))
    pps = await session.scalar(select(Place).where(Place.code == "PPS-A1"))
    assert ppk is not None and pps is not None
    assert (escort.from_place_id, escort.to_place_id, escort.from_tps_id) == (pps.id, ppk.id, None)
    vias = list(await session.scalars(select(EscortVia).where(EscortVia.escort_id == escort.id)))
    assert [(v.seq, v.place_id is not None) for v in vias] == [(1, True)]
    other = await session.scalar(select(Escort).where(Escort.code == "KWL-002"))
    tps = await session.scalar(select(Tps).where(Tps.code == "TPS-A1-001"))
    assert other is not None and tps is not None and other.from_tps_id == tps.id
    roles = {
        (e, n, r)
        for e, n, r in await session.execute(
            select(Escort.code, Personnel.nrp, EscortMember.role)
            .join(Escort, Escort.id == EscortMember.escort_id)
            .join(Personnel, Personnel.id == EscortMember.personnel_id)
        )
    }
    assert roles == {tuple(row) for row in MEMBERS}


async def test_reimport_changes_nothing_and_a_member_list_is_replaced(session: AsyncSession, tmp_path: Path) -> None:
    assert (await run(session, write_xlsx(tmp_path / "a.xlsx", province()))).ok
    again = await run(session, write_xlsx(tmp_path / "b.xlsx", province()))
    assert again.ok
    for entity in ("places", "escorts", "escort_members"):
        counts = again.counts[entity]
        assert (counts.created, counts.updated, counts.deleted) == (0, 0, 0), entity
    changed = province(escort_members=[["KWL-001", "85010002", "ketua"], ["KWL-001", "3000000001", "anggota"]])
    changed["escorts"][0][2] = "14 kotak suara"
    changed["escorts"][0][5] = None
    report = await run(session, write_xlsx(tmp_path / "c.xlsx", changed))
    assert report.ok, report.format()
    members = report.counts["escort_members"]
    assert (members.created, members.updated, members.deleted) == (1, 1, 1)
    assert report.counts["escorts"].updated == 1
    escort = await session.scalar(select(Escort).where(Escort.code == "KWL-001"))
    assert escort is not None and escort.cargo == "14 kotak suara"
    assert list(await session.scalars(select(EscortVia).where(EscortVia.escort_id == escort.id))) == []
    kept = await session.scalar(
        select(EscortMember.role).join(Escort, Escort.id == EscortMember.escort_id).where(Escort.code == "KWL-002")
    )
    assert kept == "ketua"  # KWL-002 was not named in the member rows: untouched
    audit = await session.scalar(select(AuditLog).where(AuditLog.action == "escort.updated"))
    assert audit is not None and audit.detail["changes"]["cargo"] == ["12 kotak suara", "14 kotak suara"]


async def test_every_bad_row_is_named_by_row_and_column_and_nothing_is_written(
    session: AsyncSession, tmp_path: Path
) -> None:
    before = await dump(session)
    bad = province(
        places=[
            *PLACES,
            ["PPS-X", "PPS X", "kantor", 95.0, 104.8, "POLSEK-ZZ"],  # row 5: kind, lat, unit
            ["TPS-A1-002", "Same code as a TPS", "lainnya", -3.0, 104.8, "POLSEK-A1"],  # row 6
            ["PPK-A", "Duplicate", "ppk", -3.0, 104.8, "POLRES-A"],  # row 7
        ],
        escorts=[
            *ESCORTS,
            [
                "KWL-003",
                "kapal",
                "2 kotak",
                "PPS-A1",
                "PPK-A",
                None,
                "POLSEK-A1",
                "2024-02-14T22:00:00+07:00",
                "2024-02-14T21:00:00+07:00",
                "udara",
            ],  # row 4: what one row shows alone
            [
                "KWL-004",
                "logistik",
                "surat suara",
                "NOWHERE",
                "PPK-A",
                "DERMAGA-A1;GHOST",
                "POLSEK-A9",
                "2024-02-13T08:00:00+07:00",
                "2024-02-13T12:00:00+07:00",
                "darat",
            ],  # row 5: what needs the other rows
        ],
        escort_members=[
            *MEMBERS,
            ["KWL-009", "99999999", "pengawal"],  # row 5
            ["KWL-001", "3000000001", "ketua"],  # row 6: a second ketua
            ["KWL-001", "85010001", "anggota"],  # row 7: same person twice
        ],
    )
    report = await run(session, write_xlsx(tmp_path / "bad.xlsx", bad))
    assert not report.ok
    found = {(e.sheet, e.row, e.column) for e in report.errors}
    assert found == {
        ("bad.xlsx [places]", 5, "kind"),
        ("bad.xlsx [places]", 5, "lat"),
        ("bad.xlsx [places]", 6, "code"),
        ("bad.xlsx [places]", 7, "code"),
        ("bad.xlsx [escorts]", 4, "kind"),
        ("bad.xlsx [escorts]", 4, "arrive_by"),
        ("bad.xlsx [escorts]", 4, "access"),
        ("bad.xlsx [escorts]", 5, "from_code"),
        ("bad.xlsx [escorts]", 5, "via_codes"),
        ("bad.xlsx [escorts]", 5, "unit_code"),
        ("bad.xlsx [escort_members]", 5, "role"),
        ("bad.xlsx [escort_members]", 6, "role"),
        ("bad.xlsx [escort_members]", 7, "nrp"),
    }
    text = report.format()
    assert "arrive_by must be after depart_at" in text
    assert "names no place or TPS: 'GHOST'" in text
    assert "unknown place or TPS 'NOWHERE'" in text
    assert "also a TPS code" in text
    assert "has a ketua already, on row 2" in text
    assert "99999999" not in text  # an NRP is never echoed
    assert await dump(session) == before


async def test_unknown_escort_and_nrp_of_member_rows_alone(session: AsyncSession, tmp_path: Path) -> None:
    assert (await run(session, write_xlsx(tmp_path / "a.xlsx", province()))).ok
    members = {"escort_members": [["KWL-404", "85010001", "anggota"], ["KWL-001", "77777777", "anggota"]]}
    report = await run(session, write_csv(tmp_path / "csv", members))
    assert not report.ok
    assert [(e.sheet, e.row, e.column) for e in report.errors] == [
        ("escort_members.csv", 2, "escort_code"),
        ("escort_members.csv", 3, "nrp"),
    ]
    assert "unknown escort 'KWL-404'" in report.format()
