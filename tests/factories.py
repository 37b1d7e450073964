"""A small, hand-made roster whose every number a test can know by heart.

    POLDA-X (admin Ani, komandan Kapolda)
    └── POLRES-A (komandan Kapolres)
        ├── POLSEK-A1 (komandan Kapolsek A1; anggota Budi, Citra; linmas Dedi)
        │     TPS-A1-001 (rawan, darat)   TPS-A1-002 (sangat_rawan, air)
        └── POLSEK-A2 (komandan Kapolsek A2; anggota Eko; TNI on BKO Fajar)
              TPS-A2-001 (kurang_rawan, darat; border TPS, secondary POLSEK-A1)
    KODIM-X (TNI home unit of Fajar)

Shifts: PAGI runs NOW-1h .. NOW+5h, SORE NOW+5h .. NOW+12h.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.units import rebuild_closure
from models import Assignment, Escort, EscortMember, EscortVia, Personnel, Place, Shift, Tps, TpsSecondaryUnit, Unit

NOW = datetime(2024, 2, 14, 1, 0, tzinfo=UTC)  # 08:00 WIB on voting day

TPS_PLACES = {
    "TPS-A1-001": (-2.990000, 104.760000),
    "TPS-A1-002": (-3.010000, 104.800000),
    "TPS-A2-001": (-3.050000, 104.700000),
}


@dataclass
class Roster:
    units: dict[str, Unit] = field(default_factory=dict)
    people: dict[str, Personnel] = field(default_factory=dict)
    tps: dict[str, Tps] = field(default_factory=dict)
    shifts: dict[str, Shift] = field(default_factory=dict)

    def person(self, name: str) -> Personnel:
        return self.people[name]


async def build_roster(session: AsyncSession, *, now: datetime = NOW) -> Roster:
    roster = Roster()

    def unit(code: str, kind: str, parent: str | None, force: str = "polri") -> None:
        roster.units[code] = Unit(
            code=code,
            name=code.replace("-", " ").title(),
            kind=kind,
            force=force,
            parent=roster.units[parent] if parent else None,
            region="Test",
        )

    unit("POLDA-X", "polda", None)
    unit("POLRES-A", "polres", "POLDA-X")
    unit("POLSEK-A1", "polsek", "POLRES-A")
    unit("POLSEK-A2", "polsek", "POLRES-A")
    unit("KODIM-X", "kodim", None, force="tni")
    session.add_all(roster.units.values())
    await session.flush()
    await rebuild_closure(session)

    people = [
        ("ani", "10000001", "AKBP", "polri", "POLDA-X", "admin", None),
        ("kapolda", "10000002", "Irjen", "polri", "POLDA-X", "komandan", None),
        ("kapolres", "10000003", "AKBP", "polri", "POLRES-A", "komandan", None),
        ("kapolsek_a1", "10000004", "AKP", "polri", "POLSEK-A1", "komandan", None),
        ("kapolsek_a2", "10000005", "AKP", "polri", "POLSEK-A2", "komandan", None),
        ("budi", "10000006", "Bripda", "polri", "POLSEK-A1", "anggota", None),
        ("citra", "10000007", "Briptu", "polri", "POLSEK-A1", "anggota", None),
        ("dedi", "LM0000001", "Linmas", "linmas", "POLSEK-A1", "anggota", None),
        ("eko", "10000008", "Bripka", "polri", "POLSEK-A2", "anggota", None),
        ("fajar", "3100000001", "Serda", "tni", "POLSEK-A2", "anggota", "KODIM-X"),
    ]
    for key, nrp, rank, force, unit_code, role, home in people:
        roster.people[key] = Personnel(
            nrp=nrp,
            name=key.replace("_", " ").title(),
            rank=rank,
            force=force,
            unit=roster.units[unit_code],
            role=role,
            phone=f"+62812{nrp[-7:]}",
            home_unit=roster.units[home] if home else None,
        )
    places = [
        ("TPS-A1-001", "001", "rawan", "darat", "POLSEK-A1"),
        ("TPS-A1-002", "002", "sangat_rawan", "air", "POLSEK-A1"),
        ("TPS-A2-001", "001", "kurang_rawan", "darat", "POLSEK-A2"),
    ]
    for code, number, kerawanan, access, unit_code in places:
        lat, lon = TPS_PLACES[code]
        roster.tps[code] = Tps(
            code=code,
            number=number,
            village=f"Desa {code[-3:]}",
            district="Kec. Uji",
            regency="Kab. Uji",
            lat=lat,
            lon=lon,
            kerawanan=kerawanan,
            access=access,
            unit=roster.units[unit_code],
        )
    roster.shifts["PAGI"] = Shift(
        code="PAGI",
        name="Pemungutan",
        phase="pemungutan",
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=5),
    )
    roster.shifts["SORE"] = Shift(
        code="SORE",
        name="Penghitungan",
        phase="penghitungan",
        starts_at=now + timedelta(hours=5),
        ends_at=now + timedelta(hours=12),
    )
    session.add_all([*roster.people.values(), *roster.tps.values(), *roster.shifts.values()])
    await session.flush()
    session.add(TpsSecondaryUnit(tps_id=roster.tps["TPS-A2-001"].id, unit_id=roster.units["POLSEK-A1"].id))
    duties = [
        ("budi", "TPS-A1-001"),
        ("budi", "TPS-A1-002"),
        ("citra", "TPS-A1-002"),
        ("dedi", "TPS-A1-001"),
        ("eko", "TPS-A2-001"),
        ("fajar", "TPS-A2-001"),
    ]
    for shift in roster.shifts.values():
        for key, code in duties:
            session.add(Assignment(personnel_id=roster.people[key].id, tps_id=roster.tps[code].id, shift_id=shift.id))
    await session.commit()
    return roster


async def link(session: AsyncSession, person: Personnel, telegram_user_id: int, *, now: datetime = NOW) -> None:
    """Register a person directly, for tests about what comes after registration."""
    person.telegram_user_id = telegram_user_id
    person.registered_at = now
    session.add(person)
    await session.commit()


# --- escorts (pengawalan) ------------------------------------------------------------------------
#
#   KWL-1  PPS-A1 (-3.000, 104.700) -> DERMAGA-A1 (-3.000, 104.750) -> PPK-A2 (-3.000, 104.800)
#          unit POLSEK-A1, darat_air, budi (ketua) and citra; departs NOW, due NOW+2h
#   KWL-2  TPS-A1-001 -> PPS-A1, unit POLSEK-A1, darat, dedi (ketua); departs NOW, due NOW+1h
#   KWL-3  PPS-A1 -> TPS-A2-001 (the border TPS), unit POLSEK-A1, darat, citra (ketua); departs NOW+1h
# PPS-A1 and DERMAGA-A1 belong to POLSEK-A1, PPK-A2 to POLSEK-A2. 0.001 degree of longitude here is 111 m.

ESCORT_PLACES = {
    "PPS-A1": ("PPS Desa Uji", "pps", -3.000, 104.700, "POLSEK-A1"),
    "DERMAGA-A1": ("Dermaga Uji", "dermaga", -3.000, 104.750, "POLSEK-A1"),
    "PPK-A2": ("PPK Kec. Uji", "ppk", -3.000, 104.800, "POLSEK-A2"),
}


async def build_escorts(session: AsyncSession, roster: Roster, *, now: datetime = NOW) -> dict[str, Escort]:
    places = {
        code: Place(code=code, name=name, kind=kind, lat=lat, lon=lon, unit_id=roster.units[unit].id)
        for code, (name, kind, lat, lon, unit) in ESCORT_PLACES.items()
    }
    session.add_all(places.values())
    await session.flush()
    plans = [
        ("KWL-1", "12 kotak suara", ("place", "PPS-A1"), ("place", "PPK-A2"), "darat_air", now, 2, ["budi", "citra"]),
        ("KWL-2", "3 kotak suara", ("tps", "TPS-A1-001"), ("place", "PPS-A1"), "darat", now, 1, ["dedi"]),
        (
            "KWL-3",
            "logistik TPS",
            ("place", "PPS-A1"),
            ("tps", "TPS-A2-001"),
            "darat",
            now + timedelta(hours=1),
            2,
            ["citra"],
        ),
    ]
    escorts = {}
    for code, cargo, origin, destination, access, depart_at, hours, _ in plans:
        ends = {}
        for side, (kind, key) in (("from", origin), ("to", destination)):
            ends[f"{side}_{kind}_id"] = places[key].id if kind == "place" else roster.tps[key].id
        escorts[code] = Escort(
            code=code,
            kind="kotak_suara",
            cargo=cargo,
            unit_id=roster.units["POLSEK-A1"].id,
            depart_at=depart_at,
            arrive_by=depart_at + timedelta(hours=hours),
            access=access,
            **ends,
        )
    session.add_all(escorts.values())
    await session.flush()
    session.add(EscortVia(escort_id=escorts["KWL-1"].id, seq=1, place_id=places["DERMAGA-A1"].id))
    for code, (_, _, _, _, _, _, _, crew) in zip(escorts, plans, strict=True):
        for index, key in enumerate(crew):
            role = "ketua" if index == 0 else "anggota"
            session.add(EscortMember(escort_id=escorts[code].id, personnel_id=roster.people[key].id, role=role))
    await session.commit()
    return escorts
