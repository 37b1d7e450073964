"""The command group's live location of each escort underway: started, moved as positions arrive, stopped on arrival.

Positions are not queued one by one: each pass of the sweep compares an
escort's last position (`last_at`) with the one its live location shows
(`live_shown_at`) and moves it to the latest, so a group sees where every
escort is now without a row per position. An edit still waiting to be sent
is rewritten to the newer position in place (one pending edit per escort,
the latest wins); a new one is queued only within the group's share of its
limit: half of `delivery.group_per_minute` in any minute, counting starts,
moves and stops, so that the other half stays free for contingencies and
alerts (which go first anyway: the live rows have the lowest priority).
When there are more escorts to move than the share allows, those shown
longest ago go first, so every escort moves in turn.

The live message's id is known once a dispatcher sent it: it is read
from the outbox row of the send, lazily, as the contingency copies do.
Nothing here commits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.escorts.route import escort_query, waypoint
from bot.services.groups import nearest_groups
from bot.storage.db import rowcount
from models import Escort, Outbox
from models.enums import EscortState, OutboxState, Priority

SEND, MOVE, STOP = "sendLocation", "editMessageLiveLocation", "stopMessageLiveLocation"
LIVE_METHODS = (SEND, MOVE, STOP)
WINDOW = timedelta(minutes=1)
LOST_WINDOW = timedelta(minutes=5)
ALERT_SHARE = 0.5
NO_MESSAGE = 0  # the send failed for good, or the pin can no longer be moved: nothing to move or stop
AFTER_DUE = timedelta(hours=2)
UNDERWAY = EscortState.berangkat.value
ARRIVED = (EscortState.tiba.value, EscortState.diterima.value)
LIMIT = 5_000


def ref(escort_id: int) -> str:
    return f"live:{escort_id}"


def send_key(escort_id: int) -> str:
    return f"live:{escort_id}:s"


@dataclass(frozen=True)
class LiveShow:
    """One live-location call to make: start (no `message_id`), move, or stop, for one escort in one group."""

    escort_id: int
    chat_id: int
    lat: float
    lon: float
    at: datetime | None = None
    message_id: int | None = None
    live_seconds: int = 0


@dataclass
class LivePlan:
    """What one pass asks for; `rewrite` maps a pending edit's outbox row to the move it now carries."""

    starts: list[LiveShow] = field(default_factory=list)
    moves: list[LiveShow] = field(default_factory=list)
    rewrite: dict[int, LiveShow] = field(default_factory=dict)
    stops: list[LiveShow] = field(default_factory=list)


def share(group_per_minute: float) -> int:
    """Live-location calls a group may receive in any minute."""
    return max(1, math.floor(group_per_minute * (1 - ALERT_SHARE)))


async def plan(session: AsyncSession, *, now: datetime, group_per_minute: float) -> LivePlan:
    """Decide this pass's calls and record them on the escorts (shown position, group, stopped)."""
    await _fill_message_ids(session)
    await _forget_lost_pins(session, now)
    found = LivePlan()
    budget = _Budget(share(group_per_minute), await _used(session, now))
    await _stops(session, found, budget, now)
    await _starts(session, found, budget, now)
    await _moves(session, found, budget)
    return found


class _Budget:
    def __init__(self, per_minute: int, used: dict[int, int]) -> None:
        self.per_minute, self.used = per_minute, used

    def take(self, chat_id: int, calls: int = 1) -> bool:
        if self.used.get(chat_id, 0) + calls > self.per_minute:
            return False
        self.used[chat_id] = self.used.get(chat_id, 0) + calls
        return True

    def give_back(self, chat_id: int, calls: int = 1) -> None:
        """Calls taken for an escort the pass then left (`_set`): the next escort may have them."""
        self.used[chat_id] -= calls


async def _used(session: AsyncSession, now: datetime) -> dict[int, int]:
    """Live calls each group may receive within the coming minute: those not sent yet, and those sent in the last.

    Counted by arrival, as Telegram counts: a call queued a minute ago and
    sent a moment ago still counts, so calls held up behind alerts and sent
    together never add up to more than the share in any minute. Read through
    the outbox's (state, priority, due_at) index: live rows have the lowest
    priority, and a sent one is looked for among those due in the last
    `LOST_WINDOW` only (one held up longer than that is not counted).
    """
    waiting = Outbox.state.in_((OutboxState.pending.value, OutboxState.sending.value))
    arrived = and_(
        Outbox.state == OutboxState.sent.value,
        Outbox.due_at > now - LOST_WINDOW,
        Outbox.sent_at > now - WINDOW,
    )
    rows = await session.execute(
        select(Outbox.chat_id, func.count())
        .where(or_(waiting, arrived), Outbox.priority == Priority.broadcast, Outbox.method.in_(LIVE_METHODS))
        .group_by(Outbox.chat_id)
    )
    return {chat_id: int(count) for chat_id, count in rows}


