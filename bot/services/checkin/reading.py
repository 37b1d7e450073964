"""What deciding a bunch needs of the database, read first, one query each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import CheckinSettings
from bot.services.checkin.deciding import (
    CheckinRow,
    Seen,
    open_at,
    refusal_of,
)
from bot.services.checkin.results import (
    Key,
    Presence,
)
from bot.services.schedule import ShiftPlan, shift_plans_of
from models import Checkin


async def read(
    session: AsyncSession, bunch: Sequence[tuple[Presence, datetime]], *, now: datetime, settings: CheckinSettings
) -> Seen:
    """What `decide` needs of the database for the locations not refused outright."""
    asking = [(presence, at) for presence, at in bunch if refusal_of(presence.forwarded, at, now) is None]
    if not asking:
        return Seen()
    people = sorted({presence.personnel_id for presence, _ in asking})
    plans = await _plans_around(session, people, [at for _, at in asking], settings)
    idle = sorted({p.personnel_id for p, at in asking if not open_at(plans.get(p.personnel_id, []), at, settings)})
    return Seen(plans, await _rows(session, plans), await _calendar(session, idle, now=now))


async def _plans_around(
    session: AsyncSession, personnel_ids: Sequence[int], times: Sequence[datetime], settings: CheckinSettings
) -> dict[int, list[ShiftPlan]]:
    """In one query, every shift of these people open for check-in at any of `times` (`_open_at` picks each's)."""
    earliest, latest = min(times), max(times)
    return await shift_plans_of(
        session,
        personnel_ids=personnel_ids,
        now=earliest,
        starting_within=latest - earliest + timedelta(minutes=settings.opens_before_minutes),
    )


async def _rows(session: AsyncSession, plans: Mapping[int, Sequence[ShiftPlan]]) -> dict[Key, CheckinRow]:
    """In one query, the check-ins of these people for these shifts."""
    if not plans:
        return {}
    query = select(
        Checkin.personnel_id,
        Checkin.shift_id,
        Checkin.tps_id,
        Checkin.distance_m,
        Checkin.far,
        Checkin.late,
        Checkin.checked_in_at,
    ).where(
        Checkin.personnel_id.in_(list(plans)),
        Checkin.shift_id.in_({plan.shift_id for mine in plans.values() for plan in mine}),
    )
    return {
        (row.personnel_id, row.shift_id): CheckinRow(row.tps_id, row.distance_m, row.far, row.late, row.checked_in_at)
        for row in await session.execute(query)
    }


async def _calendar(
    session: AsyncSession, personnel_ids: Sequence[int], *, now: datetime
) -> dict[int, list[ShiftPlan]]:
    """In one query, every shift of these people, ended ones too (`_out_of_hours` orders them itself)."""
    if not personnel_ids:
        return {}
    return await shift_plans_of(session, personnel_ids=personnel_ids, now=now, include_past=True)
