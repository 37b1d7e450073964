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
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import CheckinSettings
from bot.services import audit, tally
from bot.services.geo import distance_m
from bot.services.schedule import Post, ShiftPlan, open_shift, shift_plans_of
from bot.storage.db import dialect_insert
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


Key = tuple[int, int]  # (personnel_id, shift_id): one check-in row


@dataclass(frozen=True)
class CheckinRow:
    """A check-in as a decision needs it: stored, or made or moved by a location before in the same bunch."""

    tps_id: int
    distance_m: float
    far: bool
    late: bool
    checked_in_at: datetime

    @classmethod
    def after(cls, result: CheckinResult) -> CheckinRow:
        """The row as it stands once `result` (checked in, already or moved closer) is written."""
        assert result.post is not None and result.checked_in_at is not None
        return cls(result.post.tps_id, result.distance_m, result.far, result.late, result.checked_in_at)


@dataclass(frozen=True)
class Seen:
    """What a bunch is decided on, all read before anything is decided.

    `plans`: each person's shifts open around the bunch's sent times;
    `rows`: their check-ins for those shifts; `calendar`: every shift, ended
    ones too, of those whose location found none open (what it is too old for).
    """

    plans: Mapping[int, Sequence[ShiftPlan]] = field(default_factory=dict)
    rows: Mapping[Key, CheckinRow] = field(default_factory=dict)
    calendar: Mapping[int, Sequence[ShiftPlan]] = field(default_factory=dict)


@dataclass(frozen=True)
class FirstCheckin:
    """A check-in row to insert; `at` is the time its location was sent."""

    presence: Presence
    at: datetime
    shift: ShiftPlan
    post: Post
    distance: float
    far: bool
    late: bool

    @property
    def key(self) -> Key:
        return (self.presence.personnel_id, self.shift.shift_id)


@dataclass(frozen=True)
class MoveCloser:
    """A check-in row to move to a nearer TPS (someone who checked in from the road, then arrived)."""

    presence: Presence
    shift: ShiftPlan
    post: Post
    distance: float
    far: bool
    from_m: float

    @property
    def key(self) -> Key:
        return (self.presence.personnel_id, self.shift.shift_id)


@dataclass
class Decisions:
    """Each location's answer in order, and what must be written for them.

    `rests_on` names, for each answer, the check-in row it assumes (None: it
    assumes none), so that the answers resting on a first check-in another
    transaction wrote first can be decided again against that row.
    """

    results: list[CheckinResult] = field(default_factory=list)
    rests_on: list[Key | None] = field(default_factory=list)
    firsts: list[FirstCheckin] = field(default_factory=list)
    moves: list[MoveCloser] = field(default_factory=list)

    def add(self, result: CheckinResult, rests_on: Key | None, change: FirstCheckin | MoveCloser | None = None) -> None:
        self.results.append(result)
        self.rests_on.append(rests_on)
        if isinstance(change, FirstCheckin):
            self.firsts.append(change)
        elif isinstance(change, MoveCloser):
            self.moves.append(change)


async def check_in_all(
    session: AsyncSession, presences: Sequence[Presence], *, now: datetime, settings: CheckinSettings
) -> list[CheckinResult]:
    """`check_in` for locations read at the same moment (`now`), each judged at the time it was sent; in order.

    Read, decide, write. Everything the bunch needs is read first (the
    shifts open at any of its sent times and their check-ins, one query
    each), every location is then decided in plain Python (`decide`), and
    what that asks is written last: the first check-ins in one insert, each
    tally row changed once, in one transaction; each move closer in its own
    after it. A first check-in that another transaction wrote first is
    decided again, with every answer of the bunch that rested on it, against
    the row that won.
    """
    bunch = [(presence, sent_time(presence.sent_at, now)) for presence in presences]
    seen = await _read(session, bunch, now=now, settings=settings)
    decisions = decide(bunch, seen, now=now, settings=settings)
    lost = await _write(session, decisions, now=now)
    if not lost:
        return decisions.results
    return await _decide_again(session, presences, decisions, lost, now=now, settings=settings)


# --- read -------------------------------------------------------------------------------------------


async def _read(
    session: AsyncSession, bunch: Sequence[tuple[Presence, datetime]], *, now: datetime, settings: CheckinSettings
) -> Seen:
    """What `decide` needs of the database for the locations not refused outright."""
    asking = [(presence, at) for presence, at in bunch if _refusal(presence.forwarded, at, now) is None]
    if not asking:
        return Seen()
    people = sorted({presence.personnel_id for presence, _ in asking})
    plans = await _plans_around(session, people, [at for _, at in asking], settings)
    idle = sorted({p.personnel_id for p, at in asking if not _open_at(plans.get(p.personnel_id, []), at, settings)})
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


# --- decide -----------------------------------------------------------------------------------------


