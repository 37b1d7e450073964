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

Nothing here is worded: `draft`, `record` and `due_reports` say who is told
what (`BroadcastText`, `BroadcastReport`); flows/broadcast.py words it,
refuses what would not fit in one message, queues it and commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import audit
from bot.services.outbox import Outgoing, report_for_ref
from bot.services.people import Actor, commands_unit, unit_by_code
from bot.storage.db import rowcount
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
class Recipient:
    personnel_id: int
    chat_id: int | None
    language: str
    reachable: bool


@dataclass(frozen=True)
class BroadcastDraft:
    """A broadcast worked out with nothing written: who would read what, or why it cannot go.

    `outcome` is `queued` when it may go; the flow still refuses it as
    `too_long` when it does not fit in one message once worded.
    """

    outcome: BroadcastOutcome
    sender: str = ""
    unit_id: int = 0
    unit_code: str = ""
    unit_name: str = ""
    body: str = ""
    recipients: tuple[Recipient, ...] = ()
    unregistered: int = 0
    unreachable: int = 0

    @property
    def result(self) -> BroadcastResult:
        """What the commander is told when it does not go."""
        return BroadcastResult(
            self.outcome, unit_name=self.unit_name, unregistered=self.unregistered, unreachable=self.unreachable
        )


@dataclass(frozen=True)
class BroadcastText:
    """What one recipient reads: who sent it, for which unit, the text as typed, in the recipient's language."""

    sender: str
    unit: str
    text: str
    language: str


@dataclass(frozen=True)
class BroadcastReport:
    """The sender's delivery report of one broadcast, in the sender's language."""

    broadcast_id: int
    unit: str
    text: str
    language: str
    recipients: int
    delivered: int
    pending: int
    unreachable: int
    unregistered: int


def ref_of(broadcast_id: int) -> str:
    return f"broadcast:{broadcast_id}"


async def draft(session: AsyncSession, *, actor: Actor, text: str) -> BroadcastDraft:
    """Who `text` goes to (the actor's subtree, or the unit named first); authority checked here, nothing written."""
    text = text.strip()
    unit, body = await _target(session, actor=actor, text=text)
    if not body:
        return BroadcastDraft(BroadcastOutcome.empty)
    if len(body) > MAX_TEXT:
        return BroadcastDraft(BroadcastOutcome.too_long)
    if not await commands_unit(session, actor=actor, unit_id=unit.id):
        return BroadcastDraft(BroadcastOutcome.forbidden, unit_name=unit.name)
    people = await _people(session, unit_id=unit.id, sender_id=actor.personnel_id)
    recipients = tuple(p for p in people if p.chat_id is not None and p.reachable)
    unregistered = sum(p.chat_id is None for p in people)
    unreachable = sum(p.chat_id is not None and not p.reachable for p in people)
    outcome = BroadcastOutcome.queued if recipients else BroadcastOutcome.no_recipients
    return BroadcastDraft(
        outcome, actor.title, unit.id, unit.code, unit.name, body, recipients, unregistered, unreachable
    )


async def record(
    session: AsyncSession, *, actor: Actor, draft: BroadcastDraft, now: datetime
) -> tuple[BroadcastResult, list[Outgoing[BroadcastText]]]:
    """Write the broadcast and its audit row; returns the reply and one message per recipient, for the flow to queue.

    The caller queues the messages and commits: rows and messages are one transaction.
    """
    row = Broadcast(
        sender_id=actor.personnel_id,
        unit_id=draft.unit_id,
        text=draft.body,
        recipients=len(draft.recipients),
        created_at=now,
    )
    session.add(row)
    await session.flush()
    audit.record(
        session,
        action=SENT,
        entity="broadcast",
        entity_id=row.id,
        actor_id=actor.personnel_id,
        detail={
            "unit": draft.unit_code,
            "recipients": len(draft.recipients),
            "unregistered": draft.unregistered,
            "unreachable": draft.unreachable,
            "length": len(draft.body),
        },
    )
    result = BroadcastResult(
        BroadcastOutcome.queued, row.id, draft.unit_name, len(draft.recipients), draft.unregistered, draft.unreachable
    )
    return result, [_message(row, draft, person, now) for person in draft.recipients]


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


async def _people(session: AsyncSession, *, unit_id: int, sender_id: int) -> list[Recipient]:
    query = (
        select(Personnel.id, Personnel.telegram_user_id, Personnel.language, Personnel.reachable)
        .join(UnitClosure, UnitClosure.unit_id == Personnel.unit_id)
        .where(UnitClosure.ancestor_id == unit_id, Personnel.id != sender_id)
        .order_by(Personnel.id)
    )
    return [Recipient(*row) for row in await session.execute(query)]


def _message(row: Broadcast, draft: BroadcastDraft, person: Recipient, now: datetime) -> Outgoing[BroadcastText]:
    assert person.chat_id is not None
    return Outgoing(
        BroadcastText(draft.sender, draft.unit_name, row.text, person.language),
        chat_id=person.chat_id,
        personnel_id=person.personnel_id,
        priority=Priority.broadcast,
        due_at=now,
        dedup_key=f"{ref_of(row.id)}:{person.personnel_id}",
        ref=ref_of(row.id),
    )


async def due_reports(session: AsyncSession, *, now: datetime) -> list[Outgoing[BroadcastReport]]:
    """Each finished broadcast's delivery report, claimed once (audited), for the flow to queue and commit."""
    reports: list[Outgoing[BroadcastReport]] = []
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
        if not rowcount(claimed):
            continue  # another worker reported it
        report = await _report(session, row=row, counts=counts, now=now)
        if report is not None:
            reports.append(report)
    return reports


async def _report(
    session: AsyncSession, *, row: Broadcast, counts: dict[str, int], now: datetime
) -> Outgoing[BroadcastReport] | None:
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
        return None
    return Outgoing(
        BroadcastReport(row.id, unit.name, row.text, sender.language, **numbers),
        chat_id=sender.telegram_user_id,
        personnel_id=sender.id,
        priority=Priority.reminder,
        dedup_key=f"broadcast-report:{row.id}",
        ref=f"broadcast-report:{row.id}",
        due_at=now,
    )


async def _skipped(session: AsyncSession, broadcast_id: int) -> dict[str, Any]:
    """Who was left out when it was sent (not registered, known unreachable), as the audit recorded it."""
    detail = await session.scalar(
        select(AuditLog.detail).where(
            AuditLog.entity == "broadcast", AuditLog.entity_id == str(broadcast_id), AuditLog.action == SENT
        )
    )
    return dict(detail or {})
