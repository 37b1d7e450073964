"""`/siaran`: a commander's message to every registered person of their subtree, and its delivery report.

A broadcast is a `Broadcast` row plus one outbox row per recipient
(`ref = broadcast:<id>`, priority `broadcast`, behind every alert and
reminder). Its recipients are the people the commander's unit commands for
the operation (`Personnel.unit_id` in the subtree, TNI on BKO included),
registered and reachable; the sender is left out. A commander may name a
unit of their subtree first (`/siaran POLSEK-A1 ...`) to narrow it; an
admin may name any unit.

The report goes to the sender once no row of the broadcast is waiting:
delivered, unreachable (given up by the dispatcher, plus those known to be
unreachable when it was sent) and not registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.render import MAX_TEXT as TELEGRAM_MAX
from bot.render.broadcast import broadcast_text, report_text
from bot.render.outbox import html_payload
from bot.services import audit
from bot.services.outbox import NewMessage, enqueue, enqueue_many, report_for_ref
from bot.services.people import Actor, commands_unit, unit_by_code
from models import AuditLog, Broadcast, Personnel, Unit, UnitClosure
from models.enums import Priority

MAX_TEXT = 3500
SENT = "broadcast.sent"
REPORTED = "broadcast.reported"


class BroadcastOutcome(StrEnum):
    queued = "queued"
    empty = "empty"
    too_long = "too_long"
    forbidden = "forbidden"
    no_recipients = "no_recipients"


@dataclass(frozen=True)
class BroadcastResult:
    outcome: BroadcastOutcome
    broadcast_id: int | None = None
    unit_name: str = ""
    recipients: int = 0
    unregistered: int = 0
    unreachable: int = 0


@dataclass(frozen=True)
class _Person:
    personnel_id: int
    chat_id: int | None
    language: str
    reachable: bool


def ref_of(broadcast_id: int) -> str:
    return f"broadcast:{broadcast_id}"


async def send_broadcast(session: AsyncSession, *, actor: Actor, text: str, now: datetime) -> BroadcastResult:
    """Queue `text` to the actor's subtree (or the unit named first); authority checked here."""
    text = text.strip()
    unit, body = await _target(session, actor=actor, text=text)
    if not body:
        return BroadcastResult(BroadcastOutcome.empty)
    if len(body) > MAX_TEXT or _rendered_too_long(actor, unit, body):
        return BroadcastResult(BroadcastOutcome.too_long)
    if not await commands_unit(session, actor=actor, unit_id=unit.id):
        return BroadcastResult(BroadcastOutcome.forbidden, unit_name=unit.name)
    people = await _people(session, unit_id=unit.id, sender_id=actor.personnel_id)
    recipients = [p for p in people if p.chat_id is not None and p.reachable]
    unregistered = sum(p.chat_id is None for p in people)
    unreachable = sum(p.chat_id is not None and not p.reachable for p in people)
    if not recipients:
        return BroadcastResult(
            BroadcastOutcome.no_recipients, unit_name=unit.name, unregistered=unregistered, unreachable=unreachable
        )
    row = Broadcast(
        sender_id=actor.personnel_id, unit_id=unit.id, text=body, recipients=len(recipients), created_at=now
    )
    session.add(row)
    await session.flush()
    await enqueue_many(session, (_message(row, actor, unit, person, now) for person in recipients), now=now)
    audit.record(
        session,
        action=SENT,
        entity="broadcast",
        entity_id=row.id,
        actor_id=actor.personnel_id,
        detail={
            "unit": unit.code,
            "recipients": len(recipients),
            "unregistered": unregistered,
            "unreachable": unreachable,
            "length": len(body),
        },
    )
    await session.commit()
    return BroadcastResult(BroadcastOutcome.queued, row.id, unit.name, len(recipients), unregistered, unreachable)


async def _target(session: AsyncSession, *, actor: Actor, text: str) -> tuple[Unit, str]:
    """A first word naming a unit narrows the broadcast to it; otherwise the actor's own unit."""
    first, _, rest = text.partition(" ")
    if first and rest.strip():
        named = await unit_by_code(session, code=first)
        if named is not None:
            return named, rest.strip()
    own = await session.get(Unit, actor.unit_id)
    assert own is not None
    return own, text


