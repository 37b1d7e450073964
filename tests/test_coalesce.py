"""Claims, sender and wait lookups, and check-ins of updates arriving together: one statement for many, each answered right."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import models
from bot.config import CheckinSettings
from bot.intake.coalesce import arrivals, checkins
from bot.services import chatstate
from bot.services.checkin import CheckinOutcome, Presence
from bot.services.updates import claim_update, claim_updates
from bot.storage.db import make_engine, make_sessionmaker
from models import InboxUpdate
from tests.factories import NOW as FACTORY_NOW
from tests.factories import TPS_PLACES, build_roster, link

NOW = datetime(2024, 2, 14, 6, 0, tzinfo=UTC)
BUDI, EKO = "budi", "eko"


async def test_a_batch_claims_what_nobody_claimed_and_each_id_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        assert await claim_update(session, update_id=5, now=NOW)
    async with sessions() as session:
        assert await claim_updates(session, update_ids=[1, 2, 5, 2, 3], now=NOW) == {1, 2, 3}
        await session.commit()
    async with sessions() as session:
        assert not await claim_update(session, update_id=3, now=NOW)
        assert await session.scalar(select(func.count()).select_from(InboxUpdate)) == 4


async def test_updates_arriving_together_are_claimed_once_each_in_few_writes(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Three copies of 40 updates at once (a redelivery storm): 40 handled, 80 dropped, not 120 writes."""
    inserts: list[str] = []
    event.listen(
        engine.sync_engine,
        "before_cursor_execute",
        lambda _c, _cur, sql, *_: inserts.append(sql) if "INTO inbox" in sql else None,
    )
    claim = _claims(sessions)
    ids = [update_id for _ in range(3) for update_id in range(100, 140)]
    results = await asyncio.gather(*(claim(update_id) for update_id in ids))
    firsts = [update_id for update_id, first in zip(ids, results, strict=True) if first]
    assert sorted(firsts) == list(range(100, 140)), "each update handled exactly once"
    assert len(inserts) <= 3, f"{len(inserts)} writes for 120 claims made at once"
    assert not await claim(120), "a later redelivery is still dropped"
    assert await claim(200)


async def test_a_failed_claim_write_fails_its_updates_and_the_next_one_is_tried_again(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'no-schema.db'}")  # no tables: every write fails
    try:
        claim = _claims(make_sessionmaker(engine))
        results = await asyncio.gather(*(claim(update_id) for update_id in range(5)), return_exceptions=True)
        assert all(isinstance(result, Exception) for result in results), results
        await _create_schema(engine)
        assert await claim(1), "the writer recovered: the failed update counts as unseen"
    finally:
        await engine.dispose()


def _claims(sessions: async_sessionmaker[AsyncSession]) -> Callable[[int], Awaitable[bool]]:
    """Updates from nobody (a channel post): only the claim counts."""
    arrive = arrivals(sessions, lambda: NOW, claim=True)

    async def claim(update_id: int) -> bool:
        return (await arrive((update_id, None))).first

    return claim


async def _create_schema(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(models.Base.metadata.create_all)


async def test_senders_asking_together_get_their_own_person_and_strangers_none(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as session:
        roster = await build_roster(session)
        await link(session, roster.person(BUDI), 7001)
        await link(session, roster.person(EKO), 7002)
    lookups: list[str] = []
    event.listen(
        engine.sync_engine,
        "before_cursor_execute",
        lambda _c, _cur, sql, *_: lookups.append(sql) if "FROM personnel" in sql else None,
    )
    arrive = arrivals(sessions, lambda: NOW)
    asked = [7001, 7002, 9999, 7001, 7002] * 10
    found = await asyncio.gather(*(arrive((update_id, user_id)) for update_id, user_id in enumerate(asked)))
    assert all(arrival.first for arrival in found)
    names = [arrival.sender.name if arrival.sender else None for arrival in found]
    budi, eko = roster.person(BUDI).name, roster.person(EKO).name
    assert names == [budi, eko, None, budi, eko] * 10
    assert len(lookups) <= 2, f"{len(lookups)} lookups for 50 senders asked at once"


async def test_waits_asked_together_answer_each_person_and_ignore_expired_ones(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as session:
        await chatstate.expect(
            session, telegram_user_id=8001, kind="sitrep", ref_id=11, now=NOW, ttl=timedelta(minutes=10)
        )
        await chatstate.expect(
            session,
            telegram_user_id=8002,
            kind="sitrep",
            ref_id=12,
            now=NOW - timedelta(hours=1),
            ttl=timedelta(minutes=10),
        )
        await session.commit()
    lookups: list[str] = []
    event.listen(
        engine.sync_engine,
        "before_cursor_execute",
        lambda _c, _cur, sql, *_: lookups.append(sql) if "FROM chat_states" in sql else None,
    )
    arrive = arrivals(sessions, lambda: NOW)
    asked = [8001, 8002, 8003] * 10
    found = await asyncio.gather(*(arrive((update_id, user_id)) for update_id, user_id in enumerate(asked)))
    assert [arrival.waiting for arrival in found] == [chatstate.Waiting("sitrep", 11), None, None] * 10
    assert len(lookups) <= 2, f"{len(lookups)} lookups for 30 asked at once"


async def test_locations_shared_together_are_checked_in_together_each_once(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Five guards send their location three times at once: five check-ins in at most two inserts, ten 'already'."""
    async with sessions() as session:
        roster = await build_roster(session)
    guards = [roster.person(key).id for key in ("budi", "citra", "dedi", "eko", "fajar")]
    inserts: list[str] = []
    event.listen(
        engine.sync_engine,
        "before_cursor_execute",
        lambda _c, _cur, sql, *_: inserts.append(sql) if sql.startswith("INSERT INTO checkins") else None,
    )
    check_in = checkins(sessions, lambda: FACTORY_NOW, CheckinSettings())
    lat, lon = TPS_PLACES["TPS-A1-001"]
    asked = [Presence(pid, lat, lon, FACTORY_NOW, False) for _ in range(3) for pid in guards]
    results = await asyncio.gather(*(check_in(presence) for presence in asked))
    outcomes = [result.outcome for result in results]
    assert outcomes[:5] == [CheckinOutcome.checked_in] * 5
    assert outcomes[5:] == [CheckinOutcome.already] * 10
    assert len(inserts) <= 2, f"{len(inserts)} inserts for 5 check-ins made at once"
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(models.Checkin)) == 5
