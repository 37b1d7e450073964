"""What the bot is waiting for from one person, kept in the database.

After `/hadir` a location is a check-in; after `/lapor` a location or photo
belongs to that report. A row per user, so any worker reads the same state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.db import dialect_insert, rowcount
from models import ChatState


@dataclass(frozen=True)
class Waiting:
    kind: str
    ref_id: int | None


async def expect(
    session: AsyncSession, *, telegram_user_id: int, kind: str, ref_id: int | None, now: datetime, ttl: timedelta
) -> None:
    """Replace whatever was awaited before; an upsert, so two quick updates cannot collide."""
    insert = dialect_insert(session)
    values = {"kind": kind, "ref_id": ref_id, "expires_at": now + ttl}
    statement = insert(ChatState).values(telegram_user_id=telegram_user_id, **values)
    await session.execute(statement.on_conflict_do_update(index_elements=["telegram_user_id"], set_=values))


async def waiting_for(session: AsyncSession, *, telegram_user_id: int, now: datetime) -> Waiting | None:
    return (await waiting_for_each(session, telegram_user_ids=[telegram_user_id], now=now)).get(telegram_user_id)


_WAITING = select(ChatState.telegram_user_id, ChatState.kind, ChatState.ref_id).where(
    ChatState.telegram_user_id.in_(bindparam("user_ids", expanding=True)), ChatState.expires_at > bindparam("now")
)
"""Built once: every location and every `/hadir` asks it, and building it cost more than running it."""


async def waiting_for_each(
    session: AsyncSession, *, telegram_user_ids: Sequence[int], now: datetime
) -> dict[int, Waiting]:
    """What is awaited from each of these people, by Telegram id; nothing (or expired) is missing.

    Every location and every `/hadir` asks (for a bunch of updates at once,
    see bot/intake/coalesce.py), so columns only.
    """
    rows = await session.execute(_WAITING, {"user_ids": list(set(telegram_user_ids)), "now": now})
    return {user_id: Waiting(kind, ref_id) for user_id, kind, ref_id in rows}


async def clear(session: AsyncSession, *, telegram_user_id: int) -> bool:
    """Forget what was awaited; True if something was.

    A write, so callers ask first (`waiting_for`, or for a bunch of updates
    bot/intake/coalesce.py): nearly always nothing waits, and then nothing is written.
    """
    result = await session.execute(delete(ChatState).where(ChatState.telegram_user_id == telegram_user_id))
    return bool(rowcount(result))
