"""The command groups' live locations of escorts underway: the service decides, here it is queued and committed.

Started when an escort departs, moved to its latest position, stopped on
arrival, within each group's share of its limit (bot/services/live_locations.py).
All at the lowest priority: a contingency into the same group always goes first.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.render import live_locations as payloads
from bot.services import live_locations
from bot.services.live_locations import MOVE, SEND, STOP, LiveShow, ref, send_key
from bot.services.outbox import enqueue
from models.enums import Priority


async def sweep_live_locations(session: AsyncSession, *, now: datetime, settings: Settings) -> int:
    """One pass in one transaction: returns how many live-location calls were queued or rewritten."""
    plan = await live_locations.plan(session, now=now, group_per_minute=settings.delivery.group_per_minute)
    for show in plan.starts:
        await _queue(
            session,
            show,
            SEND,
            send_key(show.escort_id),
            payloads.start_payload(show.lat, show.lon, show.live_seconds),
            now,
        )
    for row_id, show in plan.rewrite.items():
        assert show.message_id is not None
        await live_locations.rewrite_pending(
            session, row_id=row_id, payload=payloads.move_payload(show.message_id, show.lat, show.lon)
        )
    for show in plan.moves:
        assert show.message_id is not None and show.at is not None
        key = f"{ref(show.escort_id)}:m:{show.at.timestamp():.3f}"
        await _queue(session, show, MOVE, key, payloads.move_payload(show.message_id, show.lat, show.lon), now)
    for show in plan.stops:
        assert show.message_id is not None
        await _queue(session, show, STOP, f"{ref(show.escort_id)}:x", payloads.stop_payload(show.message_id), now)
    await session.commit()
    return len(plan.starts) + len(plan.rewrite) + len(plan.moves) + len(plan.stops)


async def _queue(
    session: AsyncSession, show: LiveShow, method: str, key: str, payload: dict[str, object], now: datetime
) -> None:
    await enqueue(
        session,
        chat_id=show.chat_id,
        text="",
        priority=Priority.broadcast,
        dedup_key=key,
        method=method,
        payload=dict(payload),
        ref=ref(show.escort_id),
        now=now,
    )
