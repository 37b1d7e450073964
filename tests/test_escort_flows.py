"""The escort flows on a real database: who the sender lookup says rides an escort, and what a position costs.

The check-in path asks nothing more than before to tell a check-in from an
escort's position: the sender lookup (`actors_for`, one statement for a
bunch of senders) carries `escorting`, and only those get `record_position`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import load_settings
from bot.services import escorts
from bot.services.escorts import PositionResult, alerts
from bot.services.people import actors_for
from flows import escorts as flow
from models import Escort
from tests.factories import NOW, build_escorts, build_roster, link


@contextmanager
def statements_run(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL of every statement sent while inside, in order."""
    seen: list[str] = []

    def note(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)


async def test_the_sender_lookup_says_who_rides_an_escort_in_the_same_statement(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    roster = await build_roster(session)
    await build_escorts(session, roster)
    ids = {}
    for n, key in enumerate(["budi", "citra", "dedi", "eko"], start=1):
        await link(session, roster.person(key), 9000 + n)
        ids[key] = 9000 + n
    with statements_run(engine) as statements:
        found = await actors_for(session, telegram_user_ids=list(ids.values()), now=NOW)
    assert len(statements) == 1
    assert {key: found[user].escorting for key, user in ids.items()} == {
        "budi": True,
        "citra": True,
        "dedi": True,
        "eko": False,
    }
    await session.execute(update(Escort).where(Escort.code.in_(["KWL-1", "KWL-3"])).values(state="tiba"))
    await session.execute(update(Escort).where(Escort.code == "KWL-2").values(state="diterima"))
    await session.commit()
    found = await actors_for(session, telegram_user_ids=list(ids.values()), now=NOW)
    assert not any(actor.escorting for actor in found.values()), "an arrived escort takes no more positions"


async def test_a_member_is_escorting_only_in_the_departure_window_of_a_planned_leg(session: AsyncSession) -> None:
    """KWL-2 (dedi) departs at NOW, due NOW+1h: hours before or the day after, his location is a check-in."""
    roster = await build_roster(session)
    await build_escorts(session, roster)
    await link(session, roster.person("dedi"), 9100)

    async def escorting(at: datetime) -> bool:
        return (await actors_for(session, telegram_user_ids=[9100], now=at))[9100].escorting

    assert [await escorting(NOW + timedelta(minutes=m)) for m in (-180, -20, 0, 60, 24 * 60)] == [
        False,
        True,
        True,
        True,
        False,
    ]
    await session.execute(update(Escort).where(Escort.code == "KWL-2").values(state="berangkat"))
    await session.commit()
    assert await escorting(NOW + timedelta(hours=24)), "underway, however late, every position is the escort's"


async def test_a_position_no_escort_takes_changes_nothing_and_commits_nothing(session: AsyncSession) -> None:
    roster = await build_roster(session)
    escorts = await build_escorts(session, roster)
    await link(session, roster.person("dedi"), 9100)
    [dedi] = (await actors_for(session, telegram_user_ids=[9100], now=NOW)).values()
    settings = load_settings(None)
    origin = (-2.990000, 104.760000)  # KWL-2 starts at TPS-A1-001: not yet a journey
    [tracked] = await flow.positions(
        session, [flow.Position(dedi, *origin, NOW, answer=True)], now=NOW, settings=settings
    )
    assert tracked is None
    await session.refresh(escorts["KWL-2"])
    assert escorts["KWL-2"].state == "terjadwal" and escorts["KWL-2"].last_at is None
    [tracked] = await flow.positions(
        session, [flow.Position(dedi, -2.995, 104.74, NOW, answer=True)], now=NOW, settings=settings
    )
    assert tracked is not None and tracked.departed and tracked.summary is not None
    assert tracked.summary.state == "berangkat"


async def test_a_bunch_of_positions_is_taken_in_one_commit_each_as_if_alone(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    """Two moves of KWL-1 (budi) and one of KWL-2 (dedi) read at the same moment: one transaction, in order."""
    roster = await build_roster(session)
    escorts = await build_escorts(session, roster)
    for n, key in enumerate(["budi", "dedi"], start=1):
        await link(session, roster.person(key), 9200 + n)
    actors = await actors_for(session, telegram_user_ids=[9201, 9202], now=NOW)
    budi, dedi = actors[9201], actors[9202]
    at = NOW + timedelta(minutes=1)
    bunch = [
        flow.Position(budi, -3.0, 104.700 + 1_000 / 111_000, at, answer=True),
        flow.Position(dedi, -2.995, 104.74, at, answer=True),
        flow.Position(budi, -3.0, 104.700 + 1_400 / 111_000, at + timedelta(seconds=30), answer=False),
    ]
    commits: list[str] = []

    def count(*args: object) -> None:
        commits.append("commit")

    event.listen(engine.sync_engine, "commit", count)
    try:
        tracked = await flow.positions(session, bunch, now=at + timedelta(seconds=30), settings=load_settings(None))
    finally:
        event.remove(engine.sync_engine, "commit", count)
    assert len(commits) == 1
    assert [t.escort_code if t else None for t in tracked] == ["KWL-1", "KWL-2", "KWL-1"]
    first, second, third = tracked
    assert first is not None and first.departed and first.summary is not None
    assert second is not None and second.departed
    assert third is not None and not third.departed and third.latest  # it saw the first
    assert third.summary is None  # a live move that changed nothing worth an answer
    await session.refresh(escorts["KWL-1"])
    assert escorts["KWL-1"].last_at == at + timedelta(seconds=30)


async def test_two_workers_bunches_of_the_same_escorts_in_opposite_orders_both_land(
    backend: str, sessions: async_sessionmaker[AsyncSession], session: AsyncSession
) -> None:
    """Worker A takes budi then dedi, worker B dedi then budi, at once: locked in id order first, no deadlock."""
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: nothing to order")
    roster = await build_roster(session)
    await build_escorts(session, roster)
    for n, key in enumerate(["budi", "dedi"], start=1):
        await link(session, roster.person(key), 9300 + n)
    actors = await actors_for(session, telegram_user_ids=[9301, 9302], now=NOW)
    await session.commit()
    at, settings = NOW + timedelta(minutes=1), load_settings(None)

    def moves(order: list[int], seconds: int) -> list[flow.Position]:
        there = {9301: (-3.0, 104.700 + 1_000 / 111_000), 9302: (-2.995, 104.74)}
        return [flow.Position(actors[u], *there[u], at + timedelta(seconds=seconds), answer=False) for u in order]

    async def bunch(order: list[int], seconds: int) -> list[PositionResult | None]:
        async with sessions() as own:
            return await flow.positions(own, moves(order, seconds), now=at + timedelta(seconds=5), settings=settings)

    first, second = await asyncio.gather(bunch([9301, 9302], 1), bunch([9302, 9301], 2))
    assert all(tracked is not None for tracked in first + second)
    codes = sorted(t.escort_code for t in first + second if t is not None)
    assert codes == ["KWL-1", "KWL-1", "KWL-2", "KWL-2"]


async def test_an_answered_position_tells_what_a_fresh_read_of_the_escort_shows(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    """The answer is read from the row the position locked, without asking again: it must say what
    `escort_detail` says after the commit, through a departure, a via passed, an alert opened and one cleared."""
    roster = await build_roster(session)
    await build_escorts(session, roster)
    await link(session, roster.person("budi"), 9300)
    budi = (await actors_for(session, telegram_user_ids=[9300], now=NOW))[9300]
    settings = load_settings(None)
    statements: list[str] = []

    async def answered(lat: float, lon: float, minute: int) -> PositionResult:
        at = NOW + timedelta(minutes=minute)
        with statements_run(engine) as seen:
            [tracked] = await flow.positions(
                session, [flow.Position(budi, lat, lon, at, True)], now=at, settings=settings
            )
        statements[:] = seen
        assert tracked is not None and tracked.summary is not None
        fresh = await escorts.escort_detail(session, now=at, settings=settings.escort, code="KWL-1")
        assert fresh is not None and tracked.summary == fresh.summary
        return tracked

    departed = await answered(-3.0, 104.71, 1)
    assert departed.departed and departed.summary is not None and departed.summary.remaining_m
    on_the_way = await answered(-3.0, 104.72, 2)
    # the escort locked, its via, the row, the track point: nothing asked again for the answer
    assert [s.split()[0] for s in statements] == ["SELECT", "SELECT", "UPDATE", "INSERT"], statements
    passed = await answered(-3.0, 104.75, 3)
    assert passed.passed == ("DERMAGA-A1",)
    astray = await answered(-3.2, 104.76, 4)
    assert astray.summary is not None and astray.summary.open_alerts == ("menyimpang",)
    back = await answered(-3.0, 104.77, 5)
    assert back.summary is not None and back.summary.open_alerts == ()
    assert on_the_way.summary is not None and back.summary.remaining_m < on_the_way.summary.remaining_m


async def test_a_bunch_of_moves_reads_its_escorts_once_and_writes_them_together(
    backend: str, engine: AsyncEngine, session: AsyncSession
) -> None:
    """Hundreds of moves a second: a bunch reads its escorts once, and its rows and track points go out
    together at the commit, not a read and two writes a move."""
    roster = await build_roster(session)
    await build_escorts(session, roster)
    await session.execute(update(Escort).values(state="berangkat", departed_at=NOW))
    for n, key in enumerate(["budi", "dedi", "citra"], start=1):
        await link(session, roster.person(key), 9400 + n)
    actors = await actors_for(session, telegram_user_ids=[9401, 9402, 9403], now=NOW)
    await session.commit()
    settings = load_settings(None)

    async def statements(users: list[int], minute: int) -> list[str]:
        at = NOW + timedelta(minutes=minute)
        bunch = [
            flow.Position(actors[u], -3.0, 104.71 + minute / 1_000 + n / 100, at + timedelta(seconds=n), answer=False)
            for n, u in enumerate(users)
        ]
        with statements_run(engine) as seen:
            tracked = await flow.positions(session, bunch, now=at + timedelta(seconds=10), settings=settings)
        assert all(t is not None and t.kept and t.latest for t in tracked)
        return [" ".join(sql.split()[:3]) for sql in seen]

    read = ["SELECT escorts.id, escorts.code,", "SELECT escort_vias.escort_id, escort_vias.seq,"]  # locked; vias
    one = await statements([9401], 1)
    assert one == [*read, "UPDATE escorts SET", "INSERT INTO escort_track_points"]
    three = await statements([9401, 9402, 9403], 2)  # budi's KWL-1, dedi's KWL-2, citra's KWL-1 a second later
    # one UPDATE for each set of columns changed (KWL-1 kept its latitude, KWL-2 moved both);
    # SQLite cannot return the ids of many rows in order from one INSERT, PostgreSQL can
    inserts = 1 if backend == "postgresql" else 3
    assert three == [*read, "UPDATE escorts SET", "UPDATE escorts SET", *["INSERT INTO escort_track_points"] * inserts]


async def test_an_alert_sweep_inserting_for_an_escort_does_not_hold_up_its_positions(
    backend: str, sessions: async_sessionmaker[AsyncSession], session: AsyncSession
) -> None:
    """An episode (or contingency) inserted for KWL-1 and not yet committed takes a key-share lock on the
    escort row; the bunch's lock must not wait for it (with `FOR UPDATE` it did, and deadlocked a bench run
    against a sweep raising 100 `berhenti` in its own order)."""
    if backend != "postgresql":
        pytest.skip("SQLite has no row locks")
    roster = await build_roster(session)
    escorts_ = await build_escorts(session, roster)
    await session.execute(update(Escort).values(state="berangkat", departed_at=NOW))
    await link(session, roster.person("budi"), 9500)
    budi = (await actors_for(session, telegram_user_ids=[9500], now=NOW))[9500]
    await session.commit()
    at, settings = NOW + timedelta(minutes=1), load_settings(None)
    async with sessions() as sweep:
        await alerts.open_once(sweep, [(escorts_["KWL-1"].id, "berhenti")], now=at)  # left uncommitted
        async with sessions() as own:
            bunch = [flow.Position(budi, -3.0, 104.71, at, answer=False)]
            [moved] = await asyncio.wait_for(flow.positions(own, bunch, now=at, settings=settings), timeout=5)
        await sweep.rollback()
    assert moved is not None and moved.kept
