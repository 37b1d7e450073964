"""The outbox services on a real database: queueing, claiming, recording results."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import system_clock
from bot.services import outbox, workers
from bot.services.outbox import NewMessage
from models import AuditLog, CommandGroup, Outbox, Personnel, Unit
from models.enums import Priority

NOW = datetime(2024, 2, 14, 6, 0, tzinfo=UTC)


async def _queue(session: AsyncSession, key: str, priority: int = 3, **kwargs: object) -> bool:
    kwargs.setdefault("chat_id", 1000)
    return await outbox.enqueue(
        session,
        text=f"hello {key}",
        priority=priority,
        dedup_key=key,
        now=NOW,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_enqueue_is_idempotent_by_dedup_key(session: AsyncSession) -> None:
    assert await _queue(session, "reminder:1:60") is True
    assert await _queue(session, "reminder:1:60") is False
    await session.commit()
    rows = (await session.scalars(select(Outbox))).all()
    assert len(rows) == 1
    row = rows[0]
    assert (row.state, row.priority, row.due_at, row.created_at) == ("pending", 3, NOW, NOW)


async def test_enqueue_many_counts_new_rows_across_chunks(session: AsyncSession) -> None:
    rows = [
        NewMessage(chat_id=i, text="x", priority=Priority.broadcast, dedup_key=f"b:{i}", ref="broadcast:1")
        for i in range(6000)
    ]
    rows.append(rows[10])  # a duplicate inside the run
    assert await outbox.enqueue_many(session, rows, now=NOW) == 6000
    assert (
        await outbox.enqueue_many(
            session,
            [
                {"chat_id": 7, "text": "y", "priority": 3, "dedup_key": "b:7"},
                {"chat_id": 7, "text": "y", "priority": 3, "dedup_key": "new"},
            ],
            now=NOW,
        )
        == 1
    )
    await session.commit()
    assert await session.scalar(select(func.count()).select_from(Outbox)) == 6001
    assert await outbox.report_for_ref(session, "broadcast:1") == {
        "delivered": 0,
        "unreachable": 0,
        "pending": 6000,
        "cancelled": 0,
    }


async def test_claim_orders_by_priority_then_due_and_skips_future(session: AsyncSession) -> None:
    await _queue(session, "late-bulk", 3, due_at=NOW - timedelta(minutes=5))
    await _queue(session, "bulk", 3, due_at=NOW - timedelta(minutes=10))
    await _queue(session, "reminder", 2, due_at=NOW - timedelta(minutes=1))
    await _queue(session, "alert", 0, due_at=NOW)
    await _queue(session, "tomorrow", 0, due_at=NOW + timedelta(days=1))
    await _queue(session, "backing-off", 0, due_at=NOW - timedelta(hours=1))
    await session.commit()
    backing_off = await session.scalar(select(Outbox).where(Outbox.dedup_key == "backing-off"))
    assert backing_off is not None
    backing_off.next_attempt_at = NOW + timedelta(seconds=30)
    await session.commit()

    rows = await outbox.claim(session, worker="w1", limit=10, now=NOW, lease_seconds=60)
    await session.commit()
    assert [row.text.split()[1] for row in rows] == ["alert", "reminder", "bulk", "late-bulk"]
    claimed = (await session.scalars(select(Outbox).where(Outbox.state == "sending"))).all()
    assert {(row.claimed_by, row.claimed_until) for row in claimed} == {("w1", NOW + timedelta(seconds=60))}
    assert await outbox.claim(session, worker="w2", limit=10, now=NOW, lease_seconds=60) == []


async def test_expired_lease_is_reclaimed_by_another_worker(session: AsyncSession) -> None:
    for i in range(3):
        await _queue(session, f"m{i}")
    await session.commit()
    first = await outbox.claim(session, worker="dead", limit=2, now=NOW, lease_seconds=30)
    await session.commit()
    soon = await outbox.claim(session, worker="w2", limit=5, now=NOW + timedelta(seconds=10), lease_seconds=30)
    await session.commit()
    assert [row.id for row in soon] == [3]
    later = await outbox.claim(session, worker="w2", limit=5, now=NOW + timedelta(seconds=31), lease_seconds=30)
    await session.commit()
    assert sorted(row.id for row in later) == sorted(row.id for row in first)


async def test_restarted_worker_takes_back_its_own_rows(session: AsyncSession) -> None:
    await _queue(session, "a")
    await _queue(session, "b")
    await session.commit()
    await outbox.claim(session, worker="host-1", limit=5, now=NOW, lease_seconds=300)
    assert await outbox.reclaim_worker(session, worker="host-2") == 0
    assert await outbox.reclaim_worker(session, worker="host-1") == 2
    await session.commit()
    assert len(await outbox.claim(session, worker="host-1", limit=5, now=NOW, lease_seconds=300)) == 2


async def test_results_sent_retry_release(session: AsyncSession) -> None:
    for key in ("sent", "retry", "flood"):
        await _queue(session, key)
    await session.commit()
    rows = {
        row.text.split()[1]: row for row in await outbox.claim(session, worker="w", limit=5, now=NOW, lease_seconds=60)
    }
    await outbox.mark_sent(session, row_id=rows["sent"].id, telegram_message_id=4242, at=NOW)
    await outbox.mark_retry(
        session, row_id=rows["retry"].id, error="Bad Gateway", next_attempt_at=NOW + timedelta(seconds=5)
    )
    await outbox.mark_retry(session, row_id=rows["flood"].id, error="429", next_attempt_at=None, count_attempt=False)
    await session.commit()
    by_key = {row.dedup_key: row for row in (await session.scalars(select(Outbox))).all()}
    assert (by_key["sent"].state, by_key["sent"].telegram_message_id, by_key["sent"].sent_at) == ("sent", 4242, NOW)
    assert (by_key["retry"].state, by_key["retry"].attempts, by_key["retry"].claimed_by) == ("pending", 1, None)
    assert (by_key["flood"].state, by_key["flood"].attempts) == ("pending", 0)
    again = await outbox.claim(session, worker="w", limit=5, now=NOW, lease_seconds=60)
    assert [row.dedup_key for row in await _rows(session, again)] == ["flood"]


async def _rows(session: AsyncSession, claimed: list[outbox.OutboxRow]) -> list[Outbox]:
    ids = [row.id for row in claimed]
    return list((await session.scalars(select(Outbox).where(Outbox.id.in_(ids)).order_by(Outbox.id))).all())


async def _roster(session: AsyncSession) -> tuple[Personnel, CommandGroup]:
    unit = Unit(code="POLRES-X", name="Polres X", kind="polres", force="polri")
    session.add(unit)
    await session.flush()
    person = Personnel(nrp="87010001", name="Budi", force="polri", unit_id=unit.id, telegram_user_id=5001)
    group = CommandGroup(unit_id=unit.id, chat_id=-100500)
    session.add_all([person, group])
    await session.flush()
    return person, group


async def test_permanent_failure_marks_recipient_unreachable_and_audits(session: AsyncSession) -> None:
    person, group = await _roster(session)
    await _queue(session, "to-person", chat_id=5001, personnel_id=person.id)
    await _queue(session, "to-group", chat_id=-100500)
    await _queue(session, "bad-markup", chat_id=5001, personnel_id=person.id)
    await session.commit()
    rows = {
        row.text.split()[1]: row for row in await outbox.claim(session, worker="w", limit=5, now=NOW, lease_seconds=60)
    }
    await outbox.mark_failed(
        session, row_id=rows["to-person"].id, error="Forbidden: bot was blocked by the user", unreachable=True
    )
    await outbox.mark_failed(session, row_id=rows["to-group"].id, error="Bad Request: chat not found", unreachable=True)
    await outbox.mark_failed(session, row_id=rows["bad-markup"].id, error="Bad Request: can't parse entities")
    await session.commit()
    session.expire_all()
    await session.refresh(person)
    await session.refresh(group)
    assert (person.reachable, person.unreachable_reason) == (False, "Forbidden: bot was blocked by the user")
    assert group.reachable is False
    actions = sorted((await session.scalars(select(AuditLog.action))).all())
    assert actions == [
        "command_group.unreachable",
        "outbox.failed",
        "outbox.failed",
        "outbox.failed",
        "personnel.unreachable",
    ]
    states = (await session.scalars(select(Outbox.state).distinct())).all()
    assert list(states) == ["failed"]


async def test_stats_and_delivery_report(session: AsyncSession) -> None:
    for i in range(4):
        await _queue(session, f"b{i}", Priority.broadcast, ref="broadcast:9", due_at=NOW - timedelta(minutes=i))
    await _queue(session, "alert", Priority.escalation)
    await session.commit()
    rows = await outbox.claim(session, worker="w", limit=3, now=NOW, lease_seconds=60)
    await outbox.mark_sent(session, row_id=rows[0].id, telegram_message_id=1, at=NOW)
    await outbox.mark_failed(session, row_id=rows[1].id, error="Forbidden: user is deactivated", unreachable=True)
    await session.commit()

    stats = await outbox.stats(session)
    assert stats.depth == {0: {"sent": 1}, 3: {"failed": 1, "sending": 1, "pending": 2}}
    assert stats.oldest_due == NOW - timedelta(minutes=1)
    assert stats.failures == 1
    assert stats.top_errors == [("Forbidden: user is deactivated", 1)]
    assert stats.waiting == 3
    assert await outbox.queue_depth(session) == {3: 3}
    assert await outbox.report_for_ref(session, "broadcast:9") == {
        "delivered": 0,
        "unreachable": 1,
        "pending": 3,
        "cancelled": 0,
    }


async def test_chat_migration_moves_waiting_rows_and_group(session: AsyncSession) -> None:
    _, group = await _roster(session)
    await _queue(session, "g1", chat_id=-100500)
    await session.commit()
    assert await outbox.migrate_chat(session, old_chat_id=-100500, new_chat_id=-1009999) == 1
    await session.commit()
    await session.refresh(group)
    assert group.chat_id == -1009999
    assert await session.scalar(select(Outbox.chat_id)) == -1009999


async def test_concurrent_claimers_never_share_a_row(sessions: async_sessionmaker[AsyncSession], backend: str) -> None:
    """Two workers claiming in a loop from 10,000 rows (one engine pool, separate sessions)."""
    total = 10_000 if backend == "postgresql" else 2_000
    async with sessions() as session:
        rows = [NewMessage(chat_id=i, text="x", priority=i % 4, dedup_key=f"k{i}") for i in range(total)]
        await outbox.enqueue_many(session, rows, now=NOW)
        await session.commit()

    async def claimer(worker: str) -> list[int]:
        got: list[int] = []
        while True:
            async with sessions() as session:
                batch = await outbox.claim(session, worker=worker, limit=97, now=NOW, lease_seconds=600)
                await session.commit()
            if not batch:
                return got
            got += [row.id for row in batch]
            await asyncio.sleep(0)

    first, second = await asyncio.gather(claimer("a"), claimer("b"))
    assert set(first).isdisjoint(second)
    assert len(first) + len(second) == total
    assert set(first) | set(second) == set(range(1, total + 1))
    if backend == "postgresql":
        assert first and second, "both claimers should have taken a share"


@pytest.mark.parametrize("limit", [1, 50])
async def test_claim_limit_is_respected(session: AsyncSession, limit: int) -> None:
    for i in range(60):
        await _queue(session, f"m{i}", chat_id=i)
    await session.commit()
    assert len(await outbox.claim(session, worker="w", limit=limit, now=NOW, lease_seconds=60)) == limit


async def test_each_command_group_is_claimed_by_one_living_worker_and_passes_on_when_it_leaves(
    session: AsyncSession,
) -> None:
    """Telegram counts a group's 20 a minute whoever sends: a group's rows go to one worker, private ones to any."""
    wall = system_clock()
    await workers.beat(session, worker="w-a", now=wall)
    await workers.beat(session, worker="w-b", now=wall)
    odd, even = -1_002_000_000_001, -1_002_000_000_002
    for chat in (odd, even, 1000, 1001):
        for i in range(2):
            await _queue(session, f"{chat}:{i}", chat_id=chat)
    await session.commit()
    assert await workers.group_share(session, worker="w-c", now=wall) == (2, 3), "a worker counts itself in"

    async def chats(worker: str, minutes: int = 0) -> list[int]:
        rows = await outbox.claim(
            session, worker=worker, limit=50, now=NOW + timedelta(minutes=minutes), lease_seconds=30
        )
        await session.commit()
        return sorted(row.chat_id for row in rows)

    assert await chats("w-a") == [even, even, 1000, 1000, 1001, 1001]  # first in id order: the even remainder
    assert await chats("w-b") == [odd, odd]
    for i in range(2, 4):
        await _queue(session, f"{odd}:{i}", chat_id=odd)
    await session.commit()
    assert await chats("w-a") == []
    await workers.leave(session, worker="w-b")  # what it held is free again, and its groups are w-a's
    await session.commit()
    assert await chats("w-a", 1) == [odd, odd, odd, odd]
    await workers.beat(session, worker="w-b", now=wall - workers.EXPIRY * 2)  # a worker long silent is dead
    await session.commit()
    assert await workers.group_share(session, worker="w-a", now=wall) == (0, 1)
