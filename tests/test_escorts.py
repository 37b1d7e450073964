"""Pengawalan on a real database: positions, thinning, vias, arrival, each alert once and cleared, serah terima.

The roster is tests/factories.py's with its escorts: KWL-1 goes by road from
PPS-A1 to DERMAGA-A1 and by water to PPK-A2 (11 km east, 0.001 degree of
longitude = 111 m), led by Budi with Citra; KWL-2 is Dedi's from TPS-A1-001.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import EscortSettings
from bot.services import escorts
from models import AuditLog, Escort, EscortAlert, EscortTrackPoint
from tests.factories import NOW, Roster, build_escorts, build_roster, link

SETTINGS = EscortSettings()
LAT = -3.0


def east(meters: float) -> float:
    """The longitude `meters` east of PPS-A1 on the escort's line."""
    return 104.700 + meters / 111_000


@pytest.fixture
async def roster(session: AsyncSession) -> Roster:
    roster = await build_roster(session)
    await build_escorts(session, roster)
    return roster


async def position(
    session: AsyncSession, roster: Roster, who: str, meters: float, at: datetime, *, lat: float = LAT
) -> escorts.PositionResult | None:
    result = await escorts.record_position(
        session,
        personnel_id=roster.person(who).id,
        lat=lat,
        lon=east(meters),
        at=at,
        now=max(at, NOW),
        settings=SETTINGS,
    )
    await session.commit()
    return result


async def sweep(session: AsyncSession, at: datetime) -> list[tuple[str, str]]:
    opened = await escorts.sweep_alerts(session, settings=SETTINGS, now=at)
    await session.commit()
    return sorted((episode.escort_code, episode.kind) for episode in opened)


async def escort(session: AsyncSession, code: str) -> Escort:
    found = await session.scalar(select(Escort).where(Escort.code == code).execution_options(populate_existing=True))
    assert found is not None
    return found


def minutes(n: float) -> datetime:
    return NOW + timedelta(minutes=n)


async def test_a_position_is_an_escorts_only_for_a_member_underway_or_leaving(
    session: AsyncSession, roster: Roster
) -> None:
    assert await position(session, roster, "eko", 1_000, NOW) is None  # no escort of his
    assert await position(session, roster, "budi", 1_000, NOW - timedelta(hours=2)) is None  # a check-in hours before
    # KWL-2 (dedi) was due at NOW+1h and never left: the morning after, his location is a check-in again
    assert await position(session, roster, "dedi", 1_000, NOW + timedelta(hours=9)) is None
    assert (await escort(session, "KWL-2")).state == "terjadwal"
    assert await position(session, roster, "budi", 100, NOW) is None  # still at PPS-A1
    assert (await escort(session, "KWL-1")).state == "terjadwal"
    left = await position(session, roster, "budi", 1_000, minutes(1))
    assert left is not None and left.departed and left.latest and left.state == "berangkat"
    assert left.escort_code == "KWL-1"
    stored = await escort(session, "KWL-1")
    assert (stored.state, stored.departed_at) == ("berangkat", minutes(1))
    again = await position(session, roster, "citra", 1_200, minutes(2))  # any member's position counts
    assert again is not None and not again.departed and again.escort_code == "KWL-1"


async def test_track_points_are_thinned_to_one_per_30_seconds_or_50_metres(
    session: AsyncSession, roster: Roster
) -> None:
    for second in range(0, 120, 10):  # 12 positions, 10 m apart, every 10 s
        await position(session, roster, "budi", 1_000 + second, NOW + timedelta(seconds=second))
    jump = await position(session, roster, "budi", 1_200, NOW + timedelta(seconds=125))  # 80 m within 5 s
    assert jump is not None and jump.kept
    points = list(await session.scalars(select(EscortTrackPoint).order_by(EscortTrackPoint.at)))
    assert [int((p.at - NOW).total_seconds()) for p in points] == [0, 30, 60, 90, 125]


