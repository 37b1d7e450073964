"""What `/kawal` and `/status` show of escorts: a member's own, a subtree's, one in detail, the counts.

Every list is three statements whatever its length (escorts with their
endpoints, their vias, their open episodes). Underway escorts come first,
then planned ones by departure, then arrived, then received.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import EscortSettings
from bot.services.escorts.handover import members_of, receiver_of
from bot.services.escorts.results import EscortDetail, EscortSummary, MemberEscort
from bot.services.escorts.route import episode, escort_query, route_of, summaries, summary, vias_of
from models import Escort, EscortAlert, EscortMember, EscortTrackPoint, UnitClosure
from models.enums import EscortState

STATE_ORDER = case(
    {
        EscortState.berangkat.value: 0,
        EscortState.terjadwal.value: 1,
        EscortState.tiba.value: 2,
        EscortState.diterima.value: 3,
    },
    value=Escort.state,
)


async def escorts_of_member(
    session: AsyncSession, *, personnel_id: int, now: datetime, include_received: bool = False
) -> list[MemberEscort]:
    """A member's escorts with their role in each; handed-over ones only when asked."""
    query = (
        escort_query()
        .add_columns(EscortMember.role)
        .join(EscortMember, EscortMember.escort_id == Escort.id)
        .where(EscortMember.personnel_id == personnel_id)
        .order_by(STATE_ORDER, Escort.depart_at, Escort.code)
    )
    if not include_received:
        query = query.where(Escort.state != EscortState.diterima.value)
    rows = (await session.execute(query)).all()
    return [
        MemberEscort(escort, row.role) for escort, row in zip(await summaries(session, rows, now), rows, strict=True)
    ]


async def escorts_of_units(
    session: AsyncSession,
    *,
    unit_ids: Sequence[int],
    now: datetime,
    states: Sequence[str] | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[EscortSummary]:
    """The escorts of these units' subtrees, underway first; `limit`/`offset` page them."""
    query = (
        escort_query()
        .where(Escort.unit_id.in_(_subtree(unit_ids)))
        .order_by(STATE_ORDER, Escort.depart_at, Escort.code)
        .offset(offset)
    )
    if states is not None:
        query = query.where(Escort.state.in_(list(states)))
    if limit is not None:
        query = query.limit(limit)
    return await summaries(session, (await session.execute(query)).all(), now)


def _subtree(unit_ids: Sequence[int]) -> Select[int]:
    return select(UnitClosure.unit_id).where(UnitClosure.ancestor_id.in_(list(unit_ids)))


@dataclass(frozen=True)
class EscortCounts:
    """A subtree's escorts by state, and how many have an alert open (the `/status` line)."""

    terjadwal: int = 0
    berangkat: int = 0
    tiba: int = 0
    diterima: int = 0
    with_alerts: int = 0

    @property
    def total(self) -> int:
        return self.terjadwal + self.berangkat + self.tiba + self.diterima


async def escort_counts(session: AsyncSession, *, unit_ids: Sequence[int]) -> EscortCounts:
    by_state = dict(
        (
            await session.execute(
                select(Escort.state, func.count()).where(Escort.unit_id.in_(_subtree(unit_ids))).group_by(Escort.state)
            )
        ).all()
    )
    alerted = await session.scalar(
        select(func.count(func.distinct(EscortAlert.escort_id)))
        .join(Escort, Escort.id == EscortAlert.escort_id)
        .where(EscortAlert.cleared_at.is_(None), Escort.unit_id.in_(_subtree(unit_ids)))
    )
    return EscortCounts(**{state: int(n) for state, n in by_state.items()}, with_alerts=int(alerted or 0))


async def escort_detail(
    session: AsyncSession,
    *,
    now: datetime,
    settings: EscortSettings,
    escort_id: int | None = None,
    code: str | None = None,
) -> EscortDetail | None:
    """One escort by id or code: its route with vias passed, crew, every alert episode, track size."""
    query = escort_query()
    if escort_id is not None:
        query = query.where(Escort.id == escort_id)
    elif code is not None:
        query = query.where(func.upper(Escort.code) == code.strip().upper())
    else:
        raise ValueError("give escort_id or code")
    row = (await session.execute(query)).first()
    if row is None:
        return None
    escort: Escort = row.Escort
    route = route_of(row, (await vias_of(session, [escort.id])).get(escort.id, ()))
    episodes = [
        episode(alert, escort.code, escort.unit_id, settings.severity.of(alert.kind))
        for alert in await session.scalars(
            select(EscortAlert).where(EscortAlert.escort_id == escort.id).order_by(EscortAlert.opened_at)
        )
    ]
    open_kinds = [alert.kind for alert in episodes if alert.cleared_at is None]
    points = await session.scalar(
        select(func.count()).select_from(EscortTrackPoint).where(EscortTrackPoint.escort_id == escort.id)
    )
    return EscortDetail(
        summary=summary(row, route, open_kinds, now),
        route=route,
        members=tuple(await members_of(session, escort.id)),
        alerts=tuple(episodes),
        track_points=int(points or 0),
        received_by=await receiver_of(session, escort.received_by_id),
    )
