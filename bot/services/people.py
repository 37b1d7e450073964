"""Who is speaking, and what they may act on.

Authorization is decided here, from the database, on every update and every
button press: callback data only says what was pressed, never who may.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Executable, bindparam, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import audit
from bot.services.escorts.route import position_window, takes_positions
from bot.services.units import is_within
from models import CommandGroup, Escort, EscortMember, Personnel, Unit
from models.enums import Role


@dataclass(frozen=True)
class Actor:
    """A registered person as the handlers need them: no phone, no NRP."""

    personnel_id: int
    name: str
    rank: str
    role: str
    unit_id: int
    unit_code: str
    unit_name: str
    language: str
    escorting: bool = False
    """On an escort planned or underway: a location from them may be the escort's position."""

    @property
    def is_commander(self) -> bool:
        return self.role in (Role.komandan, Role.admin)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.admin

    @property
    def title(self) -> str:
        return f"{self.rank} {self.name}".strip()


async def actor_for(session: AsyncSession, *, telegram_user_id: int, now: datetime) -> Actor | None:
    """Who sent an update."""
    return (await actors_for(session, telegram_user_ids=[telegram_user_id], now=now)).get(telegram_user_id)


def _actors_statement() -> Executable:
    """The sender lookup, built once: it runs on every update, and building it cost more than running it."""
    escorting = exists().where(
        EscortMember.personnel_id == Personnel.id,
        Escort.id == EscortMember.escort_id,
        takes_positions(),
    )
    return (
        select(
            Personnel.telegram_user_id,
            Personnel.id,
            Personnel.name,
            Personnel.rank,
            Personnel.role,
            Unit.id,
            Unit.code,
            Unit.name,
            Personnel.language,
            escorting.label("escorting"),
        )
        .join(Unit, Unit.id == Personnel.unit_id)
        .where(Personnel.telegram_user_id.in_(bindparam("user_ids", expanding=True)))
    )


_ACTORS = _actors_statement()


async def actors_for(session: AsyncSession, *, telegram_user_ids: Sequence[int], now: datetime) -> dict[int, Actor]:
    """The registered people behind these Telegram ids, by id; strangers are missing.

    Asked on every update (for a bunch of updates at once, see
    bot/intake/coalesce.py), so columns only: no ORM objects to build.
    Whether each is on an escort that may take a position at `now` rides in
    the same statement, so a check-in costs no extra query to be told apart
    from an escort's position, even for a member whose leg is hours away.
    """
    rows = await session.execute(_ACTORS, {"user_ids": list(set(telegram_user_ids)), **position_window(now)})
    return {
        user_id: Actor(
            personnel_id=personnel_id,
            name=name,
            rank=rank,
            role=role,
            unit_id=unit_id,
            unit_code=unit_code,
            unit_name=unit_name,
            language=language,
            escorting=bool(on_escort),
        )
        for user_id, personnel_id, name, rank, role, unit_id, unit_code, unit_name, language, on_escort in rows
        if user_id is not None  # never, by the IN; says so to the type checker
    }


async def commands_unit(session: AsyncSession, *, actor: Actor, unit_id: int) -> bool:
    """An admin commands every unit; a komandan their own unit's subtree; an anggota none."""
    if actor.is_admin:
        return True
    if actor.role != Role.komandan:
        return False
    return await is_within(session, unit_id, actor.unit_id)


async def unit_by_code(session: AsyncSession, *, code: str) -> Unit | None:
    return await session.scalar(select(Unit).where(func.upper(Unit.code) == code.strip().upper()))


async def group_unit(session: AsyncSession, *, chat_id: int) -> Unit | None:
    """The unit a command group speaks for, if this chat is one."""
    return await session.scalar(
        select(Unit).join(CommandGroup, CommandGroup.unit_id == Unit.id).where(CommandGroup.chat_id == chat_id)
    )


async def set_language(session: AsyncSession, *, actor: Actor, language: str) -> None:
    await session.execute(update(Personnel).where(Personnel.id == actor.personnel_id).values(language=language))
    audit.record(
        session,
        action="personnel.language",
        entity="personnel",
        entity_id=actor.personnel_id,
        actor_id=actor.personnel_id,
        detail={"language": language},
    )
    await session.commit()