async def test_via_passed_water_leg_and_arrival(session: AsyncSession, roster: Roster) -> None:
    await position(session, roster, "budi", 1_000, minutes(1))
    passing = await position(session, roster, "budi", 5_450, minutes(20))  # 100 m before the dermaga
    assert passing is not None and passing.passed == ("DERMAGA-A1",)
    assert (await escort(session, "KWL-1")).on_water
    detail = await escorts.escort_detail(session, code="kwl-1", now=minutes(20), settings=SETTINGS)
    assert detail is not None and [v.passed_at for v in detail.route.vias] == [minutes(20)]
    assert detail.summary.remaining_m == pytest.approx(5_650, abs=30)
    arrived = await position(session, roster, "citra", 10_900, minutes(50))  # 200 m before PPK-A2
    assert arrived is not None and arrived.arrived and arrived.state == "tiba"
    stored = await escort(session, "KWL-1")
    assert (stored.state, stored.arrived_at) == ("tiba", minutes(50))
    assert await position(session, roster, "budi", 11_000, minutes(51)) is None  # no longer underway


async def test_a_position_older_than_the_last_counts_for_the_track_only(session: AsyncSession, roster: Roster) -> None:
    await position(session, roster, "budi", 1_000, minutes(1))
    await position(session, roster, "budi", 3_000, minutes(10))
    late = await position(session, roster, "citra", 2_000, minutes(5))
    assert late is not None and late.kept and not late.latest
    stored = await escort(session, "KWL-1")
    assert (stored.last_at, stored.last_lon) == (minutes(10), pytest.approx(east(3_000)))
    assert stored.anchor_at == minutes(10)
    track = await session.scalar(select(func.count()).select_from(EscortTrackPoint))
    assert track == 3


async def test_berhenti_opens_once_at_its_time_and_clears_when_the_escort_moves(
    session: AsyncSession, roster: Roster
) -> None:
    await position(session, roster, "budi", 1_000, minutes(0))
    for minute in range(1, 15):
        await position(session, roster, "budi", 1_000 + minute * 5, minutes(minute))  # creeping within 200 m
        assert await sweep(session, minutes(minute) + timedelta(seconds=30)) == []
    await position(session, roster, "budi", 1_080, minutes(15))
    assert await sweep(session, minutes(15)) == [("KWL-1", "berhenti")]
    for minute in range(16, 25):
        await position(session, roster, "budi", 1_090, minutes(minute))
        assert await sweep(session, minutes(minute)) == []  # the same episode: never again while open
    moved = await position(session, roster, "budi", 1_500, minutes(25))
    assert moved is not None and [(c.kind, c.clear_reason) for c in moved.cleared] == [("berhenti", "moved")]
    assert moved.cleared[0].severity == "sedang"
    assert await sweep(session, minutes(26)) == []
    for minute in range(27, 41):
        await position(session, roster, "budi", 1_500, minutes(minute))
    assert await sweep(session, minutes(40)) == [("KWL-1", "berhenti")]  # stopped again: a new episode
    episodes = list(await session.scalars(select(EscortAlert).order_by(EscortAlert.id)))
    assert [(e.kind, e.opened_at, e.cleared_at) for e in episodes] == [
        ("berhenti", minutes(15), minutes(25)),
        ("berhenti", minutes(40), None),
    ]


async def test_hilang_sinyal_after_silent_minutes_longer_on_water_cleared_by_a_position(
    session: AsyncSession, roster: Roster
) -> None:
    await position(session, roster, "dedi", 500, minutes(0), lat=-2.99)  # KWL-2 leaves TPS-A1-001
    await position(session, roster, "budi", 5_450, minutes(0))  # KWL-1 at the dermaga: on the water from here
    assert await sweep(session, minutes(9.9)) == []
    assert await sweep(session, minutes(10)) == [("KWL-2", "hilang_sinyal")]
    assert await sweep(session, minutes(20)) == []  # silent is not also stopped, and once is once
    assert await sweep(session, minutes(44.9)) == []
    assert await sweep(session, minutes(45)) == [("KWL-1", "hilang_sinyal")]
    back = await position(session, roster, "dedi", 520, minutes(46), lat=-2.99)
    assert back is not None and [(c.kind, c.clear_reason) for c in back.cleared] == [("hilang_sinyal", "position")]


async def test_terlambat_once_for_a_planned_escort_and_cleared_by_arrival(
    session: AsyncSession, roster: Roster
) -> None:
    assert await sweep(session, minutes(59)) == []
    assert await sweep(session, minutes(60)) == [("KWL-2", "terlambat")]
    assert await sweep(session, minutes(61)) == []
    result = await escorts.arrive(
        session,
        escort_id=(await escort(session, "KWL-2")).id,
        personnel_id=roster.person("dedi").id,
        now=minutes(70),
        settings=SETTINGS,
    )
    await session.commit()
    assert result.outcome == escorts.ActionOutcome.done
    assert [(c.kind, c.clear_reason) for c in result.cleared] == [("terlambat", "arrived")]


