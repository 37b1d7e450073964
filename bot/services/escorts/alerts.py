"""Automatic escort alerts: episodes opened once by the sweep (or a position off the corridor), cleared by positions.

An episode is a row of `escort_alerts`, open while `cleared_at` is NULL; a
partial unique index allows one open episode per (escort, kind), and every
opening is an insert that a conflict turns into nothing. Two workers that
sweep at the same moment therefore open each episode once, and a condition
that lasts never opens a second one: `berhenti` of an escort stopped for an
hour is one episode, and a new one only after it moved and stopped again.

The caller raises each opened episode as a contingency and links it
(`link_contingency`) in the same transaction; `unraised` lists the open
episodes still without one, for a caller that crashed in between.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import EscortSettings
from bot.services.escorts.results import AlertEpisode
from bot.services.escorts.route import episode
from bot.storage.db import dialect_insert
from models import Escort, EscortAlert
from models.enums import AlertClearReason, EscortAlertKind, EscortState

ALERTS = cast(Table, EscortAlert.__table__)
UNDERWAY = EscortState.berangkat.value
NOT_ARRIVED = (EscortState.terjadwal.value, EscortState.berangkat.value)
# What ends each condition by itself, as a position shows it.
REASON = {
    EscortAlertKind.berhenti.value: AlertClearReason.moved.value,
    EscortAlertKind.hilang_sinyal.value: AlertClearReason.position.value,
    EscortAlertKind.menyimpang.value: AlertClearReason.on_route.value,
    EscortAlertKind.terlambat.value: AlertClearReason.arrived.value,
}
RETURNED = (
    ALERTS.c.id,
    ALERTS.c.escort_id,
    ALERTS.c.kind,
    ALERTS.c.opened_at,
    ALERTS.c.cleared_at,
    ALERTS.c.clear_reason,
    ALERTS.c.contingency_id,
)


def silent_after(settings: EscortSettings, access: str, on_water: bool) -> timedelta:
    """The water timeout on water legs: access `air`, or a `darat_air` escort past its last dermaga."""
    water = access == "air" or (access == "darat_air" and on_water)
    return timedelta(minutes=settings.silent_minutes.air if water else settings.silent_minutes.darat)


async def clear(
    session: AsyncSession,
    *,
    escort: Escort,
    kinds: Sequence[str],
    now: datetime,
    settings: EscortSettings,
    arrived: bool = False,
) -> list[AlertEpisode]:
    """End the open episodes of these kinds, each with the reason its kind ends by; `arrived` ends every kind.

    One UPDATE that matches nothing when nothing is open (the common case of
    a position), through the partial unique index.
    """
    if not kinds and not arrived:
        return []
    params: dict[str, Any] = {"escort": escort.id, "cleared": now}
    if not arrived:
        params["kinds"] = list(kinds)
    rows = (await session.execute(_CLEAR_ALL if arrived else _CLEAR, params)).all()
    return [_episode(row, escort.code, escort.unit_id, settings.severity.of(row.kind)) for row in rows]


def _clearing(*, arrived: bool) -> Any:
    """Built once, with bound parameters: every position of every escort runs one."""
    reason: Any = AlertClearReason.arrived.value if arrived else case(REASON, value=ALERTS.c.kind)
    statement = (
        update(ALERTS)
        .where(ALERTS.c.escort_id == bindparam("escort"), ALERTS.c.cleared_at.is_(None))
        .values(cleared_at=bindparam("cleared", type_=ALERTS.c.cleared_at.type), clear_reason=reason)
        .returning(*RETURNED)
    )
    return statement if arrived else statement.where(ALERTS.c.kind.in_(bindparam("kinds", expanding=True)))


_CLEAR, _CLEAR_ALL = _clearing(arrived=False), _clearing(arrived=True)


async def open_once(session: AsyncSession, wanted: Iterable[tuple[int, str]], *, now: datetime) -> list[Any]:
    """Open an episode per (escort, kind) unless one is open; returns the rows this call opened."""
    rows = [{"escort_id": escort_id, "kind": kind, "opened_at": now} for escort_id, kind in wanted]
    opened: list[Any] = []
    for start in range(0, len(rows), 500):
        statement = _insert_or_skip(dialect_insert(session)).values(rows[start : start + 500])
        opened.extend((await session.execute(statement)).all())
    return opened


@cache
def _insert_or_skip(insert: Any) -> Any:
    return insert(ALERTS).on_conflict_do_nothing().returning(*RETURNED)


async def sweep_alerts(session: AsyncSession, *, settings: EscortSettings, now: datetime) -> list[AlertEpisode]:
    """Open what has become due: `berhenti`, `hilang_sinyal`, `terlambat`; returns the episodes opened now.

    Reads only escorts not yet arrived that something may be due for (an
    indexed range on state), then the open episodes of those, and opens the
    rest. `berhenti` is what the positions show: the escort's positions
    stayed within `stop_radius_meters` of the anchor for `stop_minutes` (a
    boat without signal on the river has not been seen to stop; it becomes
    `hilang_sinyal` after the water timeout instead).
    Does not commit: the caller raises the contingencies in the same
    transaction.
    """
    stop_cut = now - timedelta(minutes=settings.stop_minutes)
    shortest = min(settings.silent_minutes.darat, settings.silent_minutes.air)
    heard = func.coalesce(Escort.last_at, Escort.departed_at)
    query = select(
        Escort.id,
        Escort.code,
        Escort.unit_id,
        Escort.state,
        Escort.access,
        Escort.on_water,
        Escort.arrive_by,
        Escort.anchor_at,
        Escort.last_at,
        heard.label("heard"),
    ).where(
        Escort.state.in_(NOT_ARRIVED),
        or_(
            Escort.arrive_by <= now,
            and_(
                Escort.state == UNDERWAY,
                or_(Escort.anchor_at <= stop_cut, heard <= now - timedelta(minutes=shortest)),
            ),
        ),
    )
    candidates = (await session.execute(query)).all()
    if not candidates:
        return []
    open_now = await _open_kinds(session, [row.id for row in candidates])
    wanted: list[tuple[int, str]] = []
    for row in candidates:
        due = _due(row, settings, now)
        wanted.extend((row.id, kind) for kind in due if (row.id, kind) not in open_now)
    opened = await open_once(session, wanted, now=now)
    by_id = {row.id: row for row in candidates}
    return [
        _episode(alert, by_id[alert.escort_id].code, by_id[alert.escort_id].unit_id, settings.severity.of(alert.kind))
        for alert in opened
    ]


def _due(row: Any, settings: EscortSettings, now: datetime) -> list[str]:
    due = []
    if row.arrive_by <= now:
        due.append(EscortAlertKind.terlambat.value)
    if row.state == UNDERWAY:
        if row.heard is not None and row.heard <= now - silent_after(settings, row.access, row.on_water):
            due.append(EscortAlertKind.hilang_sinyal.value)
        stop = timedelta(minutes=settings.stop_minutes)
        if row.anchor_at is not None and row.last_at is not None and row.last_at - row.anchor_at >= stop:
            due.append(EscortAlertKind.berhenti.value)
    return due


async def _open_kinds(session: AsyncSession, escort_ids: Sequence[int]) -> set[tuple[int, str]]:
    found: set[tuple[int, str]] = set()
    for start in range(0, len(escort_ids), 2_000):
        chunk = escort_ids[start : start + 2_000]
        query = select(EscortAlert.escort_id, EscortAlert.kind).where(
            EscortAlert.escort_id.in_(chunk), EscortAlert.cleared_at.is_(None)
        )
        found.update((escort_id, kind) for escort_id, kind in await session.execute(query))
    return found


async def link_contingency(session: AsyncSession, *, alert_id: int, contingency_id: int) -> None:
    """Remember which contingency speaks for an episode (its clearing resolves that one)."""
    await session.execute(update(ALERTS).where(ALERTS.c.id == alert_id).values(contingency_id=contingency_id))


async def unraised(session: AsyncSession, *, settings: EscortSettings) -> list[AlertEpisode]:
    """Open episodes without a contingency yet: opened by a transaction whose contingency was never raised."""
    query = (
        select(*RETURNED, Escort.code, Escort.unit_id)
        .join(Escort, Escort.id == ALERTS.c.escort_id)
        .where(ALERTS.c.cleared_at.is_(None), ALERTS.c.contingency_id.is_(None))
        .order_by(ALERTS.c.id)
    )
    return [
        _episode(row, row.code, row.unit_id, settings.severity.of(row.kind)) for row in await session.execute(query)
    ]


def _episode(row: Any, code: str, unit_id: int, severity: str) -> AlertEpisode:
    return episode(row, code, unit_id, severity)
