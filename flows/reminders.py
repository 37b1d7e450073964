"""Shift reminders: the service works out who is reminded of what, the render words it, the service writes it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.render.outbox import html_payload
from bot.render.reminders import correction_text, reminder_text
from bot.services import reminders
from bot.services.reminders import Correction, PlanResult, Reminder


async def plan_reminders(session: AsyncSession, *, now: datetime, settings: Settings) -> PlanResult:
    """Make the outbox hold exactly the reminders the roster asks for in the next `reminders.HORIZON`.

    Read and decided first, worded next, written last in one transaction (and
    every message is worded before the first write, so SQLite's writer waits
    for none of it). Idempotent: safe to run every minute, from any worker,
    after any restart.
    """
    plan = await reminders.work_out(session, now=now, settings=settings)
    word = _wording(settings.operation.zone)
    payload = html_payload()
    return await reminders.write(
        session,
        plan,
        reminders=[message.worded(word(message.say), payload) for message in plan.reminders],
        corrections=[message.worded(_correction(message.say, settings), payload) for message in plan.corrections],
        now=now,
    )


def _wording(zone: ZoneInfo) -> Callable[[Reminder], str]:
    """Each distinct reminder worded once: the people of one TPS, in one language, read the same text."""

    @cache
    def word(say: Reminder) -> str:
        return reminder_text(
            shift_name=say.shift_name,
            phase=say.phase,
            starts_at=say.starts_at,
            posts=say.posts,
            lang=say.language,
            zone=zone,
        )

    return word


def _correction(say: Correction, settings: Settings) -> str:
    return correction_text(
        shift_name=say.shift_name,
        starts_at=say.starts_at,
        old_starts_at=say.old_starts_at,
        posts=say.posts,
        moved_tps_ids=say.moved_tps_ids,
        places_changed=say.places_changed,
        lang=say.language,
        zone=settings.operation.zone,
    )