async def test_menyimpang_off_the_corridor_once_and_back_on_route(session: AsyncSession, roster: Roster) -> None:
    await position(session, roster, "budi", 1_000, minutes(1))
    off = await position(session, roster, "budi", 3_000, minutes(5), lat=-3.04)  # 4.4 km south of the line
    assert off is not None and [(o.kind, o.severity) for o in off.opened] == [("menyimpang", "tinggi")]
    still = await position(session, roster, "budi", 3_500, minutes(6), lat=-3.04)
    assert still is not None and still.opened == ()
    back = await position(session, roster, "budi", 4_000, minutes(8), lat=-3.01)
    assert back is not None and [(c.kind, c.clear_reason) for c in back.cleared] == [("menyimpang", "on_route")]


async def test_two_workers_sweeping_at_once_open_each_episode_once(
    sessions: async_sessionmaker[AsyncSession], roster: Roster
) -> None:
    async def one() -> list[tuple[str, str]]:
        async with sessions() as session:
            return await sweep(session, minutes(120))

    first, second = await asyncio.gather(one(), one())
    assert sorted(first + second) == [("KWL-1", "terlambat"), ("KWL-2", "terlambat")]


async def test_depart_and_arrive_buttons_are_idempotent_and_for_members_only(
    session: AsyncSession, roster: Roster
) -> None:
    kwl1 = (await escort(session, "KWL-1")).id
    refused = await escorts.depart(session, escort_id=kwl1, personnel_id=roster.person("eko").id, now=NOW)
    assert refused.outcome == escorts.ActionOutcome.not_member
    first = await escorts.depart(session, escort_id=kwl1, personnel_id=roster.person("budi").id, now=NOW)
    second = await escorts.depart(session, escort_id=kwl1, personnel_id=roster.person("citra").id, now=minutes(1))
    await session.commit()
    assert (first.outcome, second.outcome) == (escorts.ActionOutcome.done, escorts.ActionOutcome.already)
    assert second.escort is not None and second.escort.departed_at == NOW
    assert (await escorts.depart(session, escort_id=99_999, personnel_id=1, now=NOW)).outcome == "not_found"
    done = await escorts.arrive(
        session, escort_id=kwl1, personnel_id=roster.person("budi").id, now=minutes(40), settings=SETTINGS
    )
    again = await escorts.arrive(
        session, escort_id=kwl1, personnel_id=roster.person("budi").id, now=minutes(41), settings=SETTINGS
    )
    await session.commit()
    assert (done.outcome, again.outcome) == (escorts.ActionOutcome.done, escorts.ActionOutcome.already)
    assert again.escort is not None and (again.escort.state, again.escort.arrived_at) == ("tiba", minutes(40))


async def receive(session: AsyncSession, roster: Roster, code: str, who: str, at: datetime) -> escorts.ReceiveResult:
    result = await escorts.receive(session, code=code, personnel_id=roster.person(who).id, now=at, settings=SETTINGS)
    await session.commit()
    return result


