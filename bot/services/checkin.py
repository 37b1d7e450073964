"""Check-in and check-out: presence at a TPS, with where the person actually stood, when they were there.

A check-in far from the TPS is kept and flagged (the commander decides what
it means); a forwarded location is refused, because it says where someone
else was. A location counts at the time it was sent (`message.date`), not
at the time the bot read it: one that waited at Telegram while the bot was
down is recorded at that time, and that time decides the shift and whether
it was late. It is too old (`stale`) only when it was sent after its shift
ended, before its shift opened for check-in (and read once it had), or
longer ago than Telegram keeps an update. Check-out counts at the time sent
too.
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

TELEGRAM_KEEPS = timedelta(hours=24)  # an update not fetched within this is dropped by Telegram


class CheckinOutcome(StrEnum):
    checked_in = "checked_in"
    already = "already"
    moved_closer = "moved_closer"
    forwarded = "forwarded"
    stale = "stale"
    no_shift = "no_shift"


class StaleReason(StrEnum):
    """Why a location is too old; `shift` of the result is the shift it missed."""

    before_open = "before_open"
    after_end = "after_end"
    expired = "expired"


@dataclass(frozen=True)
class CheckinResult:
    """What a location did; `sent_at` is the time it counts at, `received_at` when the bot read it."""

    outcome: CheckinOutcome
    shift: ShiftPlan | None = None
    post: Post | None = None
    distance_m: float = 0.0
    far: bool = False
    late: bool = False
    checked_in_at: datetime | None = None
    next_shift: ShiftPlan | None = None
    sent_at: datetime | None = None
    received_at: datetime | None = None
    stale_reason: StaleReason | None = None

    @property
    def delay(self) -> timedelta:
        """How long the location waited before the bot read it."""
        if self.sent_at is None or self.received_at is None:
            return timedelta(0)
        return self.received_at - self.sent_at


def sent_time(sent_at: datetime, now: datetime) -> datetime:
    """The time a message counts at: when it was sent, or when read if that is earlier (clocks apart)."""
    return min(sent_at, now)


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
    """Record presence for the shift open when the location was sent, at the nearest assigned TPS.

    A second check-in for the same shift changes nothing unless it is closer
    to the TPS (someone who checked in from the road and then arrived).
    """
    presence = Presence(personnel_id, lat, lon, sent_at, forwarded)
    return (await check_in_all(session, [presence], now=now, settings=settings))[0]


def _refusal(forwarded: bool, at: datetime, now: datetime) -> CheckinResult | None:
    if forwarded:
        return CheckinResult(CheckinOutcome.forwarded)
    if now - at > TELEGRAM_KEEPS:
        return CheckinResult(CheckinOutcome.stale, sent_at=at, received_at=now, stale_reason=StaleReason.expired)
    return None


def _where(
    shift: ShiftPlan, lat: float, lon: float, at: datetime, settings: CheckinSettings
) -> tuple[Post, float, bool, bool]:
    """The nearest of the shift's TPS, the distance to it, and whether that is far and the arrival (at `at`) late."""
    post, distance = min(
        ((post, distance_m(lat, lon, post.lat, post.lon)) for post in shift.posts), key=lambda pair: pair[1]
    )
    far = distance > settings.geofence_meters
    late = at > shift.starts_at + timedelta(minutes=settings.grace_minutes)
    return post, distance, far, late


def _open_at(plans: Sequence[ShiftPlan], at: datetime, settings: CheckinSettings) -> list[ShiftPlan]:
    """The shifts open for check-in at `at`: running, or starting within `opens_before_minutes`."""
    opens = timedelta(minutes=settings.opens_before_minutes)
    return [plan for plan in plans if plan.starts_at - opens <= at < plan.ends_at]


