"""Reading escorts with their endpoints and vias: one statement for the escorts, one for their vias.

An endpoint is a place or a TPS; both sides are outer-joined and the one
that is there becomes a `Waypoint`, so a list of escorts costs two
statements whatever its length.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import Label

from bot.services.escorts.results import AlertEpisode, EscortSummary, Route, Via, Waypoint
from bot.services.geo import distance_m, path_length_m
from models import Escort, EscortAlert, EscortVia, Place, Tps, Unit
from models.enums import EscortState

CHUNK = 2_000
PLACE_FIELDS = ("id", "code", "name", "kind", "lat", "lon", "unit_id")
TPS_FIELDS = ("id", "code", "number", "village", "lat", "lon", "unit_id")
# A planned escort departs by a position away from its origin only from this close to `depart_at` until its
# `arrive_by`: a member's location from a TPS hours before, or the morning after a leg that never left, is a
# check-in, not the start of the journey.
EARLY_DEPARTURE = timedelta(minutes=30)


def may_depart(escort: Escort, at: datetime) -> bool:
    """A planned escort a position at `at` may start (the window of `EARLY_DEPARTURE`)."""
    return escort.depart_at - EARLY_DEPARTURE <= at <= escort.arrive_by


def takes_positions() -> ColumnElement[bool]:
    """Escorts a member's position may be for: underway, or planned within their departure window.

    The sender lookup asks this of every location's sender, so a member whose
    leg is hours away is told apart from an escort in the same statement and
    pays no escort query for a check-in. It is wider than `may_depart` at
    the end, for a position sent before `arrive_by` and read after it;
    `may_depart` decides on the position's own time. Its moment comes as bound
    parameters (`position_window`), so the statement that holds it is built
    once, not on every update.
    """
    return or_(
        Escort.state == EscortState.berangkat.value,
        and_(
            Escort.state == EscortState.terjadwal.value,
            Escort.depart_at <= bindparam("depart_before"),
            Escort.arrive_by >= bindparam("arrive_after"),
        ),
    )


def position_window(now: datetime) -> dict[str, datetime]:
    """The parameters of `takes_positions` at `now`."""
    return {"depart_before": now + EARLY_DEPARTURE, "arrive_after": now - EARLY_DEPARTURE}


def endpoint_columns(prefix: str, place: Any, tps: Any) -> list[Label[Any]]:
    return [getattr(place, f).label(f"{prefix}_p_{f}") for f in PLACE_FIELDS] + [
        getattr(tps, f).label(f"{prefix}_t_{f}") for f in TPS_FIELDS
    ]


def waypoint(row: Any, prefix: str) -> Waypoint:
    """The place or TPS of one side of an outer join (`endpoint_columns`)."""
    p = {f: getattr(row, f"{prefix}_p_{f}") for f in PLACE_FIELDS}
    if p["id"] is not None:
        return Waypoint(p["code"], p["name"], p["kind"], p["lat"], p["lon"], p["unit_id"], place_id=p["id"])
    t = {f: getattr(row, f"{prefix}_t_{f}") for f in TPS_FIELDS}
    name = f"TPS {t['number']} {t['village']}".strip()
    return Waypoint(t["code"], name, "tps", t["lat"], t["lon"], t["unit_id"], tps_id=t["id"])


def _escorts() -> Select[Any]:
    from_place, from_tps, to_place, to_tps = aliased(Place), aliased(Tps), aliased(Place), aliased(Tps)
    return (
        select(
            Escort,
            Unit.code.label("unit_code"),
            Unit.name.label("unit_name"),
            *endpoint_columns("f", from_place, from_tps),
            *endpoint_columns("t", to_place, to_tps),
        )
        .join(Unit, Unit.id == Escort.unit_id)
        .outerjoin(from_place, from_place.id == Escort.from_place_id)
        .outerjoin(from_tps, from_tps.id == Escort.from_tps_id)
        .outerjoin(to_place, to_place.id == Escort.to_place_id)
        .outerjoin(to_tps, to_tps.id == Escort.to_tps_id)
    )


_ESCORTS = _escorts()


def escort_query() -> Select[Any]:
    """Escorts with their unit and both endpoints; callers add the where and the order.

    Built once: its four aliased endpoints cost more to make than the query
    costs to run, and every position of every escort asks it.
    """
    return _ESCORTS


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def _vias() -> Select[Any]:
    place, tps = aliased(Place), aliased(Tps)
    return (
        select(EscortVia.escort_id, EscortVia.seq, EscortVia.passed_at, *endpoint_columns("v", place, tps))
        .outerjoin(place, place.id == EscortVia.place_id)
        .outerjoin(tps, tps.id == EscortVia.tps_id)
        .where(EscortVia.escort_id.in_(bindparam("escort_ids", expanding=True)))
        .order_by(EscortVia.escort_id, EscortVia.seq)
    )


_VIAS = _vias()


async def vias_of(session: AsyncSession, escort_ids: Iterable[int]) -> dict[int, tuple[Via, ...]]:
    """Each escort's vias in travel order (escorts without any are missing)."""
    found: dict[int, list[Via]] = {}
    for chunk in _chunks(escort_ids):
        for row in await session.execute(_VIAS, {"escort_ids": chunk}):
            found.setdefault(row.escort_id, []).append(Via(row.seq, waypoint(row, "v"), row.passed_at))
    return {escort_id: tuple(vias) for escort_id, vias in found.items()}


