"""Escorts in chat: a member's position, the depart and arrive buttons, serah terima, and what `/kawal` shows.

The service moves the escort (bot/services/escorts); here the alert episodes
it opened or ended go to flows/incidents in the same transaction (raised or
cleared as contingencies), the lead hears of an arrival or a handover through
the outbox, and it all commits together, so the lead is never told of an
arrival that was rolled back. The sender's own answer is the handler's direct
reply, worded from what these return.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.intake.coalesce import Coalescer
from bot.render import escorts as texts
from bot.render.outbox import html_payload
from bot.services import escort_reminders, escorts
from bot.services.escorts import (
    ActionOutcome,
    ActionResult,
    AlertEpisode,
    EscortCounts,
    EscortDetail,
    EscortSummary,
    Member,
    PositionResult,
    ReceiveOutcome,
    ReceiveResult,
)
from bot.services.outbox import NewMessage, enqueue_many
from bot.services.people import Actor
from bot.services.status import Refusal, UnitRef, Viewer, authorize, child_units
from bot.storage.db import quick
from flows import incidents
from models.enums import EscortRole, Priority

PER_PAGE = 10
"""Escorts on one page of a subtree's list: ten blocks of bounded length stay well under Telegram's 4096."""


@dataclass(frozen=True)
class Duty:
    """One escort of a member's `/kawal`, in detail (route with vias, crew), with their role in it."""

    role: str
    detail: EscortDetail


@dataclass(frozen=True)
class Board:
    """A page of a subtree's escorts for a commander or a command group, with the units one level down."""

    unit: UnitRef
    counts: EscortCounts
    escorts: tuple[EscortSummary, ...]
    page: int
    pages: int
    children: tuple[UnitRef, ...]


# -- what /kawal shows ------------------------------------------------------------------------------


async def duties(session: AsyncSession, *, personnel_id: int, now: datetime, settings: Settings) -> list[Duty]:
    """A member's escorts not yet handed over; a member has a few, so each is read in detail."""
    found = []
    for own in await escorts.escorts_of_member(session, personnel_id=personnel_id, now=now):
        detail = await escorts.escort_detail(session, now=now, settings=settings.escort, escort_id=own.escort.id)
        if detail is not None:
            found.append(Duty(own.role, detail))
    return found


