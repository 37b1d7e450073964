"""The command group's live location per escort underway, on a real database: started, moved, stopped, in budget.

Thirty escorts of POLSEK-A1 go east from PPS-A1, each led by its own
pengawal, every one posting a position every 30 s. The sweep runs every
3 s of a virtual clock and `_deliver` does what a dispatcher does. What a
group would notice: each escort's pin appears once, moves to the latest
position, stops on arrival, and no minute brings the group more live
calls than its share (half of its 20 per minute).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings, load_settings
from bot.services import escorts, outbox
from bot.services.live_locations import share
from bot.services.outbox import SendResult, enqueue
from flows.live_locations import sweep_live_locations
from models import CommandGroup, Escort, EscortMember, Outbox, Personnel
from models.enums import Priority
from tests.factories import NOW, build_escorts, build_roster

A1 = -1001
CREW = 30
LAT = -3.0


@pytest.fixture
def settings() -> Settings:
    return load_settings(None)


@pytest.fixture
async def crews(session: AsyncSession) -> dict[str, int]:
    """Escort code -> its pengawal's personnel id; KWL-1 and its siblings all planned to depart at NOW."""
    roster = await build_roster(session)
    built = await build_escorts(session, roster)
    template = built["KWL-1"]
    session.add(CommandGroup(unit_id=roster.units["POLSEK-A1"].id, chat_id=A1, title="Posko POLSEK-A1"))
    found: dict[str, int] = {}
    for number in range(CREW):
        person = Personnel(
            nrp=f"2000{number:04d}",
            name=f"Pengawal {number}",
            rank="Bripda",
            force="polri",
            unit_id=roster.units["POLSEK-A1"].id,
            role="anggota",
            phone="",
        )
        escort = Escort(
            code=f"KWL-X{number:02d}",
            kind="kotak_suara",
            cargo="kotak suara",
            from_place_id=template.from_place_id,
            to_place_id=template.to_place_id,
            unit_id=template.unit_id,
            depart_at=NOW,
            arrive_by=NOW + timedelta(hours=2),
            access="darat",
        )
        session.add_all([person, escort])
        await session.flush()
        session.add(EscortMember(escort_id=escort.id, personnel_id=person.id, role="ketua"))
        found[escort.code] = person.id
    await session.commit()
    return found


def east(meters: float) -> float:
    return 104.700 + meters / 111_000


def seconds(n: float) -> datetime:
    return NOW + timedelta(seconds=n)


async def _position(session: AsyncSession, settings: Settings, person: int, meters: float, at: datetime) -> None:
    result = await escorts.record_position(
        session, personnel_id=person, lat=LAT, lon=east(meters), at=at, now=at, settings=settings.escort
    )
    assert result is not None
    await session.commit()


async def _deliver(session: AsyncSession, at: datetime) -> None:
    rows = await outbox.claim(session, worker="test", limit=500, now=at, lease_seconds=60)
    await outbox.mark_sent_many(session, results=[SendResult(row.id, 9000 + row.id, at) for row in rows])
    await session.commit()


async def _live_rows(session: AsyncSession) -> list[Outbox]:
    query = select(Outbox).where(Outbox.ref.like("live:%")).order_by(Outbox.id)
    return list(await session.scalars(query.execution_options(populate_existing=True)))


def _busiest_minute(rows: list[Outbox]) -> int:
    times = sorted(row.created_at for row in rows)
    return max((sum(1 for t in times if start <= t < start + timedelta(minutes=1)) for start in times), default=0)


async def test_thirty_escorts_move_in_their_groups_share_latest_position_winning(
    session: AsyncSession, settings: Settings, crews: dict[str, int]
) -> None:
    assert share(settings.delivery.group_per_minute) == 10
    ids = {code: escort_id for code, escort_id in await session.execute(select(Escort.code, Escort.id))}
    last: dict[str, float] = {}
    for tick in range(0, 10 * 60, 3):  # ten minutes; positions every 30 s for the first six
        at = seconds(tick)
        if tick % 30 == 0 and tick < 6 * 60:
            for number, (code, person) in enumerate(crews.items()):
                last[code] = 1_000 + tick * 7 + number
                await _position(session, settings, person, last[code], at)
        await sweep_live_locations(session, now=at, settings=settings)
        await _deliver(session, at)
    rows = await _live_rows(session)
    assert {row.chat_id for row in rows} == {A1}
    assert _busiest_minute(rows) <= 10  # the share, half of the group's 20 a minute: never past the limit
    starts = [row for row in rows if row.method == "sendLocation"]
    assert len(starts) == CREW and len({row.ref for row in starts}) == CREW  # one pin per escort, once
    assert all(row.payload["live_period"] >= 60 for row in starts)
    moves = [row for row in rows if row.method == "editMessageLiveLocation" and row.state == "sent"]
    assert 50 <= len(moves) <= 10 * 10 - CREW  # the share spent on moves once every pin was up
    shown = {row.ref: row.payload["longitude"] for row in moves}  # the last move of each pin wins
    caught_up = [code for code in crews if shown.get(f"live:{ids[code]}") == pytest.approx(east(last[code]))]
    assert len(caught_up) == CREW  # four minutes after the last positions, every pin shows the latest one
    assert await sweep_live_locations(session, now=seconds(600), settings=settings) == 0  # nothing left to show


