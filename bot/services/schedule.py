"""A person's assignments: which TPS, which shift, how to get there."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

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


SHIFT_COLUMNS = (Shift.id, Shift.code, Shift.name, Shift.phase, Shift.starts_at, Shift.ends_at)
POST_COLUMNS = (
    Tps.id,
    Tps.code,
    Tps.number,
    Tps.village,
    Tps.district,
    Tps.regency,
    Tps.kerawanan,
    Tps.access,
    Tps.lat,
    Tps.lon,
    Unit.name,
    Tps.relocated_at,
)


def post_from_row(row: Sequence[Any]) -> Post:
    """A `Post` from the `POST_COLUMNS` of a row: plain columns, no ORM objects on the hot path."""
    tps_id, code, number, village, district, regency, kerawanan, access, lat, lon, unit_name, relocated_at = row
    address = ", ".join(part for part in (village, district, regency) if part)
    return Post(tps_id, code, number, address, kerawanan, access, lat, lon, unit_name, relocated_at)


async def shift_plans(
    session: AsyncSession,
    *,
    personnel_id: int,
    now: datetime,
    include_past: bool = False,
    starting_within: timedelta | None = None,
) -> list[ShiftPlan]:
    """Shifts not yet over (and, if given, starting within `starting_within`), the current one first."""
    plans = await shift_plans_of(
        session, personnel_ids=[personnel_id], now=now, include_past=include_past, starting_within=starting_within
    )
    return plans.get(personnel_id, [])


async def shift_plans_of(
    session: AsyncSession,
    *,
    personnel_ids: Sequence[int],
    now: datetime,
    include_past: bool = False,
    starting_within: timedelta | None = None,
) -> dict[int, list[ShiftPlan]]:
    """`shift_plans` of several people in one query (check-ins that arrive together); nobody without one is listed."""
    query = (
        select(Assignment.personnel_id, *SHIFT_COLUMNS, *POST_COLUMNS)
        .select_from(Shift)
        .join(Assignment, Assignment.shift_id == Shift.id)
        .join(Tps, Tps.id == Assignment.tps_id)
        .join(Unit, Unit.id == Tps.unit_id)
        .where(Assignment.personnel_id.in_(personnel_ids))
        .order_by(Assignment.personnel_id, Shift.starts_at, Shift.id, Tps.code)
    )
    if not include_past:
        query = query.where(Shift.ends_at > now)
    if starting_within is not None:
        query = query.where(Shift.starts_at <= now + starting_within)
    shifts: dict[tuple[int, int], tuple[Any, ...]] = {}
    posts: dict[tuple[int, int], list[Post]] = {}
    width = 1 + len(SHIFT_COLUMNS)
    for row in await session.execute(query):
        key = (row[0], row[1])
        shifts.setdefault(key, tuple(row[1:width]))
        posts.setdefault(key, []).append(post_from_row(row[width:]))
    plans: dict[int, list[ShiftPlan]] = {}
    for key, (shift_id, code, name, phase, starts_at, ends_at) in shifts.items():
        plan = ShiftPlan(shift_id, code, name, phase, starts_at, ends_at, tuple(posts[key]))
        plans.setdefault(key[0], []).append(plan)
    return {
        personnel_id: sorted(mine, key=lambda plan: (not plan.is_current(now), plan.starts_at))
        for personnel_id, mine in plans.items()
    }


async def open_shifts(
    session: AsyncSession, *, personnel_id: int, now: datetime, opens_before: timedelta
) -> list[ShiftPlan]:
    """Shifts running now or starting within `opens_before`: the current one first."""
    return await shift_plans(session, personnel_id=personnel_id, now=now, starting_within=opens_before)


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


async def on_duty(session: AsyncSession, *, personnel_id: int, now: datetime, opens_before: timedelta) -> Duty | None:
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
