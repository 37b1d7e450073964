"""Check-in and check-out: presence at a TPS, with where the person actually stood.

A check-in far from the TPS is kept and flagged (the commander decides what
it means); a forwarded or stale location is refused, because it says where
someone was, not that they are there now.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import CheckinSettings
from bot.db import dialect_insert
from bot.services import audit, tally
from bot.services.geo import distance_m
from bot.services.schedule import Post, ShiftPlan, open_shift, shift_plans, shift_plans_of
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
    presence = Presence(personnel_id, lat, lon, sent_at, forwarded)
    return (await check_in_all(session, [presence], now=now, settings=settings))[0]


def _refusal(forwarded: bool, sent_at: datetime, now: datetime, settings: CheckinSettings) -> CheckinResult | None:
    if forwarded:
        return CheckinResult(CheckinOutcome.forwarded)
    if now - sent_at > timedelta(seconds=settings.max_location_age_seconds):
        return CheckinResult(CheckinOutcome.stale)
    return None


def _where(
    shift: ShiftPlan, lat: float, lon: float, now: datetime, settings: CheckinSettings
) -> tuple[Post, float, bool, bool]:
    """The nearest of the shift's TPS, the distance to it, and whether that is far and the arrival late."""
    post, distance = min(
        ((post, distance_m(lat, lon, post.lat, post.lon)) for post in shift.posts), key=lambda pair: pair[1]
    )
    far = distance > settings.geofence_meters
    late = now > shift.starts_at + timedelta(minutes=settings.grace_minutes)
    return post, distance, far, late


@dataclass(frozen=True)
class Presence:
    """A shared location, as a check-in of a bunch needs it."""

    personnel_id: int
    lat: float
    lon: float
    sent_at: datetime
    forwarded: bool


async def check_in_all(
    session: AsyncSession, presences: Sequence[Presence], *, now: datetime, settings: CheckinSettings
) -> list[CheckinResult]:
    """`check_in` for locations shared at the same moment, answered in order.

    The common case, a first check-in, is made for the whole bunch in one
    transaction: one shift query, one insert, each tally row changed once.
    Everything else (a second location, no open shift, one person twice in
    the bunch, a row another transaction wrote first) is answered one by one
    after that commit.
    """
    results: list[CheckinResult | None] = [_refusal(p.forwarded, p.sent_at, now, settings) for p in presences]
    firsts: dict[int, int] = {}
    for index, presence in enumerate(presences):
        if results[index] is None:
            firsts.setdefault(presence.personnel_id, index)
    plans = await shift_plans_of(
        session, personnel_ids=list(firsts), now=now, starting_within=timedelta(minutes=settings.opens_before_minutes)
    ) if firsts else {}
    made = await _first_check_ins(session, [presences[i] for i in firsts.values()], plans, now, settings)
    for index, result in zip(firsts.values(), made, strict=True):
        results[index] = result
    for index, presence in enumerate(presences):
        if results[index] is None:
            results[index] = await _not_first(session, presence, plans.get(presence.personnel_id, []), now, settings)
    return [result for result in results if result is not None]


async def _first_check_ins(
    session: AsyncSession, presences: Sequence[Presence], plans: Mapping[int, Sequence[ShiftPlan]], now: datetime,
    settings: CheckinSettings,
) -> list[CheckinResult | None]:
    """Check in everyone (once each) whose open shift has no check-in yet; None for the rest."""
    if not plans:
        return [None] * len(presences)
    done: dict[int, set[int]] = {}
    for personnel_id, shift_id in await session.execute(
        select(Checkin.personnel_id, Checkin.shift_id).where(
            Checkin.personnel_id.in_(list(plans)),
            Checkin.shift_id.in_({plan.shift_id for mine in plans.values() for plan in mine}),
        )
    ):
        done.setdefault(personnel_id, set()).add(shift_id)
    fresh: dict[int, _First] = {}
    for presence in sorted(presences, key=lambda p: p.personnel_id):  # the check-in rows' lock order
        mine, theirs = plans.get(presence.personnel_id), done.get(presence.personnel_id, set())
        shift = _choose(mine, theirs, now) if mine else None
        if shift is None or shift.shift_id in theirs:
            continue
        fresh[presence.personnel_id] = _First(presence, shift, *_where(shift, presence.lat, presence.lon, now, settings))
    if not fresh:
        return [None] * len(presences)
    made = await _insert_new(session, fresh.values(), now)
    counted = []
    for personnel_id in sorted(made):
        first = fresh[personnel_id]
        audit.record(
            session, action="checkin.created", entity="checkin", entity_id=f"{personnel_id}:{first.shift.shift_id}",
            actor_id=personnel_id,
            detail={"tps": first.post.tps_code, "distance_m": round(first.distance), "far": first.far, "late": first.late},
        )
        counted.append(tally.NewCheckin(personnel_id, first.shift.shift_id, first.late, first.far))
    await tally.on_checkins(session, counted)
    await session.commit()
    return [fresh[p.personnel_id].result(now) if p.personnel_id in made else None for p in presences]