async def _fill_message_ids(session: AsyncSession) -> None:
    waiting = list(
        await session.scalars(
            select(Escort.id).where(Escort.live_chat_id.is_not(None), Escort.live_message_id.is_(None)).limit(LIMIT)
        )
    )
    if not waiting:
        return
    keys = {send_key(escort_id): escort_id for escort_id in waiting}
    rows = await session.execute(
        select(Outbox.dedup_key, Outbox.state, Outbox.telegram_message_id).where(Outbox.dedup_key.in_(list(keys)))
    )
    for key, state, message_id in rows:
        if state == OutboxState.sent.value:
            known = message_id or NO_MESSAGE
        elif state in (OutboxState.failed.value, OutboxState.cancelled.value):
            known = NO_MESSAGE
        else:
            continue
        await _set(session, keys[key], live_message_id=known)


async def _forget_lost_pins(session: AsyncSession, now: datetime) -> None:
    """A pin Telegram refused to move (deleted in the group, or no longer live) is left alone from then on.

    Otherwise every later position would queue an edit bound to fail, and
    spend the group's share that the other escorts' pins need. Failures of
    the last few minutes only, through the (state, priority, due_at) index.
    """
    refs = await session.scalars(
        select(Outbox.ref)
        .where(
            Outbox.state == OutboxState.failed.value,
            Outbox.priority == Priority.broadcast,
            Outbox.due_at > now - LOST_WINDOW,
            Outbox.method == MOVE,
        )
        .distinct()
    )
    lost = [int(found.split(":")[1]) for found in refs if found and found.startswith("live:")]
    if lost:
        await session.execute(
            update(Escort)
            .where(Escort.id.in_(lost), Escort.live_message_id != NO_MESSAGE)
            .values(live_message_id=NO_MESSAGE)
            .execution_options(synchronize_session=False)
        )


async def _set(session: AsyncSession, escort_id: int, **values: Any) -> bool:
    """Only the live columns: a position being applied to the same escort keeps its own columns.

    False, and nothing written, while a bunch of positions holds the escort: the pass leaves it to the
    next one instead of waiting. Waiting, in its own order, on bunches that lock escorts in id order (and
    may wait on an escort this pass already wrote) deadlocked a bench run; a pass that never waits cannot.
    """
    free = select(Escort.id).where(Escort.id == escort_id).with_for_update(key_share=True, skip_locked=True)
    result = await session.execute(
        update(Escort)
        .where(Escort.id.in_(free.scalar_subquery()))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) > 0


async def _starts(session: AsyncSession, found: LivePlan, budget: _Budget, now: datetime) -> None:
    rows = (
        await session.execute(
            escort_query()
            .where(Escort.state == UNDERWAY, Escort.live_chat_id.is_(None))
            .order_by(Escort.departed_at, Escort.id)
            .limit(LIMIT)
        )
    ).all()
    groups = await nearest_groups(session, unit_ids={row.Escort.unit_id for row in rows})
    for row in rows:
        escort: Escort = row.Escort
        target = groups.get(escort.unit_id)
        if target is None or not budget.take(target.chat_id):
            continue
        origin = waypoint(row, "f")
        lat, lon = (escort.last_lat, escort.last_lon) if escort.last_lat is not None else origin.point
        assert lat is not None and lon is not None
        seconds = int((escort.arrive_by + AFTER_DUE - now).total_seconds())
        if not await _set(session, escort.id, live_chat_id=target.chat_id, live_shown_at=escort.last_at):
            budget.give_back(target.chat_id)
            continue
        live = min(max(seconds, 60), 86_400)
        found.starts.append(LiveShow(escort.id, target.chat_id, lat, lon, escort.last_at, live_seconds=live))


