"""The escorts of an export: a workbook row each, a LineString of each track, a Point of each place they use.

Which escorts belong to a shift's export: those whose journey overlaps the
shift's window. A journey runs from its planned departure (or the actual
one, if earlier) to the later of `arrive_by`, the arrival and the
handover; one underway, or arrived and not handed over yet, is still
running, so it also belongs to a shift that has begun by the time of the
export (as an unresolved contingency stays on the map). A leg of the counting night thus shows in
the export of every shift it crossed, and a logistics run of the day before
in none of the voting day's. The scope is the subtree of the escort's unit
(`/rekap UNIT`), or every escort (`siaga export`).

The same few statements however many escorts there are: the escorts,
their vias, crews, alert episodes, track sizes and receivers, then the
track points in one ordered pass (ids passed as lists go 2,000 at a time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.escorts import EscortSummary, Route, Waypoint
from bot.services.escorts.route import escort_query, route_of, summary
from bot.services.escorts.route import vias_of as vias_by_escort
from bot.services.reports.workbook import local
from bot.services.status import ShiftRef, scope_units
from models import Escort, EscortAlert, EscortMember, EscortTrackPoint, Personnel, Unit
from models.enums import EscortRole, EscortState

Row = list[Any]
MOMENT = "%Y-%m-%d %H:%M"
STILL_RUNNING = (EscortState.berangkat.value, EscortState.tiba.value)
CHUNK = 2_000


@dataclass(frozen=True)
class Episode:
    kind: str
    opened_at: datetime
    cleared_at: datetime | None
    reason: str | None


@dataclass(frozen=True)
class ExportedEscort:
    """One escort as the export writes it: its summary and route, crew, alert episodes, track and receiver."""

    escort: EscortSummary
    route: Route
    members: tuple[tuple[str, str], ...]  # (rank and name, role), the ketua first
    alerts: tuple[Episode, ...]
    track_points: int
    received_by: tuple[str, str] | None  # (rank and name, unit code)


def belongs(shift: ShiftRef, now: datetime) -> ColumnElement[bool]:
    """The escort's journey overlaps the shift (see the module's docstring)."""
    started = or_(Escort.depart_at < shift.ends_at, Escort.departed_at < shift.ends_at)
    ended = [
        Escort.arrive_by > shift.starts_at,
        Escort.arrived_at > shift.starts_at,
        Escort.received_at > shift.starts_at,
    ]
    if now > shift.starts_at:
        ended.append(Escort.state.in_(STILL_RUNNING))
    return and_(started, or_(*ended))


def _selected(shift: ShiftRef, scope: int | None, now: datetime) -> Select[Any]:
    query = select(Escort.id).where(belongs(shift, now))
    return query if scope is None else query.where(Escort.unit_id.in_(scope_units(scope)))


async def escorts_of_export(
    session: AsyncSession, *, shift: ShiftRef, scope: int | None, now: datetime
) -> list[ExportedEscort]:
    """The export's escorts by departure, each with everything its row says."""
    ids = _selected(shift, scope, now)
    rows = (
        await session.execute(escort_query().where(Escort.id.in_(ids)).order_by(Escort.depart_at, Escort.code))
    ).all()
    found = [row.Escort.id for row in rows]
    vias = await vias_by_escort(session, found)
    crews, episodes = await _crews(session, ids), await _episodes(session, ids)
    tracks, receivers = await _track_sizes(session, ids), await _receivers(session, ids)
    exported = []
    for row in rows:
        escort_id = row.Escort.id
        route = route_of(row, vias.get(escort_id, ()))
        mine = episodes.get(escort_id, ())
        opened = tuple(episode.kind for episode in mine if episode.cleared_at is None)
        exported.append(
            ExportedEscort(
                escort=summary(row, route, opened, now),
                route=route,
                members=tuple(crews.get(escort_id, ())),
                alerts=tuple(mine),
                track_points=tracks.get(escort_id, 0),
                received_by=receivers.get(escort_id),
            )
        )
    return exported


def _title(rank: str | None, name: str) -> str:
    return f"{rank or ''} {name}".strip()


async def _crews(session: AsyncSession, ids: Select[Any]) -> dict[int, list[tuple[str, str]]]:
    query = (
        select(EscortMember.escort_id, Personnel.rank, Personnel.name, EscortMember.role)
        .join(Personnel, Personnel.id == EscortMember.personnel_id)
        .where(EscortMember.escort_id.in_(ids))
        .order_by(EscortMember.escort_id, EscortMember.role != EscortRole.ketua.value, Personnel.name)
    )
    found: dict[int, list[tuple[str, str]]] = {}
    for escort_id, rank, name, role in await session.execute(query):
        found.setdefault(escort_id, []).append((_title(rank, name), role))
    return found


async def _episodes(session: AsyncSession, ids: Select[Any]) -> dict[int, tuple[Episode, ...]]:
    query = (
        select(
            EscortAlert.escort_id,
            EscortAlert.kind,
            EscortAlert.opened_at,
            EscortAlert.cleared_at,
            EscortAlert.clear_reason,
        )
        .where(EscortAlert.escort_id.in_(ids))
        .order_by(EscortAlert.escort_id, EscortAlert.opened_at, EscortAlert.id)
    )
    found: dict[int, list[Episode]] = {}
    for escort_id, kind, opened_at, cleared_at, reason in await session.execute(query):
        found.setdefault(escort_id, []).append(Episode(kind, opened_at, cleared_at, reason))
    return {escort_id: tuple(episodes) for escort_id, episodes in found.items()}


