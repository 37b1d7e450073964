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

Nothing here is worded. A transition returns an `Announcement`: the
contingency as it now stands, the groups it reaches for the first time,
whether the copies already posted must be brought in step, and private
notes. flows/incidents.py words it (bot/render/incidents.py) and queues it
in the same transaction (copies: `bot/services/incident_copies.py`); the
timers' sweep is there too, one transaction per contingency.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.config import Settings
from bot.services import audit
from bot.services.escort_alert_view import EscortAlertView, load_escort_alert
from bot.services.groups import GroupTarget, nearest_groups
from bot.services.units import ancestors
from bot.storage.db import rowcount
from models import Contingency, ContingencyMessage, ContingencyStep, Personnel, Tps, TpsSecondaryUnit, Unit
from models.enums import ContingencyState, Severity

OPEN, ACKNOWLEDGED, RESOLVED = (state.value for state in ContingencyState)
DRAFT_TIMEOUT = timedelta(minutes=2)
SWEEP_LIMIT = 200


@dataclass(frozen=True)
class ContingencyView:
    """One contingency as texts and decisions need it, read in one go and never attached to a session.

    `sent_at` is when the reporter sent it (`created_at`, when the bot read
    it, for rows from before sent times were kept). An automatic escort
    alert has no reporter (`reporter_id` None) and names its `escort`.
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
    reporter_id: int | None
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
    escort: EscortAlertView | None = None

    @property
    def origins(self) -> tuple[int, ...]:
        return (self.unit_id, *self.secondary_unit_ids)


class NoteKind(StrEnum):
    """Private notes about a contingency: to its reporter, or to whoever acknowledged it."""

    reporter_update = "reporter_update"  # acknowledged or resolved, by whom and when
    auto_raised = "auto_raised"  # no severity was chosen: it went out as `tinggi`
    resolve_reminder = "resolve_reminder"  # acknowledged long ago and still not resolved


@dataclass(frozen=True)
class Note:
    """One private note: what it says (`kind`, about the announcement's contingency), to whom, once (the key)."""

    kind: NoteKind
    chat_id: int | None  # None: not registered, nobody to tell
    personnel_id: int
    language: str
    dedup_key: str


@dataclass(frozen=True)
class Announcement:
    """What one transition asks to be told, for the flow to word and queue before the transaction commits.

    `view` is the contingency as it now stands; `reach` the groups that get
    its alert for the first time; `sync` asks every copy already posted to
    show `view`; `notes` go to people privately.
    """

    view: ContingencyView
    reach: tuple[GroupTarget, ...] = ()
    sync: bool = False
    notes: tuple[Note, ...] = ()


def _title(rank: str | None, name: str | None) -> str:
    return f"{rank or ''} {name or ''}".strip()


def _contingency() -> Select[Contingency, Tps, str, str, Personnel, Personnel, str, str]:
    reporter, acker, resolver = aliased(Personnel), aliased(Personnel), aliased(Personnel)
    primary, level = aliased(Unit), aliased(Unit)
    return (
        select(Contingency, Tps, primary.name, level.name, reporter, acker, resolver.rank, resolver.name)
        .join(primary, primary.id == Contingency.unit_id)
        .join(level, level.id == Contingency.level_unit_id)
        .outerjoin(reporter, reporter.id == Contingency.reporter_id)
        .outerjoin(Tps, Tps.id == Contingency.tps_id)
        .outerjoin(acker, acker.id == Contingency.acknowledged_by_id)
        .outerjoin(resolver, resolver.id == Contingency.resolved_by_id)
        .where(Contingency.id == bindparam("contingency_id"))
        .execution_options(populate_existing=True)
    )


_CONTINGENCY = _contingency()
"""Built once: its five aliases cost more to make than the query costs to run, and every step, press and
copy kept in step reads one."""


async def load(session: AsyncSession, contingency_id: int) -> ContingencyView | None:
    row = (await session.execute(_CONTINGENCY, {"contingency_id": contingency_id})).first()
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
        reporter_id=rep.id if rep else None,
        reporter=_title(rep.rank, rep.name) if rep else "",
        reporter_chat=rep.telegram_user_id if rep else None,
        reporter_language=rep.language if rep else "id",
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
        escort=(
            await load_escort_alert(session, contingency_id=c.id, escort_id=c.escort_id, position_at=c.position_at)
            if c.escort_id is not None
            else None
        ),
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
    by: str = "escalation",
) -> bool:
    """Apply `values` only if nobody moved the contingency since `view` was read; record the step.

    `by` names the part of the bot that made a transition nobody pressed for (the audit's actor).

    False means another worker, timer or press got there first: the caller
    rolls back and re-reads, and nothing it planned has been written.
    """
    result = await session.execute(
        update(Contingency)
        .where(Contingency.id == view.id, Contingency.version == view.version)
        .values(version=view.version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
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
        actor="" if actor_id else by,
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
) -> Announcement | None:
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
    return Announcement(fresh, reach=tuple(targets))


async def climb(
    session: AsyncSession, view: ContingencyView, *, now: datetime, settings: Settings, actor_id: int | None = None
) -> Announcement | None:
    """One step up: the next level that reaches a group not reached yet.

    Its announcement reaches the groups newly reached (none when the top was
    reached with nobody new) and brings the copies in step; None when the
    compare-and-set lost. A manual climb (`actor_id`) at the top changes
    nothing and announces nothing, without a step.
    """
    lad = await ladder(session, view)
    reached = await reached_chats(session, view.id)
    current = lad.level_of(view.level_unit_id)
    level, fresh = lad.next_step(current, reached)
    if not fresh and actor_id is not None:
        return Announcement(view)
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
    return Announcement(after, reach=tuple(fresh), sync=True)


async def remind(session: AsyncSession, view: ContingencyView, *, now: datetime) -> Announcement | None:
    """Remind the acknowledger once per acknowledgement that the contingency is still unresolved."""
    if not await transition(
        session, view, kind="reminded", now=now, values={"deadline_at": None}, unit_id=view.level_unit_id
    ):
        return None
    assert view.acknowledged_by_id is not None
    after = await load(session, view.id)
    assert after is not None
    note = Note(
        NoteKind.resolve_reminder,
        view.acknowledger_chat,
        view.acknowledged_by_id,
        view.acknowledger_language,
        f"cont:{view.id}:m{after.version}",
    )
    return Announcement(after, notes=(note,))


# -- the timers -----------------------------------------------------------------------------------


async def due(session: AsyncSession, *, now: datetime) -> list[int]:
    """Contingencies whose timer has passed, oldest deadline first; the read transaction is ended."""
    found = list(
        await session.scalars(
            select(Contingency.id)
            .where(Contingency.state.in_([OPEN, ACKNOWLEDGED]), Contingency.deadline_at <= now)
            .order_by(Contingency.deadline_at, Contingency.id)
            .limit(SWEEP_LIMIT)
        )
    )
    await session.rollback()
    return found


async def fire(session: AsyncSession, contingency_id: int, *, now: datetime, settings: Settings) -> Announcement | None:
    """The one transition a passed deadline calls for; None (rolled back) when the state moved on since it was read."""
    view = await load(session, contingency_id)
    if view is None or view.deadline_at is None or view.deadline_at > now or view.state == RESOLVED:
        return None
    announcement: Announcement | None
    if view.raised_at is None:
        announcement = await raise_now(
            session, view, severity=Severity.tinggi.value, now=now, settings=settings, actor_id=None
        )
        if announcement is not None and view.reporter_id is not None:
            note = Note(
                NoteKind.auto_raised,
                view.reporter_chat,
                view.reporter_id,
                view.reporter_language,
                f"cont:{view.id}:r{view.version + 1}",
            )
            announcement = replace(announcement, notes=(note,))
    elif view.state == OPEN:
        announcement = await climb(session, view, now=now, settings=settings)
    else:
        announcement = await remind(session, view, now=now)
    if announcement is None:
        await session.rollback()
    return announcement
