"""Reminders to escort members before their escort leaves, derived into the outbox like the shift reminders.

Each planning run works out who should be reminded (registered, reachable
members of an escort still `terjadwal`) at each `reminders.before_minutes`
offset before its `depart_at`, and makes the outbox agree: missing rows are
queued, pending rows nobody should get any more (the escort departed or
was received, the member was taken off it, the departure moved) are
cancelled. The dedup key names the escort, the offset, the member and the
departure it announces:

    escort-reminder:{escort_id}:{offset}:{personnel_id}:{depart_epoch}

so a second run, a restart or another worker queues nothing twice, and a
re-import that moves `depart_at` gives new keys: the coming reminders are
planned again, and whoever already received one naming the old departure
gets one correction (`...:fix:...`, once per change). An offset already
delivered is not sent again under the new departure: the correction tells.

Rows are paced with the shift reminders' `schedule_runs`, each escort's
offset a run of its members; nothing here is worded (flows/escort_reminders.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, cast, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.services import audit
from bot.services.escorts.route import escort_query, route_of, vias_of
from bot.services.outbox import NewMessage, Outgoing, enqueue_many
from bot.services.reminders import (
    HORIZON,
    LATE_TOLERANCE,
    REMINDER_SHARE,
    PlanResult,
    Run,
    cancel_pending,
    forget_cancelled,
    offset_text,
    schedule_runs,
)
from bot.storage.db import rowcount
from models import Escort, EscortMember, Outbox, Personnel
from models.enums import EscortState, OutboxState, Priority

PREFIX = "escort-reminder"
FIX = "fix"
ACTOR = "scheduler"
CHUNK = 1_000
RANGE = (f"{PREFIX}:", f"{PREFIX};")  # every ref of this prefix, as an index range (";" follows ":")

_PENDING = OutboxState.pending.value
_SENT = OutboxState.sent.value
_CANCELLED = OutboxState.cancelled.value


@dataclass(frozen=True)
class EscortReminder:
    """What a member is reminded of: the escort, its cargo and route, when it leaves and is due, their role."""

    code: str
    cargo: str
    origin: str
    destination: str
    vias: tuple[str, ...]
    depart_at: datetime
    arrive_by: datetime
    role: str
    language: str


@dataclass(frozen=True)
class EscortCorrection:
    """The departure moved after the member's last reminder: the one it said (`old_depart_at`) and the new."""

    code: str
    cargo: str
    origin: str
    destination: str
    depart_at: datetime
    old_depart_at: datetime
    arrive_by: datetime
    language: str


@dataclass(frozen=True)
class Key:
    escort_id: int
    kind: str  # the offset in minutes, or FIX
    personnel_id: int
    departs: int

    def __str__(self) -> str:
        return f"{PREFIX}:{self.escort_id}:{self.kind}:{self.personnel_id}:{self.departs}"

    @classmethod
    def parse(cls, text: str) -> Key | None:
        parts = text.split(":")
        if len(parts) != 5 or parts[0] != PREFIX:
            return None
        try:
            return cls(int(parts[1]), parts[2], int(parts[3]), int(parts[4]))
        except ValueError:
            return None


def ref_of(escort_id: int) -> str:
    return f"{PREFIX}:{escort_id}"


@dataclass(frozen=True)
class Member:
    personnel_id: int
    chat_id: int
    language: str
    role: str


@dataclass(frozen=True)
class Planned:
    """An escort still to leave, as its reminders say it."""

    id: int
    code: str
    cargo: str
    origin: str
    destination: str
    vias: tuple[str, ...]
    depart_at: datetime
    arrive_by: datetime

    @property
    def departs(self) -> int:
        return int(self.depart_at.timestamp())

    def key(self, kind: str, member: Member) -> str:
        return str(Key(self.id, kind, member.personnel_id, self.departs))


@dataclass(frozen=True)
class Existing:
    state: str
    sent_at: datetime | None


@dataclass(frozen=True)
class EscortReminderPlan:
    """What the outbox must come to hold, before anything is written or worded."""

    reminders: list[Outgoing[EscortReminder]]
    corrections: list[Outgoing[EscortCorrection]]
    stale: list[str]
    forget: list[str]
    skipped_late: int
    late_runs: int


