"""Situation reports: filed by personnel, categorized by button, verified by commanders.

A report is created when the text arrives and filed when its category is
chosen; the phase comes from the shift it was sent in, so nobody has to say it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import audit
from bot.services.checkin import sent_time
from bot.services.people import Actor, commands_unit
from bot.services.schedule import on_duty
from bot.storage.db import rowcount
from models import Personnel, Sitrep, Tps, UnitClosure
from models.enums import SitrepCategory

MAX_TEXT = 2000


class SitrepOutcome(StrEnum):
    filed = "filed"
    already = "already"
    attached = "attached"
    verified = "verified"
    not_yours = "not_yours"
    forbidden = "forbidden"
    unknown = "unknown"
    invalid = "invalid"


@dataclass(frozen=True)
class SitrepView:
    """A filed report as a commander reviews it: `sent_at` when it was sent, `created_at` when the bot read it."""

    id: int
    category: str | None
    phase: str | None
    text: str
    tps_code: str | None
    reporter: str
    sent_at: datetime
    created_at: datetime
    verified: bool


async def draft(
    session: AsyncSession,
    *,
    actor: Actor,
    text: str,
    now: datetime,
    opens_before: timedelta,
    sent_at: datetime | None = None,
) -> int:
    """Create the report from its text; the category comes with the next button press.

    Shift, phase and TPS are those of when it was sent (`sent_at`,
    `message.date`; None: as it is read): a report that waited out an
    outage is about that moment, not the one the bot read it in.
    """
    sent = sent_time(sent_at or now, now)
    duty = await on_duty(session, personnel_id=actor.personnel_id, now=sent, opens_before=opens_before)
    row = Sitrep(
        personnel_id=actor.personnel_id,
        shift_id=duty.shift.shift_id if duty else None,
        tps_id=duty.post.tps_id if duty else None,
        unit_id=duty.unit_id if duty else actor.unit_id,
        phase=duty.shift.phase if duty else None,
        text=text[:MAX_TEXT],
        sent_at=sent,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    audit.record(session, action="sitrep.drafted", entity="sitrep", entity_id=row.id, actor_id=actor.personnel_id)
    await session.commit()
    return row.id


async def file(session: AsyncSession, *, sitrep_id: int, actor: Actor, category: str, now: datetime) -> SitrepOutcome:
    """Choose the category; only the reporter may, and only once (two quick presses file once)."""
    if category not in SitrepCategory.__members__:
        return SitrepOutcome.invalid
    row = await session.get(Sitrep, sitrep_id)
    if row is None:
        return SitrepOutcome.unknown
    if row.personnel_id != actor.personnel_id:
        return SitrepOutcome.not_yours
    filed = await session.execute(
        update(Sitrep).where(Sitrep.id == sitrep_id, Sitrep.filed_at.is_(None)).values(category=category, filed_at=now)
    )
    if rowcount(filed) != 1:
        return SitrepOutcome.already
    audit.record(
        session,
        action="sitrep.filed",
        entity="sitrep",
        entity_id=sitrep_id,
        actor_id=actor.personnel_id,
        detail={"category": category, "phase": row.phase},
    )
    await session.commit()
    return SitrepOutcome.filed


async def attach(
    session: AsyncSession,
    *,
    sitrep_id: int,
    actor: Actor,
    lat: float | None = None,
    lon: float | None = None,
    photo_file_id: str | None = None,
) -> SitrepOutcome:
    row = await session.get(Sitrep, sitrep_id)
    if row is None:
        return SitrepOutcome.unknown
    if row.personnel_id != actor.personnel_id:
        return SitrepOutcome.not_yours
    if lat is not None and lon is not None:
        row.lat, row.lon = lat, lon
    if photo_file_id is not None:
        row.photo_file_id = photo_file_id
    audit.record(
        session,
        action="sitrep.attached",
        entity="sitrep",
        entity_id=row.id,
        actor_id=actor.personnel_id,
        detail={"location": lat is not None, "photo": photo_file_id is not None},
    )
    await session.commit()
    return SitrepOutcome.attached


async def verify(session: AsyncSession, *, sitrep_id: int, actor: Actor, now: datetime) -> SitrepOutcome:
    """A commander's review; authority over the report's unit is checked here, not trusted."""
    row = await session.get(Sitrep, sitrep_id)
    if row is None or row.filed_at is None:
        return SitrepOutcome.unknown
    if not await commands_unit(session, actor=actor, unit_id=row.unit_id):
        return SitrepOutcome.forbidden
    verified = await session.execute(
        update(Sitrep)
        .where(Sitrep.id == sitrep_id, Sitrep.verified_at.is_(None))
        .values(verified_by_id=actor.personnel_id, verified_at=now)
    )
    if rowcount(verified) != 1:
        return SitrepOutcome.already
    audit.record(session, action="sitrep.verified", entity="sitrep", entity_id=sitrep_id, actor_id=actor.personnel_id)
    await session.commit()
    return SitrepOutcome.verified


async def recent(
    session: AsyncSession, *, actor: Actor, limit: int = 10, unverified_only: bool = True
) -> list[SitrepView]:
    """Latest filed reports in the commander's subtree, newest first."""
    query = (
        select(Sitrep, Personnel.rank, Personnel.name, Tps.code)
        .join(Personnel, Personnel.id == Sitrep.personnel_id)
        .outerjoin(Tps, Tps.id == Sitrep.tps_id)
        .where(Sitrep.filed_at.is_not(None))
        .order_by(Sitrep.filed_at.desc(), Sitrep.id.desc())
        .limit(limit)
    )
    if not actor.is_admin:
        subtree = select(UnitClosure.unit_id).where(UnitClosure.ancestor_id == actor.unit_id)
        query = query.where(Sitrep.unit_id.in_(subtree))
    if unverified_only:
        query = query.where(Sitrep.verified_at.is_(None))
    return [
        SitrepView(
            row.id,
            row.category,
            row.phase,
            row.text,
            tps_code,
            f"{rank} {name}".strip(),
            row.sent_at or row.created_at,
            row.created_at,
            row.verified_at is not None,
        )
        for row, rank, name, tps_code in await session.execute(query)
    ]
