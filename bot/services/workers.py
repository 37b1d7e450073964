"""Which bot processes are alive: each worker beats, and a worker whose beat stopped is dead.

Liveness is wall-clock time (UTC) on every host, whatever clock the
operation runs on (the demo's fast clock moves schedules, not processes):
hosts keep their clocks in sync with NTP, far closer than `EXPIRY`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Select, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.db import dialect_insert, rowcount
from models import Outbox, WorkerBeat
from models.enums import OutboxState

BEAT = timedelta(seconds=1)
EXPIRY = timedelta(seconds=8)
"""A worker that has not beaten for this long is dead. Eight missed beats: a stall of the loop (a long
garbage collection, a slow disk) is far shorter, and what a dead worker held is back within
`EXPIRY` plus one beat of whoever notices, inside the 15 s the bad-day rules allow."""

FORGET_AFTER = timedelta(hours=1)


async def beat(session: AsyncSession, *, worker: str, now: datetime) -> None:
    """Say this worker is alive (the first beat registers it). The caller commits."""
    insert = dialect_insert(session)(WorkerBeat).values(id=worker, started_at=now, beat_at=now)
    await session.execute(insert.on_conflict_do_update(index_elements=["id"], set_={"beat_at": now}))


def alive(now: datetime) -> Select[str]:
    """The ids of the workers alive at `now`, as a subquery for `NOT IN`."""
    return select(WorkerBeat.id).where(WorkerBeat.beat_at >= now - EXPIRY)


async def group_share(session: AsyncSession, *, worker: str, now: datetime) -> tuple[int, int]:
    """This worker's place among the living, in id order, and how many they are (itself counted in, beating
    yet or not): each command group is sent to by one worker (outbox.claim), whose limiter alone then
    paces the group's 20 a minute. A dead worker's groups pass to the others once its beat expires."""
    living = sorted(set(await session.scalars(alive(now))) | {worker})
    return living.index(worker), len(living)


async def leave(session: AsyncSession, *, worker: str) -> None:
    """A worker stopping cleanly: what it still held is free at once, not after `EXPIRY`."""
    await release_outbox(session, worker=worker)
    await session.execute(delete(WorkerBeat).where(WorkerBeat.id == worker))


async def release_outbox(session: AsyncSession, *, worker: str | None = None, now: datetime | None = None) -> int:
    """Outbox rows being sent by `worker`, or by any dead worker at `now`, go back to pending.

    A live worker's rows are never touched, whatever their lease says. With
    neither argument every row being sent comes back: a single SQLite process
    starting is the only sender there is.
    """
    owner = (
        Outbox.claimed_by == worker
        if worker is not None
        else (Outbox.claimed_by.not_in(alive(now)) if now is not None else Outbox.claimed_by.is_not(None))
    )
    result = await session.execute(
        update(Outbox)
        .where(Outbox.state == OutboxState.sending.value, owner)
        .values(state=OutboxState.pending.value, claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) or 0


async def forget_dead(session: AsyncSession, *, now: datetime) -> int:
    """Beats of workers dead for an hour: their claims were taken back long ago."""
    result = await session.execute(delete(WorkerBeat).where(WorkerBeat.beat_at < now - FORGET_AFTER))
    return rowcount(result) or 0