async def test_serah_terima_refusals_success_and_the_chain_of_custody(session: AsyncSession, roster: Roster) -> None:
    for key, user in (("eko", 501), ("budi", 502), ("kapolres", 503), ("kapolsek_a2", 504)):
        await link(session, roster.person(key), user)
    assert (await receive(session, roster, "KWL-404", "eko", NOW)).outcome == "not_found"
    assert (await receive(session, roster, "KWL-1", "eko", NOW)).outcome == "not_departed"
    await position(session, roster, "budi", 1_000, minutes(1))
    await position(session, roster, "budi", 10_900, minutes(50))
    assert (await receive(session, roster, "KWL-1", "fajar", minutes(55))).outcome == "not_registered"
    assert (await receive(session, roster, "KWL-1", "budi", minutes(55))).outcome == "own_escort"
    assert (await receive(session, roster, "KWL-1", "kapolres", minutes(55))).outcome == "not_allowed"  # above, not in
    done = await receive(session, roster, "kwl-1", "eko", minutes(55))
    assert done.outcome == escorts.ReceiveOutcome.received
    assert (done.cargo, done.received_at) == ("12 kotak suara", minutes(55))
    assert done.place is not None and done.place.code == "PPK-A2"
    assert done.lead is not None and (done.lead.name, done.lead.chat_id) == ("Budi", 502)
    assert done.received_by is not None and (done.received_by.name, done.received_by.chat_id) == ("Eko", 501)
    again = await receive(session, roster, "KWL-1", "kapolsek_a2", minutes(57))
    assert again.outcome == escorts.ReceiveOutcome.already
    assert again.received_by is not None and again.received_by.name == "Eko" and again.received_at == minutes(55)
    chain = await session.scalar(select(AuditLog).where(AuditLog.action == "escort.received"))
    assert chain is not None and chain.actor_id == roster.person("eko").id
    assert chain.detail["handed_over_by"]["name"] == "Bripda Budi"
    assert chain.detail["received_by"]["name"] == "Bripka Eko"
    assert (chain.detail["from"], chain.detail["to"], chain.detail["cargo"]) == ("PPS-A1", "PPK-A2", "12 kotak suara")
    assert chain.detail["at"] == minutes(55).isoformat()
    assert (await escort(session, "KWL-1")).state == "diterima"


async def test_at_a_tps_destination_its_guards_and_secondary_units_receive(
    session: AsyncSession, roster: Roster
) -> None:
    for key, user in (("eko", 601), ("kapolsek_a1", 602), ("kapolres", 603)):
        await link(session, roster.person(key), user)
    kwl3 = (await escort(session, "KWL-3")).id
    await escorts.depart(session, escort_id=kwl3, personnel_id=roster.person("citra").id, now=minutes(60))
    await session.commit()
    assert (await receive(session, roster, "KWL-3", "kapolres", minutes(90))).outcome == "not_allowed"
    secondary = await receive(session, roster, "KWL-3", "kapolsek_a1", minutes(90))  # POLSEK-A1: a secondary unit
    assert secondary.outcome == "received"
    stored = await escort(session, "KWL-3")
    assert (stored.state, stored.arrived_at) == ("diterima", minutes(90))  # receiving an escort underway arrives it


async def test_views_list_underway_first_with_what_is_left_to_go(session: AsyncSession, roster: Roster) -> None:
    await position(session, roster, "budi", 2_000, minutes(1))
    units = [roster.units["POLRES-A"].id]
    listed = await escorts.escorts_of_units(session, unit_ids=units, now=minutes(3))
    assert [(e.code, e.state) for e in listed] == [
        ("KWL-1", "berangkat"),
        ("KWL-2", "terjadwal"),
        ("KWL-3", "terjadwal"),
    ]
    first = listed[0]
    assert first.position_age == timedelta(minutes=2)
    assert first.remaining_m == pytest.approx(9_100, abs=40)  # 3.55 km to the dermaga, 5.55 km on the water
    assert await escorts.escorts_of_units(session, unit_ids=[roster.units["POLSEK-A2"].id], now=NOW) == []
    counts = await escorts.escort_counts(session, unit_ids=units)
    assert (counts.berangkat, counts.terjadwal, counts.total) == (1, 2, 3)
    mine = await escorts.escorts_of_member(session, personnel_id=roster.person("citra").id, now=NOW)
    assert [(m.escort.code, m.role) for m in mine] == [("KWL-1", "anggota"), ("KWL-3", "ketua")]


async def test_a_position_underway_costs_a_few_statements(session: AsyncSession, roster: Roster) -> None:
    await position(session, roster, "budi", 1_000, minutes(1))
    statements: list[str] = []

    def spy(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement.split()[0].upper())

    sync_engine = session.bind.sync_engine  # type: ignore[union-attr]
    event.listen(sync_engine, "before_cursor_execute", spy)
    try:
        await position(session, roster, "budi", 1_400, minutes(2))
    finally:
        event.remove(sync_engine, "before_cursor_execute", spy)
    # The escort (locked, with whether it has open episodes) and its vias; the track point, the escort row.
    # No episode is open, so none is asked to end.
    assert sorted(s for s in statements if s not in ("BEGIN", "COMMIT")) == ["INSERT", "SELECT", "SELECT", "UPDATE"]
