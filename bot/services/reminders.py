"""Shift reminders: derived from the roster into the outbox, paced so everyone has theirs in time.

Reminders are derived rows. Each planning run works out who should be
reminded of what (registered, reachable, assigned to the shift, not yet
checked in) and makes the outbox agree: missing rows are queued, pending rows
nobody should get any more are cancelled. The dedup key names the shift, the
offset, the person and a fingerprint of what the reminder says (the shift's
start and the person's TPS positions):

    reminder:{shift_id}:{offset}:{personnel_id}:{start_epoch}:{places_hash}

so a second run, a restart or another worker queues nothing twice, while a
moved start or a relocated TPS gives new keys: the stale rows are cancelled,
the coming reminders are planned again, and whoever already received one
with the old fingerprint gets one correction (`...:fix:...`, once per change).

Telegram takes about 30 messages a second, so a run of 60,000 reminders
takes over half an hour. Rows are spread backwards from their deadline at
`REMINDER_SHARE` of the global rate (the rest is headroom for alerts and
replies), so the last one is due at the offset time, which is also its
`send_by`; a run that cannot make it is logged.

Nothing here is worded: `work_out` says who is reminded of what
(`Reminder`, `Correction`), flows/reminders.py words it and hands the
messages to `write`, which makes the outbox agree in one transaction.
Escort members' reminders (bot/services/escort_reminders.py) are planned
the same way, with `Run`, `schedule_runs`, `cancel_pending` and
`forget_cancelled` from here, paced on their own.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.services import audit
from bot.services.outbox import NewMessage, Outgoing, enqueue_many
from bot.services.schedule import POST_COLUMNS, Post, post_from_row
from bot.storage.db import rowcount
from models import Assignment, Checkin, Outbox, Personnel, Shift, Tps, Unit
from models.enums import OutboxState, Priority

log = logging.getLogger("siaga.reminders")

HORIZON = timedelta(hours=26)
LATE_TOLERANCE = timedelta(minutes=5)
REMINDER_SHARE = 0.8
FIX = "fix"
ACTOR = "scheduler"
CHUNK = 1_000

_PENDING = OutboxState.pending.value
_SENT = OutboxState.sent.value
_CANCELLED = OutboxState.cancelled.value


@dataclass(frozen=True)
class PlanResult:
    """What one planning run did; `late_runs` counts runs that cannot all arrive by their time."""

    planned: int = 0
    cancelled: int = 0
    skipped_late: int = 0
    corrections: int = 0
    late_runs: int = 0


@dataclass(frozen=True)
class Reminder:
    """What a reminder says: the shift, when it starts, and every post of the person, in their language."""

    shift_name: str
    phase: str
    starts_at: datetime
    posts: tuple[Post, ...]
    language: str


@dataclass(frozen=True)
class Correction:
    """What changed since the last reminder a person received: the start (`old_starts_at`, if it moved), the posts."""

    shift_name: str
    starts_at: datetime
    old_starts_at: datetime | None
    posts: tuple[Post, ...]
    moved_tps_ids: frozenset[int]
    places_changed: bool
    language: str


@dataclass(frozen=True)
class Key:
    """A reminder's dedup key, readable back: a correction needs the old start it replaces."""

    shift_id: int
    kind: str  # the offset in minutes, or FIX
    personnel_id: int
    starts: int
    places: str

    @property
    def fingerprint(self) -> tuple[int, str]:
        return (self.starts, self.places)

    def __str__(self) -> str:
        return f"reminder:{self.shift_id}:{self.kind}:{self.personnel_id}:{self.starts}:{self.places}"

    @classmethod
    def parse(cls, text: str) -> Key | None:
        parts = text.split(":")
        if len(parts) != 6 or parts[0] != "reminder":
            return None
        try:
            return cls(int(parts[1]), parts[2], int(parts[3]), int(parts[4]), parts[5])
        except ValueError:
            return None


def ref_of(shift_id: int) -> str:
    return f"reminder:{shift_id}"


def offset_text(minutes: float) -> str:
    """`1440`, `60`, `0`, `0.1`: stable in keys whatever float the configuration gave."""
    return f"{minutes:g}"


