"""Contingency escalation: a state machine stored in the database, timers included.

States are `open`, `acknowledged` and `resolved`. Every transition is a
compare-and-set on `contingencies.version` (`UPDATE ... WHERE version =
:seen`): whoever read an older state (a sweep on another worker, a button
pressed twice, a timer that fired late) changes nothing, and each
transition is written as a `ContingencyStep` numbered by the version it
created, so the log of one contingency has no gaps and no repeats.

The timer is `deadline_at`: for an open contingency, when it climbs one
unit up; for an acknowledged one, when its acknowledger is reminded; for a
draft (severity not chosen yet), when it is raised as `tinggi` anyway, so a
reporter who never presses a button still reaches someone. `sweep` fires
every timer that has passed; it holds nothing in memory, so a restart only
delays it. Every timer runs from a moment of the bot's own: a climb's from
when its groups were alerted (the raise, or the previous climb), a draft's
from when the bot read it. Never from when the reporter sent it
(`sent_at`): read ten minutes late after an outage, a contingency would
otherwise skip past a group that never had the time the timeout promises,
or go out as `tinggi` before its reporter saw the severity buttons.

Where an alert goes. The origins are the TPS's primary unit and its
secondary units (border TPS). At level 0 each origin's group is reached; at
level k, the unit k steps above each origin (never above its root). A unit
without a reachable group of its own is covered by its nearest ancestor's
group. A climb that would reach no group not reached already keeps climbing
in the same step, so no timeout is spent on a level that notifies nobody;
when no level above would reach anyone new the timer stops (`deadline_at`
NULL) and the contingency stays open where it is. The climb follows the
primary unit's chain of command to its root; secondary units climb
alongside, level by level. `level_unit_id` is the primary unit's ancestor
at the current level.

Copies of the alert in the groups are kept in step by
`bot/services/incident_copies.py`.

Texts come from `bot/render/incidents.py`, which imports nothing from
Telegram, so this module stays free of it as every service is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.config import Settings
from bot.render import incidents as texts
from bot.services import audit
from bot.services.groups import GroupTarget, nearest_groups
from bot.services.incident_copies import notify_person, reach, sync_copies
from bot.services.units import ancestors
from models import Contingency, ContingencyMessage, ContingencyStep, Personnel, Tps, TpsSecondaryUnit, Unit
from models.enums import ContingencyState, Severity

OPEN, ACKNOWLEDGED, RESOLVED = (state.value for state in ContingencyState)
DRAFT_TIMEOUT = timedelta(minutes=2)
SWEEP_LIMIT = 200
RECONCILE_LIMIT = 500


@dataclass(frozen=True)
class ContingencyView:
    """One contingency as texts and decisions need it, read in one go and never attached to a session.

    `sent_at` is when the reporter sent it (`created_at`, when the bot read
    it, for rows from before sent times were kept).
    """

    id: int
    version: int
    state: str
    severity: str | None
    text: str
    tps_id: int | None
    tps_code: str | None
    tps_address: str
    unit_id: int
    unit_name: str
    secondary_unit_ids: tuple[int, ...]
    secondary_names: tuple[str, ...]
    level_unit_id: int
    level_name: str
    reporter_id: int
    reporter: str
    reporter_chat: int | None
    reporter_language: str
    lat: float | None
    lon: float | None
    sent_at: datetime
    created_at: datetime
    raised_at: datetime | None
    deadline_at: datetime | None
    acknowledged_by_id: int | None
    acknowledged_by: str
    acknowledged_at: datetime | None
    acknowledger_chat: int | None
    acknowledger_language: str
    resolved_by: str
    resolved_at: datetime | None

    @property
    def origins(self) -> tuple[int, ...]:
        return (self.unit_id, *self.secondary_unit_ids)


def _title(rank: str | None, name: str | None) -> str:
    return f"{rank or ''} {name or ''}".strip()


async def load(session: AsyncSession, contingency_id: int) -> ContingencyView | None:
    reporter, acker, resolver = aliased(Personnel), aliased(Personnel), aliased(Personnel)
    primary, level = aliased(Unit), aliased(Unit)
    row = (
        await session.execute(
            select(Contingency, Tps, primary.name, level.name, reporter, acker, resolver.rank, resolver.name)
            .join(primary, primary.id == Contingency.unit_id)
            .join(level, level.id == Contingency.level_unit_id)
            .join(reporter, reporter.id == Contingency.reporter_id)
            .outerjoin(Tps, Tps.id == Contingency.tps_id)
            .outerjoin(acker, acker.id == Contingency.acknowledged_by_id)
            .outerjoin(resolver, resolver.id == Contingency.resolved_by_id)
            .where(Contingency.id == contingency_id)
            .execution_options(populate_existing=True)
        )
    ).first()
    if row is None:
        return None
    c, tps, unit_name, level_name, rep, ack, res_rank, res_name = row
    secondaries = (
        (
            await session.execute(
                select(Unit.id, Unit.name)
                .join(TpsSecondaryUnit, TpsSecondaryUnit.unit_id == Unit.id)
                .where(TpsSecondaryUnit.tps_id == c.tps_id)
                .order_by(Unit.code)
            )
        ).all()
        if c.tps_id is not None
        else []
    )
    return ContingencyView(
        id=c.id,
        version=c.version,
        state=c.state,
        severity=c.severity,
        text=c.text,
        tps_id=c.tps_id,
        tps_code=tps.code if tps else None,
        tps_address=tps.address if tps else "",
        unit_id=c.unit_id,
        unit_name=unit_name,
        secondary_unit_ids=tuple(s.id for s in secondaries),
        secondary_names=tuple(s.name for s in secondaries),
        level_unit_id=c.level_unit_id,
        level_name=level_name,
        reporter_id=rep.id,
        reporter=_title(rep.rank, rep.name),
        reporter_chat=rep.telegram_user_id,
        reporter_language=rep.language,
        lat=c.lat,
        lon=c.lon,
        sent_at=c.sent_at or c.created_at,
        created_at=c.created_at,
        raised_at=c.raised_at,
        deadline_at=c.deadline_at,
        acknowledged_by_id=c.acknowledged_by_id,
        acknowledged_by=_title(ack.rank, ack.name) if ack else "",
        acknowledged_at=c.acknowledged_at,
        acknowledger_chat=ack.telegram_user_id if ack else None,
        acknowledger_language=ack.language if ack else "id",
        resolved_by=_title(res_rank, res_name),
        resolved_at=c.resolved_at,
    )


def ack_timeout(settings: Settings, severity: str | None) -> timedelta:
    minutes = getattr(settings.escalation.ack_timeout_minutes, severity or Severity.tinggi.value)
    return timedelta(minutes=minutes)


async def transition(
    session: AsyncSession,
    view: ContingencyView,
    *,
    kind: str,
    now: datetime,
    values: dict[str, Any],
    unit_id: int | None = None,
    actor_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Apply `values` only if nobody moved the contingency since `view` was read; record the step.

    False means another worker, timer or press got there first: the caller
    rolls back and re-reads, and nothing it planned has been written.
    """
    result = await session.execute(
        update(Contingency)
        .where(Contingency.id == view.id, Contingency.version == view.version)
        .values(version=view.version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    session.add(
        ContingencyStep(
            contingency_id=view.id, version=view.version + 1, kind=kind, unit_id=unit_id, actor_id=actor_id, at=now
        )
    )
    audit.record(
        session,
        action=f"contingency.{kind}",
        entity="contingency",
        entity_id=view.id,
        actor_id=actor_id,
        actor="" if actor_id else "escalation",
        detail={"version": view.version + 1, **(detail or {})},
    )
    return True


# -- the ladder: who is reached at which level -----------------------------------------------------


@dataclass(frozen=True)
class Ladder:
    """Each origin's chain of command (nearest first; the primary unit's first) and their groups."""

    chains: tuple[tuple[int, ...], ...]
    groups: dict[int, GroupTarget | None]

    @property
    def top(self) -> int:
        return len(self.chains[0]) - 1

    def level_of(self, unit_id: int) -> int:
        return self.chains[0].index(unit_id) if unit_id in self.chains[0] else 0

    def unit_at(self, level: int) -> int:
        return self.chains[0][min(level, self.top)]

    def next_step(self, level: int, reached: set[int]) -> tuple[int, list[GroupTarget]]:
        """The first level above `level` that reaches a group not in `reached`, and those groups.

        (`level`, []) when no level above reaches anyone new: the climb is over.
        """
        for candidate in range(level + 1, self.top + 1):
            fresh = [target for chat, target in self.targets(candidate).items() if chat not in reached]
            if fresh:
                return candidate, fresh
        return level, []

    def targets(self, level: int) -> dict[int, GroupTarget]:
        found: dict[int, GroupTarget] = {}
        for chain in self.chains:
            target = self.groups.get(chain[min(level, len(chain) - 1)])
            if target is not None:
                found.setdefault(target.chat_id, target)
        return found


async def ladder(session: AsyncSession, view: ContingencyView) -> Ladder:
    chains = []
    for origin in view.origins:
        chain = tuple(unit.id for unit in await ancestors(session, origin, include_self=True))
        chains.append(chain or (origin,))
    groups = await nearest_groups(session, unit_ids={unit for chain in chains for unit in chain})
    return Ladder(tuple(chains), groups)


async def reached_chats(session: AsyncSession, contingency_id: int) -> set[int]:
    query = select(ContingencyMessage.chat_id).where(ContingencyMessage.contingency_id == contingency_id)
    return set((await session.scalars(query)).all())


# -- transitions the timer and the buttons share ------------------------------------------------------


async def raise_now(
    session: AsyncSession,
    view: ContingencyView,
    *,
    severity: str,
    now: datetime,
    settings: Settings,
    actor_id: int | None,
) -> list[GroupTarget] | None:
    """Raise a draft: reach the level-0 groups and start the timer; None if someone raised it first."""
    lad = await ladder(session, view)
    targets = list(lad.targets(0).values())
    climbs = lad.next_step(0, set(lad.targets(0)))[1]
    deadline = now + ack_timeout(settings, severity) if climbs else None
    values = {"severity": severity, "raised_at": now, "deadline_at": deadline, "level_unit_id": lad.unit_at(0)}
    detail = {"severity": severity, "chats": [t.chat_id for t in targets], "auto": actor_id is None}
    if not await transition(
        session, view, kind="raised", now=now, values=values, unit_id=view.unit_id, actor_id=actor_id, detail=detail
    ):
        return None
    fresh = await load(session, view.id)
    assert fresh is not None
    await reach(session, fresh, targets, now=now, settings=settings)
    return targets


async def climb(
    session: AsyncSession, view: ContingencyView, *, now: datetime, settings: Settings, actor_id: int | None = None
) -> list[GroupTarget] | None:
    """One step up: the next level that reaches a group not reached yet.

    Returns the groups newly reached ([] when the top was reached with
    nobody new), or None when the compare-and-set lost. A manual climb
    (`actor_id`) at the top changes nothing and returns [] without a step.
    """
    lad = await ladder(session, view)
    reached = await reached_chats(session, view.id)
    current = lad.level_of(view.level_unit_id)
    level, fresh = lad.next_step(current, reached)
    if not fresh and actor_id is not None:
        return []
    if not fresh:
        level = lad.top
    values: dict[str, Any] = {"level_unit_id": lad.unit_at(level)}
    if view.state == OPEN:
        climbs = lad.next_step(level, reached | {target.chat_id for target in fresh})[1]
        values["deadline_at"] = now + ack_timeout(settings, view.severity) if climbs else None
    kind = "escalated" if fresh else "top"
    detail = {
        "from": view.level_unit_id,
        "to": lad.unit_at(level),
        "chats": [t.chat_id for t in fresh],
        "manual": actor_id is not None,
    }
    if not await transition(
        session, view, kind=kind, now=now, values=values, unit_id=lad.unit_at(level), actor_id=actor_id, detail=detail
    ):
        return None
    after = await load(session, view.id)
    assert after is not None
    await sync_copies(session, after, now=now, settings=settings)
    await reach(session, after, fresh, now=now, settings=settings)
    return fresh


async def remind(session: AsyncSession, view: ContingencyView, *, now: datetime) -> bool:
    """Remind the acknowledger once per acknowledgement that the contingency is still unresolved."""
    if not await transition(
        session, view, kind="reminded", now=now, values={"deadline_at": None}, unit_id=view.level_unit_id
    ):
        return False
    assert view.acknowledged_by_id is not None
    text = texts.resolve_reminder(view, view.acknowledger_language)
    await notify_person(
        session,
        chat_id=view.acknowledger_chat,
        personnel_id=view.acknowledged_by_id,
        text=text,
        dedup_key=f"cont:{view.id}:m{view.version + 1}",
        now=now,
    )
    return True


# -- the sweep -----------------------------------------------------------------------------------------


async def sweep(session: AsyncSession, *, now: datetime, settings: Settings) -> int:
    """Fire every timer that has passed; returns how many transitions were made.

    Each contingency is handled in its own transaction, and every transition
    is a compare-and-set on the version read just before: two sweeps on two
    workers (or a sweep and a button press) never make the same step twice,
    and a sweep killed half-way leaves nothing half-done (its transaction
    rolls back, the deadline is still in the past, the next sweep makes the
    step). A contingency that fails is rolled back and the others still
    fire; the first error is raised at the end, for the job to log. Then
    `reconcile` catches up copies that were on the wire when their
    contingency changed.
    """
    due = list(
        await session.scalars(
            select(Contingency.id)
            .where(Contingency.state.in_([OPEN, ACKNOWLEDGED]), Contingency.deadline_at <= now)
            .order_by(Contingency.deadline_at, Contingency.id)
            .limit(SWEEP_LIMIT)
        )
    )
    await session.rollback()
    made = 0
    failure: Exception | None = None
    for contingency_id in due:
        try:
            made += await _fire(session, contingency_id, now=now, settings=settings)
            await session.commit()
        except Exception as error:  # one broken contingency must not hold back the others' timers
            await session.rollback()
            failure = failure or error
    await reconcile(session, now=now, settings=settings)
    if failure is not None:
        raise failure
    return made


async def _fire(session: AsyncSession, contingency_id: int, *, now: datetime, settings: Settings) -> int:
    """The one transition a passed deadline calls for; 0 when the state moved on since it was read."""
    view = await load(session, contingency_id)
    if view is None or view.deadline_at is None or view.deadline_at > now or view.state == RESOLVED:
        return 0
    if view.raised_at is None:
        targets = await raise_now(
            session, view, severity=Severity.tinggi.value, now=now, settings=settings, actor_id=None
        )
        if targets is not None:
            await notify_person(
                session,
                chat_id=view.reporter_chat,
                personnel_id=view.reporter_id,
                text=texts.auto_raised(view, targets, view.reporter_language),
                dedup_key=f"cont:{view.id}:r{view.version + 1}",
                now=now,
            )
        changed = targets is not None
    elif view.state == OPEN:
        changed = await climb(session, view, now=now, settings=settings) is not None
    else:
        changed = await remind(session, view, now=now)
    if not changed:
        await session.rollback()
    return int(changed)


async def reconcile(session: AsyncSession, *, now: datetime, settings: Settings) -> int:
    """Copies whose send was on the wire when the contingency changed: record their id, edit if stale."""
    waiting = list(
        await session.scalars(
            select(ContingencyMessage.contingency_id)
            .where(ContingencyMessage.message_id.is_(None))
            .distinct()
            .limit(RECONCILE_LIMIT)
        )
    )
    edits = 0
    for contingency_id in waiting:
        view = await load(session, contingency_id)
        if view is not None:
            edits += await sync_copies(session, view, now=now, settings=settings, only_stale=True)
        await session.commit()
    return edits