async def work_out(session: AsyncSession, *, now: datetime, settings: Settings) -> EscortReminderPlan:
    """Read the escorts, their crews and the outbox, and decide every reminder; nothing is written.

    Idempotent with `write`: safe to run every minute, from any worker, after any restart.
    """
    offsets = sorted({float(minutes) for minutes in settings.reminders.before_minutes}, reverse=True)
    latest = now + HORIZON + timedelta(minutes=max(offsets, default=0))
    escorts = await _planned(session, now=now, latest=latest)
    crews = await _crews(session, [escort.id for escort in escorts])
    existing = await _existing(session, [escort.id for escort in escorts])
    wanted: set[str] = set()
    runs: list[Run] = []
    corrections: list[Outgoing[EscortCorrection]] = []
    skipped = 0
    delivered = _sent(existing)
    for escort in escorts:
        crew, sent = crews.get(escort.id, []), delivered.get(escort.id, [])
        received = {(key.personnel_id, key.kind) for key, _ in sent}  # an offset told under another departure
        for offset in offsets:
            kind = offset_text(offset)
            keys = [(member, escort.key(kind, member)) for member in crew]
            wanted.update(key for _, key in keys)
            fresh = [(i, member, key) for i, (member, key) in enumerate(keys) if _needs_row(key, existing, received)]
            due_by = escort.depart_at - timedelta(minutes=offset)
            if not fresh or due_by > now + HORIZON:
                continue
            if due_by < now - LATE_TOLERANCE:
                skipped += len(fresh)
                continue
            run = Run(f"{escort.code}-{kind}", due_by, max(due_by, now + LATE_TOLERANCE), len(keys))
            run.fresh.extend((i, _row(escort, member, key, _reminder(escort, member))) for i, member, key in fresh)
            runs.append(run)
        wanted.update(escort.key(FIX, member) for member in crew)
        corrections += _corrections(escort, crew, existing, sent, now=now)
    late_runs = schedule_runs(runs, now=now, rate=REMINDER_SHARE * settings.delivery.global_per_second)
    planned = [row["dedup_key"] for run in runs for _, row in run.fresh]
    return EscortReminderPlan(
        reminders=[message for run in runs for message in run.messages],
        corrections=corrections,
        stale=[key for key, row in existing.items() if row.state == _PENDING and key not in wanted],
        forget=[key for key in [*planned, *(c.dedup_key for c in corrections)] if key in existing],
        skipped_late=skipped,
        late_runs=late_runs,
    )


async def write(
    session: AsyncSession,
    plan: EscortReminderPlan,
    *,
    reminders: Sequence[NewMessage],
    corrections: Sequence[NewMessage],
    now: datetime,
) -> PlanResult:
    """Make the outbox agree with `plan`, its messages as the caller worded them, in one transaction."""
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
    if result.planned or result.cancelled or result.corrections:
        audit.record(session, action="escort_reminders.planned", entity="outbox", actor=ACTOR, detail=asdict(result))
    await session.commit()
    return result


