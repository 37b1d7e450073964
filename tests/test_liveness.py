"""The inbox and the workers' heartbeats: what a dead worker held comes back, what a live one holds stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.intake.handling import HANDLING, Mark
from bot.services import outbox, updates, workers
from bot.services.outbox import NewMessage
from bot.services.updates import Incoming
from models import ChatState, InboxUpdate, Outbox
from models.enums import Priority

AGO = timedelta(minutes=5)


@pytest.fixture
def now() -> datetime:
    """The wall clock as the test starts: heartbeats are wall-clock time."""
    return datetime.now(UTC)


def _update(update_id: int, user_id: int = 7001) -> Incoming:
    return Incoming(
        update_id,
        {
            "update_id": update_id,
            "message": {"message_id": 1, "date": 0, "text": "/jadwal", "chat": {"id": user_id, "type": "private"}},
        },
    )


async def _queue(session: AsyncSession, now: datetime, *keys: str) -> None:
    await outbox.enqueue_many(
        session,
        [NewMessage(chat_id=1, text=key, priority=Priority.broadcast, dedup_key=key) for key in keys],
        now=now - timedelta(seconds=1),
    )
    await session.commit()


async def test_a_live_workers_rows_stay_with_it_whatever_its_lease_says(session: AsyncSession, now: datetime) -> None:
    await _queue(session, now, "a", "b")
    await workers.beat(session, worker="alive", now=now)
    claimed = await outbox.claim(session, worker="alive", limit=5, now=now, lease_seconds=1)
    await session.commit()
    assert len(claimed) == 2
    later = now + timedelta(minutes=10)
    assert await outbox.claim(session, worker="other", limit=5, now=later, lease_seconds=30) == []
    assert await workers.release_outbox(session, now=now) == 0


async def test_a_dead_workers_rows_come_back_at_once_without_waiting_for_the_lease(
    session: AsyncSession, now: datetime
) -> None:
    await _queue(session, now, "a", "b", "c")
    await workers.beat(session, worker="dead", now=now - workers.EXPIRY - timedelta(seconds=1))
    await workers.beat(session, worker="alive", now=now)
    await outbox.claim(session, worker="dead", limit=2, now=now, lease_seconds=3600)
    await outbox.claim(session, worker="alive", limit=1, now=now, lease_seconds=3600)
    await session.commit()
    assert await workers.release_outbox(session, now=now) == 2
    await session.commit()
    taken = await outbox.claim(session, worker="alive", limit=5, now=now, lease_seconds=3600)
    assert sorted(row.text for row in taken) == ["a", "b"]


async def test_a_worker_that_leaves_frees_its_rows_and_its_beat(session: AsyncSession, now: datetime) -> None:
    await _queue(session, now, "a")
    await workers.beat(session, worker="leaving", now=now)
    await outbox.claim(session, worker="leaving", limit=5, now=now, lease_seconds=3600)
    await workers.leave(session, worker="leaving")
    await session.commit()
    assert (await session.scalars(select(Outbox.state))).all() == ["pending"]
    assert list(await session.scalars(workers.alive(now))) == []


async def test_an_update_is_stored_once_however_often_it_is_delivered(session: AsyncSession, now: datetime) -> None:
    assert await updates.accept(session, updates=[_update(1), _update(2), _update(1)], worker="a", now=now) == {1, 2}
    await session.commit()
    assert await updates.accept(session, updates=[_update(2), _update(3)], worker="b", now=now) == {3}
    await session.commit()
    rows = {row.update_id: row.claimed_by for row in await session.scalars(select(InboxUpdate))}
    assert rows == {1: "a", 2: "a", 3: "b"}


async def test_a_dead_workers_open_updates_are_taken_back_and_the_handled_ones_closed(
    session: AsyncSession, now: datetime
) -> None:
    await workers.beat(session, worker="dead", now=now - AGO)
    await workers.beat(session, worker="alive", now=now)
    await updates.accept(session, updates=[_update(1), _update(2), _update(3)], worker="dead", now=now - AGO)
    await updates.accept(session, updates=[_update(4)], worker="alive", now=now)
    await updates.mark_done(session, update_ids=[1], now=now - AGO)
    (await session.get(InboxUpdate, 2)).handled_at = now - AGO  # type: ignore[union-attr]
    await session.commit()

    assert await updates.finish_handled(session, now=now, at=now) == 1, "2's effect was saved: not handled twice"
    taken = await updates.take_back(session, worker="alive", now=now)
    await session.commit()
    assert [item.update_id for item in taken] == [3], "1 is done, 2 was handled, 4 is a live worker's"
    assert taken[0].payload["message"]["text"] == "/jadwal"
    assert await updates.take_back(session, worker="other", now=now) == [], "3 is alive's now"
    open_rows = await session.scalars(select(InboxUpdate.update_id).where(InboxUpdate.done_at.is_(None)))
    assert len(open_rows.all()) == 2


async def test_alone_on_start_every_open_update_is_taken_back(session: AsyncSession, now: datetime) -> None:
    await workers.beat(session, worker="just-died", now=now)
    await updates.accept(session, updates=[_update(1), _update(2)], worker="just-died", now=now)
    await session.commit()
    assert await updates.take_back(session, worker="restarted", now=now) == [], "its beat is fresh: alive"
    assert [i.update_id for i in await updates.take_back(session, worker="restarted", now=None)] == [1, 2]


async def test_an_update_counts_as_handled_only_in_the_transaction_that_commits_its_effect(
    sessions: async_sessionmaker[AsyncSession], now: datetime
) -> None:
    async with sessions() as session:
        await updates.accept(session, updates=[_update(1), _update(2), _update(3)], worker="w", now=now)
        await session.commit()

    async def handled() -> dict[int, bool]:
        async with sessions() as session:
            return {row.update_id: row.handled_at is not None for row in await session.scalars(select(InboxUpdate))}

    token = HANDLING.set(Mark([1]))
    try:
        async with sessions() as session:
            await session.scalar(select(ChatState).limit(1))
            await session.commit()
        assert await handled() == {1: False, 2: False, 3: False}, "a read is no effect"
        async with sessions() as session:
            session.add(ChatState(telegram_user_id=5, kind="sitrep", expires_at=now))
            await session.flush()
            await session.rollback()
        assert await handled() == {1: False, 2: False, 3: False}, "an effect rolled back is no effect"
    finally:
        HANDLING.reset(token)
    both = Mark.of([Mark([2]), None, Mark([3])])
    assert both is not None
    token = HANDLING.set(both)
    try:
        async with sessions() as session:
            session.add(ChatState(telegram_user_id=5, kind="sitrep", expires_at=now))
            await session.commit()
    finally:
        HANDLING.reset(token)
    assert await handled() == {1: False, 2: True, 3: True}
    assert both.handled and all(part.handled for part in both.parts)
