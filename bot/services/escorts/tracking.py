"""Tracking: the depart and arrive buttons, and every position of an escort member.

A position counts at the time it was taken (`message.date`, or the edit
date of a live location), capped at the time it was read. It is judged
against the escort row alone (last position, berhenti anchor, last kept
track point) and the escort's vias. A bunch of positions reads its escorts
once, locked so that two members' positions handled at once on two
workers apply one after the other (`hold_for_positions`), and writes the
track points kept and the escort rows together at its commit; only a via
passed or an episode cleared or opened costs a statement of its own.

A position older than the escort's last one still counts for the track
(and a via it shows passed) but moves nothing back: not the last position,
not the anchor, not the state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import EscortSettings
from bot.services import audit
from bot.services.escorts import alerts
from bot.services.escorts.results import (
    ActionOutcome,
    ActionResult,
    AlertEpisode,
    EscortSummary,
    PositionResult,
    Route,
)
from bot.services.escorts.route import (
    episode,
    escort_query,
    may_depart,
    open_alerts_of,
    route_of,
    summaries,
    summary,
    vias_of,
)
from bot.services.geo import distance_m, distance_to_polyline_m
from models import Escort, EscortAlert, EscortMember, EscortTrackPoint, EscortVia
from models.enums import EscortAlertKind, EscortState

KEEP_EVERY = timedelta(seconds=30)
KEEP_MOVED_M = 50.0
PLANNED, UNDERWAY, ARRIVED = EscortState.terjadwal.value, EscortState.berangkat.value, EscortState.tiba.value


@dataclass
class _Change:
    """What one position changed, gathered for the result."""

    latest: bool = False
    kept: bool = False
    departed: bool = False
    arrived: bool = False
    passed: tuple[str, ...] = ()
    cleared: tuple[AlertEpisode, ...] = ()
    opened: tuple[AlertEpisode, ...] = ()

    def journeyed(self) -> bool:
        """A step of the journey its sender is always told of."""
        return self.departed or self.arrived or bool(self.passed)


async def record_position(
    session: AsyncSession,
    *,
    personnel_id: int,
    lat: float,
    lon: float,
    at: datetime,
    now: datetime,
    settings: EscortSettings,
    summarize: bool = False,
    held: Held | None = None,
) -> PositionResult | None:
    """Apply a position of an escort member; None when it is no escort's (the caller takes it as a check-in).

    It is an escort's when the sender is a member of one underway, or of a
    planned one within its departure window (`route.may_depart`) whose origin the
    position is farther than `escort.arrive_radius_meters` from (that
    position departs it). `summarize`: the sender is to be answered whatever
    the position changed (they always are when it departs, passes a via or
    arrives); the answer is read from the row this locked
    (`PositionResult.summary`), not asked again. `held`: the bunch's escorts
    (`hold_for_positions`), else this member's are read and locked here.
    Writes are flushed with the next statement or the commit, so a bunch's
    go out together. Does not commit.
    """
    at = min(at, now)
    if held is None:
        held = await hold_for_positions(session, personnel_ids=[personnel_id])
    row = _member_escort(held, personnel_id, lat, lon, at, settings)
    if row is None:
        return None
    escort: Escort = row.Escort
    change = _Change()
    if escort.state == PLANNED:
        mark_departed(session, escort, personnel_id, at, by="position")
        change.departed = True
    change.kept = _keep(session, escort, personnel_id, lat, lon, at)
    route = await _pass_vias(session, escort, held.routes[escort.id], lat, lon, at, settings, change)
    held.routes[escort.id] = route
    change.latest = escort.last_at is None or at > escort.last_at
    if change.latest:
        alerting = escort.id in held.alerting
        await _move(session, escort, route, personnel_id, lat, lon, at, now, settings, change, alerting=alerting)
        if change.opened:
            held.alerting.add(escort.id)
    return PositionResult(
        escort_id=escort.id,
        escort_code=escort.code,
        unit_id=escort.unit_id,
        state=escort.state,
        lat=lat,
        lon=lon,
        at=at,
        latest=change.latest,
        kept=change.kept,
        departed=change.departed,
        arrived=change.arrived,
        passed=change.passed,
        cleared=change.cleared,
        opened=change.opened,
        live_chat_id=escort.live_chat_id,
        live_message_id=escort.live_message_id,
        route=route,
        summary=await _summary(session, row, route, held, now) if summarize or change.journeyed() else None,
    )


async def _summary(session: AsyncSession, row: Any, route: Route, held: Held, now: datetime) -> EscortSummary:
    """The escort as this position left it: only an escort with episodes open asks which are still open."""
    kinds: tuple[str, ...] = ()
    if row.Escort.id in held.alerting:
        kinds = (await open_alerts_of(session, [row.Escort.id])).get(row.Escort.id, ())
    return summary(row, route, kinds, now)


@dataclass
class Held:
    """A bunch's escorts, locked and read in one statement, and what its positions changed that a later
    position of the same escort must see (the ORM rows carry the rest: last position, anchor, state)."""

    rows: dict[int, list[Any]]
    """Each member's escorts a position may move, underway first, then planned by departure."""
    routes: dict[int, Route]
    alerting: set[int]
    """Escorts with episodes open (or that may have): only these ask the alert table anything."""


