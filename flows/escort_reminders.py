"""Escort reminders: the service works out who is reminded of what, the render words it, the service writes it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.render.escort_reminders import correction_text, reminder_text
from bot.render.outbox import html_payload
from bot.services import escort_reminders
from bot.services.reminders import PlanResult


async def plan_escort_reminders(session: AsyncSession, *, now: datetime, settings: Settings) -> PlanResult:
    """Make the outbox hold exactly the reminders the escorts' crews are owed before they leave.

    Read and decided first, worded next, written last in one transaction;
    idempotent. Part of the reminder pass (bot/ops/scheduler.py).
    """
    plan = await escort_reminders.work_out(session, now=now, settings=settings)
    zone, payload = settings.operation.zone, html_payload()
    return await escort_reminders.write(
        session,
        plan,
        reminders=[message.worded(reminder_text(message.say, zone), payload) for message in plan.reminders],
        corrections=[message.worded(correction_text(message.say, zone), payload) for message in plan.corrections],
        now=now,
    )
