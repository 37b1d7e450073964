"""Deciding a bunch of locations in plain Python, over what was read: no database here."""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.config import CheckinSettings
from bot.services.checkin.results import (
    TELEGRAM_KEEPS,
    CheckinOutcome,
    CheckinResult,
    Key,
    Presence,
    StaleReason,
)
from bot.services.geo import distance_m
from bot.services.schedule import Post, ShiftPlan


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
        refusal = refusal_of(presence.forwarded, at, now)
        if refusal is not None:
            decisions.add(refusal, None)
            continue
        shifts = open_at(seen.plans.get(presence.personnel_id, []), at, settings)
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


def refusal_of(forwarded: bool, at: datetime, now: datetime) -> CheckinResult | None:
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


def open_at(plans: Sequence[ShiftPlan], at: datetime, settings: CheckinSettings) -> list[ShiftPlan]:
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