@dataclass(frozen=True)
class Presence:
    """A shared location, as a check-in of a bunch needs it.

    `sent_at` is when Telegram says it was sent (`message.date`; for a live
    location, the time of that position), however late the bot reads it.
    """

    personnel_id: int
    lat: float
    lon: float
    sent_at: datetime
    forwarded: bool


async def check_in_all(
    session: AsyncSession, presences: Sequence[Presence], *, now: datetime, settings: CheckinSettings
) -> list[CheckinResult]:
    """`check_in` for locations read at the same moment (`now`), each judged at the time it was sent; in order.

    The common case, a first check-in, is made for the whole bunch in one
    transaction: one shift query (the shifts open at any of the bunch's sent
    times), one insert, each tally row changed once. Everything else (a
    second location, no shift open when it was sent, one person twice in the
    bunch, a row another transaction wrote first) is answered one by one
    after that commit.
    """
    times = [sent_time(p.sent_at, now) for p in presences]
    results: list[CheckinResult | None] = [
        _refusal(p.forwarded, at, now) for p, at in zip(presences, times, strict=True)
    ]
    firsts: dict[int, int] = {}
    for index, presence in enumerate(presences):
        if results[index] is None:
            firsts.setdefault(presence.personnel_id, index)
    plans = await _plans_around(session, list(firsts), [times[i] for i in firsts.values()], settings) if firsts else {}
    made = await _first_check_ins(session, [(presences[i], times[i]) for i in firsts.values()], plans, now, settings)
    for index, result in zip(firsts.values(), made, strict=True):
        results[index] = result
    for index, presence in enumerate(presences):
        if results[index] is None:
            mine = plans.get(presence.personnel_id, [])
            results[index] = await _not_first(session, presence, times[index], mine, now, settings)
    return [result for result in results if result is not None]


async def _plans_around(
    session: AsyncSession, personnel_ids: Sequence[int], times: Sequence[datetime], settings: CheckinSettings
) -> dict[int, list[ShiftPlan]]:
    """In one query, every shift of these people open for check-in at any of `times` (`_open_at` picks each's)."""
    earliest, latest = min(times), max(times)
    return await shift_plans_of(
        session, personnel_ids=personnel_ids, now=earliest,
        starting_within=latest - earliest + timedelta(minutes=settings.opens_before_minutes),
    )


async def _first_check_ins(
    session: AsyncSession, presences: Sequence[tuple[Presence, datetime]], plans: Mapping[int, Sequence[ShiftPlan]],
    now: datetime, settings: CheckinSettings,
) -> list[CheckinResult | None]:
    """Check in everyone (once each) whose shift open at their sent time has no check-in yet; None for the rest."""
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
    for presence, at in sorted(presences, key=lambda pair: pair[0].personnel_id):  # the check-in rows' lock order
        mine = _open_at(plans.get(presence.personnel_id, []), at, settings)
        theirs = done.get(presence.personnel_id, set())
        shift = _choose(mine, theirs, at) if mine else None
        if shift is None or shift.shift_id in theirs:
            continue
        where = _where(shift, presence.lat, presence.lon, at, settings)
        fresh[presence.personnel_id] = _First(presence, at, shift, *where)
    if not fresh:
        return [None] * len(presences)
    made = await _insert_new(session, fresh.values())
    counted = []
    for personnel_id in sorted(made):
        first = fresh[personnel_id]
        audit.record(
            session, action="checkin.created", entity="checkin", entity_id=f"{personnel_id}:{first.shift.shift_id}",
            actor_id=personnel_id,
            detail={"tps": first.post.tps_code, "distance_m": round(first.distance), "far": first.far,
                    "late": first.late, "delay_s": round((now - first.at).total_seconds())},
        )
        counted.append(tally.NewCheckin(personnel_id, first.shift.shift_id, first.late, first.far))
    await tally.on_checkins(session, counted)
    await session.commit()
    return [fresh[p.personnel_id].result(now) if p.personnel_id in made else None for p, _ in presences]