async def _moves(session: AsyncSession, found: LivePlan, budget: _Budget) -> None:
    behind = or_(Escort.live_shown_at.is_(None), Escort.last_at > Escort.live_shown_at)
    rows = (
        await session.execute(
            select(
                Escort.id, Escort.live_chat_id, Escort.live_message_id, Escort.last_lat, Escort.last_lon, Escort.last_at
            )
            .where(
                Escort.state.in_((UNDERWAY, *ARRIVED)),
                Escort.live_stopped_at.is_(None),
                Escort.live_message_id.is_not(None),
                Escort.live_message_id != NO_MESSAGE,
                Escort.last_at.is_not(None),
                behind,
            )
            .order_by(Escort.live_shown_at.is_not(None), Escort.live_shown_at, Escort.id)
            .limit(LIMIT)
        )
    ).all()
    pending = await _pending_moves(session, [row.id for row in rows])
    for row in rows:
        show = LiveShow(row.id, row.live_chat_id, row.last_lat, row.last_lon, row.last_at, row.live_message_id)
        calls = 0 if row.id in pending else 1
        if calls and not budget.take(row.live_chat_id):
            continue
        if not await _set(session, row.id, live_shown_at=row.last_at):
            budget.give_back(row.live_chat_id, calls)
            continue
        if row.id in pending:
            found.rewrite[pending[row.id]] = show
        else:
            found.moves.append(show)


async def _pending_moves(session: AsyncSession, escort_ids: list[int]) -> dict[int, int]:
    """The edit still waiting for each of these escorts, by escort: it can carry a newer position for free."""
    if not escort_ids:
        return {}
    refs = {ref(escort_id): escort_id for escort_id in escort_ids}
    rows = await session.execute(
        select(Outbox.id, Outbox.ref).where(
            Outbox.ref.in_(list(refs)), Outbox.method == MOVE, Outbox.state == OutboxState.pending.value
        )
    )
    return {refs[row_ref]: row_id for row_id, row_ref in rows if row_ref is not None}


async def _stops(session: AsyncSession, found: LivePlan, budget: _Budget, now: datetime) -> None:
    """Arrived: show the last position if it is not shown yet, then stop; a send not made yet is called off."""
    rows = (
        await session.execute(
            select(
                Escort.id,
                Escort.live_chat_id,
                Escort.live_message_id,
                Escort.last_lat,
                Escort.last_lon,
                Escort.last_at,
                Escort.live_shown_at,
            )
            .where(Escort.state.in_(ARRIVED), Escort.live_chat_id.is_not(None), Escort.live_stopped_at.is_(None))
            .limit(LIMIT)
        )
    ).all()
    for row in rows:
        if row.live_message_id is None and not await _call_off(session, row.id):
            continue  # the send is on the wire: stop it once its id is known
        if row.live_message_id in (None, NO_MESSAGE):
            await _set(session, row.id, live_stopped_at=now)
            continue
        behind = row.last_at is not None and (row.live_shown_at is None or row.last_at > row.live_shown_at)
        pending = await _pending_moves(session, [row.id])
        calls = 1 + (behind and row.id not in pending)
        if not budget.take(row.live_chat_id, calls):
            continue
        show = LiveShow(row.id, row.live_chat_id, row.last_lat, row.last_lon, row.last_at, row.live_message_id)
        if not await _set(session, row.id, live_shown_at=row.last_at, live_stopped_at=now):
            budget.give_back(row.live_chat_id, calls)
            continue
        if behind and row.id in pending:
            found.rewrite[pending[row.id]] = show
        elif behind:
            found.moves.append(show)
        found.stops.append(show)


async def _call_off(session: AsyncSession, escort_id: int) -> bool:
    """Cancel a send still waiting; False when a dispatcher holds it now."""
    result = await session.execute(
        update(Outbox)
        .where(Outbox.dedup_key == send_key(escort_id), Outbox.state == OutboxState.pending.value)
        .values(state=OutboxState.cancelled.value)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result):
        return True
    state = await session.scalar(select(Outbox.state).where(Outbox.dedup_key == send_key(escort_id)))
    return state in (None, OutboxState.failed.value, OutboxState.cancelled.value)


async def rewrite_pending(session: AsyncSession, *, row_id: int, payload: dict[str, Any]) -> None:
    """A waiting edit carries the newer position instead: the group sees the latest one, once."""
    await session.execute(
        update(Outbox)
        .where(and_(Outbox.id == row_id, Outbox.state == OutboxState.pending.value))
        .values(payload=payload)
        .execution_options(synchronize_session=False)
    )