_MEMBERS_ESCORTS = (
    escort_query()
    .add_columns(
        EscortMember.personnel_id,
        exists().where(EscortAlert.escort_id == Escort.id, EscortAlert.cleared_at.is_(None)).label("alerting"),
        exists().where(EscortVia.escort_id == Escort.id).label("has_vias"),
    )
    .join(EscortMember, EscortMember.escort_id == Escort.id)
    .where(
        EscortMember.personnel_id.in_(bindparam("personnel_ids", expanding=True)),
        Escort.state.in_((PLANNED, UNDERWAY)),
    )
    .order_by(Escort.id)
    .with_for_update(of=Escort, key_share=True)
)
"""The members' escorts underway or planned, locked in id order, and whether each has open alerts and vias
(most have neither, and then a position asks nothing more of them). In id order, two workers' bunches of the
same escorts lock them one after the other instead of deadlocking. `FOR NO KEY UPDATE` (a position never
changes an escort's id): an alert sweep inserting contingencies and episodes that refer to these escorts
takes key-share locks on them, in its own order, which a plain `FOR UPDATE` waits for and deadlocks with.
Built once: every bunch asks it."""


async def hold_for_positions(session: AsyncSession, *, personnel_ids: Sequence[int]) -> Held:
    """Lock and read every escort these members' positions may move: one statement for the escorts and,
    when any has vias, one for those. Does not commit."""
    held = Held(rows={}, routes={}, alerting=set())
    if not personnel_ids:
        return held
    rows = (await session.execute(_MEMBERS_ESCORTS, {"personnel_ids": sorted(set(personnel_ids))})).all()
    with_vias = [row.Escort.id for row in rows if row.has_vias]
    vias = await vias_of(session, with_vias) if with_vias else {}
    for row in rows:
        held.rows.setdefault(row.personnel_id, []).append(row)
        held.routes[row.Escort.id] = route_of(row, vias.get(row.Escort.id, ()))
        if row.alerting:
            held.alerting.add(row.Escort.id)
    for own in held.rows.values():
        own.sort(key=lambda row: (row.Escort.state, row.Escort.depart_at))  # "berangkat" sorts before "terjadwal"
    return held


def _member_escort(
    held: Held, personnel_id: int, lat: float, lon: float, at: datetime, settings: EscortSettings
) -> Any | None:
    """The escort this position is for: underway first, then the next planned one it may depart."""
    rows = held.rows.get(personnel_id, [])
    chosen = next((row for row in rows if row.Escort.state == UNDERWAY), None)
    if chosen is None:
        chosen = next((row for row in rows if row.Escort.state == PLANNED and may_depart(row.Escort, at)), None)
    if chosen is None:
        return None  # none, or arrived by an earlier position of the bunch
    origin = held.routes[chosen.Escort.id].origin
    if chosen.Escort.state == PLANNED and distance_m(lat, lon, *origin.point) <= settings.arrive_radius_meters:
        return None  # still at the origin: not yet a journey
    return chosen


def mark_departed(session: AsyncSession, escort: Escort, personnel_id: int, at: datetime, *, by: str) -> None:
    """Underway from `at`, by the button or the first position away, and audited as such (as `mark_arrived`)."""
    escort.state = UNDERWAY
    escort.departed_at = at
    _audit(session, escort, personnel_id, action="escort.departed", by=by, at=at)


def _keep(session: AsyncSession, escort: Escort, personnel_id: int, lat: float, lon: float, at: datetime) -> bool:
    """A track point at most every 30 s or 50 m from the last kept one."""
    if escort.kept_at is not None and escort.kept_lat is not None and escort.kept_lon is not None:
        close_in_time = abs(at - escort.kept_at) < KEEP_EVERY
        if close_in_time and distance_m(lat, lon, escort.kept_lat, escort.kept_lon) < KEEP_MOVED_M:
            return False
    session.add(EscortTrackPoint(escort_id=escort.id, personnel_id=personnel_id, lat=lat, lon=lon, at=at))
    if escort.kept_at is None or at > escort.kept_at:
        escort.kept_lat, escort.kept_lon, escort.kept_at = lat, lon, at
    return True


async def _pass_vias(
    session: AsyncSession,
    escort: Escort,
    route: Route,
    lat: float,
    lon: float,
    at: datetime,
    settings: EscortSettings,
    change: _Change,
) -> Route:
    """Mark the vias this position is at as passed; the route with them passed."""
    near = {
        via.seq
        for via in route.vias
        if via.passed_at is None and distance_m(lat, lon, *via.waypoint.point) <= settings.arrive_radius_meters
    }
    if not near:
        return route
    await session.execute(
        update(EscortVia).where(EscortVia.escort_id == escort.id, EscortVia.seq.in_(sorted(near))).values(passed_at=at)
    )
    if route.last_dermaga() in near:
        escort.on_water = True
    change.passed = tuple(via.waypoint.code for via in route.vias if via.seq in near)
    vias = tuple(replace(via, passed_at=at) if via.seq in near else via for via in route.vias)
    return replace(route, vias=vias)


