"""Writing what was decided: the first check-ins in one insert (each tally row changed once), each move closer after."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import audit, tally
from bot.services.checkin.deciding import (
    Decisions,
    FirstCheckin,
    MoveCloser,
)
from bot.services.checkin.results import (
    Key,
)
from bot.storage.db import dialect_insert
from models import Checkin


async def write(session: AsyncSession, decisions: Decisions, *, now: datetime) -> set[Key]:
    """Write what was decided; returns the first check-ins another transaction wrote first (not moved here)."""
    lost = await _insert_firsts(session, decisions.firsts, now=now) if decisions.firsts else set()
    for move in decisions.moves:
        if move.key not in lost:
            await _move_closer(session, move)
    return lost


async def _insert_firsts(session: AsyncSession, firsts: Sequence[FirstCheckin], *, now: datetime) -> set[Key]:
    """One insert in personnel order (the check-in rows' lock order), its audit and tallies, one commit."""
    ordered = sorted(firsts, key=lambda first: first.key)
    made = await _insert_new(session, ordered)
    counted = []
    for first in ordered:
        if first.key not in made:
            continue
        personnel_id, shift_id = first.key
        audit.record(
            session,
            action="checkin.created",
            entity="checkin",
            entity_id=f"{personnel_id}:{shift_id}",
            actor_id=personnel_id,
            detail={
                "tps": first.post.tps_code,
                "distance_m": round(first.distance),
                "far": first.far,
                "late": first.late,
                "delay_s": round((now - first.at).total_seconds()),
            },
        )
        counted.append(tally.NewCheckin(personnel_id, shift_id, first.late, first.far))
    await tally.on_checkins(session, counted)
    await session.commit()
    return {first.key for first in ordered} - made


async def _insert_new(session: AsyncSession, firsts: Iterable[FirstCheckin]) -> set[Key]:
    """Insert the rows nobody wrote first; returns the rows that were this insert's."""
    rows = [
        {
            "personnel_id": first.presence.personnel_id,
            "shift_id": first.shift.shift_id,
            "tps_id": first.post.tps_id,
            "checked_in_at": first.at,
            "lat": first.presence.lat,
            "lon": first.presence.lon,
            "distance_m": first.distance,
            "far": first.far,
            "late": first.late,
        }
        for first in firsts
    ]
    made = await session.execute(_insert_or_skip(dialect_insert(session)), rows)
    return {(personnel_id, shift_id) for personnel_id, shift_id in made}


@cache
def _insert_or_skip(insert: Callable[..., Any]) -> Any:
    """Built once per backend, so SQLAlchemy compiles it once."""
    table = Checkin.__table__
    return (
        insert(table)
        .on_conflict_do_nothing(index_elements=["personnel_id", "shift_id"])
        .returning(table.c.personnel_id, table.c.shift_id)
    )


async def _move_closer(session: AsyncSession, move: MoveCloser) -> None:
    """One check-in moved to the nearer TPS, in its own transaction."""
    personnel_id, shift_id = move.key
    audit.record(
        session,
        action="checkin.moved_closer",
        entity="checkin",
        entity_id=f"{personnel_id}:{shift_id}",
        actor_id=personnel_id,
        detail={"from_m": round(move.from_m), "to_m": round(move.distance), "tps": move.post.tps_code},
    )
    await tally.on_far_changed(session, personnel_id=personnel_id, shift_id=shift_id, far=move.far)
    await session.execute(
        update(Checkin)
        .where(Checkin.personnel_id == personnel_id, Checkin.shift_id == shift_id)
        .values(
            tps_id=move.post.tps_id,
            lat=move.presence.lat,
            lon=move.presence.lon,
            distance_m=move.distance,
            far=move.far,
        )
    )
    await session.commit()