def decide(
    bunch: Sequence[tuple[Presence, datetime]], seen: Seen, *, now: datetime, settings: CheckinSettings
) -> Decisions:
    """Every location's answer (each with the time it was sent), in order, as if each came alone after the ones before.

    Pure, over what was read and what the bunch itself does: a second
    location of one person is judged against the check-in the first made.
    """
    rows: dict[int, dict[int, CheckinRow]] = {}
    for (personnel_id, shift_id), row in seen.rows.items():
        rows.setdefault(personnel_id, {})[shift_id] = row
    decisions = Decisions()
    for presence, at in bunch:
        refusal = _refusal(presence.forwarded, at, now)
        if refusal is not None:
            decisions.add(refusal, None)
            continue
        shifts = _open_at(seen.plans.get(presence.personnel_id, []), at, settings)
        if not shifts:
            decisions.add(_out_of_hours(seen.calendar.get(presence.personnel_id, []), at, now, settings), None)
            continue
        mine = rows.setdefault(presence.personnel_id, {})
        shift = _choose(shifts, mine, at)
        result, change = _against(mine.get(shift.shift_id), presence, at, shift, now=now, settings=settings)
        mine[shift.shift_id] = CheckinRow.after(result)
        decisions.add(result, (presence.personnel_id, shift.shift_id), change)
    return decisions


def _against(
    row: CheckinRow | None,
    presence: Presence,
    at: datetime,
    shift: ShiftPlan,
    *,
    now: datetime,
    settings: CheckinSettings,
) -> tuple[CheckinResult, FirstCheckin | MoveCloser | None]:
    """A location for `shift` against the shift's check-in so far: the first, no nearer, or nearer."""
    post, distance, far, late = _where(shift, presence.lat, presence.lon, at, settings)
    if row is None:
        result = CheckinResult(
            CheckinOutcome.checked_in, shift, post, distance, far, late, at, sent_at=at, received_at=now
        )
        return result, FirstCheckin(presence, at, shift, post, distance, far, late)
    if distance >= row.distance_m - 1:
        nearest = next(p for p in shift.posts if p.tps_id == row.tps_id)
        return _result(CheckinOutcome.already, row, shift, nearest, at, now), None
    moved = replace(row, tps_id=post.tps_id, distance_m=distance, far=far)
    result = _result(CheckinOutcome.moved_closer, moved, shift, post, at, now)
    return result, MoveCloser(presence, shift, post, distance, far, row.distance_m)


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


def _out_of_hours(
    calendar: Sequence[ShiftPlan], at: datetime, now: datetime, settings: CheckinSettings
) -> CheckinResult:
    """No shift was open when the location was sent: too old for the shift nearest in time, or simply no shift.

    The shift it concerns is the nearer of the last one ended before it was
    sent and the next one to open after. Sent after a shift ended, it is too
    old for that shift; sent before a shift opened, it is too old once that
    shift has opened by the time it is read (the person can send a fresh
    one), and otherwise the answer is when check-in opens.
    """
    opens = timedelta(minutes=settings.opens_before_minutes)
    plans = sorted(calendar, key=lambda plan: (plan.starts_at, plan.shift_id))
    ended = max((plan for plan in plans if plan.ends_at <= at), key=lambda plan: plan.ends_at, default=None)
    coming = next((plan for plan in plans if plan.starts_at - opens > at), None)
    upcoming = next((plan for plan in plans if plan.starts_at > now), None)
    if ended is not None and (coming is None or at - ended.ends_at < coming.starts_at - opens - at):
        return CheckinResult(
            CheckinOutcome.stale,
            shift=ended,
            next_shift=upcoming,
            sent_at=at,
            received_at=now,
            stale_reason=StaleReason.after_end,
        )
    if coming is not None and coming.starts_at - opens <= now:
        return CheckinResult(
            CheckinOutcome.stale, shift=coming, sent_at=at, received_at=now, stale_reason=StaleReason.before_open
        )
    return CheckinResult(CheckinOutcome.no_shift, next_shift=upcoming, sent_at=at, received_at=now)


def _result(
    outcome: CheckinOutcome, row: CheckinRow, shift: ShiftPlan, post: Post, at: datetime, now: datetime
) -> CheckinResult:
    return CheckinResult(
        outcome, shift, post, row.distance_m, row.far, row.late, row.checked_in_at, sent_at=at, received_at=now
    )


def _choose(plans: Sequence[ShiftPlan], done: Container[int], at: datetime) -> ShiftPlan:
    """Of the open shifts not yet checked in (`done`: shift ids), the one starting nearest `at` (when sent).

    Someone arriving at 05:40 for the 06:00 voting shift, while still on the
    logistics shift that ends at 06:00, is checking in for the voting shift.
    When every open shift has its check-in, the nearest one.
    """
    by_nearness = sorted(plans, key=lambda plan: abs((plan.starts_at - at).total_seconds()))
    return next((plan for plan in by_nearness if plan.shift_id not in done), by_nearness[0])


