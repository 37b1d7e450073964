"""A person's assignments: which TPS, which shift, how to get there."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Assignment, Checkin, Shift, Tps, Unit


@dataclass(frozen=True)
class Post:
    """One TPS of a shift, as a person in the field needs to see it."""

    tps_id: int
    tps_code: str
    tps_number: str
    address: str
    kerawanan: str
    access: str
    lat: float
    lon: float
    unit_name: str
    relocated_at: datetime | None


@dataclass(frozen=True)
class ShiftPlan:
    shift_id: int
    shift_code: str
    shift_name: str
    phase: str
    starts_at: datetime
    ends_at: datetime
    posts: tuple[Post, ...]

    def is_current(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


async def shift_plans(
    session: AsyncSession, *, personnel_id: int, now: datetime, include_past: bool = False
) -> list[ShiftPlan]:
    """Shifts not yet over, the current one first, then by start time."""
    query = (
        select(Shift, Tps, Unit)
        .join(Assignment, Assignment.shift_id == Shift.id)
        .join(Tps, Tps.id == Assignment.tps_id)
        .join(Unit, Unit.id == Tps.unit_id)
        .where(Assignment.personnel_id == personnel_id)
        .order_by(Shift.starts_at, Shift.id, Tps.code)
    )
    if not include_past:
        query = query.where(Shift.ends_at > now)
    plans: dict[int, tuple[Shift, list[Post]]] = {}
    for shift, tps, unit in await session.execute(query):
        plans.setdefault(shift.id, (shift, []))[1].append(_post(tps, unit))
    result = [
        ShiftPlan(s.id, s.code, s.name, s.phase, s.starts_at, s.ends_at, tuple(posts)) for s, posts in plans.values()
    ]
    return sorted(result, key=lambda plan: (not plan.is_current(now), plan.starts_at))


def _post(tps: Tps, unit: Unit) -> Post:
    return Post(
        tps_id=tps.id,
        tps_code=tps.code,
        tps_number=tps.number,
        address=tps.address,
        kerawanan=tps.kerawanan,
        access=tps.access,
        lat=tps.lat,
        lon=tps.lon,
        unit_name=unit.name,
        relocated_at=tps.relocated_at,
    )


async def open_shifts(
    session: AsyncSession, *, personnel_id: int, now: datetime, opens_before: timedelta
) -> list[ShiftPlan]:
    """Shifts running now or starting within `opens_before`: the current one first."""
    return [
        plan
        for plan in await shift_plans(session, personnel_id=personnel_id, now=now)
        if plan.starts_at - opens_before <= now < plan.ends_at
    ]


async def open_shift(
    session: AsyncSession, *, personnel_id: int, now: datetime, opens_before: timedelta
) -> ShiftPlan | None:
    """The shift a report counts for: the current one, else the next within `opens_before`."""
    plans = await open_shifts(session, personnel_id=personnel_id, now=now, opens_before=opens_before)
    return plans[0] if plans else None


@dataclass(frozen=True)
class Duty:
    """Where a report is from: the open shift, the TPS, and the unit that commands that TPS."""

    shift: ShiftPlan
    post: Post
    unit_id: int


async def on_duty(
    session: AsyncSession, *, personnel_id: int, now: datetime, opens_before: timedelta
) -> Duty | None:
    """The TPS a person is reporting from: where they checked in this shift, else their first post.

    Two police often cover five TPS; the one they checked in at is where they are.
    """
    shift = await open_shift(session, personnel_id=personnel_id, now=now, opens_before=opens_before)
    if shift is None:
        return None
    checked_in_at = await session.scalar(
        select(Checkin.tps_id).where(Checkin.personnel_id == personnel_id, Checkin.shift_id == shift.shift_id)
    )
    post = next((p for p in shift.posts if p.tps_id == checked_in_at), shift.posts[0])
    unit_id = await session.scalar(select(Tps.unit_id).where(Tps.id == post.tps_id))
    assert unit_id is not None
    return Duty(shift, post, unit_id)
