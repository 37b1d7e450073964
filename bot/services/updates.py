"""Exactly-once handling of Telegram updates, across restarts and workers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import dialect_insert
from models import ProcessedUpdate


async def claim_update(session: AsyncSession, *, update_id: int, now: datetime) -> bool:
    """True for the first worker to see this update; a redelivery gets False. Committed."""
    claimed = update_id in await claim_updates(session, update_ids=[update_id], now=now)
    await session.commit()
    return claimed


async def claim_updates(session: AsyncSession, *, update_ids: Sequence[int], now: datetime) -> set[int]:
    """The ids of these updates that nobody had claimed yet, claimed once the caller commits.

    The primary key does the arbitration, so it holds between processes too.
    One insert-or-ignore for the whole list (updates that arrive together are
    claimed together, see bot/coalesce.py); an id listed twice is claimed once.
    """
    rows = [{"update_id": update_id, "at": now} for update_id in dict.fromkeys(update_ids)]
    result = await session.execute(_claim(dialect_insert(session)), rows)
    return set(result.scalars())


@cache
def _claim(insert: Callable[..., Any]) -> Any:
    """Built once per backend, so SQLAlchemy compiles it once."""
    table = ProcessedUpdate.__table__
    return insert(table).on_conflict_do_nothing(index_elements=["update_id"]).returning(table.c.update_id)


async def forget_old(session: AsyncSession, *, before: datetime) -> int:
    """Telegram keeps an update for 24 hours at most; older ids can go."""
    result = await session.execute(delete(ProcessedUpdate).where(ProcessedUpdate.at < before))
    await session.commit()
    return result.rowcount or 0


RETENTION = timedelta(hours=48)