# --- write ------------------------------------------------------------------------------------------


async def _write(session: AsyncSession, decisions: Decisions, *, now: datetime) -> set[Key]:
    """Write what was decided; returns the first check-ins another transaction wrote first (not moved here)."""
    lost = await _insert_firsts(session, decisions.firsts, now=now) if decisions.firsts else set()
    for move in decisions.moves:
        if move.key not in lost:
            await _move_closer(session, move)
    return lost


async def _insert_firsts(session: AsyncSession, firsts: Sequence[FirstCheckin], *, now: datetime) -> set[Key]:
    """One insert in personnel order (the check-in rows' lock order), its audit and tallies, one commit."""
    ordered = sorted(firsts, key=lambda first: first.key)
    made = await _insert_new(session, ordered)
    counted = []
    for first in ordered:
        if first.key not in made:
            continue
        personnel_id, shift_id = first.key
        audit.record(
            session,
            action="checkin.created",
            entity="checkin",
            entity_id=f"{personnel_id}:{shift_id}",
            actor_id=personnel_id,
            detail={
                "tps": first.post.tps_code,
                "distance_m": round(first.distance),
                "far": first.far,
                "late": first.late,
                "delay_s": round((now - first.at).total_seconds()),
            },
        )
        counted.append(tally.NewCheckin(personnel_id, shift_id, first.late, first.far))
    await tally.on_checkins(session, counted)
    await session.commit()
    return {first.key for first in ordered} - made


async def _insert_new(session: AsyncSession, firsts: Iterable[FirstCheckin]) -> set[Key]:
    """Insert the rows nobody wrote first; returns the rows that were this insert's."""
    rows = [
        {
            "personnel_id": first.presence.personnel_id,
            "shift_id": first.shift.shift_id,
            "tps_id": first.post.tps_id,
            "checked_in_at": first.at,
            "lat": first.presence.lat,
            "lon": first.presence.lon,
            "distance_m": first.distance,
            "far": first.far,
            "late": first.late,
        }
        for first in firsts
    ]
    made = await session.execute(_insert_or_skip(dialect_insert(session)), rows)
    return {(personnel_id, shift_id) for personnel_id, shift_id in made}


@cache
def _insert_or_skip(insert: Callable[..., Any]) -> Any:
    """Built once per backend, so SQLAlchemy compiles it once."""
    table = Checkin.__table__
    return (
        insert(table)
        .on_conflict_do_nothing(index_elements=["personnel_id", "shift_id"])
        .returning(table.c.personnel_id, table.c.shift_id)
    )


async def _move_closer(session: AsyncSession, move: MoveCloser) -> None:
    """One check-in moved to the nearer TPS, in its own transaction."""
    personnel_id, shift_id = move.key
    audit.record(
        session,
        action="checkin.moved_closer",
        entity="checkin",
        entity_id=f"{personnel_id}:{shift_id}",
        actor_id=personnel_id,
        detail={"from_m": round(move.from_m), "to_m": round(move.distance), "tps": move.post.tps_code},
    )
    await tally.on_far_changed(session, personnel_id=personnel_id, shift_id=shift_id, far=move.far)
    await session.execute(
        update(Checkin)
        .where(Checkin.personnel_id == personnel_id, Checkin.shift_id == shift_id)
        .values(
            tps_id=move.post.tps_id,
            lat=move.presence.lat,
            lon=move.presence.lon,
            distance_m=move.distance,
            far=move.far,
        )
    )
    await session.commit()


async def _decide_again(
    session: AsyncSession,
    presences: Sequence[Presence],
    decisions: Decisions,
    lost: set[Key],
    *,
    now: datetime,
    settings: CheckinSettings,
) -> list[CheckinResult]:
    """The answers that rested on a row another transaction wrote first, decided again now that it can be read."""
    again = [index for index, key in enumerate(decisions.rests_on) if key in lost]
    redone = await check_in_all(session, [presences[index] for index in again], now=now, settings=settings)
    results = list(decisions.results)
    for index, result in zip(again, redone, strict=True):
        results[index] = result
    return results


# --- check-out ------------------------------------------------------------------------------------


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
    session: AsyncSession,
    *,
    personnel_id: int,
    now: datetime,
    settings: CheckinSettings,
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
        session,
        action="checkin.checked_out",
        entity="checkin",
        entity_id=f"{personnel_id}:{row.shift_id}",
        actor_id=personnel_id,
    )
    await session.commit()
    return CheckoutResult(CheckoutOutcome.checked_out, shift, at, at, now)


async def _existing(session: AsyncSession, personnel_id: int, shift_id: int) -> Checkin | None:
    return await session.scalar(
        select(Checkin).where(Checkin.personnel_id == personnel_id, Checkin.shift_id == shift_id)
    )