def places_hash(posts: Iterable[Post]) -> str:
    """Which TPS, and where they stand (to about a metre): a relocation changes it."""
    spots = sorted(f"{post.tps_id}@{post.lat:.5f},{post.lon:.5f}" for post in posts)
    return hashlib.sha1("|".join(spots).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Recipient:
    """One person's part in one shift."""

    personnel_id: int
    chat_id: int
    language: str
    posts: tuple[Post, ...]
    checked_in: bool

    @cached_property
    def places(self) -> str:
        return places_hash(self.posts)

    def key(self, shift: Shift, kind: str) -> Key:
        return Key(shift.id, kind, self.personnel_id, int(shift.starts_at.timestamp()), self.places)

    def key_text(self, shift: Shift, kind: str) -> str:
        """`str(self.key(...))` without the object: planning builds one per person and offset."""
        return f"reminder:{shift.id}:{kind}:{self.personnel_id}:{int(shift.starts_at.timestamp())}:{self.places}"


@dataclass(frozen=True)
class Existing:
    state: str
    sent_at: datetime | None


@dataclass
class Run:
    """Reminders due by the same moment; `fresh` rows (with their place in the run) get due times."""

    label: str
    due_by: datetime
    send_by: datetime
    size: int
    fresh: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    messages: list[Outgoing[Any]] = field(default_factory=list)  # a Reminder, or an escort's


@dataclass(frozen=True)
class ShiftPlanning:
    """What one shift asks of the outbox, worked out before anything is written."""

    runs: list[Run]
    stale: list[str]  # pending rows nobody should get any more
    forget: list[str]  # cancelled rows wanted again
    corrections: list[Outgoing[Correction]]
    skipped_late: int  # new rows of runs long past their time


@dataclass(frozen=True)
class ReminderPlan:
    """What the outbox must come to hold in the next `HORIZON`, before anything is written or worded."""

    reminders: list[Outgoing[Reminder]]  # with their due times, run by run
    corrections: list[Outgoing[Correction]]
    stale: list[str]
    forget: list[str]
    skipped_late: int
    late_runs: int


async def work_out(session: AsyncSession, *, now: datetime, settings: Settings) -> ReminderPlan:
    """Read the roster and the outbox and decide every reminder of the next `HORIZON`; nothing is written.

    Idempotent with `write`: safe to run every minute, from any worker, after
    any restart.
    """
    offsets = sorted({float(minutes) for minutes in settings.reminders.before_minutes}, reverse=True)
    latest = now + HORIZON + timedelta(minutes=max(offsets, default=0))
    shifts = list(
        await session.scalars(
            select(Shift).where(Shift.ends_at > now, Shift.starts_at <= latest).order_by(Shift.starts_at, Shift.id)
        )
    )
    planned = [await _plan_shift(session, shift=shift, offsets=offsets, now=now, settings=settings) for shift in shifts]
    runs = [run for shift in planned for run in shift.runs]
    late_runs = schedule_runs(runs, now=now, rate=REMINDER_SHARE * settings.delivery.global_per_second)
    return ReminderPlan(
        reminders=[m for run in runs for m in run.messages],
        corrections=[m for shift in planned for m in shift.corrections],
        stale=[key for shift in planned for key in shift.stale],
        forget=[key for shift in planned for key in shift.forget],
        skipped_late=sum(shift.skipped_late for shift in planned),
        late_runs=late_runs,
    )


async def write(
    session: AsyncSession,
    plan: ReminderPlan,
    *,
    reminders: Iterable[NewMessage],
    corrections: Iterable[NewMessage],
    now: datetime,
) -> PlanResult:
    """Make the outbox agree with `plan`, its messages as the caller worded them, in one transaction.

    Everything was worked out before: on SQLite the writer's turn is held only
    while writing, not for the seconds a large roster takes to work out
    (check-ins wait for it).
    """
    cancelled = await cancel_pending(session, plan.stale)
    await forget_cancelled(session, plan.forget)
    corrected = await enqueue_many(session, corrections, now=now)
    queued = await enqueue_many(session, reminders, now=now)
    result = PlanResult(
        planned=queued,
        cancelled=cancelled,
        skipped_late=plan.skipped_late,
        corrections=corrected,
        late_runs=plan.late_runs,
    )
    if result.planned or result.cancelled or result.corrections:  # one row per run that changed something
        audit.record(session, action="reminders.planned", entity="outbox", actor=ACTOR, detail=asdict(result))
    await session.commit()
    return result


async def _plan_shift(
    session: AsyncSession, *, shift: Shift, offsets: Sequence[float], now: datetime, settings: Settings
) -> ShiftPlanning:
    """This shift's runs (not queued yet), and which of its rows are stale, to forget and to correct."""
    recipients = await recipients_of(session, shift_id=shift.id)
    existing = await _existing(session, shift.id)
    kinds = [(offset_text(o), o) for o in offsets]
    wanted = {r.key_text(shift, kind): (r, o) for r in recipients if not r.checked_in for kind, o in kinds}
    current_fixes = {r.key_text(shift, FIX) for r in recipients}
    received = _received(existing)  # an offset already sent under an older fingerprint: the correction tells
    runs: list[Run] = []
    skipped = 0
    for offset in offsets:
        keys = sorted((k for k, (_, o) in wanted.items() if o == offset), key=lambda k: wanted[k][0].personnel_id)
        fresh = [(i, k) for i, k in enumerate(keys) if _needs_row(k, wanted[k][0], existing, received)]
        if not fresh or _due_by(shift, offset) > now + HORIZON:
            continue
        if _missed(shift, offset, now=now, settings=settings):
            skipped += len(fresh)
            continue
        run = _run(shift, offset, size=len(keys), now=now)
        for position, key in fresh:
            recipient = wanted[key][0]
            say = Reminder(shift.name, shift.phase, shift.starts_at, recipient.posts, recipient.language)
            run.fresh.append((position, _row(shift, recipient, key, say)))
        runs.append(run)
    fixes = _corrections(shift, recipients, existing)
    planned = [key for run in runs for key in _keys(run)]
    return ShiftPlanning(
        runs=runs,
        stale=[
            k for k, row in existing.items() if row.state == _PENDING and k not in wanted and k not in current_fixes
        ],
        forget=[key for key in [*planned, *fixes] if key in existing],
        corrections=[
            Outgoing(
                **_row(shift, recipient, key, _correction(shift, recipient, previous, sent_at)),
                due_at=now,
                send_by=max(shift.starts_at, now + LATE_TOLERANCE),
            )
            for key, (recipient, previous, sent_at) in fixes.items()
        ],
        skipped_late=skipped,
    )


def _due_by(shift: Shift, offset: float) -> datetime:
    return shift.starts_at - timedelta(minutes=offset)


def _missed(shift: Shift, offset: float, *, now: datetime, settings: Settings) -> bool:
    """Long past its time: not sent at all, except the reminder at the start while check-in is still on time."""
    grace = timedelta(minutes=settings.checkin.grace_minutes)
    return _due_by(shift, offset) < now - LATE_TOLERANCE and not (offset == 0 and now < shift.starts_at + grace)


def _run(shift: Shift, offset: float, *, size: int, now: datetime) -> Run:
    due_by = _due_by(shift, offset)
    return Run(f"{shift.code}-{offset_text(offset)}", due_by, max(due_by, now + LATE_TOLERANCE), size)


def _keys(run: Run) -> list[str]:
    return [row["dedup_key"] for _, row in run.fresh]


def _row(shift: Shift, recipient: Recipient, key: str, say: Reminder | Correction) -> dict[str, Any]:
    return {
        "say": say,
        "chat_id": recipient.chat_id,
        "priority": Priority.reminder,
        "dedup_key": key,
        "personnel_id": recipient.personnel_id,
        "ref": ref_of(shift.id),
    }


def _corrections(
    shift: Shift, recipients: Sequence[Recipient], existing: dict[str, Existing]
) -> dict[str, tuple[Recipient, Key, datetime]]:
    """People whose last reminder (or correction) said something that is no longer true.

    Compared with the last one they actually received, so a change made and
    undone before anything went out sends nothing, and each change is told once.
    """
    last: dict[int, tuple[datetime, Key]] = {}
    for text, row in existing.items():
        key = Key.parse(text)
        if key is None or row.state != _SENT or row.sent_at is None:
            continue
        if key.personnel_id not in last or row.sent_at >= last[key.personnel_id][0]:
            last[key.personnel_id] = (row.sent_at, key)
    fixes: dict[str, tuple[Recipient, Key, datetime]] = {}
    for recipient in recipients:
        if recipient.personnel_id not in last:
            continue
        sent_at, previous = last[recipient.personnel_id]
        fix = recipient.key(shift, FIX)
        if previous.fingerprint == fix.fingerprint:
            continue
        if str(fix) not in existing or existing[str(fix)].state == _CANCELLED:
            fixes[str(fix)] = (recipient, previous, sent_at)
    return fixes


def _needs_row(key: str, recipient: Recipient, existing: dict[str, Existing], received: set[tuple[int, str]]) -> bool:
    """Not queued yet (or cancelled and wanted again), and this offset not delivered already."""
    row = existing.get(key)
    kind = key.split(":")[2]
    return (row is None or row.state == _CANCELLED) and (recipient.personnel_id, kind) not in received


def _received(existing: dict[str, Existing]) -> set[tuple[int, str]]:
    """(person, offset) pairs already delivered, whatever fingerprint they carried."""
    keys = (Key.parse(text) for text, row in existing.items() if row.state == _SENT)
    return {(key.personnel_id, key.kind) for key in keys if key is not None}


def _correction(shift: Shift, recipient: Recipient, previous: Key, sent_at: datetime) -> Correction:
    current = recipient.key(shift, FIX)
    old_start = datetime.fromtimestamp(previous.starts, UTC) if previous.starts != current.starts else None
    moved = {post.tps_id for post in recipient.posts if post.relocated_at is not None and post.relocated_at > sent_at}
    return Correction(
        shift_name=shift.name,
        starts_at=shift.starts_at,
        old_starts_at=old_start,
        posts=recipient.posts,
        moved_tps_ids=frozenset(moved),
        places_changed=previous.places != current.places,
        language=recipient.language,
    )


def schedule_runs(runs: list[Run], *, now: datetime, rate: float) -> int:
    """Give each fresh row its due time; returns how many runs will finish after their deadline.

    Runs are laid out backwards from the latest deadline, each ending by its
    own deadline and before the next run starts, so two runs close together
    share the rate instead of both assuming all of it.
    """
    step = timedelta(seconds=1 / rate)
    late_runs = 0
    cursor: datetime | None = None
    for run in sorted(runs, key=lambda r: r.due_by, reverse=True):
        end = run.due_by if cursor is None else min(run.due_by, cursor)
        first_due = end - step * (run.size - 1)
        for position, row in run.fresh:
            due = end - step * (run.size - 1 - position)
            run.messages.append(Outgoing(**row, due_at=max(now, due), send_by=run.send_by))
        cursor = end - step * run.size
        if first_due < now < run.due_by:
            late_runs += 1
            _warn_late(run, now=now, rate=rate, end=end)
    return late_runs


def _warn_late(run: Run, *, now: datetime, rate: float, end: datetime) -> None:
    """Say it where an operator looks: counts and times only, never who."""
    available = max(0.0, (end - now).total_seconds())
    late = max(0, run.size - int(available * rate))
    log.warning(
        "reminder run %s due by %s cannot be met: %d messages need %.0f s at %.1f/s, %.0f s remain; "
        "about %d will arrive late",
        run.label,
        run.due_by.isoformat(timespec="seconds"),
        run.size,
        run.size / rate,
        rate,
        available,
        late,
    )


async def recipients_of(session: AsyncSession, *, shift_id: int) -> list[Recipient]:
    """Registered, reachable people assigned to the shift, each with all their posts, by id."""
    of_shift = select(Assignment.tps_id).where(Assignment.shift_id == shift_id)
    posts = {  # one Post per TPS, shared by everyone guarding it
        row[0]: post_from_row(row)
        for row in await session.execute(
            select(*POST_COLUMNS).join(Unit, Unit.id == Tps.unit_id).where(Tps.id.in_(of_shift))
        )
    }
    query = (
        select(Assignment.personnel_id, Personnel.telegram_user_id, Personnel.language, Assignment.tps_id)
        .join(Personnel, Personnel.id == Assignment.personnel_id)
        .where(Assignment.shift_id == shift_id, Personnel.telegram_user_id.is_not(None), Personnel.reachable.is_(True))
        .order_by(Assignment.personnel_id)
    )
    checked_in = set(await session.scalars(select(Checkin.personnel_id).where(Checkin.shift_id == shift_id)))
    people: dict[int, tuple[int, str, list[Post]]] = {}
    for personnel_id, chat_id, language, tps_id in await session.execute(query):
        assert chat_id is not None  # the WHERE keeps registered people only
        people.setdefault(personnel_id, (chat_id, language, []))[2].append(posts[tps_id])
    return [
        Recipient(pid, chat_id, language, tuple(sorted(mine, key=lambda post: post.tps_code)), pid in checked_in)
        for pid, (chat_id, language, mine) in people.items()
    ]


async def _existing(session: AsyncSession, shift_id: int) -> dict[str, Existing]:
    query = select(Outbox.dedup_key, Outbox.state, Outbox.sent_at).where(Outbox.ref == ref_of(shift_id))
    return {key: Existing(state, sent_at) for key, state, sent_at in await session.execute(query)}


async def cancel_pending(session: AsyncSession, keys: Sequence[str]) -> int:
    """Pending rows nobody should get any more; a row already being sent is left to finish."""
    cancelled = 0
    for start in range(0, len(keys), CHUNK):
        result = await session.execute(
            update(Outbox)
            .where(Outbox.dedup_key.in_(keys[start : start + CHUNK]), Outbox.state == _PENDING)
            .values(state=_CANCELLED)
            .execution_options(synchronize_session=False)
        )
        cancelled += rowcount(result)
    return cancelled


async def forget_cancelled(session: AsyncSession, keys: Sequence[str]) -> None:
    """A cancelled row wanted again (an assignment restored) makes way for a fresh one."""
    for start in range(0, len(keys), CHUNK):
        await session.execute(
            delete(Outbox)
            .where(Outbox.dedup_key.in_(keys[start : start + CHUNK]), Outbox.state == _CANCELLED)
            .execution_options(synchronize_session=False)
        )
