"""Contingencies as people meet them: `/darurat`, its buttons, and the commander's `/insiden`.

A contingency is drafted from the text, tied to the reporter's TPS and
shift, and raised when its severity is chosen (or two minutes later as
`tinggi`, by the sweep). Acknowledge, resolve and escalate-now are open to
an admin and to a komandan of a unit the contingency reached or of a unit
above one: its TPS's primary and secondary units and everything above them.
That is decided here, from the database, on every press. The state machine
itself is `bot/services/escalation.py`.

A press that changes the contingency leaves its transaction open and
returns what must be told with it (`IncidentResult.announcement`):
flows/incidents.py words and queues that, then commits.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.services import audit, escalation
from bot.services.checkin import sent_time
from bot.services.escalation import ACKNOWLEDGED, OPEN, RESOLVED, Announcement, ContingencyView, Note, NoteKind
from bot.services.groups import GroupTarget
from bot.services.people import Actor, commands_unit, group_unit
from bot.services.schedule import on_duty
from models import Contingency, TpsSecondaryUnit, UnitClosure
from models.enums import Role, Severity

MAX_TEXT = 2000
ATTEMPTS = 5
PAGE_SIZE = 5


class IncidentOutcome(StrEnum):
    raised = "raised"
    acknowledged = "acknowledged"
    resolved = "resolved"
    escalated = "escalated"
    located = "located"
    at_top = "at_top"
    already_raised = "already_raised"
    already_acknowledged = "already_acknowledged"
    already_resolved = "already_resolved"
    forbidden = "forbidden"
    not_yours = "not_yours"
    unknown = "unknown"
    invalid = "invalid"
    busy = "busy"


@dataclass(frozen=True)
class IncidentResult:
    """What a press did, the contingency as it now stands, the groups it newly reached, and what to tell."""

    outcome: IncidentOutcome
    view: ContingencyView | None = None
    targets: tuple[GroupTarget, ...] = ()
    announcement: Announcement | None = None


class ListOutcome(StrEnum):
    listed = "listed"
    forbidden = "forbidden"
    unregistered_group = "unregistered_group"


@dataclass(frozen=True)
class IncidentPage:
    outcome: ListOutcome
    items: tuple[ContingencyView, ...] = ()
    page: int = 0
    pages: int = 1
    total: int = 0


async def draft(
    session: AsyncSession,
    *,
    actor: Actor,
    text: str,
    now: datetime,
    opens_before: timedelta,
    sent_at: datetime | None = None,
) -> int:
    """Record the contingency from its text; it is raised when the severity is chosen.

    It comes from the TPS and shift the reporter was on when they sent it
    (`sent_at`, `message.date`; None: as it is read), and keeps that time
    for the alert. Its timer starts now, when the bot asks for the severity:
    if none is chosen within `DRAFT_TIMEOUT`, the sweep raises it as `tinggi`.
    """
    sent = sent_time(sent_at or now, now)
    duty = await on_duty(session, personnel_id=actor.personnel_id, now=sent, opens_before=opens_before)
    unit_id = duty.unit_id if duty else actor.unit_id
    row = Contingency(
        reporter_id=actor.personnel_id,
        tps_id=duty.post.tps_id if duty else None,
        shift_id=duty.shift.shift_id if duty else None,
        unit_id=unit_id,
        level_unit_id=unit_id,
        text=text[:MAX_TEXT],
        sent_at=sent,
        created_at=now,
        deadline_at=now + escalation.DRAFT_TIMEOUT,
        version=0,
    )
    session.add(row)
    await session.flush()
    audit.record(
        session,
        action="contingency.drafted",
        entity="contingency",
        entity_id=row.id,
        actor_id=actor.personnel_id,
        detail={"tps_id": row.tps_id, "shift_id": row.shift_id},
    )
    await session.commit()
    return row.id


Decide = Callable[[ContingencyView], Awaitable[IncidentResult | None]]


async def _with_retries(session: AsyncSession, contingency_id: int, decide: Decide) -> IncidentResult:
    """Read, decide, compare-and-set; a lost race re-reads and decides again on the newer state.

    The decided change is left uncommitted: the caller queues its announcement and commits.
    """
    for _ in range(ATTEMPTS):
        view = await escalation.load(session, contingency_id)
        if view is None:
            return IncidentResult(IncidentOutcome.unknown)
        result = await decide(view)
        if result is not None:
            return result
        await session.rollback()
    return IncidentResult(IncidentOutcome.busy)


async def may_act(session: AsyncSession, *, actor: Actor, view: ContingencyView) -> bool:
    """An admin, or a komandan whose unit is one of the origins or above one."""
    if actor.is_admin:
        return True
    if actor.role != Role.komandan:
        return False
    query = select(exists().where(UnitClosure.ancestor_id == actor.unit_id, UnitClosure.unit_id.in_(view.origins)))
    return bool(await session.scalar(query))


async def choose_severity(
    session: AsyncSession, *, contingency_id: int, actor: Actor, severity: str, now: datetime, settings: Settings
) -> IncidentResult:
    """The reporter's button: raise the draft and say which groups have it."""
    if severity not in Severity.__members__:
        return IncidentResult(IncidentOutcome.invalid)

    async def decide(view: ContingencyView) -> IncidentResult | None:
        if view.reporter_id != actor.personnel_id:
            return IncidentResult(IncidentOutcome.not_yours)
        if view.raised_at is not None:
            return IncidentResult(IncidentOutcome.already_raised, view)
        announcement = await escalation.raise_now(
            session, view, severity=severity, now=now, settings=settings, actor_id=actor.personnel_id
        )
        if announcement is None:
            return None
        return IncidentResult(IncidentOutcome.raised, announcement.view, announcement.reach, announcement)

    return await _with_retries(session, contingency_id, decide)