async def test_pins_held_up_behind_a_flood_wait_never_reach_the_group_more_than_the_share_a_minute(
    session: AsyncSession, settings: Settings, crews: dict[str, int]
) -> None:
    """Nothing is sent for three minutes (a 429, alerts first), then all at once: counted by arrival, not by queueing."""
    for tick in range(0, 8 * 60, 3):
        at = seconds(tick)
        if tick % 30 == 0:
            for number, person in enumerate(crews.values()):
                await _position(session, settings, person, 1_000 + tick * 7 + number, at)
        await sweep_live_locations(session, now=at, settings=settings)
        if tick >= 180:
            await _deliver(session, at)
    sent = [row for row in await _live_rows(session) if row.sent_at is not None]
    arrivals = sorted(row.sent_at for row in sent)
    busiest = max(sum(1 for t in arrivals if start <= t < start + timedelta(minutes=1)) for start in arrivals)
    assert busiest <= 10  # the group's share of its 20 a minute, however long the pins waited
    assert len(sent) >= 40  # and the share is spent: ten a minute from the moment sending resumed


async def test_a_pending_move_carries_the_newer_position_and_arrival_stops_the_pin(
    session: AsyncSession, settings: Settings, crews: dict[str, int]
) -> None:
    person = next(iter(crews.values()))
    await _position(session, settings, person, 1_000, seconds(0))
    await sweep_live_locations(session, now=seconds(0), settings=settings)
    await _deliver(session, seconds(0))
    await sweep_live_locations(session, now=seconds(3), settings=settings)  # learns the pin's message id
    await _position(session, settings, person, 1_500, seconds(10))
    await sweep_live_locations(session, now=seconds(12), settings=settings)
    await _position(session, settings, person, 2_000, seconds(20))
    await sweep_live_locations(session, now=seconds(21), settings=settings)  # not sent yet: rewritten in place
    moves = [row for row in await _live_rows(session) if row.method == "editMessageLiveLocation"]
    assert len(moves) == 1 and moves[0].payload["longitude"] == pytest.approx(east(2_000))
    await _deliver(session, seconds(21))
    await _position(session, settings, person, 11_000 - 100, seconds(60))  # within 300 m of PPK-A2: arrived
    await _deliver(session, seconds(2))
    await sweep_live_locations(session, now=seconds(63), settings=settings)  # the next minute's share
    await sweep_live_locations(session, now=seconds(64), settings=settings)
    rows = await _live_rows(session)
    assert [row.method for row in rows] == [
        "sendLocation",
        "editMessageLiveLocation",
        "editMessageLiveLocation",
        "stopMessageLiveLocation",
    ]
    assert rows[2].payload["longitude"] == pytest.approx(east(10_900))  # the arrival shown, then stopped
    assert rows[3].payload == {"message_id": rows[0].telegram_message_id}


async def test_a_contingency_into_the_same_group_goes_before_every_waiting_pin(
    session: AsyncSession, settings: Settings, crews: dict[str, int]
) -> None:
    for number, person in enumerate(crews.values()):
        await _position(session, settings, person, 1_000 + number, seconds(0))
    await sweep_live_locations(session, now=seconds(0), settings=settings)
    await enqueue(
        session, chat_id=A1, text="🚨 KONTINJENSI", priority=Priority.escalation, dedup_key="alert", now=seconds(0)
    )
    await session.commit()
    [first] = await outbox.claim(session, worker="test", limit=1, now=seconds(0), lease_seconds=60)
    assert (first.method, first.text) == ("sendMessage", "🚨 KONTINJENSI")  # thirty pins wait behind it


async def test_a_pin_telegram_will_not_move_is_left_alone_and_spends_nothing_more(
    session: AsyncSession, settings: Settings, crews: dict[str, int]
) -> None:
    person = next(iter(crews.values()))
    await _position(session, settings, person, 1_000, seconds(0))
    await sweep_live_locations(session, now=seconds(0), settings=settings)
    await _deliver(session, seconds(0))
    await _position(session, settings, person, 1_500, seconds(10))
    await sweep_live_locations(session, now=seconds(12), settings=settings)
    [row] = await outbox.claim(session, worker="test", limit=10, now=seconds(12), lease_seconds=60)
    await outbox.mark_failed(session, row_id=row.id, error="Bad Request: message to edit not found")
    await session.commit()
    for tick in range(2, 10):  # the escort keeps moving: nothing more is queued for its pin
        await _position(session, settings, person, 1_500 + tick * 300, seconds(tick * 10))
        await sweep_live_locations(session, now=seconds(tick * 10 + 2), settings=settings)
    assert [row.method for row in await _live_rows(session)] == ["sendLocation", "editMessageLiveLocation"]


async def test_a_pass_leaves_an_escort_a_position_holds_to_the_next_pass_instead_of_waiting(
    backend: str,
    sessions: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    settings: Settings,
    crews: dict[str, int],
) -> None:
    """A bunch of positions holds its escorts locked in id order; a pass that waited for them, in its own
    order, deadlocked a bench run. Here KWL-X00 is held: the pass starts every other pin, and KWL-X00's next."""
    if backend != "postgresql":
        pytest.skip("SQLite has no row locks")
    for person in crews.values():
        await _position(session, settings, person, 1_000, seconds(0))
    held_id = await session.scalar(select(Escort.id).where(Escort.code == "KWL-X00"))
    async with sessions() as bunch:
        await escorts.hold_for_positions(bunch, personnel_ids=[crews["KWL-X00"]])  # left uncommitted
        async with sessions() as other:
            await asyncio.wait_for(sweep_live_locations(other, now=seconds(1), settings=settings), timeout=5)
        await bunch.rollback()
    refs = [row.ref for row in await _live_rows(session) if row.method == "sendLocation"]
    assert len(refs) == 10 and f"live:{held_id}" not in refs  # the share of the minute, without the held one
    await _deliver(session, seconds(2))
    await sweep_live_locations(session, now=seconds(63), settings=settings)  # the next minute's share
    refs = [row.ref for row in await _live_rows(session) if row.method == "sendLocation"]
    assert f"live:{held_id}" in refs
