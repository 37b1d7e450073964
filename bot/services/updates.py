"""Exactly-once handling of Telegram updates, across restarts and workers."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import dialect_insert
from models import ProcessedUpdate


async def claim_update(session: AsyncSession, *, update_id: int, now: datetime) -> bool:
    """True for the first worker to see this update; a redelivery gets False.

    The primary key does the arbitration, so it holds between processes too.
    One statement on every update: a plain insert-or-ignore, no ORM flush.
    """
    insert = dialect_insert(session)(ProcessedUpdate).values(update_id=update_id, at=now)
    result = await session.execute(insert.on_conflict_do_nothing(index_elements=["update_id"]))
    await session.commit()
    return bool(result.rowcount)


async def forget_old(session: AsyncSession, *, before: datetime) -> int:
    """Telegram keeps an update for 24 hours at most; older ids can go."""
    result = await session.execute(delete(ProcessedUpdate).where(ProcessedUpdate.at < before))
    await session.commit()
    return result.rowcount or 0


RETENTION = timedelta(hours=48)