async def open_alerts_of(session: AsyncSession, escort_ids: Iterable[int]) -> dict[int, tuple[str, ...]]:
    found: dict[int, list[str]] = {}
    for chunk in _chunks(escort_ids):
        query = (
            select(EscortAlert.escort_id, EscortAlert.kind)
            .where(EscortAlert.escort_id.in_(chunk), EscortAlert.cleared_at.is_(None))
            .order_by(EscortAlert.escort_id, EscortAlert.opened_at)
        )
        for escort_id, kind in await session.execute(query):
            found.setdefault(escort_id, []).append(kind)
    return {escort_id: tuple(kinds) for escort_id, kinds in found.items()}


def route_of(row: Any, vias: Sequence[Via]) -> Route:
    return Route(waypoint(row, "f"), tuple(vias), waypoint(row, "t"))


def remaining_m(route: Route, position: tuple[float, float] | None, state: str) -> float | None:
    """Along the rest of the route: to the next via not passed, then leg by leg to the destination."""
    if state in ("tiba", "diterima"):
        return 0.0
    if position is None:
        return None if state == "berangkat" else path_length_m(route.points())
    ahead = route.ahead()
    return distance_m(*position, *ahead[0]) + path_length_m(ahead)


def summary(row: Any, route: Route, open_alerts: Sequence[str], now: datetime) -> EscortSummary:
    escort: Escort = row.Escort
    position = None if escort.last_lat is None or escort.last_lon is None else (escort.last_lat, escort.last_lon)
    return EscortSummary(
        id=escort.id,
        code=escort.code,
        kind=escort.kind,
        cargo=escort.cargo,
        state=escort.state,
        access=escort.access,
        unit_id=escort.unit_id,
        unit_code=row.unit_code,
        unit_name=row.unit_name,
        origin=route.origin,
        destination=route.destination,
        depart_at=escort.depart_at,
        arrive_by=escort.arrive_by,
        departed_at=escort.departed_at,
        arrived_at=escort.arrived_at,
        received_at=escort.received_at,
        last_position=position,
        last_at=escort.last_at,
        position_age=None if escort.last_at is None else max(now - escort.last_at, timedelta(0)),
        remaining_m=remaining_m(route, position, escort.state),
        open_alerts=tuple(open_alerts),
        live_chat_id=escort.live_chat_id,
        live_message_id=escort.live_message_id,
    )


async def summaries(session: AsyncSession, rows: Sequence[Any], now: datetime) -> list[EscortSummary]:
    """Summaries of `escort_query` rows, in their order: two more statements for all of them."""
    ids = [row.Escort.id for row in rows]
    vias, alerts = await vias_of(session, ids), await open_alerts_of(session, ids)
    return [
        summary(row, route_of(row, vias.get(row.Escort.id, ())), alerts.get(row.Escort.id, ()), now) for row in rows
    ]


def episode(alert: Any, escort_code: str, unit_id: int, severity: str) -> AlertEpisode:
    return AlertEpisode(
        id=alert.id,
        escort_id=alert.escort_id,
        escort_code=escort_code,
        unit_id=unit_id,
        kind=alert.kind,
        severity=severity,
        opened_at=alert.opened_at,
        cleared_at=alert.cleared_at,
        clear_reason=alert.clear_reason,
        contingency_id=alert.contingency_id,
    )