async def _track_sizes(session: AsyncSession, ids: Select[Any]) -> dict[int, int]:
    query = (
        select(EscortTrackPoint.escort_id, func.count())
        .where(EscortTrackPoint.escort_id.in_(ids))
        .group_by(EscortTrackPoint.escort_id)
    )
    return {escort_id: int(count) for escort_id, count in await session.execute(query)}


async def _receivers(session: AsyncSession, ids: Select[Any]) -> dict[int, tuple[str, str]]:
    query = (
        select(Escort.id, Personnel.rank, Personnel.name, Unit.code)
        .join(Personnel, Personnel.id == Escort.received_by_id)
        .join(Unit, Unit.id == Personnel.unit_id)
        .where(Escort.id.in_(ids))
    )
    return {escort_id: (_title(rank, name), unit) for escort_id, rank, name, unit in await session.execute(query)}


def _said(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):{MOMENT}}"


def _vias(route: Route, zone: ZoneInfo) -> str:
    return "; ".join(
        f"{via.waypoint.code} ({'passed ' + _said(via.passed_at, zone) if via.passed_at else 'not passed'})"
        for via in route.vias
    )


def _alerts(episodes: Sequence[Episode], zone: ZoneInfo) -> str:
    said = []
    for episode in episodes:
        text = f"{episode.kind} opened {_said(episode.opened_at, zone)}"
        if episode.cleared_at is not None:
            text += f", cleared {_said(episode.cleared_at, zone)} ({episode.reason or '-'})"
        said.append(text)
    return "; ".join(said)


ESCORT_COLUMNS = (
    "code",
    "kind",
    "cargo",
    "access",
    "from",
    "to",
    "via",
    "unit",
    "state",
    "depart_at",
    "departed_at",
    "arrive_by",
    "arrived_at",
    "received_at",
    "received_by",
    "received_by_unit",
    "members",
    "alerts",
    "open_alerts",
    "track_points",
)
TIMED = frozenset({"depart_at", "departed_at", "arrive_by", "arrived_at", "received_at"})


def escort_rows(escorts: Sequence[ExportedEscort], zone: ZoneInfo) -> list[Row]:
    """One row per escort; lists (vias, crew, alerts) are `; `-separated text, their times local."""
    rows: list[Row] = [[f"{name} ({zone})" if name in TIMED else name for name in ESCORT_COLUMNS]]
    for item in escorts:
        escort, received = item.escort, item.received_by
        rows.append(
            [
                escort.code,
                escort.kind,
                escort.cargo,
                escort.access,
                escort.origin.code,
                escort.destination.code,
                _vias(item.route, zone),
                escort.unit_code,
                escort.state,
                local(escort.depart_at, zone),
                local(escort.departed_at, zone),
                local(escort.arrive_by, zone),
                local(escort.arrived_at, zone),
                local(escort.received_at, zone),
                received[0] if received else None,
                received[1] if received else None,
                "; ".join(f"{name} ({role})" for name, role in item.members),
                _alerts(item.alerts, zone),
                len(escort.open_alerts),
                item.track_points,
            ]
        )
    return rows


async def track_features(session: AsyncSession, escorts: Sequence[ExportedEscort]) -> list[dict[str, Any]]:
    """A LineString of each escort's kept track, [lon, lat] in time order; one point is no line."""
    by_id = {item.escort.id: item for item in escorts}
    if not by_id:
        return []
    points: dict[int, list[tuple[float, float, datetime]]] = {}
    ids = sorted(by_id)
    for start in range(0, len(ids), CHUNK):
        query = (
            select(EscortTrackPoint.escort_id, EscortTrackPoint.lat, EscortTrackPoint.lon, EscortTrackPoint.at)
            .where(EscortTrackPoint.escort_id.in_(ids[start : start + CHUNK]))
            .order_by(EscortTrackPoint.escort_id, EscortTrackPoint.at, EscortTrackPoint.id)
        )
        for escort_id, lat, lon, at in await session.execute(query):
            points.setdefault(escort_id, []).append((lat, lon, at))
    return [
        _line(by_id[escort_id], track)
        for escort_id, track in sorted(points.items(), key=lambda pair: by_id[pair[0]].escort.depart_at)
        if len(track) >= 2
    ]


def _line(item: ExportedEscort, track: list[tuple[float, float, datetime]]) -> dict[str, Any]:
    escort = item.escort
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [[round(lon, 6), round(lat, 6)] for lat, lon, _ in track]},
        "properties": {
            "kind": "escort",
            "code": escort.code,
            "cargo": escort.cargo,
            "state": escort.state,
            "unit": escort.unit_code,
            "from": escort.origin.code,
            "to": escort.destination.code,
            "points": len(track),
            "first_at": track[0][2].isoformat(),
            "last_at": track[-1][2].isoformat(),
        },
    }


def place_features(escorts: Sequence[ExportedEscort]) -> list[dict[str, Any]]:
    """The places the escorts leave from, pass and reach (a TPS is on the map already, as a TPS)."""
    places: dict[str, Waypoint] = {}
    for item in escorts:
        for waypoint in (item.route.origin, *(via.waypoint for via in item.route.vias), item.route.destination):
            if waypoint.place_id is not None:
                places.setdefault(waypoint.code, waypoint)
    return [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [round(place.lon, 6), round(place.lat, 6)]},
            "properties": {"kind": "place", "code": place.code, "name": place.name, "place_kind": place.kind},
        }
        for place in sorted(places.values(), key=lambda waypoint: waypoint.code)
    ]
