"""Missed check-ins: the service finds the digests due, the render pages them, here they are queued.

Command groups read the operation's language (`operation.language`); a
digest too long for one message goes out as several pages, each its own
outbox row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.render.missed import digest_pages
from bot.render.outbox import html_payload
from bot.services import missed
from bot.services.outbox import enqueue_many


async def sweep_missed_checkins(session: AsyncSession, *, now: datetime, settings: Settings) -> int:
    """Report every running shift past its grace period; returns how many messages were queued."""
    due = await missed.due_digests(session, now=now, settings=settings)
    messages = [
        digest.worded(text, html_payload(), page=page)
        for digest in due
        for page, text in enumerate(
            digest_pages(
                digest.say,
                lang=settings.operation.language,
                zone=settings.operation.zone,
                grace_minutes=settings.checkin.grace_minutes,
            )
        )
    ]
    queued = await enqueue_many(session, messages, now=now)
    await session.commit()
    return queued