async def _move(
    session: AsyncSession,
    escort: Escort,
    route: Route,
    personnel_id: int,
    lat: float,
    lon: float,
    at: datetime,
    now: datetime,
    settings: EscortSettings,
    change: _Change,
    *,
    alerting: bool,
) -> None:
    """The newest position: last position, berhenti anchor, arrival, and the episodes it ends or begins.

    `alerting`: the escort had open episodes when it was locked; without any,
    a position on its way ends none and asks nothing of them.
    """
    escort.last_lat, escort.last_lon, escort.last_at = lat, lon, at
    ending = [EscortAlertKind.hilang_sinyal.value]
    moved = (
        escort.anchor_lat is None
        or escort.anchor_lon is None
        or distance_m(lat, lon, escort.anchor_lat, escort.anchor_lon) > settings.stop_radius_meters
    )
    if moved:
        escort.anchor_lat, escort.anchor_lon, escort.anchor_at = lat, lon, at
        ending.append(EscortAlertKind.berhenti.value)
    if distance_m(lat, lon, *route.destination.point) <= settings.arrive_radius_meters:
        mark_arrived(session, escort, personnel_id, at, by="position")
        change.arrived = True
        change.cleared = tuple(
            await alerts.clear(session, escort=escort, kinds=(), now=now, settings=settings, arrived=True)
        )
        return
    off_route = (
        settings.corridor_meters > 0 and distance_to_polyline_m(lat, lon, route.points()) > settings.corridor_meters
    )
    if not off_route:
        ending.append(EscortAlertKind.menyimpang.value)
    if alerting:
        change.cleared = tuple(await alerts.clear(session, escort=escort, kinds=ending, now=now, settings=settings))
    if off_route:
        opened = await alerts.open_once(session, [(escort.id, EscortAlertKind.menyimpang.value)], now=now)
        severity = settings.severity.of(EscortAlertKind.menyimpang.value)
        change.opened = tuple(episode(row, escort.code, escort.unit_id, severity) for row in opened)


def mark_arrived(session: AsyncSession, escort: Escort, personnel_id: int, at: datetime, *, by: str) -> None:
    if escort.departed_at is None:
        escort.departed_at = at
    escort.state = ARRIVED
    escort.arrived_at = at
    _audit(session, escort, personnel_id, action="escort.arrived", by=by, at=at)


def _audit(session: AsyncSession, escort: Escort, personnel_id: int, *, action: str, by: str, at: datetime) -> None:
    audit.record(
        session,
        action=action,
        entity="escort",
        entity_id=escort.id,
        actor_id=personnel_id,
        detail={"code": escort.code, "by": by, "at": at.isoformat()},
    )


async def _for_member(session: AsyncSession, escort_id: int, personnel_id: int) -> tuple[Any, ActionOutcome | None]:
    locked = escort_query().where(Escort.id == escort_id).with_for_update(of=Escort, key_share=True)
    row = (await session.execute(locked)).first()
    if row is None:
        return None, ActionOutcome.not_found
    member = await session.scalar(
        select(EscortMember.id).where(EscortMember.escort_id == escort_id, EscortMember.personnel_id == personnel_id)
    )
    return row, None if member is not None else ActionOutcome.not_member


async def depart(session: AsyncSession, *, escort_id: int, personnel_id: int, now: datetime) -> ActionResult:
    """The depart button: a planned escort is underway from now; pressed again, `already`. Does not commit."""
    row, refused = await _for_member(session, escort_id, personnel_id)
    if refused is not None:
        return ActionResult(refused)
    escort: Escort = row.Escort
    if escort.state != PLANNED:
        return ActionResult(ActionOutcome.already, (await summaries(session, [row], now))[0])
    mark_departed(session, escort, personnel_id, now, by="button")
    await session.flush()
    return ActionResult(ActionOutcome.done, (await summaries(session, [row], now))[0])


async def arrive(
    session: AsyncSession, *, escort_id: int, personnel_id: int, now: datetime, settings: EscortSettings
) -> ActionResult:
    """The arrive button (arrival implies departure); ends every open episode. Pressed again, `already`."""
    row, refused = await _for_member(session, escort_id, personnel_id)
    if refused is not None:
        return ActionResult(refused)
    escort: Escort = row.Escort
    if escort.state not in (PLANNED, UNDERWAY):
        return ActionResult(ActionOutcome.already, (await summaries(session, [row], now))[0])
    mark_arrived(session, escort, personnel_id, now, by="button")
    cleared = await alerts.clear(session, escort=escort, kinds=(), now=now, settings=settings, arrived=True)
    await session.flush()
    return ActionResult(ActionOutcome.done, (await summaries(session, [row], now))[0], tuple(cleared))