async def cancel_departed(session: AsyncSession, *, escort_id: int) -> int:
    """The escort has left: its members' reminders still waiting are cancelled now, not at the next pass.

    The pass cancels them too, but it runs once a minute; a reminder to
    depart that arrives after the departure only confuses.
    """
    result = await session.execute(
        update(Outbox)
        .where(Outbox.ref == ref_of(escort_id), Outbox.state == OutboxState.pending.value)
        .values(state=_CANCELLED)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def _reminder(escort: Planned, member: Member) -> EscortReminder:
    return EscortReminder(
        escort.code,
        escort.cargo,
        escort.origin,
        escort.destination,
        escort.vias,
        escort.depart_at,
        escort.arrive_by,
        member.role,
        member.language,
    )


def _row(escort: Planned, member: Member, key: str, say: EscortReminder | EscortCorrection) -> dict[str, Any]:
    return {
        "say": say,
        "chat_id": member.chat_id,
        "priority": Priority.reminder,
        "dedup_key": key,
        "personnel_id": member.personnel_id,
        "ref": ref_of(escort.id),
    }


def _needs_row(key: str, existing: dict[str, Existing], received: set[tuple[int, str]]) -> bool:
    """Not queued yet (or cancelled and wanted again), and this offset not delivered under another departure."""
    row = existing.get(key)
    parsed = Key.parse(key)
    assert parsed is not None
    return (row is None or row.state == _CANCELLED) and (parsed.personnel_id, parsed.kind) not in received


def _sent(existing: dict[str, Existing]) -> dict[int, list[tuple[Key, datetime]]]:
    """Each escort's delivered keys with the time they went out."""
    found: dict[int, list[tuple[Key, datetime]]] = {}
    for text, row in existing.items():
        key = Key.parse(text)
        if key is not None and row.state == _SENT and row.sent_at is not None:
            found.setdefault(key.escort_id, []).append((key, row.sent_at))
    return found


def _corrections(
    escort: Planned,
    crew: Sequence[Member],
    existing: dict[str, Existing],
    sent: Sequence[tuple[Key, datetime]],
    *,
    now: datetime,
) -> list[Outgoing[EscortCorrection]]:
    """Members whose last reminder (or correction) of this escort named another departure, each told once."""
    last: dict[int, tuple[datetime, Key]] = {}
    for key, sent_at in sent:
        if key.personnel_id not in last or sent_at >= last[key.personnel_id][0]:
            last[key.personnel_id] = (sent_at, key)
    fixes = []
    for member in crew:
        if member.personnel_id not in last or last[member.personnel_id][1].departs == escort.departs:
            continue
        fix = escort.key(FIX, member)
        if fix in existing and existing[fix].state != _CANCELLED:
            continue
        say = EscortCorrection(
            escort.code,
            escort.cargo,
            escort.origin,
            escort.destination,
            escort.depart_at,
            datetime.fromtimestamp(last[member.personnel_id][1].departs, UTC),
            escort.arrive_by,
            member.language,
        )
        row = _row(escort, member, fix, say)
        fixes.append(Outgoing(**row, due_at=now, send_by=max(escort.depart_at, now + LATE_TOLERANCE)))
    return fixes


async def _planned(session: AsyncSession, *, now: datetime, latest: datetime) -> list[Planned]:
    """Escorts not yet departed that leave within the horizon, or whose members were reminded already.

    The second kind is there for the correction: a departure moved beyond
    the horizon after a reminder went out is told now, not a day later.
    """
    reminded = exists().where(
        Outbox.ref == f"{PREFIX}:" + cast(Escort.id, String),
        Outbox.state == _SENT,
    )
    query = escort_query().where(
        Escort.state == EscortState.terjadwal.value,
        Escort.departed_at.is_(None),
        Escort.depart_at > now - LATE_TOLERANCE,
        or_(Escort.depart_at <= latest, reminded),
    )
    rows = (await session.execute(query.order_by(Escort.depart_at, Escort.id))).all()
    vias = await vias_of(session, [row.Escort.id for row in rows])
    planned = []
    for row in rows:
        escort: Escort = row.Escort
        route = route_of(row, vias.get(escort.id, ()))
        planned.append(
            Planned(
                escort.id,
                escort.code,
                escort.cargo,
                route.origin.name,
                route.destination.name,
                tuple(via.waypoint.name for via in route.vias),
                escort.depart_at,
                escort.arrive_by,
            )
        )
    return planned


async def _crews(session: AsyncSession, escort_ids: Sequence[int]) -> dict[int, list[Member]]:
    """Registered, reachable members of each escort, by person."""
    found: dict[int, list[Member]] = {}
    for start in range(0, len(escort_ids), CHUNK):
        query = (
            select(
                EscortMember.escort_id,
                Personnel.id,
                Personnel.telegram_user_id,
                Personnel.language,
                EscortMember.role,
            )
            .join(Personnel, Personnel.id == EscortMember.personnel_id)
            .where(
                EscortMember.escort_id.in_(escort_ids[start : start + CHUNK]),
                Personnel.telegram_user_id.is_not(None),
                Personnel.reachable.is_(True),
            )
            .order_by(EscortMember.escort_id, Personnel.id)
        )
        for escort_id, personnel_id, chat_id, language, role in await session.execute(query):
            assert chat_id is not None  # the WHERE keeps registered people only
            found.setdefault(escort_id, []).append(Member(personnel_id, chat_id, language, role))
    return found


async def _existing(session: AsyncSession, escort_ids: Sequence[int]) -> dict[str, Existing]:
    """The rows of these escorts, and every pending escort reminder (of an escort gone from the plan too)."""
    columns = (Outbox.dedup_key, Outbox.state, Outbox.sent_at)
    of_prefix = and_(Outbox.ref >= RANGE[0], Outbox.ref < RANGE[1])
    found = {
        key: Existing(state, sent_at)
        for key, state, sent_at in await session.execute(select(*columns).where(of_prefix, Outbox.state == _PENDING))
    }
    for start in range(0, len(escort_ids), CHUNK):
        refs = [ref_of(escort_id) for escort_id in escort_ids[start : start + CHUNK]]
        for key, state, sent_at in await session.execute(select(*columns).where(Outbox.ref.in_(refs))):
            found[key] = Existing(state, sent_at)
    return found
