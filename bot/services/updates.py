"""The inbox: Telegram updates stored before they are accepted, handled once, taken back from dead workers.

Every function takes the caller's session and leaves the commit to it,
except where it says otherwise: accepting an update is only true once the
caller committed it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.workers import alive
from bot.storage.db import dialect_insert, rowcount
from models import InboxUpdate

RETENTION = timedelta(hours=48)
"""Telegram keeps an update for 24 hours at most: a done row older than twice that cannot come again."""


@dataclass(frozen=True)
class Incoming:
    """An update as it came in: its id and the JSON Telegram sent."""

    update_id: int
    payload: dict[str, Any]


async def accept(session: AsyncSession, *, updates: Sequence[Incoming], worker: str, now: datetime) -> set[int]:
    """The ids of these updates new to the inbox, claimed by `worker` once the caller commits.

    One insert-or-ignore for the whole list: the primary key arbitrates
    between workers and redeliveries; an id listed twice is stored once.
    """
    rows = {u.update_id: _row(u, now, claimed_by=worker, done_at=None) for u in updates}
    result = await session.execute(_accept(dialect_insert(session)), list(rows.values()))
    return set(result.scalars())


def _row(update: Incoming, now: datetime, *, claimed_by: str | None, done_at: datetime | None) -> dict[str, Any]:
    return {
        "update_id": update.update_id,
        "payload": update.payload,
        "received_at": now,
        "claimed_by": claimed_by,
        "attempts": 1,
        "done_at": done_at,
    }


async def claim_update(session: AsyncSession, *, update_id: int, now: datetime) -> bool:
    """`claim_updates` of one update, committed: True for the first to see it."""
    claimed = update_id in await claim_updates(session, update_ids=[update_id], now=now)
    await session.commit()
    return claimed


async def claim_updates(session: AsyncSession, *, update_ids: Sequence[int], now: datetime) -> set[int]:
    """Updates accepted before they were stored (`intake.durable = false`, the benchmark's baseline): claimed done,
    with no payload to handle them again; the ids new to the inbox."""
    rows = {i: _row(Incoming(i, {}), now, claimed_by=None, done_at=now) for i in update_ids}
    result = await session.execute(_accept(dialect_insert(session)), list(rows.values()))
    return set(result.scalars())


@cache
def _accept(insert: Callable[..., Any]) -> Any:
    """Built once per backend, so SQLAlchemy compiles it once."""
    table = InboxUpdate.__table__
    return insert(table).on_conflict_do_nothing(index_elements=["update_id"]).returning(table.c.update_id)


async def mark_done(session: AsyncSession, *, update_ids: Sequence[int], now: datetime) -> None:
    """Their handlers returned: nobody handles them again."""
    await session.execute(
        update(InboxUpdate)
        .where(InboxUpdate.update_id.in_(list(update_ids)), InboxUpdate.done_at.is_(None))
        .values(done_at=now)
        .execution_options(synchronize_session=False)
    )


def _orphaned(now: datetime | None) -> Any:
    """Open rows whose worker is dead at `now`; with no `now`, every open row (a lone SQLite process starting)."""
    if now is None:
        return InboxUpdate.done_at.is_(None)
    return InboxUpdate.done_at.is_(None) & or_(
        InboxUpdate.claimed_by.is_(None), InboxUpdate.claimed_by.not_in(alive(now))
    )


async def take_back(session: AsyncSession, *, worker: str, now: datetime | None, limit: int = 200) -> list[Incoming]:
    """Open updates of dead workers, claimed for `worker` to handle, oldest first.

    An update whose effect a dead worker had committed (`handled_at`) is not
    handled again: it is closed (`finish_handled`). On PostgreSQL the rows are
    locked with SKIP LOCKED, so two survivors never take the same update.
    """
    chosen = (
        select(InboxUpdate.update_id)
        .where(_orphaned(now), InboxUpdate.handled_at.is_(None))
        .order_by(InboxUpdate.update_id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True)
    ids = list(await session.scalars(chosen))
    if not ids:
        return []
    result = await session.execute(
        update(InboxUpdate)
        .where(InboxUpdate.update_id.in_(ids))
        .values(claimed_by=worker, attempts=InboxUpdate.attempts + 1)
        .returning(InboxUpdate.update_id, InboxUpdate.payload)
        .execution_options(synchronize_session=False)
    )
    return sorted((Incoming(update_id, payload) for update_id, payload in result.all()), key=lambda u: u.update_id)


async def finish_handled(session: AsyncSession, *, now: datetime | None, at: datetime) -> int:
    """Dead workers' updates whose effect was committed: done, not handled twice (their answer may be lost)."""
    result = await session.execute(
        update(InboxUpdate)
        .where(_orphaned(now), InboxUpdate.handled_at.is_not(None))
        .values(done_at=at)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) or 0


async def forget_old(session: AsyncSession, *, before: datetime) -> int:
    """Done updates older than `before` can go: Telegram will not deliver them again. Committed."""
    result = await session.execute(
        delete(InboxUpdate).where(InboxUpdate.received_at < before, InboxUpdate.done_at.is_not(None))
    )
    await session.commit()
    return rowcount(result) or 0
