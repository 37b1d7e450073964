"""`/siaran` and its delivery reports: the service decides who reads what, the render words it, here it is queued."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.render import LANGUAGES, MAX_TEXT
from bot.render.broadcast import broadcast_text, report_text
from bot.render.outbox import html_payload
from bot.services import broadcast
from bot.services.broadcast import BroadcastDraft, BroadcastOutcome, BroadcastReport, BroadcastResult, BroadcastText
from bot.services.outbox import NewMessage, Outgoing, enqueue_many
from bot.services.people import Actor


async def send_broadcast(session: AsyncSession, *, actor: Actor, text: str, now: datetime) -> BroadcastResult:
    """Queue `text` to the actor's subtree (or the unit named first), one message per recipient, and commit."""
    draft = await broadcast.draft(session, actor=actor, text=text)
    if draft.outcome in (BroadcastOutcome.empty, BroadcastOutcome.too_long):
        return draft.result
    if _too_long(draft):
        return BroadcastResult(BroadcastOutcome.too_long)
    if draft.outcome is not BroadcastOutcome.queued:
        return draft.result
    result, messages = await broadcast.record(session, actor=actor, draft=draft, now=now)
    await enqueue_many(session, (_worded(message) for message in messages), now=now)
    await session.commit()
    return result


def _too_long(draft: BroadcastDraft) -> bool:
    """Escaping can lengthen a text (`<` becomes `&lt;`): what is sent must fit in one message, in either language."""
    return any(
        len(broadcast_text(sender=draft.sender, unit=draft.unit_name, text=draft.body, lang=lang)) > MAX_TEXT
        for lang in LANGUAGES
    )


def _worded(message: Outgoing[BroadcastText]) -> NewMessage:
    say = message.say
    return message.worded(
        broadcast_text(sender=say.sender, unit=say.unit, text=say.text, lang=say.language), html_payload()
    )


async def sweep_broadcast_reports(session: AsyncSession, *, now: datetime) -> int:
    """Send each finished broadcast's delivery report to its sender, once; returns how many."""
    reports = await broadcast.due_reports(session, now=now)
    queued = await enqueue_many(session, [_report(report) for report in reports], now=now)
    await session.commit()
    return queued


def _report(message: Outgoing[BroadcastReport]) -> NewMessage:
    say = message.say
    text = report_text(
        broadcast_id=say.broadcast_id,
        unit=say.unit,
        text=say.text,
        lang=say.language,
        recipients=say.recipients,
        delivered=say.delivered,
        unreachable=say.unreachable,
        pending=say.pending,
        unregistered=say.unregistered,
    )
    return message.worded(text, html_payload())