class _First(NamedTuple):
    """A first check-in of a bunch, worked out before it is written; `at` is the time it was sent."""

    presence: Presence
    at: datetime
    shift: ShiftPlan
    post: Post
    distance: float
    far: bool
    late: bool

    def result(self, now: datetime) -> CheckinResult:
        return CheckinResult(CheckinOutcome.checked_in, self.shift, self.post, self.distance, self.far, self.late,
                             self.at, sent_at=self.at, received_at=now)


async def _insert_new(session: AsyncSession, fresh: Iterable[_First]) -> set[int]:
    """Insert the rows nobody wrote first; returns the people whose row this was."""
    rows = [
        {"personnel_id": first.presence.personnel_id, "shift_id": first.shift.shift_id, "tps_id": first.post.tps_id,
         "checked_in_at": first.at, "lat": first.presence.lat, "lon": first.presence.lon,
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
    session: AsyncSession, presence: Presence, at: datetime, plans: Sequence[ShiftPlan], now: datetime,
    settings: CheckinSettings,
) -> CheckinResult:
    """A location that made no first check-in: no shift open when it was sent, or that shift's check-in exists."""
    mine = _open_at(plans, at, settings)
    if not mine:
        return await _out_of_hours(session, presence.personnel_id, at, now, settings)
    done = {
        row.shift_id: row
        for row in await session.scalars(select(Checkin).where(
            Checkin.personnel_id == presence.personnel_id, Checkin.shift_id.in_([p.shift_id for p in mine])))
    }
    shift = _choose(mine, done, at)
    existing = done.get(shift.shift_id)
    if existing is None:  # an import changed the assignments meanwhile: a first check-in after all
        return (await check_in_all(session, [presence], now=now, settings=settings))[0]
    post, distance, far, _ = _where(shift, presence.lat, presence.lon, at, settings)
    return await _again(session, existing, shift, post, presence, distance, far, at, now)


async def _out_of_hours(
    session: AsyncSession, personnel_id: int, at: datetime, now: datetime, settings: CheckinSettings
) -> CheckinResult:
    """No shift was open when the location was sent: too old for the shift nearest in time, or simply no shift.

    The shift it concerns is the nearer of the last one ended before it was
    sent and the next one to open after. Sent after a shift ended, it is too
    old for that shift; sent before a shift opened, it is too old once that
    shift has opened by the time it is read (the person can send a fresh
    one), and otherwise the answer is when check-in opens.
    """
    opens = timedelta(minutes=settings.opens_before_minutes)
    plans = sorted(await shift_plans(session, personnel_id=personnel_id, now=at, include_past=True),
                   key=lambda plan: plan.starts_at)
    ended = max((plan for plan in plans if plan.ends_at <= at), key=lambda plan: plan.ends_at, default=None)
    coming = next((plan for plan in plans if plan.starts_at - opens > at), None)
    upcoming = next((plan for plan in plans if plan.starts_at > now), None)
    if ended is not None and (coming is None or at - ended.ends_at < coming.starts_at - opens - at):
        return CheckinResult(CheckinOutcome.stale, shift=ended, next_shift=upcoming, sent_at=at, received_at=now,
                             stale_reason=StaleReason.after_end)
    if coming is not None and coming.starts_at - opens <= now:
        return CheckinResult(CheckinOutcome.stale, shift=coming, sent_at=at, received_at=now,
                             stale_reason=StaleReason.before_open)
    return CheckinResult(CheckinOutcome.no_shift, next_shift=upcoming, sent_at=at, received_at=now)


async def _again(
    session: AsyncSession, existing: Checkin, shift: ShiftPlan, post: Post, presence: Presence, distance: float,
    far: bool, at: datetime, now: datetime,
) -> CheckinResult:
    if distance >= existing.distance_m - 1:
        nearest = next(p for p in shift.posts if p.tps_id == existing.tps_id)
        return _result(CheckinOutcome.already, existing, shift, nearest, at, now)
    personnel_id = presence.personnel_id
    audit.record(
        session, action="checkin.moved_closer", entity="checkin", entity_id=f"{personnel_id}:{shift.shift_id}",
        actor_id=personnel_id, detail={"from_m": round(existing.distance_m), "to_m": round(distance), "tps": post.tps_code},
    )
    await tally.on_far_changed(session, personnel_id=personnel_id, shift_id=shift.shift_id, far=far)
    existing.tps_id, existing.lat, existing.lon = post.tps_id, presence.lat, presence.lon
    existing.distance_m, existing.far = distance, far
    await session.commit()
    return _result(CheckinOutcome.moved_closer, existing, shift, post, at, now)


def _result(
    outcome: CheckinOutcome, row: Checkin, shift: ShiftPlan, post: Post, at: datetime, now: datetime
) -> CheckinResult:
    return CheckinResult(outcome, shift, post, row.distance_m, row.far, row.late, row.checked_in_at,
                         sent_at=at, received_at=now)


def _choose(plans: Sequence[ShiftPlan], done: Container[int], at: datetime) -> ShiftPlan:
    """Of the open shifts not yet checked in (`done`: shift ids), the one starting nearest `at` (when sent).

    Someone arriving at 05:40 for the 06:00 voting shift, while still on the
    logistics shift that ends at 06:00, is checking in for the voting shift.
    When every open shift has its check-in, the nearest one.
    """
    by_nearness = sorted(plans, key=lambda plan: abs((plan.starts_at - at).total_seconds()))
    return next((plan for plan in by_nearness if plan.shift_id not in done), by_nearness[0])


async def _existing(session: AsyncSession, personnel_id: int, shift_id: int) -> Checkin | None:
    return await session.scalar(
        select(Checkin).where(Checkin.personnel_id == personnel_id, Checkin.shift_id == shift_id)
    )


class CheckoutOutcome(StrEnum):
    checked_out = "checked_out"
    already = "already"
    not_checked_in = "not_checked_in"


@dataclass(frozen=True)
class CheckoutResult:
    """`at` is the recorded check-out; `sent_at` and `received_at` as in `CheckinResult`."""

    outcome: CheckoutOutcome
    shift: ShiftPlan | None = None
    at: datetime | None = None
    sent_at: datetime | None = None
    received_at: datetime | None = None

    @property
    def delay(self) -> timedelta:
        if self.sent_at is None or self.received_at is None:
            return timedelta(0)
        return self.received_at - self.sent_at


async def check_out(
    session: AsyncSession, *, personnel_id: int, now: datetime, settings: CheckinSettings,
    sent_at: datetime | None = None,
) -> CheckoutResult:
    """Close the check-in of the shift open when `/selesai` was sent (`sent_at`; None: as it is read).

    Without a check-in there is nothing to close. The shift ended by the
    time a delayed `/selesai` is read still closes: it was sent in time.
    """
    at = sent_time(sent_at or now, now)
    shift = await open_shift(
        session, personnel_id=personnel_id, now=at, opens_before=timedelta(minutes=settings.opens_before_minutes)
    )
    row = await _existing(session, personnel_id, shift.shift_id) if shift else None
    if row is None:
        return CheckoutResult(CheckoutOutcome.not_checked_in, shift, sent_at=at, received_at=now)
    if row.checked_out_at is not None:
        return CheckoutResult(CheckoutOutcome.already, shift, row.checked_out_at, at, now)
    await tally.on_checkout(session, personnel_id=personnel_id, shift_id=row.shift_id)
    row.checked_out_at = at
    audit.record(
        session, action="checkin.checked_out", entity="checkin", entity_id=f"{personnel_id}:{row.shift_id}",
        actor_id=personnel_id,
    )
    await session.commit()
    return CheckoutResult(CheckoutOutcome.checked_out, shift, at, at, now)