class _First(NamedTuple):
    """A first check-in of a bunch, worked out before it is written."""

    presence: Presence
    shift: ShiftPlan
    post: Post
    distance: float
    far: bool
    late: bool

    def result(self, now: datetime) -> CheckinResult:
        return CheckinResult(CheckinOutcome.checked_in, self.shift, self.post, self.distance, self.far, self.late, now)


async def _insert_new(session: AsyncSession, fresh: Iterable[_First], now: datetime) -> set[int]:
    """Insert the rows nobody wrote first; returns the people whose row this was."""
    rows = [
        {"personnel_id": first.presence.personnel_id, "shift_id": first.shift.shift_id, "tps_id": first.post.tps_id,
         "checked_in_at": now, "lat": first.presence.lat, "lon": first.presence.lon,
         "distance_m": first.distance, "far": first.far, "late": first.late}
        for first in fresh
    ]
    return set((await session.execute(_insert_or_skip(dialect_insert(session)), rows)).scalars())


@cache
def _insert_or_skip(insert: Callable[..., Any]) -> Any:
    """Built once per backend, so SQLAlchemy compiles it once."""
    table = Checkin.__table__
    return insert(table).on_conflict_do_nothing(index_elements=["personnel_id", "shift_id"]).returning(
        table.c.personnel_id)


async def _not_first(
    session: AsyncSession, presence: Presence, plans: Sequence[ShiftPlan], now: datetime, settings: CheckinSettings
) -> CheckinResult:
    """A location that made no first check-in: no open shift, or the shift's check-in exists already."""
    if not plans:
        return CheckinResult(CheckinOutcome.no_shift, next_shift=await _next_shift(session, presence.personnel_id, now))
    done = {
        row.shift_id: row
        for row in await session.scalars(select(Checkin).where(
            Checkin.personnel_id == presence.personnel_id, Checkin.shift_id.in_([p.shift_id for p in plans])))
    }
    shift = _choose(plans, done, now)
    existing = done.get(shift.shift_id)
    if existing is None:  # an import changed the assignments meanwhile: a first check-in after all
        return (await check_in_all(session, [presence], now=now, settings=settings))[0]
    post, distance, far, _ = _where(shift, presence.lat, presence.lon, now, settings)
    return await _again(session, existing, shift, post, presence, distance, far)


async def _again(
    session: AsyncSession, existing: Checkin, shift: ShiftPlan, post: Post, presence: Presence, distance: float,
    far: bool,
) -> CheckinResult:
    if distance >= existing.distance_m - 1:
        nearest = next(p for p in shift.posts if p.tps_id == existing.tps_id)
        return _result(CheckinOutcome.already, existing, shift, nearest)
    personnel_id = presence.personnel_id
    audit.record(
        session, action="checkin.moved_closer", entity="checkin", entity_id=f"{personnel_id}:{shift.shift_id}",
        actor_id=personnel_id, detail={"from_m": round(existing.distance_m), "to_m": round(distance), "tps": post.tps_code},
    )
    await tally.on_far_changed(session, personnel_id=personnel_id, shift_id=shift.shift_id, far=far)
    existing.tps_id, existing.lat, existing.lon = post.tps_id, presence.lat, presence.lon
    existing.distance_m, existing.far = distance, far
    await session.commit()
    return _result(CheckinOutcome.moved_closer, existing, shift, post)


def _result(outcome: CheckinOutcome, row: Checkin, shift: ShiftPlan, post: Post) -> CheckinResult:
    return CheckinResult(outcome, shift, post, row.distance_m, row.far, row.late, row.checked_in_at)


def _choose(plans: Sequence[ShiftPlan], done: Container[int], now: datetime) -> ShiftPlan:
    """Of the open shifts not yet checked in (`done`: shift ids), the one starting nearest now.

    Someone arriving at 05:40 for the 06:00 voting shift, while still on the
    logistics shift that ends at 06:00, is checking in for the voting shift.
    When every open shift has its check-in, the nearest one.
    """
    by_nearness = sorted(plans, key=lambda plan: abs((plan.starts_at - now).total_seconds()))
    return next((plan for plan in by_nearness if plan.shift_id not in done), by_nearness[0])


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
