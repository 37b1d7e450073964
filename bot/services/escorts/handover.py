"""Serah terima: the receiving side takes custody of an arrived escort's cargo, and the audit log keeps the chain.

Who may receive: a registered person whose unit lies in the subtree of the
destination's unit (a place's unit; for a TPS its unit and its secondary
units), or who is assigned to the destination TPS. Never a member of the
escort itself: custody passes from one side to the other. Receiving an
escort still underway is its arrival as well.

Each handover is one `escort.received` audit row naming the cargo, the leg
(from, to), who handed over (the ketua), who received, when and where; the
rows of one cargo's legs (TPS -> PPS -> PPK) read in order are its chain of
custody.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import EscortSettings
from bot.services import audit
from bot.services.escorts import alerts
from bot.services.escorts.results import Member, ReceiveOutcome, ReceiveResult, Waypoint
from bot.services.escorts.route import escort_query, summaries
from bot.services.escorts.tracking import mark_arrived
from models import Assignment, Escort, EscortMember, Personnel, TpsSecondaryUnit, UnitClosure
from models.enums import EscortRole, EscortState

PERSON_COLUMNS = (
    Personnel.id,
    Personnel.name,
    Personnel.rank,
    Personnel.telegram_user_id,
    Personnel.language,
    Personnel.unit_id,
)


def _member(row: Any, role: str) -> Member:
    return Member(row.id, row.name, row.rank, role, row.telegram_user_id, row.language)


async def members_of(session: AsyncSession, escort_id: int) -> list[Member]:
    """The ketua first, then the anggota by name."""
    query = (
        select(*PERSON_COLUMNS, EscortMember.role)
        .join(EscortMember, EscortMember.personnel_id == Personnel.id)
        .where(EscortMember.escort_id == escort_id)
        .order_by(EscortMember.role != EscortRole.ketua.value, Personnel.name)
    )
    return [_member(row, row.role) for row in await session.execute(query)]


async def receive(
    session: AsyncSession, *, code: str, personnel_id: int, now: datetime, settings: EscortSettings
) -> ReceiveResult:
    """`/terima CODE`: hand the escort over to the sender, or say why not. Does not commit."""
    code = code.strip()
    query = escort_query().where(func.upper(Escort.code) == code.upper()).with_for_update(of=Escort, key_share=True)
    row = (await session.execute(query)).first()
    if row is None:
        return ReceiveResult(ReceiveOutcome.not_found, code)
    escort: Escort = row.Escort
    destination = (await summaries(session, [row], now))[0].destination
    crew = await members_of(session, escort.id)
    lead = crew[0] if crew else None
    person = (await session.execute(select(*PERSON_COLUMNS).where(Personnel.id == personnel_id))).first()
    if escort.state == EscortState.diterima.value:
        first = await receiver_of(session, escort.received_by_id)
        return ReceiveResult(
            ReceiveOutcome.already, escort.code, escort.cargo, destination, escort.received_at, lead, first
        )
    refusal = await _refusal(session, escort, person, crew, destination)
    if refusal is not None:
        return ReceiveResult(refusal, escort.code, escort.cargo, destination, lead=lead)
    assert person is not None
    cleared: Sequence[Any] = ()
    if escort.state != EscortState.tiba.value:
        mark_arrived(session, escort, personnel_id, now, by="receipt")
        cleared = await alerts.clear(session, escort=escort, kinds=(), now=now, settings=settings, arrived=True)
    escort.state = EscortState.diterima.value
    escort.received_at = now
    escort.received_by_id = personnel_id
    receiver = _member(person, "penerima")
    _audit(session, escort, row, destination, lead, receiver, now)
    await session.flush()
    return ReceiveResult(
        ReceiveOutcome.received,
        escort.code,
        escort.cargo,
        destination,
        now,
        lead,
        receiver,
        (await summaries(session, [row], now))[0],
        tuple(cleared),
    )


async def receiver_of(session: AsyncSession, personnel_id: int | None) -> Member | None:
    if personnel_id is None:
        return None
    row = (await session.execute(select(*PERSON_COLUMNS).where(Personnel.id == personnel_id))).first()
    return None if row is None else _member(row, "penerima")


async def _refusal(
    session: AsyncSession, escort: Escort, person: Any, crew: Sequence[Member], destination: Waypoint
) -> ReceiveOutcome | None:
    if person is None or person.telegram_user_id is None:
        return ReceiveOutcome.not_registered
    if escort.state == EscortState.terjadwal.value:
        return ReceiveOutcome.not_departed
    if any(member.personnel_id == person.id for member in crew):
        return ReceiveOutcome.own_escort
    if not await _at_destination(session, person, destination):
        return ReceiveOutcome.not_allowed
    return None


async def _at_destination(session: AsyncSession, person: Any, destination: Waypoint) -> bool:
    """In the subtree of a unit of the destination, or assigned to the destination TPS."""
    units = [destination.unit_id]
    if destination.tps_id is not None:
        if await session.scalar(
            select(exists().where(Assignment.personnel_id == person.id, Assignment.tps_id == destination.tps_id))
        ):
            return True
        secondary = await session.scalars(
            select(TpsSecondaryUnit.unit_id).where(TpsSecondaryUnit.tps_id == destination.tps_id)
        )
        units.extend(secondary)
    within = exists().where(UnitClosure.ancestor_id.in_(units), UnitClosure.unit_id == person.unit_id)
    return bool(await session.scalar(select(within)))


def _audit(
    session: AsyncSession,
    escort: Escort,
    row: Any,
    destination: Waypoint,
    lead: Member | None,
    receiver: Member,
    now: datetime,
) -> None:
    origin = row.f_p_code if row.f_p_code is not None else row.f_t_code

    def person(member: Member | None) -> dict[str, Any] | None:
        return None if member is None else {"personnel_id": member.personnel_id, "name": member.title}

    audit.record(
        session,
        action="escort.received",
        entity="escort",
        entity_id=escort.id,
        actor_id=receiver.personnel_id,
        detail={
            "code": escort.code,
            "cargo": escort.cargo,
            "kind": escort.kind,
            "from": origin,
            "to": destination.code,
            "handed_over_by": person(lead),
            "received_by": person(receiver),
            "at": now.isoformat(),
            "place": {
                "code": destination.code,
                "name": destination.name,
                "lat": destination.lat,
                "lon": destination.lon,
            },
            "departed_at": None if escort.departed_at is None else escort.departed_at.isoformat(),
            "arrived_at": None if escort.arrived_at is None else escort.arrived_at.isoformat(),
        },
    )
