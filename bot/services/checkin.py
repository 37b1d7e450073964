"""Check-in and check-out: presence at a TPS, with where the person actually stood.

A check-in far from the TPS is kept and flagged (the commander decides what
it means); a forwarded or stale location is refused, because it says where
someone was, not that they are there now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import CheckinSettings
from bot.services import audit, tally
from bot.services.geo import distance_m
from bot.services.schedule import Post, ShiftPlan, open_shift, open_shifts, shift_plans
from models import Checkin


class CheckinOutcome(StrEnum):
    checked_in = "checked_in"
    already = "already"
    moved_closer = "moved_closer"
    forwarded = "forwarded"
    stale = "stale"
    no_shift = "no_shift"


@dataclass(frozen=True)
class CheckinResult:
    outcome: CheckinOutcome
    shift: ShiftPlan | None = None
    post: Post | None = None
    distance_m: float = 0.0
    far: bool = False
    late: bool = False
    checked_in_at: datetime | None = None
    next_shift: ShiftPlan | None = None


async def check_in(
    session: AsyncSession,
    *,
    personnel_id: int,
    lat: float,
    lon: float,
    sent_at: datetime,
    forwarded: bool,
    now: datetime,
    settings: CheckinSettings,
) -> CheckinResult:
    """Record presence for the open shift at the nearest assigned TPS.

    A second check-in for the same shift changes nothing unless it is closer
    to the TPS (someone who checked in from the road and then arrived).
    """
    if forwarded:
        return CheckinResult(CheckinOutcome.forwarded)
    if now - sent_at > timedelta(seconds=settings.max_location_age_seconds):
        return CheckinResult(CheckinOutcome.stale)
    shift, existing = await _checkin_shift(session, personnel_id, now, timedelta(minutes=settings.opens_before_minutes))
    if shift is None:
        return CheckinResult(CheckinOutcome.no_shift, next_shift=await _next_shift(session, personnel_id, now))
    post, distance = min(
        ((post, distance_m(lat, lon, post.lat, post.lon)) for post in shift.posts), key=lambda pair: pair[1]
    )
    far = distance > settings.geofence_meters
    late = now > shift.starts_at + timedelta(minutes=settings.grace_minutes)
    if existing is not None:
        return await _again(session, existing, shift, post, lat, lon, distance, far, personnel_id)
    row = Checkin(
        personnel_id=personnel_id, shift_id=shift.shift_id, tps_id=post.tps_id, checked_in_at=now,
        lat=lat, lon=lon, distance_m=distance, far=far, late=late,
    )
    session.add(row)
    audit.record(
        session, action="checkin.created", entity="checkin", entity_id=f"{personnel_id}:{shift.shift_id}",
        actor_id=personnel_id, detail={"tps": post.tps_code, "distance_m": round(distance), "far": far, "late": late},
    )
    try:
        await tally.on_checkin(session, personnel_id=personnel_id, shift_id=shift.shift_id, late=late, far=far)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        existing = await _existing(session, personnel_id, shift.shift_id)
        assert existing is not None
        return _result(CheckinOutcome.already, existing, shift, post)
    return CheckinResult(CheckinOutcome.checked_in, shift, post, distance, far, late, now)


async def _again(
    session: AsyncSession, existing: Checkin, shift: ShiftPlan, post: Post,
    lat: float, lon: float, distance: float, far: bool, personnel_id: int,
) -> CheckinResult:
    if distance >= existing.distance_m - 1:
        nearest = next(p for p in shift.posts if p.tps_id == existing.tps_id)
        return _result(CheckinOutcome.already, existing, shift, nearest)
    audit.record(
        session, action="checkin.moved_closer", entity="checkin", entity_id=f"{personnel_id}:{shift.shift_id}",
        actor_id=personnel_id, detail={"from_m": round(existing.distance_m), "to_m": round(distance), "tps": post.tps_code},
    )
    await tally.on_far_changed(session, personnel_id=personnel_id, shift_id=shift.shift_id, far=far)
    existing.tps_id, existing.lat, existing.lon, existing.distance_m, existing.far = post.tps_id, lat, lon, distance, far
    await session.commit()
    return _result(CheckinOutcome.moved_closer, existing, shift, post)


def _result(outcome: CheckinOutcome, row: Checkin, shift: ShiftPlan, post: Post) -> CheckinResult:
    return CheckinResult(outcome, shift, post, row.distance_m, row.far, row.late, row.checked_in_at)


async def _checkin_shift(
    session: AsyncSession, personnel_id: int, now: datetime, opens_before: timedelta
) -> tuple[ShiftPlan | None, Checkin | None]:
    """The open shift this presence is for, and its check-in if there is one already.

    Of the open shifts not yet checked in, the one starting nearest now:
    someone arriving at 05:40 for the 06:00 voting shift, while still on the
    logistics shift that ends at 06:00, is checking in for the voting shift.
    When every open shift has its check-in, the nearest one and its row.
    """
    plans = await open_shifts(session, personnel_id=personnel_id, now=now, opens_before=opens_before)
    if not plans:
        return None, None
    done = {
        row.shift_id: row
        for row in await session.scalars(
            select(Checkin).where(Checkin.personnel_id == personnel_id, Checkin.shift_id.in_([p.shift_id for p in plans]))
        )
    }
    by_nearness = sorted(plans, key=lambda plan: abs((plan.starts_at - now).total_seconds()))
    shift = next((plan for plan in by_nearness if plan.shift_id not in done), by_nearness[0])
    return shift, done.get(shift.shift_id)


async def _existing(session: AsyncSession, personnel_id: int, shift_id: int) -> Checkin | None:
    return await session.scalar(
        select(Checkin).where(Checkin.personnel_id == personnel_id, Checkin.shift_id == shift_id)
    )


async def _next_shift(session: AsyncSession, personnel_id: int, now: datetime) -> ShiftPlan | None:
    upcoming = [p for p in await shift_plans(session, personnel_id=personnel_id, now=now) if p.starts_at > now]
    return upcoming[0] if upcoming else None


class CheckoutOutcome(StrEnum):
    checked_out = "checked_out"
    already = "already"
    not_checked_in = "not_checked_in"


@dataclass(frozen=True)
class CheckoutResult:
    outcome: CheckoutOutcome
    shift: ShiftPlan | None = None
    at: datetime | None = None


async def check_out(
    session: AsyncSession, *, personnel_id: int, now: datetime, settings: CheckinSettings
) -> CheckoutResult:
    """Close the open shift's check-in; without one there is nothing to close."""
    shift = await open_shift(
        session, personnel_id=personnel_id, now=now, opens_before=timedelta(minutes=settings.opens_before_minutes)
    )
    row = await _existing(session, personnel_id, shift.shift_id) if shift else None
    if row is None:
        return CheckoutResult(CheckoutOutcome.not_checked_in, shift)
    if row.checked_out_at is not None:
        return CheckoutResult(CheckoutOutcome.already, shift, row.checked_out_at)
    await tally.on_checkout(session, personnel_id=personnel_id, shift_id=row.shift_id)
    row.checked_out_at = now
    audit.record(
        session, action="checkin.checked_out", entity="checkin", entity_id=f"{personnel_id}:{row.shift_id}",
        actor_id=personnel_id,
    )
    await session.commit()
    return CheckoutResult(CheckoutOutcome.checked_out, shift, now)