def _rendered_too_long(actor: Actor, unit: Unit, body: str) -> bool:
    """Escaping can lengthen a text (`<` becomes `&lt;`): what is sent must fit in one message."""
    return any(
        len(broadcast_text(sender=actor.title, unit=unit.name, text=body, lang=lang)) > TELEGRAM_MAX
        for lang in ("id", "en")
    )


async def _people(session: AsyncSession, *, unit_id: int, sender_id: int) -> list[_Person]:
    query = (
        select(Personnel.id, Personnel.telegram_user_id, Personnel.language, Personnel.reachable)
        .join(UnitClosure, UnitClosure.unit_id == Personnel.unit_id)
        .where(UnitClosure.ancestor_id == unit_id, Personnel.id != sender_id)
        .order_by(Personnel.id)
    )
    return [_Person(*row) for row in await session.execute(query)]


def _message(row: Broadcast, actor: Actor, unit: Unit, person: _Person, now: datetime) -> NewMessage:
    assert person.chat_id is not None
    return NewMessage(
        chat_id=person.chat_id,
        personnel_id=person.personnel_id,
        priority=Priority.broadcast,
        due_at=now,
        text=broadcast_text(sender=actor.title, unit=unit.name, text=row.text, lang=person.language),
        dedup_key=f"{ref_of(row.id)}:{person.personnel_id}",
        ref=ref_of(row.id),
        payload=html_payload(),
    )


async def sweep_broadcast_reports(session: AsyncSession, *, now: datetime) -> int:
    """Send each finished broadcast's delivery report to its sender, once; returns how many."""
    sent = 0
    unreported = select(Broadcast).where(Broadcast.reported_at.is_(None)).execution_options(populate_existing=True)
    for row in list(await session.scalars(unreported)):
        counts = await report_for_ref(session, ref_of(row.id))
        if counts["pending"]:
            continue
        claimed = await session.execute(
            update(Broadcast)
            .where(Broadcast.id == row.id, Broadcast.reported_at.is_(None))
            .values(reported_at=now)
            .execution_options(synchronize_session=False)
        )
        if not claimed.rowcount:
            continue  # another worker reported it
        sent += await _report(session, row=row, counts=counts, now=now)
    await session.commit()
    return sent


async def _report(session: AsyncSession, *, row: Broadcast, counts: dict[str, int], now: datetime) -> int:
    skipped = await _skipped(session, row.id)
    sender = await session.get(Personnel, row.sender_id)
    unit = await session.get(Unit, row.unit_id)
    numbers = {
        "recipients": row.recipients,
        "delivered": counts["delivered"],
        "pending": counts["pending"],
        "unreachable": counts["unreachable"] + skipped.get("unreachable", 0),
        "unregistered": skipped.get("unregistered", 0),
    }
    audit.record(session, action=REPORTED, entity="broadcast", entity_id=row.id, actor="scheduler", detail=numbers)
    if sender is None or sender.telegram_user_id is None or unit is None:
        return 0
    text = report_text(broadcast_id=row.id, unit=unit.name, text=row.text, lang=sender.language, **numbers)
    queued = await enqueue(
        session,
        chat_id=sender.telegram_user_id,
        personnel_id=sender.id,
        text=text,
        priority=Priority.reminder,
        dedup_key=f"broadcast-report:{row.id}",
        ref=f"broadcast-report:{row.id}",
        payload=html_payload(),
        now=now,
    )
    return int(queued)


async def _skipped(session: AsyncSession, broadcast_id: int) -> dict[str, Any]:
    """Who was left out when it was sent (not registered, known unreachable), as the audit recorded it."""
    detail = await session.scalar(
        select(AuditLog.detail).where(
            AuditLog.entity == "broadcast", AuditLog.entity_id == str(broadcast_id), AuditLog.action == SENT
        )
    )
    return dict(detail or {})
