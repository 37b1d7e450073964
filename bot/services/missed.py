"""Missed check-ins: one digest per command group and shift, then an update when the list changes.

`checkin.grace_minutes` after a shift starts, every assignment without a
check-in is reported to a command group, grouped by TPS, never as a message
per person. Decisions:

* Each TPS is reported once, to the nearest group up its primary unit's
  chain (the unit's own, else its parent's, ...): a Polsek without a group
  is covered by its Polres's digest, and a Polres group does not repeat what
  its Polsek groups already show. An unreachable group is passed over the
  same way. Border TPS go to their primary unit only: presence is the
  primary unit's business; contingencies are what reach every unit.
* A person counts as present for the shift once checked in at any of their
  TPS (police cover several); a TPS where none of its assigned people is
  present is flagged. People the bot cannot reach (not registered, or
  marked unreachable) are listed apart: someone has to phone them.
* Changes come as a new message "N still missing (was M)" with who arrived
  and the list as it is now, rather than an edit: an edit notifies nobody, and
  a digest of several pages cannot be edited into a shorter one cleanly.
  Updates come at most every `UPDATE_EVERY` per group, so a trickle of late
  arrivals is one message; "everyone is here" is sent at once.

`CheckinAlert` holds the digest hash and a revision per (group unit, shift);
the revision is in the outbox dedup key and advanced with a compare-and-set,
so two sweepers on one database send each revision once.

Nothing here is worded: `due_digests` says which group is told which
`Digest`; flows/missed.py words it in pages and queues them in the same
transaction.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Exists

from bot.config import Settings
from bot.services import audit
from bot.services.outbox import Outgoing
from bot.storage.db import rowcount
from models import Assignment, Checkin, CheckinAlert, CommandGroup, Personnel, Shift, Tps, Unit, UnitClosure
from models.enums import Priority

UPDATE_EVERY = timedelta(minutes=5)
ACTOR = "scheduler"


@dataclass(frozen=True)
class MissingPerson:
    personnel_id: int
    title: str
    registered: bool
    reachable: bool

    @property
    def reachable_by_bot(self) -> bool:
        return self.registered and self.reachable


@dataclass
class MissingPost:
    """One TPS with people not checked in; `nobody_present` when none of its people is."""

    tps_id: int
    tps_code: str
    tps_number: str
    address: str
    unit_name: str
    nobody_present: bool
    people: list[MissingPerson] = field(default_factory=list)


@dataclass(frozen=True)
class Arrival:
    title: str
    tps_code: str


@dataclass(frozen=True)
class Digest:
    """What one command group is told about one shift, as the render needs it."""

    unit_name: str
    shift_name: str
    starts_at: datetime
    posts: tuple[MissingPost, ...]
    revision: int = 0
    previous_missing: int = 0
    arrived: tuple[Arrival, ...] = ()

    @property
    def missing(self) -> int:
        return len({person.personnel_id for post in self.posts for person in post.people})

    @property
    def hash(self) -> str:
        """Who is missing where, and whether the bot can reach them: what a change is."""
        items = sorted(
            f"{post.tps_id}:{p.personnel_id}:{int(p.registered)}{int(p.reachable)}"
            for post in self.posts
            for p in post.people
        )
        return hashlib.sha256("|".join(items).encode()).hexdigest()


async def due_digests(session: AsyncSession, *, now: datetime, settings: Settings) -> list[Outgoing[Digest]]:
    """The digests due for every running shift past its grace period, each revision claimed once.

    The claims are written but not committed: the caller queues the digests
    in the same transaction and commits.
    """
    grace = timedelta(minutes=settings.checkin.grace_minutes)
    running = await session.scalars(
        select(Shift).where(Shift.starts_at <= now, Shift.ends_at > now).order_by(Shift.starts_at, Shift.id)
    )
    due: list[Outgoing[Digest]] = []
    for shift in [shift for shift in running if shift.starts_at + grace <= now]:  # few: no date arithmetic in SQL
        due += await _sweep_shift(session, shift=shift, now=now)
    return due


async def _sweep_shift(session: AsyncSession, *, shift: Shift, now: datetime) -> list[Outgoing[Digest]]:
    groups = await _group_chats(session)
    posts = await missing_posts(session, shift_id=shift.id)
    route = await _routes(session, {post_unit for post_unit, _ in posts}, set(groups))
    by_group: dict[int, list[MissingPost]] = defaultdict(list)
    for unit_id, post in posts:
        if unit_id in route:
            by_group[route[unit_id]].append(post)
    alerts = {  # read afresh: the compare-and-set below must start from what the table holds now
        alert.unit_id: alert
        for alert in await session.scalars(
            select(CheckinAlert).where(CheckinAlert.shift_id == shift.id).execution_options(populate_existing=True)
        )
    }
    reported = set(by_group) | set(alerts)
    names = dict((await session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(reported)))).all())
    due: list[Outgoing[Digest]] = []
    for unit_id in sorted(reported):
        if unit_id not in groups:
            continue
        posts_here = tuple(sorted(by_group[unit_id], key=lambda post: post.tps_code))
        digest = Digest(names[unit_id], shift.name, shift.starts_at, posts_here)
        report = await _report(
            session,
            shift=shift,
            unit_id=unit_id,
            chat_id=groups[unit_id],
            digest=digest,
            alert=alerts.get(unit_id),
            now=now,
        )
        if report is not None:
            due.append(report)
    return due


async def _report(
    session: AsyncSession,
    *,
    shift: Shift,
    unit_id: int,
    chat_id: int,
    digest: Digest,
    alert: CheckinAlert | None,
    now: datetime,
) -> Outgoing[Digest] | None:
    """The first digest, an update, or nothing; the revision decides which, once."""
    if alert is None:
        if digest.missing == 0 or not await _claim_first(
            session, shift_id=shift.id, unit_id=unit_id, digest=digest, now=now
        ):
            return None
        revision = 0
    else:
        if alert.digest == digest.hash:
            return None
        if digest.missing > 0 and now - alert.updated_at < UPDATE_EVERY:
            return None
        revision = alert.revision + 1
        claimed = await session.execute(
            update(CheckinAlert)
            .where(CheckinAlert.id == alert.id, CheckinAlert.revision == alert.revision)
            .values(revision=revision, digest=digest.hash, missing=digest.missing, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if not rowcount(claimed):
            return None
        arrived = await arrivals(session, shift_id=shift.id, since=alert.updated_at, unit_id=unit_id)
        digest = Digest(
            digest.unit_name, digest.shift_name, digest.starts_at, digest.posts, revision, alert.missing, tuple(arrived)
        )
    audit.record(
        session,
        action="checkin.missed_alert",
        entity="checkin_alert",
        entity_id=f"{unit_id}:{shift.id}",
        actor=ACTOR,
        detail={"revision": revision, "missing": digest.missing},
    )
    return Outgoing(  # worded in pages, each keyed `<key>:<page>`
        digest,
        chat_id=chat_id,
        priority=Priority.group_alert,
        due_at=now,
        dedup_key=f"missed:{shift.id}:{unit_id}:{revision}",
        ref=f"missed:{shift.id}:{unit_id}",
    )


async def _claim_first(session: AsyncSession, *, shift_id: int, unit_id: int, digest: Digest, now: datetime) -> bool:
    """Insert the (unit, shift) row; another sweeper that got there first wins."""
    try:
        async with session.begin_nested():
            session.add(
                CheckinAlert(
                    unit_id=unit_id,
                    shift_id=shift_id,
                    digest=digest.hash,
                    missing=digest.missing,
                    revision=0,
                    updated_at=now,
                )
            )
    except IntegrityError:
        return False
    return True


async def _group_chats(session: AsyncSession) -> dict[int, int]:
    """unit id -> chat id of every command group the bot can still post to."""
    rows = await session.execute(
        select(CommandGroup.unit_id, CommandGroup.chat_id).where(CommandGroup.reachable.is_(True))
    )
    return dict(rows.all())


async def _routes(session: AsyncSession, unit_ids: set[int], group_units: set[int]) -> dict[int, int]:
    """unit id -> the nearest unit at or above it with a command group."""
    if not unit_ids or not group_units:
        return {}
    rows = await session.execute(
        select(UnitClosure.unit_id, UnitClosure.ancestor_id, UnitClosure.distance).where(
            UnitClosure.unit_id.in_(unit_ids), UnitClosure.ancestor_id.in_(group_units)
        )
    )
    best: dict[int, tuple[int, int]] = {}
    for unit_id, ancestor_id, distance in rows:
        if unit_id not in best or distance < best[unit_id][0]:
            best[unit_id] = (distance, ancestor_id)
    return {unit_id: ancestor for unit_id, (_, ancestor) in best.items()}


def _present(shift_id: int) -> Exists:
    """The assigned person has checked in for the shift (at any of their TPS)."""
    return exists().where(and_(Checkin.personnel_id == Assignment.personnel_id, Checkin.shift_id == shift_id))


async def missing_posts(session: AsyncSession, *, shift_id: int) -> list[tuple[int, MissingPost]]:
    """(TPS unit, TPS with its people not checked in) for one shift, in TPS order."""
    covered = set(
        await session.scalars(
            select(Assignment.tps_id).where(Assignment.shift_id == shift_id, _present(shift_id)).distinct()
        )
    )
    query = (
        select(
            Tps,
            Unit.name,
            Personnel.id,
            Personnel.rank,
            Personnel.name,
            Personnel.telegram_user_id,
            Personnel.reachable,
        )
        .select_from(Assignment)
        .join(Tps, Tps.id == Assignment.tps_id)
        .join(Unit, Unit.id == Tps.unit_id)
        .join(Personnel, Personnel.id == Assignment.personnel_id)
        .where(Assignment.shift_id == shift_id, ~_present(shift_id))
        .order_by(Tps.code, Personnel.rank, Personnel.name, Personnel.id)
    )
    posts: dict[int, tuple[int, MissingPost]] = {}
    for tps, unit_name, pid, rank, name, telegram_user_id, reachable in await session.execute(query):
        if tps.id not in posts:
            post = MissingPost(tps.id, tps.code, tps.number, tps.address, unit_name, tps.id not in covered)
            posts[tps.id] = (tps.unit_id, post)
        posts[tps.id][1].people.append(
            MissingPerson(pid, f"{rank} {name}".strip(), telegram_user_id is not None, bool(reachable))
        )
    return list(posts.values())


async def arrivals(session: AsyncSession, *, shift_id: int, since: datetime, unit_id: int) -> list[Arrival]:
    """Who checked in after `since` at a TPS whose nearest group is `unit_id`'s."""
    groups = set(await _group_chats(session))
    query = (
        select(Personnel.rank, Personnel.name, Tps.code, Tps.unit_id)
        .select_from(Checkin)
        .join(Personnel, Personnel.id == Checkin.personnel_id)
        .join(Tps, Tps.id == Checkin.tps_id)
        .where(Checkin.shift_id == shift_id, Checkin.checked_in_at > since)
        .order_by(Checkin.checked_in_at, Checkin.id)
    )
    rows = (await session.execute(query)).all()
    route = await _routes(session, {row.unit_id for row in rows}, groups)
    return [Arrival(f"{row.rank} {row.name}".strip(), row.code) for row in rows if route.get(row.unit_id) == unit_id]