async def board(
    session: AsyncSession,
    *,
    viewer: Viewer,
    now: datetime,
    unit_code: str | None = None,
    unit_id: int | None = None,
    page: int = 0,
) -> Board | Refusal:
    """The subtree a commander or a group may see (decided as `/status` decides), one page of it."""
    unit = await authorize(session, viewer=viewer, unit_code=unit_code, unit_id=unit_id)
    if isinstance(unit, Refusal):
        return unit
    counts = await escorts.escort_counts(session, unit_ids=[unit.id])
    pages = max(1, -(-counts.total // PER_PAGE))
    page = min(max(page, 0), pages - 1)
    shown = await escorts.escorts_of_units(session, unit_ids=[unit.id], now=now, limit=PER_PAGE, offset=page * PER_PAGE)
    children = await child_units(session, unit_id=unit.id)
    return Board(unit, counts, tuple(shown), page, pages, tuple(children))


async def detail(
    session: AsyncSession, *, viewer: Viewer, escort_id: int, now: datetime, settings: Settings
) -> EscortDetail | Refusal | None:
    """One escort in full, for whoever may see its unit; None when it is gone."""
    found = await escorts.escort_detail(session, now=now, settings=settings.escort, escort_id=escort_id)
    if found is None:
        return None
    unit = await authorize(session, viewer=viewer, unit_id=found.summary.unit_id)
    return unit if isinstance(unit, Refusal) else found


# -- changes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Position:
    """A member's position as the handler read it; `answer`: the sender is to be answered whatever it changed
    (a plain location, the first of a live share); a live location's moves are answered only when they depart,
    pass a via or arrive."""

    actor: Actor
    lat: float
    lon: float
    at: datetime
    answer: bool


async def positions(
    session: AsyncSession, bunch: Sequence[Position], *, now: datetime, settings: Settings
) -> list[PositionResult | None]:
    """The positions of the moment in one transaction, each as if alone; in order.

    Thousands of escorts underway send hundreds of moves a second: one
    transaction for the bunch (bot/intake/coalesce.py) saves each move its
    own begin, commit and inbox mark, and its own read of the escort: the
    bunch's escorts are read and locked in one statement, in id order, so
    two workers' bunches cannot deadlock on them; a second position of one
    escort in the bunch sees the first.
    """
    held = await escorts.hold_for_positions(session, personnel_ids=[given.actor.personnel_id for given in bunch])
    found: list[PositionResult | None] = []
    for given in bunch:
        found.append(await _take(session, given, held, now=now, settings=settings))
    await session.commit()
    return found


async def _take(
    session: AsyncSession, given: Position, held: escorts.Held, *, now: datetime, settings: Settings
) -> PositionResult | None:
    result = await escorts.record_position(
        session,
        personnel_id=given.actor.personnel_id,
        lat=given.lat,
        lon=given.lon,
        at=given.at,
        now=now,
        settings=settings.escort,
        summarize=given.answer,
        held=held,
    )
    if result is None:
        return None
    await _alerts(session, opened=result.opened, cleared=result.cleared, now=now, settings=settings)
    if result.departed:
        await escort_reminders.cancel_departed(session, escort_id=result.escort_id)
    if result.arrived:
        found = await escorts.escort_detail(session, now=now, settings=settings.escort, escort_id=result.escort_id)
        if found is not None:
            await _tell_lead(session, found, by=given.actor, event="arrived", at=result.at, now=now, settings=settings)
    return result


def positions_together(
    sessions: async_sessionmaker[AsyncSession], now: Callable[[], datetime], settings: Settings
) -> Coalescer[Position, PositionResult | None]:
    """Escort positions of the moment taken together (`positions`)."""

    async def take(bunch: list[Position]) -> list[PositionResult | None]:
        async with quick(sessions) as session:
            return await positions(session, bunch, now=now(), settings=settings)

    return Coalescer(take)


async def depart(session: AsyncSession, *, actor: Actor, escort_id: int, now: datetime) -> ActionResult:
    """The depart button; pressed again, `already` and nothing written."""
    result = await escorts.depart(session, escort_id=escort_id, personnel_id=actor.personnel_id, now=now)
    if result.outcome is ActionOutcome.done:
        await escort_reminders.cancel_departed(session, escort_id=escort_id)
    await session.commit()
    return result


async def arrive(
    session: AsyncSession, *, actor: Actor, escort_id: int, now: datetime, settings: Settings
) -> ActionResult:
    """The arrive button: its alerts end, the lead is told; pressed again, `already` and nothing sent."""
    result = await escorts.arrive(
        session, escort_id=escort_id, personnel_id=actor.personnel_id, now=now, settings=settings.escort
    )
    if result.outcome is ActionOutcome.done:
        await _alerts(session, opened=(), cleared=result.cleared, now=now, settings=settings)
        found = await escorts.escort_detail(session, now=now, settings=settings.escort, escort_id=escort_id)
        if found is not None:
            await _tell_lead(session, found, by=actor, event="arrived", at=now, now=now, settings=settings)
    await session.commit()
    return result


async def receive(
    session: AsyncSession, *, actor: Actor, code: str, now: datetime, settings: Settings
) -> ReceiveResult:
    """`/terima CODE`: custody passes; the lead gets the confirmation the receiver gets, in their language."""
    result = await escorts.receive(
        session, code=code, personnel_id=actor.personnel_id, now=now, settings=settings.escort
    )
    if result.outcome is ReceiveOutcome.received:
        await _alerts(session, opened=(), cleared=result.cleared, now=now, settings=settings)
        lead = result.lead
        if lead is not None and lead.chat_id is not None and lead.personnel_id != actor.personnel_id:
            text = texts.received_lead_text(result, lead.language, settings.operation.zone)
            await enqueue_many(
                session,
                [_note(lead, text, f"escort:{result.escort.id if result.escort else result.code}:received:lead")],
                now=now,
            )
    await session.commit()
    return result


async def _alerts(
    session: AsyncSession,
    *,
    opened: Sequence[AlertEpisode],
    cleared: Sequence[AlertEpisode],
    now: datetime,
    settings: Settings,
) -> None:
    """Opened episodes become contingencies, ended ones close theirs: queued here, committed by the caller."""
    if opened:
        await incidents.raise_escort_alerts(session, settings=settings, episodes=opened, now=now)
    if cleared:
        await incidents.clear_escort_alerts(session, settings=settings, episodes=cleared, now=now)


def lead_of(found: EscortDetail) -> Member | None:
    return next((member for member in found.members if member.role == EscortRole.ketua.value), None)


async def _tell_lead(
    session: AsyncSession,
    found: EscortDetail,
    *,
    by: Actor,
    event: str,
    at: datetime,
    now: datetime,
    settings: Settings,
) -> None:
    """The lead hears of an arrival they did not report themselves; once per escort (the key)."""
    lead = lead_of(found)
    if lead is None or lead.chat_id is None or lead.personnel_id == by.personnel_id:
        return
    text = texts.arrived_lead_text(found.summary, lead.language, settings.operation.zone, by=by.title, at=at)
    await enqueue_many(session, [_note(lead, text, f"escort:{found.summary.id}:{event}:lead")], now=now)


def _note(member: Member, text: str, key: str) -> NewMessage:
    assert member.chat_id is not None
    return NewMessage(
        chat_id=member.chat_id,
        text=text,
        priority=Priority.group_alert,
        dedup_key=key,
        personnel_id=member.personnel_id,
        payload=html_payload(),
    )