async def acknowledge(
    session: AsyncSession, *, contingency_id: int, actor: Actor, now: datetime, settings: Settings
) -> IncidentResult:
    """Stop the climb: this commander has it. A second press only says who had it first."""
    reminder = now + timedelta(minutes=settings.escalation.resolve_reminder_minutes)
    values = {
        "state": ACKNOWLEDGED,
        "acknowledged_by_id": actor.personnel_id,
        "acknowledged_at": now,
        "deadline_at": reminder,
    }

    async def act(view: ContingencyView) -> IncidentResult | None:
        if view.state != OPEN:
            return IncidentResult(IncidentOutcome.already_acknowledged, view)
        return await _apply(
            session,
            view,
            actor,
            kind="acknowledged",
            values=values,
            now=now,
            outcome=IncidentOutcome.acknowledged,
        )

    return await _as_commander(session, contingency_id, actor, act)


async def resolve(session: AsyncSession, *, contingency_id: int, actor: Actor, now: datetime) -> IncidentResult:
    """Close it, acknowledged or not; every copy shows who closed it and when."""
    values = {"state": RESOLVED, "resolved_by_id": actor.personnel_id, "resolved_at": now, "deadline_at": None}

    async def act(view: ContingencyView) -> IncidentResult | None:
        return await _apply(
            session,
            view,
            actor,
            kind="resolved",
            values=values,
            now=now,
            outcome=IncidentOutcome.resolved,
        )

    return await _as_commander(session, contingency_id, actor, act)


async def escalate_now(
    session: AsyncSession, *, contingency_id: int, actor: Actor, now: datetime, settings: Settings
) -> IncidentResult:
    """A commander sends it one level up without waiting for the timer."""

    async def act(view: ContingencyView) -> IncidentResult | None:
        announcement = await escalation.climb(session, view, now=now, settings=settings, actor_id=actor.personnel_id)
        if announcement is None:
            return None
        outcome = IncidentOutcome.escalated if announcement.reach else IncidentOutcome.at_top
        return IncidentResult(outcome, announcement.view, announcement.reach, announcement)

    return await _as_commander(session, contingency_id, actor, act)


async def attach_location(
    session: AsyncSession,
    *,
    contingency_id: int,
    actor: Actor,
    lat: float,
    lon: float,
    now: datetime,
) -> IncidentResult:
    """The reporter's shared location; every copy already posted is to show it."""

    async def decide(view: ContingencyView) -> IncidentResult | None:
        if view.reporter_id != actor.personnel_id:
            return IncidentResult(IncidentOutcome.not_yours)
        if view.state == RESOLVED:
            return IncidentResult(IncidentOutcome.already_resolved, view)
        if not await escalation.transition(
            session,
            view,
            kind="located",
            now=now,
            values={"lat": lat, "lon": lon},
            unit_id=view.level_unit_id,
            actor_id=actor.personnel_id,
        ):
            return None
        after = await escalation.load(session, view.id)
        assert after is not None
        return IncidentResult(IncidentOutcome.located, after, announcement=Announcement(after, sync=True))

    return await _with_retries(session, contingency_id, decide)


