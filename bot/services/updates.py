"""Exactly-once handling of Telegram updates, across restarts and workers."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models import ProcessedUpdate


async def claim_update(session: AsyncSession, *, update_id: int, now: datetime) -> bool:
    """True for the first worker to see this update; a redelivery gets False.

    The primary key does the arbitration, so it holds between processes too.
    """
    session.add(ProcessedUpdate(update_id=update_id, at=now))
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return False
    return True


async def forget_old(session: AsyncSession, *, before: datetime) -> int:
    """Telegram keeps an update for 24 hours at most; older ids can go."""
    result = await session.execute(delete(ProcessedUpdate).where(ProcessedUpdate.at < before))
    await session.commit()
    return result.rowcount or 0


RETENTION = timedelta(hours=48)
