"""Command groups: the one Telegram group that speaks for a unit.

A commander of a unit (or of a unit above it) or an admin binds a group to
the unit with `/daftargrup UNIT` typed in that group. One group per unit and
one unit per group: registering another group for a unit replaces the old
one, registering a group already bound elsewhere moves it (the commander
must command both units, so nobody can take a group away from a unit they
do not command). `/daftargrup hapus` unbinds the group.

Alerts for a unit without a (reachable) group of its own go to the nearest
ancestor that has one: `nearest_groups` answers that for many units at once
with one closure-table lookup.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import audit, outbox
from bot.services.people import Actor, commands_unit, unit_by_code
from models import CommandGroup, Unit, UnitClosure

TITLE_LENGTH = 200


class GroupOutcome(StrEnum):
    registered = "registered"
    moved = "moved"
    unchanged = "unchanged"
    removed = "removed"
    not_registered = "not_registered"
    unknown_unit = "unknown_unit"
    forbidden = "forbidden"


@dataclass(frozen=True)
class GroupResult:
    """What a registration did; `previous_unit` and `replaced_title` say what it undid."""

    outcome: GroupOutcome
    unit_code: str = ""
    unit_name: str = ""
    previous_unit_code: str = ""
    replaced_title: str = ""


@dataclass(frozen=True)
class GroupTarget:
    """Where an alert for a unit goes: the group of `unit_id`, the unit itself or an ancestor."""

    unit_id: int
    unit_name: str
    chat_id: int
    title: str


async def register_group(
    session: AsyncSession, *, actor: Actor, chat_id: int, title: str, unit_code: str, now: datetime
) -> GroupResult:
    """Make this chat the unit's command group, replacing or moving what was bound before."""
    unit = await unit_by_code(session, code=unit_code)
    if unit is None:
        return GroupResult(GroupOutcome.unknown_unit, unit_code=unit_code.strip())
    if not await commands_unit(session, actor=actor, unit_id=unit.id):
        return GroupResult(GroupOutcome.forbidden, unit.code, unit.name)
    mine = await session.scalar(select(CommandGroup).where(CommandGroup.chat_id == chat_id))
    if mine is not None and mine.unit_id == unit.id:
        mine.title, mine.reachable = title[:TITLE_LENGTH], True
        await session.commit()
        return GroupResult(GroupOutcome.unchanged, unit.code, unit.name)
    previous: Unit | None = None
    if mine is not None:
        previous = await session.get(Unit, mine.unit_id)
        if not await commands_unit(session, actor=actor, unit_id=mine.unit_id):
            return GroupResult(
                GroupOutcome.forbidden, unit.code, unit.name, previous_unit_code=previous.code if previous else ""
            )
    replaced = await session.scalar(select(CommandGroup).where(CommandGroup.unit_id == unit.id))
    replaced_title = ""
    if replaced is not None:
        replaced_id, replaced_chat, replaced_title = replaced.id, replaced.chat_id, replaced.title
        await session.delete(replaced)
        await session.flush()
        audit.record(
            session,
            action="command_group.replaced",
            entity="command_group",
            entity_id=replaced_id,
            actor_id=actor.personnel_id,
            detail={"unit": unit.code, "chat_id": replaced_chat},
        )
    if mine is None:
        mine = CommandGroup(unit_id=unit.id, chat_id=chat_id)
        session.add(mine)
    mine.unit_id, mine.title, mine.reachable = unit.id, title[:TITLE_LENGTH], True
    mine.registered_by_id, mine.registered_at = actor.personnel_id, now
    await session.flush()
    action = "command_group.moved" if previous is not None else "command_group.registered"
    audit.record(
        session,
        action=action,
        entity="command_group",
        entity_id=mine.id,
        actor_id=actor.personnel_id,
        detail={"unit": unit.code, "chat_id": chat_id, "from_unit": previous.code if previous else None},
    )
    await session.commit()
    outcome = GroupOutcome.moved if previous is not None else GroupOutcome.registered
    return GroupResult(outcome, unit.code, unit.name, previous.code if previous else "", replaced_title)


async def remove_group(session: AsyncSession, *, actor: Actor, chat_id: int) -> GroupResult:
    """Unbind this chat; its unit's alerts go to the nearest ancestor's group from now on."""
    row = await session.scalar(select(CommandGroup).where(CommandGroup.chat_id == chat_id))
    if row is None:
        return GroupResult(GroupOutcome.not_registered)
    unit = await session.get(Unit, row.unit_id)
    assert unit is not None
    if not await commands_unit(session, actor=actor, unit_id=unit.id):
        return GroupResult(GroupOutcome.forbidden, unit.code, unit.name)
    await session.execute(delete(CommandGroup).where(CommandGroup.id == row.id))
    audit.record(
        session,
        action="command_group.removed",
        entity="command_group",
        entity_id=row.id,
        actor_id=actor.personnel_id,
        detail={"unit": unit.code, "chat_id": chat_id},
    )
    await session.commit()
    return GroupResult(GroupOutcome.removed, unit.code, unit.name)


async def describe_group(session: AsyncSession, *, chat_id: int) -> GroupResult:
    """Which unit this chat speaks for, if any (what `/daftargrup` alone answers)."""
    unit = await session.scalar(
        select(Unit).join(CommandGroup, CommandGroup.unit_id == Unit.id).where(CommandGroup.chat_id == chat_id)
    )
    if unit is None:
        return GroupResult(GroupOutcome.not_registered)
    return GroupResult(GroupOutcome.unchanged, unit.code, unit.name)


async def migrate_group(session: AsyncSession, *, old_chat_id: int, new_chat_id: int) -> bool:
    """A group became a supergroup: its registration and waiting messages follow the new id.

    Telegram sends the service message in both chats; only the first call
    finds anything to move, so a repeat is harmless.
    """
    known = await session.scalar(select(CommandGroup.id).where(CommandGroup.chat_id == old_chat_id))
    if known is None:
        return False
    await outbox.migrate_chat(session, old_chat_id=old_chat_id, new_chat_id=new_chat_id)
    await session.commit()
    return True


async def nearest_groups(session: AsyncSession, *, unit_ids: Iterable[int]) -> dict[int, GroupTarget | None]:
    """For each unit, the reachable group of the unit itself or of its nearest ancestor.

    One query over the closure table, whatever the number of units; None
    where no unit up the chain has a group.
    """
    wanted = set(unit_ids)
    if not wanted:
        return {}
    rows = await session.execute(
        select(
            UnitClosure.unit_id,
            UnitClosure.distance,
            CommandGroup.unit_id,
            Unit.name,
            CommandGroup.chat_id,
            CommandGroup.title,
        )
        .join(CommandGroup, CommandGroup.unit_id == UnitClosure.ancestor_id)
        .join(Unit, Unit.id == CommandGroup.unit_id)
        .where(UnitClosure.unit_id.in_(wanted), CommandGroup.reachable.is_(True))
    )
    best: dict[int, tuple[int, GroupTarget]] = {}
    for unit_id, distance, group_unit_id, name, chat_id, title in rows:
        if unit_id not in best or distance < best[unit_id][0]:
            best[unit_id] = (distance, GroupTarget(group_unit_id, name, chat_id, title))
    return {unit_id: best[unit_id][1] if unit_id in best else None for unit_id in wanted}