async def _as_commander(session: AsyncSession, contingency_id: int, actor: Actor, act: Decide) -> IncidentResult:
    """Refuse whoever may not act and what is closed already; otherwise `act` on the latest state."""

    async def decide(view: ContingencyView) -> IncidentResult | None:
        refused = await _refusal(session, actor, view)
        return refused if refused is not None else await act(view)

    return await _with_retries(session, contingency_id, decide)


async def _refusal(session: AsyncSession, actor: Actor, view: ContingencyView) -> IncidentResult | None:
    if view.raised_at is None:
        return IncidentResult(IncidentOutcome.unknown)
    if not await may_act(session, actor=actor, view=view):
        return IncidentResult(IncidentOutcome.forbidden, view)
    if view.state == RESOLVED:
        return IncidentResult(IncidentOutcome.already_resolved, view)
    return None


async def _apply(
    session: AsyncSession,
    view: ContingencyView,
    actor: Actor,
    *,
    kind: str,
    values: dict[str, object],
    now: datetime,
    outcome: IncidentOutcome,
) -> IncidentResult | None:
    """Compare-and-set; every copy is to show the new state, and the reporter hears who acted."""
    if not await escalation.transition(
        session, view, kind=kind, now=now, values=values, unit_id=actor.unit_id, actor_id=actor.personnel_id
    ):
        return None
    after = await escalation.load(session, view.id)
    assert after is not None
    notes: tuple[Note, ...] = ()
    if after.reporter_id is not None:  # an automatic escort alert has nobody to tell privately
        notes = (
            Note(
                NoteKind.reporter_update,
                after.reporter_chat,
                after.reporter_id,
                after.reporter_language,
                f"cont:{after.id}:r{after.version}",
            ),
        )
    return IncidentResult(outcome, after, announcement=Announcement(after, sync=True, notes=notes))


async def open_incidents(
    session: AsyncSession, *, actor: Actor, page: int = 0, chat_id: int | None = None, page_size: int = PAGE_SIZE
) -> IncidentPage:
    """Unresolved contingencies in the commander's subtree, oldest first, one page of them.

    In a command group the scope is the group's unit, which the commander
    must command; an unregistered group gets nothing.
    """
    scope = actor.unit_id
    if chat_id is not None:
        unit = await group_unit(session, chat_id=chat_id)
        if unit is None:
            return IncidentPage(ListOutcome.unregistered_group)
        if not await commands_unit(session, actor=actor, unit_id=unit.id):
            return IncidentPage(ListOutcome.forbidden)
        scope = unit.id
    elif not actor.is_commander:
        return IncidentPage(ListOutcome.forbidden)
    where: list[ColumnElement[bool]] = [Contingency.state.in_([OPEN, ACKNOWLEDGED]), Contingency.raised_at.is_not(None)]
    if chat_id is not None or not actor.is_admin:
        subtree = select(UnitClosure.unit_id).where(UnitClosure.ancestor_id == scope)
        border = select(TpsSecondaryUnit.tps_id).where(TpsSecondaryUnit.unit_id.in_(subtree))
        where.append(
            or_(
                Contingency.unit_id.in_(subtree), Contingency.level_unit_id.in_(subtree), Contingency.tps_id.in_(border)
            )
        )
    total = int(await session.scalar(select(func.count()).select_from(Contingency).where(*where)) or 0)
    pages = max(1, math.ceil(total / page_size))
    page = min(max(page, 0), pages - 1)
    ids = await session.scalars(
        select(Contingency.id)
        .where(*where)
        .order_by(Contingency.raised_at, Contingency.id)
        .offset(page * page_size)
        .limit(page_size)
    )
    items = [view for contingency_id in ids.all() if (view := await escalation.load(session, contingency_id))]
    return IncidentPage(ListOutcome.listed, tuple(items), page, pages, total)
